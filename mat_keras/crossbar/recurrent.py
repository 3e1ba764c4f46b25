"""The forward pass of a recurrent layer with its two matrix products supplied.

A Keras `SimpleRNN`, `LSTM` or `GRU` computes, at every time step, two matrix
products: the input `x_t @ kernel` and the state `h_{t-1} @ recurrent_kernel`.
`recurrent_forward` computes the layer's forward pass exactly as Keras 3
does (gate order, activations, where the biases are added, masking,
`go_backwards`, returned values), except that both products are callables,
so that a chip product (`analog_matmul`) can replace the exact one:

- `input_product(x)` is called once for the whole sequence,
  `(batch, time, features) -> (batch, time, gates * units)`, since the
  inputs do not depend on the state;
- `recurrent_product(h, noise_t)` is called at every step,
  `(batch, units) -> (batch, gates * units)`, with that step's slice of
  `step_noise` (so a chip can draw fresh read noise at every step from
  noise drawn once, outside the loop).

Biases are added digitally, where Keras adds them. The loop is a
`keras.ops.scan`, so the forward pass compiles inside a train step on
TensorFlow, JAX and PyTorch and gradients flow through it to the inputs,
the weights and whatever the products depend on.

Example:

>>> layer = keras.layers.LSTM(3, return_sequences=True)
>>> y_keras = layer(x)
>>> kernel, recurrent_kernel = recurrent_matrices(layer)
>>> y = recurrent_forward(
...     layer,
...     x,
...     input_product=lambda x: keras.ops.matmul(x, kernel),
...     recurrent_product=lambda h, noise: keras.ops.matmul(h, recurrent_kernel),
... )  # equals y_keras
"""

import keras
from keras import ops

from mat_keras.errors import InvalidArgumentError, UnsupportedLayerError

# The cells whose step the driver reproduces, by kind, with the number of
# gates stacked along the kernels' columns.
_CELLS = (
    ("simple_rnn", keras.layers.SimpleRNNCell, 1),
    ("lstm", keras.layers.LSTMCell, 4),
    ("gru", keras.layers.GRUCell, 3),
)


def cell_kind(layer):
    """Returns `"simple_rnn"`, `"lstm"` or `"gru"`: the cell a recurrent layer runs.

    The kind is the layer's cell, so `keras.layers.RNN(keras.layers.LSTMCell(n))`
    is an `"lstm"` as `keras.layers.LSTM(n)` is.

    Args:
        layer: a Keras recurrent layer.

    Returns:
        The kind, a string.

    Raises:
        UnsupportedLayerError: the layer is not a `SimpleRNN`, `LSTM` or `GRU`
            (a custom cell, stacked cells, a `Bidirectional` wrapper, a
            convolutional LSTM), or its cell overrides `call`, so that its
            step is not the one the driver computes.
    """
    cell = getattr(layer, "cell", None)
    if isinstance(layer, keras.layers.RNN):
        for kind, cell_class, _ in _CELLS:
            if isinstance(cell, cell_class):
                if type(cell).call is not cell_class.call:
                    raise UnsupportedLayerError(
                        f"Layer '{layer.name}' has a cell of class "
                        f"{type(cell).__name__} that overrides call(), so the "
                        "recurrence driver cannot reproduce its step."
                    )
                return kind
    raise UnsupportedLayerError(
        f"Layer '{layer.name}' ({type(layer).__name__}) is not a SimpleRNN, "
        "LSTM or GRU, the only recurrent layers the recurrence driver computes."
    )


def gate_count(layer):
    """Returns how many gates a layer's kernels stack: 1, 4 (LSTM) or 3 (GRU)."""
    kind = cell_kind(layer)
    return next(gates for name, _, gates in _CELLS if name == kind)


