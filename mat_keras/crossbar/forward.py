"""The chip forward of a layer: its products through the crossbar, the rest digital.

`chip_call(layer, context, *args, **kwargs)` returns what `layer(*args,
**kwargs)` returns, with every product of an input and a crossbar matrix
computed by `context` (a `ChipContext`: the crossbar, the input ranges, the
noise stream) and the rest (biases, activations, gates, normalisations)
computed digitally, as the chip's periphery does. Which forward a layer
takes is the layer table's `chip` column (`mat_keras.layers`):

| chip | layers | product |
|---|---|---|
| `"dense"` | Dense | `x @ kernel` |
| `"einsum"` | EinsumDense | contracted axes brought last, then `x @ kernel` |
| `"conv"` | Conv1D/2D/3D | the convolution on row-tile-masked kernels (patch rows kh x kw x cin) |
| `"conv_transpose"` | Conv1D/2D/3DTranspose | each pixel `x @ kernel` (cin x k*cout), then the digital scatter-add |
| `"depthwise"` | DepthwiseConv1D/2D | the depthwise convolution on masked kernels |
| `"separable"` | SeparableConv1D/2D | depthwise as above, then pointwise `x @ kernel` |
| `"recurrent"` | SimpleRNN, LSTM, GRU | `x @ kernel` for the sequence, `h @ recurrent_kernel` at each step |
| `"digital"` | Embedding, normalisations | the layer itself (a lookup or a per-channel affine map) |

Containers (MultiHeadAttention, GroupQueryAttention, Bidirectional,
models) run as they are, with the chip forward of each sub-layer that holds
a product (`compat.intercepted_calls`). A layer that holds weights and has
none of these is refused, by name (`UnsupportedLayerError`).
"""

import numpy as np
from keras import ops

from mat_keras import compat
from mat_keras import layers as layer_table
from mat_keras.crossbar import recurrent
from mat_keras.crossbar.products import KernelProduct
from mat_keras.errors import UnsupportedLayerError

DIGITAL = "digital"


def _bias_shape(layer, channels):
    rank = layer.rank
    if layer.data_format == "channels_last":
        return (1,) * (rank + 1) + (channels,)
    return (1, channels) + (1,) * rank


def _finish(layer, outputs, channels=None):
    """Adds the digital bias and applies the activation, as the layer does."""
    bias = getattr(layer, "bias", None)
    if bias is not None:
        if channels is not None:
            bias = ops.reshape(bias, _bias_shape(layer, channels))
        outputs = ops.add(outputs, bias)
    if getattr(layer, "activation", None) is not None:
        outputs = layer.activation(outputs)
    return outputs


def _matrix_spec(layer, name):
    roles = layer_table.layer_roles(layer)
    return next(matrix for matrix in roles.matrices if matrix.name == name)


def _columns_axis(layer):
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _channels_last(x, layer):
    """Moves a `channels_first` tensor's channels last (unchanged otherwise)."""
    if _columns_axis(layer) == -1:
        return x
    return ops.moveaxis(x, 1, -1)


def _channels_back(x, layer):
    if _columns_axis(layer) == -1:
        return x
    return ops.moveaxis(x, -1, 1)


def dense_forward(layer, context, inputs, training=None):
    """Dense: `x @ kernel` through the crossbar, then bias and activation."""
    return _finish(layer, context.product(layer, "kernel", inputs, layer.kernel))


def einsum_forward(layer, context, inputs, training=None):
    """EinsumDense: the input's contracted axes brought last, one crossbar product, axes put back."""
    spec = _matrix_spec(layer, "kernel")
    contracted, produced, output = layer_table.einsum_kernel_axes(layer.equation, layer.name)
    source = layer.equation.split(",")[0]
    kept = "".join(c for c in source if c not in contracted)
    x = ops.einsum(f"{source}->{kept}{contracted}", inputs)
    shape = ops.shape(x)
    x = ops.reshape(x, (*shape[: len(kept)], -1))
    kernel = layer.kernel
    y = context.product(layer, "kernel", x, spec.unroll(kernel, ops))
    produced_shape = tuple(kernel.shape)[len(contracted):]
    y = ops.reshape(y, (*shape[: len(kept)], *produced_shape))
    y = ops.einsum(f"{kept}{produced}->{output}", y)
    return _finish(layer, y)


