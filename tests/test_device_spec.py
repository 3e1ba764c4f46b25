"""mat_keras.devices.Device (also export.Device): validation, serialisation, derived quantities."""

import json

import numpy as np
import pytest

from mat_keras.errors import InvalidArgumentError
from mat_keras.export import Device


def test_uniform_device():
    device = Device(g_min=1e-6, g_max=40e-6, levels=16)
    np.testing.assert_allclose(device.levels.values[[0, 1, -1]], [1e-6, 1e-6 + 39e-6 / 15, 40e-6])
    assert device.weight_step == pytest.approx(1 / 15)
    assert device.g_ref is None and device.devices_per_weight == 2


def test_offset_device_has_a_mid_reference_and_twice_the_step():
    device = Device(1e-6, 40e-6, 17, scheme="offset")
    assert device.g_ref == pytest.approx(20.5e-6)
    assert device.weight_step == pytest.approx(2 / 16)
    assert device.levels.values[8] == pytest.approx(device.g_ref)  # odd count: 0 is a level


def test_measured_levels():
    measured = [1.2e-6, 5e-6, 14e-6, 38e-6]
    device = Device(1e-6, 40e-6, measured)
    np.testing.assert_allclose(device.levels.values, measured)
    assert device.g_lo == 1.2e-6 and device.g_hi == 38e-6
    # The largest normalised gap: (38 - 14) / (38 - 1.2).
    assert device.weight_step == pytest.approx(24 / 36.8)


@pytest.mark.parametrize(
    "device",
    [
        Device(1e-6, 40e-6, 16),
        Device(0.0, 1e-4, 4, scheme="offset"),
        Device(1e-6, 40e-6, [1e-6, 2.5e-6, 9e-6, 40e-6]),
    ],
    ids=["uniform", "offset", "measured"],
)
def test_config_round_trips_through_json(device):
    config = json.loads(json.dumps(device.get_config()))
    assert Device.from_config(config) == device


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"g_min": 40e-6, "g_max": 1e-6, "levels": 16}, "g_min must be below g_max"),
        ({"g_min": 1e-6, "g_max": 1e-6, "levels": 16}, "g_min must be below g_max"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": 1}, "levels must be at least 2"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": 0}, "levels must be at least 2"),
        ({"g_min": -1e-6, "g_max": 40e-6, "levels": 16}, "g_min must be a finite conductance in siemens >= 0"),
        ({"g_min": float("nan"), "g_max": 40e-6, "levels": 16}, "finite"),
        ({"g_min": 1e-6, "g_max": float("inf"), "levels": 16}, "finite"),
        ({"g_min": "a", "g_max": 40e-6, "levels": 16}, "conductance in siemens"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": 16, "scheme": "single"}, "scheme must be one of"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": [2e-6]}, "at least 2"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": [5e-6, 2e-6]}, "strictly increasing"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": [0.5e-6, 2e-6]}, r"within \[g_min, g_max\]"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": 16.5}, "integer >= 2 or a list"),
        ({"g_min": 1e-6, "g_max": 40e-6, "levels": 70000}, "between 2 and 65536"),
    ],
)
def test_bad_devices_are_one_sentence_errors(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        Device(**kwargs)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


def test_from_config_missing_key():
    with pytest.raises(InvalidArgumentError, match="needs g_min, g_max and levels"):
        Device.from_config({"g_min": 1e-6})