def recurrent_matrices(layer):
    """Returns the two matrices a recurrent layer multiplies by.

    Args:
        layer: a built `SimpleRNN`, `LSTM` or `GRU`.

    Returns:
        `(kernel, recurrent_kernel)`, as the cell holds them (read at call
        time, so a scope that overlays the weights is seen): the kernel is
        `(features, gates * units)`, the recurrent kernel
        `(units, gates * units)`, gates in Keras's order (LSTM `i, f, c, o`,
        GRU `z, r, h`).

    Example:

    >>> kernel, recurrent_kernel = recurrent_matrices(keras.layers.GRU(3))
    """
    cell_kind(layer)
    _check_built(layer)
    return layer.cell.kernel, layer.cell.recurrent_kernel


def time_steps(inputs):
    """Returns the number of time steps of `(batch, time, ...)` inputs.

    A Python int when the shape is static, else a scalar tensor.

    Example:

    >>> time_steps(np.zeros((3, 5, 4)))
    5
    """
    steps = inputs.shape[1]
    return steps if steps is not None else ops.shape(inputs)[1]


def recurrent_forward(
    layer,
    inputs,
    input_product,
    recurrent_product,
    step_noise=None,
    mask=None,
    initial_state=None,
    training=None,
):
    """Computes a recurrent layer's forward pass with supplied matrix products.

    With exact products (`ops.matmul` by the cell's kernels) the result equals
    `layer(inputs, mask=mask, initial_state=initial_state)`: the same cell
    math, masking and returned values (see `mat_keras.crossbar.recurrent`).

    Masked steps keep the previous states. Their output is zero with the
    layer's `zero_output_for_mask`, else the previous step's output, which
    before any unmasked step is zero, as Keras's TensorFlow and PyTorch loops
    give it, or the initial `h` on JAX without `unroll`, as Keras's JAX loop
    gives it.

    Args:
        layer: a built `keras.layers.SimpleRNN`, `LSTM` or `GRU` (or a
            subclass, or a `keras.layers.RNN` of one of their cells). Its
            weights are read from `layer.cell` when called.
        inputs: `(batch, time, features)`.
        input_product: `x -> x @ kernel` computed some way, for the whole
            sequence: `(batch, time, features) -> (batch, time, gates * units)`.
        recurrent_product: `(h, noise_t) -> h @ recurrent_kernel` computed
            some way: `(batch, units) -> (batch, gates * units)`. A GRU with
            `reset_after=False` calls it twice a step, on `h` (of which its
            `z` and `r` columns are used) and on `r * h` (its `h` columns),
            with the same `noise_t`, as a chip holding the whole matrix is
            driven.
        step_noise: None, or a tensor, or a tuple or list of tensors, whose
            leading axis is time (length: the number of steps). The loop
            hands slice `k` to the `k`-th step it computes, which with
            `go_backwards` is input step `time - 1 - k` (the order in which
            the outputs come back too). `noise_t` is None without it.
        mask: None or a boolean `(batch, time)`: False marks a step to skip.
        initial_state: None (zeros) or the initial states as Keras takes
            them: a list, `[h]` (or `h`) for `SimpleRNN` and `GRU`, `[h, c]`
            for `LSTM`.
        training: whether this is a training pass. Dropout cannot be
            computed, so a layer with `dropout` or `recurrent_dropout` is
            refused when `training` is true; None counts as inference.

    Returns:
        What `layer.call` returns: the output, `(batch, time, units)` with
        `return_sequences` (in the order the steps are computed, reversed
        with `go_backwards`, as Keras returns it) else `(batch, units)`; with
        `return_state`, the tuple `(output, *states)`, states `h` (and `c`
        for `LSTM`).

    Raises:
        UnsupportedLayerError: the layer is not one the driver computes (see
            `cell_kind`), is `stateful`, or has dropout in a training pass.
        InvalidArgumentError: the layer is not built, the inputs are not
            3-D, or `mask`, `initial_state` or `step_noise` do not fit them.

    Example:

    >>> layer = keras.layers.GRU(3, return_state=True)
    >>> output, h = recurrent_forward(
    ...     layer,
    ...     x,
    ...     lambda x: keras.ops.matmul(x, layer.cell.kernel),
    ...     lambda h, noise: keras.ops.matmul(h, layer.cell.recurrent_kernel) + noise,
    ...     step_noise=keras.random.normal((x.shape[1], x.shape[0], 9), stddev=0.01),
    ... )
    """
    kind = cell_kind(layer)
    _check_built(layer)
    _check_computable(layer, training)
    cell = layer.cell
    dtype = cell.compute_dtype

    inputs = ops.cast(ops.convert_to_tensor(inputs), layer.compute_dtype)
    if len(inputs.shape) != 3:
        raise InvalidArgumentError(
            f"Layer '{layer.name}' takes inputs of shape (batch, time, features); "
            f"received a tensor of shape {tuple(inputs.shape)}."
        )
    states = _initial_states(layer, inputs, initial_state)
    step = _STEPS[kind](cell, recurrent_product, dtype)

    # The inputs' product does not depend on the state: one call for the
    # whole sequence, then the loop walks it along time.
    projected = ops.cast(input_product(inputs), dtype)
    input_bias = _input_bias(kind, cell, dtype)
    if input_bias is not None:
        projected = projected + input_bias
    sequence = {"inputs": ops.transpose(projected, (1, 0, 2))}
    if mask is not None:
        sequence["mask"] = _time_major_mask(layer, mask, inputs)
    if layer.go_backwards:
        # Reversed before the loop, so that the loop, its outputs and the
        # noise slices all run in the order the steps are computed.
        sequence = {key: ops.flip(value, axis=0) for key, value in sequence.items()}
    if step_noise is not None:
        _check_noise_length(layer, step_noise, inputs)
        sequence["noise"] = step_noise

    zero_output = bool(getattr(layer, "zero_output_for_mask", False))

    def loop_step(carry, step_inputs):
        *previous, shown = carry
        output, new_states = step(step_inputs["inputs"], previous, step_inputs.get("noise"))
        if "mask" in step_inputs:
            keep = step_inputs["mask"]
            new_states = [ops.where(keep, new, old) for new, old in zip(new_states, previous)]
            fallback = ops.zeros_like(output) if zero_output else shown
            output = ops.where(keep, output, fallback)
        # The carry ends with the output the step shows, which the next
        # masked step may show again.
        return (*new_states, output)

    carry = (*states, _first_shown_output(layer, states))
    carry, outputs = _run_loop(loop_step, carry, sequence, time_steps(inputs), layer.return_sequences)
    final_states = [ops.cast(state, layer.compute_dtype) for state in carry[:-1]]
    if layer.return_sequences:
        output = ops.transpose(outputs, (1, 0, 2))
    else:
        output = carry[-1]
    output = ops.cast(output, layer.compute_dtype)
    if layer.return_state:
        return (output, *final_states)
    return output


