"""The recurrence driver: Keras's SimpleRNN, LSTM and GRU with supplied products."""

import keras
import numpy as np
import pytest
from keras import ops

from mat_keras.crossbar.recurrent import (
    cell_kind,
    gate_count,
    recurrent_forward,
    recurrent_matrices,
    time_steps,
)
from mat_keras.errors import InvalidArgumentError, UnsupportedLayerError

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 3
BACKEND = keras.backend.backend()


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _as_tuple(outputs):
    return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)


def _relative_error(got, expected):
    got, expected = _numpy(got), _numpy(expected)
    assert got.shape == expected.shape
    return np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-30)


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, FEATURES)).astype("float32")


def _mask(kind):
    """Trailing steps masked in two rows, or leading steps masked in two rows."""
    mask = np.ones((BATCH, TIME), dtype=bool)
    if kind == "trailing":
        mask[1, 3:] = False
        mask[2, 4:] = False
    else:
        mask[0, :2] = False
        mask[2, :1] = False
    return mask


def _exact_products(layer):
    """The products as Keras computes them, reading the weights when called."""

    def input_product(x):
        return ops.matmul(x, layer.cell.kernel)

    def recurrent_product(h, noise_t):
        return ops.matmul(h, layer.cell.recurrent_kernel)

    return input_product, recurrent_product


def _randomise_biases(layer, seed=1):
    # Keras initialises biases to zeros (and LSTM's forget bias to one):
    # random values test that each is added where it belongs.
    if layer.cell.use_bias:
        bias = layer.cell.bias
        bias.assign(np.random.default_rng(seed).normal(size=bias.shape).astype("float32"))


def _built(layer, seed=1):
    layer.build((BATCH, TIME, FEATURES))
    _randomise_biases(layer, seed)
    return layer


KINDS = {
    "simple_rnn": lambda **kwargs: keras.layers.SimpleRNN(UNITS, **kwargs),
    "lstm": lambda **kwargs: keras.layers.LSTM(UNITS, **kwargs),
    "gru": lambda **kwargs: keras.layers.GRU(UNITS, **kwargs),
    "gru_reset_before": lambda **kwargs: keras.layers.GRU(UNITS, reset_after=False, **kwargs),
}

# name: (layer settings, call settings: "mask" kind and whether an initial state is passed)
VARIANTS = {
    "last": ({}, {}),
    "sequences": ({"return_sequences": True}, {}),
    "state": ({"return_state": True}, {}),
    "sequences_state": ({"return_sequences": True, "return_state": True}, {}),
    "backwards": ({"return_sequences": True, "go_backwards": True}, {}),
    "backwards_last": ({"go_backwards": True, "return_state": True}, {}),
    "no_bias": ({"use_bias": False, "return_sequences": True}, {}),
    "mask": ({"return_sequences": True}, {"mask": "trailing"}),
    "mask_last": ({"return_state": True}, {"mask": "trailing"}),
    "mask_zero_output": ({"return_sequences": True, "zero_output_for_mask": True}, {"mask": "trailing"}),
    "mask_backwards": (
        {"return_sequences": True, "go_backwards": True, "return_state": True},
        {"mask": "trailing"},
    ),
    "initial_state": ({"return_sequences": True, "return_state": True}, {"initial_state": True}),
    "initial_state_leading_mask": ({"return_sequences": True}, {"initial_state": True, "mask": "leading"}),
    "activations": ({"return_sequences": True, "activation": "softsign", "recurrent_activation": "hard_sigmoid"}, {}),
}

CASES = [(kind, variant) for kind in KINDS for variant in VARIANTS]


def _make(kind, settings):
    settings = dict(settings)
    if kind == "simple_rnn" and "recurrent_activation" in settings:
        # SimpleRNN has one activation.
        del settings["recurrent_activation"]
        settings["activation"] = "relu"
    return KINDS[kind](**settings)


def _initial_state(layer, seed=2):
    rng = np.random.default_rng(seed)
    count = 2 if cell_kind(layer) == "lstm" else 1
    return [rng.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(count)]


def _assert_driver_equals_keras(layer, x, **call):
    expected = _as_tuple(layer(x, **call))
    got = _as_tuple(recurrent_forward(layer, x, *_exact_products(layer), **call))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert _relative_error(g, e) <= 1e-6


