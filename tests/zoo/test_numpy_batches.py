"""Tests of the numpy batches (`format="numpy"`) of the zoo's datasets.

The numpy batches feed `fit` under JAX and PyTorch, so this module belongs
to the core subset CI runs on every backend. The data are small random
arrays in a `Dataset` built directly, CIFAR-shaped with the CIFAR loader's
normalisation and augmentation. Comparisons with the tf.data pipelines skip
where TensorFlow is not installed.
"""

import math

import keras
import numpy as np
import pytest

from mat_keras.errors import InvalidArgumentError
from mat_keras.zoo.datasets import Dataset
from mat_keras.zoo.datasets.augment import flip_and_rotate
from mat_keras.zoo.datasets.augment import numpy_flip_and_rotate
from mat_keras.zoo.datasets.augment import numpy_rotate
from mat_keras.zoo.datasets.base import NumpyBatches
from mat_keras.zoo.datasets.cifar import CIFAR_MEAN
from mat_keras.zoo.datasets.cifar import CIFAR_STD
from mat_testing import BACKEND
from mat_testing import require_backends
from mat_testing import run_on_backend

pytestmark = pytest.mark.backends

N_TRAIN, N_TEST = 37, 21


def cifar_like(seed=3, **overrides):
    """A CIFAR-shaped `Dataset` of random uint8 images, as `load_cifar10` builds it."""
    rng = np.random.default_rng(0)
    fields = dict(
        name="cifar-like",
        num_classes=10,
        input_shape=(32, 32, 3),
        description="random uint8 images",
        x_train=rng.integers(0, 256, (N_TRAIN, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(N_TRAIN, dtype=np.int64) % 10,
        x_test=rng.integers(0, 256, (N_TEST, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(N_TEST, dtype=np.int64) % 10,
        scale=1.0 / 255.0,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        augmentation=flip_and_rotate,
        numpy_augmentation=numpy_flip_and_rotate,
        seed=seed,
    )
    fields.update(overrides)
    return Dataset(**fields)


@pytest.fixture(scope="module")
def data():
    return cifar_like()


def numpy_epoch(batches):
    """One epoch of numpy batches, concatenated, then the next epoch begun."""
    xs, ys = zip(*(batches[i] for i in range(len(batches))))
    batches.on_epoch_end()
    return np.concatenate(xs), np.concatenate(ys)


def tf_epoch(ds):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(xs), np.concatenate(ys)


def example_ids(x, reference):
    """Which row of `reference` each row of `x` is, checking the values match."""
    x, reference = x.reshape(len(x), -1), reference.reshape(len(reference), -1)
    distances = ((x[:, None, :] - reference[None, :, :]) ** 2).sum(axis=-1)
    ids = distances.argmin(axis=1)
    np.testing.assert_allclose(x, reference[ids], atol=1e-5)
    return ids


def assert_one_sentence(message):
    assert "\n" not in message and message.endswith(".")


# Format selection.


def test_format_defaults_to_the_backends(data):
    expected = BACKEND != "tensorflow"
    assert isinstance(data.train_dataset(8), NumpyBatches) == expected
    assert isinstance(data.test_dataset(8), NumpyBatches) == expected
    assert isinstance(data.train_dataset(8, format="numpy"), NumpyBatches)
    assert isinstance(data.test_dataset(8, format="numpy"), NumpyBatches)


@pytest.mark.parametrize("call", [
    lambda data: data.train_dataset(8, format="jax"),
    lambda data: data.train_dataset(8, format="TF"),
    lambda data: data.test_dataset(8, format=1),
])
def test_bad_format_is_one_sentence(data, call):
    with pytest.raises(InvalidArgumentError) as info:
        call(data)
    message = str(info.value)
    assert_one_sentence(message)
    assert "'tf', 'numpy' or None" in message


def test_numpy_batches_are_a_single_worker_py_dataset(data):
    batches = data.train_dataset(8, format="numpy")
    assert isinstance(batches, keras.utils.PyDataset)
    assert batches.workers == 1 and not batches.use_multiprocessing


# Batches: sizes, values, order.


@pytest.mark.parametrize("batch_size, sizes", [(8, [8, 8, 8, 8, 5]), (37, [37]), (100, [37])])
def test_batch_sizes_and_dtypes(data, batch_size, sizes):
    batches = data.train_dataset(batch_size, format="numpy")
    assert len(batches) == len(sizes)
    for index, size in enumerate(sizes):
        x, y = batches[index]
        assert x.shape == (size, 32, 32, 3) and x.dtype == np.float32
        assert y.shape == (size,) and y.dtype == np.int64
    with pytest.raises(IndexError):
        batches[len(sizes)]


def test_test_batches_are_in_order_and_normalised(data):
    batches = data.test_dataset(5, format="numpy")
    assert len(batches) == 5
    x, y = numpy_epoch(batches)
    expected = (data.x_test / 255.0 - np.array(CIFAR_MEAN)) / np.array(CIFAR_STD)
    np.testing.assert_allclose(x, expected, atol=1e-5)
    assert np.array_equal(x, data.preprocess(data.x_test)) and np.array_equal(y, data.y_test)
    # Never augmented, never shuffled: every epoch is the same.
    again, _ = numpy_epoch(batches)
    assert np.array_equal(again, x)


def test_train_batches_unshuffled_and_unaugmented_are_the_arrays(data):
    x, y = numpy_epoch(data.train_dataset(8, shuffle=False, augment=False, format="numpy"))
    assert np.array_equal(x, data.preprocess(data.x_train)) and np.array_equal(y, data.y_train)


def test_shuffle_is_seeded_and_fresh_every_epoch(data):
    plain = data.preprocess(data.x_train)

    def epochs(seed, count=2):
        batches = data.train_dataset(8, augment=False, seed=seed, format="numpy")
        return [numpy_epoch(batches) for _ in range(count)]

    first, second = epochs(seed=3)
    for x, y in (first, second):
        ids = example_ids(x, plain)
        assert sorted(ids) == list(range(N_TRAIN))  # each example once
        assert np.array_equal(y, data.y_train[ids])
    assert not np.array_equal(first[0], second[0])
    # A new batch source with the same seed repeats both epochs...
    again = epochs(seed=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, (first, second)))
    # ... the load seed is the default...
    assert np.array_equal(epochs(seed=None, count=1)[0][0], first[0])
    # ... and another seed permutes otherwise.
    assert not np.array_equal(epochs(seed=4, count=1)[0][0], first[0])


# Augmentation.


def test_augmentation_is_on_by_default_seeded_and_fresh_every_epoch(data):
    plain = data.preprocess(data.x_train)

    def epochs(seed, count=2):
        batches = data.train_dataset(8, shuffle=False, seed=seed, format="numpy")
        return [numpy_epoch(batches) for _ in range(count)]

    first, second = epochs(seed=3)
    for x, y in (first, second):
        assert x.shape == plain.shape and x.dtype == np.float32
        assert np.array_equal(y, data.y_train)
        assert not np.allclose(x, plain)
    assert not np.array_equal(first[0], second[0])
    again = epochs(seed=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, (first, second)))
    assert not np.array_equal(epochs(seed=4, count=1)[0][0], first[0])
    off, _ = numpy_epoch(data.train_dataset(8, shuffle=False, augment=False, format="numpy"))
    assert np.array_equal(off, plain)


def test_augmentation_missing_for_a_format_is_refused():
    tf_only = cifar_like(numpy_augmentation=None)
    with pytest.raises(InvalidArgumentError) as info:
        tf_only.train_dataset(8, format="numpy")
    message = str(info.value)
    assert_one_sentence(message)
    assert "format='numpy'" in message and "augment=False" in message
    assert isinstance(tf_only.train_dataset(8, augment=False, format="numpy"), NumpyBatches)
    with pytest.raises(InvalidArgumentError):
        cifar_like(augmentation=None).train_dataset(8, format="tf")
    with pytest.raises(InvalidArgumentError):
        cifar_like(augmentation=None, numpy_augmentation=None).train_dataset(8, augment=True, format="numpy")


def test_numpy_rotate_identity_flip_and_quarter_turns():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    same = numpy_rotate(image, [0.0])
    assert np.array_equal(same, image) and same is not image
    quarter = numpy_rotate(image, [math.pi / 2])
    assert np.array_equal(quarter[0, :, :, 0], np.rot90(image[0, :, :, 0]))
    pair = np.repeat(image, 2, axis=0).astype(np.uint8)
    out = numpy_rotate(pair, [0.0, 0.0], [True, False])
    assert out.dtype == np.uint8
    assert np.array_equal(out[0], pair[0, :, ::-1]) and np.array_equal(out[1], pair[1])
    # Flip, then a quarter turn.
    out = numpy_rotate(image, [math.pi / 2], [True])
    assert np.array_equal(out[0, :, :, 0], np.rot90(image[0, :, ::-1, 0]))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_numpy_rotate_matches_tf_rotate(dtype):
    tf = pytest.importorskip("tensorflow")
    from mat_keras.zoo.datasets.augment import rotate

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (96, 32, 32, 3)).astype(dtype)
    limit = math.radians(10.0)
    angles = np.concatenate([[0.0, 0.0, math.pi / 2, -math.pi / 2], rng.uniform(-limit, limit, 92)])
    angles = angles.astype(np.float32)
    flips = rng.random(96) < 0.5
    flips[:2] = [False, True]
    expected = rotate(tf.constant(images), tf.constant(angles), tf.constant(flips)).numpy()
    got = numpy_rotate(images, angles, flips)
    assert got.dtype == expected.dtype
    # Nearest sampling: a sampling point a rounding error away from a pixel
    # boundary may pick the neighbour, so a few pixels may differ.
    assert np.mean(got != expected) <= 1e-3
    assert np.array_equal(got[:4], expected[:4])


def test_numpy_flip_and_rotate_mirrors_about_half_of_the_images():
    images = np.random.default_rng(2).integers(0, 256, (200, 4, 4, 3), dtype=np.uint8)
    out = numpy_flip_and_rotate(images, (3, 4), max_degrees=0.0)
    same = np.all(out == images, axis=(1, 2, 3))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 70 < mirrored.sum() < 130  # Binomial(200, 1/2): mean 100, sd ~7.
    assert np.array_equal(numpy_flip_and_rotate(images, (3, 4), max_degrees=0.0), out)


def test_numpy_flip_and_rotate_stays_within_ten_degrees():
    # As the TensorFlow twin's test: a dot 15 px right of the centre turns
    # by at most 10 degrees (plus 2.7 degrees of nearest-pixel rounding).
    image = np.zeros((1, 33, 33, 1), np.uint8)
    image[0, 16, 31, 0] = 255
    out = numpy_flip_and_rotate(np.repeat(image, 128, axis=0), 5)[..., 0]
    # Moved, not blurred; nearest sampling of a rotation may now and then
    # sample one input pixel twice (or never), in both twins.
    assert set(np.unique(out)) == {0, 255}
    assert np.mean(out.sum(axis=(1, 2), dtype=np.int64) == 255) > 0.9
    _, rows, cols = np.nonzero(out)
    dy, dx = rows - 16, cols - 16
    angles = np.degrees(np.arctan2(-dy, np.abs(dx)))
    assert np.all(np.abs(angles) <= 10.0 + 2.8)
    assert np.abs(angles).max() > 5.0 and (dx < 0).any() and (dx > 0).any()


# The tf.data pipelines and the numpy batches hold the same examples.


def test_numpy_and_tf_batches_hold_the_same_examples(data):
    pytest.importorskip("tensorflow")
    plain = data.preprocess(data.x_train)
    tf_x, tf_y = tf_epoch(data.train_dataset(8, augment=False, format="tf"))
    np_x, np_y = numpy_epoch(data.train_dataset(8, augment=False, format="numpy"))
    tf_ids, np_ids = example_ids(tf_x, plain), example_ids(np_x, plain)
    assert sorted(tf_ids) == sorted(np_ids) == list(range(N_TRAIN))
    assert np.array_equal(tf_y, data.y_train[tf_ids]) and np.array_equal(np_y, data.y_train[np_ids])
    tf_x, tf_y = tf_epoch(data.test_dataset(5, format="tf"))
    np_x, np_y = numpy_epoch(data.test_dataset(5, format="numpy"))
    np.testing.assert_allclose(np_x, tf_x, atol=1e-6)
    assert np.array_equal(np_y, tf_y) and np_y.dtype == tf_y.dtype == np.int64
    # Augmented: other random draws, the same labels, shapes and dtypes.
    tf_x, tf_y = tf_epoch(data.train_dataset(8, format="tf"))
    np_x, np_y = numpy_epoch(data.train_dataset(8, format="numpy"))
    assert tf_x.shape == np_x.shape and tf_x.dtype == np_x.dtype == np.float32
    assert sorted(tf_y) == sorted(np_y)


# Keras takes the numpy batches on every backend.


def test_fit_evaluate_predict_on_numpy_batches(data):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, strides=4),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = data.train_dataset(8, format="numpy")
    history = model.fit(
        train, epochs=2, shuffle=False, validation_data=data.test_dataset(16, format="numpy"), verbose=0
    )
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["val_loss"]))
    assert np.isfinite(model.evaluate(data.test_dataset(16, format="numpy"), verbose=0))
    assert model.predict(data.test_dataset(16, format="numpy"), verbose=0).shape == (N_TEST, 10)
    # fit moved the batches on after each epoch (Keras also begins and ends
    # one to build the model from the first batch).
    assert train.epoch >= 2
    fresh = data.train_dataset(8, format="numpy")
    for _ in range(train.epoch):
        fresh.on_epoch_end()
    assert fresh.epoch == train.epoch and np.array_equal(train[0][0], fresh[0][0])


