"""Which weights of a layer become crossbar matrices, and how they unroll.

Every supported kernel becomes a 2-D matrix `kernel.reshape(-1, columns)`
(C order), whose rows are crossbar inputs and whose columns are outputs:

| layer | matrix | rows x columns |
|---|---|---|
| Dense | `kernel` | in x out |
| Conv1D/2D/3D | `kernel` | (k1*...*kd*cin) x cout; row `((y*kw)+x)*cin+c` for 2-D: the im2col order of a patch |
| DepthwiseConv1D/2D | `kernel` | (k1*...*kd) x (cin*multiplier); column `c*multiplier+m` is the filter of input channel `c` (Keras's output channel order). Each column reads the patch of its own channel: drive it as a block-diagonal crossbar or one channel at a time |
| SeparableConv1D/2D | `depthwise_kernel` | as DepthwiseConv |
| | `pointwise_kernel` | (cin*multiplier) x cout |
| SimpleRNN, LSTM, GRU | `kernel` | in x (gates*units), Keras gate order |
| | `recurrent_kernel` | units x (gates*units) |
| Embedding | `embeddings` | vocabulary x output_dim; a one-hot input (the token) drives one row |
| EinsumDense | `kernel` | (contracted axes) x (output axes), both flattened in the kernel's order: `"abc,cd->abd"` is c x d, MultiHeadAttention's `"abc,cde->abde"` c x (d*e) and `"abcd,cde->abe"` (c*d) x e |

An EinsumDense kernel must list its contracted axes (in the input, not in the
output) first, then its output axes (in the output, not in the input), so
that `kernel.reshape(-1, columns)` is its matrix. Other equations (batched
matrices: a kernel axis in the input and the output; another order;
ellipses) raise `UnsupportedLayerError`. A MultiHeadAttention or
GroupQueryAttention exports as its EinsumDense projections (`graph.py` walks
into it).

Biases stay digital by default (an EinsumDense bias keeps its shape, that of
some output axes). With `bias="row"` the bias becomes one extra, last row of a
matrix, driven at 1: the output matrix of Dense/Conv/Depthwise/Separable/
EinsumDense layers, the input `kernel` of RNNs; a GRU with `reset_after=True`
has two bias vectors, the input one goes under `kernel`, the recurrent one
under `recurrent_kernel`. An EinsumDense bias is a row only when it spans
exactly the kernel's output axes, in their order (MultiHeadAttention's do);
other EinsumDense biases refuse `bias="row"`. Embeddings have no bias.

BatchNormalization folds into the matrix whose columns are the layer's
outputs (marked `output=True`) of the Dense and convolution layers that
`graph.py` pairs it with; nothing folds into Embedding or EinsumDense.

Layers holding weights of any other type raise `UnsupportedLayerError`,
except normalisation layers not folded, which stay digital (their weights are
a per-channel affine map that the chip's periphery applies).
"""

import dataclasses
import math
import re

import keras
import numpy as np

from mat_keras.export.errors import UnsupportedLayerError


@dataclasses.dataclass(frozen=True)
class MatrixSpec:
    """One crossbar matrix of a layer.

    Attributes:
        name: the matrix's name in tables and files (`"kernel"`, ...).
        attr: dotted attribute path from the layer to its variable.
        column_axes: how many trailing kernel axes form the columns.
        bias_part: which bias goes into this matrix's bias row: `"all"` (the
            whole 1-D bias), `0` or `1` (a row of a 2-D GRU bias) or None.
        output: True when the columns are the layer's output channels.
        layout: a one-line description for the manifest.
    """

    name: str
    attr: str
    column_axes: int
    bias_part: object
    output: bool
    layout: str


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How a layer type maps onto crossbars.

    Attributes:
        kind: `"dense"`, `"conv"`, `"depthwise"`, `"separable"`, `"rnn"`,
            `"embedding"` or `"einsum"`.
        matrices: its `MatrixSpec`s.
        bias_attr: dotted path to the bias variable (present or not).
        bias_row_error: why the bias cannot be a bias row, or None when it
            can (or there is none).
    """

    kind: str
    matrices: tuple
    bias_attr: str
    bias_row_error: str = None

    def output_matrix(self):
        """The `MatrixSpec` whose columns are the layer's outputs, or None."""
        for matrix in self.matrices:
            if matrix.output:
                return matrix
        return None


