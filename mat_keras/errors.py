"""Exceptions that mat-keras raises for bad input or missing resources, and the number check.

Every error the package raises on purpose derives from `MatKerasError`, so a
caller (the CLI in particular) can tell a user mistake, reported as one clear
sentence, from a bug, reported with its traceback.
"""


import math


class MatKerasError(Exception):
    """Base class of the errors mat-keras raises on purpose."""


class InvalidArgumentError(MatKerasError, ValueError):
    """An argument has a value the function cannot accept."""


class WrapError(MatKerasError, ValueError):
    """A layer or model cannot be wrapped with noisy weights."""


class NoNoisyLayersError(MatKerasError, ValueError):
    """A MAT callback or function was given a model without noisy layers."""


class DataUnavailableError(MatKerasError, RuntimeError):
    """A dataset is neither on disk nor downloadable from here."""


class ModelFileError(MatKerasError, OSError):
    """A model or weight file cannot be read."""


def check_number(value, name, minimum=None, strict=False):
    """Returns `value` as a finite float, optionally bounded below.

    Args:
        value: the value to check.
        name: the argument's name, for the message.
        minimum: None, or the smallest value allowed.
        strict: `minimum` itself is not allowed.

    Returns:
        `float(value)`.

    Raises:
        InvalidArgumentError: a bool, not a number, non-finite, or below
            the minimum.

    Example:

    >>> check_number(0.5, "nu_sd", minimum=0.0)
    0.5
    """
    number = _to_float(value, name, "number")
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}.")
    if minimum is not None and (number < minimum or (strict and number == minimum)):
        relation = ">" if strict else ">="
        raise InvalidArgumentError(f"{name} must be {relation} {minimum:g}, got {value!r}.")
    return number


def check_non_negative(value, name, unit="number"):
    """Returns `value` as a float after checking it is a finite number >= 0.

    One check for every non-negative quantity (noise sds, clip bounds, times,
    conductances), so they all fail with the same kind of sentence.

    Args:
        value: the value to check.
        name: the argument's name, for the message.
        unit: what the number is, for the message: "number", "number of
            seconds", "conductance in siemens", ...

    Returns:
        `float(value)`.

    Raises:
        InvalidArgumentError: a bool, not a number, negative or non-finite.

    Example:

    >>> check_non_negative("0.5", "sd")
    0.5
    >>> check_non_negative(-1, "time", "number of seconds")
    Traceback (most recent call last):
    InvalidArgumentError: time must be a finite number of seconds >= 0, got -1.
    """
    number = _to_float(value, name, unit)
    if not math.isfinite(number) or number < 0:
        raise InvalidArgumentError(f"{name} must be a finite {unit} >= 0, got {value!r}.")
    return number


def _to_float(value, name, unit):
    """`float(value)`; a bool or a non-number is an InvalidArgumentError naming `unit`."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a {unit}, got {value!r}.") from None
