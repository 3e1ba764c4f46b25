"""Fashion-MNIST: the IDX loader, its errors, the task and the CNN.

Malformed files are written by the tests; the real files come from Debian's
package dataset-fashion-mnist. Tests that need them skip where it is not
installed, and fail instead when MAT_KERAS_REQUIRE_DATA=1 (CI sets it).
Training runs on slices of a few hundred images.
"""

import gzip
import os

import numpy as np
import pytest

from mat_keras import cli, zoo
from mat_keras.errors import DataUnavailableError, InvalidArgumentError
from mat_keras.zoo import tasks
from mat_keras.zoo.datasets import fashion_mnist
from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.training import train_two_phase

REQUIRE_DATA = os.environ.get("MAT_KERAS_REQUIRE_DATA", "") not in ("", "0")
IMAGES, LABELS = 0x803, 0x801


def require_real_data():
    """Skips unless the Debian package's files are installed (fails in CI)."""
    if not fashion_mnist._folder_has_files(fashion_mnist.DEBIAN_DIR):
        message = (
            f"needs the real Fashion-MNIST files of the Debian package {fashion_mnist.DEBIAN_PACKAGE} "
            f"(apt-get install {fashion_mnist.DEBIAN_PACKAGE}) in {fashion_mnist.DEBIAN_DIR}"
        )
        if REQUIRE_DATA:
            pytest.fail(message + " (MAT_KERAS_REQUIRE_DATA is set)")
        pytest.skip(message)


def write_idx(path, array, magic=None, gz=False):
    """Writes `array` (uint8) as an IDX file; `magic` overrides the header's."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x800 + array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with (gzip.open if gz else open)(path, "wb") as stream:
        stream.write(header + array.tobytes())
    return str(path)


def write_split_files(folder, x_train, y_train, x_test, y_test, gz=True):
    """The four files of a Fashion-MNIST folder; test files plain when `gz` is 'mixed'."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", x_train, gz=bool(gz))
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", y_train, gz=bool(gz))
    # The test split unzipped: a folder may mix both forms.
    write_idx(folder / "t10k-images-idx3-ubyte", x_test)
    write_idx(folder / "t10k-labels-idx1-ubyte", y_test)
    return folder


def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


@pytest.fixture
def small_folder(tmp_path):
    return write_split_files(tmp_path / "fashion", *synthetic(40), *synthetic(20, seed=1))


# The loader on files written here.


def test_reads_gzipped_and_plain_idx_files_from_data_dir(small_folder):
    data = zoo.load_dataset("fashion-mnist", data_dir=str(small_folder))
    x_train, y_train = synthetic(40)
    x_test, y_test = synthetic(20, seed=1)
    assert data.name == "fashion-mnist" and data.num_classes == 10 and data.input_shape == (28, 28)
    assert data.x_train.shape == (40, 28, 28) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_train, x_train / np.float32(255))
    np.testing.assert_array_equal(data.x_test, x_test / np.float32(255))
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.class_names[0] == "T-shirt/top" and len(data.class_names) == 10
    x, y = data.train_dataset(16, format="numpy")[0]
    assert x.shape == (16, 28, 28) and y.dtype == np.int64
    batches = list(data.test_dataset(8, format="tf").as_numpy_iterator())
    assert sum(len(y) for _, y in batches) == 20


def _error(folder):
    with pytest.raises(DataUnavailableError) as info:
        fashion_mnist.load_fashion_mnist(data_dir=str(folder))
    message = str(info.value)
    assert "\n" not in message and message.endswith(".")
    return message


def test_wrong_magic_number_names_the_file(small_folder):
    path = write_idx(small_folder / "t10k-labels-idx1-ubyte", synthetic(20)[1], magic=0x803)
    message = _error(small_folder)
    assert path in message and "magic number" in message and "0x00000801" in message


def test_truncated_file_names_the_file(small_folder):
    path = small_folder / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as stream:
        raw = stream.read()
    with gzip.open(path, "wb") as stream:
        stream.write(raw[:-100])
    message = _error(small_folder)
    assert str(path) in message and "truncated" in message


def test_header_cut_short_names_the_file(small_folder):
    path = small_folder / "t10k-images-idx3-ubyte"
    path.write_bytes(IMAGES.to_bytes(4, "big") + b"\x00\x00")
    message = _error(small_folder)
    assert str(path) in message and "header" in message


def test_label_count_mismatch_names_the_files(small_folder):
    labels = write_idx(small_folder / "t10k-labels-idx1-ubyte", synthetic(19)[1])
    message = _error(small_folder)
    assert labels in message and "19 labels" in message and "20 images" in message


