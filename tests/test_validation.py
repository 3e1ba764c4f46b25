"""mat_keras.validation: every check accepts what it should, and refuses in one sentence."""

import math

import numpy as np
import pytest

from mat_keras import validation
from mat_keras.errors import InvalidArgumentError

NAN, INF = float("nan"), float("inf")


def _refuses(check, value, *args, match=None, **kwargs):
    with pytest.raises(InvalidArgumentError, match=match) as info:
        check(value, *args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    return message


# check_number


@pytest.mark.parametrize("value,expected", [(0.5, 0.5), (3, 3.0), ("2.5", 2.5), (np.float32(0.25), 0.25), (-1, -1.0)])
def test_check_number_accepts_finite_numbers(value, expected):
    result = validation.check_number(value, "x")
    assert result == expected and isinstance(result, float)


@pytest.mark.parametrize("value", [True, False, None, "abc", [1.0]])
def test_check_number_refuses_non_numbers(value):
    assert "x must be a number" in _refuses(validation.check_number, value, "x")


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_check_number_refuses_non_finite(value):
    assert "x must be finite" in _refuses(validation.check_number, value, "x")


def test_check_number_bounds():
    assert validation.check_number(0.0, "x", minimum=0.0) == 0.0
    _refuses(validation.check_number, -0.1, "x", minimum=0.0, match="x must be >= 0")
    _refuses(validation.check_number, 0.0, "x", minimum=0.0, strict=True, match="x must be > 0")
    assert validation.check_number(1e-9, "x", minimum=0.0, strict=True) == 1e-9


# check_non_negative and check_positive


@pytest.mark.parametrize("value", [0, 0.0, 2, "0.5", np.float64(1e-6)])
def test_check_non_negative_accepts(value):
    assert validation.check_non_negative(value, "sd") == float(value)


@pytest.mark.parametrize("value", [-1, -1e-12, NAN, INF, True, None, "x"])
def test_check_non_negative_refuses(value):
    message = _refuses(validation.check_non_negative, value, "sd")
    assert message.startswith("sd must be a")


def test_check_non_negative_names_its_unit():
    _refuses(validation.check_non_negative, -1, "time", "number of seconds",
             match="time must be a finite number of seconds >= 0, got -1.")


@pytest.mark.parametrize("value", [1e-9, 1, "3"])
def test_check_positive_accepts(value):
    assert validation.check_positive(value, "tau") == float(value)


@pytest.mark.parametrize("value", [0, 0.0, -1, NAN, INF, False, "zero"])
def test_check_positive_refuses(value):
    assert _refuses(validation.check_positive, value, "tau").startswith("tau must be a")


def test_check_positive_message():
    _refuses(validation.check_positive, 0, "window_ms", "number of milliseconds",
             match="window_ms must be a finite number of milliseconds > 0, got 0.")


# is_integer and check_integer


@pytest.mark.parametrize("value,expected", [
    (1, True), (0, True), (-3, True), (np.int64(5), True), (np.uint8(2), True),
    (True, False), (np.bool_(True), False), (2.0, False), ("2", False), (None, False),
])
def test_is_integer(value, expected):
    assert validation.is_integer(value) is expected


@pytest.mark.parametrize("value", [1, 10, np.int32(7)])
def test_check_integer_accepts_counts(value):
    result = validation.check_integer(value, "draws")
    assert result == int(value) and type(result) is int


@pytest.mark.parametrize("value", [True, 2.0, 2.5, "3", None, NAN, INF])
def test_check_integer_refuses_non_integers(value):
    assert "draws must be an integer >= 1" in _refuses(validation.check_integer, value, "draws")


def test_check_integer_bounds():
    _refuses(validation.check_integer, 0, "draws", match="draws must be >= 1, got 0.")
    assert validation.check_integer(0, "epochs", minimum=0) == 0
    _refuses(validation.check_integer, -1, "epochs", minimum=0, match="epochs must be >= 0, got -1.")
    _refuses(validation.check_integer, 1, "steps", minimum=2, match="steps must be >= 2")
    assert validation.check_integer(-5, "offset", minimum=None) == -5
    _refuses(validation.check_integer, 1.5, "offset", minimum=None, match="offset must be an integer, got 1.5.")
    _refuses(validation.check_integer, 9, "level", maximum=8, match="level must be <= 8, got 9.")


def test_cli_option_wording():
    # The CLIs name options with their dashes: the message keeps the name as given.
    _refuses(validation.check_integer, 0, "--epochs", match="--epochs must be >= 1")


# check_seed


@pytest.mark.parametrize("seed", [0, 1, validation.MAX_SEED, np.int64(42), 2**32 - 1])
def test_check_seed_accepts_0_to_max(seed):
    result = validation.check_seed(seed)
    assert result == int(seed) and type(result) is int


def test_check_seed_none():
    assert validation.check_seed(None) is None
    _refuses(validation.check_seed, None, allow_none=False,
             match=r"seed must be an integer from 0 to 4294967295, got None\.")


@pytest.mark.parametrize("seed", [-1, 2**32, True, 1.0, "0", NAN, INF])
def test_check_seed_refuses(seed):
    message = _refuses(validation.check_seed, seed)
    assert message.startswith("seed must be an integer from 0 to 4294967295 or None")


def test_check_seed_names_the_option():
    _refuses(validation.check_seed, -1, "--seed", allow_none=False, match="--seed must be an integer from 0 to")


# check_fraction


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, "0.25"])
def test_check_fraction_accepts(value):
    assert validation.check_fraction(value, "at_min") == float(value)


@pytest.mark.parametrize("value", [-0.01, 1.01, NAN, INF, -INF, True, None, "half"])
def test_check_fraction_refuses(value):
    assert _refuses(validation.check_fraction, value, "at_min").startswith("at_min must be a fraction")


def test_max_seed_is_32_bits():
    assert validation.MAX_SEED == 2**32 - 1 and math.log2(validation.MAX_SEED + 1) == 32
