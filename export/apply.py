"""Putting the chip's weights back into a Keras model, optionally noisy.

Also `fold_batchnorm`: the same kind of model copy with the folded weights
in floating point, before any quantisation.

`apply_tables` returns a copy of a model holding the weights a chip
programmed from the tables would hold, so the exported map can be evaluated
(for example with `mat_keras.robustness_sweep`) before anything is
programmed. BatchNorms folded at export are folded in the copy too (see
`export.folding`): outputs stay right, the BatchNorm becomes an Identity.

**Weight noise** (a number, `"gaussian"`, any `NoiseModel` that is not a
device model) acts on each device's normalised conductance
`u = (g - g_min) / (g_max - g_min)` in [0, 1]: `u + noise.perturbation(u)`,
clipped to [0, 1], one draw per device (both devices of a differential pair,
the unused one at level 0 included; the offset scheme's reference column is
exact). A plain number is a Gaussian sd in those normalised units
(`Gaussian(sd, relative_to="absolute")`).

**Device models** (`mat_keras.devices.DeviceModel`: `"pcm"`, `"rram"`,
`"measured"`, a measurements CSV, a JSON config, ...) program the devices
instead, as a chip would be programmed from the tables. The tables' device
spec (a `mat_keras.devices.Device`, levels and range) says what is
programmed; the device model what happens to a conductance:

1. The targets are the tables' level conductances, in units of `g_max`
   (both devices of a differential pair; the single device of the offset
   scheme), on the tables' device.
2. The device model programs them on that device
   (`DeviceModel.program_conductances`: programming error, stuck devices at
   the lowest level or at `g_max`, drift exponents) and reads them `time`
   seconds later (drift, read noise).
3. The weights are read back by the one mapping of the tables' device
   (`mat_keras.devices.mapping`, the offset scheme's reference column exact
   and drift-free), so a device model without noise parts gives the
   dequantised tables exactly.
4. Global drift compensation, when on (by default the device model's own
   setting): as the chip measures it, each matrix is read with an all-ones
   input at time 0 and at `time`, and the ratio of the summed absolute
   outputs (`mat_keras.devices.calibration_signal`) rescales its weights.

A device model without levels of its own (`"pcm"`, `"rram"`: analog targets)
programs any tables. One with levels (a level count, explicit levels, a
measured device) programs the tables' level `k` where it would program its
own level `k` (a measured device draws from the measurements of level `k`),
so it needs as many levels as the tables, else an `InvalidArgumentError`
names both.
"""

import math
import numbers

import keras
import numpy as np

from mat_keras import noise as noise_lib
from mat_keras.devices import DeviceModel, parse_time, resolve_device
from mat_keras.devices import mapping as device_mapping
from mat_keras.errors import InvalidArgumentError
from mat_keras.export import folding, graph, layouts, weights
from mat_keras.export.tables import Tables, load_tables


def resolve_programming_noise(programming_noise):
    """Returns the noise model for programming noise, or None.

    Args:
        programming_noise: None; a number (Gaussian sd in normalised
            conductance units); anything `mat_keras.devices.resolve_device`
            resolves (a noise model or device model, an alias such as
            `"pcm"`, a measurements CSV, a JSON config).

    Example:

    >>> resolve_programming_noise(0.02)
    Gaussian(sd=0.02, relative_to='absolute')
    """
    if programming_noise is None:
        return None
    if isinstance(programming_noise, numbers.Real) and not isinstance(programming_noise, bool):
        return noise_lib.Gaussian(programming_noise, relative_to="absolute")
    return resolve_device(programming_noise)


