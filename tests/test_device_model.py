"""Device models: statistics of each part, compensation, compiled training, configs, errors."""

import json

import keras
import numpy as np
import pytest

import mat_keras as mat
from device_testing import assert_standard_normal, binomial_close, weights_at_states
from mat_testing import to_numpy
from mat_keras.devices import presets, units
from mat_keras.devices.model import calibration_signal
from mat_keras.errors import InvalidArgumentError


def test_a_device_without_parts_stores_weights_exactly():
    w = keras.random.normal((30, 7), seed=1)
    device = mat.noise.DeviceModel(g_min=0.2)
    np.testing.assert_allclose(to_numpy(device.read(device.program(w, seed=0), time=1e7)), to_numpy(w), atol=1e-6)
    np.testing.assert_allclose(to_numpy(device.perturbation(w, seed=0)), 0, atol=1e-6)


# -- programming noise ----------------------------------------------------------


@pytest.mark.parametrize(
    "programming",
    [mat.noise.ProgrammingNoise(0.03), presets.PCM_PROGRAMMING, presets.RRAM_PROGRAMMING],
    ids=["constant", "pcm", "rram"],
)
def test_programming_noise_sd_at_several_states(programming):
    states = [0.2, 0.5, 0.9]
    weights, ranges = weights_at_states(states)
    device = mat.noise.DeviceModel(programming=programming)
    g = to_numpy(device.program(weights, seed=3).conductances)[0].astype(float)
    for state, part in zip(states, ranges):
        expected_sd = float(to_numpy(programming.sd_at(keras.ops.convert_to_tensor(state))))
        assert_standard_normal((g[part] - state) / expected_sd)


def test_pcm_programming_sd_is_the_published_polynomial():
    # Nandakumar et al. 2019: sd = 0.2635 + 1.9650 g - 1.1731 g^2 uS at g_max = 25 uS.
    for g in (0.0, 0.3, 1.0):
        published = (0.2635 + 1.9650 * g - 1.1731 * g**2) / 25.0
        assert float(to_numpy(presets.PCM_PROGRAMMING.sd_at(keras.ops.convert_to_tensor(g)))) == pytest.approx(published, rel=1e-6)


def test_programming_is_fresh_per_call_and_fixed_per_seed():
    w = keras.random.normal((64, 8), seed=0)
    device = mat.noise.get("rram")
    generator = keras.random.SeedGenerator(1)
    a, b = (to_numpy(device.perturbation(w, generator)) for _ in range(2))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(to_numpy(device.perturbation(w, 5)), to_numpy(device.perturbation(w, 5)))


# -- read noise ------------------------------------------------------------------


def test_read_noise_is_relative_and_fresh_at_every_read():
    states = [0.1, 0.5, 1.0]
    weights, ranges = weights_at_states(states)
    device = mat.noise.DeviceModel(read=0.05)
    state = device.program(weights, seed=0)
    generator = keras.random.SeedGenerator(2)
    first = to_numpy(device.conductances(state, 10.0, generator))[0].astype(float)
    second = to_numpy(device.conductances(state, 10.0, generator))[0].astype(float)
    assert not np.allclose(first, second)
    for g, part in zip(states, ranges):
        assert_standard_normal((first[part] - g) / (0.05 * g))


def test_pcm_read_noise_grows_as_accumulated_1_over_f_noise():
    states = [0.05, 0.5, 1.0]
    weights, ranges = weights_at_states(states)
    device = mat.noise.DeviceModel(read=presets.PCM_READ)
    state = device.program(weights, seed=0)
    t, t_read = units.DAY, 250e-9
    read = to_numpy(device.conductances(state, t, seed=4))[0].astype(float)
    for g, part in zip(states, ranges):
        relative = min(0.0088 * g**-0.65, 0.2) * np.sqrt(np.log((t + t_read) / (2 * t_read)))
        assert_standard_normal((read[part] - g) / (relative * g))
    # Right after programming the 1/f noise has had no time to accumulate.
    np.testing.assert_allclose(to_numpy(device.conductances(state, 0.0, seed=4)), to_numpy(state.conductances))


