"""Embedding, EinsumDense and MultiHeadAttention: layouts, biases, round trips.

As in `test_export_roundtrip.py`, the expected matrices come from the
model's own variables; the re-imported model must compute what the model
computes with its weights snapped to the tables' levels.
"""

import os
import re

import keras
import numpy as np
import pytest

import export_cases
import mat_keras
from mat_keras.export import UnsupportedLayerError, apply_tables, conductance_tables, graph, load_tables
from test_export_roundtrip import SETTINGS

L = keras.layers

# name -> (equation, output_shape, bias_axes, input shape, matrix shape)
EINSUM_CASES = {
    "2-D": ("ab,bc->ac", (4,), "c", (3,), (3, 4)),
    "sequence, no bias": ("abc,cd->abd", (5, 4), None, (5, 3), (3, 4)),
    "sequence": ("abc,cd->abd", (5, 4), "d", (5, 3), (3, 4)),
    "MHA projection": ("abc,cde->abde", (5, 2, 4), "de", (5, 3), (3, 8)),
    "MHA output": ("abcd,cde->abe", (5, 4), "e", (5, 2, 3), (6, 4)),
    "bias over part of the columns": ("abc,cde->abde", (5, 2, 4), "e", (5, 3), (3, 8)),
    "bias over a non-kernel axis": ("abc,cd->abd", (5, 4), "bd", (5, 3), (3, 4)),
}
PARTIAL_BIAS = ("bias over part of the columns", "bias over a non-kernel axis")

UNSUPPORTED_EQUATIONS = {
    "batched matrices": ("abc,bcd->abd", (5, 4), (5, 3)),
    "output axes first": ("abc,dc->abd", (5, 4), (5, 3)),
    "ellipsis": ("...b,bc->...c", (4,), (5, 3)),
    "nothing contracted": ("ab,c->abc", (3, 4), (3,)),
}

MHA_MATRICES = {
    "mha/query": (8, 6),
    "mha/key": (8, 6),
    "mha/value": (8, 6),
    "mha/attention_output": (6, 8),
}


def _randomise_biases(model, seed=1):
    """Gives every bias random values, so that their round trip is tested."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.path.endswith("bias"):
            variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
    return model


def einsum_model(case):
    """Returns `(model, x)`: one EinsumDense named `layer` of `EINSUM_CASES[case]`."""
    equation, output_shape, bias_axes, shape, _ = EINSUM_CASES[case]
    layer = L.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes, name="layer")
    model = _randomise_biases(export_cases._model(shape, layer, name="einsum"))
    return model, np.random.default_rng(2).normal(size=(4, *shape)).astype("float32")


def embedding_model():
    inputs = keras.Input((6,), dtype="int32")
    model = keras.Model(inputs, L.Embedding(10, 3, name="layer")(inputs), name="embedding")
    return model, np.random.default_rng(2).integers(0, 10, size=(4, 6)).astype("int32")


def mha_model():
    inputs = keras.Input((5, 8))
    outputs = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(inputs, inputs)
    model = _randomise_biases(keras.Model(inputs, outputs, name="attention"))
    return model, np.random.default_rng(2).normal(size=(4, 5, 8)).astype("float32")


def snapped_model(model, tables):
    """A copy of `model` with the tables' dequantised weights (and bias rows)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer_table in tables:
        layer = graph.find(copy, layer_table.path)
        for table in layer_table.matrices.values():
            kernel, bias_row = table.split(table.weights())
            getattr(layer, table.variable).assign(kernel)
            if bias_row is not None:
                layer.bias.assign(bias_row.reshape(layer.bias.shape))
    return copy


def _export(model, tmp_path, setting):
    conductance_tables(model, tmp_path / "t", tile=(5, 4), formats=("npz",), **SETTINGS[setting])
    return load_tables(tmp_path / "t")


def _check_matrix(table, matrix, setting):
    """The table holds `matrix` within half a level step, as in test_export_roundtrip."""
    assert table.shape == matrix.shape
    axis = None if SETTINGS[setting]["per"] == "layer" else 0
    np.testing.assert_allclose(table.scale, np.max(np.abs(matrix), axis=axis), rtol=1e-6)
    bound = SETTINGS[setting]["device"].weight_step / 2 * table.scale
    assert np.all(np.abs(table.weights() - matrix) <= bound * (1 + 1e-5) + 1e-7)


