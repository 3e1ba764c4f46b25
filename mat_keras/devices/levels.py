"""Discrete levels: the values a quantised weight or a memristor can take.

One implementation of "levels" shared by the device spec
(`mat_keras.devices.Device`, whose conductance levels the exporter and the
device models map weights onto) and the quantisers
(`mat_keras.noise.Quantized`, which snap weights to levels while training).
A set of levels is either uniform (`count` evenly spaced values between two
bounds) or an explicit, strictly increasing list (for example the measured
mean conductances of a device's programmable states).

Nearest-level lookup exists twice, with identical rounding:

- in numpy (`Levels.index`, `Levels.snap`, `uniform_index`), for the
  exporter, vectorised and chunk-friendly;
- in `keras.ops` (`Levels.index_op`, `Levels.snap_op`, `uniform_index_op`),
  for quantisers that run inside compiled training on every backend. The
  uniform variant takes tensor bounds, so a quantiser can recompute them from
  the weights at every step (QAT uses the 1 % and 99 % quantiles).

Rounding rule, everywhere: a value goes to its nearest level, values outside
the levels to the nearest end level; a value exactly half-way between two
levels goes to the upper one (for uniform levels, whose lookup is
arithmetic, up to the floating-point rounding of that half-way point).
"""

import numpy as np
from keras import ops

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_number

#: The largest number of levels; indices then still fit in `uint16`.
MAX_LEVELS = 65536


def index_dtype(count):
    """Returns the smallest unsigned numpy dtype that holds `count` indices.

    Args:
        count: number of levels, at most `MAX_LEVELS`.

    Returns:
        `np.uint8` up to 256 levels, else `np.uint16`.

    Example:

    >>> index_dtype(16)
    <class 'numpy.uint8'>
    """
    return np.uint8 if count <= 256 else np.uint16


def check_count(count, name="levels"):
    """Returns `count` as an int after checking 2 <= count <= MAX_LEVELS.

    Args:
        count: the number of levels to check.
        name: the argument's name, for the error message.

    Returns:
        `int(count)`.

    Raises:
        InvalidArgumentError: `count` is not an integer in range.

    Example:

    >>> check_count(16)
    16
    """
    count = check_integer(count, name, minimum=None)
    if not 2 <= count <= MAX_LEVELS:
        raise InvalidArgumentError(
            f"{name} must be between 2 and {MAX_LEVELS} levels, got {count}."
        )
    return count


