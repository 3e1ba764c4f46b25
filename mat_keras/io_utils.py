"""File helpers: writes that never leave a half-written file behind, reads and paths checked in one sentence.

Temporary files and folders carry the pid of the process writing them
(`.tmp-<pid>-...`, `.chip.partial-<pid>-...`): a process killed before it
could clean up (SIGKILL, power loss) leaves a name whose writer is gone, and
the next write to the same place removes it (`stale_entries`).
"""

import contextlib
import errno
import os
import re
import secrets
import shutil
import tempfile
import zipfile

import keras

from mat_keras.errors import InputFileError, MatKerasError, ModelFileError, OutputPathError

_TMP_PREFIX = ".tmp-"
# The first bytes of an HDF5 file (Keras's legacy `.h5` models) and of a zip archive (`.keras`).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


def owned_name(prefix, suffix=""):
    """A fresh temporary name `<prefix><pid>-<token><suffix>` owned by this process.

    Args:
        prefix: the start of the name, e.g. `".chip.partial-"`.
        suffix: the end of the name, e.g. the target's file name.

    Returns:
        The name (no folder).
    """
    return f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def stale_entries(folder, prefix, suffix=""):
    """Lists the temporary names in `folder` whose writing process is gone.

    Only names of `owned_name`'s pattern with this `prefix` and `suffix` are
    considered, so that nothing else in the folder is ever touched.

    Args:
        folder: the folder to look in.
        prefix: as given to `owned_name`.
        suffix: as given to `owned_name`.

    Returns:
        A list of paths.
    """
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[A-Za-z0-9_]+" + re.escape(suffix) + r"\Z")
    try:
        names = os.listdir(folder)
    except OSError:  # A folder that is not there or not readable holds nothing of ours.
        return []
    stale = []
    for name in names:
        match = pattern.match(name)
        if match and not _pid_alive(int(match.group(1))):
            stale.append(os.path.join(folder, name))
    return stale


def remove_path(path):
    """Removes a file or a folder tree; a path already gone is fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


@contextlib.contextmanager
def writing(path):
    """Turns an operating-system failure to write `path` into one sentence.

    A read-only place, a full disk or a file where a folder is expected
    becomes an `OutputPathError` naming `path` and the reason.

    Example:

    >>> with writing("runs/sweep.png"):
    ...     figure.savefig("runs/sweep.png")
    """
    try:
        yield
    except MatKerasError:
        raise
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise OutputPathError(f"Cannot write '{os.fspath(path)}': {reason}.") from error


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """Opens a temporary file next to `path`; renames it onto `path` on success.

    If the block raises, the temporary file is removed and `path` keeps its
    old content (or stays absent). Temporary files of earlier writers of
    `path` that were killed are removed first.

    Args:
        path: the destination file.
        mode: `"w"` for text or `"wb"` for bytes.
        **open_kwargs: passed to `open` (e.g. `newline=""` for CSV).

    Yields:
        The open temporary file.

    Raises:
        OutputPathError: the file cannot be written (read-only place, full
            disk, a file where a folder is expected).

    Example:

    >>> with atomic_write("sweep.json") as f:
    ...     f.write("{}")
    """
    with atomic_path(path) as tmp:
        # O_EXCL: the name is ours alone; mode 0666 less the umask, as open() gives.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary path renamed onto `path` on success.

    For writers that take a file name rather than a handle (matplotlib,
    `model.save`). The temporary name keeps `path`'s extension, which such
    writers read to pick the format, and carries this process's pid, so that
    a later write of `path` removes it if this process is killed.

    Raises:
        OutputPathError: the file cannot be written.

    Example:

    >>> with atomic_path("mat.keras") as tmp:
    ...     model.save(tmp)
    """
    path = os.fspath(path)
    with writing(path):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        for stale in stale_entries(folder, _TMP_PREFIX, os.path.basename(path)):
            remove_path(stale)
        tmp = os.path.join(folder, owned_name(_TMP_PREFIX, os.path.basename(path)))
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            remove_path(tmp)
            raise


