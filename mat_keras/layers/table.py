"""The layer table: every layer type mat-keras knows, and the questions asked of it.

One row (`LayerType`) per Keras layer class says which variables are
crossbar matrices and how each unrolls, which is the bias, what folds into
it, whether `wrap` picks it by default and how it exports. `wrap`, the
wrapper, clipping, the sweeps and the exporter all read this table.

A layer resolves to the first row whose class it is an instance of, in
table order: the most recently registered rows first, then the built-in
ones, subclasses before their bases (LSTM before RNN). Register a custom
layer type with `register_layer_type`.

| layer | matrix | rows x columns |
|---|---|---|
| Dense | `kernel` | in x out |
| Conv1D/2D/3D | `kernel` | (k1*...*kd*cin) x cout; row `((y*kw)+x)*cin+c` for 2-D: the im2col order of a patch |
| Conv1D/2D/3DTranspose | `kernel` | cin x (k1*...*kd*cout): the kernel `(k..., cout, cin)` with its input axis moved first; input pixel `p` drives the rows with its `cin` values, column `((y*kw)+x)*cout+o` is its contribution to output channel `o` at offset `(y, x)` from `p * strides` (scatter-added) |
| DepthwiseConv1D/2D | `kernel` | (k1*...*kd) x (cin*multiplier); column `c*multiplier+m` is the filter of input channel `c` (Keras's output channel order). Each column reads the patch of its own channel: drive it as a block-diagonal crossbar or one channel at a time |
| SeparableConv1D/2D | `depthwise_kernel` | as DepthwiseConv |
| | `pointwise_kernel` | (cin*multiplier) x cout |
| SimpleRNN, LSTM, GRU | `cell.kernel` | in x (gates*units), Keras gate order |
| | `cell.recurrent_kernel` | units x (gates*units) |
| Embedding | `embeddings` | vocabulary x output_dim; a one-hot input (the token) drives one row |
| EinsumDense | `kernel` | (contracted axes) x (output axes), see `mat_keras.layers.einsum` |

Containers hold no weights of their own: Bidirectional (its forward and
backward RNNs), MultiHeadAttention and GroupQueryAttention (their EinsumDense
projections), wrappers and models; the exporter walks into their
`sublayers`. Normalisation layers export as digital weights (a per-channel
affine map that the chip's periphery applies). Layers of other types are
wrapped only when asked for, and the exporter refuses them if they hold
weights.

Biases stay digital by default. As a bias row (one extra, last row of a
matrix, driven at 1) a bias goes under the matrix whose `bias_part` names
it: the output matrix of Dense/Conv/Depthwise/Separable/EinsumDense layers,
the input `kernel` of RNNs; a GRU with `reset_after=True` has two bias
vectors, the input one goes under `kernel`, the recurrent one under
`recurrent_kernel`. An EinsumDense bias is a row only when it spans exactly
the kernel's output axes, in their order. A transposed convolution's bias
is never a row: its outputs sum over kernel offsets, the bias is added once.

A BatchNormalization right after a layer whose row says `batchnorm_folds`
folds into its output matrix (the export's `graph` module decides when).
"""

import dataclasses

import keras

from mat_keras import compat
from mat_keras.layers.einsum import einsum_bias_row_error, einsum_kernel_axes
from mat_keras.layers.roles import CROSSBAR, DIGITAL, LayerType, Matrix

#: The roles a trainable variable can have.
MATRIX, BIAS, OTHER = "matrix", "bias", "other"

_BIAS_NAMES = ("bias", "beta")
_DEPTHWISE_LAYOUT = "(k1*...*kd) x (cin*multiplier), column c*multiplier+m reads the patch of channel c"


def _rnn_roles(layer, roles, name):
    # GRU with reset_after=True holds two bias rows: input and recurrent.
    bias = getattr(layer.cell, "bias", None)
    if bias is None or len(bias.shape) != 2:
        return roles
    kernel, recurrent = roles.matrices
    matrices = (dataclasses.replace(kernel, bias_part=0), dataclasses.replace(recurrent, bias_part=1))
    return dataclasses.replace(roles, matrices=matrices)


def _einsum_roles(layer, roles, name):
    contracted, produced, output = einsum_kernel_axes(layer.equation, name)
    layout = (
        f"({'*'.join(contracted)}) x ({'*'.join(produced) or '1'}) of '{layer.equation}', "
        "rows and columns in kernel order"
    )
    (kernel,) = roles.matrices
    return dataclasses.replace(
        roles,
        matrices=(dataclasses.replace(kernel, column_axes=len(produced), layout=layout),),
        bias_row_error=einsum_bias_row_error(layer, produced, output),
    )


