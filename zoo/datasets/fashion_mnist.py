"""Fashion-MNIST: 70,000 real 28 x 28 grey images of clothes, 10 classes.

The four standard IDX files are read from, in order:

1. `data_dir`, when given (the files may be gzipped or not);
2. the folder Debian's package `dataset-fashion-mnist` installs them in
   (`/usr/share/datasets/fashion-mnist`), offline;
3. tensorflow-datasets (`fashion_mnist`), which downloads.

Images come out float32 (N, 28, 28) in [0, 1], labels int64 0-9, with the
standard 60,000 / 10,000 split.
"""

import gzip
import os

import numpy as np

from mat_keras.errors import DataUnavailableError
from mat_keras.errors import InvalidArgumentError
from mat_keras.zoo.datasets._reason import short_reason
from mat_keras.zoo.datasets.base import Dataset

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
TFDS_NAME = "fashion_mnist"

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# The IDX files' stems: (images, labels) of each split.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_SIDE = 28
# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte), then
# the number of dimensions (3 for images, 1 for labels).
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801


def load_fashion_mnist(*, data_dir=None, seed=0):
    """Loads Fashion-MNIST (60,000 train / 10,000 test).

    Args:
        data_dir: folder holding the four IDX files (gzipped or not), or
            None to read them from the Debian package's folder, else through
            tensorflow-datasets (which downloads into its default folder).
        seed: default seed of `train_dataset` (shuffling).

    Returns:
        A `Dataset` named "fashion-mnist"; `Dataset.class_names` lists the
        ten classes.

    Raises:
        DataUnavailableError: the files are not in `data_dir` (or, without
            one, neither installed nor downloadable); or an IDX file is
            malformed (the message names the file).

    Example:

    >>> data = load_fashion_mnist()
    >>> data.x_train.shape, data.x_test.shape
    ((60000, 28, 28), (10000, 28, 28))
    >>> data.class_names[9]
    'Ankle boot'
    """
    data_dir = check_data_dir(data_dir)
    if data_dir is not None:
        arrays, source = _read_folder(data_dir), f"IDX files in {data_dir}"
    elif _folder_has_files(DEBIAN_DIR):
        arrays, source = _read_folder(DEBIAN_DIR), f"Debian package {DEBIAN_PACKAGE}"
    else:
        arrays, source = _read_tfds(), "tensorflow-datasets"
    x_train, y_train, x_test, y_test = arrays
    dataset = Dataset(
        name="fashion-mnist",
        num_classes=len(CLASS_NAMES),
        input_shape=(_SIDE, _SIDE),
        description=(
            f"fashion-mnist: {len(x_train):,} train / {len(x_test):,} test Fashion-MNIST images ({source})"
        ),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        seed=seed,
    )
    # `Dataset` is shared with other engineers' loaders; the class names
    # ride along as a plain attribute rather than a new field.
    dataset.class_names = CLASS_NAMES
    return dataset


def find_idx_file(folder, stem):
    """Returns the path of `stem` or `stem.gz` in `folder`, or None.

    Args:
        folder: the folder to look in.
        stem: the file's name without `.gz`, e.g. `"t10k-labels-idx1-ubyte"`.
    """
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, magic):
    """Reads one IDX file of unsigned bytes into a numpy array.

    Args:
        path: the file, gzipped (`.gz`) or not.
        magic: the expected magic number (`0x803` images, `0x801` labels).

    Returns:
        A uint8 array shaped as the header says.

    Raises:
        DataUnavailableError: a wrong magic number, or fewer bytes than the
            header announces; the message names the file.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as error:
        raise DataUnavailableError(f"Cannot read the IDX file {path} ({short_reason(error)}).") from None
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = raw[:4].hex() or "nothing"
        raise DataUnavailableError(
            f"{path} is not an IDX file of {'images' if magic == _IMAGES_MAGIC else 'labels'}: "
            f"its magic number is 0x{found}, expected 0x{magic:08x}."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataUnavailableError(f"{path} is truncated: its header needs {header} bytes, the file has {len(raw)}.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataUnavailableError(
            f"{path} is truncated or padded: its header announces shape {shape} ({expected:,} bytes), "
            f"the file has {len(raw):,} bytes."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _folder_has_files(folder):
    return all(find_idx_file(folder, stem) for pair in FILES.values() for stem in pair)


def _read_folder(folder):
    """(x_train, y_train, x_test, y_test) from the IDX files in `folder`."""
    if not os.path.isdir(folder):
        raise DataUnavailableError(
            f"The data_dir {folder} is not a folder; pass one that holds the four Fashion-MNIST IDX files."
        )
    missing = [stem for pair in FILES.values() for stem in pair if find_idx_file(folder, stem) is None]
    if missing:
        raise DataUnavailableError(
            f"The folder {folder} lacks the Fashion-MNIST IDX files {', '.join(missing)} "
            f"(gzipped or not); pass a data_dir that holds all four."
        )
    arrays = []
    for images_stem, labels_stem in FILES.values():
        arrays.extend(_read_split(find_idx_file(folder, images_stem), find_idx_file(folder, labels_stem)))
    return tuple(arrays)


def _read_split(images_path, labels_path):
    images = read_idx(images_path, _IMAGES_MAGIC)
    labels = read_idx(labels_path, _LABELS_MAGIC)
    if images.shape[1:] != (_SIDE, _SIDE):
        raise DataUnavailableError(
            f"{images_path} holds images of {images.shape[1:]} pixels; Fashion-MNIST's are {(_SIDE, _SIDE)}."
        )
    if len(labels) != len(images):
        raise DataUnavailableError(
            f"{labels_path} holds {len(labels):,} labels but {images_path} holds {len(images):,} images."
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DataUnavailableError(f"{labels_path} holds label {labels.max()}; Fashion-MNIST's labels are 0-9.")
    return _to_unit_images(images), labels.astype(np.int64)


def _read_tfds():
    from mat_keras.zoo.datasets.tfds_source import load_tfds_arrays

    try:
        x_train, y_train, x_test, y_test, _ = load_tfds_arrays(TFDS_NAME, None, offline_hint="")
    except (DataUnavailableError, ImportError) as error:
        reason = error if isinstance(error, DataUnavailableError) else short_reason(error)
        raise DataUnavailableError(
            f"Fashion-MNIST is not available here: pass data_dir=<a folder holding its four IDX files>, "
            f"or install Debian's package {DEBIAN_PACKAGE} (files in {DEBIAN_DIR}), or let "
            f"tensorflow-datasets download {TFDS_NAME!r} (which failed: {_clause(reason)})."
        ) from None
    return _to_unit_images(x_train), y_train, _to_unit_images(x_test), y_test


def _clause(reason):
    """The parenthesised cause inside `load_tfds_arrays`'s sentence, else the whole text."""
    return str(reason).split(" from here (", 1)[-1].split(");", 1)[0].rstrip(". ")


def _to_unit_images(x):
    """uint8 (N, 28, 28[, 1]) -> float32 (N, 28, 28) in [0, 1]."""
    return (np.asarray(x).reshape(-1, _SIDE, _SIDE) / np.float32(255.0)).astype(np.float32)


def check_data_dir(data_dir):
    """Returns `data_dir` as a string (or None); refuses anything else."""
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise InvalidArgumentError(f"data_dir must be a folder path or None, got {data_dir!r}.")
    return None if data_dir is None else os.fspath(data_dir)
