"""Conductance tables for mapping trained weights onto memristor crossbars.

Installed as `mat_keras.export` (the folder `export/` at the top of the
repository). For every weight: which device (pair) to program to which
conductance level, on which tile, with the scale that turns read currents
back into activations.

Example:

>>> from mat_keras import export
>>> device = export.Device(g_min=1e-6, g_max=40e-6, levels=16)
>>> summary = export.conductance_tables(model, "chip/", device=device, tile=(256, 256))
>>> print(summary.table())
>>> tables = export.load_tables("chip/")          # checksums verified
>>> chip = export.apply_tables(model, "chip/", programming_noise=0.02, seed=0)
>>> on_chip = export.simulate(model, "chip/", crossbar="standard", calibration_data=x_train[:1024])

Modules: `layouts` (which weights become which matrix), `graph` (walking a
model, BatchNorm pairing), `folding` (BatchNorm folding), `mapping` (scales,
matrices onto levels), `tiles`, `tables` (files, manifest, loading), `apply`
(weights back into a model), `simulate` (those weights computed through a
crossbar, on the tables' tiles), `cli` (`mat-keras export`). The device spec,
`Device`, and the weight <-> conductance mapping are `mat_keras.devices`'.
"""

from mat_keras.devices import Device
from mat_keras.export.apply import apply_tables, fold_batchnorm, resolve_programming_noise
from mat_keras.export.errors import (
    OutputExistsError,
    SchemaVersionError,
    TableIntegrityError,
    UnsupportedLayerError,
)
from mat_keras.export.simulate import crossbar_for_tiles, simulate
from mat_keras.export.summary import ExportSummary, MatrixSummary
from mat_keras.export.tables import (
    SCHEMA_VERSION,
    LayerTable,
    MatrixTable,
    Tables,
    conductance_tables,
    load_tables,
)
from mat_keras.crossbar.tiles import Tile, tile_grid

__all__ = [
    "SCHEMA_VERSION",
    "Device",
    "ExportSummary",
    "LayerTable",
    "MatrixSummary",
    "MatrixTable",
    "OutputExistsError",
    "SchemaVersionError",
    "TableIntegrityError",
    "Tables",
    "Tile",
    "UnsupportedLayerError",
    "apply_tables",
    "conductance_tables",
    "crossbar_for_tiles",
    "fold_batchnorm",
    "load_tables",
    "resolve_programming_noise",
    "simulate",
    "tile_grid",
]
