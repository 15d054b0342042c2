"""Every unit conversion in wattbit, written down once and doctested.

Conventions (see docs/conventions.md): SI-ish working units with the unit in every name —
power MW (site/area) or W (device), energy MWh, time s (h only where it multiplies MW),
data GB (1e9 B) and Gbit/s, length km, price JPY/MWh, carbon gCO2/kWh (= kg/MWh),
fractions per unit (0..1). Instants are timezone-aware UTC inside; JST only at the edges.
"""

from __future__ import annotations

import pandas as pd

from wattbit.errors import InvalidInput

JST = "Asia/Tokyo"
"""Japan Standard Time (UTC+9, no daylight saving) — the zone of every Japanese data source."""

SECONDS_PER_HOUR = 3600.0
NS_PER_H = 3.6e12
"""Nanoseconds per hour: instants are compared as integer nanoseconds since the epoch
(``pandas.Timestamp.value``, ``Job.release_ns``) in loops over every live job."""
SECONDS_PER_DAY = 86_400
NS_PER_DAY = SECONDS_PER_DAY * 10**9
"""Nanoseconds per day, as an integer: shifting an instant by whole days stays exact."""


def slots_per_day(step_s: float, owner: str) -> int:
    """Slots of ``step_s`` seconds in a day, for what forecasts by time of day; ``owner`` names
    it in the error when the slot does not divide a day.

    >>> slots_per_day(1800.0, "forecaster")
    48
    >>> slots_per_day(7 * 3600.0, "forecaster")
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: forecaster: slot length 25200.0 s does not divide a day (86,400 s); use a slot of 15, 30 or 60 min
    """
    per_day = SECONDS_PER_DAY / step_s if step_s > 0 else 0.5
    if abs(per_day - round(per_day)) > 1e-9 or round(per_day) < 1:
        raise InvalidInput(f"{owner}: slot length {step_s!r} s does not divide a day (86,400 s); "
                           f"use a slot of 15, 30 or 60 min")
    return round(per_day)

FIBER_DELAY_S_PER_KM = 4.9e-6
"""Propagation delay in standard single-mode fibre [s/km].

Group index n ≈ 1.468 (ITU-T G.652 SSMF) → n / c = 1.468 / 299,792.458 km/s = 4.90 µs/km;
the same figure GNPy uses for its path latency (../context/apn-optical-notes.md §1).
"""


def w_to_mw(power_w: float) -> float:
    """Watts to megawatts.

    >>> w_to_mw(640.0 * 1000)
    0.64
    """
    return power_w / 1e6


def mw_to_w(power_mw: float) -> float:
    """Megawatts to watts.

    >>> mw_to_w(0.5)
    500000.0
    """
    return power_mw * 1e6


def man_kw_to_mw(power_man_kw: float) -> float:
    """万kW (10^4 kW, used by Shikoku and others) to MW.

    >>> man_kw_to_mw(12.5)
    125.0
    """
    return power_man_kw * 10.0


def jpy_per_kwh_to_jpy_per_mwh(price_jpy_per_kwh: float) -> float:
    """JEPX publishes JPY/kWh; wattbit works in JPY/MWh.

    >>> jpy_per_kwh_to_jpy_per_mwh(0.01)
    10.0
    """
    return price_jpy_per_kwh * 1000.0


def energy_mwh(power_mw: float, step_h: float) -> float:
    """Energy of a constant power over a step.

    >>> energy_mwh(power_mw=10.0, step_h=0.5)
    5.0
    """
    return power_mw * step_h


def emissions_t(energy_mwh: float, carbon_g_per_kwh: float) -> float:
    """Emissions in tonnes CO2 of an energy at a carbon intensity (g/kWh = kg/MWh).

    >>> emissions_t(energy_mwh=1000.0, carbon_g_per_kwh=450.0)
    450.0
    """
    return energy_mwh * carbon_g_per_kwh / 1000.0


def gb_to_gbit(size_gb: float) -> float:
    """Gigabytes (1e9 B) to gigabits.

    >>> gb_to_gbit(1000)
    8000
    """
    return size_gb * 8


def transfer_time_s(size_gb: float, rate_gbps: float) -> float:
    """Serialisation time of `size_gb` over a line of `rate_gbps`.

    size_gb : data size [GB];  rate_gbps : usable line rate [Gbit/s]

    >>> transfer_time_s(size_gb=100, rate_gbps=400)
    2.0
    >>> round(transfer_time_s(size_gb=1000, rate_gbps=400), 1)  # ~1 TB, 70B model state
    20.0
    """
    return size_gb * 8 / rate_gbps


def fiber_latency_s(length_km: float) -> float:
    """One-way propagation delay over `length_km` of fibre [s].

    >>> round(fiber_latency_s(1000.0) * 1e3, 2)  # ms
    4.9
    """
    return length_km * FIBER_DELAY_S_PER_KM


def to_utc(index: pd.DatetimeIndex, tz: str = JST) -> pd.DatetimeIndex:
    """Localise naive local timestamps (default JST) and convert to UTC.

    >>> to_utc(pd.DatetimeIndex(["2022-04-01 00:00"]))[0]
    Timestamp('2022-03-31 15:00:00+0000', tz='UTC')
    """
    if index.tz is None:
        index = index.tz_localize(tz)
    return index.tz_convert("UTC")


def to_jst(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Show UTC instants in JST.

    >>> to_jst(pd.DatetimeIndex(["2022-03-31 15:00"], tz="UTC"))[0]
    Timestamp('2022-04-01 00:00:00+0900', tz='Asia/Tokyo')
    """
    return index.tz_convert(JST)


def jst_text(ts: pd.Timestamp) -> str:
    """An instant as users write it and messages show it: in JST, to the minute, with seconds only
    where there are any (a naive instant is taken as JST).

    >>> jst_text(pd.Timestamp("2023-03-05 15:00", tz="UTC"))
    '2023-03-06 00:00 JST'
    >>> jst_text(pd.Timestamp("2023-03-06 10:00:30", tz="Asia/Tokyo"))
    '2023-03-06 10:00:30 JST'
    """
    t = pd.Timestamp(ts)
    t = t.tz_convert(JST) if t.tzinfo else t
    fmt = "%Y-%m-%d %H:%M:%S.%f" if t.microsecond else "%Y-%m-%d %H:%M:%S" if t.second else "%Y-%m-%d %H:%M"
    return t.strftime(fmt) + " JST"


def jst_minute(ts: pd.Timestamp) -> str:
    """An instant in JST, to the minute, without the zone's name (for table cells and ranges
    that name it once).

    >>> jst_minute(pd.Timestamp("2023-03-05 15:00", tz="UTC"))
    '2023-03-06 00:00'
    """
    return f"{pd.Timestamp(ts).tz_convert(JST):%Y-%m-%d %H:%M}"


def fiscal_year(ts: pd.Timestamp) -> int:
    """Japanese fiscal year (April–March) of an instant, judged in JST.

    >>> fiscal_year(pd.Timestamp("2023-03-31 14:59", tz="UTC"))
    2022
    >>> fiscal_year(pd.Timestamp("2023-03-31 15:00", tz="UTC"))
    2023
    """
    local = ts.tz_convert(JST) if ts.tzinfo else ts
    return local.year if local.month >= 4 else local.year - 1
