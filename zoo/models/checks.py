"""Argument checks shared by the zoo's model constructors: one sentence per bad value."""

import math

import numpy as np

from mat_keras.errors import InvalidArgumentError


def is_size(value):
    """True for a positive integer (bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def as_tuple(value):
    """Returns `value` as a tuple, or None when it is not iterable (a shape check's first step)."""
    try:
        return tuple(value)
    except TypeError:
        return None


def is_number(value):
    """True for a finite int or float (bools excluded)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def check_units(value, name):
    if not is_size(value):
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}.")


def check_positive(value, name):
    if not is_number(value) or not value > 0:
        raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}.")


def check_non_negative(value, name):
    if not is_number(value) or not value >= 0:
        raise InvalidArgumentError(f"{name} must be a non-negative number, got {value!r}.")


def check_num_classes(num_classes):
    if not is_size(num_classes) or num_classes < 2:
        raise InvalidArgumentError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
