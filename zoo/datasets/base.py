"""The `Dataset` container every zoo loader returns, and its batch sources.

A loader reads its source once into numpy arrays. `Dataset` holds them with
the few facts a model needs (class count, input shape) and turns them into
batches on request, in one of two formats with the same semantics:

- "tf": batched, prefetched `tf.data.Dataset`s, the default under the
  TensorFlow backend. TensorFlow appears only in these pipelines (and in the
  augmentation they call), imported when one is built.
- "numpy": `NumpyBatches`, a `keras.utils.PyDataset` of numpy arrays, the
  default under JAX and PyTorch, which need no TensorFlow installed.
"""

import dataclasses
from typing import Callable, Optional

import keras
import numpy as np

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_seed

FORMATS = ("tf", "numpy")

# Tags that keep the numpy batches' two random streams apart.
_SHUFFLE_STREAM = 0
_AUGMENT_STREAM = 1


@dataclasses.dataclass(eq=False, repr=False)
class Dataset:
    """A train/test pair of arrays plus the recipe to feed them to a model.

    Arrays keep the form the loader stores (CIFAR images stay uint8 to save
    memory); `preprocess` and the batch sources turn them into what the
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
            transforms a batch with TensorFlow ops, for the "tf" format. It
            gets the batch as stored (CIFAR: uint8), before the cast and
            normalisation, and a `[2]` int64 `seed` for stateless random ops.
        numpy_augmentation: None, or the numpy twin of `augmentation`, for
            the "numpy" format: a function `(images, seed) -> images` of
            numpy arrays, whose `seed` is a tuple of ints for
            `numpy.random.default_rng`.
        seed: default seed of the training batches (shuffle, augmentation).

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
    numpy_augmentation: Optional[Callable] = None
    seed: int = 0

    def __repr__(self):
        return (
            f"<Dataset {self.name}: {len(self.x_train)} train / "
            f"{len(self.x_test)} test, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}>"
        )

    def preprocess(self, x):
        """Returns `x` as the model takes it: float32, scaled, normalised.

        The map of the tf.data pipelines, in numpy: the numpy batches
        call it, and so can callers that want arrays (a robustness sweep
        over `data.preprocess(data.x_test)`, say).

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

    def train_dataset(self, batch_size, *, shuffle=True, augment=None, seed=None, format=None):
        """Returns the training split in batches, shuffled and augmented.

        Both formats give batches of the same distribution: every example
        once per epoch, reshuffled every epoch, augmented (when on) with
        fresh random draws every epoch, then cast and normalised like
        `preprocess`. They draw from different random generators, so their
        orders and augmentations differ.

        - "tf": shuffling happens on single examples, then batching, then
          one parallel map over whole batches that augments, casts and
          normalises: mapping a batch at a time vectorises the augmentation.
        - "numpy": a `NumpyBatches` that permutes the examples each epoch
          and augments each batch with `numpy_augmentation`, vectorised.

        Args:
            batch_size: examples per batch, at least 1; the last batch of an
                epoch may be smaller.
            shuffle: reshuffle the examples every epoch.
            augment: apply the dataset's augmentation; None means "when the
                dataset has one" (CIFAR: yes, others: no).
            seed: seed of shuffling and augmentation; None uses the seed given
                to `load_dataset`. The same seed and format give the same
                batches.
            format: "tf" for a `tf.data.Dataset`, "numpy" for a
                `NumpyBatches`, or None for "tf" under the TensorFlow backend
                and "numpy" under the others.

        Returns:
            A `tf.data.Dataset` or a `NumpyBatches` (a
            `keras.utils.PyDataset`) of `(x, y)` batches, float32 and int64.

        Example:

        >>> data = mat_keras.zoo.load_dataset("cifar10")
        >>> batches = data.train_dataset(128, format="numpy")
        >>> x, y = batches[0]
        >>> x.shape, x.dtype, y.dtype
        ((128, 32, 32, 3), dtype('float32'), dtype('int64'))
        >>> model.fit(batches, epochs=10, shuffle=False)
        """
        batch_size = check_integer(batch_size, "batch_size")
        format = _check_format(format)
        augment = self._check_augment(augment, format)
        seed = self.seed if seed is None else check_seed(seed, allow_none=False)
        if format == "numpy":
            return NumpyBatches(
                self.x_train,
                self.y_train,
                batch_size,
                preprocess=self.preprocess,
                shuffle=shuffle,
                augmentation=self.numpy_augmentation if augment else None,
                seed=seed,
            )
        return self._tf_train_dataset(batch_size, shuffle, augment, seed)

    def test_dataset(self, batch_size, *, format=None):
        """Returns the test split in batches, in order.

        Inputs are normalised like in training, never augmented.

        Args:
            batch_size: examples per batch, at least 1.
            format: "tf" for a `tf.data.Dataset`, "numpy" for a
                `NumpyBatches`, or None for "tf" under the TensorFlow backend
                and "numpy" under the others.

        Returns:
            A `tf.data.Dataset` or a `NumpyBatches` (a
            `keras.utils.PyDataset`) of `(x, y)` batches, float32 and int64.

        Example:

        >>> model.evaluate(data.test_dataset(512))
        """
        batch_size = check_integer(batch_size, "batch_size")
        if _check_format(format) == "numpy":
            return NumpyBatches(self.x_test, self.y_test, batch_size, preprocess=self.preprocess)
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(batch_size)
        if self._needs_map():
            ds = ds.map(self._normalize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    # The pipelines' pieces.

    def _tf_train_dataset(self, batch_size, shuffle, augment, seed):
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

    def _check_augment(self, augment, format):
        has_any = self.augmentation is not None or self.numpy_augmentation is not None
        if augment is None:
            augment = has_any
        elif not isinstance(augment, bool):
            raise InvalidArgumentError(f"augment must be True, False or None, not {augment!r}.")
        elif augment and not has_any:
            raise InvalidArgumentError(
                f"The dataset {self.name!r} has no augmentation; call train_dataset with augment=None or False."
            )
        # Batches of one format but not the other augmented would train
        # differently without a word: refuse instead.
        function = self.numpy_augmentation if format == "numpy" else self.augmentation
        if augment and function is None:
            other = "tf" if format == "numpy" else "numpy"
            raise InvalidArgumentError(
                f"The dataset {self.name!r} has no augmentation for format={format!r}; "
                f"call train_dataset with format={other!r} or augment=False."
            )
        return augment


class NumpyBatches(keras.utils.PyDataset):
    """Batches of numpy arrays from a `Dataset`, for `fit` on any backend.

    The "numpy" format of `Dataset.train_dataset` and `Dataset.test_dataset`:
    a `keras.utils.PyDataset`, so `model.fit`, `evaluate` and `predict` take
    it under every Keras backend, TensorFlow not needed. Batch `i` of an
    epoch is a pure function of the seed, the epoch index and `i`: the
    examples are a seeded permutation of epoch `epoch` (or in order), the
    augmentation gets the seed `(seed, tag, epoch, i)`. Keras calls
    `on_epoch_end` after each epoch of `fit` (and after the peek at the
    first batch that builds a new model), which moves on to the next
    epoch's permutation and draws; call it yourself when iterating by hand.

    Batches are computed in the calling thread (one worker, no processes).
    Note that `fit(shuffle=True)`, Keras's default, also permutes the order
    of the batches with Python's `random`; pass `shuffle=False` to `fit` for
    exactly this order.

    Args:
        x, y: the arrays of inputs as stored and of labels.
        batch_size: examples per batch; the last batch may be smaller.
        preprocess: function that turns a batch of `x` into float32 model
            inputs (`Dataset.preprocess`).
        shuffle: permute the examples, afresh every epoch.
        augmentation: None, or a function `(images, seed) -> images` applied
            to each batch before `preprocess`; `seed` is a tuple of ints.
        seed: seed of the permutations and the augmentation.

    Example:

    >>> data = mat_keras.zoo.load_dataset("mnist-5k")
    >>> batches = data.train_dataset(32, format="numpy")
    >>> len(batches)  # 4,000 examples
    125
    >>> x, y = batches[0]
    >>> batches.on_epoch_end()  # next epoch: another permutation
    """

    def __init__(self, x, y, batch_size, *, preprocess, shuffle=False, augmentation=None, seed=0):
        super().__init__(workers=1, use_multiprocessing=False)
        self._x = x
        self._y = np.asarray(y, dtype=np.int64)
        self._batch_size = batch_size
        self._preprocess = preprocess
        self._shuffle = shuffle
        self._augmentation = augmentation
        self._seed = seed
        self._epoch = 0
        self._order = self._epoch_order()

    def __len__(self):
        return -(-len(self._x) // self._batch_size)

    @property
    def epoch(self):
        """Index of the current epoch: 0, plus one per `on_epoch_end` call."""
        return self._epoch

    def __getitem__(self, index):
        """Returns batch `index` of the current epoch as `(x, y)`.

        Args:
            index: int in `[0, len(self))`.

        Returns:
            A float32 array of inputs and an int64 array of labels.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} is out of range for {len(self)} batches.")
        rows = self._order[index * self._batch_size : (index + 1) * self._batch_size]
        x = self._x[rows]
        if self._augmentation is not None:
            x = self._augmentation(x, (self._seed, _AUGMENT_STREAM, self._epoch, index))
        return self._preprocess(x), self._y[rows]

    def on_epoch_end(self):
        """Moves on to the next epoch: a new permutation, new augmentation."""
        self._epoch += 1
        self._order = self._epoch_order()

    def _epoch_order(self):
        if not self._shuffle:
            return np.arange(len(self._x))
        rng = np.random.default_rng((self._seed, _SHUFFLE_STREAM, self._epoch))
        return rng.permutation(len(self._x))


def _check_format(format):
    """Returns "tf" or "numpy": `format`, or the backend's default for None."""
    if format is None:
        return "tf" if keras.backend.backend() == "tensorflow" else "numpy"
    if not isinstance(format, str) or format not in FORMATS:
        raise InvalidArgumentError(f"format must be 'tf', 'numpy' or None, not {format!r}.")
    return format