# -- stuck devices -------------------------------------------------------------------


def test_stuck_fractions_fixed_per_programming_and_not_drifting():
    g_min = 0.1
    weights, (part,) = weights_at_states([0.55], g_min=g_min, n=200_000)
    device = mat.noise.DeviceModel(stuck=mat.noise.StuckDevices(at_min=0.02, at_max=0.01), drift={"nu_mean": 0.05}, g_min=g_min)
    state = device.program(weights, seed=keras.random.SeedGenerator(0))
    g = to_numpy(state.conductances)[0][part]
    n = g.size
    assert binomial_close(np.sum(np.isclose(g, g_min)), n, 0.02)
    assert binomial_close(np.sum(np.isclose(g, 1.0)), n, 0.01)
    assert np.all(np.isclose(g, g_min) | np.isclose(g, 1.0) | np.isclose(g, 0.55))
    # A year later the same devices are stuck, at the same values; the others drifted.
    later = to_numpy(device.conductances(state, units.YEAR))[0][part]
    stuck = np.isclose(g, g_min) | np.isclose(g, 1.0)
    np.testing.assert_array_equal(later[stuck], g[stuck])
    assert np.all(later[~stuck] < 0.55)
    # A new programming sticks other devices.
    again = to_numpy(device.program(weights, seed=keras.random.SeedGenerator(1)).conductances)[0][part]
    assert (np.isclose(again, 1.0) != np.isclose(g, 1.0)).any()


# -- drift -----------------------------------------------------------------------------


def test_drift_follows_the_power_law_exactly():
    weights, (part,) = weights_at_states([0.8], n=1000)
    device = mat.noise.DeviceModel(drift=mat.noise.Drift(nu_mean=0.07, nu_sd=0.0, t0=20.0))
    state = device.program(weights, seed=0)
    for t in (0.0, 1.0, units.HOUR, units.YEAR):
        g = to_numpy(device.conductances(state, t))[0][part]
        np.testing.assert_allclose(g, 0.8 * ((t + 20.0) / 20.0) ** -0.07, rtol=1e-5)


def _fitted_exponents(device, state, part, t0):
    """Least-squares slope of log g against log((t + t0) / t0), per device: -nu."""
    times = np.array([1.0, 60.0, units.HOUR, units.DAY, units.MONTH, units.YEAR])
    log_g = np.stack([np.log(to_numpy(device.conductances(state, t))[0][part].astype(float)) for t in times])
    log_t = np.log((times + t0) / t0)
    centred = log_t - log_t.mean()
    return -(centred @ (log_g - log_g.mean(axis=0))) / (centred @ centred)


def test_drift_exponent_distribution_is_recovered_from_g_of_t():
    nu_mean, nu_sd, t0 = 0.06, 0.02, 20.0
    weights, (part,) = weights_at_states([0.7])
    device = mat.noise.DeviceModel(drift=mat.noise.Drift(nu_mean, nu_sd, t0))
    nu = _fitted_exponents(device, device.program(weights, seed=1), part, t0)
    n = nu.size
    assert abs(nu.mean() - nu_mean) < 5 * nu_sd / np.sqrt(n)
    assert abs(nu.std() - nu_sd) < 5 * nu_sd / np.sqrt(2 * n)


def test_pcm_drift_exponents_depend_on_the_state_as_published():
    states = [0.01, 0.1, 0.3, 1.0]
    weights, ranges = weights_at_states(states, n=50_000)
    device = mat.noise.DeviceModel(drift=presets.PCM_DRIFT)
    state = device.program(weights, seed=2)
    for g, part in zip(states, ranges):
        # Nandakumar et al. 2019: mean clip(0.0244 - 0.0155 ln g, 0.049, 0.1), sd clip(-0.0059 - 0.0125 ln g, 0.008, 0.045).
        mean = np.clip(0.0244 - 0.0155 * np.log(g), 0.049, 0.1)
        sd = np.clip(-0.0059 - 0.0125 * np.log(g), 0.008, 0.045)
        nu = _fitted_exponents(device, state, part, 20.0)
        n = nu.size
        assert abs(nu.mean() - mean) < 5 * sd / np.sqrt(n), g
        assert abs(nu.std() - sd) < 5 * sd / np.sqrt(2 * n) + 2e-4, g  # clipping at 0 is negligible here


