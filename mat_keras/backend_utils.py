"""The few places where mat-keras needs a backend's own machinery.

Everything else is written with `keras.ops` and `keras.random`.
"""

import keras


def compile_function(function):
    """Returns `function` compiled by the backend: tf.function, jax.jit, or as is.

    The function must be pure: tensors in, tensors out (pass random state
    explicitly, see `stateless_draw`). Eager dispatch of many small ops costs
    milliseconds on JAX; compiled, the same work takes microseconds.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def stateless_draw(function, generator):
    """Makes `function(*args)` pure with respect to a `SeedGenerator`.

    Returns `draw(state, *args) -> (outputs, new_state)`: inside, the
    generator's state variable reads `state`, and its advance is returned
    instead of assigned, so `draw` can be compiled.
    """

    def draw(state, *args):
        with keras.StatelessScope(state_mapping=[(generator.state, state)]) as scope:
            outputs = function(*args)
            new_state = scope.get_current_value(generator.state)
        return outputs, new_state

    return draw
