"""Reads a tensorflow-datasets image dataset into numpy arrays.

The one place the zoo talks to tensorflow-datasets: it prepares the dataset
(downloading it when it is not in `data_dir` yet) and turns a failed download
into one clear `DataUnavailableError` instead of tfds's traceback.
"""

import numpy as np

from mat_keras.errors import DataUnavailableError
from mat_keras.zoo.datasets._reason import short_reason

# Examples per batch while copying a split out of tf.data into numpy. Whole
# splits in one batch (`batch_size=-1`) would be simpler but need a known
# cardinality, which `tfds.testing.mock_data` does not provide.
_COPY_BATCH = 8192


def load_tfds_arrays(name, data_dir, offline_hint):
    """Returns the train and test splits of a tfds dataset as numpy arrays.

    Args:
        name: tfds name, e.g. `"cifar10"`.
        data_dir: folder holding prepared tfds data (the folder that contains
            `<name>/<version>/`), or None for tfds's default
            (`~/tensorflow_datasets`).
        offline_hint: end of the error sentence saying what else to use,
            e.g. `"or use the offline dataset 'mnist-5k'"`.

    Returns:
        `(x_train, y_train, x_test, y_test, num_classes)`, images as stored
        (uint8) and labels as int64.

    Raises:
        DataUnavailableError: the dataset is not prepared in `data_dir` and
            cannot be downloaded from here.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    try:
        # A no-op when the data are already prepared in `data_dir`.
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001 -- network stacks raise anything.
        where = data_dir if data_dir is not None else "tfds's default folder (~/tensorflow_datasets)"
        reason = short_reason(error)
        # `from None` keeps tfds's traceback out of the user's sight; it
        # stays reachable as `__context__` for debugging.
        raise DataUnavailableError(
            f"The tensorflow-datasets dataset {name!r} is not prepared in {where} and cannot be downloaded "
            f"from here ({reason}); pass data_dir=<a folder holding prepared tfds data for {name!r}> "
            f"{offline_hint}."
        ) from None
    x_train, y_train = _split_arrays(builder, "train")
    x_test, y_test = _split_arrays(builder, "test")
    num_classes = builder.info.features["label"].num_classes
    return x_train, y_train, x_test, y_test, num_classes


def _split_arrays(builder, split):
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    images, labels = [], []
    for x, y in tfds.as_numpy(ds.batch(_COPY_BATCH)):
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)

