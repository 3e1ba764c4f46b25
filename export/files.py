"""Writing table files: streamed NPZ, vectorised CSV, checksums, atomic folders.

NPZ files are written uncompressed (`np.load` reads them as usual), one
array at a time, from blocks: an array derived from another (conductances
from level indices) never exists whole in memory. Zip entries carry a fixed
timestamp, so the same tables give the same bytes and the same sha256.
"""

import contextlib
import hashlib
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np

from mat_keras import io_utils
from mat_keras.export.errors import OutputExistsError, TableIntegrityError

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_HASH_BLOCK = 1 << 20


class NpzWriter:
    """Writes an uncompressed `.npz` one array, or one block, at a time.

    Example:

    >>> with NpzWriter("layer.npz") as npz:
    ...     npz.write("levels", levels)
    ...     npz.write_blocks("g_uS", np.float32, levels.shape,
    ...                      (table[levels[i:i + 100]] for i in range(0, len(levels), 100)))
    """

    def __init__(self, path):
        self._zip = zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True)

    def write(self, name, array):
        """Writes `array` under `name`."""
        array = np.asarray(array)
        self.write_blocks(name, array.dtype, array.shape, [array])

    def write_blocks(self, name, dtype, shape, blocks):
        """Writes an array of `dtype` and `shape` from C-order `blocks`.

        Args:
            name: the key `np.load` will show.
            dtype: the array's dtype.
            shape: the array's shape.
            blocks: iterable of arrays whose flattened concatenation is the
                array in C order.
        """
        dtype = np.dtype(dtype)
        info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_STORED
        header = {
            "descr": np.lib.format.dtype_to_descr(dtype),
            "fortran_order": False,
            "shape": tuple(int(n) for n in shape),
        }
        expected = int(np.prod(header["shape"], dtype=np.int64)) * dtype.itemsize
        written = 0
        with self._zip.open(info, "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            for block in blocks:
                block = np.ascontiguousarray(block, dtype=dtype)
                member.write(memoryview(block).cast("B"))
                written += block.nbytes
        if written != expected:
            raise AssertionError(f"NPZ array {name}: wrote {written} bytes, expected {expected}.")

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def sha256_of(path):
    """Returns the hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def format_float32(values):
    """Shortest decimal strings that read back as the same float32 values."""
    return [
        np.format_float_positional(np.float32(v), unique=True, trim="0") for v in values
    ]


def write_csv(path, header, prefix_rows, prefix_cols, codes, suffixes):
    """Writes a CSV of a tile without a Python loop per cell.

    Each line is `prefix_rows[r] + prefix_cols[c] + suffixes[codes[r, c]]`:
    the row and column strings are made once per row/column, the rest of a
    line (levels and conductances) takes few distinct values and is made
    once per value; numpy joins them cell by cell in C.

    Args:
        path: output file.
        header: the first line, without newline.
        prefix_rows: strings for each row (e.g. `"3,"`).
        prefix_cols: strings for each column (e.g. `"7,"`).
        codes: integer array `(rows, cols)` indexing `suffixes`.
        suffixes: strings for the rest of a line.
    """
    rows = np.array(prefix_rows, dtype=object)
    cols = np.array(prefix_cols, dtype=object)
    tails = np.array(suffixes, dtype=object)
    lines = rows[:, None] + cols[None, :] + tails[codes]
    with open(path, "w", newline="") as file:
        file.write(header + "\n")
        if lines.size:
            file.write("\n".join(lines.ravel().tolist()))
            file.write("\n")


def safe_name(text):
    """A file-name fragment of `text`: letters, digits, `_`, `-` and `.` kept."""
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in text)
    return cleaned.strip(".") or "layer"


def check_output_dir(out_dir, overwrite):
    """Checks `out_dir` may be written; returns it as a `Path`.

    Raises:
        OutputExistsError: it exists and `overwrite` is False, or it is a
            file, or it is a non-empty folder that holds no tables, or it
            is named as a staging folder.
    """
    out_dir = Path(out_dir)
    if is_staging_folder(out_dir):
        raise OutputExistsError(
            f"'{out_dir}' is named as an export's temporary folder, which the next export removes; choose another name."
        )
    if not out_dir.exists():
        return out_dir
    if not out_dir.is_dir():
        raise OutputExistsError(f"Output path '{out_dir}' exists and is not a folder.")
    if not overwrite:
        raise OutputExistsError(
            f"Output folder '{out_dir}' exists; pass overwrite=True (--overwrite) to replace it."
        )
    # Guard against replacing an unrelated folder (`--overwrite ~`).
    if any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists():
        raise OutputExistsError(
            f"Output folder '{out_dir}' is not empty and holds no manifest.json; refusing to replace it."
        )
    return out_dir


def staging_prefixes(out_dir):
    """The temporary names `staged_folder` gives next to `out_dir`: `(staging, old)` prefixes.

    A folder of either name is never a finished table folder: the tables
    appear under `out_dir` only by the final rename.
    """
    name = Path(out_dir).name
    return f".{name}.partial-", f".{name}.old-"


def is_staging_folder(path):
    """True for a folder named as `staged_folder`'s temporary ones (`.chip.partial-<pid>-...`)."""
    return re.fullmatch(r"\..+\.(partial|old)-\d+-[0-9a-f]+", Path(path).name) is not None


@contextlib.contextmanager
def staged_folder(out_dir, overwrite=False):
    """Yields a temporary folder next to `out_dir`, renamed to it on success.

    On any error, Ctrl-C or SIGTERM (which the CLI turns into an exception)
    the temporary folder is removed and `out_dir` is left as it was. With
    `overwrite`, an existing `out_dir` is moved aside, replaced, then
    deleted. The temporary names carry this process's pid: what a killed
    export left (SIGKILL, power loss) is removed by the next export to the
    same place, and a previous table folder it had moved aside is put back.

    Raises:
        OutputExistsError: see `check_output_dir`.
        OutputPathError: the folder cannot be written (read-only place,
            full disk, a file where a folder is expected).

    Example:

    >>> with staged_folder("chip/") as staging:
    ...     (staging / "manifest.json").write_text("{}")
    """
    with io_utils.writing(out_dir):
        recover_stale(out_dir)
        out_dir = check_output_dir(out_dir, overwrite)
        parent = out_dir.absolute().parent
        # Parent folders made here are removed again on failure.
        created = [folder for folder in (parent, *parent.parents) if not folder.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        staging = _fresh_dir(parent, staging_prefixes(out_dir)[0])
        try:
            yield staging
            _commit(staging, out_dir, overwrite)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            for folder in created:  # deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise


def recover_stale(out_dir):
    """Cleans up after exports to `out_dir` whose process was killed.

    Their staging folders are removed; a previous table folder that one had
    moved aside to replace it is renamed back when `out_dir` is missing (the
    kill came between the two renames), else removed.

    Returns:
        The paths removed or restored.
    """
    out_dir = Path(out_dir).absolute()
    staging, old = staging_prefixes(out_dir)
    found = []
    for path in io_utils.stale_entries(out_dir.parent, staging):
        io_utils.remove_path(path)
        found.append(path)
    for path in io_utils.stale_entries(out_dir.parent, old):
        if out_dir.exists():
            io_utils.remove_path(path)
        else:
            os.rename(path, out_dir)
        found.append(path)
    return found


def _fresh_dir(parent, prefix):
    # os.mkdir honours the umask, unlike tempfile.mkdtemp (mode 0700).
    while True:
        path = parent / io_utils.owned_name(prefix)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def _commit(staging, out_dir, overwrite):
    out_dir = out_dir.absolute()
    if out_dir.exists():
        check_output_dir(out_dir, overwrite)
        old = _fresh_dir(out_dir.parent, staging_prefixes(out_dir)[1])
        os.rmdir(old)
        os.rename(out_dir, old)
        try:
            os.rename(staging, out_dir)
        except OSError:
            os.rename(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.rename(staging, out_dir)
    except OSError as error:
        # Someone created `out_dir` since the check.
        raise OutputExistsError(f"Output folder '{out_dir}' appeared while writing; not replaced.") from error


def resolve_inside(root, relative):
    """Returns `root / relative`, refusing paths that leave `root`.

    Raises:
        TableIntegrityError: `relative` is absolute or climbs out of `root`.
    """
    candidate = Path(str(relative))
    if candidate.is_absolute() or ".." in candidate.parts:
        raise TableIntegrityError(f"File name '{relative}' leaves the tables folder.")
    return Path(root) / candidate
