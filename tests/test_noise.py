"""Noise models: statistics, registry and serialisation."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import to_numpy

# The core subset: CI runs it on the JAX and PyTorch backends too (`pytest -m backends`).
pytestmark = pytest.mark.backends

NOISE_MODELS = [
    mat.noise.Gaussian(0.1),
    mat.noise.Gaussian(0.05, relative_to="max_abs"),
    mat.noise.Gaussian(0.02, relative_to="absolute"),
    mat.noise.Multiplicative(0.2),
]


def _expected_sd(noise, weights):
    max_abs = np.abs(weights).max()
    if isinstance(noise, mat.noise.Multiplicative):
        return noise.sd * np.abs(weights)
    factor = {"range": 2 * max_abs, "max_abs": max_abs, "absolute": 1.0}[noise.relative_to]
    return noise.sd * factor


@pytest.mark.parametrize("noise", NOISE_MODELS, ids=repr)
def test_empirical_sd_within_sampling_tolerance(noise):
    n = 400_000
    weights = np.random.default_rng(0).uniform(-0.7, 0.7, n).astype("float32")
    delta = to_numpy(noise.perturbation(keras.ops.convert_to_tensor(weights), seed=3)).astype(float)
    z = delta / _expected_sd(noise, weights)  # standard normal if the sd is right
    # The sd estimate of n normals has a standard error of 1/sqrt(2n); allow 5 of them.
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * n)
    assert abs(z.mean()) < 5 / np.sqrt(n)


def test_seed_semantics():
    w = keras.ops.ones((50,))
    g = mat.noise.Gaussian(0.1)
    np.testing.assert_array_equal(to_numpy(g.perturbation(w, 1)), to_numpy(g.perturbation(w, 1)))
    generator = keras.random.SeedGenerator(1)
    assert not np.allclose(to_numpy(g.perturbation(w, generator)), to_numpy(g.perturbation(w, generator)))


def test_call_adds_noise_straight_through():
    w = keras.ops.ones((1000,))
    noisy = to_numpy(mat.noise.Gaussian(0.1)(w, seed=0))
    assert abs(noisy.std() - 0.2) < 0.03 and abs(noisy.mean() - 1) < 0.03


@pytest.mark.parametrize(
    "identifier,expected",
    [
        (0.2, mat.noise.Gaussian(0.2)),
        ("gaussian", mat.noise.Gaussian()),
        ("Multiplicative", mat.noise.Multiplicative()),
        ({"class_name": "gaussian", "config": {"sd": 0.3, "relative_to": "max_abs"}}, mat.noise.Gaussian(0.3, "max_abs")),
        (mat.noise.serialize(mat.noise.Multiplicative(0.07)), mat.noise.Multiplicative(0.07)),
    ],
)
def test_registry_resolves(identifier, expected):
    assert mat.noise.get(identifier) == expected


def test_with_sd_and_config_round_trip():
    noise = mat.noise.Gaussian(0.1, relative_to="max_abs")
    assert noise.with_sd(0.3) == mat.noise.Gaussian(0.3, relative_to="max_abs")
    assert mat.noise.Gaussian.from_config(noise.get_config()) == noise
    assert keras.saving.deserialize_keras_object(mat.noise.serialize(noise)) == noise


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "much"])
def test_bad_sd(bad):
    with pytest.raises(mat.errors.InvalidArgumentError, match="sd must be"):
        mat.noise.Gaussian(bad)
    with pytest.raises(mat.errors.InvalidArgumentError, match="sd must be"):
        mat.noise.Multiplicative(bad)


def test_bad_identifiers():
    with pytest.raises(mat.errors.InvalidArgumentError, match="Unknown noise model .gausian.; known aliases: .*gaussian"):
        mat.noise.get("gausian")
    with pytest.raises(mat.errors.InvalidArgumentError, match="relative_to"):
        mat.noise.Gaussian(0.1, relative_to="mean")
    with pytest.raises(mat.errors.InvalidArgumentError):
        mat.noise.get([0.1])


# -- the one registry: noise models and device components ------------------------------------


def test_one_registry_resolves_noise_models_and_device_components():
    component = mat.noise.COMPONENT
    # One alias, two kinds: the noise model "measured" and the programming component "measured".
    assert "measured" in mat.noise.aliases() and "measured" in mat.noise.aliases(component)
    assert isinstance(mat.noise.get("measured"), mat.noise.MeasuredDevice)
    assert mat.noise.lookup("measured", component) is mat.noise.Measured
    assert mat.noise.get("drift", component) == mat.noise.Drift()
    assert mat.noise.get({"class_name": "read_noise", "config": {"sd": 0.02}}, component) == mat.noise.ReadNoise(0.02)
    assert mat.noise.get(0.03, component, default=mat.noise.ProgrammingNoise) == mat.noise.ProgrammingNoise(0.03)
    assert mat.noise.get({"at_min": 0.1}, component, default=mat.noise.StuckDevices) == mat.noise.StuckDevices(0.1)
    drift = mat.noise.Drift(0.05, 0.01)
    assert mat.noise.deserialize(mat.noise.serialize(drift), component) == drift
    assert mat.noise.serialize(drift)["registered_name"] == "mat_keras>Drift"
    # The kinds stay apart.
    with pytest.raises(mat.errors.InvalidArgumentError, match="as a device component"):
        mat.noise.get(mat.noise.Gaussian(0.1), component)
    with pytest.raises(mat.errors.InvalidArgumentError, match="as a noise model"):
        mat.noise.get(drift)


def test_configs_written_before_the_devices_package_still_load():
    # A PCM as the wrapper saved it into .keras files before: its class under
    # the old module, its components in the short {"class_name", "config"} form.
    old = {
        "module": "mat_keras.device_models",
        "class_name": "PCM",
        "config": {
            "programming": {"class_name": "ProgrammingNoise", "config": {"sd": [0.01054, 0.0786, -0.046924]}},
            "stuck": None,
            "drift": {"class_name": "Drift", "config": {"nu_mean": [0.0244, -0.0155, 0.049, 0.1],
                                                        "nu_sd": [-0.0059, -0.0125, 0.008, 0.045], "t0": 20.0}},
            "read": {"class_name": "ReadNoise",
                     "config": {"sd": 0.0088, "exponent": 0.65, "max_sd": 0.2, "t_read": 2.5e-07}},
            "levels": None,
            "g_min": 0.0,
            "time": 31536000.0,
            "compensation": True,
        },
        "registered_name": "mat_keras>PCM",
    }
    assert mat.noise.get(old) == mat.noise.PCM()
    assert keras.saving.deserialize_keras_object(old) == mat.noise.PCM()