def check_output_path(path, name, kind="file"):
    """Checks that `path` can be written, before any long work is done.

    The path, or the nearest folder above it that exists, is tried with a
    probe (a folder created and removed), which also catches what
    `os.access` cannot see: read-only file systems and a user allowed
    everything.

    Args:
        path: a file or folder that the command will write.
        name: how the user gave it, for the message (e.g. `"--save"`).
        kind: `"file"` or `"folder"`: what `path` must be if it exists.

    Raises:
        OutputPathError: `path` is of the other kind, a file stands where a
            folder is needed above it, or the place is not writable.

    Example:

    >>> check_output_path("runs/mnist-5k", "--out-dir", kind="folder")
    """
    given = os.fspath(path)
    path = os.path.abspath(given)
    if os.path.isdir(path):
        if kind == "file":
            raise OutputPathError(f"{name} '{given}' is a folder; give a file name.")
        folder = path
    elif os.path.lexists(path):
        if kind == "folder":
            raise OutputPathError(f"{name} '{given}' is a file, not a folder.")
        folder = os.path.dirname(path)
    else:
        folder = os.path.dirname(path)
        while not os.path.lexists(folder):
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            raise OutputPathError(f"{name} '{given}' cannot be created: '{folder}' is a file, not a folder.")
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=f".mat-keras-probe-{os.getpid()}-"))
    except OSError as error:
        raise OutputPathError(
            f"{name} '{given}' cannot be written: {error.strerror or error} in '{folder}'."
        ) from None


def read_text(path, what):
    """Returns the text of a small input file, or one sentence on what is wrong with it.

    Args:
        path: the file.
        what: what the file should be, for the message (e.g. `"device file"`).

    Returns:
        The file's text.

    Raises:
        InputFileError: missing, a folder, unreadable, empty or not UTF-8.

    Example:

    >>> read_text("pcm.json", "device file")
    '{"programming": 0.02}'
    """
    data = _read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"The {what} '{path}' is not text (byte 0x{data[error.start]:02x} at offset {error.start} "
            "is not UTF-8); is it the right file?"
        ) from None


def _read_bytes(path, what):
    """Returns the bytes of a non-empty input file; `InputFileError` naming it otherwise."""
    check_input_file(path, what)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise InputFileError(f"The {what} '{path}' cannot be read: {error.strerror or error}.") from None
    if not data:
        raise InputFileError(f"The {what} '{path}' is empty.")
    return data


def check_input_file(path, what, error=InputFileError):
    """Raises `error` unless `path` is an existing, non-empty regular file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise error(f"The {what} '{path}' is a folder, not a file.")
    if not os.path.isfile(path):
        raise error(f"No {what} at '{path}'.")
    if os.path.getsize(path) == 0:
        raise error(f"The {what} '{path}' is empty (0 bytes).")


def load_model_file(path):
    """Loads a `.keras` model, turning any failure into one clear sentence.

    The file is checked before Keras reads it (a folder, an empty file, a
    file that is not a zip archive, a truncated or corrupted archive, an
    archive without a model), so that the sentence says what is wrong
    rather than Keras's "File not found" for a file that exists.

    Args:
        path: the `.keras` file (or a legacy `.h5` model).

    Returns:
        The `keras.Model`.

    Raises:
        ModelFileError: the file is missing, not a Keras model, or damaged.

    Example:

    >>> model = load_model_file("runs/mnist-5k/mat.keras")
    """
    path = os.fspath(path)
    check_input_file(path, "model file", ModelFileError)
    _check_model_archive(path)
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for a bad file.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            f"Cannot read '{path}' as a Keras model ({reason[:200]})."
        ) from error


def _check_model_archive(path):
    """Raises `ModelFileError` for a file that cannot be a `.keras` archive."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_HDF5_SIGNATURE))
        if head == _HDF5_SIGNATURE:
            return  # a legacy HDF5 model: Keras's own reader judges it
        if not zipfile.is_zipfile(path):
            if head.startswith(_ZIP_SIGNATURE):  # a zip archive without its end: cut short
                raise ModelFileError(
                    f"Cannot read '{path}' as a Keras model: it is truncated or corrupted "
                    "(a zip archive without its directory)."
                )
            raise ModelFileError(
                f"Cannot read '{path}' as a Keras model: it is not a .keras file (not a zip archive), "
                "damaged or of another kind."
            )
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
    except ModelFileError:
        raise
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EISDIR):
            raise ModelFileError(f"Cannot read '{path}' as a Keras model: {error.strerror}.") from None
        raise ModelFileError(f"Cannot read '{path}' as a Keras model: it is damaged ({error}).") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ModelFileError(
            f"Cannot read '{path}' as a Keras model: it is truncated or corrupted ({error})."
        ) from None
    if damaged is not None:
        raise ModelFileError(
            f"Cannot read '{path}' as a Keras model: it is corrupted, its entry {damaged!r} fails its checksum."
        )
    if "config.json" not in names:
        raise ModelFileError(f"Cannot read '{path}' as a Keras model: a zip archive without config.json.")
