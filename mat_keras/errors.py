"""Exceptions that mat-keras raises for bad input or missing resources.

Every error the package raises on purpose derives from `MatKerasError`, so a
caller (the CLI in particular) can tell a user mistake, reported as one clear
sentence, from a bug, reported with its traceback.
"""


class MatKerasError(Exception):
    """Base class of the errors mat-keras raises on purpose."""


class InvalidArgumentError(MatKerasError, ValueError):
    """An argument has a value the function cannot accept."""


class WrapError(MatKerasError, ValueError):
    """A layer or model cannot be wrapped with noisy weights."""


class UnsupportedLayerError(InvalidArgumentError):
    """A layer holds weights that cannot be mapped onto a crossbar."""


class NoNoisyLayersError(MatKerasError, ValueError):
    """A MAT callback or function was given a model without noisy layers."""


class DataUnavailableError(MatKerasError, RuntimeError):
    """A dataset is neither on disk nor downloadable from here."""


class InputFileError(MatKerasError, OSError):
    """A file given as input is missing, unreadable or not what it should be."""


class ModelFileError(InputFileError):
    """A model or weight file cannot be read."""


class OutputPathError(MatKerasError, OSError):
    """A file or folder cannot be written: a read-only place, a full disk, a file in the way."""


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP).

    A `KeyboardInterrupt`, so that every clean-up that runs on Ctrl-C (the
    `finally` and `except BaseException` blocks that remove temporary files
    and staging folders) also runs when the process is terminated.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
