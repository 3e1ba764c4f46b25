"""BatchNorm folding: exact outputs before quantisation, and when not to fold."""

import keras
import numpy as np
import pytest

import export_cases
from mat_keras.export import Device, apply_tables, conductance_tables, fold_batchnorm, load_tables
from mat_keras.export.graph import plan_model

L = keras.layers


def _relative_error(a, b):
    a, b = export_cases.to_numpy(a), export_cases.to_numpy(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _functional(*layers, shape):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return export_cases.randomise_batchnorm(keras.Model(inputs, x))


FOLDABLE = {
    "Dense+BN": lambda: _functional(L.Dense(8), L.BatchNormalization(), shape=(10,)),
    "Dense(no bias)+BN": lambda: _functional(L.Dense(8, use_bias=False), L.BatchNormalization(), shape=(10,)),
    "Conv2D+BN": lambda: _functional(L.Conv2D(6, 3, use_bias=False), L.BatchNormalization(), shape=(7, 7, 3)),
    "Conv1D+BN+relu": lambda: _functional(L.Conv1D(6, 3), L.BatchNormalization(), L.ReLU(), shape=(9, 2)),
    "Depthwise+BN": lambda: _functional(L.DepthwiseConv2D(3, depth_multiplier=2), L.BatchNormalization(), shape=(7, 7, 3)),
    "Separable+BN": lambda: _functional(L.SeparableConv2D(5, 3), L.BatchNormalization(), shape=(7, 7, 3)),
    "Sequential": lambda: export_cases.randomise_batchnorm(
        keras.Sequential([keras.Input((10,)), L.Dense(8), L.BatchNormalization(), L.Dense(3)])
    ),
}


def test_channels_first_conv_folds_over_axis_1_only():
    # TensorFlow's CPU kernels cannot run NCHW convolutions: the plan only.
    def model(axis):
        return _functional(L.Conv2D(4, 3, data_format="channels_first"), L.BatchNormalization(axis=axis), shape=(3, 7, 7))

    assert plan_model(model(1)).entries[0].batchnorm is not None
    assert plan_model(model(-1)).entries[0].batchnorm is None


@pytest.mark.parametrize("case", list(FOLDABLE))
def test_folded_model_outputs_equal_the_original_within_1e5(case):
    model = FOLDABLE[case]()
    x = np.random.default_rng(0).normal(size=(4, *model.input_shape[1:])).astype("float32")
    folded = fold_batchnorm(model)
    names = [type(layer).__name__ for layer in folded.layers]
    assert "BatchNormalization" not in names and "Identity" in names
    assert _relative_error(folded(x), model(x)) <= 1e-5
    # The original is untouched.
    assert any(isinstance(layer, L.BatchNormalization) for layer in model.layers)


def test_nested_functional_model_is_walked_and_folded():
    inner = _functional(L.Conv2D(4, 3), L.BatchNormalization(), L.ReLU(), shape=(6, 6, 3))
    inner.name = "encoder"
    inputs = keras.Input((6, 6, 3))
    x = inner(inputs)
    x = L.Flatten()(x)
    outputs = L.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    plan = plan_model(model)
    assert [entry.name for entry in plan.entries] == [f"encoder/{inner.layers[1].name}", "head"]
    assert plan.entries[0].batchnorm is not None
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 3)).astype("float32")
    assert _relative_error(fold_batchnorm(model)(x), model(x)) <= 1e-5


NOT_FOLDABLE = {
    # An activation between the layer and the BatchNorm.
    "activation": lambda: _functional(L.Dense(8, activation="relu"), L.BatchNormalization(), shape=(10,)),
    # BatchNorm over another axis than the channels.
    "other axis": lambda: _functional(L.Conv1D(4, 3), L.BatchNormalization(axis=1), shape=(9, 2)),
    # No Dense/Conv before it.
    "first layer": lambda: _functional(L.BatchNormalization(), L.Dense(3), shape=(10,)),
}


@pytest.mark.parametrize("case", list(NOT_FOLDABLE))
def test_batchnorm_that_cannot_fold_stays_digital(case, tmp_path):
    model = NOT_FOLDABLE[case]()
    plan = plan_model(model)
    assert all(entry.batchnorm is None for entry in plan.entries)
    assert [type(layer).__name__ for _, layer in plan.digital] == ["BatchNormalization"]
    summary = conductance_tables(model, tmp_path / "t", formats="npz")
    assert summary.digital == [layer.name for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    # The re-imported model keeps the BatchNorm and its statistics.
    x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype("float32")
    chip = apply_tables(model, tmp_path / "t")
    assert any(isinstance(layer, L.BatchNormalization) for layer in chip.layers)
    assert _relative_error(chip(x), model(x)) < 0.2


def test_layer_feeding_two_consumers_is_not_folded():
    inputs = keras.Input((10,))
    dense = L.Dense(8)(inputs)
    normalised = L.BatchNormalization()(dense)
    model = keras.Model(inputs, L.Add()([dense, normalised]))
    assert all(entry.batchnorm is None for entry in plan_model(model).entries)
    model = keras.Model(inputs, [dense, normalised])  # also a model output
    assert all(entry.batchnorm is None for entry in plan_model(model).entries)


def test_apply_tables_with_folded_batchnorm_keeps_outputs_right(tmp_path):
    # 256 levels: the quantised model stays close to the original, which it
    # could not if the BatchNorm were applied twice or dropped.
    model = FOLDABLE["Conv2D+BN"]()
    conductance_tables(model, tmp_path / "t", device=Device(1e-6, 40e-6, 256), formats="npz")
    assert load_tables(tmp_path / "t").layers[0].folded_batchnorm is not None
    chip = apply_tables(model, tmp_path / "t")
    x = np.random.default_rng(0).normal(size=(4, 7, 7, 3)).astype("float32")
    assert _relative_error(chip(x), model(x)) < 0.02
    no_fold = tmp_path / "nofold"
    conductance_tables(model, no_fold, device=Device(1e-6, 40e-6, 256), formats="npz", fold_batchnorm=False)
    chip = apply_tables(model, no_fold)
    assert any(isinstance(layer, L.BatchNormalization) for layer in chip.layers)
    assert _relative_error(chip(x), model(x)) < 0.02