def test_a_file_that_is_not_gzip_names_the_file(small_folder):
    path = small_folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"not a gzip stream at all")
    message = _error(small_folder)
    assert str(path) in message


def test_data_dir_without_the_files_lists_them(tmp_path):
    (tmp_path / "empty").mkdir()
    message = _error(tmp_path / "empty")
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path / "empty") in message
    message = _error(tmp_path / "missing")
    assert "not a folder" in message


def test_no_source_at_all_is_one_sentence_naming_all_three(tmp_path, monkeypatch):
    from mat_keras.zoo.datasets import tfds_source

    def offline(name, data_dir, offline_hint):
        raise DataUnavailableError(
            f"The tensorflow-datasets dataset {name!r} is not prepared in x and cannot be downloaded "
            "from here (ConnectionError: Network is unreachable); pass data_dir=..."
        )

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "not-installed"))
    monkeypatch.setattr(tfds_source, "load_tfds_arrays", offline)
    with pytest.raises(DataUnavailableError) as info:
        zoo.load_dataset("fashion-mnist")
    message = str(info.value)
    assert "\n" not in message and message.count(". ") == 0
    for option in ("data_dir", fashion_mnist.DEBIAN_PACKAGE, "tensorflow-datasets", "Network is unreachable"):
        assert option in message


def test_data_dir_must_be_a_path():
    with pytest.raises(InvalidArgumentError, match="data_dir must be a folder path"):
        fashion_mnist.load_fashion_mnist(data_dir=3)


# The real files.


def test_the_real_files():
    require_real_data()
    data = zoo.load_dataset("fashion-mnist")
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.x_train.dtype == np.float32 and data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    # The standard split is balanced: 6,000 / 1,000 images of each class.
    np.testing.assert_array_equal(np.bincount(data.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_test), [1000] * 10)
    # The files' first images are ankle boots, train and test alike.
    assert data.y_train[0] == data.y_test[0] == 9 and data.class_names[9] == "Ankle boot"
    assert fashion_mnist.DEBIAN_PACKAGE in data.description


# The task and the CNN.


def test_the_task_keeps_one_recipe_per_model():
    task = tasks.get_task("fashion-mnist")
    mlp, cnn = task.for_model("mlp"), task.for_model("cnn")
    assert task.for_model() == mlp and mlp.constructor_name() == "mnist_mlp"
    assert cnn.constructor_name() == "fashion_cnn" and cnn.model == "cnn"
    assert (mlp.epochs, mlp.clean_epochs, mlp.batch_size, mlp.clip_w) == (30, 15, 32, 2.5)
    assert cnn.batch_size == 128 and cnn.lr_milestones
    # Other tasks have a single recipe.
    assert tasks.get_task("mnist-5k").for_model() == tasks.get_task("mnist-5k")
    with pytest.raises(InvalidArgumentError, match="has no model 'rnn'"):
        task.for_model("rnn")


def test_fashion_cnn_builds_and_checks_its_arguments():
    model = zoo.fashion_cnn()
    assert model.count_params() == 421930 and model.output_shape == (None, 10)
    assert zoo.fashion_cnn(input_shape=(28, 28, 1)).input_shape == (None, 28, 28, 1)
    assert zoo.fashion_cnn(filters=(8,), dense_units=16).count_params() < 30000
    with pytest.raises(InvalidArgumentError) as info:
        zoo.fashion_cnn(input_shape=(32, 32, 3))
    assert "28 x 28 grey images" in str(info.value) and "(32, 32, 3)" in str(info.value)
    for bad in ({"filters": ()}, {"filters": (8, 8, 8, 8)}, {"dense_units": 0}, {"dropout": 1.0}):
        with pytest.raises(InvalidArgumentError):
            zoo.fashion_cnn(**bad)


def test_the_cnn_task_given_data_of_another_shape_is_one_sentence():
    rng = np.random.default_rng(0)
    colour = Dataset(
        name="colour", num_classes=10, input_shape=(32, 32, 3), description="colour",
        x_train=rng.random((8, 32, 32, 3), dtype=np.float32), y_train=np.zeros(8, np.int64),
        x_test=rng.random((4, 32, 32, 3), dtype=np.float32), y_test=np.zeros(4, np.int64),
    )
    with pytest.raises(InvalidArgumentError) as info:
        train_two_phase(tasks.get_task("fashion-mnist"), colour, model_name="cnn", epochs=2, clean_epochs=1)
    message = str(info.value)
    assert "\n" not in message and "fashion_cnn takes 28 x 28 grey images" in message


