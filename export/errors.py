"""Errors the exporter raises; all derive from `mat_keras.errors.MatKerasError`.

The CLI turns any `MatKerasError` into its one-sentence message and exit
status 2, so every message here names the file, layer or value at fault.
"""

# The layer table (core) raises it too; it lives with the core's errors.
from mat_keras.errors import MatKerasError, UnsupportedLayerError  # noqa: F401


class OutputExistsError(MatKerasError, FileExistsError):
    """The output folder exists and `overwrite` was not requested."""


class TableIntegrityError(MatKerasError, ValueError):
    """A conductance-table folder is incomplete, tampered with or malformed."""


class SchemaVersionError(TableIntegrityError):
    """A manifest was written by a newer, unknown schema version."""
