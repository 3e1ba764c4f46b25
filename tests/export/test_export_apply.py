"""apply_tables: the chip's weights in a model copy, with seeded programming noise or a device model."""

import json
import math

import keras
import numpy as np
import pytest

import export_cases
import mat_keras
from mat_keras.errors import InvalidArgumentError
from mat_keras.export import Device, apply_tables, conductance_tables, load_tables
from mat_keras.noise import PCM, DeviceModel, Gaussian, MeasuredDevice

L = keras.layers
SD = 0.02


def _wide_dense(tmp_path, scheme):
    """A 100x400 Dense with weights uniform in [-1, 1], exported at 16 levels."""
    model = keras.Sequential([keras.Input((100,)), L.Dense(400, name="wide")])
    rng = np.random.default_rng(0)
    model.get_layer("wide").kernel.assign(rng.uniform(-1, 1, (100, 400)).astype("float32"))
    device = Device(1e-6, 40e-6, 16, scheme=scheme)
    conductance_tables(model, tmp_path / scheme, device=device, formats="npz")
    return model, load_tables(tmp_path / scheme)


def _kernel(model):
    return export_cases.to_numpy(model.get_layer("wide").kernel).astype(np.float64)


def test_programming_noise_is_seeded(tmp_path):
    model, tables = _wide_dense(tmp_path, "differential")
    a = _kernel(apply_tables(model, tables, programming_noise=SD, seed=3))
    b = _kernel(apply_tables(model, tables, programming_noise=SD, seed=3))
    c = _kernel(apply_tables(model, tables, programming_noise=SD, seed=4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # A number means Gaussian(sd, relative_to="absolute") on normalised conductance.
    d = _kernel(apply_tables(model, tables, programming_noise=Gaussian(SD, relative_to="absolute"), seed=3))
    np.testing.assert_array_equal(a, d)


def test_offset_scheme_noise_has_the_specified_sd(tmp_path):
    model, tables = _wide_dense(tmp_path, "offset")
    table = tables["wide"].matrices["kernel"]
    clean = table.weights().astype(np.float64)
    noisy = _kernel(apply_tables(model, tables, programming_noise=SD, seed=0))
    # Away from the range ends (no clipping), dw = 2 * s * du with du ~ N(0, SD).
    inside = np.abs(clean) <= 0.8 * table.scale
    unit = (noisy - clean)[inside] / (2 * table.scale)
    n = unit.size
    assert n > 20000
    assert abs(unit.mean()) < 4 * SD / math.sqrt(n)
    assert unit.std() == pytest.approx(SD, rel=4 / math.sqrt(2 * n))


def test_differential_noise_matches_the_two_device_model(tmp_path):
    model, tables = _wide_dense(tmp_path, "differential")
    table = tables["wide"].matrices["kernel"]
    clean = table.weights().astype(np.float64)
    noisy = _kernel(apply_tables(model, tables, programming_noise=SD, seed=1))
    # Positive weights: G+ mid-range gets N(0, SD); G- idle at g_min gets
    # N(0, SD) clipped at 0, i.e. max(N, 0): mean SD/sqrt(2 pi), variance
    # SD^2 (1/2 - 1/(2 pi)).
    chosen = (clean >= 0.2 * table.scale) & (clean <= 0.8 * table.scale)
    unit = (noisy - clean)[chosen] / table.scale
    n = unit.size
    expected_sd = SD * math.sqrt(1.5 - 1 / (2 * math.pi))
    assert unit.mean() == pytest.approx(-SD / math.sqrt(2 * math.pi), abs=4 * expected_sd / math.sqrt(n))
    assert unit.std() == pytest.approx(expected_sd, rel=4 / math.sqrt(2 * n))
    # Conductances never leave [g_min, g_max]: weights stay within +-scale.
    assert np.all(np.abs(noisy) <= table.scale * (1 + 1e-6))


def test_apply_returns_a_copy_and_leaves_the_model_alone(tmp_path, mlp):
    before = [w.copy() for w in mlp.get_weights()]
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    chip = apply_tables(mlp, tmp_path / "t", programming_noise=0.05, seed=0)
    assert chip is not mlp
    for old, new in zip(before, mlp.get_weights()):
        np.testing.assert_array_equal(old, new)
    tables = load_tables(tmp_path / "t")
    np.testing.assert_array_equal(export_cases.to_numpy(chip.get_layer("logits").bias), tables["logits"].bias)


def test_apply_to_a_different_model_is_refused(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    other = keras.Sequential([keras.Input((20,)), L.Dense(16, name="hidden"), L.Dense(4, name="logits")])
    with pytest.raises(InvalidArgumentError, match="'logits' variable 'kernel' has shape"):
        apply_tables(other, tmp_path / "t")
    renamed = keras.Sequential([keras.Input((20,)), L.Dense(16, name="first"), L.Dense(3, name="logits")])
    with pytest.raises(InvalidArgumentError, match="no layer 'hidden'"):
        apply_tables(renamed, tmp_path / "t")


def test_bad_programming_noise(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    with pytest.raises(InvalidArgumentError):
        apply_tables(mlp, tmp_path / "t", programming_noise=-0.1)
    with pytest.raises(InvalidArgumentError, match="Unknown noise model"):
        apply_tables(mlp, tmp_path / "t", programming_noise="telegraph")


@pytest.mark.skipif(not hasattr(mat_keras, "wrap"), reason="the wrapper is not there yet")
def test_wrapped_model_exports_its_clean_weights(tmp_path, mlp):
    robust = mat_keras.wrap(mlp, noise=0.1, seed=0)
    conductance_tables(mlp, tmp_path / "plain", formats="npz")
    conductance_tables(robust, tmp_path / "robust", formats="npz")
    plain = json.loads((tmp_path / "plain" / "manifest.json").read_text())["files"]
    wrapped = json.loads((tmp_path / "robust" / "manifest.json").read_text())["files"]
    assert plain == wrapped
    chip = apply_tables(robust, tmp_path / "robust")
    assert not any(isinstance(layer, mat_keras.NoisyWeights) for layer in chip.layers)


# -- device models -------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["differential", "offset"])
def test_a_device_model_without_noise_gives_the_dequantised_tables(tmp_path, scheme):
    model, tables = _wide_dense(tmp_path, scheme)
    clean = tables["wide"].matrices["kernel"].weights()
    chip = apply_tables(model, tables, programming_noise=DeviceModel(), seed=0, time="1y")
    np.testing.assert_allclose(_kernel(chip), clean, rtol=0, atol=1e-6)


def test_pcm_programs_the_tables_as_the_device_model_programs_the_weights(tmp_path):
    model, tables = _wide_dense(tmp_path, "differential")
    clean = tables["wide"].matrices["kernel"].weights().astype(np.float64)
    # The PCM preset on the tables' terms: their 16 levels from 1 to 40 uS.
    pcm = PCM(levels=16, g_min=1 / 40)
    state = pcm.program(keras.ops.convert_to_tensor(clean, "float32"), seed=5)
    expected = export_cases.to_numpy(pcm.read(state, 0.0, seed=5, compensation=False)) - clean
    error = _kernel(apply_tables(model, tables, programming_noise="pcm", seed=3)) - clean
    n = error.size
    assert error.std() == pytest.approx(expected.std(), rel=6 / math.sqrt(n))
    assert error.mean() == pytest.approx(expected.mean(), abs=6 * expected.std() / math.sqrt(n))
    again = _kernel(apply_tables(model, tables, programming_noise=pcm, seed=3))
    other = _kernel(apply_tables(model, tables, programming_noise="pcm", seed=4))
    np.testing.assert_array_equal(error + clean, again)
    assert not np.allclose(again, other)


def test_drift_shrinks_the_weights_and_compensation_restores_them(tmp_path):
    model, tables = _wide_dense(tmp_path, "differential")
    clean = tables["wide"].matrices["kernel"].weights()
    device = DeviceModel(drift={"nu_mean": 0.05, "nu_sd": 0.0, "t0": 20.0})
    day = _kernel(apply_tables(model, tables, programming_noise=device, seed=0, time="1d", compensation=False))
    np.testing.assert_allclose(day, clean * (1 + 86400 / 20) ** -0.05, rtol=1e-5, atol=1e-7)
    compensated = _kernel(apply_tables(model, tables, programming_noise=device, seed=0, time=86400.0))
    np.testing.assert_allclose(compensated, clean, rtol=1e-5, atol=1e-7)


def test_a_measured_device_programs_tables_of_its_levels(tmp_path):
    measured = MeasuredDevice()
    targets = measured.programming.device_levels.values * 1e-6
    model = keras.Sequential([keras.Input((50,)), L.Dense(40, name="wide")])
    device = Device(targets[0], targets[-1], levels=targets.tolist())
    conductance_tables(model, tmp_path / "measured", device=device, formats="npz")
    clean = load_tables(tmp_path / "measured")["wide"].matrices["kernel"].weights()
    noisy = _kernel(apply_tables(model, tmp_path / "measured", programming_noise="measured", seed=0))
    assert 0 < np.std(noisy - clean) < 0.2 * np.abs(clean).max()
    conductance_tables(model, tmp_path / "uniform", formats="npz")
    with pytest.raises(InvalidArgumentError, match="levels .* are not the tables'"):
        apply_tables(model, tmp_path / "uniform", programming_noise=measured)


@pytest.mark.parametrize(
    "noise, options, message",
    [
        ("pcm", {"time": -1.0}, "time must be a finite number of seconds >= 0"),
        ("pcm", {"time": "soon"}, "Cannot read 'soon' as a time"),
        (0.02, {"time": "1y"}, "need a device model such as 'pcm'"),
        (None, {"compensation": True}, "need a device model such as 'pcm'"),
        ("telegraph", {"time": "1y"}, "Unknown noise model 'telegraph'"),
        (DeviceModel(levels=8, g_min=1 / 40), {}, "are not the tables'"),
    ],
)
def test_bad_device_model_options(tmp_path, mlp, noise, options, message):
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    with pytest.raises(InvalidArgumentError, match=message):
        apply_tables(mlp, tmp_path / "t", programming_noise=noise, **options)