_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_RNN = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)
_CONV_TRANSPOSE = tuple(
    getattr(keras.layers, name)
    for name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
    if hasattr(keras.layers, name)
)

#: Layers whose weights stay digital (kept as they are) when not folded.
DIGITAL_TYPES = tuple(
    getattr(keras.layers, name)
    for name in (
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "Normalization",
        "RMSNormalization",
    )
    if hasattr(keras.layers, name)
)

SUPPORTED = (
    "Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D, SimpleRNN, "
    "LSTM, GRU, Embedding, EinsumDense (kernel axes: contracted, then output), "
    "MultiHeadAttention and GroupQueryAttention as their EinsumDense "
    "projections; BatchNormalization "
    "folded or kept digital"
)

# Keras's own form of an EinsumDense equation, without ellipses.
_EINSUM_EQUATION = re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)")


def _spec_dense():
    return LayerSpec(
        "dense",
        (MatrixSpec("kernel", "kernel", 1, "all", True, "in x out"),),
        "bias",
    )


def _spec_conv():
    return LayerSpec(
        "conv",
        (MatrixSpec("kernel", "kernel", 1, "all", True, "(k1*...*kd*cin) x cout, rows in (k1, ..., kd, cin) C order"),),
        "bias",
    )


def _spec_depthwise():
    return LayerSpec(
        "depthwise",
        (
            MatrixSpec(
                "kernel", "kernel", 2, "all", True,
                "(k1*...*kd) x (cin*multiplier), column c*multiplier+m reads the patch of channel c",
            ),
        ),
        "bias",
    )


def _spec_separable():
    return LayerSpec(
        "separable",
        (
            MatrixSpec(
                "depthwise_kernel", "depthwise_kernel", 2, None, False,
                "(k1*...*kd) x (cin*multiplier), column c*multiplier+m reads the patch of channel c",
            ),
            MatrixSpec("pointwise_kernel", "pointwise_kernel", 1, "all", True, "(cin*multiplier) x cout"),
        ),
        "bias",
    )


def _spec_rnn(layer):
    bias = getattr(layer.cell, "bias", None)
    two_biases = bias is not None and len(bias.shape) == 2
    return LayerSpec(
        "rnn",
        (
            MatrixSpec("kernel", "cell.kernel", 1, 0 if two_biases else "all", False, "in x (gates*units)"),
            MatrixSpec(
                "recurrent_kernel", "cell.recurrent_kernel", 1, 1 if two_biases else None, False,
                "units x (gates*units)",
            ),
        ),
        "cell.bias",
    )


def _spec_embedding():
    return LayerSpec(
        "embedding",
        (MatrixSpec("embeddings", "embeddings", 1, None, True, "vocabulary x output_dim, row i is token i"),),
        "bias",
    )


def einsum_kernel_axes(equation, path="einsum_dense"):
    """Splits the kernel axes of an EinsumDense equation into rows and columns.

    Args:
        equation: the layer's `"input,kernel->output"` equation.
        path: the layer's path, for error messages.

    Returns:
        `(contracted, produced, output)`: the kernel's contracted letters
        (rows), its output letters (columns), both in kernel order, and the
        equation's output letters.

    Raises:
        UnsupportedLayerError: the kernel is not `[contracted..., output...]`
            (see the module docstring); the message names the equation.

    Example:

    >>> einsum_kernel_axes("abc,cde->abde")
    ('c', 'de', 'abde')
    """

    def unsupported(reason):
        return UnsupportedLayerError(
            f"Layer '{path}' (EinsumDense '{equation}') cannot be a crossbar matrix: {reason}; "
            "supported are kernels with the contracted axes first, then the output axes, "
            "as in 'abc,cd->abd'."
        )

    if "." in equation:
        raise unsupported("ellipses are not supported")
    match = _EINSUM_EQUATION.fullmatch(equation)
    if match is None:
        raise unsupported("it is not of the form 'input,kernel->output'")
    inputs, kernel, output = match.groups()
    batched = "".join(c for c in kernel if c in inputs and c in output)
    if batched:
        raise unsupported(f"kernel axes '{batched}' are in the input and the output (batched matrices)")
    contracted = "".join(c for c in kernel if c in inputs)
    produced = "".join(c for c in kernel if c in output)
    if not contracted:
        raise unsupported("no kernel axis is contracted with the input")
    if kernel != contracted + produced or len(set(kernel)) != len(kernel):
        raise unsupported(f"kernel axes '{kernel}' are not the contracted '{contracted}' then the output '{produced}'")
    return contracted, produced, output


