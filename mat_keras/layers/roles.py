"""The rows of the layer table: a layer type and the roles of its weights.

A `LayerType` says, for one Keras layer class, which of its variables are
crossbar matrices (`Matrix`: how each unrolls to rows x columns), which is
its bias, whether a following BatchNormalization folds into it, whether
`wrap` picks it by default, and how the exporter treats it. `LayerType.roles`
specialises the static row to one layer instance (`LayerRoles`), where the
unrolling depends on the layer's configuration (EinsumDense equations, GRU's
two biases).
"""

import dataclasses
import math

import numpy as np

#: How the exporter treats a layer type.
CROSSBAR = "crossbar"  # its matrices become crossbars, its bias stays digital or a row
DIGITAL = "digital"  # its weights stay digital (normalisations not folded)


@dataclasses.dataclass(frozen=True)
class Matrix:
    """One crossbar matrix of a layer: a variable unrolled to rows x columns.

    The matrix is the variable reshaped in C order, its last `column_axes`
    axes forming the columns; rows are crossbar inputs, columns its outputs.
    With `inputs_last=True` the variable's last axis indexes the inputs (a
    transposed convolution's kernel is `(k1, ..., kd, cout, cin)`): it is
    moved first, then the other axes form the columns.

    Attributes:
        name: the matrix's name in tables and files (`"kernel"`, ...).
        attr: dotted attribute path from the layer to its variable.
        column_axes: how many trailing axes form the columns (after moving
            the input axis first, when `inputs_last`).
        bias_part: which bias goes into this matrix's bias row: `"all"` (the
            whole bias), `0` or `1` (a row of GRU's two-row bias) or None.
        output: True when the columns are the layer's output channels (a
            BatchNorm folds into them).
        layout: a one-line description for the manifest.
        inputs_last: True when the variable's last axis holds the inputs.
    """

    name: str
    attr: str
    column_axes: int = 1
    bias_part: object = None
    output: bool = False
    layout: str = ""
    inputs_last: bool = False

    def unroll(self, kernel, xp=np):
        """Returns `kernel` as this 2-D matrix.

        Args:
            kernel: the variable's value, a numpy array or a backend tensor.
            xp: `numpy` or `keras.ops` (both spell `moveaxis` and `reshape`).

        Returns:
            The matrix, shape `(rows, columns)`; a view where no axis moves.

        Example:

        >>> Matrix("kernel", "kernel").unroll(np.zeros((3, 3, 4, 8))).shape
        (36, 8)
        """
        if self.inputs_last:
            kernel = xp.moveaxis(kernel, -1, 0)
        shape = tuple(kernel.shape)
        columns = math.prod(shape[len(shape) - self.column_axes:])
        return xp.reshape(kernel, (-1, columns))

    def roll(self, matrix, shape, xp=np):
        """Returns `matrix` back as the variable of `shape`: `unroll`'s inverse.

        Example:

        >>> spec = Matrix("kernel", "kernel", column_axes=3, inputs_last=True)
        >>> kernel = np.arange(24.0).reshape(2, 2, 3, 2)
        >>> bool((spec.roll(spec.unroll(kernel), kernel.shape) == kernel).all())
        True
        """
        shape = tuple(shape)
        if not self.inputs_last:
            return xp.reshape(matrix, shape)
        moved = xp.reshape(matrix, (shape[-1], *shape[:-1]))
        return xp.moveaxis(moved, 0, -1)


@dataclasses.dataclass(frozen=True)
class LayerRoles:
    """The crossbar roles of one layer instance.

    Attributes:
        matrices: its `Matrix`es.
        bias_attr: dotted path to its bias variable (present or not), or None.
        bias_row_error: why its bias cannot be a bias row, or None when it
            can (or there is none).
    """

    matrices: tuple
    bias_attr: str = None
    bias_row_error: str = None

    def output_matrix(self):
        """The `Matrix` whose columns are the layer's outputs, or None."""
        return next((matrix for matrix in self.matrices if matrix.output), None)


@dataclasses.dataclass(frozen=True)
class LayerType:
    """One row of the layer table: what mat-keras knows of a layer class.

    Attributes:
        layer_class: the Keras layer class (instances of subclasses match).
        matrices: its crossbar `Matrix`es.
        bias: dotted path to its bias variable, or None.
        export: `CROSSBAR`, `DIGITAL`, or None (the exporter refuses a layer
            of this type that holds weights, unless it has `sublayers`).
        wrap: whether `wrap` picks it by default.
        opt_in: whether its weights take noise only on request (`batchnorm=True`
            of `wrap` and the sweeps): BatchNormalization.
        batchnorm_folds: whether a BatchNormalization right after it folds into
            its output matrix.
        sublayers: `layer -> list of layers` for containers whose own weights
            live in sub-layers (Bidirectional, attention, wrappers, models);
            the exporter walks into them.
        specialise: `(layer, LayerRoles, name) -> LayerRoles` where the roles
            depend on the layer's configuration; it may raise
            `UnsupportedLayerError`.
        chip: how the chip forward computes the layer
            (`mat_keras.crossbar.forward`): the name of a forward
            (`"dense"`, `"conv"`, ...), `"digital"` (computed as it is), or
            None (a container, or a layer the crossbar cannot compute).

    Example:

    >>> LayerType(MyDense, matrices=(Matrix("kernel", "w", output=True),), bias="b",
    ...           export=CROSSBAR, wrap=True, batchnorm_folds=True)
    """

    layer_class: type
    matrices: tuple = ()
    bias: str = None
    export: str = None
    wrap: bool = False
    opt_in: bool = False
    batchnorm_folds: bool = False
    sublayers: object = None
    specialise: object = None
    chip: str = None

    def roles(self, layer, name=None):
        """Returns the `LayerRoles` of `layer`, an instance of this type.

        Args:
            layer: the layer.
            name: its name or path, for error messages; defaults to its name.

        Raises:
            UnsupportedLayerError: its configuration has no crossbar form.
        """
        roles = LayerRoles(self.matrices, self.bias)
        if self.specialise is not None:
            roles = self.specialise(layer, roles, name or layer.name)
        return roles
