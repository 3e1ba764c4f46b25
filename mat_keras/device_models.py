"""Device models: weights stored as the conductances of memristor pairs.

A `DeviceModel` simulates what a crossbar does to a weight tensor, in the
order a chip goes through it:

1. **Mapping** (as the exporter, `mat_keras.export`, differential scheme):
   the tensor's scale is `s = max|w|`; a weight's magnitude `|w| / s` in
   [0, 1] is the normalised conductance `u` of one device of a pair, G+ for a
   positive weight, G- for a negative one; the other device stays at the
   lowest conductance. With `levels`, `u` first snaps to the nearest of the
   device's programmable levels (`mat_keras.levels`). Conductances are
   expressed in units of `g_max`: `g = g_min + u * (1 - g_min)`, so
   `g_min` here is the ratio of the lowest to the highest conductance.
2. **Programming**, once per programming: each device (both of a pair) lands
   near its target with an error (`ProgrammingNoise`, or the measured
   distribution of its level, `mat_keras.measured.Measured`); some devices
   are stuck at `g_min` or `g_max` (`StuckDevices`); each device draws its own
   drift exponent (`Drift`).
3. **Reading** at a time `t` after programming: conductances have drifted,
   `g(t) = g0 * ((t + t0) / t0) ** -nu`, and every read adds fresh read
   noise relative to the conductance (`ReadNoise`). The weight read back is
   `s * (G+ - G-) / (1 - g_min)`.
4. **Global drift compensation** (optional): one factor per weight tensor,
   measured as a chip would: the crossbar is read with an all-ones input
   right after programming and again at time `t`; the ratio of the summed
   absolute outputs scales the tensor's outputs digitally.

As a `NoiseModel`, a device model's `perturbation` programs the weights
afresh at every call and reads them at `time` (default 0: just after
programming; the PCM preset: one year), so memristor-aware training (`mat_keras.wrap(model,
noise="pcm")`) trains against a new chip at every step.
`mat_keras.deployment_sweep` instead programs once per draw and reads at
several times.

Everything runs on `keras.ops` and `keras.random`: every backend, inside
compiled training.
"""

import math
import typing

import keras
import numpy as np
from keras import ops

from mat_keras import noise as noise_lib
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_non_negative, check_number
from mat_keras.levels import Levels, check_count

#: Seconds in the units `parse_time` and the tables use.
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
MONTH = 30 * DAY
YEAR = 365 * DAY

# Sub-streams of one draw: an integer seed gives each kind of randomness its
# own stream, so programming noise and drift exponents are independent.
_PROGRAM, _DRIFT, _STUCK, _REFERENCE, _READ, _CALIBRATE = range(6)


