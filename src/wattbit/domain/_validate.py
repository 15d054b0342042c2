"""Small validation helpers shared by the domain objects (raise InvalidInput with the fix)."""

from __future__ import annotations

import math

import pandas as pd

from wattbit.errors import InvalidInput, UnknownName


def positive(owner: str, field: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected a finite number {bound}")


def fraction(owner: str, field: str, value: float, *, low: float = 0.0, high: float = 1.0) -> None:
    if not isinstance(value, (int, float)) or not (low <= value <= high):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected a fraction in [{low}, {high}]")


def aware(owner: str, field: str, value: pd.Timestamp | None) -> None:
    if value is None:
        return
    if not isinstance(value, pd.Timestamp):
        raise InvalidInput(f"{owner}: {field} = {value!r}; expected a pandas.Timestamp")
    if value.tzinfo is None:
        raise InvalidInput(
            f"{owner}: {field} = {value!r} has no time zone; give it one, e.g. "
            f"pd.Timestamp('{value}', tz='Asia/Tokyo')"
        )


def to_timestamp(value) -> pd.Timestamp:
    """Parse a timestamp; naive values are taken as JST (the zone of every Japanese source)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("Asia/Tokyo")
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
