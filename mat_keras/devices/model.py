"""Device models: weights stored as the conductances of memristor pairs.

A `DeviceModel` simulates what a crossbar does to a weight tensor, in the
order a chip goes through it:

1. **Mapping** (`mat_keras.devices.mapping`, the exporter's, differential
   scheme): the tensor's scale is `s = max|w|`; a weight's magnitude
   `|w| / s` in [0, 1] is the normalised conductance `u` of one device of a
   pair, G+ for a positive weight, G- for a negative one; the other device
   stays at the lowest conductance. With `levels`, `u` first snaps to the
   nearest of the device's programmable levels. The model's device spec
   (`DeviceModel.device`, a `mat_keras.devices.Device`) holds the range and
   the levels; conductances are expressed in units of `g_max`:
   `g = g_min + u * (1 - g_min)`, so `g_min` here is the ratio of the lowest
   to the highest conductance.
2. **Programming**, once per programming: each device (both of a pair) lands
   near its target with an error (`ProgrammingNoise`, or the measured
   distribution of its level, `mat_keras.devices.Measured`); some devices
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
programming; the PCM preset, `mat_keras.devices.presets`: one year), so
memristor-aware training (`mat_keras.wrap(model, noise="pcm")`) trains
against a new chip at every step.
`mat_keras.deployment_sweep` instead programs once per draw and reads at
several times.

Everything runs on `keras.ops` and `keras.random`: every backend, inside
compiled training.
"""

import typing

import numpy as np
from keras import ops

from mat_keras.devices.components import Drift, ProgrammingNoise, ReadNoise, StuckDevices
from mat_keras.devices.levels import Levels
from mat_keras.devices.mapping import from_conductances_op, to_conductances_op
from mat_keras.devices.spec import Device
from mat_keras.devices.units import check_time
from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.base import NoiseModel
from mat_keras.noise.registry import COMPONENT, get, register, serialize
from mat_keras.validation import check_number, is_integer

# Sub-streams of one draw: an integer seed gives each kind of randomness its
# own stream, so programming noise and drift exponents are independent.
_PROGRAM, _DRIFT, _STUCK, _REFERENCE, _READ, _CALIBRATE = range(6)

#: The slots of a device model: argument name, attribute, usual component class.
SLOTS = (
    ("programming", "programming", ProgrammingNoise),
    ("stuck", "stuck", StuckDevices),
    ("drift", "drift", Drift),
    ("read", "read_noise", ReadNoise),
)


def _sub_seed(seed, stream):
    """A seed for one kind of draw: generators advance, integers are offset."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed * 7 + stream * 1_000_003
    return seed


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


# -- the device model --------------------------------------------------------


class Programmed(typing.NamedTuple):
    """One weight tensor as programmed on a chip (see `DeviceModel.program`).

    Attributes:
        conductances: programmed conductances at time 0, shape
            `(2,) + weights.shape` (G+, G-), in units of `g_max`.
        exponents: drift exponent of every device (zeros without drift).
        scale: the tensor's scale `max|w|`.
        device: the device spec the conductances belong to (their range and
            levels, in units of `g_max`).
        reference: the calibration read right after programming (for drift
            compensation), or None.
    """

    conductances: typing.Any
    exponents: typing.Any
    scale: typing.Any
    device: typing.Any
    reference: typing.Any = None


def _device_spec(levels, g_min):
    """Returns the device spec (units of `g_max`) of the `levels` and `g_min` arguments."""
    if isinstance(levels, dict):
        levels = Levels.from_config(levels)
    if levels is None or is_integer(levels):
        return Device(g_min, 1.0, levels)
    explicit = levels if isinstance(levels, Levels) else Levels(levels, name="levels")
    if explicit.low < 0:
        raise InvalidArgumentError("Explicit levels are conductances and must be >= 0.")
    if g_min:
        raise InvalidArgumentError(
            "Give g_min or explicit conductance levels, not both: the lowest level is g_min."
        )
    if explicit.is_uniform:
        return Device(explicit.low, explicit.high, explicit.count)
    return Device(explicit.low, explicit.high, explicit)


@register("device")
class DeviceModel(NoiseModel):
    """A memristive device: mapping, programming, stuck devices, drift, read noise.

    See the module docstring for the sequence. Every part is optional; a
    model without parts stores the weights exactly (up to `levels`).

    Args:
        programming: `ProgrammingNoise` (or its sd, a number or polynomial
            coefficients), a `mat_keras.devices.Measured`, or None.
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
        given = {"programming": programming, "stuck": stuck, "drift": drift, "read": read}
        for name, attribute, default in SLOTS:
            component = get(given[name], COMPONENT, default, name)
            if component is not None and component.slot != name:
                raise InvalidArgumentError(
                    f"{name} must be a {name} component, got {component!r}, a {component.slot} component."
                )
            setattr(self, attribute, component)
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
        self.device = _device_spec(levels, self._g_min_argument)
        self.time = check_time(time)
        self.compensation = bool(compensation)

    @property
    def levels(self):
        """The programmable levels normalised onto [0, 1], or None (analog)."""
        return self.device.normalised_levels

    @property
    def g_min(self):
        """The lowest conductance, in units of `g_max`."""
        return self.device.relative_range[0]

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
        target, scale = to_conductances_op(weights, self.device)
        return self.program_conductances(target, scale, seed, calibrate)

    def program_conductances(self, target, scale=1.0, seed=None, calibrate=True, device=None):
        """Programs devices to target conductances (units of `g_max`), as `program` does after mapping.

        For callers that map weights themselves (the exporter's tables).

        Args:
            target: target conductances in units of `g_max`, shaped as
                `mat_keras.devices.mapping.to_conductances_op` returns them
                (G+ and G-, or the offset scheme's single device), on the
                levels of `device`.
            scale: the weights' scale.
            seed: see `program`.
            calibrate: see `program`.
            device: the spec the targets belong to; None for the model's
                own (`self.device`). A measured device draws the samples of
                the level index a target has in this spec.

        Returns:
            A `Programmed`, read back by `device`'s mapping.
        """
        device = self.device if device is None else device
        target = ops.convert_to_tensor(target)
        conductances = target
        if self.programming is not None:
            conductances = self.programming.sample(target, _sub_seed(seed, _PROGRAM), device)
        exponents = ops.zeros_like(conductances)
        if self.drift is not None:
            exponents = self.drift.exponents(target, _sub_seed(seed, _DRIFT))
        if self.stuck is not None:
            conductances, stuck = self.stuck.apply(conductances, _sub_seed(seed, _STUCK), device)
            exponents = ops.where(stuck, ops.zeros_like(exponents), exponents)
        state = Programmed(conductances, exponents, ops.convert_to_tensor(scale, target.dtype), device)
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
        return calibration_signal(self._weights(state, time, seed))

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
        weights = self._weights(state, time, seed)
        compensation = self.compensation if compensation is None else compensation
        if compensation:
            weights = weights * self.compensation_factor(state, time, seed)
        return weights

    def _weights(self, state, time, seed):
        """The weights the conductances read at `time` stand for, uncompensated."""
        return from_conductances_op(self.conductances(state, time, seed), state.scale, state.device)

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
        config = {name: serialize(getattr(self, attribute)) for name, attribute, _ in SLOTS}
        return {
            **config,
            "levels": levels,
            "g_min": self._g_min_argument,
            "time": self.time,
            "compensation": self.compensation,
        }
