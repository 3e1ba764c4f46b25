"""The exporter's scales, and its matrices mapped onto device levels in blocks.

A matrix `W` gets a scale `s` (one per matrix, or one per column): the
largest magnitude `max|W|`, or a percentile of `|W|` (weights beyond it are
clipped to `+-s`). `W / s`, clipped to [-1, 1], goes onto the device's levels
by the one mapping of `mat_keras.devices.mapping` (differential: `|W| / s` to
G+ or G-; offset: `(W / s + 1) / 2` to the single device), which also reads
levels back (`dequantise`).

For weights inside the clipping range the error is at most half the largest
level gap times the scale (`device.weight_step / 2 * s`).

Everything is vectorised and processed in blocks of rows, so the memory on
top of the float matrix is a few bytes per weight (the level indices) plus
one block.
"""

import dataclasses
import math

import numpy as np

from mat_keras.devices import mapping as device_mapping
from mat_keras.errors import InvalidArgumentError

#: Elements processed at once; bounds the temporary memory of one block.
BLOCK_ELEMENTS = 1 << 20

PER = ("layer", "column")


def check_scale(scale):
    """Returns the scale method as `("max", None)` or `("percentile", q)`.

    Args:
        scale: `"max"`, or `("percentile", q)` with `0 < q <= 100` (also the
            string `"percentile:99.9"`).

    Raises:
        InvalidArgumentError: anything else.

    Example:

    >>> check_scale(("percentile", 99.9))
    ('percentile', 99.9)
    """
    if scale == "max":
        return ("max", None)
    if isinstance(scale, str) and scale.startswith("percentile:"):
        scale = ("percentile", scale.split(":", 1)[1])
    if isinstance(scale, (tuple, list)) and len(scale) == 2 and scale[0] == "percentile":
        try:
            q = float(scale[1])
        except (TypeError, ValueError):
            q = math.nan
        if 0 < q <= 100:
            return ("percentile", q)
        raise InvalidArgumentError(
            f"The scale percentile must be in (0, 100], got {scale[1]!r}."
        )
    raise InvalidArgumentError(
        f"scale must be 'max' or ('percentile', q); got {scale!r}."
    )


def check_per(per):
    """Returns `per` after checking it is `"layer"` or `"column"`."""
    if per not in PER:
        raise InvalidArgumentError(f"per must be one of {', '.join(PER)}; got {per!r}.")
    return per


