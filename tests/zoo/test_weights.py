"""Tests of the pretrained-weights registry, download, cache, loading and builds.

Downloads go to a loopback HTTP server started in the test process; the
Keras home (and so the cache) is a temporary folder in every test.

Tolerances:

- The shipped files swept with the registry's seed see the very same noise
  draws as the build did (same weights, same `SeedGenerator` stream), so the
  figures must agree up to float summation order: at most 1 of the 1,000
  test images per draw, |delta mean| <= 0.001.
- A rebuild from scratch is compared within sampling error: per level,
  |delta mean| <= 4 sigma with sigma^2 = (s1^2 + s2^2) / draws (the draws'
  spread) + 2 p (1 - p) / n_test (each model's accuracy as a binomial estimate
  on n_test images, standing in for run-to-run training variation, which is
  zero where training is bit-reproducible, as on this project's machine).
"""

import hashlib
import http.server
import json
import math
import os
import shutil
import threading
import types

import numpy as np
import pytest

import keras

import mat_keras as mat
from mat_keras import cli, zoo
from mat_keras.errors import DataUnavailableError, InvalidArgumentError, ModelFileError
from mat_keras.zoo import building
from mat_keras.zoo import weights as weights_lib
from mat_keras.zoo.registry import Registry, WeightsEntry

PACKAGE = Registry.load()
MAT_ENTRY = PACKAGE.resolve("mat", "mnist_mlp")
SHIPPED_MAT = PACKAGE.shipped_file(MAT_ENTRY)
N_TEST = 1000  # mnist-5k test images


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets an empty Keras home and no mirror from the environment."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(weights_lib.BASE_URL_ENV, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 serving `tmp_path/mirror`, counting GETs."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # Keep the test output clean.
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            thread.join()
            stopped.append(True)

    yield types.SimpleNamespace(
        folder=folder, hits=hits, url=f"http://127.0.0.1:{httpd.server_address[1]}/", stop=stop
    )
    stop()


def _remote_registry(tmp_path, name="remote-mat", sha256=None, base_url=None):
    """A registry (saved in its own folder, so nothing is 'shipped') with one
    entry for a copy of the shipped MAT file published as `<name>.weights.h5`."""
    entry = WeightsEntry(**{
        **MAT_ENTRY.to_dict(),
        "name": name,
        "file": f"{name}.weights.h5",
        "sha256": sha256 or MAT_ENTRY.sha256,
    })
    registry = Registry(path=str(tmp_path / "registry" / "registry.json"), base_url=base_url,
                        entries={name: entry})
    registry.save()
    return Registry.load(registry.path)


def _publish(server, name="remote-mat"):
    shutil.copyfile(SHIPPED_MAT, server.folder / f"{name}.weights.h5")


def _cache_listing():
    folder = weights_lib.weights_cache_dir()
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def _sweep(model, entry):
    data = zoo.load_dataset(entry.dataset)
    return mat.robustness_sweep(
        model, data.test_dataset(256), sds=entry.sweep["sds"], draws=entry.sweep["draws"],
        seed=entry.sweep["seed"], verbose=0,
    )


def _sampling_tolerance(entry_a, entry_b):
    """4 sigma per level, sigma as in the module docstring."""
    a, b = entry_a.sweep, entry_b.sweep
    tolerance = []
    for mean, s1, s2 in zip(a["mean"], a["std"], b["std"]):
        variance = (s1**2 + s2**2) / a["draws"] + 2 * mean * (1 - mean) / N_TEST
        tolerance.append(4 * math.sqrt(variance))
    return np.array(tolerance)


# The packaged registry and the shipped files.


def test_packaged_registry_points_only_at_files_that_exist():
    for entry in PACKAGE.entries.values():
        path = PACKAGE.shipped_file(entry)
        if path is None:
            # Only published files may be missing here, and they need a download location.
            assert PACKAGE.base_url, f"{entry.name} is neither shipped nor published"
            continue
        assert weights_lib.file_sha256(path) == entry.sha256 and os.path.getsize(path) == entry.size
        assert entry.size <= 3_000_000  # Small enough to ship in the wheel.
        model = getattr(zoo, entry.model)(**building._as_kwargs(entry.model_kwargs))
        weights_lib.load_weights_file(model, path, entry.model)
        assert len(entry.sweep["mean"]) == len(entry.sweep["std"]) == len(entry.sweep["sds"])