def _run_loop(step, carry, sequence, steps, keep_outputs):
    """Runs `carry = step(carry, sequence[k])` for `k = 0 .. steps - 1`.

    Args:
        step: `(carry, step_inputs) -> carry`; the carry is a tuple of
            tensors whose last one is the step's output.
        carry: the initial carry.
        sequence: a nest of tensors whose leading axis is time.
        steps: the number of steps, an int or a scalar tensor.
        keep_outputs: whether to stack the outputs of every step.

    Returns:
        `(carry, outputs)`: the final carry, and the outputs stacked along a
        leading time axis (None without `keep_outputs`).
    """
    sequence = keras.tree.map_structure(ops.convert_to_tensor, sequence)
    if keras.backend.backend() != "tensorflow":

        def scan_step(carry, step_inputs):
            carry = step(carry, step_inputs)
            return carry, carry[-1]

        carry, outputs = ops.scan(scan_step, carry, sequence)
        return carry, outputs if keep_outputs else None

    # Keras's TensorFlow `scan` builds a while loop without
    # `maximum_iterations`, which XLA needs to differentiate it (and `fit`
    # compiles with XLA by default), and `slice_update` has no TensorFlow
    # gradient: a bounded `while_loop` writing with `scatter_update` has both.
    def read(index):
        return keras.tree.map_structure(lambda values: ops.take(values, index, axis=0), sequence)

    def body(index, carry, *outputs):
        carry = step(carry, read(index))
        if outputs:
            written = ops.expand_dims(carry[-1], 0)
            outputs = (ops.scatter_update(outputs[0], ops.reshape(index, (1, 1)), written),)
        return (index + 1, carry, *outputs)

    loop_vars = (ops.convert_to_tensor(0, "int32"), carry)
    if keep_outputs:
        # Shaped from the carry, so that a dynamic batch size stays dynamic.
        loop_vars += (ops.repeat(ops.expand_dims(ops.zeros_like(carry[-1]), 0), steps, axis=0),)
    _, carry, *outputs = ops.while_loop(
        lambda index, *_: index < steps, body, loop_vars, maximum_iterations=steps
    )
    return carry, outputs[0] if keep_outputs else None


