"""A device model from what a user gives: an alias, a number, a CSV, a JSON config.

The deployment sweep (`mat_keras.deployment_sweep`), the exporter's
re-import (`mat_keras.export.apply_tables`) and the CLIs take a device in any
of these forms.
"""

import json
import os

from mat_keras.devices.measured import MeasuredDevice
from mat_keras.devices.model import DeviceModel
from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.registry import get


def resolve_device(identifier):
    """Resolves a device (or any weight noise applied once per programming).

    Args:
        identifier: a `NoiseModel` (a `DeviceModel` or any weight noise); an
            alias (`"pcm"`, `"rram"`, `"gaussian"`, `"measured"`, ...); a
            number (a Gaussian sd); the path of a measurements CSV
            (`mat_keras.devices.measured`); a JSON object, as a string or a
            `.json` file, or a dict: a noise config
            (`{"class_name": "pcm", "config": {...}}`) or the arguments of a
            `DeviceModel` (`{"programming": 0.02, "drift": {"nu_mean": 0.05}}`).

    Returns:
        A `NoiseModel`.

    Raises:
        InvalidArgumentError: nothing of the above.

    Example:

    >>> resolve_device('{"programming": 0.02, "read": 0.01}')
    DeviceModel(programming=..., read=..., ...)
    """
    if isinstance(identifier, str):
        text = identifier.strip()
        if text.lower().endswith(".csv"):
            return MeasuredDevice.from_csv(text)
        if text.lower().endswith(".json"):
            if not os.path.isfile(text):
                raise InvalidArgumentError(f"No device file at {text!r}.")
            with open(text) as handle:
                text = handle.read()
        if text.startswith("{"):
            try:
                identifier = json.loads(text)
            except json.JSONDecodeError as error:
                raise InvalidArgumentError(f"The device is not valid JSON: {error}.") from None
    if isinstance(identifier, dict) and "class_name" not in identifier:
        try:
            return DeviceModel.from_config(identifier)
        except TypeError as error:
            raise InvalidArgumentError(f"Not a device model config: {error}.") from None
    device = get(identifier)
    if device is None:
        raise InvalidArgumentError("A device model is needed, got None.")
    return device
