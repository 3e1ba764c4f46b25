"""wrap() and strip(): selection, weights kept, nesting, errors."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import to_numpy

# The core subset: CI runs it on the JAX and PyTorch backends too (`pytest -m backends`).
pytestmark = pytest.mark.backends


def _functional():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(3, name="head")(h)
    return keras.Model(inputs, outputs, name="net")


def _sequential():
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="d1"), keras.layers.Dense(2, name="d2")])


@pytest.mark.parametrize("build", [_functional, _sequential])
def test_wrap_keeps_weights_and_strip_inverts(build):
    model = build()
    x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype("float32")
    robust = mat.wrap(model, noise=0.1, seed=0)
    assert isinstance(robust, type(model))
    np.testing.assert_array_equal(to_numpy(robust(x)), to_numpy(model(x)))
    plain = mat.strip(robust)
    assert not mat.noisy_layers(plain)
    names = lambda m: [layer.name for layer in m.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert names(plain) == names(model)
    np.testing.assert_array_equal(to_numpy(plain(x)), to_numpy(model(x)))
    # Copies, not shared layers: training the robust model leaves the original alone.
    kernel = mat.noisy_layers(robust)[0].layer.kernel
    kernel.assign(np.zeros(kernel.shape, "float32"))  # ops.zeros_like(variable) fails on JAX 0.10
    assert np.abs(to_numpy(model.weights[0])).sum() > 0


def test_default_selection_and_batchnorm_option():
    names = lambda m: sorted(layer.layer.name for layer in mat.noisy_layers(m))
    assert names(mat.wrap(_functional())) == ["conv", "head"]
    assert names(mat.wrap(_functional(), batchnorm=True)) == ["bn", "conv", "head"]


def test_selection_by_name_type_and_predicate():
    names = lambda m: sorted(layer.layer.name for layer in mat.noisy_layers(m))
    assert names(mat.wrap(_functional(), layers="head")) == ["head"]
    assert names(mat.wrap(_functional(), layers=[keras.layers.Conv2D])) == ["conv"]
    assert names(mat.wrap(_functional(), layers=lambda layer: layer.name.startswith("b"))) == ["bn"]


def test_nested_models_are_wrapped_inside():
    inner = _sequential()
    inputs = keras.Input((5,))
    outer = keras.Model(inputs, keras.layers.Dense(1, name="top")(inner(inputs)))
    robust = mat.wrap(outer, seed=0)
    assert sorted(layer.layer.name for layer in mat.noisy_layers(robust)) == ["d1", "d2", "top"]
    x = np.ones((2, 5), "float32")
    np.testing.assert_allclose(to_numpy(robust(x)), to_numpy(outer(x)), rtol=1e-6)


def test_rewrapping_changes_the_noise_model():
    robust = mat.wrap(_sequential(), noise=0.1)
    again = mat.wrap(robust, noise=mat.noise.Multiplicative(0.2))
    assert [layer.noise for layer in mat.noisy_layers(again)] == [mat.noise.Multiplicative(0.2)] * 2


def test_wrap_errors_name_the_layer():
    with pytest.raises(mat.errors.WrapError, match="'flatten' \\(Flatten\\) holds no trainable weights"):
        mat.wrap(_functional(), layers=["flatten"])
    with pytest.raises(mat.errors.WrapError, match="No layer named 'nope'"):
        mat.wrap(_functional(), layers="nope")
    with pytest.raises(mat.errors.WrapError, match="nothing to wrap"):
        mat.wrap(keras.Sequential([keras.Input((3,)), keras.layers.ReLU()]))
    with pytest.raises(mat.errors.InvalidArgumentError, match="layers="):
        mat.wrap(_functional(), layers=[3])


def test_subclassed_model_is_a_clear_error():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.ones((1, 3), "float32"))
    with pytest.raises(mat.errors.WrapError, match="subclassed"):
        mat.wrap(net)
