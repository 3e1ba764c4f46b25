"""Tests of `mat_keras.recalibration.recalibrate` (bias correction after noisy training)."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_keras.errors import InvalidArgumentError
from mat_keras.recalibration import recalibrate

DRAWS = 32
TARGET_DRAWS = 160


def _mlp(bias=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(32, activation="relu", use_bias=bias, name="hidden"),
            keras.layers.Dense(5, use_bias=bias, name="logits"),
        ]
    )
    # A readout of positive weights adds up the hidden units' noise-induced
    # rise (random signs would cancel it): a shift well above sampling error.
    logits = model.get_layer("logits")
    logits.kernel.assign(np.abs(logits.kernel.numpy()))
    return model


def _inputs(n=400, seed=0):
    return np.random.default_rng(seed).random((n, 20), dtype=np.float32)


def _noisy_mean_logits(model, x, sd, draws, seed):
    """Mean logit per unit with every weight perturbed, `draws` draws: mean and standard error."""
    noise = mat.noise.Gaussian(sd)
    generator = keras.random.SeedGenerator(seed)
    clean = model.get_weights()
    means = []
    for _ in range(draws):
        model.set_weights(
            [w + keras.ops.convert_to_numpy(noise.perturbation(w, generator)) for w in clean]
        )
        means.append(keras.ops.convert_to_numpy(model(x)).mean(axis=0))
    model.set_weights(clean)
    means = np.array(means)
    return means.mean(axis=0), means.std(axis=0, ddof=1) / np.sqrt(draws)


def test_without_noise_nothing_changes():
    model, x = _mlp(), _inputs()
    fixed = recalibrate(model, x, noise=0.0, draws=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fixed(x)), keras.ops.convert_to_numpy(model(x)),
                               atol=1e-5)


def test_the_copy_gets_biases_and_separate_activations():
    model, x = _mlp(), _inputs()
    fixed = recalibrate(model, x, noise=0.2, draws=2)
    assert [type(layer).__name__ for layer in fixed.layers] == ["Dense", "Activation", "Dense"]
    assert all(layer.use_bias for layer in fixed.layers if isinstance(layer, keras.layers.Dense))
    np.testing.assert_array_equal(fixed.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())
    np.testing.assert_array_equal(fixed.layers[2].kernel.numpy(), model.layers[1].kernel.numpy())
    # The original is left as it was.
    assert not model.layers[0].use_bias


def test_clean_mean_logits_match_the_noisy_ones():
    model, x = _mlp(), _inputs()
    sd = 0.3
    fixed = recalibrate(model, x, noise=sd, draws=DRAWS, seed=0)
    # Independent draws (another seed) estimate what the correction aimed at.
    target, error = _noisy_mean_logits(model, x, sd, draws=TARGET_DRAWS, seed=1)
    clean_before = keras.ops.convert_to_numpy(model(x)).mean(axis=0)
    clean_after = keras.ops.convert_to_numpy(fixed(x)).mean(axis=0)
    # The noise raises the mean logits measurably (what recalibration is for)...
    shift = np.abs(target - clean_before)
    assert shift.min() > 6 * error.max()
    # ...and the recalibrated clean model sits on them, within the sampling
    # error of both estimates (the correction's own DRAWS draws: larger by
    # sqrt(TARGET_DRAWS / DRAWS)).
    tolerance = 4 * error * np.sqrt(1 + TARGET_DRAWS / DRAWS)
    assert np.all(np.abs(clean_after - target) <= tolerance), (clean_after - target, tolerance)


def test_deploy_noise_matches_the_means_under_that_noise():
    model, x = _mlp(bias=True), _inputs()
    fixed = recalibrate(model, x, noise=0.3, deploy_noise=0.1, draws=DRAWS, seed=0)
    target, error = _noisy_mean_logits(model, x, 0.3, draws=TARGET_DRAWS, seed=1)
    deployed, deployed_error = _noisy_mean_logits(fixed, x, 0.1, draws=TARGET_DRAWS, seed=2)
    tolerance = 4 * np.sqrt(error**2 * (1 + TARGET_DRAWS / DRAWS) + deployed_error**2 * (1 + TARGET_DRAWS / DRAWS))
    assert np.all(np.abs(deployed - target) <= tolerance)


def test_wrapped_models_are_stripped_and_other_models_refused():
    model, x = _mlp(), _inputs(50)
    fixed = recalibrate(mat.wrap(model, noise=0.2, seed=0), x, noise=0.2, draws=1)
    assert not mat.noisy_layers(fixed)
    inputs = keras.Input((20,))
    functional = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(InvalidArgumentError, match="takes a keras.Sequential model"):
        recalibrate(functional, x, noise=0.2)
    with pytest.raises(InvalidArgumentError, match="needs the training noise"):
        recalibrate(model, x, noise=None)
    with pytest.raises(InvalidArgumentError, match="draws"):
        recalibrate(model, x, noise=0.2, draws=0)


def test_mean_field_model_is_the_mean_of_the_noisy_hidden_layer():
    from mat_keras.recalibration import mean_field_model

    model, x = _mlp(), _inputs(200)
    sd = 0.2
    smooth = mean_field_model(model, sd)
    kernel = model.get_layer("hidden").kernel.numpy()
    sigma = sd * 2 * np.abs(kernel).max()
    rng = np.random.default_rng(0)
    draws = 2000
    hidden = np.mean(
        [np.maximum(x @ (kernel + sigma * rng.standard_normal(kernel.shape)), 0) for _ in range(draws)], axis=0
    )
    predicted = keras.ops.convert_to_numpy(smooth.layers[0](x))
    # Monte Carlo error of a mean of `draws` ReLUs: below sd(z + e) / sqrt(draws).
    tolerance = 4 * sigma * np.linalg.norm(x, axis=1, keepdims=True) / np.sqrt(draws)
    assert np.all(np.abs(predicted - hidden) <= tolerance)
    # Without noise it is the model itself.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean_field_model(model, 0.0)(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-5)
    conv = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(InvalidArgumentError, match="Dense layers only"):
        mean_field_model(conv, 0.1)
