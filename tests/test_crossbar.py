"""The analog product of one matrix: exactness, converters, noise, IR drop, gradients."""

import keras
import numpy as np
import pytest
from keras import ops

from mat_keras import crossbar as cb
from mat_keras.errors import InvalidArgumentError


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _data(rows=7, cols=3, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, rows)).astype("float32")
    w = (0.3 * rng.normal(size=(rows, cols))).astype("float32")
    return x, w


@pytest.mark.backends
def test_ideal_crossbar_is_the_exact_product():
    x, w = _data(rows=600, cols=20)
    y = _numpy(cb.analog_matmul(x, w, cb.get("ideal")))
    exact = x.astype(np.float64) @ w
    np.testing.assert_allclose(y, exact, rtol=1e-6, atol=1e-6 * np.abs(exact).max())


@pytest.mark.backends
def test_tiles_without_converters_sum_to_the_exact_product():
    # Splitting into row tiles and scaling columns alone must change nothing.
    x, w = _data(rows=1100, cols=6)
    chip = cb.Crossbar(tile_rows=512, input_range=100.0)
    exact = x.astype(np.float64) @ w
    np.testing.assert_allclose(_numpy(cb.analog_matmul(x, w, chip)), exact, rtol=1e-5, atol=1e-5)


def _hand_forward(x, w, ranges, tile_rows, input_steps, output_steps, bound):
    """The chip's computation written out in numpy, tile by tile."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    scale = np.abs(w).max(axis=0)
    w_n = w / scale
    total = np.zeros((x.shape[0], w.shape[1]))
    clipped = False
    for t, start in enumerate(range(0, w.shape[0], tile_rows)):
        stop = min(start + tile_rows, w.shape[0])
        x_n = np.clip(x[:, start:stop], -ranges[t], ranges[t]) / ranges[t]
        x_n = np.round(x_n / (2 / input_steps)) * (2 / input_steps)
        sums = x_n @ w_n[start:stop]
        clipped = clipped or bool(np.abs(sums).max() > bound)
        sums = np.clip(sums, -bound, bound)
        sums = np.round(sums / (2 * bound / output_steps)) * (2 * bound / output_steps)
        total += sums * ranges[t]
    return total * scale, clipped


@pytest.mark.backends
def test_converters_and_tile_sums_equal_a_hand_computation_on_three_row_tiles():
    x, w = _data(rows=7, cols=3, batch=6, seed=3)
    x[0, 0] = 9.0  # clips at the first tile's range
    ranges = np.asarray([1.5, 0.8, 2.0], dtype="float32")
    chip = cb.Crossbar(tile_rows=3, input_steps=8, output_steps=10, output_bound=1.2, input_range="learned")
    assert cb.row_tiles(w.shape, chip) == [(0, 3), (3, 6), (6, 7)]
    y = _numpy(cb.analog_matmul(x, w, chip, input_ranges=ranges))
    expected, clipped = _hand_forward(x, w, ranges, 3, 8, 10, 1.2)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert clipped  # the output bound was exercised too


def test_row_tiles_are_the_exporters_tiles():
    from mat_keras.crossbar.tiles import tile_grid

    chip = cb.Crossbar(tile_rows=256, tile_cols=128)
    spans = cb.row_tiles((784, 300), chip)
    exported = sorted({(t.row, t.row + t.rows) for t in tile_grid((784, 300), (256, 128))})
    assert spans == exported == [(0, 256), (256, 512), (512, 768), (768, 784)]


@pytest.mark.backends
def test_output_noise_has_its_sd_in_output_units():
    rows, cols, batch = 4, 50, 400
    w = np.full((rows, cols), 0.5, dtype="float32")
    x = np.zeros((batch, rows), dtype="float32")
    chip = cb.Crossbar(output_noise=0.04, input_range=2.0)
    y = _numpy(cb.analog_matmul(x, w, chip, seed=0))
    # In weight units: sd * input range * column scale.
    expected = 0.04 * 2.0 * 0.5
    n = y.size
    assert abs(y.std() - expected) < 5 * expected / np.sqrt(2 * n)
    assert abs(y.mean()) < 5 * expected / np.sqrt(n)


@pytest.mark.backends
def test_read_noise_grows_with_the_inputs_and_conductances_it_reads():
    # One read per call: each call's column sums carry sd read_noise * sqrt(x**2 @ |w_n|).
    rows, cols, calls = 16, 40, 400
    rng = np.random.default_rng(1)
    w = rng.uniform(-1, 1, size=(rows, cols)).astype("float32")
    x = rng.uniform(-1, 1, size=(2, rows)).astype("float32")
    chip = cb.Crossbar(read_noise=0.0175, weight_scaling="tensor")
    generator = keras.random.SeedGenerator(0)
    y = np.stack([_numpy(cb.analog_matmul(x, w, chip, seed=generator)) for _ in range(calls)])
    scale = np.abs(w).max()
    sd = 0.0175 * np.sqrt((x.astype(np.float64) ** 2) @ (np.abs(w) / scale)) * scale
    noise = y - x.astype(np.float64) @ w
    ratio = noise.std(axis=0) / sd
    # Each sum's sample sd over 400 reads is within 5 standard errors.
    assert np.all(np.abs(ratio - 1) < 5 / np.sqrt(2 * calls))
    assert np.all(np.abs(noise.mean(axis=0)) < 5 * sd / np.sqrt(calls))


@pytest.mark.backends
def test_noise_is_fresh_with_a_generator_and_repeats_with_an_integer_seed():
    x, w = _data()
    chip = cb.Crossbar(output_noise=0.1, read_noise=0.05, input_range=10.0)
    generator = keras.random.SeedGenerator(0)
    first = _numpy(cb.analog_matmul(x, w, chip, seed=generator))
    second = _numpy(cb.analog_matmul(x, w, chip, seed=generator))
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(
        _numpy(cb.analog_matmul(x, w, chip, seed=7)), _numpy(cb.analog_matmul(x, w, chip, seed=7))
    )
    gated = _numpy(cb.analog_matmul(x, w, chip, seed=generator, noise_gate=0.0))
    np.testing.assert_allclose(gated, x.astype(np.float64) @ w, rtol=1e-5, atol=1e-6)


@pytest.mark.backends
def test_ir_drop_equals_the_documented_formula_and_vanishes_at_zero():
    x, w = _data(rows=6, cols=4, batch=3, seed=5)
    x = np.clip(x, -1, 1)
    chip = cb.Crossbar(ir_drop=2e4, weight_scaling="tensor")
    y = _numpy(cb.analog_matmul(x, w, chip))
    scale = np.abs(w).max()
    w_n = w.astype(np.float64) / scale
    n = 6
    q = np.array([(n * (n + 1) - i * (i + 1)) / 2 for i in range(n)])
    # The tile's mean device current of each input vector.
    m = np.abs(x).mean(axis=1) * np.abs(w_n).mean()
    gamma = 2e4 / cb.config.DEFAULT_IR_DROP_G_RATIO
    # Each device's product, attenuated by gamma * m * q_i, summed.
    expected = np.einsum("bi,ij,bi->bj", x, w_n, 1 - gamma * m[:, None] * q[None, :])
    assert 0.01 < np.abs(expected - x @ w_n).max() / np.abs(x @ w_n).max() < 0.5
    np.testing.assert_allclose(y, expected * scale, rtol=1e-5, atol=1e-6)
    # The farthest row loses most: attenuation is largest there.
    assert q[0] == q.max() and q[-1] == q.min()
    off = _numpy(cb.analog_matmul(x, w, cb.Crossbar(ir_drop=0.0, weight_scaling="tensor")))
    np.testing.assert_allclose(off, x.astype(np.float64) @ w, rtol=1e-5, atol=1e-6)


def _gradients(function, *tensors):
    """Gradients of `sum(function(*tensors))` with respect to the tensors (TensorFlow)."""
    import tensorflow as tf

    variables = [tf.Variable(t) for t in tensors]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(function(*variables) * tf.constant(np.arange(1.0, 5.0), tf.float32))
    return [g.numpy() for g in tape.gradient(loss, variables)]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_gradient_equals_the_plain_gradient_at_the_quantised_point():
    x, w = _data(rows=10, cols=4, batch=3, seed=2)
    x = 0.9 * np.tanh(x)  # inside the range, and no rounding ties
    chip = cb.Crossbar(tile_rows=4, input_steps=30, output_steps=200, output_bound=10.0)
    grad_x, grad_w = _gradients(lambda a, b: cb.analog_matmul(a, b, chip), x, w)
    # The plain product at the DAC-rounded inputs.
    x_q = np.round(x / (2 / 30)) * (2 / 30)
    plain_x, plain_w = _gradients(lambda a, b: ops.matmul(a, b), x_q.astype("float32"), w)
    np.testing.assert_allclose(grad_x, plain_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_w, plain_w, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_a_learned_input_range_gets_the_clip_gradient_and_widens():
    import tensorflow as tf

    x, w = _data(rows=8, cols=3, batch=32, seed=4)
    x = 2.0 * x  # many inputs beyond a range of 1
    chip = cb.Crossbar(input_steps=254, input_range="learned")
    input_range = tf.Variable([1.0])
    target = x @ w

    def loss():
        return tf.reduce_mean(tf.square(cb.analog_matmul(x, w, chip, input_ranges=input_range) - target))

    before = float(loss())
    with tf.GradientTape() as tape:
        value = loss()
    gradient = tape.gradient(value, input_range)
    assert gradient is not None and float(gradient[0]) < 0  # widening helps
    keras.optimizers.SGD(0.05).apply([gradient], [input_range])
    assert float(input_range[0]) > 1.0
    assert float(loss()) < before


@pytest.mark.backends
def test_input_ranges_from_data_span_three_standard_deviations_per_tile():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (4000, 3)), rng.normal(0, 2, (4000, 2))], axis=1)
    ranges = cb.input_ranges_from_data(x, (5, 2), cb.Crossbar(tile_rows=3))
    np.testing.assert_allclose(ranges, [3.0, 6.0], rtol=0.05)


def test_presets_and_serialisation():
    standard = cb.get("standard")
    assert (standard.tile_rows, standard.input_steps, standard.output_steps) == (512, 254, 254)
    assert (standard.output_bound, standard.output_noise, standard.read_noise) == (10.0, 0.04, 0.0175)
    assert standard.input_range == "learned" and standard.ir_drop == 1.0
    assert standard.weight_scaling == "column"
    assert cb.get("ideal").is_ideal and not standard.is_ideal
    assert cb.get(cb.serialize(standard)) == standard
    assert cb.get(standard.get_config()) == standard
    assert cb.get({"input_bits": 8}).input_steps == 254
    assert cb.aliases() == ["ideal", "standard"]


# Bad settings and aliases: one table, in tests/test_api_errors.py (BAD_CROSSBARS).


def test_missing_ranges_are_clear_errors():
    x, w = _data()
    with pytest.raises(InvalidArgumentError, match="input_ranges"):
        cb.analog_matmul(x, w, cb.get("standard"))
    with pytest.raises(InvalidArgumentError, match="2 values for 1 row tiles"):
        cb.analog_matmul(x, w, cb.get("standard"), input_ranges=np.ones(2, "float32"))