def test_global_drift_compensation_undoes_a_uniform_drift():
    w = keras.random.normal((50, 20), seed=3)
    device = mat.noise.DeviceModel(drift={"nu_mean": 0.1, "nu_sd": 0.0})
    state = device.program(w, seed=0)
    drifted = to_numpy(device.read(state, units.YEAR, compensation=False))
    assert np.abs(drifted).max() < 0.3 * np.abs(to_numpy(w)).max()
    np.testing.assert_allclose(to_numpy(device.read(state, units.YEAR, compensation=True)), to_numpy(w), rtol=1e-4, atol=1e-5)


def test_compensation_is_measured_from_a_calibration_read():
    w = keras.random.normal((50, 20), seed=3)
    device = mat.noise.get("pcm")
    state = device.program(w, seed=0)
    factor = float(to_numpy(device.compensation_factor(state, units.YEAR, seed=1)))
    read = device.read(state, units.YEAR, seed=2, compensation=False)
    # The chip only sees currents: the factor restores the calibration signal to its time-0 value.
    restored = float(to_numpy(calibration_signal(read))) * factor
    assert restored == pytest.approx(float(to_numpy(state.reference)), rel=0.05)
    assert factor > 1.5  # a year of nu ~ 0.06 drift leaves ~45 % of the conductance


# -- in compiled training, serialisation, registry -----------------------------------------


@pytest.mark.parametrize("alias", ["pcm", "measured"])  # quantised training: tests/test_deployment.py
def test_device_noise_is_redrawn_in_compiled_functions(alias):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    robust = mat.wrap(model, noise=alias, seed=0, inference_noise=True)
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    first, second = robust.predict(x, verbose=0), robust.predict(x, verbose=0)
    assert np.isfinite(first).all() and not np.allclose(first, second)
    robust.compile("adam", "mse")
    robust.fit(x, np.zeros((8, 4)), epochs=1, verbose=0)
    assert all(np.isfinite(w).all() for w in robust.get_weights())


CONFIGURED = [
    mat.noise.PCM(),
    mat.noise.RRAM(time=5.0, compensation=False),
    mat.noise.DeviceModel(programming=[0.01, 0.02], stuck={"at_max": 0.01}, drift=mat.noise.Drift(0.03, 0.01),
                          read=0.02, levels=16, g_min=0.1, time=60.0),
    mat.noise.DeviceModel(levels=[1.0, 3.0, 10.0]),
    mat.noise.MeasuredDevice(),
    mat.noise.Quantized(8, quantiles=(0.05, 0.95), noise=mat.noise.Gaussian(0.05)),
    mat.noise.Quantized(levels=[-1, 0, 1]),
]


@pytest.mark.parametrize("noise", CONFIGURED, ids=lambda n: type(n).__name__)
def test_config_round_trips(noise):
    config = mat.noise.serialize(noise)
    json.dumps(config)
    assert mat.noise.get(config) == noise
    assert keras.saving.deserialize_keras_object(config) == noise
    assert type(noise).from_config(noise.get_config()) == noise


def test_aliases_and_wrapped_model_file_round_trip(tmp_path):
    assert isinstance(mat.noise.get("pcm"), mat.noise.PCM)
    assert isinstance(mat.noise.get("RRAM"), mat.noise.RRAM)
    assert mat.noise.get("device") == mat.noise.DeviceModel()
    assert mat.noise.get({"class_name": "pcm", "config": {"time": 0.0}}).time == 0.0
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    robust = mat.wrap(model, noise=mat.noise.PCM().with_time(units.YEAR), seed=0)
    robust.save(tmp_path / "pcm.keras")
    loaded = keras.saving.load_model(tmp_path / "pcm.keras")
    assert loaded.layers[0].noise == robust.layers[0].noise
    assert loaded.layers[0].noise.time == units.YEAR