def test_the_shipped_mnist_5k_weights():
    assert {"mnist_mlp-vanilla-mnist5k", "mnist_mlp-mat-mnist5k"} <= set(PACKAGE.names())
    for variant in ("vanilla", "mat"):
        entry = PACKAGE.resolve(variant, "mnist_mlp")
        assert PACKAGE.shipped_file(entry) is not None
        assert entry.sweep["sds"] == [0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3]
        assert entry.sweep["draws"] == 10 and entry.sweep["seed"] == 0
        assert entry.dataset == "mnist-5k" and entry.recipe["task"] == "mnist-5k"
    mat_entry = PACKAGE.resolve("mat", "mnist_mlp")
    assert mat_entry.training_noise["config"]["sd"] == 0.2
    assert PACKAGE.resolve("vanilla", "mnist_mlp").training_noise is None
    # The claim the shipped pair stands for: MAT keeps far more accuracy at sd 0.2.
    assert mat_entry.accuracy_at(0.2) > PACKAGE.resolve("vanilla", "mnist_mlp").accuracy_at(0.2) + 0.1


@pytest.mark.parametrize("variant", ["mat", "vanilla"])
def test_shipped_weights_offline_reproduce_the_registry_sweep(variant, monkeypatch):
    # A mirror nobody listens on: any download attempt would fail loudly.
    monkeypatch.setenv(weights_lib.BASE_URL_ENV, "http://127.0.0.1:9/")
    entry = PACKAGE.resolve(variant, "mnist_mlp")
    model = zoo.mnist_mlp(weights=variant)
    result = _sweep(model, entry)
    np.testing.assert_allclose(result.mean(), entry.sweep["mean"], atol=0.001)
    np.testing.assert_allclose(result.std(), entry.sweep["std"], atol=0.001)
    assert _cache_listing() == []


def test_weights_load_with_and_without_the_wrapper():
    plain = zoo.mnist_mlp(weights="mnist_mlp-mat-mnist5k")
    # Plain Keras reads the file too: it is an ordinary .weights.h5 file.
    reference = zoo.mnist_mlp()
    reference.load_weights(SHIPPED_MAT)
    assert _same_weights(plain, reference)
    assert _same_weights(mat.strip(mat.wrap(plain, noise=0.2)), plain)
    robust = mat.wrap(zoo.mnist_mlp(), noise=0.2, seed=0)
    weights_lib.load_zoo_weights(robust, "mat", "mnist_mlp")
    assert _same_weights(mat.strip(robust), plain)
    x = np.random.default_rng(0).random((4, 28, 28)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(robust(x, training=False)),
        keras.ops.convert_to_numpy(plain(x)), rtol=1e-6, atol=1e-6,
    )


def test_none_keeps_the_initialisation():
    keras.utils.set_random_seed(0)
    a = zoo.mnist_mlp(weights=None)
    keras.utils.set_random_seed(0)
    assert _same_weights(a, zoo.mnist_mlp())


# Downloads from a loopback server.


def test_download_verifies_then_uses_the_cache(server, tmp_path):
    _publish(server)
    registry = _remote_registry(tmp_path)
    entry = registry.get("remote-mat")
    assert weights_lib.weights_status(entry, registry) == "not cached"

    first = weights_lib.load_zoo_weights(zoo.mnist_mlp(), "remote-mat", "mnist_mlp",
                                         registry=registry, base_url=server.url)
    assert server.hits == ["/remote-mat.weights.h5"]
    cached = os.path.join(weights_lib.weights_cache_dir(), "remote-mat.weights.h5")
    assert weights_lib.weights_cache_dir().startswith(str(tmp_path / "keras_home" / "mat_keras" / "weights"))
    assert weights_lib.file_sha256(cached) == entry.sha256
    assert _cache_listing() == ["remote-mat.weights.h5"]  # No staging folder left.
    assert weights_lib.weights_status(entry, registry) == "cached"

    second = weights_lib.load_zoo_weights(zoo.mnist_mlp(), "remote-mat", "mnist_mlp",
                                          registry=registry, base_url=server.url)
    assert len(server.hits) == 1
    server.stop()
    third = weights_lib.load_zoo_weights(zoo.mnist_mlp(), "remote-mat", "mnist_mlp", registry=registry)
    assert _same_weights(first, second) and _same_weights(first, third)
    assert _same_weights(first, zoo.mnist_mlp(weights="mat"))