def _check_built(layer):
    if not layer.built or getattr(layer.cell, "kernel", None) is None:
        raise InvalidArgumentError(
            f"Layer '{layer.name}' is not built; call it on inputs or build it "
            "before computing its forward pass."
        )


def _check_computable(layer, training):
    if layer.stateful:
        raise UnsupportedLayerError(
            f"Layer '{layer.name}' has stateful=True, and the recurrence driver "
            "cannot carry states from one batch to the next."
        )
    dropout = layer.cell.dropout
    recurrent_dropout = layer.cell.recurrent_dropout
    # Dropout first: `training` is then read only for a layer with dropout,
    # where it must be a Python bool (Keras decides dropout while tracing too).
    if (dropout > 0 or recurrent_dropout > 0) and training:
        raise UnsupportedLayerError(
            f"Layer '{layer.name}' has dropout={dropout} and "
            f"recurrent_dropout={recurrent_dropout}, which the recurrence driver "
            "cannot apply in training; set both to 0 or call with training=False."
        )


def _initial_states(layer, inputs, initial_state):
    """Returns the initial states as a list, in the cell's compute dtype."""
    sizes = layer.cell.state_size
    count = len(sizes) if isinstance(sizes, (list, tuple)) else 1
    dtype = layer.cell.compute_dtype
    if initial_state is None:
        batch = ops.shape(inputs)[0]
        return [ops.zeros((batch, layer.cell.units), dtype=dtype) for _ in range(count)]
    if not isinstance(initial_state, (list, tuple)):
        initial_state = [initial_state]
    if len(initial_state) != count:
        raise InvalidArgumentError(
            f"Layer '{layer.name}' has {count} state(s) and takes as many initial "
            f"states; received {len(initial_state)}."
        )
    return [ops.cast(ops.convert_to_tensor(state), dtype) for state in initial_state]


def _first_shown_output(layer, states):
    """Returns the output a masked step shows before any unmasked step."""
    # Keras's JAX loop shows the previous `h` at a masked step, its
    # TensorFlow and PyTorch loops (and every unrolled loop) the previous
    # step's output, starting from zeros: they differ only here.
    if keras.backend.backend() == "jax" and not layer.unroll:
        return states[0]
    return ops.zeros_like(states[0])


def _time_major_mask(layer, mask, inputs):
    """Returns a boolean mask `(batch, time)` as `(time, batch, 1)`."""
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) != 2:
        raise InvalidArgumentError(
            f"Layer '{layer.name}' takes a mask of shape (batch, time); received "
            f"a tensor of shape {tuple(mask.shape)}."
        )
    if mask.shape[1] is not None and inputs.shape[1] is not None and mask.shape[1] != inputs.shape[1]:
        raise InvalidArgumentError(
            f"Layer '{layer.name}' received a mask of {mask.shape[1]} steps for "
            f"inputs of {inputs.shape[1]} steps."
        )
    mask = ops.cast(mask, "bool")
    return ops.expand_dims(ops.transpose(mask, (1, 0)), -1)


def _check_noise_length(layer, step_noise, inputs):
    pieces = step_noise if isinstance(step_noise, (list, tuple)) else [step_noise]
    steps = inputs.shape[1]
    for piece in pieces:
        shape = tuple(getattr(piece, "shape", ()))
        length = shape[0] if shape else None
        # A dynamic length (None, or a tensor) is left to the loop to check.
        if isinstance(length, int) and isinstance(steps, int) and length != steps:
            raise InvalidArgumentError(
                f"Layer '{layer.name}' runs {steps} steps but received step_noise "
                f"with a leading (time) axis of {length}."
            )


