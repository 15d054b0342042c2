"""Grid signals the controller follows, per slot and area.

``GridSignals`` is the one currency between the grid side and the planner: arrays shaped
``(time, area)`` on a regular slot grid. A *forecaster* issues a ``GridSignals`` for the slots
after a decision instant using only data from before it; :class:`PerfectForesight` hands out the
recorded truth (the oracle's view).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from wattbit.domain._validate import positive
from wattbit.errors import InvalidInput, unknown_name

__all__ = ["DEFAULT_STEP_S", "SIGNAL_FIELDS", "Forecaster", "GridSignals", "PerfectForesight"]

SIGNAL_FIELDS = (
    "curtailment_mw",
    "price_jpy_per_mwh",
    "carbon_avg_g_per_kwh",
    "carbon_marginal_g_per_kwh",
)

DEFAULT_STEP_S = 1800.0
"""Slot length assumed for a series of fewer than two slots built without ``step_s`` [s]: the
30-min slot of JEPX and the TSOs' files (48 a day), :func:`~wattbit.grid.load_signals`' default."""


@dataclass(frozen=True, eq=False)
class GridSignals:
    """Grid signals on a slot grid.

    time : slot start instants, UTC, named ``time``;  areas : area names (columns);
    curtailment_mw : curtailment headroom — extra load that would be served by power otherwise
    curtailed [MW];  price_jpy_per_mwh : day-ahead area price [JPY/MWh];
    carbon_avg_g_per_kwh : average (location-based) intensity of the area's supply [gCO2/kWh];
    carbon_marginal_g_per_kwh : intensity of the next MWh (0 while the area curtails) [gCO2/kWh];
    step_s : slot length [s]. Optional: by default the spacing of the first two slots, or
    :data:`DEFAULT_STEP_S` when there are fewer than two (a one-slot series cannot show its grid,
    so :func:`~wattbit.grid.load_signals` and the methods here pass it on).
    """

    time: pd.DatetimeIndex
    areas: tuple[str, ...]
    curtailment_mw: np.ndarray
    price_jpy_per_mwh: np.ndarray
    carbon_avg_g_per_kwh: np.ndarray
    carbon_marginal_g_per_kwh: np.ndarray
    step_s: float | None = None

    def __post_init__(self) -> None:
        if self.time.tz is None:
            raise InvalidInput("grid signals: time has no time zone; expected UTC instants")
        spacing = float((self.time[1] - self.time[0]).total_seconds()) if len(self.time) >= 2 else None
        step_s = self.step_s
        if step_s is None:
            step_s = DEFAULT_STEP_S if spacing is None else spacing
        else:
            positive("grid signals", "step_s", step_s)  # [s], e.g. 1800 or 3600
        if spacing is not None and float(step_s) != spacing:
            raise InvalidInput(
                f"grid signals: step_s = {step_s!r} but the slots are {spacing:g} s apart; "
                "pass the slots' own spacing or leave step_s out"
            )
        object.__setattr__(self, "step_s", float(step_s))
        shape = (len(self.time), len(self.areas))
        for name in SIGNAL_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != shape:
                raise InvalidInput(f"grid signals: {name} has shape {arr.shape}; expected {shape} (time, area)")
            if not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr))[0]
                raise InvalidInput(
                    f"grid signals: {name} is not finite at time {self.time[bad[0]]}, "
                    f"area {self.areas[bad[1]]!r}; fill or drop the gap before building signals"
                )
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if (self.curtailment_mw < 0).any():
            raise InvalidInput("grid signals: curtailment_mw has negative values; expected >= 0")

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    def area_index(self, name: str) -> int:
        try:
            return self.areas.index(name)
        except ValueError:
            raise unknown_name("area", name, self.areas) from None

    def slot(self, instant: pd.Timestamp) -> int:
        """Index of the slot that contains ``instant`` (tz-aware)."""
        if getattr(instant, "tzinfo", None) is None:
            instant = _aware(instant)
        i = int(self.time.searchsorted(instant, side="right")) - 1
        if i < 0 or i >= len(self.time) or instant >= self.time[-1] + pd.Timedelta(seconds=self.step_s):
            raise InvalidInput(
                f"grid signals: {instant} is outside {self.time[0]} .. {self.time[-1]}; "
                "import data that covers it (wattbit data import)"
            )
        return i

    def at(self, instant: pd.Timestamp) -> dict[str, dict[str, float]]:
        """All signals at one instant: ``{field: {area: value}}``."""
        i = self.slot(instant)
        return {f: dict(zip(self.areas, getattr(self, f)[i].tolist())) for f in SIGNAL_FIELDS}

    def window(self, start: int, n_slots: int) -> GridSignals:
        """Slots ``start .. start + n_slots`` (clipped at the end)."""
        sl = slice(start, min(start + n_slots, len(self.time)))
        return GridSignals(self.time[sl], self.areas, *(getattr(self, f)[sl] for f in SIGNAL_FIELDS),
                           step_s=self.step_s)

    def select_areas(self, areas) -> GridSignals:
        """Columns for ``areas``, in that order (these signals themselves when they are already
        those columns: signals are immutable)."""
        areas = tuple(areas)  # (any iterable, once)
        if areas == self.areas:
            return self
        idx = [self.area_index(a) for a in areas]
        return GridSignals(self.time, areas, *(getattr(self, f)[:, idx] for f in SIGNAL_FIELDS),
                           step_s=self.step_s)

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame indexed by (time, area) with one column per signal."""
        index = pd.MultiIndex.from_product([self.time, list(self.areas)], names=["time", "area"])
        return pd.DataFrame({f: getattr(self, f).reshape(-1) for f in SIGNAL_FIELDS}, index=index)


def _aware(instant: object) -> pd.Timestamp:
    """``instant`` as a tz-aware Timestamp, or InvalidInput saying how to give its time zone."""
    try:
        t = pd.Timestamp(instant)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"grid signals: instant {instant!r} is not a time; pass a tz-aware pd.Timestamp"
        ) from None
    if t.tz is None:
        raise InvalidInput(
            f"grid signals: instant {instant!r} has no time zone; pass a tz-aware instant, e.g. "
            f"pd.Timestamp('{t}', tz='Asia/Tokyo') or pd.Timestamp('{t}', tz='UTC')"
        )
    return t


class Forecaster(Protocol):
    """What the controller sees at decision time.

    ``forecast(issued_at, n_slots)`` returns signals for the ``n_slots`` slots starting at the
    slot that contains ``issued_at``, built only from data strictly before ``issued_at``
    (the truth of the current slot's start may be used where a real operator would know it:
    day-ahead prices are published the day before).
    """

    def forecast(self, issued_at: pd.Timestamp, n_slots: int) -> GridSignals: ...


class PerfectForesight:
    """The recorded future, as the oracle sees it."""

    def __init__(self, truth: GridSignals):
        self.truth = truth

    def forecast(self, issued_at: pd.Timestamp, n_slots: int) -> GridSignals:
        return self.truth.window(self.truth.slot(issued_at), n_slots)
