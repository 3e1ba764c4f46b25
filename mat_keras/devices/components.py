"""The parts of a device model: programming noise, stuck devices, drift, read noise.

Each part is a plain, serialisable setting (a `Component`) registered in the
one registry (`mat_keras.noise.registry`, kind `"component"`), so that a
`DeviceModel` resolves its slots, and reloads its config, with
`mat_keras.noise.get(..., kind="component")`. Conductances are in units of
`g_max`; a part that depends on the device's range or levels receives the
device spec (`mat_keras.devices.Device`) of the conductances it acts on.

Everything runs on `keras.ops` and `keras.random`: every backend, inside
compiled training.
"""

import math

import keras
import numpy as np
from keras import ops

from mat_keras.devices.units import check_time
from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.base import Configurable
from mat_keras.noise.registry import COMPONENT, register
from mat_keras.validation import check_fraction, check_non_negative, check_number


class Component(Configurable):
    """Base of the parts of a device model: plain, serialisable settings.

    `slot` names the `DeviceModel` argument a component fills
    (`"programming"`, `"stuck"`, `"drift"` or `"read"`).
    """

    kind = COMPONENT
    slot = None


def _polynomial_coefficients(sd):
    if isinstance(sd, (list, tuple, np.ndarray)):
        if len(sd) == 0:
            raise InvalidArgumentError("The programming-noise sd polynomial needs a coefficient.")
        return [check_number(c, "each sd coefficient") for c in sd]
    return [check_non_negative(sd, "programming noise sd")]


@register("programming_noise")
class ProgrammingNoise(Component):
    """Programming error with a state-dependent standard deviation.

    A device programmed to the target conductance `g` (in units of `g_max`)
    lands at `g + sd(g) * N(0, 1)`, clipped at 0, one draw per device and
    programming. `sd(g) = c0 + c1 * g + c2 * g**2 + ...`, also in units of
    `g_max` (clipped at 0).

    The PCM preset (`PCM_PROGRAMMING`) uses the fit of Nandakumar et al.,
    "Phase-change memory models for deep learning training and inference",
    ICECS 2019 (the model behind Joshi et al., Nature Communications 11:2473,
    2020, and IBM's aihwkit `PCMLikeNoiseModel`):
    `sd = 0.2635 + 1.9650 g - 1.1731 g**2` microsiemens for `g_max` = 25 uS,
    i.e. coefficients (0.01054, 0.0786, -0.046924) in units of `g_max`.

    Args:
        sd: a number (a state-independent sd, in units of `g_max`) or the
            polynomial coefficients `(c0, c1, ...)`; the polynomial must be
            >= 0 on [0, 1].

    Raises:
        InvalidArgumentError: a negative sd, a non-finite coefficient, or a
            polynomial negative somewhere on [0, 1].

    Example:

    >>> device = DeviceModel(programming=ProgrammingNoise([0.01, 0.03]))
    """

    slot = "programming"

    def __init__(self, sd=0.02):
        self.coefficients = _polynomial_coefficients(sd)
        grid = np.linspace(0.0, 1.0, 1001)
        values = np.polynomial.polynomial.polyval(grid, self.coefficients)
        if values.min() < -1e-12:
            at = grid[int(values.argmin())]
            raise InvalidArgumentError(
                f"The programming-noise sd polynomial {self.coefficients} is negative "
                f"({values.min():.3g}) at normalised conductance {at:g}; an sd must be >= 0."
            )

    def sd_at(self, conductance):
        """Returns `sd(g)` (units of `g_max`) for a tensor of conductances."""
        conductance = ops.convert_to_tensor(conductance)
        result = ops.zeros_like(conductance)
        for coefficient in reversed(self.coefficients):  # Horner's rule
            result = result * conductance + coefficient
        return ops.maximum(result, 0.0)

    def sample(self, target, seed=None, device=None):
        """Returns programmed conductances for a tensor of targets (units of `g_max`).

        `device`, the spec of the targets, is unused: the error depends on the
        target alone.
        """
        del device
        unit = keras.random.normal(ops.shape(target), dtype=target.dtype, seed=seed)
        return ops.maximum(target + self.sd_at(target) * unit, 0.0)

    def get_config(self):
        sd = self.coefficients[0] if len(self.coefficients) == 1 else list(self.coefficients)
        return {"sd": sd}


