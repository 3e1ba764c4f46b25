"""Helpers for the tests that work on every Keras backend (imported by test modules)."""

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()



def to_numpy(value):
    """Any backend tensor or nested output -> numpy (first output of a list)."""
    if isinstance(value, (list, tuple)):
        value = value[0]
    return np.asarray(keras.ops.convert_to_numpy(value))


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