def resolve_programming(programming_noise, device, time=0.0, compensation=None):
    """Returns how tables of `device` are programmed: `(noise, time, compensation)`.

    Args:
        programming_noise: see `apply_tables`.
        device: the tables' `Device`.
        time: seconds after programming at which the weights are read, a
            number or a string with a unit (`"1y"`, see
            `mat_keras.devices.parse_time`).
        compensation: global drift compensation: True, False, or None for
            the device model's own setting.

    Returns:
        The noise model (a device model checked against the tables' levels,
        see `check_levels`) or None; the time in seconds; whether drift
        compensation applies (None without a device model), so that the
        triple passes back through unchanged.

    Raises:
        InvalidArgumentError: an unknown noise model, a bad time, a time or
            compensation without a device model, or levels that disagree.

    Example:

    >>> noise, time, compensation = resolve_programming("pcm", Device(1e-6, 40e-6, 16), "1y")
    >>> type(noise).__name__, time, compensation
    ('PCM', 31536000.0, True)
    """
    noise = resolve_programming_noise(programming_noise)
    time = parse_time(time, "time")
    if not isinstance(noise, DeviceModel):
        if time or compensation is not None:
            raise InvalidArgumentError(
                "A time after programming and drift compensation need a device model such as "
                f"'pcm' as the programming noise, got {noise!r}."
            )
        return noise, time, None
    compensation = noise.compensation if compensation is None else bool(compensation)
    return check_levels(noise, device), time, compensation


def check_levels(model, device):
    """Returns `model` after checking that it can program tables of `device`.

    Args:
        model: a `DeviceModel`.
        device: the tables' `Device`.

    Raises:
        InvalidArgumentError: the model has levels of its own, and not as
            many as the tables (see the module docstring).

    Example:

    >>> check_levels(mat_keras.noise.get("measured"), Device(1e-6, 40e-6, 16))
    Traceback (most recent call last):
    InvalidArgumentError: The device model's levels (8 levels) are not the tables' (16 levels); ...
    """
    own = model.device.num_levels
    if own is not None and own != device.num_levels:
        raise InvalidArgumentError(
            f"The device model's levels ({own} levels) are not the tables' "
            f"({device.num_levels} levels); export the tables to the device's levels."
        )
    return model


def program(levels, device, noise, seed):
    """Returns the conductances (units of `g_max`, float64) programmed for `levels` with weight noise.

    Args:
        levels: array of level indices.
        device: the tables' `Device`.
        noise: a `NoiseModel` that is not a device model, or None (exact
            levels).
        seed: a `keras.random.SeedGenerator` (or int) for the draw.

    Example:

    >>> g = program(table.level_plus, device, Gaussian(0.02, "absolute"), keras.random.SeedGenerator(0))
    """
    g = device_mapping.level_conductances(levels, device)
    if noise is None:
        return g
    low = device.g_min / device.g_max
    span = 1.0 - low
    unit = ((g - low) / span).astype(np.float32)
    delta = keras.ops.convert_to_numpy(noise.perturbation(keras.ops.convert_to_tensor(unit), seed))
    unit = np.clip(unit + delta, 0.0, 1.0)
    return low + unit.astype(np.float64) * span


def programmed_weights(table, noise=None, seed=None, time=0.0, compensation=False):
    """Returns the matrix of weights a chip holds for a `MatrixTable`.

    Without noise these are the dequantised levels; with noise, each device
    is programmed with an error (see the module docstring) and the weights
    are read back from the conductances.

    Args:
        table: a `MatrixTable`.
        noise: None, a weight noise model, or a device model checked
            against the table's device (`resolve_programming`).
        seed: a `keras.random.SeedGenerator` (or int) for the draws.
        time: seconds after programming (device models only).
        compensation: apply global drift compensation (device models only).

    Returns:
        A float32 matrix shaped like the table.

    Example:

    >>> noise, time, compensation = resolve_programming("pcm", table.device, "1d")
    >>> w = programmed_weights(table, noise, seed=0, time=time, compensation=compensation)
    """
    if noise is None:
        return table.weights()
    if isinstance(noise, DeviceModel):
        return _device_weights(table, noise, seed, time, compensation)
    g_plus, g_minus = (
        None if levels is None else program(levels, table.device, noise, seed)
        for levels in (table.level_plus, table.level_minus)
    )
    return device_mapping.from_conductances(g_plus, g_minus, table.scale, table.device)