def _real_slice(tmp_path, n_train=512, n_test=256):
    """A data_dir of the first images of the real files (synthetic where absent)."""
    if fashion_mnist._folder_has_files(fashion_mnist.DEBIAN_DIR):
        data = fashion_mnist.load_fashion_mnist()
        to_bytes = lambda x: np.round(x * 255).astype(np.uint8)  # noqa: E731
        arrays = (to_bytes(data.x_train[:n_train]), data.y_train[:n_train],
                  to_bytes(data.x_test[:n_test]), data.y_test[:n_test])
    else:
        arrays = (*synthetic(n_train), *synthetic(n_test, seed=1))
    return write_split_files(tmp_path / "slice", *arrays)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_mat_keras_train_runs_the_task_on_a_slice(model, tmp_path, capsys):
    folder = _real_slice(tmp_path)
    argv = ["train", "--task", "fashion-mnist", "--model", model, "--data-dir", str(folder),
            "--epochs", "2", "--clean-epochs", "1", "--draws", "2", "--sds", "0,0.2",
            "--out-dir", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist: 512 train / 256 test" in out and "vanilla" in out and "MAT" in out
    assert (tmp_path / "run" / "sweep.json").is_file()


# The shipped weights.

FASHION_ENTRIES = (
    "mnist_mlp-vanilla-fashionmnist",
    "mnist_mlp-mat-fashionmnist",
    "fashion_cnn-vanilla-fashionmnist",
    "fashion_cnn-mat-fashionmnist",
)
# Independent draws of the offline check: levels and draws per level.
CHECK_SDS = (0.1, 0.2)
CHECK_DRAWS = 3


def _package_registry():
    from mat_keras.zoo.registry import Registry

    return Registry.load()


def test_the_fashion_entries_are_shipped_and_small():
    registry = _package_registry()
    for name in FASHION_ENTRIES:
        entry = registry.get(name)
        assert registry.shipped_file(entry) is not None and entry.size <= 3_000_000
        assert entry.dataset == "fashion-mnist" and entry.recipe["task"] == "fashion-mnist"
        assert entry.sweep["draws"] == 10 and entry.sweep["seed"] == 0
        assert "10,000 test" in entry.sweep["data"]
    # The MNIST MLP's bare variants still name the mnist-5k weights.
    assert registry.resolve("mat", "mnist_mlp").name == "mnist_mlp-mat-mnist5k"
    assert registry.resolve("mat", "fashion_cnn").name == "fashion_cnn-mat-fashionmnist"
    assert registry.get("fashion_cnn-vanilla-fashionmnist").sweep["mean"][0] >= 0.90


@pytest.mark.parametrize("name", FASHION_ENTRIES)
def test_shipped_weights_offline_reproduce_the_registry_sweep(name, tmp_path, monkeypatch):
    """Within sampling error, on the real test images, without any download.

    Noise-free accuracy is deterministic: it must match to one test image.
    At CHECK_SDS, CHECK_DRAWS fresh draws (another seed than the build's)
    must agree with the registry's 10-draw mean within 4 sigma, sigma^2 =
    s^2 (1/10 + 1/CHECK_DRAWS) with s the registry's spread over draws.
    """
    import mat_keras as mat
    from mat_keras.zoo import weights as weights_lib

    require_real_data()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    # A mirror nobody listens on: any download attempt would fail loudly.
    monkeypatch.setenv(weights_lib.BASE_URL_ENV, "http://127.0.0.1:9/")
    entry = _package_registry().get(name)
    model = getattr(zoo, entry.model)(weights=name)
    data = zoo.load_dataset("fashion-mnist")
    sds = entry.sweep["sds"]
    clean = mat.robustness_sweep(model, data.test_dataset(500), sds=[0.0], draws=1, seed=0, verbose=0)
    assert abs(clean.mean()[0] - entry.sweep["mean"][sds.index(0.0)]) <= 1.5e-4
    result = mat.robustness_sweep(model, data.test_dataset(500), sds=list(CHECK_SDS), draws=CHECK_DRAWS,
                                  seed=1, verbose=0)
    for i, sd in enumerate(CHECK_SDS):
        mean, spread = entry.sweep["mean"][sds.index(sd)], entry.sweep["std"][sds.index(sd)]
        tolerance = 4 * spread * np.sqrt(1 / entry.sweep["draws"] + 1 / CHECK_DRAWS) + 1e-4
        assert abs(result.mean()[i] - mean) <= tolerance, (sd, result.mean()[i], mean, tolerance)
    assert not os.path.isdir(weights_lib.weights_cache_dir()) or not os.listdir(weights_lib.weights_cache_dir())