def test_mirror_from_the_environment_variable(server, tmp_path, monkeypatch):
    _publish(server)
    registry = _remote_registry(tmp_path, base_url="http://127.0.0.1:9/")  # The registry's own is dead.
    monkeypatch.setenv(weights_lib.BASE_URL_ENV, server.url)
    path = weights_lib.fetch_weights("remote-mat", registry=registry)
    assert server.hits == ["/remote-mat.weights.h5"] and os.path.isfile(path)


def test_a_damaged_cached_copy_is_downloaded_again(server, tmp_path):
    _publish(server)
    registry = _remote_registry(tmp_path)
    path = weights_lib.fetch_weights("remote-mat", registry=registry, base_url=server.url)
    with open(path, "r+b") as handle:
        handle.truncate(1000)
    assert weights_lib.fetch_weights("remote-mat", registry=registry, base_url=server.url) == path
    assert len(server.hits) == 2 and weights_lib.file_sha256(path) == MAT_ENTRY.sha256


def test_wrong_hash_fails_and_caches_nothing(server, tmp_path):
    _publish(server)
    registry = _remote_registry(tmp_path, sha256=hashlib.sha256(b"another file").hexdigest())
    with pytest.raises(ModelFileError) as caught:
        weights_lib.load_zoo_weights(zoo.mnist_mlp(), "remote-mat", "mnist_mlp",
                                     registry=registry, base_url=server.url)
    message = str(caught.value)
    assert f"has sha256 {MAT_ENTRY.sha256[:16]}" in message and "nothing was cached" in message
    assert len(server.hits) == 1
    assert _cache_listing() == []


def _assert_one_sentence_naming_the_options(message):
    assert "\n" not in message and message.endswith(".")
    assert weights_lib.BASE_URL_ENV in message
    assert "weights=<path to a local copy of remote-mat.weights.h5>" in message


def test_no_network_and_no_cache_is_one_clear_sentence(server, tmp_path):
    _publish(server)
    registry = _remote_registry(tmp_path)
    server.stop()  # Connection refused from now on.
    with pytest.raises(DataUnavailableError) as caught:
        weights_lib.load_zoo_weights(zoo.mnist_mlp(), "remote-mat", "mnist_mlp",
                                     registry=registry, base_url=server.url)
    message = str(caught.value)
    _assert_one_sentence_naming_the_options(message)
    assert "Connection refused" in message and server.url in message
    assert _cache_listing() == []


def test_no_download_location_is_one_clear_sentence(tmp_path):
    registry = _remote_registry(tmp_path)  # base_url None, no variable, no argument.
    with pytest.raises(DataUnavailableError) as caught:
        weights_lib.fetch_weights("remote-mat", registry=registry)
    _assert_one_sentence_naming_the_options(str(caught.value))
    assert "no download location is set" in str(caught.value)


# Bad inputs.


def test_unknown_name_lists_the_known_names():
    with pytest.raises(InvalidArgumentError) as caught:
        zoo.mnist_mlp(weights="imagenet")
    message = str(caught.value)
    assert "Unknown weights 'imagenet'" in message
    assert "mnist_mlp-mat-mnist5k" in message and "mnist_mlp-vanilla-mnist5k" in message
    assert "path of a .weights.h5 file" in message


def test_registry_weights_of_another_model_are_refused():
    with pytest.raises(InvalidArgumentError, match="are for mnist_mlp, not ecg_rnn"):
        weights_lib.load_zoo_weights(zoo.ecg_rnn(), "mnist_mlp-mat-mnist5k", "ecg_rnn")
    with pytest.raises(InvalidArgumentError, match="No 'mat' weights for ecg_rnn"):
        weights_lib.load_zoo_weights(zoo.ecg_rnn(), "mat", "ecg_rnn")


