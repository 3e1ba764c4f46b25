"""Shape helpers of the zoo's model constructors (numbers are checked by `mat_keras.validation`)."""

from mat_keras.validation import is_integer


def as_tuple(value):
    """Returns `value` as a tuple, or None when it is not iterable (a shape check's first step)."""
    try:
        return tuple(value)
    except TypeError:
        return None


def is_size(value):
    """True for a positive integer dimension (bools excluded)."""
    return is_integer(value) and value > 0
