"""The `Dataset` container every zoo loader returns, and its tf.data pipelines.

A loader reads its source once into numpy arrays. `Dataset` holds them with
the few facts a model needs (class count, input shape) and turns them into
batched, prefetched `tf.data.Dataset`s on request. TensorFlow appears only in
those pipelines: `tf.data` feeds `model.fit` under every Keras backend.
"""

import dataclasses
from typing import Callable, Optional

import numpy as np

from mat_keras.errors import InvalidArgumentError


@dataclasses.dataclass(eq=False, repr=False)
class Dataset:
    """A train/test pair of arrays plus the recipe to feed them to a model.

    Arrays keep the form the loader stores (CIFAR images stay uint8 to save
    memory); `preprocess` and the tf.data pipelines turn them into what the
    model takes: `float32(x) * scale`, then, when `mean` and `std` are
    given, `(x - mean) / std` per channel (last axis).

    Attributes:
        name: registry name, e.g. `"cifar10"`.
        num_classes: number of classes; labels are ints in
            `[0, num_classes)`.
        input_shape: shape of one model input, e.g. `(32, 32, 3)`.
        description: one line naming the data used.
        x_train, y_train, x_test, y_test: numpy arrays; labels are int64.
        scale: factor applied to the inputs before normalisation.
        mean, std: per-channel normalisation, or None for none.
        augmentation: None, or a function `(images, seed) -> images` that
            transforms a batch with TensorFlow ops. It gets the batch as
            stored (CIFAR: uint8), before the cast and normalisation, and a
            `[2]` int64 `seed` for stateless random ops.
        seed: default seed of the training pipeline (shuffle, augmentation).

    Example:

    >>> data = mat_keras.zoo.load_dataset("mnist-5k")
    >>> model.fit(data.train_dataset(32), epochs=20,
    ...           validation_data=data.test_dataset(256))
    """

    name: str
    num_classes: int
    input_shape: tuple
    description: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scale: float = 1.0
    mean: Optional[tuple] = None
    std: Optional[tuple] = None
    augmentation: Optional[Callable] = None
    seed: int = 0

    def __repr__(self):
        return (
            f"<Dataset {self.name}: {len(self.x_train)} train / "
            f"{len(self.x_test)} test, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}>"
        )

    def preprocess(self, x):
        """Returns `x` as the model takes it: float32, scaled, normalised.

        The numpy twin of the pipelines' map, for callers that want arrays
        (a robustness sweep over `data.preprocess(data.x_test)`, say).

        Args:
            x: array of inputs shaped like `x_train`.

        Returns:
            A float32 numpy array of the same shape.
        """
        multiplier, offset = self._affine()
        x = np.asarray(x, dtype=np.float32)
        if multiplier is None:
            return x
        return x * multiplier + offset

    def train_dataset(self, batch_size, *, shuffle=True, augment=None, seed=None):
        """Returns the training split as a batched, prefetched `tf.data.Dataset`.

        Shuffling happens on single examples, then batching, then one parallel
        map over whole batches that augments, casts and normalises: mapping a
        batch at a time vectorises the augmentation.

        Args:
            batch_size: examples per batch, at least 1; the last batch of an
                epoch may be smaller.
            shuffle: reshuffle the examples every epoch.
            augment: apply the dataset's augmentation; None means "when the
                dataset has one" (CIFAR: yes, others: no).
            seed: seed of shuffling and augmentation; None uses the seed given
                to `load_dataset`. The same seed gives the same batches.

        Returns:
            A `tf.data.Dataset` of `(x, y)` batches, float32 and int64.
        """
        batch_size = _check_batch_size(batch_size)
        augment = self._check_augment(augment)
        seed = self.seed if seed is None else check_seed(seed)
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train))
        if shuffle:
            ds = ds.shuffle(len(self.x_train), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        if augment:
            # One stateless seed per batch, fresh every epoch, reproducible
            # from `seed`: parallel map calls then stay deterministic, which
            # stateful random ops (and seeded Keras layers) would not be.
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
            ds = tf.data.Dataset.zip(ds, seeds)
            ds = ds.map(self._augment_and_normalize, num_parallel_calls=tf.data.AUTOTUNE)
        elif self._needs_map():
            ds = ds.map(self._normalize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def test_dataset(self, batch_size):
        """Returns the test split as a batched `tf.data.Dataset`, in order.

        Inputs are normalised like in training, never augmented.

        Args:
            batch_size: examples per batch, at least 1.

        Returns:
            A `tf.data.Dataset` of `(x, y)` batches, float32 and int64.
        """
        batch_size = _check_batch_size(batch_size)
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(batch_size)
        if self._needs_map():
            ds = ds.map(self._normalize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    # The pipelines' pieces.

    def _affine(self):
        """Folds scale, mean and std into `x * multiplier + offset` (float32).

        One multiply-add per value, shared by numpy and TensorFlow so that
        both give the same numbers.
        """
        if self.mean is None and self.std is None:
            if self.scale == 1.0:
                return None, None
            return np.float32(self.scale), np.float32(0.0)
        mean = np.asarray(self.mean if self.mean is not None else 0.0, dtype=np.float64)
        std = np.asarray(self.std if self.std is not None else 1.0, dtype=np.float64)
        multiplier = (self.scale / std).astype(np.float32)
        offset = (-mean / std).astype(np.float32)
        return multiplier, offset

    def _needs_map(self):
        return self._affine()[0] is not None or self.x_train.dtype != np.float32

    def _normalize_batch(self, x, y):
        import tensorflow as tf

        x = tf.cast(x, tf.float32)
        multiplier, offset = self._affine()
        if multiplier is not None:
            x = x * multiplier + offset
        return x, y

    def _augment_and_normalize(self, batch, seed):
        x, y = batch
        return self._normalize_batch(self.augmentation(x, seed), y)

    def _check_augment(self, augment):
        if augment is None:
            return self.augmentation is not None
        if not isinstance(augment, bool):
            raise InvalidArgumentError(f"augment must be True, False or None, not {augment!r}.")
        if augment and self.augmentation is None:
            raise InvalidArgumentError(
                f"The dataset {self.name!r} has no augmentation; call train_dataset with augment=None or False."
            )
        return augment


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be an integer of at least 1, not {batch_size!r}.")
    return int(batch_size)


def check_seed(seed):
    """Returns `seed` as an int, or raises InvalidArgumentError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, not {seed!r}.")
    return int(seed)

