"""A device model from what a user gives: an alias, a number, a CSV, a JSON config.

The deployment sweep (`mat_keras.deployment_sweep`), the exporter's
re-import (`mat_keras.export.apply_tables`) and the CLIs take a device in any
of these forms.
"""

import json

from mat_keras.devices.measured import MeasuredDevice
from mat_keras.devices.model import DeviceModel
from mat_keras.errors import InvalidArgumentError
from mat_keras.io_utils import read_text
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
        InvalidArgumentError: nothing of the above, or JSON that is not an
            object.
        InputFileError: a `.json` file that is missing, empty or not text.

    Example:

    >>> resolve_device('{"programming": 0.02, "read": 0.01}')
    DeviceModel(programming=..., read=..., ...)
    """
    if isinstance(identifier, str):
        identifier = _read_identifier(identifier.strip())
    if isinstance(identifier, dict) and "class_name" not in identifier:
        try:
            return DeviceModel.from_config(identifier)
        except TypeError as error:
            raise InvalidArgumentError(f"Not a device model config: {error}.") from None
    device = get(identifier)
    if device is None:
        raise InvalidArgumentError("A device model is needed, got None.")
    return device


def _read_identifier(text):
    """A string identifier: a CSV's device, a JSON object (text or file) as a dict, else the string."""
    source = "The device JSON"
    if text.lower().endswith(".csv"):
        return MeasuredDevice.from_csv(text)
    if text.lower().endswith(".json"):
        source = f"The device file '{text}'"
        text = read_text(text, "device file").strip()
    elif not text.startswith(("{", "[")):
        # An alias. An array is JSON too: refused below as not an object
        # rather than looked up as an alias.
        return text
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(f"{source} is not valid JSON: {error}.") from None
    if not isinstance(config, dict):
        raise InvalidArgumentError(
            f"{source} holds {'an array' if isinstance(config, list) else 'a single value'}; "
            "it must be a JSON object: a noise config "
            '({"class_name": ..., "config": ...}) or the arguments of a DeviceModel.'
        )
    return config
