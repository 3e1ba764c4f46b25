"""Which layers the exporter maps onto crossbars: the layer table, with the export's checks.

How each layer type's weights unroll to crossbar matrices (rows x columns),
which bias goes into which bias row and what folds into what is the layer
table's knowledge (`mat_keras.layers`, its module docstring has the table);
this module adds what only an export asks: the layer must be built, float
(not quantised) and without LoRA, and a layer holding weights the table
cannot map is an error.

Layers holding weights of any type without a crossbar row raise
`UnsupportedLayerError`, except normalisation layers not folded, which stay
digital (their weights are a per-channel affine map that the chip's
periphery applies).
"""

import numpy as np

from mat_keras import layers as layer_table
from mat_keras.export.errors import UnsupportedLayerError

get_attr = layer_table.get_attr


def _supported():
    return (
        ", ".join(layer_table.crossbar_type_names())
        + "; MultiHeadAttention and GroupQueryAttention as their EinsumDense projections"
        + "; BatchNormalization folded or kept digital"
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
    """Returns the crossbar `LayerRoles` of `layer`, or None when it has nothing to map.

    None means: no weights, or a layer the table keeps digital.

    Args:
        layer: a Keras layer (not a container; `graph.py` walks those).
        path: the layer's path, for error messages; defaults to its name.

    Raises:
        UnsupportedLayerError: the layer holds weights the table cannot map,
            is an EinsumDense whose kernel is not a matrix, uses LoRA or
            quantisation, or is not built.

    Example:

    >>> layer_spec(keras.layers.Dense(3)).matrices[0].layout
    'in x out'
    """
    path = path or layer.name
    spec = layer_table.layer_roles(layer, path)
    if spec is None:
        row = layer_table.lookup(layer)
        if not layer.weights or (row is not None and row.export == layer_table.DIGITAL):
            return None
        raise UnsupportedLayerError(
            f"Layer '{path}' ({type(layer).__name__}) holds weights that cannot be "
            f"mapped onto a crossbar; supported: {_supported()}."
        )
    _check_plain(layer, path)
    if not layer.built:
        raise UnsupportedLayerError(f"Layer '{path}' is not built; build or call the model first.")
    return spec


def from_matrix(matrix, shape):
    """Returns a matrix reshaped back to its variable's `shape`.

    Only for matrices that are a plain reshape of their variable (every one
    a BatchNorm folds into); `Matrix.roll` inverts any unrolling.
    """
    return np.reshape(matrix, shape)
