"""The chip forward of every layer of the table: exactness, tiles, gradients, ranges, training."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_keras import crossbar as cb
from mat_testing import BACKEND, TABLE_CASES, TABLE_IDS, random_weights, table_inputs, to_numpy

pytestmark = pytest.mark.backends

# Not ideal (so every tile is computed apart, with masked kernels), yet
# exact: nothing rounds, clips or adds noise.
EXACT_TILES = cb.Crossbar(tile_rows=2, input_range=1e3, output_bound=1e9)


def _chip_pair(factory, specs, crossbar, seed=7):
    """A chip wrapper (no weight noise) and an independent plain copy of its layer."""
    x = table_inputs(specs)
    wrapper = mat.NoisyWeights(factory(), noise=None, crossbar=crossbar, seed=seed, chip_inference=True)
    wrapper(*x)
    random_weights(wrapper.layer)
    plain = factory()
    plain(*x)
    plain.set_weights(wrapper.layer.get_weights())
    return wrapper, plain, x


def _relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)


@pytest.mark.parametrize("name,factory,specs", TABLE_CASES, ids=TABLE_IDS)
@pytest.mark.parametrize("crossbar", ["ideal", EXACT_TILES], ids=["ideal", "exact_tiles"])
def test_an_exact_crossbar_equals_the_plain_layer(name, factory, specs, crossbar):
    wrapper, plain, x = _chip_pair(factory, specs, crossbar)
    for training in (False, True):
        chip = to_numpy(wrapper(*x, training=training))
        exact = to_numpy(plain(*x, training=training))
        assert chip.shape == exact.shape
        assert _relative(chip, exact) < 1e-6, (name, training)


@pytest.mark.parametrize("name,factory,specs", TABLE_CASES, ids=TABLE_IDS)
def test_the_standard_chip_changes_outputs_and_repeats_with_its_seed(name, factory, specs):
    wrapper, plain, x = _chip_pair(factory, specs, "standard")
    exact = to_numpy(plain(*x))
    if not cb.product_layers(wrapper.layer):
        # Embedding and BatchNormalization have no product: they stay digital.
        np.testing.assert_array_equal(to_numpy(wrapper(*x)), exact)
        return
    first = to_numpy(wrapper(*x))
    assert np.all(np.isfinite(first)) and 1e-4 < _relative(first, exact) < 1.0
    again, _, _ = _chip_pair(factory, specs, "standard")
    np.testing.assert_array_equal(to_numpy(again(*x)), first)
    assert not np.array_equal(to_numpy(wrapper(*x)), first)  # fresh read and output noise


def _im2col(x, kh, kw):
    """Valid 2-D patches of `x` (batch, h, w, c), rows in (y, x, c) order."""
    b, h, w, c = x.shape
    out = np.empty((b, h - kh + 1, w - kw + 1, kh * kw * c))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            out[:, i, j] = x[:, i:i + kh, j:j + kw, :].reshape(b, -1)
    return out


def test_a_convolution_on_three_row_tiles_equals_a_hand_computation():
    # 3 x 3 x 2 = 18 patch rows in tiles of 7, 7 and 4: DAC, ADC and clipping by hand.
    rng = np.random.default_rng(3)
    conv = keras.layers.Conv2D(3, 3, use_bias=False)
    x = rng.normal(size=(2, 5, 5, 2)).astype("float32")
    conv.build(x.shape)
    conv.kernel.assign(rng.normal(size=(3, 3, 2, 3)).astype("float32"))
    ranges = np.array([1.5, 2.0, 0.7], dtype="float32")
    chip = cb.Crossbar(tile_rows=7, input_steps=14, output_steps=30, output_bound=2.0, input_range="calibrated")
    wrapper = mat.NoisyWeights(conv, noise=None, crossbar=chip, chip_inference=True)
    wrapper.build(x.shape)
    (variable,) = wrapper.input_ranges.values()
    variable.assign(ranges)
    y = to_numpy(wrapper(x))

    matrix = to_numpy(conv.kernel).reshape(18, 3).astype(np.float64)
    patches = _im2col(x.astype(np.float64), 3, 3)
    scale = np.abs(matrix).max(axis=0)
    total = 0.0
    clipped = False
    for t, (start, stop) in enumerate([(0, 7), (7, 14), (14, 18)]):
        x_n = np.clip(patches[..., start:stop] / ranges[t], -1, 1)
        x_n = np.round(x_n * 7) / 7  # 14 steps over [-1, 1]
        sums = x_n @ (matrix[start:stop] / scale)
        clipped = clipped or np.abs(sums).max() > 2.0
        sums = np.round(np.clip(sums, -2.0, 2.0) * 7.5) / 7.5  # 30 steps over [-2, 2]
        total = total + sums * ranges[t]
    assert clipped  # the bound matters in this case
    np.testing.assert_allclose(y, total * scale, rtol=1e-5, atol=1e-5)


def _tf_gradients(function, variables):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = function()
    return [g.numpy() for g in tape.gradient(loss, variables)]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="uses tf.GradientTape")
def test_a_convolution_gradient_equals_the_plain_gradient_at_the_quantised_point():
    import tensorflow as tf

    rng = np.random.default_rng(4)
    x = (0.9 * np.tanh(rng.normal(size=(2, 6, 6, 2)))).astype("float32")
    chip = cb.Crossbar(tile_rows=7, input_steps=30, output_steps=2000, output_bound=100.0)
    conv = keras.layers.Conv2D(3, 3)
    wrapper = mat.NoisyWeights(conv, noise=None, crossbar=chip)
    wrapper.build(x.shape)
    weights = np.linspace(1.0, 2.0, 4 * 4 * 3, dtype="float32").reshape(1, 4, 4, 3)
    x_var = tf.Variable(x)
    chip_grads = _tf_gradients(
        lambda: tf.reduce_sum(wrapper(x_var, training=True) * weights), [x_var, conv.kernel.value]
    )
    x_q = tf.Variable((np.round(x * 15) / 15).astype("float32"))
    plain_grads = _tf_gradients(lambda: tf.reduce_sum(conv(x_q) * weights), [x_q, conv.kernel.value])
    for chip_grad, plain_grad in zip(chip_grads, plain_grads):
        np.testing.assert_allclose(chip_grad, plain_grad, rtol=1e-5, atol=1e-5)


def _mlp(inputs=8):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
    )


def _fit(model, x, y, epochs, callbacks=()):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=list(callbacks))


def _data(scale, n=256, features=8, seed=0):
    rng = np.random.default_rng(seed)
    x = (scale * rng.normal(size=(n, features))).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


@pytest.mark.parametrize("scale,direction", [(10.0, 1), (0.01, -1)], ids=["clipped_widens", "idle_decays"])
def test_a_learned_input_range_gets_a_gradient_and_moves_in_fit(scale, direction):
    # A linear fit that clipping hurts (inputs of sd 10 against a range of 3),
    # or whose inputs use a hundredth of the range (the decay pulls it down).
    rng = np.random.default_rng(0)
    x = (scale * rng.normal(size=(256, 8))).astype("float32")
    y = x @ rng.normal(size=(8, 1)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.layers[0].kernel.assign(rng.normal(size=(8, 1)).astype("float32"))
    chip = mat.wrap(model, noise=None, crossbar="standard", seed=0)
    (layer,) = mat.noisy_layers(chip)
    (variable,) = layer.input_ranges.values()
    before = to_numpy(variable).copy()
    chip.compile(keras.optimizers.Adam(0.01), "mse")
    chip.fit(x, y, epochs=2, batch_size=32, verbose=0)
    after = to_numpy(variable)
    assert direction * (after[0] - before[0]) > 0.05
    assert float(to_numpy(layer.ranges_set)) == 1.0


def test_two_phase_schedule_switches_the_chip_with_the_noise():
    x, y = _data(1.0)
    # An output noise far above the signal: its epochs' losses stand out.
    loud = cb.Crossbar(output_noise=20.0, input_range=4.0)
    chip = mat.wrap(_mlp(), noise=None, crossbar=loud, seed=0)
    history = _fit(chip, x, y, epochs=3, callbacks=[mat.TwoPhaseSchedule(2)])
    losses = history.history["loss"]
    assert losses[2] > 3 * losses[1] and losses[1] < losses[0] + 0.1
    assert all(layer.chip_training for layer in mat.noisy_layers(chip))


def test_calibration_sets_each_tile_from_its_inputs():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (2000, 3)), rng.normal(0, 4, (2000, 2))], axis=1).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    chip = mat.chip_model(model, cb.Crossbar(tile_rows=3, input_range="calibrated"))
    assert cb.needs_calibration(chip)
    cb.calibrate_input_ranges(chip, x, samples=2000)
    (variable,) = mat.noisy_layers(chip)[0].input_ranges.values()
    np.testing.assert_allclose(to_numpy(variable), [3.0, 12.0], rtol=0.06)
    assert not cb.needs_calibration(chip)


def test_calibration_reads_the_states_a_recurrent_matrix_sees():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(5, return_sequences=True)])
    chip = mat.chip_model(model, cb.Crossbar(input_range="calibrated"))
    cb.calibrate_input_ranges(chip, x)
    layer = mat.noisy_layers(chip)[0]
    ranges = {key[1]: float(to_numpy(v)[0]) for key, v in layer.input_ranges.items()}
    states = to_numpy(model(x))
    assert ranges["kernel"] == pytest.approx(3 * x.std(), rel=1e-4)
    assert ranges["recurrent_kernel"] == pytest.approx(3 * states.std(), rel=1e-4)


def test_a_chip_trained_model_round_trips_through_a_keras_file(tmp_path):
    x, y = _data(3.0)
    chip = mat.wrap(_mlp(), noise=0.05, crossbar="standard", seed=0)
    _fit(chip, x, y, epochs=1)
    path = tmp_path / "chip.keras"
    chip.save(path)
    loaded = keras.saving.load_model(path)
    for original, reloaded in zip(mat.noisy_layers(chip), mat.noisy_layers(loaded)):
        assert reloaded.crossbar.get_config() == original.crossbar.get_config()
        for a, b in zip(original.input_ranges.values(), reloaded.input_ranges.values()):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    twin, loaded_twin = mat.chip_model(chip), mat.chip_model(loaded)
    np.testing.assert_array_equal(to_numpy(twin(x)), to_numpy(loaded_twin(x)))


def test_chip_model_keeps_learned_ranges_and_rewraps_plain_models():
    x, y = _data(3.0)
    chip = mat.wrap(_mlp(), noise=None, crossbar="standard", seed=0)
    _fit(chip, x, y, epochs=1)
    twin = mat.chip_model(chip)
    for a, b in zip(mat.noisy_layers(chip), mat.noisy_layers(twin)):
        assert b.chip_inference and not a.chip_inference
        for u, v in zip(a.input_ranges.values(), b.input_ranges.values()):
            np.testing.assert_array_equal(to_numpy(u), to_numpy(v))
    assert not cb.needs_calibration(twin)
    other = mat.chip_model(mat.strip(chip), "standard")
    assert cb.needs_calibration(other)
    with pytest.raises(mat.errors.InvalidArgumentError, match="no crossbar"):
        mat.chip_model(mat.strip(chip))
