"""Quantised weights (QAT): quantiles, nearest levels, explicit levels, straight-through training."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from device_testing import assert_standard_normal
from mat_testing import gradients, to_numpy
from mat_keras.devices.levels import Levels


@pytest.mark.parametrize("q", [0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("size", [1, 7, 1000, 12345])
def test_quantile_op_equals_numpy_on_every_path(q, size):
    # Tail quantiles of long tensors take ops.top_k, the others sort.
    w = np.random.default_rng(size).normal(size=size).astype("float32")
    got = keras.ops.convert_to_numpy(mat.noise.quantile_op(keras.ops.convert_to_tensor(w), q))
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
    assert_standard_normal(extra / (0.1 * 2 * np.abs(quantized).max()))
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