def _activation(function):
    # A cell built with activation=None applies none (Keras's `linear`).
    return function if function is not None else (lambda x: x)


def _read(weight, dtype):
    """Reads a weight at call time, in the dtype the cell computes in."""
    return None if weight is None else ops.cast(weight, dtype)


def _input_bias(kind, cell, dtype):
    """Returns the bias Keras adds to the inputs' product, or None.

    SimpleRNN and GRU add theirs (GRU with `reset_after`: its input row) to
    `x @ kernel` before the state's product; LSTM does so only with
    `implementation=1`, and otherwise adds its bias after the sum.
    """
    bias = _read(cell.bias, dtype) if cell.use_bias else None
    if bias is None:
        return None
    if kind == "gru" and cell.reset_after:
        return bias[0]
    if kind == "lstm" and cell.implementation != 1:
        return None
    return bias


def _simple_rnn_step(cell, recurrent_product, dtype):
    """Returns the step `(x_t, [h], noise_t) -> (h, [h])` of a `SimpleRNNCell`."""
    activation = _activation(cell.activation)

    def step(x_t, states, noise_t):
        (h,) = states
        h = activation(x_t + ops.cast(recurrent_product(h, noise_t), dtype))
        return h, [h]

    return step


def _lstm_step(cell, recurrent_product, dtype):
    """Returns the step `(x_t, [h, c], noise_t) -> (h, [h, c])` of an `LSTMCell`."""
    activation = _activation(cell.activation)
    recurrent_activation = _activation(cell.recurrent_activation)
    units = cell.units
    # With `implementation=2` (the default) Keras adds the bias after the
    # two products' sum; with 1 it is already in `x_t`.
    bias = _read(cell.bias, dtype) if cell.use_bias and cell.implementation != 1 else None

    def step(x_t, states, noise_t):
        h, c = states
        z = x_t + ops.cast(recurrent_product(h, noise_t), dtype)
        if bias is not None:
            z = z + bias
        i = recurrent_activation(z[:, :units])
        f = recurrent_activation(z[:, units : 2 * units])
        c = f * c + i * activation(z[:, 2 * units : 3 * units])
        o = recurrent_activation(z[:, 3 * units :])
        h = o * activation(c)
        return h, [h, c]

    return step


def _gru_step(cell, recurrent_product, dtype):
    """Returns the step `(x_t, [h], noise_t) -> (h, [h])` of a `GRUCell`."""
    activation = _activation(cell.activation)
    recurrent_activation = _activation(cell.recurrent_activation)
    units = cell.units
    reset_after = cell.reset_after
    # `reset_after` has two bias rows: the input row is already in `x_t`,
    # the recurrent row is added to the state's product, before the reset.
    recurrent_bias = _read(cell.bias, dtype)[1] if cell.use_bias and reset_after else None

    def step(x_t, states, noise_t):
        (h,) = states
        inner = ops.cast(recurrent_product(h, noise_t), dtype)
        if recurrent_bias is not None:
            inner = inner + recurrent_bias
        z = recurrent_activation(x_t[:, :units] + inner[:, :units])
        r = recurrent_activation(x_t[:, units : 2 * units] + inner[:, units : 2 * units])
        if reset_after:
            recurrent_h = r * inner[:, 2 * units :]
        else:
            # The reset applies before the product: a second pass of the
            # whole matrix, of which only the candidate's columns are used.
            recurrent_h = ops.cast(recurrent_product(r * h, noise_t), dtype)[:, 2 * units :]
        candidate = activation(x_t[:, 2 * units :] + recurrent_h)
        h = z * h + (1 - z) * candidate
        return h, [h]

    return step


_STEPS = {"simple_rnn": _simple_rnn_step, "lstm": _lstm_step, "gru": _gru_step}
