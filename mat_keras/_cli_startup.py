"""Quiets TensorFlow's C++ start-up log for the `mat-keras` command, before TensorFlow is imported.

TensorFlow's C++ runtime writes about 8 lines (oneDNN, CUDA, CPU features)
to stderr as it is imported; an error of the command would no longer be one
sentence. `TF_CPP_MIN_LOG_LEVEL=3` silences the lines of TensorFlow's own
logger, but not those absl logs before its `InitializeLog()` (TensorFlow
2.21 writes 6 such lines, whatever the environment says), so the first import
of Keras, which imports the backend, runs with file descriptor 2 pointed at
`/dev/null`.

The package imports this module first (`mat_keras/__init__.py`), because the
console script imports the package, and with it Keras and TensorFlow, before
`mat_keras.cli` runs. Nothing changes for Python users of the library, for
`--verbose` (`-verbose`) command lines, or where `TF_CPP_MIN_LOG_LEVEL` is set
already.
"""

import importlib
import os
import sys


def is_the_command(argv=None, orig_argv=None):
    """True when this process is `mat-keras` or `python -m mat_keras.cli`.

    Example:

    >>> is_the_command(["/usr/bin/mat-keras", "train"], [])
    True
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and os.path.basename(argv[0]).split(".")[0] == "mat-keras":
        return True
    # While `python -m` imports the package, sys.argv[0] is still "-m".
    return any(a == "-m" and b == "mat_keras.cli" for a, b in zip(orig_argv, orig_argv[1:]))


def quiet_tensorflow(argv=None, environ=None):
    """For the command: sets `TF_CPP_MIN_LOG_LEVEL=3` and imports Keras with stderr muted.

    Args:
        argv: the process's arguments (default `sys.argv`).
        environ: the environment (default `os.environ`).

    Returns:
        Whether it quieted anything: False for the library, `--verbose`, or
        a `TF_CPP_MIN_LOG_LEVEL` already set.
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if not is_the_command(argv) or {"--verbose", "-verbose"} & set(argv):
        return False
    if "TF_CPP_MIN_LOG_LEVEL" in environ:
        return False
    environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    _import_muted("keras")
    return True


def _import_muted(name):
    """Imports a module with file descriptor 2 on /dev/null; an import error still shows after."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        importlib.import_module(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


quiet_tensorflow()