def _device_weights(table, model, seed, time, compensation):
    """The weights of `table` programmed once on `model`, read at `time` (module docstring)."""
    device = table.device
    indices = [levels for levels in (table.level_plus, table.level_minus) if levels is not None]
    target = np.stack([device_mapping.level_conductances(levels, device) for levels in indices])
    state = model.program_conductances(
        target.astype(np.float32), table.scale, seed, calibrate=False, device=device
    )
    return keras.ops.convert_to_numpy(model.read(state, time, seed, compensation=compensation))


def apply_tables(model, tables, programming_noise=None, seed=None, time=0.0, compensation=None):
    """Returns a copy of `model` holding the weights the chip would hold.

    Args:
        model: the model the tables were exported from (same architecture;
            `NoisyWeights` layers are stripped). It is not modified.
        tables: a tables folder, or `Tables` from `load_tables`.
        programming_noise: None; a number (Gaussian sd on normalised
            conductances); a noise model or identifier; or a device model
            (`"pcm"`, `"rram"`, `"measured"`, a `DeviceModel`, a
            measurements CSV, a JSON config), which programs the table's
            conductances (see the module docstring).
        seed: integer seed of the programming noise (and of a device
            model's drift exponents and read noise); the same seed gives the
            same weights. None draws fresh noise.
        time: with a device model, the seconds after programming at which
            the weights are read (drift, read noise), or a string such as
            `"1y"`; default 0, right after programming.
        compensation: with a device model, apply global drift compensation;
            None uses the device model's own setting.

    Returns:
        A new plain Keras model: quantised (and noisy) weights, digital
        biases from the tables, folded BatchNorms as `Identity` layers.

    Raises:
        TableIntegrityError: the folder fails verification.
        InvalidArgumentError: the tables do not fit the model, or the
            programming noise, time or compensation are invalid (see
            `resolve_programming`).

    Example:

    >>> chip = export.apply_tables(model, "chip/", programming_noise=0.02, seed=0)
    >>> chip.evaluate(x_test, y_test)
    >>> year = export.apply_tables(model, "chip/", programming_noise="pcm", seed=0, time="1y")
    """
    if not isinstance(tables, Tables):
        tables = load_tables(tables)
    noise, time, compensation = resolve_programming(programming_noise, tables.device, time, compensation)
    model = weights.plain_model(model)
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
        values[layer_table.path] = _layer_values(layer_table, layer, noise, generator, time, compensation)
    folded = [lt.folded_batchnorm for lt in tables.layers if lt.folded_batchnorm]
    return folding.rebuild(model, folded, values)


def _layer_values(layer_table, layer, noise, generator, time, compensation):
    attrs, row_biases = {}, {}
    for table in layer_table.matrices.values():
        kernel, bias_row = table.split(programmed_weights(table, noise, generator, time, compensation))
        attrs[table.variable] = kernel
        if bias_row is not None:
            row_biases[table.bias_part] = bias_row
    if layer_table.bias is not None:
        attrs[layer_table.bias_attr] = layer_table.bias
    elif row_biases:
        if "all" in row_biases:
            attrs[layer_table.bias_attr] = _bias_like_variable(row_biases["all"], layer, layer_table.bias_attr)
        else:  # GRU with reset_after: input bias under kernel, recurrent under recurrent_kernel
            attrs[layer_table.bias_attr] = np.stack([row_biases[0], row_biases[1]])
    return attrs


def _bias_like_variable(row, layer, attr):
    """Returns a bias row reshaped to the layer's bias variable.

    A bias row holds the bias flattened, one value per column; an
    EinsumDense bias has the shape of its output axes. A layer without the
    variable (a BatchNorm folded into a layer built without bias) takes the
    row as it is, and a row of another size is left for `folding.rebuild`
    to report.
    """
    variable = layouts.get_attr(layer, attr)
    if variable is None or math.prod(variable.shape) != row.size:
        return row
    return row.reshape(tuple(variable.shape))


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