@register("stuck")
class StuckDevices(Component):
    """Devices stuck at the lowest or highest conductance, whatever the target.

    Each device is stuck at `g_min` with probability `at_min` and at `g_max`
    with probability `at_max`, drawn once per programming. A stuck device
    does not drift.

    Args:
        at_min: fraction of devices stuck at `g_min`, in [0, 1].
        at_max: fraction stuck at `g_max`, in [0, 1]; `at_min + at_max <= 1`.

    Raises:
        InvalidArgumentError: a fraction outside [0, 1] or a sum above 1.

    Example:

    >>> StuckDevices(at_min=0.01, at_max=0.005)
    StuckDevices(at_min=0.01, at_max=0.005)
    """

    slot = "stuck"

    def __init__(self, at_min=0.0, at_max=0.0):
        self.at_min = check_fraction(at_min, "at_min")
        self.at_max = check_fraction(at_max, "at_max")
        if self.at_min + self.at_max > 1:
            raise InvalidArgumentError(
                f"at_min + at_max must be <= 1, got {self.at_min} + {self.at_max}."
            )

    def apply(self, conductances, seed=None, device=None):
        """Returns `(conductances, stuck)`: stuck devices set, and the boolean mask.

        Args:
            conductances: programmed conductances, units of `g_max`.
            seed: the seed of the draw.
            device: the spec of the conductances; stuck-low devices sit at
                its lowest level (0 without a spec).
        """
        g_min = 0.0 if device is None else device.relative_range[0]
        draw = keras.random.uniform(
            ops.shape(conductances), dtype=conductances.dtype, seed=seed
        )
        low = draw < self.at_min
        high = ops.logical_and(draw >= self.at_min, draw < self.at_min + self.at_max)
        conductances = ops.where(low, ops.cast(g_min, conductances.dtype), conductances)
        conductances = ops.where(high, ops.ones_like(conductances), conductances)
        return conductances, ops.logical_or(low, high)

    def get_config(self):
        return {"at_min": self.at_min, "at_max": self.at_max}


@register("drift")
class Drift(Component):
    """Power-law conductance drift with a per-device exponent.

    After programming, a device's conductance decays as
    `g(t) = g0 * ((t + t0) / t0) ** -nu`, `t` in seconds. Each device draws
    its exponent once per programming, `nu ~ N(mean, sd**2)` clipped at 0.
    The mean and the sd are numbers, or depend on the device's target
    conductance `g` (units of `g_max`) as `clip(a + b * ln(g), low, high)`,
    given as `(a, b, low, high)`.

    The PCM preset (`PCM_DRIFT`) is the state-dependent fit of Nandakumar et
    al., "Phase-change memory models for deep learning training and
    inference", ICECS 2019 (used in Joshi et al., Nature Communications
    11:2473, 2020, and aihwkit's PCM model), `t0 = 20 s`:
    mean `clip(0.0244 - 0.0155 ln g, 0.049, 0.1)`,
    sd `clip(-0.0059 - 0.0125 ln g, 0.008, 0.045)`: low conductances drift
    faster and more variably.

    Args:
        nu_mean: mean drift exponent, a number >= 0 or `(a, b, low, high)`
            with `0 <= low <= high` (a negative mean would make conductances
            grow over time).
        nu_sd: spread of the exponent across devices, a number >= 0 or
            `(a, b, low, high)` with `0 <= low <= high`.
        t0: the time (s) after programming at which `g0` is measured, > 0.

    Raises:
        InvalidArgumentError: a negative mean or sd, or `t0 <= 0`.

    Example:

    >>> drift = Drift(nu_mean=0.05, nu_sd=0.01)
    >>> drift.factor(0.05, 365 * 86400.0)   # conductance left after a year
    >>> Drift(nu_mean=(0.0244, -0.0155, 0.049, 0.1), nu_sd=0.01)  # state-dependent mean
    """

    slot = "drift"

    def __init__(self, nu_mean=0.05, nu_sd=0.0, t0=20.0):
        self.nu_mean = _state_function(
            nu_mean, "Drift nu_mean (the mean drift exponent)",
            "The drift exponent distribution must have a mean >= 0, got nu_mean={!r}: "
            "a negative mean would make conductances grow after programming.",
        )
        self.nu_sd = _state_function(nu_sd, "Drift nu_sd", "Drift nu_sd must be >= 0, got {!r}.")
        self.t0 = check_number(t0, "Drift t0", minimum=0.0, strict=True)

    def exponents(self, target, seed=None):
        """Draws one drift exponent per device (clipped at 0) for target conductances."""
        target = ops.convert_to_tensor(target)
        unit = keras.random.normal(ops.shape(target), dtype=target.dtype, seed=seed)
        mean = _evaluate_state_function(self.nu_mean, target)
        sd = _evaluate_state_function(self.nu_sd, target)
        return ops.maximum(mean + sd * unit, 0.0)

    def log_time(self, time):
        """`log((t + t0) / t0)`: the drift factor is `exp(-nu * log_time)`."""
        return math.log1p(check_time(time) / self.t0)

    def factor(self, nu, time):
        """Returns `((t + t0) / t0) ** -nu` for exponents `nu` and a time in seconds."""
        return ops.exp(-ops.convert_to_tensor(nu) * self.log_time(time))

    def get_config(self):
        return {"nu_mean": self.nu_mean, "nu_sd": self.nu_sd, "t0": self.t0}