def _conv_op(layer):
    """The layer's convolution, `(x, kernel) -> sums`, and its input padding (causal)."""
    padding = layer.padding
    pad = None
    if padding == "causal":
        # Conv1D's causal padding: the window's reach before each step, on the time axis.
        left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
        pad = [[0, 0], [left, 0], [0, 0]] if layer.data_format == "channels_last" else [[0, 0], [0, 0], [left, 0]]
        padding = "valid"

    def op(x, kernel):
        return ops.conv(
            x, kernel, strides=list(layer.strides), padding=padding,
            dilation_rate=layer.dilation_rate, data_format=layer.data_format,
        )

    return op, pad


def conv_forward(layer, context, inputs):
    """Conv1D/2D/3D: the convolution computes every patch's column sums, one masked kernel per tile."""
    spec = _matrix_spec(layer, "kernel")
    kernel = layer.kernel
    op, pad = _conv_op(layer)
    if pad is not None:
        inputs = ops.pad(inputs, pad)
    product = KernelProduct(
        op, spec, kernel.shape, _columns_axis(layer), single_column=layer.groups == 1
    )
    y = context.product(layer, "kernel", inputs, spec.unroll(kernel, ops), product)
    return _finish(layer, y, layer.filters)


def _scatter_kernel(kernel_shape, dtype):
    """The one-hot kernel that adds each pixel's per-offset column outputs into place."""
    *window, filters, _ = kernel_shape
    columns = int(np.prod(window)) * filters
    return ops.convert_to_tensor(
        np.eye(columns, dtype="float32").reshape(*window, filters, columns), dtype=dtype
    )


def conv_transpose_forward(layer, context, inputs):
    """Conv*Transpose: each input pixel drives the cin rows; the periphery scatter-adds the columns."""
    spec = _matrix_spec(layer, "kernel")
    kernel = layer.kernel
    x = _channels_last(inputs, layer)
    columns = context.product(layer, "kernel", x, spec.unroll(kernel, ops))
    outputs = ops.conv_transpose(
        _channels_back(columns, layer),
        _scatter_kernel(tuple(kernel.shape), columns.dtype),
        strides=list(layer.strides),
        padding=layer.padding,
        output_padding=layer.output_padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )
    return _finish(layer, outputs, layer.filters)


def _depthwise_product(layer, spec, kernel):
    def op(x, k):
        return ops.depthwise_conv(
            x, k, strides=layer.strides, padding=layer.padding,
            dilation_rate=layer.dilation_rate, data_format=layer.data_format,
        )

    return KernelProduct(op, spec, kernel.shape, _columns_axis(layer))


def depthwise_forward(layer, context, inputs):
    """DepthwiseConv1D/2D: every column reads its own channel's patch, tiles by kernel offset."""
    spec = _matrix_spec(layer, "kernel")
    kernel = layer.kernel
    product = _depthwise_product(layer, spec, kernel)
    y = context.product(layer, "kernel", inputs, spec.unroll(kernel, ops), product)
    return _finish(layer, y, kernel.shape[-2] * kernel.shape[-1])


def separable_forward(layer, context, inputs):
    """SeparableConv1D/2D: the depthwise product, then the pointwise one, each through the crossbar."""
    depthwise_spec = _matrix_spec(layer, "depthwise_kernel")
    pointwise_spec = _matrix_spec(layer, "pointwise_kernel")
    depthwise = layer.depthwise_kernel
    product = _depthwise_product(layer, depthwise_spec, depthwise)
    y = context.product(layer, "depthwise_kernel", inputs, depthwise_spec.unroll(depthwise, ops), product)
    pointwise = pointwise_spec.unroll(layer.pointwise_kernel, ops)
    y = context.product(layer, "pointwise_kernel", _channels_last(y, layer), pointwise)
    return _finish(layer, _channels_back(y, layer), layer.filters)


def recurrent_forward(layer, context, sequences, initial_state=None, mask=None, training=False):
    """SimpleRNN/LSTM/GRU: `x @ kernel` for the whole sequence, `h @ recurrent_kernel` per step."""
    kernel, recurrent_kernel = recurrent.recurrent_matrices(layer)
    steps = recurrent.time_steps(sequences)
    if context.recorder is not None:
        _record_states(layer, context, sequences, initial_state, mask)

    def input_product(x):
        return context.product(layer, "kernel", x, kernel)

    step = context.stepper(layer, "recurrent_kernel", recurrent_kernel, steps, sequences)
    return recurrent.recurrent_forward(
        layer, sequences, input_product, step.product, step_noise=step.noise,
        mask=mask, initial_state=initial_state, training=training,
    )


