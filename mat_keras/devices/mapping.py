"""The weight <-> conductance mapping of a device spec, in numpy and `keras.ops`.

A weight tensor `W` with scale `s` (`max|W|`, or the exporter's percentile or
per-column scale) becomes unit weights `W / s`, clipped to [-1, 1], which the
device's scheme (`mat_keras.devices.spec`) puts on normalised conductances
`u` in [0, 1], snapped to the normalised levels `u_k` when the device has
levels:

- differential: `u = |W| / s` on G+ for a positive weight, on G- for a
  negative one, the other side at `u = 0`;
- offset: `u = (W / s + 1) / 2` on the single device.

A normalised conductance is the conductance `g_lo + u * (g_hi - g_lo)`;
conductances here are in units of `g_max` (`Device.relative_range`), so the
same functions serve a spec in siemens (the exporter) and one in units of
`g_max` (a device model). The weight a pair of conductances stands for, any
conductances (programmed, drifted, noisy), is
`s * (G+ - G-) / (g_hi - g_lo)` (differential) or
`s * 2 * (G - g_ref) / (g_hi - g_lo)` (offset).

Two twins, with the same arithmetic:

- numpy (`to_levels`, `from_levels`, `level_conductances`,
  `from_conductances`), for the exporter: level indices, in blocks;
- `keras.ops` (`to_conductances_op`, `from_conductances_op`), for device
  models inside compiled training on every backend.

Example:

>>> device = Device(1e-6, 40e-6, levels=16)
>>> plus, minus = to_levels(np.array([0.5, -1.0]), device)
>>> g, scale = to_conductances_op(keras.ops.convert_to_tensor([0.5, -1.0]), device)
>>> # g[0] == level_conductances(plus, device), g[1] == level_conductances(minus, device)
"""

import numpy as np
from keras import ops


def _is_differential(device):
    return device.scheme == "differential"


def _span(device):
    low, high = device.relative_range
    return low, high, high - low


# -- numpy -------------------------------------------------------------------


def to_levels(unit, device):
    """Returns the level indices of unit weights (`W / s`, in [-1, 1]).

    Args:
        unit: a float numpy array of unit weights, clipped to [-1, 1].
        device: a `Device` with levels.

    Returns:
        `(plus, minus)`: level indices (`device.levels.dtype`) of G+ and G-
        (differential), or `(indices, None)` for the offset scheme's single
        device.

    Example:

    >>> to_levels(np.array([0.5, -1.0, 0.0]), Device(0.0, 1.0, 3))
    (array([1, 0, 0], dtype=uint8), array([0, 2, 0], dtype=uint8))
    """
    levels = device.normalised_levels
    if not _is_differential(device):
        return levels.index((unit + 1.0) * 0.5), None
    index = levels.index(np.abs(unit))
    # The active side takes the level, the other stays at level 0.
    return index * (unit > 0), index * (unit < 0)


def from_levels(plus, minus, device):
    """Returns the unit weights (`W / s`) that level indices stand for, float32.

    Example:

    >>> from_levels(np.array([1, 0]), np.array([0, 2]), Device(0.0, 1.0, 3))
    array([ 0.5, -1. ], dtype=float32)
    """
    values = device.normalised_levels.values.astype(np.float32)
    if _is_differential(device):
        return values[plus] - values[minus]
    return values[plus] * 2.0 - 1.0


def level_conductances(indices, device):
    """Returns the conductances of level `indices`, in units of `g_max` (float64)."""
    return device.levels.values[indices] / device.g_max


def from_conductances(g_plus, g_minus, scale, device):
    """Returns the weights that conductances (units of `g_max`) stand for, float32.

    The inverse of the mapping for any conductance, not only a level.

    Args:
        g_plus: conductances of G+ (or of the offset scheme's single device).
        g_minus: conductances of G- (differential); ignored for the offset
            scheme, whose reference is exact.
        scale: the tensor's scale, shape () or broadcastable (per column).
        device: the `Device`.

    Example:

    >>> from_conductances(np.array([1.0]), np.array([0.0]), 2.0, Device(0.0, 1.0, 3))
    array([2.], dtype=float32)
    """
    low, high, span = _span(device)
    g_plus = np.asarray(g_plus, np.float64)
    if _is_differential(device):
        unit = (g_plus - np.asarray(g_minus, np.float64)) / span
    else:
        unit = 2.0 * (g_plus - (low + high) / 2.0) / span
    return (unit * np.asarray(scale, np.float64)).astype(np.float32)


# -- keras.ops ---------------------------------------------------------------


def tensor_scale_op(weights):
    """Returns `max|W|` of a tensor (1 for an all-zero tensor), with `keras.ops`."""
    scale = ops.max(ops.abs(weights))
    return ops.where(scale > 0, scale, ops.ones_like(scale))


def to_conductances_op(weights, device, scale=None):
    """Maps a weight tensor onto the conductances of `device`, with `keras.ops`.

    The twin of `level_conductances(to_levels(W / s))`, also for analog
    devices (no levels: the targets are not snapped).

    Args:
        weights: a float tensor.
        device: a `Device`.
        scale: the tensor's scale, or None for `max|W|` (`tensor_scale_op`).

    Returns:
        `(conductances, scale)`: target conductances in units of `g_max`, of
        shape `(2,) + weights.shape` (G+, G-) for the differential scheme or
        `(1,) + weights.shape` for offset, and the scale.

    Example:

    >>> g, s = to_conductances_op(keras.ops.convert_to_tensor([0.5, -1.0]), Device(0.0, 1.0, None))
    >>> # g = [[0.5, 0.0], [0.0, 1.0]], s = 1.0
    """
    weights = ops.convert_to_tensor(weights)
    scale = tensor_scale_op(weights) if scale is None else ops.cast(scale, weights.dtype)
    unit = ops.clip(weights / scale, -1.0, 1.0)
    levels = device.normalised_levels
    if _is_differential(device):
        magnitude = ops.abs(unit)
        if levels is not None:
            magnitude = levels.snap_op(magnitude)
        zero = ops.zeros_like(magnitude)
        normalised = ops.stack([ops.where(unit > 0, magnitude, zero), ops.where(unit < 0, magnitude, zero)])
    else:
        normalised = (unit + 1.0) * 0.5
        if levels is not None:
            normalised = levels.snap_op(normalised)
        normalised = ops.expand_dims(normalised, 0)
    low, _, span = _span(device)
    return low + normalised * span, scale


def from_conductances_op(conductances, scale, device):
    """Returns the weights conductances (units of `g_max`) stand for, with `keras.ops`.

    The twin of `from_conductances`: `conductances` stacks G+ and G-
    (differential) or holds the single device (offset), as
    `to_conductances_op` returns them.
    """
    low, high, span = _span(device)
    if _is_differential(device):
        return scale * (conductances[0] - conductances[1]) / span
    return scale * 2.0 * (conductances[0] - (low + high) / 2.0) / span