def _state_function(value, name, negative_message):
    """Checks a number >= 0 or a clipped log-linear `[a, b, low, high]`; returns it."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != 4:
            raise InvalidArgumentError(
                f"{name} must be a number or (a, b, low, high) for clip(a + b ln g, low, high); "
                f"got {value!r}."
            )
        a, b, low, high = (check_number(v, name) for v in value)
        if low < 0:
            raise InvalidArgumentError(negative_message.format(value))
        if high < low:
            raise InvalidArgumentError(f"{name}: high must be >= low, got {value!r}.")
        return [a, b, low, high]
    number = check_number(value, name)
    if number < 0:
        raise InvalidArgumentError(negative_message.format(value))
    return number


def _evaluate_state_function(spec, conductance):
    if not isinstance(spec, list):
        return spec
    a, b, low, high = spec
    # An idle device (g = 0) takes the value at the smallest conductances.
    log_g = ops.log(ops.maximum(conductance, 1e-6))
    return ops.clip(a + b * log_g, low, high)


@register("read_noise")
class ReadNoise(Component):
    """Read noise: a fresh draw at every read, relative to the conductance.

    A device read at conductance `g` gives `g * (1 + sigma * N(0, 1))`,
    clipped at 0, with the relative sd
    `sigma = min(sd * g_p ** -exponent, max_sd) * f(t)` where `g_p` is the
    programmed conductance (units of `g_max`). `f(t) = 1`, or, with
    `t_read` set, the growth of accumulated 1/f noise,
    `f(t) = sqrt(log((t + t_read) / (2 t_read)))` (0 for `t <= t_read`).

    The PCM preset (`PCM_READ`): `sd = 0.0088, exponent = 0.65,
    max_sd = 0.2, t_read = 250 ns`, the 1/f read-noise fit of Nandakumar et
    al., ICECS 2019 (as documented for aihwkit's PCM model).

    Args:
        sd: relative read-noise sd, >= 0.
        exponent: state dependence (0: the same relative sd at every
            conductance), >= 0.
        max_sd: upper bound of the relative sd, or None.
        t_read: read pulse width in seconds for the 1/f time dependence, or
            None for a time-independent sd.

    Example:

    >>> ReadNoise(0.01)   # 1 % of the conductance, at every read
    ReadNoise(sd=0.01, exponent=0.0, max_sd=None, t_read=None)
    """

    slot = "read"

    def __init__(self, sd=0.01, exponent=0.0, max_sd=None, t_read=None):
        self.sd = check_non_negative(sd, "read noise sd")
        self.exponent = check_number(exponent, "read noise exponent", minimum=0.0)
        self.max_sd = None if max_sd is None else check_non_negative(max_sd, "read noise max_sd")
        self.t_read = (
            None if t_read is None else check_number(t_read, "t_read", minimum=0.0, strict=True)
        )

    def time_factor(self, time):
        """`f(t)`, the growth of the sd with the time since programming."""
        time = check_time(time)
        if self.t_read is None:
            return 1.0
        return math.sqrt(max(math.log((time + self.t_read) / (2.0 * self.t_read)), 0.0))

    def relative_sd(self, programmed, time=0.0):
        """The relative sd of each device (tensor), given its programmed conductance."""
        programmed = ops.convert_to_tensor(programmed)
        sigma = ops.ones_like(programmed) * self.sd
        if self.exponent:
            # Tiny conductances would give an infinite relative sd; the
            # product with g stays finite, and max_sd bounds it anyway.
            sigma = sigma * ops.power(ops.maximum(programmed, 1e-6), -self.exponent)
        if self.max_sd is not None:
            sigma = ops.minimum(sigma, self.max_sd)
        return sigma * self.time_factor(time)

    def apply(self, conductances, programmed, time=0.0, seed=None):
        """Returns one noisy read of `conductances` (programmed: their time-0 values)."""
        unit = keras.random.normal(ops.shape(conductances), dtype=conductances.dtype, seed=seed)
        noisy = conductances * (1.0 + self.relative_sd(programmed, time) * unit)
        return ops.maximum(noisy, 0.0)

    def get_config(self):
        return {
            "sd": self.sd,
            "exponent": self.exponent,
            "max_sd": self.max_sd,
            "t_read": self.t_read,
        }
