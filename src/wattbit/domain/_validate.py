"""Small validation helpers shared by the domain objects (raise InvalidInput with the fix).

Each checks the type first (a bool is not a number), then the value, and names the owner, the
field and the value seen.
"""

from __future__ import annotations

import math
import numbers

import pandas as pd

from wattbit.errors import InvalidInput, UnknownName
from wattbit.units import JST


def is_number(value: object) -> bool:
    """A real number (numpy's too), not a bool."""
    return type(value) in (float, int) or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def is_integer(value: object) -> bool:
    """An integer (numpy's too), not a bool and not a float such as 96.0."""
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def _type_note(value: object) -> str:
    """What a value of the wrong type is, for a message ("" when its repr says it already)."""
    if isinstance(value, bool):
        return " is a boolean"
    if isinstance(value, str):
        return " is a string"
    if isinstance(value, dict):
        return " is a table"
    if isinstance(value, (list, tuple)):
        return " is a list"
    return ""


def wrong_type(owner: str, field: str, value: object, expected: str) -> InvalidInput:
    """The error for ``field`` of ``owner`` holding ``value`` where ``expected`` was wanted.

    >>> str(wrong_type("weights", "carbon_price_jpy_per_t", "cheap", "a finite number >= 0"))
    "weights: carbon_price_jpy_per_t = 'cheap' is a string; expected a finite number >= 0"
    """
    return InvalidInput(f"{owner}: {field} = {value!r}{_type_note(value)}; expected {expected}")


def number_fix(value: object) -> str:
    return ", written without quotes or unit" if isinstance(value, str) else ""


def positive(owner: str, field: str, value: float, *, allow_zero: bool = False) -> None:
    """``value`` is a finite number > 0 (>= 0 with ``allow_zero``).

    >>> positive("demand response 'x'", "power_mw", "4 MW")
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: demand response 'x': power_mw = '4 MW' is a string; expected a finite number > 0, written without quotes or unit
    """
    bound = ">= 0" if allow_zero else "> 0"
    expected = f"a finite number {bound}"
    if not is_number(value):
        raise wrong_type(owner, field, value, expected + number_fix(value))
    if not math.isfinite(value) or not (value >= 0 if allow_zero else value > 0):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected {expected}")


def fraction(owner: str, field: str, value: float, *, low: float = 0, high: float = 1) -> None:
    """``value`` is a number in [low, high].

    >>> fraction("workload", "utilisation_pu", "high")
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: workload: utilisation_pu = 'high' is a string; expected a fraction in [0, 1], written without quotes or unit
    """
    if type(value) is float and low <= value <= high:
        return  # (the common case, first: every command with a duty cycle is checked)
    expected = f"a fraction in [{low}, {high}]"
    if not is_number(value):
        raise wrong_type(owner, field, value, expected + number_fix(value))
    if not (low <= value <= high):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected {expected}")


def integer(owner: str, field: str, value: object, *, low: int | None = None,
            high: int | None = None, note: str = "") -> int:
    """``value`` is an integer (not a bool, not a float such as 96.5), at least ``low`` and at
    most ``high`` if given; ``note`` ends the message (what the field means). Returned as a
    Python int (numpy's integers too), for the caller to keep.

    >>> integer("scenario 'x'", "horizon_slots", 96.5, low=1)
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: scenario 'x': horizon_slots = 96.5; expected an integer >= 1
    >>> import numpy as np
    >>> integer("scenario 'x'", "replan_slots", np.int64(2), low=1, high=4)
    2
    """
    if type(value) is int and (low is None or value >= low) and (high is None or value <= high):
        return value  # (the common case, first: every job built is checked)
    if high is None:
        expected = "an integer" + (f" >= {low}" if low is not None else "")
    else:
        expected = f"an integer {low} .. {high}" if low is not None else f"an integer <= {high}"
    expected += note
    if not is_integer(value):
        raise wrong_type(owner, field, value, expected + number_fix(value))
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected {expected}")
    return int(value)


def text(owner: str, field: str, value: object) -> str:
    """``value`` is a non-empty string. Returned as given.

    >>> text("scenario", "name", 5)
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: scenario: name = 5; expected a non-empty string, in quotes
    """
    if not isinstance(value, str) or not value:
        raise wrong_type(owner, field, value, "a non-empty string, in quotes")
    return value


def aware(owner: str, field: str, value: pd.Timestamp | None) -> None:
    if value is None:
        return
    if not isinstance(value, pd.Timestamp):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected a pandas.Timestamp")
    if value.tzinfo is None:
        raise InvalidInput(
            f"{owner}: {field} = {value!r} has no time zone; give it one, e.g. "
            f"pd.Timestamp('{value}', tz='{JST}')"
        )


def to_timestamp(value) -> pd.Timestamp:
    """Parse a timestamp; naive values are taken as JST (the zone of every Japanese source)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize(JST)
    return ts.tz_convert("UTC")


def area_name(owner: str, field: str, value) -> str:
    """The canonical name of an area, or an error naming the owner, the field, the value and the
    closest known area."""
    from wattbit.domain.area import area

    if not isinstance(value, str):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected an area name such as 'tokyo'")
    try:
        return area(value).name
    except UnknownName as exc:
        raise UnknownName(f"{owner}: {field}: {exc}") from None