def _record_states(layer, context, sequences, initial_state, mask):
    """Records the states a recurrent matrix reads, from a copy that returns them all.

    The states come out of the loop only as the layer's output sequence;
    calibration runs eagerly, once, so a plain copy of the layer computes
    them (the initial zero state aside, the states `h_1 ... h_T`).
    """
    config = dict(layer.get_config(), return_sequences=True, return_state=False, stateful=False)
    twin = type(layer).from_config(config)
    twin.build(tuple(sequences.shape))
    twin.set_weights([ops.convert_to_numpy(w) for w in layer.weights])
    states = twin(sequences, initial_state=initial_state, mask=mask)
    context.product(layer, "recurrent_kernel", states, layer.cell.recurrent_kernel)


_FORWARDS = {
    "dense": dense_forward,
    "einsum": einsum_forward,
    "conv": conv_forward,
    "conv_transpose": conv_transpose_forward,
    "depthwise": depthwise_forward,
    "separable": separable_forward,
    "recurrent": recurrent_forward,
}


def register_chip_forward(kind, forward):
    """Adds a chip forward that layer-table rows can name in their `chip` column.

    Args:
        kind: the name (`LayerType.chip`).
        forward: `(layer, context, *args, **kwargs) -> outputs`, computing
            each product with `context.product(layer, matrix_name, x, matrix,
            product)`.

    Returns:
        `forward`.
    """
    _FORWARDS[kind] = forward
    return forward


def chip_kind(layer):
    """The layer table's `chip` of `layer`: a forward's name, `"digital"`, or None."""
    row = layer_table.lookup(layer)
    return None if row is None else row.chip


def product_layers(layer, path=None):
    """The layers under `layer` (itself included) whose products go through the crossbar.

    Returns:
        A list of `(path, layer)`.

    Raises:
        UnsupportedLayerError: a layer that holds weights has no chip
            forward and is neither digital nor a container; the message
            names it.
    """
    path = path or layer.name
    kind = chip_kind(layer)
    if kind in _FORWARDS:
        return [(path, layer)]
    if kind == DIGITAL:
        return []
    children = layer_table.sublayers(layer)
    if children:
        found = []
        for child in children:
            found.extend(product_layers(child, f"{path}/{child.name}"))
        return found
    if layer.weights:
        raise UnsupportedLayerError(
            f"Layer '{path}' ({type(layer).__name__}) has no chip forward: the crossbar "
            "computes Dense, EinsumDense, convolutions, SimpleRNN/LSTM/GRU and the containers "
            "of these (register one with mat_keras.crossbar.register_chip_forward)."
        )
    return []


def chip_call(layer, context, *args, **kwargs):
    """Returns `layer(*args, **kwargs)` computed through the crossbar of `context`.

    Args:
        layer: a built layer (of the layer table, or a container of such).
        context: a `ChipContext`.
        *args, **kwargs: the layer's call arguments.

    Raises:
        UnsupportedLayerError: a layer of no chip forward (see `product_layers`).
    """
    kind = chip_kind(layer)
    if kind in _FORWARDS:
        return _FORWARDS[kind](layer, context, *args, **_call_kwargs(layer, kwargs))
    leaves = [sub for _, sub in product_layers(layer)]
    calls = {sub: _leaf_call(sub, context) for sub in leaves if sub is not layer}
    with compat.intercepted_calls(calls):
        return layer(*args, **kwargs)


def _call_kwargs(layer, kwargs):
    """The keyword arguments a leaf forward takes (`training` only where the layer's call does)."""
    if "training" in kwargs and not compat.call_takes(layer, "training"):
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}
    return kwargs


def _leaf_call(layer, context):
    forward = _FORWARDS[chip_kind(layer)]

    def call(*args, **kwargs):
        return forward(layer, context, *args, **kwargs)

    return call


__all__ = [
    "chip_call",
    "chip_kind",
    "product_layers",
    "register_chip_forward",
]
