"""Things that happen to the fleet from outside: demand-response requests, site outages."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pandas as pd

from wattbit.domain._validate import area_name, aware, positive, text
from wattbit.errors import InvalidInput
from wattbit.units import jst_text

__all__ = ["DRDirection", "DemandResponse", "SiteOutage"]


class DRDirection(str, enum.Enum):
    """上げDR (``up``): raise demand to absorb surplus; 下げDR (``down``): lower it."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class DemandResponse:
    """A grid operator's request to change the fleet's load in one area over a window.

    request_id : key;  direction : up (上げ) or down (下げ);  area : grid area;
    power_mw : change asked for [MW] (positive);  start, end : window (UTC);
    response_deadline_s : time allowed to reach the asked change after ``start`` [s]
    (primary ≈ 10 s, secondary ≈ 300 s, tertiary ≈ 2700 s; MISSION.md);
    issued_at : when the request reaches the fleet (UTC); None means at ``start`` (a real-time
    request). Requests announced ahead (day-ahead 上げDR) let the planner hold work back for them.
    """

    request_id: str
    direction: DRDirection
    area: str
    power_mw: float
    start: pd.Timestamp
    end: pd.Timestamp
    response_deadline_s: float = 300.0
    issued_by: str = "grid-operator"
    issued_at: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        text("demand response", "request_id", self.request_id)
        owner = f"demand response {self.request_id!r}"
        try:
            object.__setattr__(self, "direction", DRDirection(self.direction))
        except ValueError:
            raise InvalidInput(f"{owner}: direction = {self.direction!r}; expected 'up' or 'down'") from None
        object.__setattr__(self, "area", area_name(owner, "area", self.area))
        positive(owner, "power_mw", self.power_mw)
        aware(owner, "start", self.start)
        aware(owner, "end", self.end)
        if self.end <= self.start:
            raise InvalidInput(
                f"{owner}: end {jst_text(self.end)} is not after start {jst_text(self.start)}; give an end "
                "later than the start")
        positive(owner, "response_deadline_s", self.response_deadline_s)
        text(owner, "issued_by", self.issued_by)
        aware(owner, "issued_at", self.issued_at)
        if self.issued_at is not None and self.issued_at > self.start:
            raise InvalidInput(
                f"{owner}: issued_at {jst_text(self.issued_at)} is after start {jst_text(self.start)}; a "
                "request is issued before (or at) the start of its window"
            )

    @property
    def notice_at(self) -> pd.Timestamp:
        """When the fleet learns of the request (UTC)."""
        return self.issued_at if self.issued_at is not None else self.start


@dataclass(frozen=True, slots=True)
class SiteOutage:
    """A site out of service over a window (maintenance, failure)."""

    site: str
    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        text("outage", "site", self.site)
        owner = f"outage of {self.site!r}"
        aware(owner, "start", self.start)
        aware(owner, "end", self.end)
        if self.end <= self.start:
            raise InvalidInput(
                f"{owner}: end {jst_text(self.end)} is not after start {jst_text(self.start)}; give an end "
                "later than the start")
