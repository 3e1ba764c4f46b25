"""The layer table: resolution order, unrolling, and a registered layer type read by every user."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_keras import layers as table
from mat_testing import to_numpy

pytestmark = pytest.mark.backends
L = keras.layers


class Affine(L.Layer):
    """A custom layer: `x @ w + b`, its bias two-dimensional and not named bias."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
        self.b = self.add_weight(shape=(1, self.units), initializer="ones", name="b")

    def call(self, x):
        return x @ self.w + self.b

    def get_config(self):
        return {**super().get_config(), "units": self.units}


AFFINE = table.LayerType(
    Affine,
    matrices=(table.Matrix("kernel", "w", 1, None, True, "in x out"),),
    bias="b",
    export=table.CROSSBAR,
    wrap=True,
)


@pytest.fixture
def affine_registered():
    table.register_layer_type(AFFINE)
    yield
    table.unregister_layer_type(AFFINE)


def test_resolution_takes_the_most_specific_row():
    class MyCell(L.Layer):
        state_size = 2

    assert table.lookup(L.LSTM(2)).layer_class is L.LSTM
    assert table.lookup(L.RNN(MyCell())).layer_class is L.RNN
    assert table.lookup(type("MyDense", (L.Dense,), {})(2)).layer_class is L.Dense
    assert table.lookup(L.Flatten()) is None
    assert table.lookup(keras.Sequential([])).layer_class is keras.Model


def test_a_registered_row_goes_before_the_built_in_ones():
    Frozen = type("FrozenDense", (L.Dense,), {})
    row = table.register_layer_type(table.LayerType(Frozen))
    try:
        assert table.lookup(Frozen(2)) is row and table.lookup(L.Dense(2)).layer_class is L.Dense
        model = keras.Sequential([keras.Input((3,)), Frozen(2, name="frozen"), L.Dense(2, name="head")])
        assert [w.layer.name for w in mat.noisy_layers(mat.wrap(model, noise=0.1))] == ["head"]
    finally:
        table.unregister_layer_type(row)
    with pytest.raises(TypeError, match="takes a LayerType"):
        table.register_layer_type(L.Dense)


@pytest.mark.parametrize(
    "shape,column_axes,inputs_last", [((4, 6), 1, False), ((3, 3, 2, 5), 2, False), ((2, 3, 5, 4), 3, True)]
)
def test_unroll_and_roll_are_inverse_in_numpy_and_keras_ops(shape, column_axes, inputs_last):
    spec = table.Matrix("kernel", "kernel", column_axes, inputs_last=inputs_last)
    kernel = np.random.default_rng(0).normal(size=shape).astype("float32")
    matrix = spec.unroll(kernel)
    assert matrix.ndim == 2 and matrix.size == kernel.size
    np.testing.assert_array_equal(spec.roll(matrix, shape), kernel)
    np.testing.assert_array_equal(to_numpy(spec.unroll(keras.ops.convert_to_tensor(kernel), xp=keras.ops)), matrix)


def test_names_of_the_table_biases_are_biases_by_name_too():
    # Callers without the layer (the deployment sweep) tell biases by name.
    layers = [L.Dense(2), L.Conv2DTranspose(2, 2), L.GRU(2), L.BatchNormalization(), L.LayerNormalization()]
    shapes = [(1, 3), (1, 4, 4, 3), (1, 4, 3), (2, 3), (2, 3)]
    for layer, shape in zip(layers, shapes):
        layer.build(shape)
        roles = table.variable_roles(layer)
        biases = [v for v in layer.weights if roles.get(id(v)) == table.BIAS]
        assert biases and all(table.is_bias(v) for v in biases), type(layer).__name__


def test_clipping_leaves_two_dimensional_biases_to_include_bias():
    model = keras.Sequential([keras.Input((5, 3)), L.GRU(4, name="gru")])  # reset_after: a (2, 12) bias
    gru = model.get_layer("gru")
    clipped = {id(v) for v in mat.WeightClip(2.5).clipped_variables(model)}
    assert clipped == {id(gru.cell.kernel), id(gru.cell.recurrent_kernel)}
    assert id(gru.cell.bias) in {id(v) for v in mat.WeightClip(2.5, include_bias=True).clipped_variables(model)}


def test_a_registered_type_is_wrapped_clipped_and_exported(affine_registered, tmp_path):
    from mat_keras import export

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Affine(3, name="affine")(inputs))
    model.get_layer("affine").b.assign(np.full((1, 3), 0.5, "float32"))
    robust = mat.wrap(model, noise=0.2, seed=0, noise_bias=False)
    (wrapper,) = mat.noisy_layers(robust)
    assert [v.path.split("/")[-1] for v in wrapper.noisy_variables] == ["w"]
    clipped = mat.WeightClip(2.5).clipped_variables(robust)
    assert [v.path.split("/")[-1] for v in clipped] == ["w"]
    export.conductance_tables(model, tmp_path / "t", formats=("npz",))
    (layer_table,) = export.load_tables(tmp_path / "t").layers
    assert layer_table.matrices["kernel"].shape == (4, 3)
    chip = export.apply_tables(model, tmp_path / "t")
    np.testing.assert_array_equal(to_numpy(chip.get_layer("affine").b), to_numpy(model.get_layer("affine").b))