@pytest.mark.backends
@pytest.mark.parametrize("kind, variant", CASES, ids=[f"{k}-{v}" for k, v in CASES])
def test_exact_products_reproduce_the_keras_layer(kind, variant):
    settings, call_settings = VARIANTS[variant]
    layer = _built(_make(kind, settings))
    call = {}
    if "mask" in call_settings:
        call["mask"] = _mask(call_settings["mask"])
    if call_settings.get("initial_state"):
        call["initial_state"] = _initial_state(layer)
    _assert_driver_equals_keras(layer, _inputs(), **call)


@pytest.mark.backends
@pytest.mark.parametrize(
    "layer",
    [
        keras.layers.LSTM(UNITS, implementation=1, return_sequences=True),
        keras.layers.GRU(UNITS, implementation=1, return_sequences=True),
        keras.layers.RNN(keras.layers.LSTMCell(UNITS), return_sequences=True),
        keras.layers.SimpleRNN(UNITS, dropout=0.3, recurrent_dropout=0.2),
        keras.layers.GRU(UNITS, unroll=True, return_sequences=True),
    ],
    ids=["lstm_implementation_1", "gru_implementation_1", "rnn_of_lstm_cell", "dropout_at_inference", "unrolled"],
)
def test_other_settings_reproduce_the_keras_layer(layer):
    _built(layer)
    _assert_driver_equals_keras(layer, _inputs(), mask=_mask("trailing"))