NUMPY_PATH_SCRIPT = """
import sys

import keras
import numpy as np

from mat_keras.zoo.datasets import Dataset
from mat_keras.zoo.datasets.augment import flip_and_rotate, numpy_flip_and_rotate
from mat_keras.zoo.datasets.cifar import CIFAR_MEAN, CIFAR_STD

rng = np.random.default_rng(0)
data = Dataset(
    name="cifar-like", num_classes=10, input_shape=(32, 32, 3), description="random",
    x_train=rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8), y_train=np.arange(24) % 10,
    x_test=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), y_test=np.arange(8) % 10,
    scale=1 / 255, mean=CIFAR_MEAN, std=CIFAR_STD,
    augmentation=flip_and_rotate, numpy_augmentation=numpy_flip_and_rotate,
)
train = data.train_dataset(8)
for x, y in train:
    assert x.dtype == np.float32 and y.dtype == np.int64
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(train, epochs=1, verbose=0)
model.evaluate(data.test_dataset(8), verbose=0)
print("RESULT", __import__("json").dumps({
    "backend": keras.backend.backend(),
    "batches": type(train).__name__,
    "tensorflow": sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow"),
}))
"""


def test_numpy_path_does_not_import_tensorflow(tmp_path):
    require_backends("jax")
    script = tmp_path / "numpy_path.py"
    script.write_text(NUMPY_PATH_SCRIPT)
    result = run_on_backend(script, "jax")
    assert result == {"backend": "jax", "batches": "NumpyBatches", "tensorflow": []}
