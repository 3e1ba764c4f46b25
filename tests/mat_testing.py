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
