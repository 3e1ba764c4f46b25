"""Memristive devices: the spec, the mapping, device models, presets, units.

A reader finds a device in one place:

- `spec`: `Device`, the one device spec (conductance range, levels, scheme,
  and its normalised view), used by the exporter and the device models;
- `levels`: `Levels`, discrete values with nearest-level lookup (numpy and
  `keras.ops`);
- `mapping`: the one weight <-> conductance mapping (numpy and `keras.ops`
  twins);
- `components`: the parts of a device model (`ProgrammingNoise`,
  `StuckDevices`, `Drift`, `ReadNoise`);
- `model`: `DeviceModel`, a device as a noise model (program, drift, read);
- `presets`: `PCM`, `RRAM`;
- `measured`: `Measured`, `MeasuredDevice`: programming drawn from a
  device's measured levels (CSV);
- `units`: times after programming (`parse_time`, `format_time`, `YEAR`, ...);
- `resolve`: `resolve_device`, a device from an alias, a CSV or JSON.

Device models and components register in the noise registry
(`mat_keras.noise.get`), so `mat_keras.wrap(model, noise="pcm")` trains
against a PCM chip.

Example:

>>> from mat_keras import devices
>>> chip = devices.Device(g_min=1e-6, g_max=40e-6, levels=16)
>>> pcm = devices.PCM().with_time(devices.DAY)
"""

from mat_keras.devices.components import Component, Drift, ProgrammingNoise, ReadNoise, StuckDevices
from mat_keras.devices.levels import Levels
from mat_keras.devices.measured import Measured, MeasuredDevice
from mat_keras.devices.model import DeviceModel, Programmed, calibration_signal
from mat_keras.devices.presets import PCM, RRAM
from mat_keras.devices.resolve import resolve_device
from mat_keras.devices.spec import SCHEMES, Device
from mat_keras.devices.units import DAY, HOUR, MINUTE, MONTH, YEAR, check_time, format_time, parse_time

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "MONTH",
    "PCM",
    "RRAM",
    "SCHEMES",
    "YEAR",
    "Component",
    "Device",
    "DeviceModel",
    "Drift",
    "Levels",
    "Measured",
    "MeasuredDevice",
    "ProgrammingNoise",
    "Programmed",
    "ReadNoise",
    "StuckDevices",
    "calibration_signal",
    "check_time",
    "format_time",
    "parse_time",
    "resolve_device",
]
