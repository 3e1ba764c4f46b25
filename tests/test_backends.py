"""One code base on every Keras backend: TensorFlow, JAX and PyTorch agree.

The backend is fixed per process, so each backend runs this file as a script
in a subprocess of its own (`python tests/test_backends.py save|load DIR`):

- `save`: builds a wrapped Dense and a wrapped Conv2D layer from the same
  numpy weights and inputs and records their outputs with the noise off
  (inference, and training with the gate at 0); trains two small wrapped
  models (a CNN with BatchNormalization, an LSTM) one epoch and saves each as
  a `.keras` file with its weights and predictions.
- `load`: loads the `.keras` files the other backends saved, compares their
  weights with the saver's, predicts, and checks that the noise and a further
  training step still work there.

The tests then compare the outputs across backends. The noise draws
themselves are not compared: each backend has its own random generator
(TensorFlow Philox, JAX threefry, PyTorch's), so the same seed gives a
different, equally distributed, stream on each.
"""

import itertools
import pathlib
import sys

import numpy as np
import pytest

from mat_testing import ALL_BACKENDS, installed_backends, print_result, require_backends, run_on_backend

HERE = pathlib.Path(__file__).resolve()
# "Within 1e-6" of the output's scale: float32 sums taken in another order
# differ by a few ulps (1.2e-7 at 1, 4.8e-7 between 4 and 8).
TOLERANCE = 1e-6


def _within_tolerance(got, want):
    """Max |got - want| and whether it is within TOLERANCE * max(1, max |want|)."""
    difference = float(np.abs(got - want).max())
    return difference, difference <= TOLERANCE * max(1.0, float(np.abs(want).max()))
MODELS = ("cnn", "rnn")


# ------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    backends = installed_backends()
    if len(backends) < 2:
        require_backends(*ALL_BACKENDS)
    folder = tmp_path_factory.mktemp("backends")
    saved = {b: run_on_backend(HERE, b, "save", folder) for b in backends}
    loaded = {b: run_on_backend(HERE, b, "load", folder) for b in backends}
    return backends, folder, saved, loaded


def test_every_backend_is_compared(runs):
    backends, *_ = runs
    require_backends(*ALL_BACKENDS)
    assert backends == list(ALL_BACKENDS)


def test_wrapped_layers_agree_across_backends_with_noise_off(runs):
    backends, folder, saved, _ = runs
    outputs = {b: np.load(folder / f"layers_{b}.npz") for b in backends}
    for b in backends:  # on each backend: gate 0 and inference are the plain layer, bit for bit
        for layer in ("dense", "conv2d"):
            plain = outputs[b][f"{layer}_plain"]
            np.testing.assert_array_equal(outputs[b][f"{layer}_inference"], plain)
            np.testing.assert_array_equal(outputs[b][f"{layer}_gate0"], plain)
            assert not np.allclose(outputs[b][f"{layer}_noisy"], plain, atol=1e-3), (b, layer)
    for a, b in itertools.combinations(backends, 2):
        for key in ("dense_inference", "dense_gate0", "conv2d_inference", "conv2d_gate0"):
            difference, ok = _within_tolerance(outputs[b][key], outputs[a][key])
            assert ok, f"{key}: {a} vs {b} differ by {difference:.2e}"


@pytest.mark.parametrize("model", MODELS)
def test_keras_file_saved_on_one_backend_predicts_the_same_on_another(runs, model):
    backends, folder, saved, loaded = runs
    for source, target in itertools.permutations(backends, 2):
        report = loaded[target][f"{model}_{source}"]
        assert report["layers"] == saved[source][model]["layers"], (source, target)
        assert report["weights_equal"], f"{model}: weights saved on {source} changed when loaded on {target}"
        assert report["noise_settings"] == saved[source][model]["noise_settings"]
        prediction = np.load(folder / f"{model}_{source}_on_{target}.npy")
        expected = np.load(folder / f"{model}_{source}.npy")
        difference, ok = _within_tolerance(prediction, expected)
        assert ok, f"{model} saved on {source}, predicted on {target}: {difference:.2e}"
        assert report["noise_changes_output"] and report["trains"], (model, source, target)


# ------------------------------------------------------------ the worker


