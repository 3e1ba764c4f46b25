"""Helpers for the tests that work on every Keras backend (imported by test modules)."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
ALL_BACKENDS = ("tensorflow", "jax", "torch")
# Set by CI: a test that needs a backend fails when it is missing, instead of skipping.
REQUIRE_BACKENDS = os.environ.get("MAT_KERAS_REQUIRE_BACKENDS", "") not in ("", "0")



def to_numpy(value):
    """Any backend tensor or nested output -> numpy (first output of a list)."""
    if isinstance(value, (list, tuple)):
        value = value[0]
    return np.asarray(keras.ops.convert_to_numpy(value))


def read_variable(model, variable):
    """A variable's value as numpy, also from a callback inside `fit`.

    The JAX trainer keeps the state outside the variables during an epoch
    (their values are freed); `jax_state_sync` writes it back first.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()
    return to_numpy(variable)


def gradients(layer, variables, inputs, training=True):
    """Gradient of sum(layer(inputs)**2) with respect to `variables`.

    One implementation per backend, since Keras has no public tape.
    """
    def loss_of(outputs):
        return keras.ops.sum(keras.ops.square(outputs[0] if isinstance(outputs, (list, tuple)) else outputs))

    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(layer(inputs, training=training))
        return [to_numpy(g) for g in tape.gradient(loss, [v.value for v in variables])]
    if BACKEND == "torch":
        for v in variables:
            v.value.grad = None
        loss = loss_of(layer(inputs, training=training))
        loss.backward()
        return [to_numpy(v.value.grad) for v in variables]
    if BACKEND == "jax":
        import jax

        targets = {id(v) for v in variables}
        others = [v for v in layer.weights if id(v) not in targets]

        def function(values):
            mapping = list(zip(variables, values)) + [(v, v.value) for v in others]
            with keras.StatelessScope(state_mapping=mapping):
                return loss_of(layer(inputs, training=training))

        return [to_numpy(g) for g in jax.grad(function)([v.value for v in variables])]
    pytest.skip(f"no gradient helper for backend {BACKEND}")


def installed_backends():
    """The Keras backends whose framework is installed, in `ALL_BACKENDS` order."""
    return [name for name in ALL_BACKENDS if importlib.util.find_spec(name) is not None]


def require_backends(*names):
    """Skips the test unless the named backends are installed (fails in CI).

    Returns:
        The names.
    """
    missing = [name for name in names if name not in installed_backends()]
    if missing:
        message = (
            f"needs the {', '.join(missing)} backend(s): pip install -e '.[{','.join(missing)}]'"
            if set(missing) <= {"jax", "torch"}
            else f"needs {', '.join(missing)}"
        )
        if REQUIRE_BACKENDS:
            pytest.fail(message + " (MAT_KERAS_REQUIRE_BACKENDS is set)")
        pytest.skip(message)
    return names


def run_on_backend(script, backend, *args, env=None, timeout=600):
    """Runs `python script *args` with `KERAS_BACKEND=backend` in a subprocess.

    The Keras backend is fixed per process, so tests that compare backends, or
    that must configure devices before the framework starts, run their work in
    a subprocess of its own. The script prints one line `RESULT <json>`; this
    returns the decoded JSON, and fails the test with the subprocess's output
    when it exits non-zero or prints no result.
    """
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        output = (done.stdout + done.stderr)[-6000:]
        pytest.fail(f"{backend} subprocess {script} {' '.join(map(str, args))} exited {done.returncode}:\n{output}")
    return json.loads(lines[-1][len("RESULT "):])


def print_result(result):
    """The worker side of `run_on_backend`: prints its one result line."""
    print("RESULT " + json.dumps(result), flush=True)


def random_weights(layer, seed=0):
    """Gives every variable non-trivial values (biases and BN parameters too)."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        value = rng.normal(0, 0.5, variable.shape).astype("float32")
        if "variance" in variable.path:
            value = np.abs(value) + 0.5
        variable.assign(value)


# One case per layer type of the layer table (`mat_keras.layers`): (name, layer
# factory, inputs); an input is a float shape or ("int", shape, vocabulary).
TABLE_CASES = [
    ("dense", lambda: keras.layers.Dense(5), [(3, 4)]),
    ("einsum_dense", lambda: keras.layers.EinsumDense("ab,bc->ac", output_shape=5, bias_axes="c"), [(3, 4)]),
    ("conv1d", lambda: keras.layers.Conv1D(4, 3), [(2, 9, 3)]),
    ("conv2d", lambda: keras.layers.Conv2D(4, 3), [(2, 7, 7, 3)]),
    ("conv3d", lambda: keras.layers.Conv3D(3, 2), [(2, 4, 4, 4, 2)]),
    ("conv1d_transpose", lambda: keras.layers.Conv1DTranspose(4, 3, strides=2), [(2, 5, 3)]),
    ("conv2d_transpose", lambda: keras.layers.Conv2DTranspose(4, 3, strides=2), [(2, 4, 4, 3)]),
    ("conv3d_transpose", lambda: keras.layers.Conv3DTranspose(3, 2), [(2, 3, 3, 3, 2)]),
    ("depthwise_conv1d", lambda: keras.layers.DepthwiseConv1D(3), [(2, 9, 3)]),
    ("depthwise_conv2d", lambda: keras.layers.DepthwiseConv2D(3), [(2, 7, 7, 3)]),
    ("separable_conv1d", lambda: keras.layers.SeparableConv1D(4, 3), [(2, 9, 3)]),
    ("separable_conv2d", lambda: keras.layers.SeparableConv2D(4, 3), [(2, 7, 7, 3)]),
    ("simple_rnn", lambda: keras.layers.SimpleRNN(4), [(2, 5, 3)]),
    ("lstm", lambda: keras.layers.LSTM(4), [(2, 5, 3)]),
    ("gru", lambda: keras.layers.GRU(4, return_sequences=True), [(2, 5, 3)]),  # two bias rows
    ("bidirectional", lambda: keras.layers.Bidirectional(keras.layers.LSTM(3)), [(2, 5, 3)]),
    ("embedding", lambda: keras.layers.Embedding(10, 4), [("int", (3, 5), 10)]),
    ("multi_head_attention", lambda: keras.layers.MultiHeadAttention(2, 4), [(2, 5, 6), (2, 3, 6)]),
    (
        "group_query_attention",
        lambda: keras.layers.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2),
        [(2, 5, 6), (2, 3, 6)],
    ),
    ("batchnorm", lambda: keras.layers.BatchNormalization(), [(6, 5)]),
]
TABLE_IDS = [case[0] for case in TABLE_CASES]


def table_inputs(specs, seed=1):
    """The inputs of a TABLE_CASES entry: float arrays, or integer tokens."""
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, spec[2], spec[1]).astype("int32") if spec[0] == "int"
        else rng.normal(size=spec).astype("float32")
        for spec in specs
    ]


def trained_classifier(seed=0):
    """A small 3-class Dense classifier trained on seeded data: `(model, x, y)`."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)], name="clf"
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=20, verbose=0)
    return model, x, y
