"""Device models: statistics of each part, mapping, quantisation, measured devices, errors."""

import json

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import gradients, to_numpy
from mat_keras import device_models as dm
from mat_keras.errors import InvalidArgumentError
from mat_keras.levels import Levels

N = 100_000  # devices per conductance state


def _states(states, g_min=0.0, n=N, negative=False):
    """Weights whose G+ targets sit at `states` (conductances in units of g_max).

    The first weight is 1, so the tensor's scale max|w| is 1; `n` weights
    follow per state. Returns the weights and the index range of each state.
    """
    units = [(g - g_min) / (1 - g_min) for g in states]
    sign = -1.0 if negative else 1.0
    weights = np.concatenate([[1.0]] + [np.full(n, sign * u) for u in units]).astype("float32")
    ranges = [slice(1 + i * n, 1 + (i + 1) * n) for i in range(len(states))]
    return keras.ops.convert_to_tensor(weights), ranges


def _assert_standard_normal(z):
    # The sd of n standard normals has a standard error of 1/sqrt(2n), the mean 1/sqrt(n): allow 5.
    assert abs(z.mean()) < 5 / np.sqrt(z.size), z.mean()
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * z.size), z.std()


def _binomial_close(count, n, p):
    return abs(count / n - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12


# -- mapping ------------------------------------------------------------------


def test_mapping_is_the_exporters_differential_scheme():
    from mat_keras.export import Device
    from mat_keras.export.mapping import compute_scale, dequantise, map_matrix

    w = np.random.default_rng(0).normal(0, 0.3, (40, 12)).astype("float32")
    device = Device(g_min=1e-6, g_max=40e-6, levels=16)
    mapped = map_matrix(w, compute_scale(w), device)
    model = mat.noise.DeviceModel(levels=16, g_min=1 / 40, compensation=False)
    state = model.program(w, seed=0)
    g = to_numpy(state.conductances)
    np.testing.assert_allclose(g[0] * 40e-6, device.levels.values[mapped.level_plus], rtol=1e-5)
    np.testing.assert_allclose(g[1] * 40e-6, device.levels.values[mapped.level_minus], rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(model.read(state)), dequantise(mapped.level_plus, mapped.level_minus, mapped.scale, device),
        atol=1e-6,
    )


def test_a_device_without_parts_stores_weights_exactly():
    w = keras.random.normal((30, 7), seed=1)
    device = mat.noise.DeviceModel(g_min=0.2)
    np.testing.assert_allclose(to_numpy(device.read(device.program(w, seed=0), time=1e7)), to_numpy(w), atol=1e-6)
    np.testing.assert_allclose(to_numpy(device.perturbation(w, seed=0)), 0, atol=1e-6)


# -- programming noise ----------------------------------------------------------


@pytest.mark.parametrize(
    "programming",
    [mat.noise.ProgrammingNoise(0.03), dm.PCM_PROGRAMMING, dm.RRAM_PROGRAMMING],
    ids=["constant", "pcm", "rram"],
)
def test_programming_noise_sd_at_several_states(programming):
    states = [0.2, 0.5, 0.9]
    weights, ranges = _states(states)
    device = mat.noise.DeviceModel(programming=programming)
    g = to_numpy(device.program(weights, seed=3).conductances)[0].astype(float)
    for state, part in zip(states, ranges):
        expected_sd = float(to_numpy(programming.sd_at(keras.ops.convert_to_tensor(state))))
        _assert_standard_normal((g[part] - state) / expected_sd)


def test_pcm_programming_sd_is_the_published_polynomial():
    # Nandakumar et al. 2019: sd = 0.2635 + 1.9650 g - 1.1731 g^2 uS at g_max = 25 uS.
    for g in (0.0, 0.3, 1.0):
        published = (0.2635 + 1.9650 * g - 1.1731 * g**2) / 25.0
        assert float(to_numpy(dm.PCM_PROGRAMMING.sd_at(keras.ops.convert_to_tensor(g)))) == pytest.approx(published, rel=1e-6)


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
    weights, ranges = _states(states)
    device = mat.noise.DeviceModel(read=0.05)
    state = device.program(weights, seed=0)
    generator = keras.random.SeedGenerator(2)
    first = to_numpy(device.conductances(state, 10.0, generator))[0].astype(float)
    second = to_numpy(device.conductances(state, 10.0, generator))[0].astype(float)
    assert not np.allclose(first, second)
    for g, part in zip(states, ranges):
        _assert_standard_normal((first[part] - g) / (0.05 * g))


def test_pcm_read_noise_grows_as_accumulated_1_over_f_noise():
    states = [0.05, 0.5, 1.0]
    weights, ranges = _states(states)
    device = mat.noise.DeviceModel(read=dm.PCM_READ)
    state = device.program(weights, seed=0)
    t, t_read = dm.DAY, 250e-9
    read = to_numpy(device.conductances(state, t, seed=4))[0].astype(float)
    for g, part in zip(states, ranges):
        relative = min(0.0088 * g**-0.65, 0.2) * np.sqrt(np.log((t + t_read) / (2 * t_read)))
        _assert_standard_normal((read[part] - g) / (relative * g))
    # Right after programming the 1/f noise has had no time to accumulate.
    np.testing.assert_allclose(to_numpy(device.conductances(state, 0.0, seed=4)), to_numpy(state.conductances))


# -- stuck devices -------------------------------------------------------------------


def test_stuck_fractions_fixed_per_programming_and_not_drifting():
    g_min = 0.1
    weights, (part,) = _states([0.55], g_min=g_min, n=200_000)
    device = mat.noise.DeviceModel(stuck=mat.noise.StuckDevices(at_min=0.02, at_max=0.01), drift={"nu_mean": 0.05}, g_min=g_min)
    state = device.program(weights, seed=keras.random.SeedGenerator(0))
    g = to_numpy(state.conductances)[0][part]
    n = g.size
    assert _binomial_close(np.sum(np.isclose(g, g_min)), n, 0.02)
    assert _binomial_close(np.sum(np.isclose(g, 1.0)), n, 0.01)
    assert np.all(np.isclose(g, g_min) | np.isclose(g, 1.0) | np.isclose(g, 0.55))
    # A year later the same devices are stuck, at the same values; the others drifted.
    later = to_numpy(device.conductances(state, dm.YEAR))[0][part]
    stuck = np.isclose(g, g_min) | np.isclose(g, 1.0)
    np.testing.assert_array_equal(later[stuck], g[stuck])
    assert np.all(later[~stuck] < 0.55)
    # A new programming sticks other devices.
    again = to_numpy(device.program(weights, seed=keras.random.SeedGenerator(1)).conductances)[0][part]
    assert (np.isclose(again, 1.0) != np.isclose(g, 1.0)).any()


# -- drift -----------------------------------------------------------------------------


def test_drift_follows_the_power_law_exactly():
    weights, (part,) = _states([0.8], n=1000)
    device = mat.noise.DeviceModel(drift=mat.noise.Drift(nu_mean=0.07, nu_sd=0.0, t0=20.0))
    state = device.program(weights, seed=0)
    for t in (0.0, 1.0, dm.HOUR, dm.YEAR):
        g = to_numpy(device.conductances(state, t))[0][part]
        np.testing.assert_allclose(g, 0.8 * ((t + 20.0) / 20.0) ** -0.07, rtol=1e-5)


def _fitted_exponents(device, state, part, t0):
    """Least-squares slope of log g against log((t + t0) / t0), per device: -nu."""
    times = np.array([1.0, 60.0, dm.HOUR, dm.DAY, dm.MONTH, dm.YEAR])
    log_g = np.stack([np.log(to_numpy(device.conductances(state, t))[0][part].astype(float)) for t in times])
    log_t = np.log((times + t0) / t0)
    centred = log_t - log_t.mean()
    return -(centred @ (log_g - log_g.mean(axis=0))) / (centred @ centred)


def test_drift_exponent_distribution_is_recovered_from_g_of_t():
    nu_mean, nu_sd, t0 = 0.06, 0.02, 20.0
    weights, (part,) = _states([0.7])
    device = mat.noise.DeviceModel(drift=mat.noise.Drift(nu_mean, nu_sd, t0))
    nu = _fitted_exponents(device, device.program(weights, seed=1), part, t0)
    n = nu.size
    assert abs(nu.mean() - nu_mean) < 5 * nu_sd / np.sqrt(n)
    assert abs(nu.std() - nu_sd) < 5 * nu_sd / np.sqrt(2 * n)


def test_pcm_drift_exponents_depend_on_the_state_as_published():
    states = [0.01, 0.1, 0.3, 1.0]
    weights, ranges = _states(states, n=50_000)
    device = mat.noise.DeviceModel(drift=dm.PCM_DRIFT)
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
    drifted = to_numpy(device.read(state, dm.YEAR, compensation=False))
    assert np.abs(drifted).max() < 0.3 * np.abs(to_numpy(w)).max()
    np.testing.assert_allclose(to_numpy(device.read(state, dm.YEAR, compensation=True)), to_numpy(w), rtol=1e-4, atol=1e-5)


def test_compensation_is_measured_from_a_calibration_read():
    w = keras.random.normal((50, 20), seed=3)
    device = mat.noise.get("pcm")
    state = device.program(w, seed=0)
    factor = float(to_numpy(device.compensation_factor(state, dm.YEAR, seed=1)))
    read = device.read(state, dm.YEAR, seed=2, compensation=False)
    # The chip only sees currents: the factor restores the calibration signal to its time-0 value.
    restored = float(to_numpy(dm.calibration_signal(read))) * factor
    assert restored == pytest.approx(float(to_numpy(state.reference)), rel=0.05)
    assert factor > 1.5  # a year of nu ~ 0.06 drift leaves ~45 % of the conductance


# -- measured devices ---------------------------------------------------------------------


@pytest.mark.parametrize("distribution", ["empirical", "normal"])
def test_measured_sampling_reproduces_each_levels_mean_and_sd(distribution):
    measured = mat.noise.Measured.from_csv(mat.measured.example_csv_path(), distribution)
    targets, _, _ = measured.statistics()
    top = targets[-1]
    device = mat.noise.DeviceModel(programming=measured)
    n = 20_000
    weights, ranges = _states(list(targets / top), g_min=device.g_min, n=n)
    g = to_numpy(device.program(weights, seed=0).conductances)[0].astype(float) * top
    for level, part in enumerate(ranges):
        values = measured.samples[level]
        ddof = 0 if distribution == "empirical" else 1  # resampling reproduces the population sd
        mean, sd = values.mean(), values.std(ddof=ddof)
        kurtosis = np.mean((values - values.mean()) ** 4) / values.var() ** 2 if distribution == "empirical" else 3.0
        sample = g[part]
        assert abs(sample.mean() - mean) < 5 * sd / np.sqrt(n), level
        # Standard error of an sd estimate: sd * sqrt((kurtosis - 1) / (4 n)).
        assert abs(sample.std() - sd) < 5 * sd * np.sqrt((kurtosis - 1) / (4 * n)), level
        if distribution == "empirical":
            # Every programmed conductance is one of the level's measurements (float32 rounding).
            assert np.abs(sample[:, None] - values[None, :]).min(axis=1).max() < 1e-5 * top


def test_measured_device_uses_the_measured_levels_as_the_exporter_would():
    device = mat.noise.get("measured")
    targets, _, _ = device.programming.statistics()
    assert device.g_min == pytest.approx(targets[0] / targets[-1])
    assert device.levels == Levels(targets).normalised()


def _write(tmp_path, text):
    path = tmp_path / "levels.csv"
    path.write_text(text)
    return path


def test_measured_csv_errors_name_the_line(tmp_path):
    header = "# my device\nlevel,target_uS,conductance_uS\n"
    good = "0,1,1.1\n0,1,0.9\n"
    cases = [
        (good + "1,5,5.2\n1,5,4.8\n3,20,19\n3,20,21\n", r"level 2 is missing.*line 7"),
        (good + "1,5,5.2\n1,5,abc\n", r"line 6: conductance_uS must be a finite number, got 'abc'"),
        (good + "1,5,5.2\n1,5,\n", r"line 6: conductance_uS must be a finite number"),
        (good + "x,5,5.2\n", r"line 5: level must be a finite number"),
        (good + "1,5,5.2\n1,6,4.8\n", r"line 6: level 1 has target 6.0 uS"),
        (good + "1,5,5.2\n", r"line 5: level 1 needs at least two"),
        (good + "1,0.5,0.6\n1,0.5,0.4\n", r"line 5: level 1's target 0.5 uS must be above"),
        (good + "1,5\n", r"line 5: expected 3 values"),
    ]
    for body, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            mat.noise.Measured.from_csv(_write(tmp_path, header + body))
    with pytest.raises(InvalidArgumentError, match="missing target_uS"):
        mat.noise.Measured.from_csv(_write(tmp_path, "level,conductance_uS\n0,1\n"))


def test_shipped_example_is_labelled_synthetic_and_regenerable(tmp_path):
    path = mat.measured.example_csv_path()
    with open(path) as handle:
        assert handle.readline().startswith("# SYNTHETIC")
    targets, samples = mat.measured.read_measurements(path)
    assert len(targets) == 8 and all(len(s) == 40 for s in samples)
    mat.measured.write_synthetic_csv(tmp_path / "again.csv", seed=0)
    again_targets, again_samples = mat.measured.read_measurements(tmp_path / "again.csv")
    np.testing.assert_allclose(again_targets, targets)
    np.testing.assert_allclose(again_samples, samples, atol=1e-3)


# -- quantisation -------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("size", [1, 7, 1000, 12345])
def test_quantile_op_equals_numpy_on_every_path(q, size):
    # Tail quantiles of long tensors take ops.top_k, the others sort.
    w = np.random.default_rng(size).normal(size=size).astype("float32")
    got = keras.ops.convert_to_numpy(mat.levels.quantile_op(keras.ops.convert_to_tensor(w), q))
    np.testing.assert_allclose(got, np.quantile(w.astype("float64"), q), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("num_levels", [2, 5, 16])
def test_quantized_snaps_to_the_nearest_uniform_level_between_quantiles(num_levels):
    w = np.random.default_rng(0).normal(0, 0.4, 20_000).astype("float32")
    q = to_numpy(mat.noise.Quantized(num_levels).quantize(keras.ops.convert_to_tensor(w)))
    low, high = np.quantile(w, 0.01), np.quantile(w, 0.99)
    levels = np.linspace(low, high, num_levels)
    distance = np.abs(w[:, None] - levels[None, :])
    assert np.abs(q[:, None] - levels[None, :]).min(axis=1).max() < 1e-5  # on a level
    assert np.all(np.abs(w - q) <= distance.min(axis=1) + 1e-5)  # the nearest one
    assert len(np.unique(np.round(q, 5))) == num_levels


def test_quantized_explicit_levels_and_noise():
    w = keras.ops.convert_to_tensor(np.random.default_rng(1).uniform(-2, 2, 50_000).astype("float32"))
    scale = np.abs(to_numpy(w)).max()
    ternary = to_numpy(mat.noise.Quantized(levels=[-1, 0, 1]).quantize(w))
    np.testing.assert_allclose(ternary, Levels([-1, 0, 1]).snap(to_numpy(w) / scale) * scale, atol=1e-5)
    absolute = to_numpy(mat.noise.Quantized(levels=[-0.5, 0.5], relative_to="absolute").quantize(w))
    np.testing.assert_array_equal(absolute, np.where(to_numpy(w) >= 0, 0.5, -0.5))
    noisy = mat.noise.Quantized(4, noise=0.1)
    quantized = to_numpy(noisy.quantize(w))
    extra = to_numpy(w) + to_numpy(noisy.perturbation(w, seed=0)) - quantized
    _assert_standard_normal(extra / (0.1 * 2 * np.abs(quantized).max()))
    assert noisy.sd == 0.1 and noisy.with_sd(0.0).noise.sd == 0.0
    assert mat.noise.Quantized(4).with_sd(0.2).noise == mat.noise.Gaussian(0.2)


def test_quantized_training_is_straight_through():
    wrapper = mat.NoisyWeights(keras.layers.Dense(3), noise=mat.noise.Quantized(4), seed=0)
    wrapper.build((5, 8))
    plain = keras.layers.Dense(3)
    plain.build((5, 8))
    kernel, bias = wrapper.layer.get_weights()
    bias = np.random.default_rng(2).normal(size=bias.shape).astype("float32")
    wrapper.layer.set_weights([kernel, bias])
    quantize = mat.noise.Quantized(4).quantize
    plain.set_weights([to_numpy(quantize(kernel)), to_numpy(quantize(bias))])
    x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    np.testing.assert_allclose(to_numpy(wrapper(x, training=True)), to_numpy(plain(x)), rtol=1e-5, atol=1e-5)
    got = gradients(wrapper, wrapper.layer.trainable_weights, x)
    want = gradients(plain, plain.trainable_weights, x, training=False)
    for g, h in zip(got, want):
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-5)


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
    robust = mat.wrap(model, noise=mat.noise.PCM().with_time(dm.YEAR), seed=0)
    robust.save(tmp_path / "pcm.keras")
    loaded = keras.saving.load_model(tmp_path / "pcm.keras")
    assert loaded.layers[0].noise == robust.layers[0].noise
    assert loaded.layers[0].noise.time == dm.YEAR


def test_resolve_device_from_json_and_csv(tmp_path):
    from mat_keras.deployment import resolve_device

    device = resolve_device('{"programming": 0.02, "drift": {"nu_mean": 0.05, "nu_sd": 0.01}, "read": 0.01}')
    assert device == mat.noise.DeviceModel(programming=0.02, drift=mat.noise.Drift(0.05, 0.01), read=0.01)
    assert resolve_device(mat.measured.example_csv_path()) == mat.noise.MeasuredDevice()
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