def test_resolve_device_from_json_and_csv(tmp_path):
    from mat_keras.devices import resolve_device

    device = resolve_device('{"programming": 0.02, "drift": {"nu_mean": 0.05, "nu_sd": 0.01}, "read": 0.01}')
    assert device == mat.noise.DeviceModel(programming=0.02, drift=mat.noise.Drift(0.05, 0.01), read=0.01)
    assert resolve_device(mat.devices.measured.example_csv_path()) == mat.noise.MeasuredDevice()
    (tmp_path / "d.json").write_text('{"class_name": "rram", "config": {"stuck": null}}')
    assert resolve_device(str(tmp_path / "d.json")).stuck is None
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        resolve_device("{programming: 0.02")
    with pytest.raises(InvalidArgumentError, match="unknown device component"):
        resolve_device({"drift": {"class_name": "wobble"}})


# -- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: mat.noise.StuckDevices(at_min=-0.01), "at_min must be a fraction"),
        (lambda: mat.noise.StuckDevices(at_max=1.5), "at_max must be a fraction"),
        (lambda: mat.noise.StuckDevices(0.6, 0.6), "at_min \\+ at_max must be <= 1"),
        (lambda: mat.noise.ProgrammingNoise(-0.02), "sd must be a finite number >= 0"),
        (lambda: mat.noise.ProgrammingNoise([0.01, -0.05]), "polynomial .* is negative"),
        (lambda: mat.noise.ReadNoise(-0.1), "read noise sd must be"),
        (lambda: mat.noise.Drift(nu_mean=-0.01), "drift exponent distribution must have a mean >= 0"),
        (lambda: mat.noise.Drift(0.05, nu_sd=-0.01), "nu_sd must be"),
        (lambda: mat.noise.Drift(nu_mean=(0.02, -0.01, -0.01, 0.1)), "must have a mean >= 0"),
        (lambda: mat.noise.Drift(nu_mean=(0.02, -0.01)), r"\(a, b, low, high\)"),
        (lambda: mat.noise.Drift(0.05, t0=0), "t0 must be > 0"),
        (lambda: mat.noise.DeviceModel(time=-1.0), "time must be a finite number of seconds >= 0"),
        (lambda: mat.noise.DeviceModel(g_min=1.0), "g_min is a fraction"),
        (lambda: mat.noise.DeviceModel(levels=[3.0, 1.0]), "strictly increasing"),
        (lambda: mat.noise.DeviceModel(levels=[1.0, 3.0], g_min=0.1), "not both"),
        (lambda: mat.noise.DeviceModel(programming="lots"), "programming must be"),
        (lambda: mat.noise.MeasuredDevice(levels=8), "brings its own levels"),
        (lambda: mat.noise.Quantized(1), "num_levels must be between 2"),
        (lambda: mat.noise.Quantized(4, quantiles=(0.9, 0.1)), "quantiles must satisfy"),
        (lambda: mat.noise.Quantized(levels=[0.0]), "at least 2"),
    ],
)
def test_bad_inputs_are_clear_errors(build, message):
    with pytest.raises(InvalidArgumentError, match=message):
        build()


def test_negative_read_times_are_errors():
    device = mat.noise.get("pcm")
    state = device.program(keras.ops.ones((4, 4)), seed=0)
    with pytest.raises(InvalidArgumentError, match="seconds >= 0"):
        device.read(state, time=-5.0)
    with pytest.raises(InvalidArgumentError, match="seconds >= 0"):
        mat.noise.DeviceModel().read(state, time=-1.0)
    with pytest.raises(InvalidArgumentError, match="seconds >= 0"):
        device.with_time(-1.0)


def test_a_slot_takes_only_its_own_components():
    assert mat.noise.DeviceModel(drift="drift").drift == mat.noise.Drift()
    with pytest.raises(InvalidArgumentError, match="programming must be a programming component"):
        mat.noise.DeviceModel(programming="drift")
    with pytest.raises(InvalidArgumentError, match="read must be a read component"):
        mat.noise.DeviceModel(read={"class_name": "stuck", "config": {}})
