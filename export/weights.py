"""Reading the float matrices a layer exports: BatchNorm folded, bias placed.

The layer table (`mat_keras.layers`) gives the matrix layouts and bias rows,
`folding.py` the folding rule.
"""

import dataclasses

import keras
import numpy as np

from mat_keras.export import folding, layouts
from mat_keras.export.errors import UnsupportedLayerError
from mat_keras.errors import InvalidArgumentError
from mat_keras.wrapping import noisy_layers, strip

BIAS_MODES = ("digital", "row")


@dataclasses.dataclass
class Extracted:
    """One float matrix ready for mapping.

    Attributes:
        spec: its `mat_keras.layers.Matrix`.
        matrix: float32 2-D array; with a bias row, the bias is its last row.
        variable_shape: shape of the Keras variable the matrix came from.
        bias_row: True when the last row is a bias driven at 1.
    """

    spec: object
    matrix: np.ndarray
    variable_shape: tuple
    bias_row: bool


def plain_model(model):
    """Returns `model` without `NoisyWeights` layers (stripped copy if needed).

    Args:
        model: a Keras model.

    Raises:
        InvalidArgumentError: not a Keras model, or not built.
    """
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(f"Expected a Keras model, got {type(model).__name__}.")
    if not model.built:
        raise InvalidArgumentError(
            f"Model '{model.name}' is not built; call it on data or give it an Input first."
        )
    if noisy_layers(model):
        return strip(model)
    return model


def read(layer, attr):
    """Returns the variable at `attr` of `layer` as a float32 array, or None."""
    variable = layouts.get_attr(layer, attr)
    if variable is None:
        return None
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def check_bias_mode(bias):
    """Returns `bias` after checking it is `"digital"` or `"row"`."""
    if bias not in BIAS_MODES:
        raise InvalidArgumentError(
            f"bias must be one of {', '.join(BIAS_MODES)}; got {bias!r}."
        )
    return bias


def extract(entry, bias_mode="digital"):
    """Returns the float matrices of an exported layer and its digital bias.

    Args:
        entry: a `graph.Entry`.
        bias_mode: `"digital"` (bias returned separately) or `"row"` (bias
            appended to its matrix as a last row).

    Returns:
        `(matrices, bias)`: a list of `Extracted` and the digital bias (a
        float32 array, the folded one if a BatchNorm folded) or None.

    Raises:
        InvalidArgumentError: the layer holds non-finite weights.
        UnsupportedLayerError: `bias_mode="row"` for a bias that cannot be a
            row (an EinsumDense bias not spanning the columns).

    Example:

    >>> matrices, bias = extract(plan.entries[0])
    >>> matrices[0].matrix.shape
    (784, 128)
    """
    layer, spec = entry.layer, entry.spec
    matrices = []
    for matrix_spec in spec.matrices:
        kernel = read(layer, matrix_spec.attr)
        matrices.append(
            Extracted(matrix_spec, matrix_spec.unroll(kernel), kernel.shape, False)
        )
    bias = read(layer, spec.bias_attr)
    if entry.batchnorm is not None:
        factor, shift = folding.batchnorm_affine(entry.batchnorm)
        output = next(m for m in matrices if m.spec.output)
        output.matrix, bias = folding.fold(output.matrix, bias, factor, shift)
    for extracted in matrices:
        if not np.all(np.isfinite(extracted.matrix)):
            raise InvalidArgumentError(
                f"Layer '{entry.name}' holds non-finite values in {extracted.spec.name}."
            )
    if bias is not None and not np.all(np.isfinite(bias)):
        raise InvalidArgumentError(f"Layer '{entry.name}' holds a non-finite bias.")
    if bias_mode == "row" and bias is not None:
        if spec.bias_row_error:
            raise UnsupportedLayerError(
                f"Layer '{entry.name}' cannot take bias='row': {spec.bias_row_error}; "
                "export it with bias='digital'."
            )
        for extracted in matrices:
            part = extracted.spec.bias_part
            if part is None:
                continue
            # An EinsumDense bias spans its output axes: flattened, one value per column.
            row = (bias if part == "all" else bias[part]).reshape(1, -1)
            extracted.matrix = np.concatenate([extracted.matrix, row], axis=0)
            extracted.bias_row = True
        bias = None
    return matrices, bias
