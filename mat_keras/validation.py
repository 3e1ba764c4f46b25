"""Argument checks: one sentence per bad value, the same sentence everywhere.

Every public function of mat-keras, the zoo, the exporter and the CLIs checks
its numbers here, as Keras's `utils/argument_validation.py` does, so that a
bad count, seed, fraction or noise level fails with the same kind of message
wherever it is given. Each check returns the value converted (a float or an
int), so a caller writes `self.sd = check_non_negative(sd, "sd")`.
"""

import math
import numbers

import numpy as np

from mat_keras.errors import InvalidArgumentError

# The largest seed a backend's generator takes (`keras.random.SeedGenerator`
# folds seeds into 32 bits on TensorFlow and JAX).
MAX_SEED = 2**32 - 1


def _to_float(value, name, unit):
    """`float(value)`; a bool or a non-number is an InvalidArgumentError naming `unit`."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a {unit}, got {value!r}.") from None


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


def check_positive(value, name, unit="number"):
    """Returns `value` as a float after checking it is a finite number > 0.

    Args:
        value: the value to check.
        name: the argument's name, for the message.
        unit: what the number is, for the message.

    Returns:
        `float(value)`.

    Raises:
        InvalidArgumentError: a bool, not a number, zero, negative or non-finite.

    Example:

    >>> check_positive(5e-3, "tau_syn")
    0.005
    """
    number = _to_float(value, name, unit)
    if not math.isfinite(number) or number <= 0:
        raise InvalidArgumentError(f"{name} must be a finite {unit} > 0, got {value!r}.")
    return number


def is_integer(value):
    """True for an int or numpy integer (bools excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_integer(value, name, minimum=1, maximum=None):
    """Returns `value` as an int after checking it is an integer in range.

    Counts (draws, epochs, units, batch sizes, levels) are integers: a float
    such as 2.0 is refused rather than truncated, so that 2.5 never silently
    becomes 2.

    Args:
        value: the value to check.
        name: the argument's name, for the message.
        minimum: the smallest value allowed (None: no bound).
        maximum: the largest value allowed (None: no bound).

    Returns:
        `int(value)`.

    Raises:
        InvalidArgumentError: not an integer, a bool, or out of range.

    Example:

    >>> check_integer(10, "draws")
    10
    >>> check_integer(0, "draws")
    Traceback (most recent call last):
    InvalidArgumentError: draws must be >= 1, got 0.
    >>> check_integer(2.0, "draws")
    Traceback (most recent call last):
    InvalidArgumentError: draws must be an integer >= 1, got 2.0.
    """
    if not is_integer(value):
        bound = "" if minimum is None else f" >= {minimum}"
        raise InvalidArgumentError(f"{name} must be an integer{bound}, got {value!r}.")
    # An integer out of range: the message names only the bound it missed
    # (the CLIs' options are integers already, so "must be >= 1" is the news).
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(f"{name} must be <= {maximum}, got {value!r}.")
    return int(value)


def check_seed(seed, name="seed", allow_none=True):
    """Returns `seed` as an int (or None) after checking it is a usable seed.

    A seed is an integer from 0 to `MAX_SEED`; None (when allowed) means
    "unseeded". The library, the zoo and the CLIs accept the same seeds.

    Args:
        seed: the value to check.
        name: the argument's name, for the message.
        allow_none: whether None is accepted.

    Returns:
        `int(seed)`, or None.

    Raises:
        InvalidArgumentError: not an integer, negative or too large.

    Example:

    >>> check_seed(0)
    0
    >>> check_seed(-1)
    Traceback (most recent call last):
    InvalidArgumentError: seed must be an integer from 0 to 4294967295 or None, got -1.
    """
    if seed is None and allow_none:
        return None
    if not is_integer(seed) or not 0 <= seed <= MAX_SEED:
        alternative = " or None" if allow_none else ""
        raise InvalidArgumentError(
            f"{name} must be an integer from 0 to {MAX_SEED}{alternative}, got {seed!r}."
        )
    return int(seed)


def check_fraction(value, name):
    """Returns `value` as a float after checking it lies in [0, 1].

    Args:
        value: the value to check.
        name: the argument's name, for the message.

    Returns:
        `float(value)`.

    Raises:
        InvalidArgumentError: not a number, or outside [0, 1].

    Example:

    >>> check_fraction(0.01, "at_min")
    0.01
    """
    number = _to_float(value, name, "fraction")
    if not 0.0 <= number <= 1.0:
        raise InvalidArgumentError(f"{name} must be a fraction in [0, 1], got {value!r}.")
    return number


def check_labels(x, y, num_classes, name="y"):
    """Checks that `y` can train or score a classifier of `num_classes` with a sparse loss.

    The sparse cross-entropy takes integer labels from 0 to `num_classes - 1`;
    a float label or one out of range would otherwise train silently wrong
    (or fail deep inside the loss), and `x` and `y` of different lengths
    would fail inside the batching.

    Args:
        x: the inputs (anything with a length).
        y: the labels.
        num_classes: the model's number of outputs.
        name: how the labels are called, for the message.

    Raises:
        InvalidArgumentError: lengths differ, or the labels are not integers
            in `[0, num_classes)`.

    Example:

    >>> check_labels(np.zeros((3, 4)), np.array([0, 1, 2]), num_classes=10)
    """
    y = np.asarray(y)
    check_same_length(x, y, name)
    if not np.issubdtype(y.dtype, np.integer):
        raise InvalidArgumentError(
            f"{name} holds {y.dtype} labels; the sparse cross-entropy needs integer class indices."
        )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise InvalidArgumentError(
            f"{name} holds labels from {y.min()} to {y.max()}, outside the {num_classes} classes "
            f"0..{num_classes - 1}."
        )


def check_same_length(x, y, name="y"):
    """Checks that inputs `x` and labels `y` hold the same number of examples.

    Args:
        x: the inputs (anything with a length).
        y: the labels (anything with a length).
        name: how the labels are called, for the message.

    Raises:
        InvalidArgumentError: the lengths differ.

    Example:

    >>> check_same_length(np.zeros((3, 4)), np.zeros((3, 10)))
    """
    if len(x) != len(y):
        raise InvalidArgumentError(f"{name}: the inputs hold {len(x)} examples but the labels {len(y)}.")
