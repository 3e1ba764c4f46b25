"""File helpers: writes that never leave a half-written file behind, and model reads that fail in one sentence."""

import contextlib
import os
import tempfile

import keras

from mat_keras.errors import ModelFileError


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """Opens a temporary file next to `path`; renames it onto `path` on success.

    If the block raises, the temporary file is removed and `path` keeps its
    old content (or stays absent).

    Args:
        path: the destination file.
        mode: `"w"` for text or `"wb"` for bytes.
        **open_kwargs: passed to `open` (e.g. `newline=""` for CSV).

    Yields:
        The open temporary file.

    Example:

    >>> with atomic_write("sweep.json") as f:
    ...     f.write("{}")
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    # mkstemp creates the file private (0600); give it the usual permissions.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_path(path):
    """Context manager yielding a temporary path renamed onto `path` on success.

    For writers that take a file name rather than a handle (matplotlib,
    `model.save`). The temporary name keeps `path`'s extension, which such
    writers read to pick the format.
    """
    return _AtomicPath(path)


class _AtomicPath:
    def __init__(self, path):
        self.path = os.fspath(path)

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        base = os.path.basename(self.path)
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=base)
        os.close(fd)
        os.remove(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp)
        return False


def load_model_file(path):
    """Loads a `.keras` model, turning any failure into one clear sentence.

    Args:
        path: the `.keras` file.

    Returns:
        The `keras.Model`.

    Raises:
        ModelFileError: the file is missing, not a Keras model, or damaged.

    Example:

    >>> model = load_model_file("runs/mnist-5k/mat.keras")
    """
    if not os.path.isfile(path):
        raise ModelFileError(f"No model file at {path!r}.")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for a bad file.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            f"Cannot read {path!r} as a Keras model ({reason[:200]})."
        ) from error
