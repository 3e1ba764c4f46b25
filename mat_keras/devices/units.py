"""Times after programming: seconds, the units tables and command lines use.

`parse_time` reads a number of seconds or a string with a unit (`"1h"`,
`"30d"`, `"1y"`); `format_time` writes a time back in its largest unit.

Example:

>>> parse_time("1d") == DAY
True
>>> format_time(30 * DAY)
'1 month'
"""

import re

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_non_negative

#: Seconds in a minute, an hour, a day, a month (30 days) and a year (365 days).
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
MONTH = 30 * DAY
YEAR = 365 * DAY

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "min": MINUTE,
    "h": HOUR,
    "hour": HOUR,
    "hours": HOUR,
    "d": DAY,
    "day": DAY,
    "days": DAY,
    "mo": MONTH,
    "month": MONTH,
    "months": MONTH,
    "y": YEAR,
    "yr": YEAR,
    "year": YEAR,
    "years": YEAR,
}
# Largest first: `format_time` writes a time in the first unit it reaches.
_NAMES = ((YEAR, "year"), (MONTH, "month"), (DAY, "day"), (HOUR, "h"), (MINUTE, "min"))
_PLURAL = ("year", "month", "day")
_TIME = re.compile(r"^\s*([0-9.eE+-]+)\s*([a-zA-Z]*)\s*$")


def check_time(value, name="time"):
    """Returns a time after programming, in seconds, as a float >= 0.

    Args:
        value: a number of seconds.
        name: the argument's name, for the message.

    Raises:
        InvalidArgumentError: negative, non-finite or not a number.

    Example:

    >>> check_time(60)
    60.0
    """
    return check_non_negative(value, name, "number of seconds")


def parse_time(value, name="each time"):
    """Returns a time after programming in seconds.

    Args:
        value: a number of seconds, or a string: a number with an optional
            unit `s`, `min`, `h`, `d`, `mo` (30 days), `y` (365 days), e.g.
            `"3600"`, `"1h"`, `"30d"`, `"1y"`.
        name: the argument's name, for the message.

    Returns:
        A float >= 0.

    Raises:
        InvalidArgumentError: not a time, an unknown unit, or negative.

    Example:

    >>> parse_time("1d"), parse_time(60)
    (86400.0, 60.0)
    """
    if isinstance(value, str):
        match = _TIME.match(value)
        unit = match.group(2).lower() if match else None
        if not match or (unit and unit not in _UNITS):
            raise InvalidArgumentError(
                f"Cannot read {value!r} as a time: give seconds or a number with a unit "
                "(s, min, h, d, mo, y), e.g. 1h or 30d."
            )
        try:
            number = float(match.group(1))
        except ValueError:
            raise InvalidArgumentError(f"Cannot read {value!r} as a time.") from None
        value = number * _UNITS[unit or "s"]
    return check_time(value, name)


def format_time(seconds):
    """Writes a time in its largest whole-ish unit.

    Example:

    >>> [format_time(t) for t in (1, HOUR, 30 * DAY, YEAR)]
    ['1 s', '1 h', '1 month', '1 year']
    """
    seconds = float(seconds)
    for unit, name in _NAMES:
        if seconds >= unit:
            value = seconds / unit
            plural = "s" if name in _PLURAL and value != 1 else ""
            return f"{value:.3g} {name}{plural}"
    return f"{seconds:.3g} s"
