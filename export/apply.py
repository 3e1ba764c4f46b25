"""Putting the chip's weights back into a Keras model, optionally noisy.

Also `fold_batchnorm`: the same kind of model copy with the folded weights
in floating point, before any quantisation.

`apply_tables` returns a copy of a model holding the weights a chip
programmed from the tables would hold, so the exported map can be evaluated
(for example with `mat_keras.robustness_sweep`) before anything is
programmed. BatchNorms folded at export are folded in the copy too (see
`export.folding`): outputs stay right, the BatchNorm becomes an Identity.

Programming noise acts on each device's normalised conductance
`u = (g - g_min) / (g_max - g_min)` in [0, 1]: `u + noise.perturbation(u)`,
clipped to [0, 1], one draw per device (both devices of a differential pair,
the unused one at level 0 included; the offset scheme's reference column is
exact). The noise is resolved with `mat_keras.noise.get`, except that a plain
number is a Gaussian sd in those normalised units
(`Gaussian(sd, relative_to="absolute")`).
"""

import numbers

import keras
import numpy as np

from mat_keras import noise as noise_lib
from mat_keras.errors import InvalidArgumentError
from mat_keras.export import folding, graph, layouts, mapping, weights
from mat_keras.export.tables import Tables, load_tables


def resolve_programming_noise(programming_noise):
    """Returns the noise model for programming noise, or None.

    Args:
        programming_noise: None; a number (Gaussian sd in normalised
            conductance units); anything `mat_keras.noise.get` resolves.

    Example:

    >>> resolve_programming_noise(0.02)
    Gaussian(sd=0.02, relative_to='absolute')
    """
    if programming_noise is None:
        return None
    if isinstance(programming_noise, numbers.Real) and not isinstance(programming_noise, bool):
        return noise_lib.Gaussian(programming_noise, relative_to="absolute")
    return noise_lib.get(programming_noise)


def program(levels, device, noise, seed):
    """Returns the conductances (siemens, float64) programmed for `levels`.

    Args:
        levels: array of level indices.
        device: the `export.Device`.
        noise: a `NoiseModel` or None (exact levels).
        seed: a `keras.random.SeedGenerator` (or int) for the draw.

    Example:

    >>> g = program(table.level_plus, device, Gaussian(0.02, "absolute"), keras.random.SeedGenerator(0))
    """
    g = device.levels.values[levels]
    if noise is None:
        return g
    span = device.g_max - device.g_min
    unit = ((g - device.g_min) / span).astype(np.float32)
    delta = keras.ops.convert_to_numpy(noise.perturbation(keras.ops.convert_to_tensor(unit), seed))
    unit = np.clip(unit + delta, 0.0, 1.0)
    return device.g_min + unit.astype(np.float64) * span


def programmed_weights(table, noise=None, seed=None):
    """Returns the matrix of weights a chip holds for a `MatrixTable`.

    Without noise these are the dequantised levels; with noise, each device
    is programmed with an error (see the module docstring) and the weights
    are read back from the conductances.
    """
    if noise is None:
        return table.weights()
    device = table.device
    g_plus = program(table.level_plus, device, noise, seed)
    g_minus = program(table.level_minus, device, noise, seed) if table.level_minus is not None else None
    return mapping.weights_from_conductances(g_plus, g_minus, table.scale, device)


def apply_tables(model, tables, programming_noise=None, seed=None):
    """Returns a copy of `model` holding the weights the chip would hold.

    Args:
        model: the model the tables were exported from (same architecture;
            `NoisyWeights` layers are stripped). It is not modified.
        tables: a tables folder, or `Tables` from `load_tables`.
        programming_noise: None, a number (Gaussian sd on normalised
            conductances) or a noise model / identifier for
            `mat_keras.noise.get`.
        seed: integer seed of the programming noise; the same seed gives the
            same weights. None draws fresh noise.

    Returns:
        A new plain Keras model: quantised (and noisy) weights, digital
        biases from the tables, folded BatchNorms as `Identity` layers.

    Raises:
        TableIntegrityError: the folder fails verification.
        InvalidArgumentError: the tables do not fit the model.

    Example:

    >>> chip = export.apply_tables(model, "chip/", programming_noise=0.02, seed=0)
    >>> chip.evaluate(x_test, y_test)
    """
    if not isinstance(tables, Tables):
        tables = load_tables(tables)
    model = weights.plain_model(model)
    noise = resolve_programming_noise(programming_noise)
    generator = keras.random.SeedGenerator(seed) if noise is not None else None
    values = {}
    for layer_table in tables.layers:
        layer = graph.find(model, layer_table.path)
        if layer is None:
            raise InvalidArgumentError(
                f"Model '{model.name}' has no layer '{layer_table.name}' that the tables map."
            )
        if type(layer).__name__ != layer_table.class_name:
            raise InvalidArgumentError(
                f"Layer '{layer_table.name}' is a {type(layer).__name__}, the tables map a "
                f"{layer_table.class_name}."
            )
        values[layer_table.path] = _layer_values(layer_table, noise, generator)
    folded = [lt.folded_batchnorm for lt in tables.layers if lt.folded_batchnorm]
    return folding.rebuild(model, folded, values)


def _layer_values(layer_table, noise, generator):
    attrs, row_biases = {}, {}
    for table in layer_table.matrices.values():
        kernel, bias_row = table.split(programmed_weights(table, noise, generator))
        attrs[table.variable] = kernel
        if bias_row is not None:
            row_biases[table.bias_part] = bias_row
    if layer_table.bias is not None:
        attrs[layer_table.bias_attr] = layer_table.bias
    elif row_biases:
        if "all" in row_biases:
            attrs[layer_table.bias_attr] = row_biases["all"]
        else:  # GRU with reset_after: input bias under kernel, recurrent under recurrent_kernel
            attrs[layer_table.bias_attr] = np.stack([row_biases[0], row_biases[1]])
    return attrs


def fold_batchnorm(model):
    """Returns a copy of `model` with BatchNorms folded into the layer before them.

    Only BatchNorms that directly follow a Dense/Conv layer (see
    `export.graph`) fold; the others are kept. The weights stay in floating
    point: the copy's outputs equal the original's up to rounding. The
    original model is not modified.

    Args:
        model: a Sequential or functional Keras model (`NoisyWeights`
            layers are stripped first).

    Returns:
        A new Keras model; folded BatchNorms are `keras.layers.Identity`.

    Example:

    >>> folded = mat_keras.export.fold_batchnorm(model)
    >>> np.allclose(folded(x), model(x), rtol=1e-5)
    True
    """
    model = weights.plain_model(model)
    plan = graph.plan_model(model, fold_batchnorm=True, strict=False)
    values = {}
    for entry in plan.entries:
        if entry.batchnorm is None:
            continue
        matrices, bias = weights.extract(entry, bias_mode="digital")
        values[entry.path] = {
            m.spec.attr: layouts.from_matrix(m.matrix, m.variable_shape) for m in matrices
        }
        values[entry.path][entry.spec.bias_attr] = bias
    return folding.rebuild(model, plan.folded_paths(), values)