def _einsum_bias_row_error(layer, produced, output):
    """Why the bias of an EinsumDense cannot be a bias row, or None."""
    if not layer.bias_axes:
        return None
    # Keras shapes the bias like the output axes from the first bias axis
    # on, with 1 on the axes not in `bias_axes`: it is one value per column
    # only when those axes are the kernel's output axes, all biased.
    spanned = output[min(output.find(c) for c in layer.bias_axes):]
    if spanned == produced and set(layer.bias_axes) == set(produced):
        return None
    return (
        f"its bias over axes '{layer.bias_axes}' of '{layer.equation}' is not one value "
        f"per column (the kernel's output axes '{produced}')"
    )


def _spec_einsum(layer, path):
    contracted, produced, output = einsum_kernel_axes(layer.equation, path)
    layout = (
        f"({'*'.join(contracted)}) x ({'*'.join(produced) or '1'}) of '{layer.equation}', "
        "rows and columns in kernel order"
    )
    return LayerSpec(
        "einsum",
        (MatrixSpec("kernel", "kernel", len(produced), "all", True, layout),),
        "bias",
        _einsum_bias_row_error(layer, produced, output),
    )


def _check_plain(layer, path):
    if getattr(layer, "lora_enabled", False):
        raise UnsupportedLayerError(
            f"Layer '{path}' has LoRA enabled; merge it (layer.enable_lora off) before exporting."
        )
    policy = getattr(layer, "dtype_policy", None)
    if getattr(policy, "quantization_mode", None):
        raise UnsupportedLayerError(
            f"Layer '{path}' is already quantised ({policy.quantization_mode}); export the float model."
        )


def layer_spec(layer, path=None):
    """Returns the `LayerSpec` of `layer`, or None when it has nothing to map.

    None means: no weights, or a normalisation layer kept digital.

    Args:
        layer: a Keras layer (not a model or wrapper; `graph.py` walks those).
        path: the layer's path, for error messages; defaults to its name.

    Raises:
        UnsupportedLayerError: the layer holds weights of an unsupported type,
            or is an EinsumDense whose kernel is not a matrix.

    Example:

    >>> layer_spec(keras.layers.Dense(3)).kind
    'dense'
    """
    path = path or layer.name
    if isinstance(layer, keras.layers.Dense):
        spec = _spec_dense()
    elif isinstance(layer, _CONV) and not isinstance(layer, _CONV_TRANSPOSE):
        spec = _spec_conv()
    elif isinstance(layer, _DEPTHWISE):
        spec = _spec_depthwise()
    elif isinstance(layer, _SEPARABLE):
        spec = _spec_separable()
    elif isinstance(layer, _RNN):
        spec = _spec_rnn(layer)
    elif isinstance(layer, keras.layers.Embedding):
        spec = _spec_embedding()
    elif isinstance(layer, keras.layers.EinsumDense):
        spec = _spec_einsum(layer, path)
    elif not layer.weights or isinstance(layer, DIGITAL_TYPES):
        return None
    else:
        raise UnsupportedLayerError(
            f"Layer '{path}' ({type(layer).__name__}) holds weights that cannot be "
            f"mapped onto a crossbar; supported: {SUPPORTED}."
        )
    _check_plain(layer, path)
    if not layer.built:
        raise UnsupportedLayerError(f"Layer '{path}' is not built; build or call the model first.")
    return spec


def get_attr(layer, dotted):
    """Returns `layer.a.b` for `dotted="a.b"`, or None when missing."""
    value = layer
    for part in dotted.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def to_matrix(kernel, spec):
    """Returns `kernel` (numpy) as the 2-D matrix of `spec` (a view, no copy).

    Example:

    >>> to_matrix(np.zeros((3, 3, 4, 8)), MatrixSpec("kernel", "kernel", 1, "all", True, "")).shape
    (36, 8)
    """
    columns = math.prod(kernel.shape[len(kernel.shape) - spec.column_axes:])
    return kernel.reshape(-1, columns)


def from_matrix(matrix, shape):
    """Returns a matrix reshaped back to its variable's `shape`."""
    return np.reshape(matrix, shape)


def channel_axis(layer, rank):
    """The output axis holding the layer's output channels (for folding).

    Args:
        layer: a Dense or convolution layer.
        rank: rank of the layer's output.

    Returns:
        A non-negative axis.
    """
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return 1
    return rank - 1