def test_a_file_of_another_architecture_is_refused(tmp_path):
    unstamped = str(tmp_path / "mlp64.weights.h5")
    zoo.mnist_mlp(hidden_units=64).save_weights(unstamped)
    with pytest.raises(ModelFileError) as caught:
        zoo.mnist_mlp(weights=unstamped)
    message = str(caught.value)
    assert "holds weights of another architecture than this mnist_mlp" in message
    assert "(784, 64)" in message and "(784, 128)" in message

    stamped = str(tmp_path / "ecg.weights.h5")
    weights_lib.write_weights_file(zoo.ecg_rnn(), stamped, "ecg_rnn")
    with pytest.raises(ModelFileError, match="holds weights of the zoo model ecg_rnn, not of mnist_mlp"):
        zoo.mnist_mlp(weights=stamped)
    # The right constructor with other arguments is another architecture too.
    with pytest.raises(ModelFileError, match=r"another architecture.*; the weights 'mnist_mlp-mat-mnist5k' "
                                              r"fit mnist_mlp\(num_classes=10, input_shape=\[28, 28\]\)\.$"):
        zoo.mnist_mlp(num_classes=5, weights="mat")


def test_truncated_and_non_hdf5_files_are_refused(tmp_path):
    truncated = tmp_path / "half.weights.h5"
    content = open(SHIPPED_MAT, "rb").read()
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(ModelFileError, match="it is truncated or not an HDF5 weights file"):
        zoo.mnist_mlp(weights=str(truncated))
    text = tmp_path / "notes.weights.h5"
    text.write_text("not weights")
    with pytest.raises(ModelFileError, match="truncated or not an HDF5"):
        zoo.mnist_mlp(weights=str(text))


@pytest.mark.parametrize(
    "weights,error,message",
    [
        ("missing/file.weights.h5", ModelFileError, "No weights file at"),
        (3, InvalidArgumentError, "takes None, a registry name or the path"),
    ],
)
def test_other_bad_weights_arguments(weights, error, message):
    with pytest.raises(error, match=message):
        zoo.mnist_mlp(weights=weights)


def test_a_keras_model_file_is_pointed_to_load_model(tmp_path):
    path = tmp_path / "model.keras"
    zoo.mnist_mlp().save(path)
    with pytest.raises(ModelFileError, match="keras.saving.load_model"):
        zoo.mnist_mlp(weights=str(path))


def test_an_altered_shipped_file_is_refused(tmp_path):
    registry = _remote_registry(tmp_path)
    damaged = bytearray(open(SHIPPED_MAT, "rb").read())
    damaged[-1] ^= 0xFF
    (tmp_path / "registry" / "remote-mat.weights.h5").write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError, match="the file was altered"):
        weights_lib.fetch_weights("remote-mat", registry=registry)


def test_registry_defaults_pick_one_entry_per_variant(tmp_path):
    registry = Registry(path=str(tmp_path / "registry.json"))
    first = MAT_ENTRY
    second = WeightsEntry(**{**MAT_ENTRY.to_dict(), "name": "mnist_mlp-mat-mnist", "dataset": "mnist",
                             "file": "mnist_mlp-mat-mnist.weights.h5", "default": False})
    registry = registry.with_entries([first]).with_entries([second])
    assert registry.resolve("mat", "mnist_mlp").name == first.name
    registry.save()
    assert Registry.load(registry.path).resolve("mat", "mnist_mlp").name == first.name
    no_default = Registry(path=registry.path, entries={
        e.name: WeightsEntry(**{**e.to_dict(), "default": False}) for e in registry.entries.values()
    })
    with pytest.raises(InvalidArgumentError, match="several 'mat' weights .* none is marked default"):
        no_default.resolve("mat", "mnist_mlp")


def test_malformed_registries_are_clear_errors(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"format": 1, "entries": [{"name": "x", "model": "mnist_mlp"}]}))
    with pytest.raises(InvalidArgumentError, match="Entry 'x' of .* lacks variant, dataset, file"):
        Registry.load(str(path))
    path.write_text("[]")
    with pytest.raises(InvalidArgumentError, match="is not a mat-keras weights registry"):
        Registry.load(str(path))