def _blocks(rows, cols):
    step = max(1, BLOCK_ELEMENTS // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def compute_scale(matrix, scale="max", per="layer"):
    """Returns the scale of a matrix: a float64 array of shape () or (cols,).

    A zero scale (an all-zero matrix or column) becomes 1, so that zeros map
    to level 0 without dividing by zero.

    Args:
        matrix: 2-D float array.
        scale: see `check_scale`.
        per: `"layer"` (one scale) or `"column"` (one per output column).

    Returns:
        The scale, positive.

    Example:

    >>> compute_scale(np.array([[1.0, -3.0], [2.0, 0.5]]), per="column")
    array([2., 3.])
    """
    method, q = check_scale(scale)
    axis = None if check_per(per) == "layer" else 0
    if method == "max":
        # Block-wise max and -min: no |W| temporary the size of the matrix.
        rows, cols = matrix.shape
        result = np.zeros(() if axis is None else (cols,))
        for block in _blocks(rows, cols):
            part = matrix[block]
            if part.size:
                result = np.maximum(result, np.maximum(part.max(axis=axis), -part.min(axis=axis)))
    else:
        result = np.percentile(np.abs(matrix), q, axis=axis)
    result = np.asarray(result, dtype=np.float64)
    return np.where(result > 0, result, 1.0)


@dataclasses.dataclass
class Mapped:
    """A matrix mapped onto device levels.

    Attributes:
        level_plus: level index of every G+ device (differential), or of the
            single device (offset); unsigned ints shaped like the matrix.
        level_minus: level index of every G- device (differential) or None.
        scale: float64 array, shape () or (cols,).
        max_error: largest |clipped weight - reconstructed| (weight units).
        max_error_steps: largest error in units of the level step (<= 0.5
            for nearest-level rounding).
        rms_error: root mean square of (original - reconstructed), clipping
            included.
        clipped_fraction: fraction of weights beyond the scale.
        level_counts: devices at each level (all devices, idle ones too).
    """

    level_plus: np.ndarray
    level_minus: object
    scale: np.ndarray
    max_error: float
    max_error_steps: float
    rms_error: float
    clipped_fraction: float
    level_counts: np.ndarray

    @property
    def level_fractions(self):
        """Fraction of devices at each level."""
        return self.level_counts / max(1, int(self.level_counts.sum()))


def map_matrix(matrix, scale, device):
    """Maps a float matrix onto the levels of `device`.

    Args:
        matrix: 2-D float array.
        scale: its scale, from `compute_scale`.
        device: a `mat_keras.devices.Device` with levels.

    Returns:
        A `Mapped`.

    Example:

    >>> device = Device(1e-6, 40e-6, levels=16)
    >>> mapped = map_matrix(w, compute_scale(w), device)
    >>> mapped.max_error_steps <= 0.5
    True
    """
    rows, cols = matrix.shape
    count = device.levels.count
    plus = np.empty((rows, cols), dtype=device.levels.dtype)
    minus = np.empty_like(plus) if device.scheme == "differential" else None
    scale32 = np.asarray(scale, dtype=np.float32)
    counts = np.zeros(count, dtype=np.int64)
    max_error = max_steps = 0.0
    squared = 0.0
    clipped = 0
    per_column = scale32.ndim > 0
    for block in _blocks(rows, cols):
        weights = matrix[block].astype(np.float32, copy=False)
        unit = weights / scale32  # W / s; a new array, ours to modify
        clipped += int(np.count_nonzero(np.abs(unit) > 1))
        np.clip(unit, -1.0, 1.0, out=unit)
        block_plus, block_minus = device_mapping.to_levels(unit, device)
        plus[block] = block_plus
        # Every device is counted, the idle one of a differential pair too.
        counts += np.bincount(block_plus.ravel(), minlength=count)
        if minus is not None:
            minus[block] = block_minus
            counts += np.bincount(block_minus.ravel(), minlength=count)
        if not unit.size:
            continue
        rebuilt = device_mapping.from_levels(block_plus, block_minus, device)
        # Error against the clipped weight, in units of the scale.
        error = unit - rebuilt
        np.abs(error, out=error)
        max_steps = max(max_steps, float(error.max()))
        if per_column:
            max_error = max(max_error, float((error * scale32).max()))
        rebuilt *= scale32
        rebuilt -= weights
        squared += float(np.dot(rebuilt.ravel(), rebuilt.ravel()))
    if not per_column:
        max_error = max_steps * float(scale32)
    size = max(1, rows * cols)
    return Mapped(
        level_plus=plus,
        level_minus=minus,
        scale=np.asarray(scale, dtype=np.float64),
        max_error=max_error,
        max_error_steps=max_steps / device.weight_step,
        rms_error=math.sqrt(squared / size),
        clipped_fraction=clipped / size,
        level_counts=counts,
    )


def dequantise(level_plus, level_minus, scale, device):
    """Returns the weights the levels stand for (no device noise), float32.

    Args:
        level_plus: level indices of G+ (or of the single offset device).
        level_minus: level indices of G- (differential) or None.
        scale: float array of shape () or (cols,).
        device: the `Device` the levels belong to.

    Example:

    >>> weights = dequantise(mapped.level_plus, mapped.level_minus, mapped.scale, device)
    """
    unit = device_mapping.from_levels(level_plus, level_minus, device)
    unit *= np.asarray(scale, dtype=np.float32)
    return unit


def conductances(indices, device, unit=1e-6):
    """Returns the conductances of level `indices`, in units of `unit` siemens.

    Args:
        indices: array of level indices.
        device: the `Device`.
        unit: 1e-6 for microsiemens (the tables' unit).

    Returns:
        A float32 array shaped like `indices`.
    """
    table = (device.levels.values / unit).astype(np.float32)
    return table[indices]