class Levels:
    """An ordered set of discrete values with nearest-level lookup.

    Build one with `Levels.uniform(low, high, count)` or
    `Levels(values)` for an explicit strictly increasing list.

    Args:
        values: at least two finite numbers, strictly increasing.

    Raises:
        InvalidArgumentError: fewer than two values, a non-finite value, or
            values not strictly increasing.

    Example:

    >>> levels = Levels.uniform(-1.0, 1.0, 5)
    >>> levels.values
    array([-1. , -0.5,  0. ,  0.5,  1. ])
    >>> levels.index(np.array([0.2, 0.3, 7.0]))
    array([2, 3, 4], dtype=uint8)
    >>> Levels([1e-6, 4e-6, 11e-6, 30e-6]).snap(np.array([5e-6]))
    array([4.e-06])
    """

    def __init__(self, values, name="levels"):
        try:
            array = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"{name} must be a list of numbers, got {values!r}."
            ) from None
        if array.ndim != 1 or array.size < 2:
            raise InvalidArgumentError(
                f"{name} must list at least 2 values, got {array.size}."
            )
        if array.size > MAX_LEVELS:
            raise InvalidArgumentError(
                f"{name} may list at most {MAX_LEVELS} values, got {array.size}."
            )
        if not np.all(np.isfinite(array)):
            raise InvalidArgumentError(f"{name} must all be finite numbers.")
        if not np.all(np.diff(array) > 0):
            raise InvalidArgumentError(
                f"{name} must be strictly increasing, got {array.tolist()}."
            )
        array.setflags(write=False)
        self._values = array
        self._uniform = False
        # Decision boundaries between neighbouring levels, for searchsorted.
        self._midpoints = (array[:-1] + array[1:]) / 2.0

    @classmethod
    def uniform(cls, low, high, count):
        """Returns `count` evenly spaced levels from `low` to `high`.

        Args:
            low: the lowest level, a finite number.
            high: the highest level, a finite number above `low`.
            count: number of levels, an integer >= 2.

        Returns:
            A `Levels` whose lookups use arithmetic instead of a search.

        Raises:
            InvalidArgumentError: bounds not finite or not increasing, or a
                bad count.

        Example:

        >>> Levels.uniform(0.0, 1.0, 3).values
        array([0. , 0.5, 1. ])
        """
        low = check_number(low, "low")
        high = check_number(high, "high")
        if not low < high:
            raise InvalidArgumentError(
                f"The lowest level must be below the highest, got {low!r} >= {high!r}."
            )
        count = check_count(count)
        levels = cls(np.linspace(low, high, count))
        levels._uniform = True
        return levels

    @property
    def values(self):
        """The levels, a read-only float64 array, increasing."""
        return self._values

    @property
    def count(self):
        """The number of levels."""
        return int(self._values.size)

    @property
    def low(self):
        """The lowest level."""
        return float(self._values[0])

    @property
    def high(self):
        """The highest level."""
        return float(self._values[-1])

    @property
    def is_uniform(self):
        """True when built by `Levels.uniform` (evenly spaced)."""
        return self._uniform

    @property
    def step(self):
        """The spacing of uniform levels; None for an explicit list."""
        if not self._uniform:
            return None
        return (self.high - self.low) / (self.count - 1)

    @property
    def max_gap(self):
        """The largest distance between neighbouring levels.

        Half of it bounds the error of `snap` for values inside the range.
        """
        return float(np.max(np.diff(self._values)))

    @property
    def dtype(self):
        """The numpy dtype for indices of these levels (`uint8`/`uint16`)."""
        return index_dtype(self.count)

    def normalised(self):
        """Returns these levels mapped linearly onto [0, 1] (low -> 0, high -> 1).

        Example:

        >>> Levels([2.0, 3.0, 6.0]).normalised().values
        array([0.  , 0.25, 1.  ])
        """
        if self._uniform:
            return Levels.uniform(0.0, 1.0, self.count)
        values = (self._values - self.low) / (self.high - self.low)
        # Guard the ends against rounding so that 0 and 1 are exact.
        values[0], values[-1] = 0.0, 1.0
        return Levels(values)

    def scaled(self, factor):
        """Returns the levels multiplied by a positive `factor`.

        Example:

        >>> Levels.uniform(1e-6, 4e-6, 4).scaled(1e6).values
        array([1., 2., 3., 4.])
        """
        factor = check_number(factor, "factor")
        if factor <= 0:
            raise InvalidArgumentError(f"factor must be > 0, got {factor!r}.")
        if self._uniform:
            return Levels.uniform(self.low * factor, self.high * factor, self.count)
        return Levels(self._values * factor)

    # -- numpy -------------------------------------------------------------

    def index(self, x):
        """Returns the index of the nearest level of every element of `x`.

        Args:
            x: a numpy array (or anything `np.asarray` accepts).

        Returns:
            An integer array (`self.dtype`) with the shape of `x`.

        Example:

        >>> Levels.uniform(0.0, 1.0, 3).index(np.array([0.24, 0.25, 2.0]))
        array([0, 1, 2], dtype=uint8)
        """
        x = np.asarray(x)
        if self._uniform:
            return uniform_index(x, self.low, self.high, self.count, self.dtype)
        midpoints = self._midpoints.astype(_float_dtype(x), copy=False)
        return np.searchsorted(midpoints, x, side="right").astype(
            self.dtype, copy=False
        )

    def snap(self, x):
        """Returns `x` with every element replaced by its nearest level.

        Example:

        >>> Levels.uniform(0.0, 1.0, 3).snap(np.array([0.3, 0.9]))
        array([0.5, 1. ])
        """
        x = np.asarray(x)
        values = self._values.astype(_float_dtype(x), copy=False)
        return values[self.index(x)]

    # -- keras.ops ---------------------------------------------------------

    def index_op(self, x):
        """Returns nearest-level indices of tensor `x` with `keras.ops`.

        Rounds exactly like `index`. Not differentiable; a straight-through
        quantiser wraps `snap_op` in `stop_gradient`.

        Args:
            x: a floating tensor.

        Returns:
            An int32 tensor with the shape of `x`.

        Example:

        >>> Levels.uniform(0.0, 1.0, 3).index_op(keras.ops.ones((2,)) * 0.3)
        """
        if self._uniform:
            return uniform_index_op(x, self.low, self.high, self.count)
        x = ops.convert_to_tensor(x)
        midpoints = ops.convert_to_tensor(self._midpoints, dtype=x.dtype)
        flat = ops.reshape(x, (-1,))
        indices = ops.searchsorted(midpoints, flat, side="right")
        return ops.reshape(ops.cast(indices, "int32"), ops.shape(x))

    def snap_op(self, x):
        """Returns tensor `x` snapped to the nearest levels with `keras.ops`.

        Example:

        >>> Levels.uniform(-1.0, 1.0, 9).snap_op(keras.ops.ones((2, 2)) * 0.3)
        """
        x = ops.convert_to_tensor(x)
        values = ops.convert_to_tensor(self._values, dtype=x.dtype)
        return ops.take(values, self.index_op(x))

    # -- serialisation -------------------------------------------------------

    def get_config(self):
        """Returns a JSON-friendly dict that `from_config` turns back into levels."""
        if self._uniform:
            return {"low": self.low, "high": self.high, "count": self.count}
        return {"values": self._values.tolist()}

    @classmethod
    def from_config(cls, config):
        """Builds levels from a `get_config` dict."""
        if "values" in config:
            return cls(config["values"])
        return cls.uniform(config["low"], config["high"], config["count"])

    def __eq__(self, other):
        return (
            isinstance(other, Levels)
            and self._uniform == other._uniform
            and np.array_equal(self._values, other._values)
        )

    def __hash__(self):
        return hash((self._uniform, self._values.tobytes()))

    def __repr__(self):
        if self._uniform:
            return f"Levels.uniform({self.low!r}, {self.high!r}, {self.count})"
        return f"Levels({self._values.tolist()!r})"