def _gradients(loss, variables, x):
    """d loss(x) / d (x, *variables) as numpy, on the running backend.

    Compiled (XLA) on TensorFlow and JAX, as in a train step.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def function(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(x)
            return tape.gradient(value, [x] + [v.value for v in variables])

        grads = function(tf.constant(x))
    elif BACKEND == "jax":
        import jax

        def function(x, values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss(x)

        gradient = jax.jit(jax.grad(function, argnums=(0, 1)))
        gx, gv = gradient(ops.convert_to_tensor(x), [v.value for v in variables])
        grads = [gx, *gv]
    elif BACKEND == "torch":
        x = ops.convert_to_tensor(x).requires_grad_(True)
        for v in variables:
            v.value.grad = None
        loss(x).backward()
        grads = [x.grad] + [v.value.grad for v in variables]
    else:
        pytest.skip(f"no gradient helper for backend {BACKEND}")
    return [_numpy(g) for g in grads]


@pytest.mark.backends
@pytest.mark.parametrize(
    "kind, settings, mask",
    [
        ("simple_rnn", {"return_sequences": True}, None),
        ("lstm", {"return_sequences": True, "return_state": True}, "trailing"),
        ("gru", {"return_sequences": True}, "trailing"),
        ("gru_reset_before", {"return_sequences": True, "go_backwards": True}, "trailing"),
    ],
)
def test_gradients_equal_the_keras_layers(kind, settings, mask):
    layer = _built(_make(kind, settings))
    cell = layer.cell
    variables = [cell.kernel, cell.recurrent_kernel, cell.bias]
    call = {} if mask is None else {"mask": _mask(mask)}
    rng = np.random.default_rng(5)
    first = (BATCH, TIME, UNITS) if settings.get("return_sequences") else (BATCH, UNITS)
    shapes = [first, (BATCH, UNITS), (BATCH, UNITS)]  # the output, then up to two states
    weights = [ops.convert_to_tensor(rng.normal(size=shape).astype("float32")) for shape in shapes]

    def loss_of(outputs):
        # A weighted sum, so that every output element has its own gradient.
        return sum(ops.sum(o * w) for o, w in zip(_as_tuple(outputs), weights))

    expected = _gradients(lambda x: loss_of(layer(x, **call)), variables, _inputs())
    got = _gradients(
        lambda x: loss_of(recurrent_forward(layer, x, *_exact_products(layer), **call)), variables, _inputs()
    )
    for g, e in zip(got, expected):
        assert _relative_error(g, e) <= 1e-5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.backends
@pytest.mark.parametrize("go_backwards", [False, True])
def test_each_step_gets_its_own_noise_slice_in_the_order_steps_are_computed(go_backwards):
    layer = _built(keras.layers.SimpleRNN(UNITS, return_sequences=True, go_backwards=go_backwards))
    x = _inputs()
    noise = np.random.default_rng(7).normal(size=(TIME, BATCH, UNITS)).astype("float32")
    input_product, _ = _exact_products(layer)
    y = recurrent_forward(
        layer,
        x,
        input_product,
        lambda h, noise_t: ops.matmul(h, layer.cell.recurrent_kernel) + noise_t,
        step_noise=noise,
    )

    kernel, recurrent_kernel = (_numpy(w) for w in recurrent_matrices(layer))
    bias = _numpy(layer.cell.bias)
    h = np.zeros((BATCH, UNITS))
    expected = []
    for k in range(TIME):
        t = TIME - 1 - k if go_backwards else k
        h = np.tanh(x[:, t] @ kernel + bias + h @ recurrent_kernel + noise[k])
        expected.append(h)
    np.testing.assert_allclose(_numpy(y), np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.backends
def test_a_gru_resetting_before_drives_both_passes_with_the_steps_noise_tuple():
    # reset_after=False: the state's product and the reset state's product
    # both go through recurrent_product, with the same slices of a tuple.
    layer = _built(keras.layers.GRU(UNITS, reset_after=False, return_sequences=True))
    x = _inputs()
    rng = np.random.default_rng(8)
    added = rng.normal(size=(TIME, BATCH, 3 * UNITS)).astype("float32")
    scale = rng.uniform(0.5, 1.5, size=(TIME,)).astype("float32")
    input_product, _ = _exact_products(layer)

    def recurrent_product(h, noise_t):
        return ops.matmul(h, layer.cell.recurrent_kernel) * noise_t[1] + noise_t[0]

    y = recurrent_forward(layer, x, input_product, recurrent_product, step_noise=(added, scale))

    kernel, recurrent_kernel = (_numpy(w) for w in recurrent_matrices(layer))
    bias = _numpy(layer.cell.bias)
    u = UNITS
    h = np.zeros((BATCH, UNITS))
    expected = []
    for t in range(TIME):
        projected = x[:, t] @ kernel + bias
        inner = (h @ recurrent_kernel) * scale[t] + added[t]
        z = _sigmoid(projected[:, :u] + inner[:, :u])
        r = _sigmoid(projected[:, u : 2 * u] + inner[:, u : 2 * u])
        reset = ((r * h) @ recurrent_kernel) * scale[t] + added[t]
        candidate = np.tanh(projected[:, 2 * u :] + reset[:, 2 * u :])
        h = z * h + (1 - z) * candidate
        expected.append(h)
    np.testing.assert_allclose(_numpy(y), np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.backends
def test_noise_of_the_wrong_length_is_a_clear_error():
    layer = _built(keras.layers.GRU(UNITS))
    with pytest.raises(InvalidArgumentError, match=f"'{layer.name}'.*step_noise"):
        recurrent_forward(
            layer, _inputs(), *_exact_products(layer), step_noise=np.zeros((TIME + 1, BATCH, 3 * UNITS), "float32")
        )


class _CountingCell(keras.layers.Layer):
    """A custom cell: h_t = h_{t-1} + sum(x_t)."""

    state_size = UNITS

    def call(self, inputs, states):
        h = states[0] + ops.sum(inputs, axis=-1, keepdims=True)
        return h, [h]


class _LeakyLSTMCell(keras.layers.LSTMCell):
    def call(self, inputs, states, training=False):
        h, (h_state, c) = super().call(inputs, states, training=training)
        return 0.5 * h, [0.5 * h_state, c]


@pytest.mark.backends
@pytest.mark.parametrize(
    "layer, words",
    [
        (keras.layers.RNN(_CountingCell(), name="counting"), "'counting'.*not a SimpleRNN, LSTM or GRU"),
        (keras.layers.RNN(_LeakyLSTMCell(UNITS), name="leaky"), "'leaky'.*overrides call"),
        (
            keras.layers.Bidirectional(keras.layers.LSTM(UNITS), name="both_ways"),
            "'both_ways'.*not a SimpleRNN, LSTM or GRU",
        ),
        (keras.layers.Dense(UNITS, name="dense_one"), "'dense_one'.*not a SimpleRNN, LSTM or GRU"),
    ],
    ids=["custom_cell", "cell_overriding_call", "bidirectional", "dense"],
)
def test_layers_it_cannot_compute_are_refused(layer, words):
    layer.build((BATCH, TIME, FEATURES))
    with pytest.raises(UnsupportedLayerError, match=words):
        recurrent_forward(layer, _inputs(), lambda x: x, lambda h, n: h)
    with pytest.raises(UnsupportedLayerError, match=words):
        recurrent_matrices(layer)


@pytest.mark.backends
def test_a_stateful_layer_is_refused():
    layer = keras.layers.LSTM(UNITS, stateful=True, name="remembers")
    layer.build((BATCH, TIME, FEATURES))
    with pytest.raises(UnsupportedLayerError, match="'remembers'.*stateful=True"):
        recurrent_forward(layer, _inputs(), *_exact_products(layer))


@pytest.mark.backends
@pytest.mark.parametrize(
    "settings", [{"dropout": 0.2}, {"recurrent_dropout": 0.2}], ids=["dropout", "recurrent_dropout"]
)
def test_dropout_is_refused_in_training_and_ignored_at_inference(settings):
    layer = _built(keras.layers.GRU(UNITS, name="drops", **settings))
    with pytest.raises(UnsupportedLayerError, match="'drops'.*dropout"):
        recurrent_forward(layer, _inputs(), *_exact_products(layer), training=True)
    expected = layer(_inputs(), training=False)
    for training in (False, None):
        got = recurrent_forward(layer, _inputs(), *_exact_products(layer), training=training)
        assert _relative_error(got, expected) <= 1e-6


@pytest.mark.backends
def test_bad_arguments_are_clear_errors():
    unbuilt = keras.layers.LSTM(UNITS, name="unbuilt")
    with pytest.raises(InvalidArgumentError, match="'unbuilt'.*not built"):
        recurrent_forward(unbuilt, _inputs(), lambda x: x, lambda h, n: h)
    layer = _built(keras.layers.LSTM(UNITS, name="two_states"))
    with pytest.raises(InvalidArgumentError, match="'two_states'.*2 state"):
        recurrent_forward(layer, _inputs(), *_exact_products(layer), initial_state=[np.zeros((BATCH, UNITS))])
    with pytest.raises(InvalidArgumentError, match="'two_states'.*mask"):
        recurrent_forward(layer, _inputs(), *_exact_products(layer), mask=np.ones((BATCH, TIME + 1), bool))
    with pytest.raises(InvalidArgumentError, match="'two_states'.*\\(batch, time, features\\)"):
        recurrent_forward(layer, _inputs()[0], *_exact_products(layer))


@pytest.mark.backends
def test_helpers():
    layer = _built(keras.layers.GRU(UNITS))
    kernel, recurrent_kernel = recurrent_matrices(layer)
    assert kernel is layer.cell.kernel and recurrent_kernel is layer.cell.recurrent_kernel
    assert tuple(kernel.shape) == (FEATURES, 3 * UNITS)
    assert time_steps(ops.convert_to_tensor(_inputs())) == TIME
    assert [gate_count(KINDS[k]()) for k in KINDS] == [1, 4, 3, 3]
    assert cell_kind(keras.layers.RNN(keras.layers.GRUCell(UNITS))) == "gru"


class _DrivenRNN(keras.layers.Layer):
    """A recurrent layer computed by the driver, as a chip layer would be."""

    def __init__(self, rnn, **kwargs):
        super().__init__(**kwargs)
        self.rnn = rnn

    def build(self, input_shape):
        self.rnn.build(input_shape)

    def call(self, inputs, training=None):
        return recurrent_forward(self.rnn, inputs, *_exact_products(self.rnn), training=training)

    def compute_output_shape(self, input_shape):
        return self.rnn.compute_output_shape(input_shape)


@pytest.mark.backends
@pytest.mark.parametrize("kind", ["lstm", "gru_reset_before"])
def test_it_trains_and_predicts_inside_compiled_steps(kind):
    rnn = KINDS[kind]()
    dense = keras.layers.Dense(1)
    inputs = keras.Input((TIME, FEATURES))
    driven = keras.Model(inputs, dense(_DrivenRNN(rnn)(inputs)))
    plain = keras.Model(inputs, dense(rnn(inputs)))
    # torch.compile is slow to start and not what this checks; TF and JAX
    # compile the step with XLA.
    jit = BACKEND != "torch"
    x = np.concatenate([_inputs(0), _inputs(1)])
    y = np.random.default_rng(3).normal(size=(2 * BATCH, 1)).astype("float32")

    before = _numpy(rnn.cell.recurrent_kernel)
    np.testing.assert_allclose(
        driven.predict(x, batch_size=BATCH, verbose=0),
        plain.predict(x, batch_size=BATCH, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    driven.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit)
    history = driven.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.abs(_numpy(rnn.cell.recurrent_kernel) - before).max() > 0  # the gradient reached it