def _assert_same_outputs(chip, reference, x):
    np.testing.assert_allclose(
        export_cases.to_numpy(chip(x)), export_cases.to_numpy(reference(x)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("case", list(EINSUM_CASES))
def test_einsum_dense_round_trip(case, setting, tmp_path):
    model, x = einsum_model(case)
    layer = model.get_layer("layer")
    row = SETTINGS[setting]["bias"] == "row"
    if row and case in PARTIAL_BIAS:
        with pytest.raises(UnsupportedLayerError, match=r"Layer 'layer' cannot take bias='row'.*bias='digital'"):
            _export(model, tmp_path, setting)
        assert os.listdir(tmp_path) == []
        return
    tables = _export(model, tmp_path, setting)
    (layer_table,) = tables.layers
    table = layer_table.matrices["kernel"]
    matrix = export_cases.to_numpy(layer.kernel).reshape(EINSUM_CASES[case][-1])
    bias = export_cases.to_numpy(layer.bias) if layer.bias_axes else None
    if row and bias is not None:
        matrix = np.vstack([matrix, bias.reshape(1, -1)])
    _check_matrix(table, matrix, setting)
    assert table.bias_row == (row and bias is not None)
    if row or bias is None:
        assert layer_table.bias is None
    else:  # A digital bias keeps its shape and its exact values.
        np.testing.assert_array_equal(layer_table.bias, bias)

    chip = apply_tables(model, tables)
    _assert_same_outputs(chip, snapped_model(model, tables), x)
    # The layout, independently of Keras: out = einsum(x, kernel) + bias.
    kernel, bias_row = table.split(table.weights())
    chip_bias = export_cases.to_numpy(chip.get_layer("layer").bias) if bias is not None else 0.0
    if bias_row is not None:
        np.testing.assert_array_equal(chip_bias, bias_row.reshape(bias.shape))
    expected = np.einsum(layer.equation, x, kernel) + chip_bias
    np.testing.assert_allclose(export_cases.to_numpy(chip(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(UNSUPPORTED_EQUATIONS))
def test_unsupported_einsum_equation_names_the_layer_and_equation(case, tmp_path):
    equation, output_shape, shape = UNSUPPORTED_EQUATIONS[case]
    layer = L.EinsumDense(equation, output_shape=output_shape, name="odd")
    model = export_cases._model(shape, layer, name="odd_einsum")
    with pytest.raises(UnsupportedLayerError, match=rf"Layer 'odd' \(EinsumDense '{re.escape(equation)}'\)"):
        conductance_tables(model, tmp_path / "t")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_embedding_round_trip(setting, tmp_path):
    model, ids = embedding_model()
    tables = _export(model, tmp_path, setting)
    (layer_table,) = tables.layers
    assert list(layer_table.matrices) == ["embeddings"] and layer_table.bias is None
    table = layer_table.matrices["embeddings"]
    assert not table.bias_row  # an embedding has no bias, even with bias="row"
    _check_matrix(table, export_cases.to_numpy(model.get_layer("layer").embeddings), setting)
    chip = apply_tables(model, tables)
    # A token reads its row of the matrix.
    np.testing.assert_array_equal(export_cases.to_numpy(chip(ids)), table.weights()[ids])
    _assert_same_outputs(chip, snapped_model(model, tables), ids)


def test_embedding_with_lora_is_refused(tmp_path):
    model, _ = embedding_model()
    model.get_layer("layer").enable_lora(2)
    with pytest.raises(UnsupportedLayerError, match="Layer 'layer' has LoRA enabled"):
        conductance_tables(model, tmp_path / "t")


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_multi_head_attention_exports_its_projections(setting, tmp_path):
    model, x = mha_model()
    tables = _export(model, tmp_path, setting)
    assert [layer_table.name for layer_table in tables] == list(MHA_MATRICES)
    for layer_table in tables:
        table = layer_table.matrices["kernel"]
        dense = graph.find(model, layer_table.path)
        matrix = export_cases.to_numpy(dense.kernel).reshape(MHA_MATRICES[layer_table.name])
        if SETTINGS[setting]["bias"] == "row":  # MHA's biases span the kernels' output axes.
            matrix = np.vstack([matrix, export_cases.to_numpy(dense.bias).reshape(1, -1)])
        _check_matrix(table, matrix, setting)
    _assert_same_outputs(apply_tables(model, tables), snapped_model(model, tables), x)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_group_query_attention_exports_its_projections(setting, tmp_path):
    inputs = keras.Input((5, 8))
    attention = L.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2, name="gqa")
    model = _randomise_biases(keras.Model(inputs, attention(inputs, inputs), name="gqa_model"))
    x = np.random.default_rng(2).normal(size=(4, 5, 8)).astype("float32")
    tables = _export(model, tmp_path, setting)
    projections = [f"gqa/{sub.name}" for sub in attention._layers if isinstance(sub, L.EinsumDense)]
    assert [layer_table.name for layer_table in tables] == projections and len(projections) == 4
    _assert_same_outputs(apply_tables(model, tables), snapped_model(model, tables), x)


def test_wrapped_einsum_model_exports_its_clean_weights(tmp_path):
    model, x = einsum_model("MHA projection")
    robust = mat_keras.wrap(model, noise=0.1, seed=0)
    assert mat_keras.noisy_layers(robust)
    np.testing.assert_array_equal(
        export_cases.to_numpy(mat_keras.strip(robust)(x)), export_cases.to_numpy(model(x))
    )
    conductance_tables(model, tmp_path / "plain", formats="npz")
    conductance_tables(robust, tmp_path / "robust", formats="npz")
    plain, wrapped = load_tables(tmp_path / "plain"), load_tables(tmp_path / "robust")
    assert plain.manifest["files"] == wrapped.manifest["files"]
    _assert_same_outputs(apply_tables(robust, wrapped), snapped_model(model, plain), x)
