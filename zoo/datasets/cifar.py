"""CIFAR-10 and CIFAR-100 from tensorflow-datasets, with the reference implementation's recipe.

Images stay uint8 `(N, 32, 32, 3)` in memory (a quarter of float32's
footprint); the batch sources augment (training only), cast and normalise
batch by batch with the reference implementation's per-channel mean and standard deviation. The
augmentation comes in two twins, TensorFlow ops for the tf.data pipelines
and numpy for the numpy batches (`mat_keras.zoo.datasets.augment`).
"""

from mat_keras.zoo.datasets.augment import flip_and_rotate
from mat_keras.zoo.datasets.augment import numpy_flip_and_rotate
from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.datasets.tfds_source import load_tfds_arrays

# The reference implementation's normalisation, per RGB channel, of images scaled to [0, 1].
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.247, 0.243, 0.261)


def load_cifar10(*, data_dir=None, seed=0):
    """Loads CIFAR-10 (50,000 train / 10,000 test, 10 classes) with tfds.

    Args:
        data_dir: folder holding prepared tfds data, or None for tfds's
            default folder; tfds downloads into it when the data are missing.
        seed: default seed of `train_dataset` (shuffling, augmentation).

    Returns:
        A `Dataset` named "cifar10" whose training batches are augmented.

    Raises:
        DataUnavailableError: CIFAR-10 is not prepared and cannot be
            downloaded.

    Example:

    >>> data = load_cifar10(data_dir="/data/tensorflow_datasets")
    >>> model.fit(data.train_dataset(128), validation_data=data.test_dataset(512))
    """
    return _load_cifar("cifar10", data_dir, seed)


def load_cifar100(*, data_dir=None, seed=0):
    """Loads CIFAR-100 (50,000 train / 10,000 test, 100 fine classes) with tfds.

    Args:
        data_dir: folder holding prepared tfds data, or None for tfds's
            default folder; tfds downloads into it when the data are missing.
        seed: default seed of `train_dataset` (shuffling, augmentation).

    Returns:
        A `Dataset` named "cifar100" whose training batches are augmented.

    Raises:
        DataUnavailableError: CIFAR-100 is not prepared and cannot be
            downloaded.
    """
    return _load_cifar("cifar100", data_dir, seed)


def _load_cifar(name, data_dir, seed):
    x_train, y_train, x_test, y_test, num_classes = load_tfds_arrays(
        name, data_dir, offline_hint="(no offline copy of CIFAR ships with mat-keras)"
    )
    return Dataset(
        name=name,
        num_classes=num_classes,
        input_shape=tuple(x_train.shape[1:]),
        description=(
            f"{name}: {len(x_train):,} train / {len(x_test):,} test {name.upper()} images "
            "from tensorflow-datasets (training: random flip, rotation up to 10 degrees)"
        ),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        scale=1.0 / 255.0,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        # augment.py imports TensorFlow only when a TensorFlow twin runs.
        augmentation=flip_and_rotate,
        numpy_augmentation=numpy_flip_and_rotate,
        seed=seed,
    )