def _float_dtype(x):
    # Keep float32 data in float32 (half the memory of float64 on large
    # tensors); integers and float64 are looked up in float64.
    if x.dtype == np.float32 or x.dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def uniform_index(x, low, high, count, dtype=np.int64):
    """Nearest-level indices of `count` uniform levels from `low` to `high`.

    The numpy twin of `uniform_index_op`; `low` and `high` may be arrays
    that broadcast against `x` (per-column bounds, for instance).

    Args:
        x: a numpy array.
        low: the lowest level (scalar or broadcastable array).
        high: the highest level, above `low`.
        count: number of levels.
        dtype: integer dtype of the result.

    Returns:
        An array of `dtype` with the broadcast shape of `x`, values in
        `[0, count - 1]`.

    Example:

    >>> uniform_index(np.array([-3.0, 0.49, 0.5]), 0.0, 1.0, 2)
    array([0, 0, 1])
    """
    x = np.asarray(x)
    floating = _float_dtype(x)
    low = np.asarray(low, floating)
    steps = (np.asarray(high, floating) - low) / floating.type(count - 1)
    # In-place arithmetic: one temporary the size of `x`, not four.
    position = np.subtract(x, low, dtype=floating)
    position /= steps
    # floor(p + 0.5) rounds halves up, as the searchsorted path does.
    position += floating.type(0.5)
    np.floor(position, out=position)
    np.clip(position, 0, count - 1, out=position)
    return position.astype(dtype)


def uniform_index_op(x, low, high, count):
    """Nearest-level indices of uniform levels, with `keras.ops`.

    `low` and `high` may be tensors (for example quantiles recomputed from
    the weights at every training step) that broadcast against `x`.

    Args:
        x: a floating tensor.
        low: the lowest level, a number or tensor.
        high: the highest level, a number or tensor above `low`.
        count: number of levels, a Python int >= 2.

    Returns:
        An int32 tensor with the shape of `x`.

    Example:

    >>> q = uniform_index_op(w, ops.quantile(w, 0.01), ops.quantile(w, 0.99), 16)
    """
    count = check_count(count, "count")
    x = ops.convert_to_tensor(x)
    low = ops.cast(low, x.dtype)
    high = ops.cast(high, x.dtype)
    step = (high - low) / float(count - 1)
    position = ops.floor((x - low) / step + 0.5)
    return ops.cast(ops.clip(position, 0, count - 1), "int32")


def uniform_snap_op(x, low, high, count):
    """Returns `x` snapped to `count` uniform levels from `low` to `high`.

    The value form of `uniform_index_op`: `low + index * step`. A
    straight-through quantiser is
    `x + ops.stop_gradient(uniform_snap_op(x, lo, hi, n) - x)`.

    Example:

    >>> uniform_snap_op(keras.ops.ones((3,)) * 0.3, 0.0, 1.0, 3)  # [0.5, 0.5, 0.5]
    """
    x = ops.convert_to_tensor(x)
    low = ops.cast(low, x.dtype)
    high = ops.cast(high, x.dtype)
    step = (high - low) / float(count - 1)
    index = ops.cast(uniform_index_op(x, low, high, count), x.dtype)
    return low + index * step