def _layer_outputs(folder):
    """Wrapped Dense and Conv2D with fixed weights: outputs with the noise off and on."""
    import keras

    import mat_keras as mat

    rng = np.random.default_rng(0)
    cases = {
        "dense": (lambda: keras.layers.Dense(7), (5, 12)),
        "conv2d": (lambda: keras.layers.Conv2D(4, 3, padding="same"), (2, 8, 8, 3)),
    }
    outputs = {}
    for name, (factory, shape) in cases.items():
        x = rng.normal(size=shape).astype("float32")
        plain = factory()
        plain.build(shape)
        weights = [rng.normal(0, 0.1, w.shape).astype("float32") for w in plain.weights]
        plain.set_weights(weights)
        wrapper = mat.NoisyWeights(factory(), noise=0.2, seed=0)
        wrapper.build(shape)
        wrapper.layer.set_weights(weights)
        numpy = keras.ops.convert_to_numpy
        outputs[f"{name}_plain"] = numpy(plain(x))
        outputs[f"{name}_inference"] = numpy(wrapper(x))
        outputs[f"{name}_noisy"] = numpy(wrapper(x, training=True))
        wrapper.gate.assign(0.0)
        outputs[f"{name}_gate0"] = numpy(wrapper(x, training=True))
    np.savez(folder / f"layers_{keras.backend.backend()}.npz", **outputs)


def _model(name):
    import keras

    import mat_keras as mat

    keras.utils.set_random_seed(0)
    if name == "cnn":
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Flatten()(h)
        outputs = keras.layers.Dense(3)(h)
    else:
        inputs = keras.Input((6, 3))
        h = keras.layers.LSTM(5)(inputs)
        outputs = keras.layers.Dense(3)(h)
    model = keras.Model(inputs, outputs, name=name)
    return mat.wrap(model, noise=mat.noise.Gaussian(0.1), seed=3, batchnorm=True)


def _data(name):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 8, 8, 3) if name == "cnn" else (32, 6, 3)).astype("float32")
    return x, np.arange(32) % 3


def _noise_settings(model):
    import keras

    import mat_keras as mat

    return [
        [repr(layer.noise), layer.seed, float(keras.ops.convert_to_numpy(layer.gate))]
        for layer in mat.noisy_layers(model)
    ]


def save(folder):
    import keras

    backend = keras.backend.backend()
    _layer_outputs(folder)
    result = {}
    for name in MODELS:
        model = _model(name)
        x, y = _data(name)
        # One eager step: compiling the train function would cost more than
        # the step itself, on every backend.
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # weights and BN statistics of this backend
        model.save(folder / f"{name}_{backend}.keras")
        np.save(folder / f"{name}_{backend}.npy", keras.ops.convert_to_numpy(model(x)))
        np.savez(folder / f"{name}_{backend}_weights.npz", *model.get_weights())
        result[name] = {
            "layers": [type(layer).__name__ for layer in model.layers],
            "noise_settings": _noise_settings(model),
        }
    print_result(result)


def load(folder):
    import keras

    import mat_keras  # noqa: F401  registers NoisyWeights and the noise models

    backend = keras.backend.backend()
    result = {}
    for name, source in itertools.product(MODELS, ALL_BACKENDS):
        path = folder / f"{name}_{source}.keras"
        if source == backend or not path.exists():
            continue
        model = keras.saving.load_model(path)  # no custom_objects
        compiled_optimizer = model.optimizer
        x, y = _data(name)
        with np.load(folder / f"{name}_{source}_weights.npz") as saved:
            expected = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        weights = model.get_weights()
        prediction = keras.ops.convert_to_numpy(model(x))
        np.save(folder / f"{name}_{source}_on_{backend}.npy", prediction)
        # Two training-mode calls draw two different noises (BatchNorm alone
        # would give the same output twice).
        noisy = [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2)]
        # The loaded model trains on here. Loaded without its compile config:
        # Keras 3.15 records the PyTorch backend's own optimizer classes
        # (module keras.src.backend.torch.optimizers.torch_adam) in a file
        # saved on PyTorch and rebuilds that optimizer on other backends too,
        # where it fails at the first step; recompiling avoids it.
        model = keras.saving.load_model(path, compile=False)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
        before = model.get_weights()
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        result[f"{name}_{source}"] = {
            "layers": [type(layer).__name__ for layer in model.layers],
            "noise_settings": _noise_settings(model),
            "weights_equal": len(weights) == len(expected)
            and all(np.array_equal(a, b) for a, b in zip(weights, expected)),
            "noise_changes_output": bool(np.abs(noisy[0] - noisy[1]).max() > 1e-3),
            "trains": bool(
                all(np.isfinite(w).all() for w in model.get_weights())
                and any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
            ),
            "optimizer": type(compiled_optimizer).__module__,
        }
    print_result(result)


if __name__ == "__main__":
    command, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    {"save": save, "load": load}[command](folder)
