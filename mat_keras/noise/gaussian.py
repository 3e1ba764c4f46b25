"""Gaussian weight noise: additive (relative to the tensor's range) and multiplicative."""

import keras
from keras import ops

from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.base import NoiseModel, check_sd, dtype_of
from mat_keras.noise.registry import register

_SCALES = ("range", "max_abs", "absolute")


def _unit_normal(weights, seed):
    return keras.random.normal(ops.shape(weights), dtype=dtype_of(weights), seed=seed)


@register("gaussian")
class Gaussian(NoiseModel):
    """Additive Gaussian weight noise, fresh on every draw.

    With `relative_to="range"` (the reference implementation's convention)
    the standard deviation is `sd * 2 * max|w|`, one scale per weight tensor,
    so `sd=0.1` means 10 % of the tensor's weight range. `"max_abs"` uses
    `sd * max|w|` and `"absolute"` uses `sd` itself.

    Args:
        sd: noise level, a finite number >= 0.
        relative_to: `"range"`, `"max_abs"` or `"absolute"`.

    Example:

    >>> noise = mat_keras.noise.Gaussian(0.1)
    >>> delta = noise.perturbation(keras.ops.ones((4, 4)), seed=0)
    >>> # delta has standard deviation 0.1 * 2 * 1 = 0.2
    """

    linear_in_sd = True

    def __init__(self, sd=0.1, relative_to="range"):
        self._sd = check_sd(sd)
        if relative_to not in _SCALES:
            raise InvalidArgumentError(
                f"relative_to must be one of {', '.join(_SCALES)}; "
                f"got {relative_to!r}."
            )
        self.relative_to = relative_to

    def scale(self, weights):
        """Returns the noise standard deviation for `weights` (a scalar)."""
        if self.relative_to == "absolute":
            return ops.convert_to_tensor(self._sd, dtype_of(weights))
        max_abs = ops.max(ops.abs(weights))
        factor = 2.0 * self._sd if self.relative_to == "range" else self._sd
        return max_abs * factor

    def perturbation(self, weights, seed=None):
        return _unit_normal(weights, seed) * self.scale(weights)

    def gated_perturbation(self, weights, seed, gate):
        return _unit_normal(weights, seed) * (ops.cast(gate, dtype_of(weights)) * self.scale(weights))

    def get_config(self):
        return {"sd": self._sd, "relative_to": self.relative_to}


@register("multiplicative")
class Multiplicative(NoiseModel):
    """Gaussian noise proportional to each weight's magnitude.

    `delta = sd * |w| * N(0, 1)`: a device whose programming error grows with
    its conductance. A zero weight stays zero.

    Args:
        sd: relative noise level, a finite number >= 0.

    Example:

    >>> noise = mat_keras.noise.Multiplicative(0.05)
    """

    linear_in_sd = True

    def __init__(self, sd=0.1):
        self._sd = check_sd(sd)

    def perturbation(self, weights, seed=None):
        return _unit_normal(weights, seed) * ops.abs(weights) * self._sd

    def gated_perturbation(self, weights, seed, gate):
        return _unit_normal(weights, seed) * ops.abs(weights) * (ops.cast(gate, dtype_of(weights)) * self._sd)

    def get_config(self):
        return {"sd": self._sd}
