"""The layer table: what mat-keras knows of each Keras layer type.

Which variables of a layer are crossbar matrices and how they unroll to rows
x columns, which is its bias, what folds into it, whether `wrap` picks it by
default and how it exports. `wrap`, `NoisyWeights`, `WeightClip`, the sweeps
and the exporter read it; register a custom layer type to teach all of them
at once.

Example:

>>> import mat_keras as mat
>>> mat.layers.lookup(keras.layers.Dense(3)).matrices[0].layout
'in x out'
>>> mat.layers.register_layer_type(mat.layers.LayerType(
...     MyDense, matrices=(mat.layers.Matrix("kernel", "w", output=True),),
...     bias="b", export=mat.layers.CROSSBAR, wrap=True))
"""

from mat_keras.layers.einsum import einsum_kernel_axes
from mat_keras.layers.roles import CROSSBAR, DIGITAL, LayerRoles, LayerType, Matrix
from mat_keras.layers.table import (
    BIAS,
    MATRIX,
    OTHER,
    crossbar_type_names,
    get_attr,
    is_bias,
    is_opt_in,
    layer_roles,
    layer_types,
    lookup,
    opt_in_types,
    output_channel_axis,
    register_layer_type,
    role,
    sublayers,
    unregister_layer_type,
    variable_roles,
    wrapped_by_default,
)

__all__ = [
    "BIAS",
    "CROSSBAR",
    "DIGITAL",
    "MATRIX",
    "OTHER",
    "LayerRoles",
    "LayerType",
    "Matrix",
    "crossbar_type_names",
    "einsum_kernel_axes",
    "get_attr",
    "is_bias",
    "is_opt_in",
    "layer_roles",
    "layer_types",
    "lookup",
    "opt_in_types",
    "output_channel_axis",
    "register_layer_type",
    "role",
    "sublayers",
    "unregister_layer_type",
    "variable_roles",
    "wrapped_by_default",
]