# The command line.


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_zoo_list_and_download(server, tmp_path, capsys):
    assert cli.main(["zoo", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["name", "model", "variant", "dataset", "clean", "%", "sd", "0.1", "%",
                                "sd", "0.2", "%", "where"]
    mat_row = next(line for line in table if line.startswith("mnist_mlp-mat-mnist5k"))
    clean, sd01, sd02 = (f"{100 * MAT_ENTRY.accuracy_at(sd):.1f}" for sd in (0, 0.1, 0.2))
    assert mat_row.split() == ["mnist_mlp-mat-mnist5k", "mnist_mlp", "mat", "mnist-5k", clean, sd01, sd02,
                               "shipped"]

    _publish(server)
    registry = _remote_registry(tmp_path)
    assert cli.main(["zoo", "list", "--registry", registry.path]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("not cached")
    assert cli.main(["zoo", "download", "remote-mat", "--registry", registry.path, "--base-url", server.url]) == 0
    assert "remote-mat.weights.h5 (cached" in capsys.readouterr().out
    assert cli.main(["zoo", "list", "--registry", registry.path]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(" cached")

    assert cli.main(["zoo", "download", "mnist_mlp-mat-mnist5k"]) == 0
    assert "shipped with the registry" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["zoo", "download", "imagenet"], "Unknown weights 'imagenet'; the known weights are fashion_cnn-mat-fashionmnist"),
        (["zoo", "build", "imagenet"], "Nothing to build called 'imagenet'; build a task (cifar10, cifar100, ecg, fashion-mnist, mnist, mnist-5k)"),
        (["zoo", "build", "mnist-5k", "--epochs", "1"], "at least one clean and one MAT epoch"),
        (["zoo", "list", "--registry", "nowhere.json"], "No weights registry at"),
    ],
)
def test_zoo_command_errors_are_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith("mat-keras zoo: error: ") and message in line


def test_zoo_download_without_network_is_one_line(server, tmp_path, capsys):
    registry = _remote_registry(tmp_path)
    server.stop()
    assert cli.main(["zoo", "download", "remote-mat", "--registry", registry.path, "--base-url", server.url]) == 2
    assert weights_lib.BASE_URL_ENV in _error_line(capsys)


# Builds.


def _build(out_dir, *extra):
    argv = ["zoo", "build", "mnist-5k", "--out-dir", str(out_dir), *extra]
    assert cli.main(argv) == 0
    return Registry.load(str(out_dir / "registry.json"))


def test_a_short_build_writes_files_and_entries_that_load(tmp_path, capsys):
    registry = _build(tmp_path / "build", "--epochs", "2", "--draws", "2")
    printed = capsys.readouterr().out
    assert "Updated" in printed and "vanilla" in printed
    assert registry.names() == ["mnist_mlp-mat-mnist5k", "mnist_mlp-vanilla-mnist5k"]
    for entry in registry.entries.values():
        path = registry.shipped_file(entry)
        assert weights_lib.file_sha256(path) == entry.sha256 and os.path.getsize(path) == entry.size
        assert entry.recipe["epochs"] == 2 and entry.recipe["clean_epochs"] == 1 and entry.recipe["seed"] == 0
        assert entry.sweep["draws"] == 2 and entry.default
        assert entry.built_with["keras"] == keras.__version__
        assert entry.size < 500_000  # The plain model only: no optimizer state.
    model = weights_lib.load_zoo_weights(zoo.mnist_mlp(), "mat", "mnist_mlp", registry=registry)
    entry = registry.get("mnist_mlp-mat-mnist5k")
    result = mat.robustness_sweep(model, zoo.load_dataset("mnist-5k").test_dataset(256), sds=entry.sweep["sds"],
                                  draws=2, seed=0, verbose=0)
    np.testing.assert_allclose(result.mean(), entry.sweep["mean"], atol=0.001)


@pytest.mark.slow
def test_the_same_seed_builds_the_same_weights(tmp_path):
    """Holds on one machine and software stack (TensorFlow CPU here); other
    CPUs or versions may differ in the last bits, hence the sweep tolerance."""
    first = _build(tmp_path / "a", "--epochs", "2", "--draws", "1")
    second = _build(tmp_path / "b", "--epochs", "2", "--draws", "1")
    for name in first.names():
        assert first.get(name).sha256 == second.get(name).sha256


@pytest.mark.slow
def test_building_the_recipe_reproduces_the_shipped_sweep(tmp_path):
    registry = _build(tmp_path / "build")  # The full recipe: 20 clean + 20 MAT epochs, 10 draws.
    for name in ("mnist_mlp-vanilla-mnist5k", "mnist_mlp-mat-mnist5k"):
        built, shipped = registry.get(name), PACKAGE.get(name)
        assert built.recipe == shipped.recipe
        difference = np.abs(np.subtract(built.sweep["mean"], shipped.sweep["mean"]))
        tolerance = _sampling_tolerance(shipped, built)
        assert np.all(difference <= tolerance), (name, difference, tolerance)
