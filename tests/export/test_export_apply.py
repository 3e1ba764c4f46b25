"""apply_tables: the chip's weights in a model copy, with seeded programming noise."""

import json
import math

import keras
import numpy as np
import pytest

import export_cases
import mat_keras
from mat_keras.errors import InvalidArgumentError
from mat_keras.export import Device, apply_tables, conductance_tables, load_tables
from mat_keras.noise import Gaussian

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
