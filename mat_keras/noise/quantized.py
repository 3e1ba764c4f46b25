"""Quantised weights: quantisation-aware training (QAT), as a noise model.

`Quantized` snaps every weight to the nearest of a few levels, per tensor:
`num_levels` uniform levels between two quantiles of the tensor (the
reference implementation: the 1 % and 99 % quantiles, recomputed from the
weights at every step, `quantile_op`), or an explicit list. As a noise model its perturbation is `q(w) - w`, so wrapping a
model (`mat_keras.wrap(model, noise=Quantized(16))`) trains it with
quantised weights in the forward pass and a straight-through gradient to the
float weights. With `noise`, the quantised weights are perturbed as well
(the reference implementation's `qat_noise`).

The nearest-level lookup is `mat_keras.devices.levels`, the implementation
the exporter uses.
"""

import math

from keras import ops

from mat_keras.devices.levels import Levels, check_count, uniform_snap_op
from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.base import NoiseModel, check_sd
from mat_keras.noise.gaussian import Gaussian
from mat_keras.noise.registry import get, register, serialize

_RELATIVE = ("max_abs", "absolute")


def _check_quantiles(quantiles):
    try:
        low, high = (float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"quantiles must be two numbers (low, high), got {quantiles!r}."
        ) from None
    if not 0 <= low < high <= 1:
        raise InvalidArgumentError(
            f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles!r}."
        )
    return (low, high)


@register("quantized")
class Quantized(NoiseModel):
    """Weights snapped to discrete levels, optionally with noise on top.

    Args:
        num_levels: number of uniform levels between the `quantiles` of each
            tensor (the lowest and highest levels are those quantiles;
            weights beyond them go to the end levels). Ignored with `levels`.
        quantiles: `(low, high)` fractions for the end levels; the reference
            implementation uses (0.01, 0.99).
        levels: an explicit, strictly increasing list of levels instead, in
            units of the tensor's `max|w|` (`relative_to="max_abs"`, e.g.
            `[-1, -0.5, 0, 0.5, 1]`) or in weight units (`"absolute"`).
        relative_to: `"max_abs"` or `"absolute"`, for explicit levels.
        noise: a noise model (or anything `mat_keras.noise.get` resolves)
            applied to the quantised weights, or None.

    Raises:
        InvalidArgumentError: a bad count, quantiles, levels or noise.

    Example:

    >>> qat = mat_keras.wrap(model, noise=Quantized(8), seed=0)
    >>> qat_noise = mat_keras.wrap(model, noise=Quantized(8, noise=0.05), seed=0)
    >>> Quantized(levels=[-1, 0, 1]).perturbation(w)   # ternary weights
    """

    def __init__(
        self,
        num_levels=16,
        quantiles=(0.01, 0.99),
        levels=None,
        relative_to="max_abs",
        noise=None,
    ):
        self.num_levels = check_count(num_levels, "num_levels")
        self.quantiles = _check_quantiles(quantiles)
        if isinstance(levels, dict):
            levels = Levels.from_config(levels)
        if levels is not None and not isinstance(levels, Levels):
            levels = Levels(levels, name="levels")
        self.levels = levels
        if relative_to not in _RELATIVE:
            raise InvalidArgumentError(
                f"relative_to must be one of {', '.join(_RELATIVE)}; got {relative_to!r}."
            )
        self.relative_to = relative_to
        self.noise = get(noise)
        if isinstance(self.noise, Quantized):
            raise InvalidArgumentError("The noise of a Quantized model cannot be quantised again.")

    def quantize(self, weights):
        """Returns `weights` snapped to the nearest levels (no gradient)."""
        weights = ops.convert_to_tensor(weights)
        if self.levels is None:
            flat = ops.reshape(weights, (-1,))
            low = quantile_op(flat, self.quantiles[0])
            high = quantile_op(flat, self.quantiles[1])
            # A constant tensor has equal quantiles: keep its value.
            same = high <= low
            high = ops.where(same, low + 1.0, high)
            snapped = uniform_snap_op(weights, low, high, self.num_levels)
            return ops.where(same, weights, snapped)
        if self.relative_to == "absolute":
            return self.levels.snap_op(weights)
        scale = ops.max(ops.abs(weights))
        scale = ops.where(scale > 0, scale, ops.ones_like(scale))
        return self.levels.snap_op(weights / scale) * scale

    def perturbation(self, weights, seed=None):
        quantized = self.quantize(weights)
        delta = quantized - weights
        if self.noise is not None:
            delta = delta + self.noise.perturbation(quantized, seed)
        return delta

    @property
    def sd(self):
        """The sd of the added noise (0 without noise), so sweeps can vary it."""
        if self.noise is None:
            return 0.0
        return self.noise.sd

    def with_sd(self, sd):
        """Returns a copy whose added noise has level `sd` (a Gaussian if none)."""
        sd = check_sd(sd)
        config = self.get_config()
        if self.noise is None:
            config["noise"] = None if sd == 0 else serialize(Gaussian(sd))
        else:
            config["noise"] = serialize(self.noise.with_sd(sd))
        return type(self).from_config(config)

    def get_config(self):
        return {
            "num_levels": self.num_levels,
            "quantiles": list(self.quantiles),
            "levels": None if self.levels is None else self.levels.values.tolist(),
            "relative_to": self.relative_to,
            "noise": serialize(self.noise),
        }


def quantile_op(flat, q):
    """Returns the `q` quantile of a 1-D tensor, as `numpy.quantile` (linear).

    The uniform levels of QAT sit between two tail quantiles (the reference
    implementation: 1 % and 99 %), recomputed at every training step. A full sort of a 100k
    weight tensor costs 12.7 ms on two CPU cores; the `k` smallest (or
    largest) entries that a tail quantile needs cost 2.3 ms for both tails
    (`ops.top_k`). Central quantiles, or a tensor of unknown length, sort.

    Args:
        flat: 1-D float tensor.
        q: the quantile, a Python float in [0, 1].

    Returns:
        A scalar tensor.

    Example:

    >>> quantile_op(ops.convert_to_tensor(np.arange(101.0)), 0.01)   # 1.0
    """
    n = flat.shape[0]
    if n is None:
        return ops.quantile(flat, q)
    position = q * (n - 1)
    below = math.floor(position)
    above = min(below + 1, n - 1)
    fraction = position - below
    if above + 1 <= n // 4:
        smallest = -ops.top_k(-flat, above + 1)[0]
        low, high = smallest[below], smallest[above]
    elif n - below <= n // 4:
        largest = ops.top_k(flat, n - below)[0]
        low, high = largest[n - 1 - below], largest[n - 1 - above]
    else:
        return ops.quantile(flat, q)
    return low + fraction * (high - low)