def _transpose_roles(layer, roles, name):
    (kernel,) = roles.matrices
    return dataclasses.replace(
        roles,
        matrices=(dataclasses.replace(kernel, column_axes=len(layer.kernel_size) + 1),),
        bias_row_error=(
            "a transposed convolution sums its outputs over kernel offsets, so its bias, "
            "added once per output, is no row of its matrix"
        ),
    )


def _crossbar(layer_class, *matrices, bias="bias", **options):
    """A row for a layer type that exports onto crossbars and is wrapped by default."""
    options.setdefault("wrap", True)
    return LayerType(layer_class, matrices=matrices, bias=bias, export=CROSSBAR, **options)


def _digital(layer_class, bias="beta"):
    """A row for a normalisation layer: its weights stay digital."""
    return LayerType(layer_class, bias=bias, export=DIGITAL, chip="digital")


def _container(layer_class, sublayers, wrap=False):
    return LayerType(layer_class, sublayers=sublayers, wrap=wrap)


def _builtin_types():
    layers = keras.layers
    output = Matrix("kernel", "kernel", 1, "all", True, "in x out")
    conv = Matrix("kernel", "kernel", 1, "all", True, "(k1*...*kd*cin) x cout, rows in (k1, ..., kd, cin) C order")
    transpose = Matrix(
        "kernel", "kernel", layout="cin x (k1*...*kd*cout), columns in (k1, ..., kd, cout) C order, scatter-added",
        inputs_last=True,
    )
    depthwise = Matrix("kernel", "kernel", 2, "all", True, _DEPTHWISE_LAYOUT)
    separable = (
        Matrix("depthwise_kernel", "depthwise_kernel", 2, None, False, _DEPTHWISE_LAYOUT),
        Matrix("pointwise_kernel", "pointwise_kernel", 1, "all", True, "(cin*multiplier) x cout"),
    )
    rnn = (
        Matrix("kernel", "cell.kernel", 1, "all", False, "in x (gates*units)"),
        Matrix("recurrent_kernel", "cell.recurrent_kernel", 1, None, False, "units x (gates*units)"),
    )
    rows = [
        _crossbar(layers.Dense, output, batchnorm_folds=True, chip="dense"),
        _crossbar(layers.EinsumDense, output, specialise=_einsum_roles, chip="einsum"),
        *(
            _crossbar(cls, conv, batchnorm_folds=True, chip="conv")
            for cls in (layers.Conv1D, layers.Conv2D, layers.Conv3D)
        ),
        *(
            _crossbar(cls, transpose, specialise=_transpose_roles, chip="conv_transpose")
            for cls in (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
        ),
        *(
            _crossbar(cls, depthwise, batchnorm_folds=True, chip="depthwise")
            for cls in (layers.DepthwiseConv1D, layers.DepthwiseConv2D)
        ),
        *(
            _crossbar(cls, *separable, batchnorm_folds=True, chip="separable")
            for cls in (layers.SeparableConv1D, layers.SeparableConv2D)
        ),
        *(
            _crossbar(cls, *rnn, bias="cell.bias", specialise=_rnn_roles, chip="recurrent")
            for cls in (layers.SimpleRNN, layers.LSTM, layers.GRU)
        ),
        # RNNs of custom cells: wrapped (the cell's weights take the noise), not exported.
        LayerType(layers.RNN, wrap=True),
        _crossbar(
            # No bias variable: "bias" names the one a manifest records (absent).
            layers.Embedding, Matrix("embeddings", "embeddings", 1, None, True, "vocabulary x output_dim, row i is token i"),
            wrap=False,
            # A lookup, not a product: a chip reads the row, the periphery keeps it digital.
            chip="digital",
        ),
        _container(layers.Bidirectional, lambda layer: [layer.forward_layer, layer.backward_layer], wrap=True),
        _container(layers.MultiHeadAttention, compat.tracked_sublayers, wrap=True),
        _container(layers.GroupQueryAttention, compat.tracked_sublayers, wrap=True),
        _container(layers.Wrapper, lambda layer: [layer.layer]),
        _container(keras.Model, lambda model: list(model.layers)),
        dataclasses.replace(_digital(layers.BatchNormalization), opt_in=True),
        _digital(layers.LayerNormalization),
        _digital(layers.GroupNormalization),
        _digital(layers.RMSNormalization, bias=None),
        _digital(layers.Normalization, bias=None),
    ]
    return rows


# Rows in resolution order: registered ones first, then the built-in ones.
_TABLE = _builtin_types()


def register_layer_type(layer_type):
    """Adds a row to the layer table, ahead of every row there.

    A layer that is an instance of `layer_type.layer_class` then resolves to
    it, also when a built-in row (of a base class) would match too.

    Args:
        layer_type: a `LayerType`.

    Returns:
        `layer_type`.

    Example:

    >>> mat_keras.layers.register_layer_type(mat_keras.layers.LayerType(
    ...     MyDense, matrices=(mat_keras.layers.Matrix("kernel", "w", output=True),),
    ...     bias="b", export=mat_keras.layers.CROSSBAR, wrap=True))
    """
    if not isinstance(layer_type, LayerType):
        raise TypeError(f"register_layer_type takes a LayerType, got {type(layer_type).__name__}.")
    _TABLE.insert(0, layer_type)
    return layer_type


def unregister_layer_type(layer_type):
    """Removes a row added by `register_layer_type`."""
    _TABLE.remove(layer_type)


def layer_types():
    """The table's rows, in resolution order."""
    return tuple(_TABLE)


def lookup(layer):
    """Returns the `LayerType` row of `layer`, or None for a type the table lacks.

    Example:

    >>> lookup(keras.layers.LSTM(4)).bias
    'cell.bias'
    """
    return next((row for row in _TABLE if isinstance(layer, row.layer_class)), None)


def wrapped_by_default(layer, batchnorm=False):
    """Whether `wrap` picks `layer` when no `layers=` is given.

    Args:
        layer: a Keras layer.
        batchnorm: whether opt-in types (BatchNormalization) are asked for.
    """
    row = lookup(layer)
    return row is not None and (row.wrap or (batchnorm and row.opt_in))


def opt_in_types():
    """The layer classes whose weights take noise only on request (`batchnorm=True`)."""
    return tuple(row.layer_class for row in _TABLE if row.opt_in)


def is_opt_in(layer):
    """Whether `layer`'s weights take noise only on request (BatchNormalization)."""
    row = lookup(layer)
    return row is not None and row.opt_in


def sublayers(layer):
    """The sub-layers holding a container's weights (Bidirectional, attention, ...), or []."""
    row = lookup(layer)
    return row.sublayers(layer) if row is not None and row.sublayers is not None else []


def get_attr(layer, dotted):
    """Returns `layer.a.b` for `dotted="a.b"`, or None when missing (or `dotted` is None)."""
    if dotted is None:
        return None
    value = layer
    for part in dotted.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def variable_roles(layer):
    """Returns `{id(variable): MATRIX or BIAS}` for the variables the table names.

    Covers `layer` and, for containers, its sub-layers.

    Example:

    >>> roles = variable_roles(dense)
    >>> roles[id(dense.kernel)], roles[id(dense.bias)]
    ('matrix', 'bias')
    """
    roles = {}
    row = lookup(layer)
    if row is not None:
        named = [(matrix.attr, MATRIX) for matrix in row.matrices]
        if row.bias is not None:
            named.append((row.bias, BIAS))
        for attr, role in named:
            variable = get_attr(layer, attr)
            if variable is not None:
                roles[id(variable)] = role
    for sublayer in sublayers(layer):
        roles.update(variable_roles(sublayer))
    return roles


def role(variable, roles=None):
    """The role of a trainable variable: MATRIX, BIAS or OTHER.

    The table's word (`roles`, from `variable_roles`) comes first; a variable
    the table does not name (a custom layer's, a LoRA factor, BatchNorm's
    gamma) is a bias by its name (`is_bias`), else a matrix when it has two
    or more dimensions, else OTHER.

    Args:
        variable: a Keras variable.
        roles: `variable_roles` of its layer, or None.
    """
    if roles and id(variable) in roles:
        return roles[id(variable)]
    if is_bias(variable):
        return BIAS
    return MATRIX if len(variable.shape) >= 2 else OTHER


def is_bias(variable):
    """Whether a variable is a bias by its name: `bias`, `*_bias` or BatchNorm's `beta`.

    The names of the table's bias variables; for variables seen without their
    layer (`role` asks the table first).
    """
    name = variable.path.split("/")[-1]
    return name in _BIAS_NAMES or name.endswith("_bias")


def layer_roles(layer, name=None):
    """Returns the crossbar `LayerRoles` of `layer`, or None when it exports none.

    Args:
        layer: a Keras layer.
        name: its name or path, for error messages.

    Raises:
        UnsupportedLayerError: its configuration has no crossbar form (an
            EinsumDense whose kernel is not a matrix).
    """
    row = lookup(layer)
    if row is None or row.export != CROSSBAR:
        return None
    return row.roles(layer, name)


def crossbar_type_names():
    """Names of the layer classes that export onto crossbars, in table order."""
    return [row.layer_class.__name__ for row in _TABLE if row.export == CROSSBAR]


def output_channel_axis(layer, rank):
    """The axis of `layer`'s output (of `rank`) that holds its output channels.

    A BatchNorm folds into the layer only when it normalises this axis.
    """
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return 1
    return rank - 1