def _sub_seed(seed, stream):
    """A seed for one kind of draw: generators advance, integers are offset."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed * 7 + stream * 1_000_003
    return seed


def check_time(value, name="time"):
    """Returns a time after programming, in seconds, as a float >= 0.

    Raises:
        InvalidArgumentError: negative, non-finite or not a number.
    """
    return check_non_negative(value, name, "number of seconds")


# -- mapping ---------------------------------------------------------------


def to_conductances(weights, g_min=0.0, levels=None):
    """Maps a weight tensor onto differential pairs of conductances.

    Args:
        weights: a float tensor.
        g_min: the lowest conductance, in units of `g_max` (in [0, 1)).
        levels: normalised programmable levels (`mat_keras.levels.Levels`
            on [0, 1]) the magnitudes snap to, or None for analog targets.

    Returns:
        `(conductances, scale)`: a tensor of shape `(2,) + weights.shape`
        holding the target conductances of G+ (index 0) and G- (index 1) in
        units of `g_max`, and the tensor's scale `max|w|` (1 for an all-zero
        tensor).

    Example:

    >>> g, s = to_conductances(keras.ops.convert_to_tensor([0.5, -1.0]))
    >>> # g = [[0.5, 0.0], [0.0, 1.0]], s = 1.0
    """
    weights = ops.convert_to_tensor(weights)
    scale = ops.max(ops.abs(weights))
    scale = ops.where(scale > 0, scale, ops.ones_like(scale))
    magnitude = ops.abs(weights) / scale
    if levels is not None:
        magnitude = levels.snap_op(magnitude)
    zero = ops.zeros_like(magnitude)
    plus = ops.where(weights > 0, magnitude, zero)
    minus = ops.where(weights < 0, magnitude, zero)
    unit = ops.stack([plus, minus])
    return g_min + unit * (1.0 - g_min), scale


def from_conductances(conductances, scale, g_min=0.0):
    """Returns the weights a pair of conductance tensors stands for.

    The inverse of `to_conductances` for any conductances (drifted, noisy):
    `scale * (G+ - G-) / (1 - g_min)`.
    """
    return scale * (conductances[0] - conductances[1]) / (1.0 - g_min)


def calibration_signal(weights):
    """What a chip measures to compensate drift: summed |outputs| for an all-ones input.

    The tensor is read as a crossbar of `prod(shape[:-1])` rows and
    `shape[-1]` columns (a Dense or convolution kernel's layout); every row
    is driven with 1, and the absolute column currents are summed.

    Returns:
        A scalar tensor.
    """
    weights = ops.convert_to_tensor(weights)
    columns = weights.shape[-1] if len(weights.shape) else 1
    matrix = ops.reshape(weights, (-1, columns))
    return ops.sum(ops.abs(ops.sum(matrix, axis=0)))


# -- components --------------------------------------------------------------

_COMPONENTS = {}


def _register_component(alias):
    def decorator(cls):
        _COMPONENTS[alias] = cls
        _COMPONENTS[cls.__name__] = cls
        return keras.saving.register_keras_serializable(package="mat_keras")(cls)

    return decorator


class Component(noise_lib.Configurable):
    """Base of the parts of a device model: plain, serialisable settings."""


def serialize_component(component):
    """Returns `{"class_name": ..., "config": ...}` for a component, or None."""
    if component is None:
        return None
    return {"class_name": type(component).__name__, "config": component.get_config()}


def get_component(identifier, default_class, slot):
    """Resolves one slot of a `DeviceModel`.

    Args:
        identifier: None; a component instance; a number (the first argument
            of `default_class`, e.g. a programming-noise sd, or a list of
            polynomial coefficients); a dict of
            `default_class` arguments; or `{"class_name": ..., "config": ...}`.
        default_class: the slot's usual component class.
        slot: the argument's name, for error messages.

    Returns:
        A component or None.

    Raises:
        InvalidArgumentError: the identifier is of the wrong kind.
    """
    if identifier is None or isinstance(identifier, Component):
        return identifier
    if isinstance(identifier, (int, float, list, tuple)) and not isinstance(identifier, bool):
        return default_class(identifier)
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            name = identifier["class_name"]
            cls = _COMPONENTS.get(name) or _COMPONENTS.get(str(name).lower())
            if cls is None:
                raise InvalidArgumentError(
                    f"{slot}: unknown device component {name!r}; known: "
                    f"{', '.join(sorted(k for k in _COMPONENTS if k.islower()))}."
                )
            return cls.from_config(dict(identifier.get("config") or {}))
        try:
            return default_class.from_config(dict(identifier))
        except TypeError as error:
            raise InvalidArgumentError(f"{slot}: {error}.") from None
    raise InvalidArgumentError(
        f"{slot} must be a {default_class.__name__}, a number, a dict of its "
        f"arguments or None; got {identifier!r}."
    )


def _polynomial_coefficients(sd):
    if isinstance(sd, (list, tuple, np.ndarray)):
        if len(sd) == 0:
            raise InvalidArgumentError("The programming-noise sd polynomial needs a coefficient.")
        return [check_number(c, "each sd coefficient") for c in sd]
    return [noise_lib.check_sd(sd, "programming noise sd")]


@_register_component("programming_noise")
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

    def sample(self, target, seed=None, g_min=0.0):
        """Returns programmed conductances for a tensor of targets (units of `g_max`)."""
        del g_min  # The error does not depend on the range.
        unit = keras.random.normal(ops.shape(target), dtype=target.dtype, seed=seed)
        return ops.maximum(target + self.sd_at(target) * unit, 0.0)

    def get_config(self):
        sd = self.coefficients[0] if len(self.coefficients) == 1 else list(self.coefficients)
        return {"sd": sd}


@_register_component("stuck")
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

    def __init__(self, at_min=0.0, at_max=0.0):
        self.at_min = _check_fraction(at_min, "at_min")
        self.at_max = _check_fraction(at_max, "at_max")
        if self.at_min + self.at_max > 1:
            raise InvalidArgumentError(
                f"at_min + at_max must be <= 1, got {self.at_min} + {self.at_max}."
            )

    def apply(self, conductances, seed=None, g_min=0.0):
        """Returns `(conductances, stuck)`: stuck devices set, and the boolean mask."""
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


def _check_fraction(value, name):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a fraction in [0, 1], got {value!r}.") from None
    if isinstance(value, bool) or not 0 <= number <= 1:
        raise InvalidArgumentError(f"{name} must be a fraction in [0, 1], got {value!r}.")
    return number


@_register_component("drift")
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


@_register_component("read_noise")
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

    def __init__(self, sd=0.01, exponent=0.0, max_sd=None, t_read=None):
        self.sd = noise_lib.check_sd(sd, "read noise sd")
        self.exponent = check_number(exponent, "read noise exponent", minimum=0.0)
        self.max_sd = None if max_sd is None else noise_lib.check_sd(max_sd, "read noise max_sd")
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


# -- the device model --------------------------------------------------------


class Programmed(typing.NamedTuple):
    """One weight tensor as programmed on a chip (see `DeviceModel.program`).

    Attributes:
        conductances: programmed conductances at time 0, shape
            `(2,) + weights.shape` (G+, G-), in units of `g_max`.
        exponents: drift exponent of every device (zeros without drift).
        scale: the tensor's scale `max|w|`.
        reference: the calibration read right after programming (for drift
            compensation), or None.
    """

    conductances: typing.Any
    exponents: typing.Any
    scale: typing.Any
    reference: typing.Any = None


def _resolve_levels(levels, g_min):
    """Returns `(normalised Levels or None, g_min)` for the `levels` argument."""
    if levels is None:
        return None, g_min
    if isinstance(levels, dict):
        levels = Levels.from_config(levels)
    if isinstance(levels, (int, np.integer)) and not isinstance(levels, bool):
        return Levels.uniform(0.0, 1.0, check_count(levels)), g_min
    explicit = levels if isinstance(levels, Levels) else Levels(levels, name="levels")
    if explicit.low < 0:
        raise InvalidArgumentError("Explicit levels are conductances and must be >= 0.")
    if g_min:
        raise InvalidArgumentError(
            "Give g_min or explicit conductance levels, not both: the lowest level is g_min."
        )
    return explicit.normalised(), explicit.low / explicit.high


@noise_lib.register_noise("device")
class DeviceModel(noise_lib.NoiseModel):
    """A memristive device: mapping, programming, stuck devices, drift, read noise.

    See the module docstring for the sequence. Every part is optional; a
    model without parts stores the weights exactly (up to `levels`).

    Args:
        programming: `ProgrammingNoise` (or its sd, a number or polynomial
            coefficients), a `mat_keras.measured.Measured`, or None.
        stuck: `StuckDevices`, a dict of its arguments, or None.
        drift: `Drift`, a dict of its arguments, or None.
        read: `ReadNoise` (or its relative sd), or None.
        levels: None (analog targets); a number of uniform levels from
            `g_min` to `g_max`; or an explicit list of level conductances in
            any unit (the lowest is then `g_min`, the highest `g_max`).
            Measured devices bring their own levels.
        g_min: the lowest conductance as a fraction of `g_max`, in [0, 1).
        time: seconds after programming at which `perturbation` reads the
            weights (what training with `mat_keras.wrap` sees).
        compensation: whether `perturbation` (and `read` by default) applies
            global drift compensation.

    Raises:
        InvalidArgumentError: any part out of range.

    Example:

    >>> device = DeviceModel(programming=0.02, stuck={"at_min": 0.01},
    ...                      drift={"nu_mean": 0.05, "nu_sd": 0.01}, read=0.01)
    >>> robust = mat_keras.wrap(model, noise=device)     # MAT against it
    >>> state = device.program(kernel, seed=0)           # one chip
    >>> w_day = device.read(state, time=86400.0, seed=1)
    """

    def __init__(
        self,
        programming=None,
        stuck=None,
        drift=None,
        read=None,
        levels=None,
        g_min=0.0,
        time=0.0,
        compensation=True,
    ):
        self.programming = get_component(programming, ProgrammingNoise, "programming")
        self.stuck = get_component(stuck, StuckDevices, "stuck")
        self.drift = get_component(drift, Drift, "drift")
        self.read_noise = get_component(read, ReadNoise, "read")
        self._levels_argument = levels
        self._g_min_argument = check_number(g_min, "g_min", minimum=0.0)
        if self._g_min_argument >= 1:
            raise InvalidArgumentError(f"g_min is a fraction of g_max and must be < 1, got {g_min!r}.")
        measured_levels = getattr(self.programming, "device_levels", None)
        if measured_levels is not None:
            if levels is not None or self._g_min_argument:
                raise InvalidArgumentError(
                    "A measured device brings its own levels and g_min; do not give levels or g_min."
                )
            levels = measured_levels
        self.levels, self.g_min = _resolve_levels(levels, self._g_min_argument)
        self.time = check_time(time)
        self.compensation = bool(compensation)

    # -- one programming -------------------------------------------------------

    def program(self, weights, seed=None, calibrate=True):
        """Programs a weight tensor: target conductances, programming error, stuck devices, exponents.

        Args:
            weights: a float tensor.
            seed: a `keras.random.SeedGenerator` (fresh draws every call),
                an integer or None.
            calibrate: also take the reference read for drift compensation.

        Returns:
            A `Programmed`.
        """
        target, scale = to_conductances(weights, self.g_min, self.levels)
        return self.program_conductances(target, scale, seed, calibrate)

    def program_conductances(self, target, scale=1.0, seed=None, calibrate=True):
        """Programs devices to target conductances (units of `g_max`), as `program` does after mapping.

        For callers that map weights themselves (the exporter's tables): `target`
        has shape `(2,) + shape` (G+, G-) and lies on this model's levels when it
        has any (a measured device looks its samples up by level).

        Returns:
            A `Programmed` whose weights read back as
            `scale * (G+ - G-) / (1 - g_min)`.
        """
        target = ops.convert_to_tensor(target)
        conductances = target
        if self.programming is not None:
            conductances = self.programming.sample(
                target, _sub_seed(seed, _PROGRAM), g_min=self.g_min
            )
        exponents = ops.zeros_like(conductances)
        if self.drift is not None:
            exponents = self.drift.exponents(target, _sub_seed(seed, _DRIFT))
        if self.stuck is not None:
            conductances, stuck = self.stuck.apply(
                conductances, _sub_seed(seed, _STUCK), g_min=self.g_min
            )
            exponents = ops.where(stuck, ops.zeros_like(exponents), exponents)
        state = Programmed(conductances, exponents, ops.convert_to_tensor(scale, target.dtype))
        if calibrate:
            reference = self.calibration_read(state, 0.0, _sub_seed(seed, _REFERENCE))
            state = state._replace(reference=reference)
        return state

    def conductances(self, state, time=0.0, seed=None):
        """Reads the conductances of a programmed tensor at `time` seconds (drift, read noise)."""
        conductances = state.conductances
        if self.drift is not None:
            conductances = conductances * self.drift.factor(state.exponents, time)
        else:
            check_time(time)
        if self.read_noise is not None:
            conductances = self.read_noise.apply(
                conductances, state.conductances, time, _sub_seed(seed, _READ)
            )
        return conductances

    def calibration_read(self, state, time=0.0, seed=None):
        """The chip's drift-calibration measurement at `time` (see `calibration_signal`)."""
        weights = from_conductances(self.conductances(state, time, seed), state.scale, self.g_min)
        return calibration_signal(weights)

    def compensation_factor(self, state, time=0.0, seed=None):
        """Global drift compensation: reference read / calibration read at `time`."""
        reference = state.reference
        if reference is None:
            reference = self.calibration_read(state, 0.0, _sub_seed(seed, _REFERENCE))
        current = self.calibration_read(state, time, _sub_seed(seed, _CALIBRATE))
        safe = ops.where(current > 0, current, ops.ones_like(current))
        return ops.where(current > 0, reference / safe, ops.ones_like(current))

    def read(self, state, time=0.0, seed=None, compensation=None):
        """Returns the weights a programmed tensor gives at `time` seconds after programming.

        Args:
            state: from `program`.
            time: seconds after programming, >= 0.
            seed: seed of the read noise (and the calibration reads).
            compensation: apply global drift compensation; None uses the
                model's `compensation`.

        Returns:
            A weight tensor shaped like the programmed one.
        """
        weights = from_conductances(self.conductances(state, time, seed), state.scale, self.g_min)
        compensation = self.compensation if compensation is None else compensation
        if compensation:
            weights = weights * self.compensation_factor(state, time, seed)
        return weights

    # -- NoiseModel --------------------------------------------------------------

    @property
    def sd(self):
        return None

    def perturbation(self, weights, seed=None):
        """A fresh programming of `weights`, read at `self.time`: returns read - weights."""
        compensate = self.compensation and self.drift is not None
        state = self.program(weights, seed, calibrate=compensate)
        read = self.read(state, self.time, seed, compensation=compensate)
        return ops.cast(read, weights.dtype) - weights

    def with_sd(self, sd):
        raise InvalidArgumentError(
            f"{type(self).__name__} has no single noise level to sweep; evaluate a device over "
            "time with mat_keras.deployment_sweep."
        )

    def with_time(self, time):
        """Returns a copy that `perturbation` reads at `time` seconds after programming."""
        config = self.get_config()
        config["time"] = time
        return type(self).from_config(config)

    def get_config(self):
        levels = self._levels_argument
        if isinstance(levels, Levels):
            levels = levels.get_config()
        elif isinstance(levels, np.ndarray):
            levels = levels.tolist()
        elif isinstance(levels, np.integer):
            levels = int(levels)
        return {
            "programming": serialize_component(self.programming),
            "stuck": serialize_component(self.stuck),
            "drift": serialize_component(self.drift),
            "read": serialize_component(self.read_noise),
            "levels": levels,
            "g_min": self._g_min_argument,
            "time": self.time,
            "compensation": self.compensation,
        }


# -- presets -------------------------------------------------------------------

#: Programming noise of the PCM preset (Nandakumar et al., ICECS 2019), units of g_max.
PCM_PROGRAMMING = ProgrammingNoise([0.2635 / 25.0, 1.9650 / 25.0, -1.1731 / 25.0])
#: Drift of the PCM preset (Nandakumar et al., ICECS 2019; see `Drift`).
PCM_DRIFT = Drift(nu_mean=(0.0244, -0.0155, 0.049, 0.1), nu_sd=(-0.0059, -0.0125, 0.008, 0.045), t0=20.0)
#: 1/f read noise of the PCM preset (see `ReadNoise`).
PCM_READ = ReadNoise(sd=0.0088, exponent=0.65, max_sd=0.2, t_read=250e-9)

#: Programming noise of the RRAM preset: largest between the extreme states.
RRAM_PROGRAMMING = ProgrammingNoise([0.01, 0.12, -0.12])
#: Stuck devices of the RRAM preset.
RRAM_STUCK = StuckDevices(at_min=0.01, at_max=0.005)
#: g_min / g_max of the RRAM preset: 1 uS to 40 uS, as NeuRRAM.
RRAM_G_MIN = 1.0 / 40.0


@noise_lib.register_noise("pcm")
class PCM(DeviceModel):
    """A phase-change-memory-like device: programming noise, drift, read noise.

    Weights on differential pairs with `g_min = 0` (a RESET device), as in
    Joshi et al., Nature Communications 11:2473 (2020), with the statistical
    model of Nandakumar et al., "Phase-change memory models for deep learning
    training and inference", ICECS 2019 (also IBM aihwkit's
    `PCMLikeNoiseModel`, `g_max` = 25 uS):

    - programming noise `sd = 0.2635 + 1.9650 g - 1.1731 g**2` uS, here in
      units of `g_max` (`PCM_PROGRAMMING`);
    - drift `g(t) = g0 ((t + 20 s) / 20 s) ** -nu`, `nu` per device normal
      with a mean of 0.049 to 0.1 and an sd of 0.008 to 0.045, larger at low
      conductance (`PCM_DRIFT`, see `Drift`);
    - 1/f read noise, relative sd `min(0.0088 g**-0.65, 0.2) *
      sqrt(log((t + t_read) / (2 t_read)))`, `t_read` = 250 ns (`PCM_READ`).

    The arguments are those of `DeviceModel` with these defaults. For
    training, `perturbation` reads at `time`, by default one year after
    programming (the end of the horizon `deployment_sweep` evaluates by
    default), drift compensated, so the network learns the drift spread and
    the accumulated read noise as well as the programming error.

    Example:

    >>> robust = mat_keras.wrap(model, noise="pcm", seed=0)
    >>> mat_keras.noise.get("pcm").with_time(365 * 86400.0)
    """

    def __init__(
        self,
        programming=PCM_PROGRAMMING,
        stuck=None,
        drift=PCM_DRIFT,
        read=PCM_READ,
        levels=None,
        g_min=0.0,
        time=YEAR,
        compensation=True,
    ):
        super().__init__(programming, stuck, drift, read, levels, g_min, time, compensation)


@noise_lib.register_noise("rram")
class RRAM(DeviceModel):
    """A resistive-RAM-like device: state-dependent programming noise, stuck devices, no drift.

    Differential pairs from 1 uS to 40 uS (`g_min = 1/40` of `g_max`), the
    range of the NeuRRAM chip (Wan et al., Nature 608:504, 2022).
    Programming noise after write-verify, largest between the extreme
    states: `sd = 0.01 + 0.12 g (1 - g)` in units of `g_max` (1.6 uS at mid
    range); 1 % of devices stuck at `g_min` and 0.5 % at `g_max`. These two
    are illustrative values of our choosing, inside the ranges reported for
    HfOx RRAM arrays (stuck-at fault rates from well below 1 % for verified
    arrays to several % for unverified ones), not a fit to one chip; measure
    your own devices and use `mat_keras.measured.Measured`.

    The arguments are those of `DeviceModel` with these defaults.

    Example:

    >>> mat_keras.noise.get("rram")
    """

    def __init__(
        self,
        programming=RRAM_PROGRAMMING,
        stuck=RRAM_STUCK,
        drift=None,
        read=None,
        levels=None,
        g_min=RRAM_G_MIN,
        time=0.0,
        compensation=True,
    ):
        super().__init__(programming, stuck, drift, read, levels, g_min, time, compensation)
