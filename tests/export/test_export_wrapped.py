"""A model wrapped with `wrap`'s defaults exports, and re-imports within half a level step."""

import numpy as np
import pytest

import export_cases
import mat_keras as mat
from export_cases import L, keras, to_numpy
from mat_keras.export import Device, apply_tables, conductance_tables, graph, load_tables


def _model():
    inputs = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = L.ReLU()(L.BatchNormalization(name="bn")(h))
    h = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(h)
    h = L.DepthwiseConv2D(3, name="dw")(h)
    h = L.LSTM(6, return_sequences=True, name="lstm")(L.Reshape((14, 14 * 4))(h))
    h = L.MultiHeadAttention(2, 4, name="mha")(h, h)
    outputs = L.Dense(3, name="head")(L.Flatten()(h))
    return export_cases.randomise_batchnorm(keras.Model(inputs, outputs, name="defaults"))


def _original(model, path, attr):
    """The float value a matrix must stand for: the variable, BatchNorm folded into `conv`."""
    value = to_numpy(export_cases.getattr_path(graph.find(model, path), attr)).astype(np.float64)
    if path == ("conv",) and attr == "kernel":
        gamma, _, _, variance = (to_numpy(w) for w in model.get_layer("bn").weights)
        value = value * gamma / np.sqrt(variance + model.get_layer("bn").epsilon)
    return value


@pytest.mark.parametrize("batchnorm", [False, True])
def test_default_wrapped_model_exports_and_reimports_within_half_a_step(batchnorm, tmp_path):
    model = _model()
    robust = mat.wrap(model, noise=0.1, seed=0, batchnorm=batchnorm)
    wrapped = ["conv", "up", "dw", "lstm", "mha", "head"]
    assert sorted(layer.layer.name for layer in mat.noisy_layers(robust)) == sorted(wrapped + ["bn"] * batchnorm)
    plain = mat.strip(robust)
    device = Device(1e-6, 40e-6, 16)
    conductance_tables(plain, tmp_path / "t", device=device, formats=("npz",))
    tables = load_tables(tmp_path / "t")
    assert [lt.name for lt in tables.layers] == [
        "conv", "up", "dw", "lstm", "mha/query", "mha/key", "mha/value", "mha/attention_output", "head",
    ]
    chip = apply_tables(plain, tmp_path / "t")
    for layer_table in tables.layers:
        chip_layer = graph.find(chip, layer_table.path)
        for table in layer_table.matrices.values():
            got = to_numpy(export_cases.getattr_path(chip_layer, table.variable))
            want = _original(model, layer_table.path, table.variable)
            bound = device.weight_step / 2 * table.scale
            assert np.all(np.abs(got - want) <= bound * (1 + 1e-5) + 1e-7), (layer_table.name, table.name)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    assert np.all(np.isfinite(to_numpy(chip(x))))
