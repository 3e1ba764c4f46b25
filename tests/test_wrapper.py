"""NoisyWeights: exact equivalences, straight-through gradients, noise in compiled training."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import TABLE_CASES, TABLE_IDS, gradients, to_numpy
from mat_testing import random_weights as _random_weights
from mat_testing import table_inputs as _inputs

# The core subset: CI runs it on the JAX and PyTorch backends too (`pytest -m backends`).
pytestmark = pytest.mark.backends

# (name, layer factory, input shape): every layer type the issue names.
LAYER_CASES = [
    ("dense", lambda: keras.layers.Dense(5), (3, 4)),
    ("conv1d", lambda: keras.layers.Conv1D(4, 3), (2, 9, 3)),
    ("conv2d", lambda: keras.layers.Conv2D(4, 3), (2, 7, 7, 3)),
    ("depthwise_conv2d", lambda: keras.layers.DepthwiseConv2D(3), (2, 7, 7, 3)),
    ("separable_conv2d", lambda: keras.layers.SeparableConv2D(4, 3), (2, 7, 7, 3)),
    ("simple_rnn", lambda: keras.layers.SimpleRNN(4), (2, 5, 3)),
    ("lstm", lambda: keras.layers.LSTM(4), (2, 5, 3)),
    ("gru", lambda: keras.layers.GRU(4, return_sequences=True), (2, 5, 3)),
    ("batchnorm", lambda: keras.layers.BatchNormalization(), (6, 5)),
]
IDS = [case[0] for case in LAYER_CASES]


def _pair(factory, shape, seed=7, noise=0.1):
    """A built wrapper and an independent plain copy of its layer."""
    wrapper = mat.NoisyWeights(factory(), noise=noise, seed=seed)
    wrapper.build(shape)
    _random_weights(wrapper.layer)
    plain = factory()
    plain.build(shape)
    plain.set_weights(wrapper.layer.get_weights())
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    return wrapper, plain, x


def _expected_noisy_weights(wrapper, noise, seed):
    """w + delta for each noisy variable, drawn from a fresh generator with the same seed."""
    generator = keras.random.SeedGenerator(seed)
    expected = {}
    for variable in wrapper.noisy_variables:
        clean = keras.ops.convert_to_tensor(variable)
        expected[id(variable)] = to_numpy(clean + noise.perturbation(clean, generator))
    return [expected.get(id(v), to_numpy(v)) for v in wrapper.layer.weights]


@pytest.mark.parametrize("name,factory,shape", LAYER_CASES, ids=IDS)
def test_gate_closed_is_bit_exact(name, factory, shape):
    wrapper, plain, x = _pair(factory, shape)
    wrapper.gate.assign(0.0)
    for training in (False, True):
        assert np.array_equal(to_numpy(wrapper(x, training=training)), to_numpy(plain(x, training=training)))


@pytest.mark.parametrize("name,factory,shape", LAYER_CASES, ids=IDS)
def test_inference_is_clean_by_default(name, factory, shape):
    wrapper, plain, x = _pair(factory, shape)
    assert np.array_equal(to_numpy(wrapper(x)), to_numpy(plain(x)))


@pytest.mark.parametrize("name,factory,shape", LAYER_CASES, ids=IDS)
def test_noisy_output_equals_hand_computation(name, factory, shape):
    wrapper, plain, x = _pair(factory, shape, seed=11)
    plain.set_weights(_expected_noisy_weights(wrapper, wrapper.noise, seed=11))
    noisy = to_numpy(wrapper(x, training=True))
    np.testing.assert_allclose(noisy, to_numpy(plain(x, training=True)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(noisy, to_numpy(wrapper(x)), atol=1e-4), "noise had no effect"


@pytest.mark.parametrize("name,factory,shape", LAYER_CASES, ids=IDS)
def test_straight_through_gradient(name, factory, shape):
    """d loss / d w_clean of the wrapper == d loss / d w of the plain layer at w + noise."""
    wrapper, plain, x = _pair(factory, shape, seed=5)
    plain.set_weights(_expected_noisy_weights(wrapper, wrapper.noise, seed=5))
    noisy_ids = {id(v) for v in wrapper.noisy_variables}
    wrapped_grads = gradients(wrapper, wrapper.noisy_variables, x)
    plain_vars = [p for w, p in zip(wrapper.layer.weights, plain.weights) if id(w) in noisy_ids]
    plain_grads = gradients(plain, plain_vars, x)
    for got, want in zip(wrapped_grads, plain_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_noise_bias_false_leaves_bias_clean():
    wrapper, plain, x = _pair(lambda: keras.layers.Dense(5), (3, 4))
    wrapper.noise_bias = False
    assert [v.path.split("/")[-1] for v in wrapper.noisy_variables] == ["kernel"]


def test_batchnorm_moving_statistics_update_under_noise():
    wrapper, plain, x = _pair(lambda: keras.layers.BatchNormalization(momentum=0.5), (6, 5))
    wrapper(x, training=True)
    plain(x, training=True)
    # Statistics come from the inputs, not the noisy gamma/beta: both layers agree.
    np.testing.assert_allclose(to_numpy(wrapper.layer.moving_mean), to_numpy(plain.moving_mean), rtol=1e-6)
    assert not np.allclose(to_numpy(plain.moving_mean), 0)


def test_losses_of_the_wrapped_layer_are_kept():
    wrapper = mat.NoisyWeights(keras.layers.Dense(3, activity_regularizer="l2"), noise=0.1, seed=0)
    wrapper(np.ones((2, 4), "float32"), training=True)
    assert len(wrapper.losses) == 1 and float(to_numpy(wrapper.losses[0])) > 0


def _attention_pair(seed):
    """A wrapped MultiHeadAttention (built at its first call, from query and value) and a plain copy."""
    rng = np.random.default_rng(1)
    query = rng.normal(size=(2, 5, 6)).astype("float32")
    value = rng.normal(size=(2, 3, 6)).astype("float32")
    wrapper = mat.NoisyWeights(keras.layers.MultiHeadAttention(2, 4), noise=0.1, seed=seed)
    wrapper(query, value)
    _random_weights(wrapper.layer)
    plain = keras.layers.MultiHeadAttention(2, 4)
    plain(query, value)
    plain.set_weights(wrapper.layer.get_weights())
    return wrapper, plain, query, value


def test_multi_input_layer_builds_from_all_inputs_and_takes_the_noise():
    wrapper, plain, query, value = _attention_pair(seed=11)
    assert len(wrapper.noisy_variables) == 8  # query, key, value and output kernels and biases
    assert np.array_equal(to_numpy(wrapper(query, value)), to_numpy(plain(query, value)))
    clean_weights = plain.get_weights()
    plain.set_weights(_expected_noisy_weights(wrapper, wrapper.noise, seed=11))
    noisy = to_numpy(wrapper(query, value, training=True))  # the generator's first draw
    np.testing.assert_allclose(noisy, to_numpy(plain(query, value)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(noisy, to_numpy(wrapper(query, value)), atol=1e-4), "noise had no effect"
    plain.set_weights(clean_weights)
    wrapper.gate.assign(0.0)
    assert np.array_equal(to_numpy(wrapper(query, value, training=True)), to_numpy(plain(query, value)))


ATTENTION = {
    "multi_head": lambda: keras.layers.MultiHeadAttention(2, 4, name="mha"),
    "group_query": lambda: keras.layers.GroupQueryAttention(
        head_dim=4, num_query_heads=4, num_key_value_heads=2, name="mha"
    ),
}


@pytest.mark.parametrize("kind", ATTENTION)
def test_wrap_takes_attention_layers_and_round_trips(kind, tmp_path):
    inputs = keras.Input((5, 6))
    attended = ATTENTION[kind]()(inputs, inputs)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling1D()(attended))
    model = keras.Model(inputs, outputs)
    robust = mat.wrap(model, noise=0.2, seed=0)
    assert [layer.layer.name for layer in mat.noisy_layers(robust)] == ["mha", "head"]
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    clean = to_numpy(model(x))
    np.testing.assert_array_equal(to_numpy(robust(x)), clean)
    assert not np.allclose(to_numpy(robust(x, training=True)), clean, atol=1e-4)
    robust.save(tmp_path / "attention.keras")
    reloaded = keras.saving.load_model(tmp_path / "attention.keras")
    np.testing.assert_allclose(to_numpy(reloaded(x)), clean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(mat.strip(robust)(x)), clean, rtol=1e-6, atol=1e-6)


def test_same_shape_layers_draw_different_noise():
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(8, name="b")(keras.layers.Dense(8, name="a")(inputs))
    robust = mat.wrap(keras.Model(inputs, outputs), noise=0.1, seed=3)
    a, b = mat.noisy_layers(robust)
    assert (a.seed, b.seed) == (3, 4)
    delta_a = to_numpy(a.noisy_values()[0]) - to_numpy(a.layer.kernel)
    delta_b = to_numpy(b.noisy_values()[0]) - to_numpy(b.layer.kernel)
    assert not np.allclose(delta_a / np.abs(delta_a).max(), delta_b / np.abs(delta_b).max())


def _probe_model(seed, gate=1.0):
    """A one-layer model whose training loss reveals the weight noise."""
    model = keras.Sequential([keras.Input((4,)), mat.NoisyWeights(keras.layers.Dense(3), noise=0.2, seed=seed)])
    model.layers[0].layer.set_weights([np.ones((4, 3), "float32"), np.zeros(3, "float32")])
    model.layers[0].gate.assign(gate)
    return model


def _losses_per_step(model, jit_compile, epochs=4, callbacks=()):
    """Loss of each compiled step with a zero learning rate: only the noise changes it."""
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=jit_compile)
    x = np.ones((8, 4), "float32")
    y = np.zeros((8, 3), "float32")
    history = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, shuffle=False, callbacks=list(callbacks))
    return history.history["loss"]


@pytest.mark.parametrize("jit_compile", [False, True], ids=["default", "xla"])
def test_noise_is_redrawn_every_compiled_step_and_repeats_with_seed(jit_compile):
    first = _losses_per_step(_probe_model(seed=42), jit_compile)
    again = _losses_per_step(_probe_model(seed=42), jit_compile)
    other = _losses_per_step(_probe_model(seed=43), jit_compile)
    assert len(set(np.round(first, 6))) == len(first), f"noise repeated between steps: {first}"
    np.testing.assert_allclose(first, again, rtol=1e-6)
    assert not np.allclose(first, other)
    clean = _losses_per_step(_probe_model(seed=42, gate=0.0), jit_compile)
    np.testing.assert_allclose(clean, clean[0], rtol=1e-6)


def test_keras_round_trip_keeps_outputs_and_noise_settings(tmp_path):
    inputs = keras.Input((6, 3))
    h = keras.layers.Conv1D(4, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.LSTM(5)(h)
    outputs = keras.layers.Dense(2)(h)
    robust = mat.wrap(keras.Model(inputs, outputs), noise=mat.noise.Multiplicative(0.3), seed=1, batchnorm=True)
    robust.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    robust.fit(x, np.zeros((4, 2)), epochs=1, verbose=0)
    path = tmp_path / "robust.keras"
    robust.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in robust.layers]
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(robust(x)))
    # Noise model, seeds and gates come back, and the noise stream resumes
    # where it was (tests/test_resume.py).
    for got, want in zip(mat.noisy_layers(loaded), mat.noisy_layers(robust)):
        assert (got.noise, got.seed, float(to_numpy(got.gate))) == (want.noise, want.seed, 1.0)
    assert not np.allclose(to_numpy(loaded(x, training=True)), to_numpy(loaded(x)))


def test_inference_noise_on_request():
    wrapper, plain, x = _pair(lambda: keras.layers.Dense(5), (3, 4))
    wrapper.inference_noise = True
    assert not np.allclose(to_numpy(wrapper(x)), to_numpy(plain(x)))


def test_bad_wrapper_arguments():
    with pytest.raises(mat.errors.InvalidArgumentError, match="sd"):
        mat.NoisyWeights(keras.layers.Dense(2), noise=-0.1)
    with pytest.raises(mat.errors.InvalidArgumentError, match="Unknown noise model 'pcm-ish'"):
        mat.NoisyWeights(keras.layers.Dense(2), noise="pcm-ish")
    with pytest.raises(mat.errors.InvalidArgumentError, match="seed"):
        mat.NoisyWeights(keras.layers.Dense(2), seed="zero")


def _table_pair(factory, specs, seed=7):
    """A wrapper built from all its inputs and an independent plain copy of its layer."""
    x = _inputs(specs)
    wrapper = mat.NoisyWeights(factory(), noise=0.1, seed=seed)
    wrapper(*x)  # inference: builds the layer, draws nothing
    _random_weights(wrapper.layer)
    plain = factory()
    plain(*x)
    plain.set_weights(wrapper.layer.get_weights())
    return wrapper, plain, x


def _roles(wrapper, role):
    roles = mat.layers.variable_roles(wrapper.layer)
    return [v for v in wrapper.layer.weights if mat.layers.role(v, roles) == role]


def _plain_output(plain, weights, x):
    plain.set_weights(weights)
    return to_numpy(plain(*x, training=True))


def test_table_cases_cover_every_layer_type_wrap_knows():
    # RNN's own row stands for custom cells, which the tests of RNN cells cover.
    covered = {type(factory()) for _, factory, _ in TABLE_CASES}
    rows = [
        row.layer_class for row in mat.layers.layer_types()
        if (row.wrap or row.opt_in or row.export == mat.layers.CROSSBAR) and row.layer_class is not keras.layers.RNN
    ]
    assert [cls.__name__ for cls in rows if cls not in covered] == []


@pytest.mark.parametrize("name,factory,specs", TABLE_CASES, ids=TABLE_IDS)
def test_table_gate_closed_is_bit_exact(name, factory, specs):
    wrapper, plain, x = _table_pair(factory, specs)
    wrapper.gate.assign(0.0)
    for training in (False, True):
        assert np.array_equal(to_numpy(wrapper(*x, training=training)), to_numpy(plain(*x, training=training)))


@pytest.mark.parametrize("name,factory,specs", TABLE_CASES, ids=TABLE_IDS)
def test_table_noise_reaches_every_matrix(name, factory, specs):
    wrapper, plain, x = _table_pair(factory, specs, seed=11)
    noisy_ids = {id(v) for v in wrapper.noisy_variables}
    matrices = _roles(wrapper, mat.layers.MATRIX)
    assert all(id(v) in noisy_ids for v in matrices)
    expected = _expected_noisy_weights(wrapper, wrapper.noise, seed=11)
    noisy = to_numpy(wrapper(*x, training=True))
    np.testing.assert_allclose(noisy, _plain_output(plain, expected, x), rtol=1e-5, atol=1e-6)
    # Each matrix's own noise shows: without it the output is another.
    clean = wrapper.layer.get_weights()
    for target in matrices or wrapper.noisy_variables:
        weights = [
            c if v is target else e for v, c, e in zip(wrapper.layer.weights, clean, expected)
        ]
        assert not np.allclose(noisy, _plain_output(plain, weights, x), atol=1e-6), target.path


@pytest.mark.parametrize("name,factory,specs", TABLE_CASES, ids=TABLE_IDS)
def test_table_bias_stays_clean_without_noise_bias(name, factory, specs):
    wrapper, plain, x = _table_pair(factory, specs, seed=13)
    wrapper.noise_bias = False
    biases = _roles(wrapper, mat.layers.BIAS)
    assert bool(biases) == (name != "embedding")
    noisy_ids = {id(v) for v in wrapper.noisy_variables}
    assert not any(id(v) in noisy_ids for v in biases)
    assert all(id(v) in noisy_ids for v in _roles(wrapper, mat.layers.MATRIX))
    # Drawn for the other variables only: the biases enter the output clean.
    expected = _expected_noisy_weights(wrapper, wrapper.noise, seed=13)
    noisy = to_numpy(wrapper(*x, training=True))
    np.testing.assert_allclose(noisy, _plain_output(plain, expected, x), rtol=1e-5, atol=1e-6)
