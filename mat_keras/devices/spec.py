"""The device spec: conductance range, programmable levels, mapping scheme.

One `Device` describes the memristor a network is mapped onto, for the
exporter (`mat_keras.export`, conductances in siemens) and for the device
models (`mat_keras.devices.DeviceModel`, whose spec is in units of `g_max`).
A weight `w` of a tensor with scale `s` (see `mat_keras.devices.mapping`) is
stored as conductances between the device's lowest level `g_lo` and highest
level `g_hi` (for uniform or no levels these are `g_min` and `g_max`):

- `"differential"`: a pair of devices per weight, G+ and G-. The magnitude
  `|w| / s` is mapped linearly onto `[g_lo, g_hi]` and programmed into G+
  for a positive weight, G- for a negative one; the unused side stays at the
  lowest level. The chip reads `w = s * (G+ - G-) / (g_hi - g_lo)`.
- `"offset"`: one device per weight. `w / s` in [-1, 1] is mapped linearly
  onto `[g_lo, g_hi]`, and every crossbar row also drives a reference column
  held at the mid conductance `g_ref = (g_lo + g_hi) / 2`, whose current is
  subtracted from every column: `w = s * 2 * (G - g_ref) / (g_hi - g_lo)`.
  Half the devices of the differential scheme, at the price of twice the
  level step in weight units. With an even number of uniform levels, `g_ref`
  lies between two levels (a trimmed reference device or a resistor), and
  zero is not a representable weight. The reference is treated as exact
  (no programming noise, no drift).

The normalised view of a spec is what the mapping computes with: the levels
mapped onto [0, 1] (`normalised_levels`, `g_lo` -> 0, `g_hi` -> 1) and the
range in units of `g_max` (`relative_range`).
"""

import numpy as np

from mat_keras.devices.levels import Levels, check_count
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_non_negative

SCHEMES = ("differential", "offset")

# Measured levels may sit on g_min or g_max up to float rounding.
_RANGE_TOLERANCE = 1e-9


def _check_conductance(value, name):
    return check_non_negative(value, name, "conductance in siemens")


class Device:
    """A memristive device: conductance range, programmable levels, scheme.

    Args:
        g_min: lowest conductance (siemens for the exporter), finite, >= 0.
        g_max: highest conductance, above `g_min`.
        levels: number of programmable levels (an int >= 2, spread uniformly
            from `g_min` to `g_max`); an explicit list (or `Levels`) of
            measured level conductances, strictly increasing, inside
            `[g_min, g_max]`; or None for analog programming (any
            conductance of the range; device models only: the exporter
            needs levels).
        scheme: `"differential"` (G+/G- pair per weight) or `"offset"` (one
            device per weight and a reference column at mid conductance); see
            the module docstring.

    Raises:
        InvalidArgumentError: any argument out of range, with one sentence
            naming it.

    Example:

    >>> device = Device(g_min=1e-6, g_max=40e-6, levels=16)
    >>> device.levels.count, device.weight_step
    (16, 0.06666666666666667)
    >>> Device.from_config(device.get_config()) == device
    True
    """

    def __init__(self, g_min, g_max, levels, scheme="differential"):
        self.g_min = _check_conductance(g_min, "g_min")
        self.g_max = _check_conductance(g_max, "g_max")
        if not self.g_min < self.g_max:
            raise InvalidArgumentError(
                f"g_min must be below g_max, got g_min={g_min!r} >= g_max={g_max!r}."
            )
        if scheme not in SCHEMES:
            raise InvalidArgumentError(
                f"scheme must be one of {', '.join(SCHEMES)}; got {scheme!r}."
            )
        self.scheme = scheme
        self.levels = self._resolve_levels(levels)

    def _resolve_levels(self, levels):
        if levels is None:
            return None
        if isinstance(levels, (int, np.integer)) and not isinstance(levels, bool):
            if levels < 2:
                raise InvalidArgumentError(f"levels must be at least 2, got {levels}.")
            return Levels.uniform(self.g_min, self.g_max, check_count(levels))
        if isinstance(levels, Levels):
            values = levels.values
        elif isinstance(levels, (list, tuple, np.ndarray)):
            values = levels
        else:
            raise InvalidArgumentError(
                "levels must be an integer >= 2 or a list of measured "
                f"conductances in siemens, got {levels!r}."
            )
        resolved = Levels(values, name="levels")
        if np.any(resolved.values < 0):
            raise InvalidArgumentError("Measured levels must be non-negative conductances.")
        slack = _RANGE_TOLERANCE * self.g_max
        if resolved.low < self.g_min - slack or resolved.high > self.g_max + slack:
            raise InvalidArgumentError(
                f"Measured levels must lie within [g_min, g_max] = [{self.g_min!r}, "
                f"{self.g_max!r}], got {resolved.low!r} to {resolved.high!r}."
            )
        return resolved

    @property
    def num_levels(self):
        """The number of programmable levels (None for analog programming)."""
        return None if self.levels is None else self.levels.count

    @property
    def g_lo(self):
        """The lowest programmable conductance."""
        return self.g_min if self.levels is None else self.levels.low

    @property
    def g_hi(self):
        """The highest programmable conductance."""
        return self.g_max if self.levels is None else self.levels.high

    @property
    def g_ref(self):
        """The reference-column conductance of the offset scheme, else None."""
        if self.scheme != "offset":
            return None
        return (self.g_lo + self.g_hi) / 2.0

    @property
    def relative_range(self):
        """`(g_lo, g_hi)` in units of `g_max`: where the mapping puts weights."""
        return self.g_lo / self.g_max, self.g_hi / self.g_max

    @property
    def normalised_levels(self):
        """The levels mapped onto [0, 1] (`g_lo` -> 0, `g_hi` -> 1), or None."""
        return None if self.levels is None else self.levels.normalised()

    @property
    def weight_step(self):
        """The largest distance between representable weights, in units of the scale.

        The round-trip error of a weight inside the clipping range is at most
        half of it times the scale; 0 for analog programming.
        """
        gap = 0.0 if self.levels is None else self.normalised_levels.max_gap
        return gap if self.scheme == "differential" else 2.0 * gap

    @property
    def devices_per_weight(self):
        """2 for the differential scheme, 1 for offset (plus a reference column)."""
        return 2 if self.scheme == "differential" else 1

    def get_config(self):
        """Returns a JSON-friendly dict; `Device.from_config` inverts it.

        Measured levels are listed; uniform levels are given by their count.
        """
        levels = self.levels
        if levels is not None:
            levels = levels.count if levels.is_uniform else levels.values.tolist()
        return {
            "g_min": self.g_min,
            "g_max": self.g_max,
            "levels": levels,
            "scheme": self.scheme,
        }

    @classmethod
    def from_config(cls, config):
        """Builds a device from a `get_config` dict.

        Raises:
            InvalidArgumentError: a key is missing or a value is invalid.
        """
        try:
            return cls(
                config["g_min"],
                config["g_max"],
                config["levels"],
                config.get("scheme", "differential"),
            )
        except (KeyError, TypeError) as error:
            raise InvalidArgumentError(
                f"A device config needs g_min, g_max and levels; got {config!r}."
            ) from error

    def __eq__(self, other):
        return isinstance(other, Device) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(repr(self))

    def __repr__(self):
        levels = self.get_config()["levels"]
        return (
            f"Device(g_min={self.g_min!r}, g_max={self.g_max!r}, "
            f"levels={levels!r}, scheme={self.scheme!r})"
        )
