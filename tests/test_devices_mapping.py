"""The one weight <-> conductance mapping: numpy and keras.ops twins, exporter and device models."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import to_numpy
from mat_keras.devices import Device, mapping

DEVICES = {
    "uniform": Device(1e-6, 40e-6, 16),
    "offset": Device(1e-6, 40e-6, 17, scheme="offset"),
    "measured": Device(1e-6, 40e-6, [2e-6, 5e-6, 14e-6, 38e-6]),
    "offset-measured": Device(0.0, 1e-4, [1e-5, 3e-5, 4e-5, 9e-5], scheme="offset"),
}


def _weights(shape=(64, 24), seed=0):
    return np.random.default_rng(seed).normal(0, 0.3, shape).astype("float32")


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_numpy_and_ops_twins_agree(name):
    device = DEVICES[name]
    w = _weights()
    scale = np.abs(w).max()
    plus, minus = mapping.to_levels(np.clip(w / scale, -1, 1), device)
    expected = [mapping.level_conductances(plus, device)]
    if minus is not None:
        expected.append(mapping.level_conductances(minus, device))
    g, s = mapping.to_conductances_op(keras.ops.convert_to_tensor(w), device)
    assert float(to_numpy(s)) == pytest.approx(scale)
    np.testing.assert_allclose(to_numpy(g), np.stack(expected), rtol=1e-6, atol=1e-7)
    # Reading back: the twins agree on any conductances, and on levels equal the dequantised unit weights.
    noisy = np.stack(expected) * np.random.default_rng(1).uniform(0.9, 1.1, np.shape(expected))
    back = mapping.from_conductances(noisy[0], noisy[1] if minus is not None else None, scale, device)
    back_op = mapping.from_conductances_op(keras.ops.convert_to_tensor(noisy.astype("float32")), scale, device)
    np.testing.assert_allclose(to_numpy(back_op), back, rtol=1e-5, atol=1e-6)
    levels_back = mapping.from_conductances(expected[0], expected[-1], scale, device)
    np.testing.assert_allclose(levels_back, mapping.from_levels(plus, minus, device) * scale, atol=1e-6)


def test_an_analog_device_maps_without_snapping():
    device = Device(0.2, 1.0, None)
    w = keras.ops.convert_to_tensor([0.5, -1.0, 0.0])
    g, s = mapping.to_conductances_op(w, device)
    np.testing.assert_allclose(to_numpy(g), [[0.6, 0.2, 0.2], [0.2, 1.0, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(to_numpy(mapping.from_conductances_op(g, s, device)), to_numpy(w), atol=1e-6)


def test_a_device_models_spec_is_a_device():
    assert mat.noise.DeviceModel(levels=16, g_min=0.1).device == Device(0.1, 1.0, 16)
    assert mat.noise.RRAM().device == Device(1 / 40, 1.0, None)
    measured = mat.noise.MeasuredDevice()
    targets = measured.programming.device_levels.values
    assert measured.device == Device(targets[0], targets[-1], targets.tolist())


def test_mapping_is_the_exporters_differential_scheme():
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
