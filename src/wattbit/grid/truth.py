"""The recorded grid signals ("truth") on a slot grid, built from the dataset.

Per area and hour, from :func:`wattbit.data.load_dataset`:

* ``curtailment_mw`` = solar_curtailed_mw + wind_curtailed_mw: the MW of extra load that would
  have been served by power otherwise curtailed. Tokyo: 0 (TEPCO's files in this dataset report
  no curtailment, and the source README notes that Tokyo had essentially none in this period)
  in every hour TEPCO's files cover.
* ``carbon_avg_g_per_kwh`` and ``carbon_marginal_g_per_kwh``: see :mod:`wattbit.grid.carbon`.
  Tokyo has no generation mix in this data: its average is solar at the solar factor and the
  rest at Tokyo's non-solar annual mix (:data:`~wattbit.grid.carbon.TOKYO_NON_SOLAR_G_PER_KWH`),
  or the annual mix where TEPCO gives no solar value.

An hour an area has no row for (Tokyo has none for January-March 2022) is NaN here, in every
signal; :func:`load_signals` fills it and counts it in a :class:`GapWarning` (Tokyo's with
:data:`TOKYO_GAP_FILL`, the values above for an hour without TEPCO data).

and per 30-min slot from :func:`wattbit.data.load_prices`: ``price_jpy_per_mwh``, the JEPX area
price. On a 30-min grid hourly values are held over both half-hours; on an hourly grid the two
half-hour prices are averaged.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.data import load_dataset, load_prices_wide
from wattbit.data.dataset import _resolve
from wattbit.domain.area import AREAS, INTERCONNECTED_AREAS
from wattbit.errors import InvalidInput, unknown_name
from wattbit.grid import carbon
from wattbit.grid.signals import GridSignals
from wattbit.units import jst_text

__all__ = ["TOKYO_GAP_FILL", "GapWarning", "hourly_signals", "load_signals", "signal_areas", "signal_span"]

_NEIGHBOURS = {a.name: a.neighbours for a in AREAS}

TOKYO_GAP_FILL: dict[str, float] = {
    "curtailment_mw": 0.0,
    "carbon_avg_g_per_kwh": carbon.TOKYO_ANNUAL_G_PER_KWH,
    "carbon_marginal_g_per_kwh": carbon.MARGINAL_THERMAL_G_PER_KWH,
}
"""What :func:`load_signals` fills an hour Tokyo lacks with (the bundled data has no Tokyo rows
for January-March 2022): the values this module gives a Tokyo hour without TEPCO data (module
doc) — curtailment 0 MW (none reported), average carbon at Tokyo's annual mix
(:data:`~wattbit.grid.carbon.TOKYO_ANNUAL_G_PER_KWH`, as wherever TEPCO gives no solar value) and
marginal carbon at LNG (:data:`~wattbit.grid.carbon.MARGINAL_THERMAL_G_PER_KWH`, as in every
hour without curtailment) [MW, gCO2eq/kWh]. Filling these hours is counted in the GapWarning."""


class GapWarning(UserWarning):
    """Signal values were filled where the dataset has no data. ``filled`` says where and how,
    counted; the message adds what to do about it (``advice``)."""

    def __init__(self, filled: str, advice: str = "") -> None:
        super().__init__(f"load_signals: {filled}" + (f". {advice}" if advice else ""))
        self.filled = filled


@functools.lru_cache(maxsize=4)
def _hourly_cached(path: Path) -> dict[str, pd.DataFrame]:
    df = load_dataset(path).astype("float64")
    wide = {c: df[c].unstack("area") for c in df.columns}
    areas = [a for a in INTERCONNECTED_AREAS if a in wide["demand_mw"].columns]
    full = pd.date_range(df.index.get_level_values("time").min(), df.index.get_level_values("time").max(),
                         freq="h", name="time")
    # present: the area has a row for that hour at all
    present = df["demand_mw"].notna() | df["solar_mw"].notna()
    present = present.unstack("area").reindex(index=full, columns=areas).fillna(False).astype(bool)
    w = {c: v.reindex(index=full, columns=areas) for c, v in wide.items()}

    curt = w["solar_curtailed_mw"].fillna(0.0) + w["wind_curtailed_mw"].fillna(0.0)
    curt_known = w["solar_curtailed_mw"].notna() | w["wind_curtailed_mw"].notna()
    if "tokyo" in curt.columns:
        # none reported in this data: 0 by definition (module doc), in the hours TEPCO covers
        curt_known["tokyo"] = present["tokyo"]
    curt = curt.clip(lower=0.0)

    own = pd.DataFrame(index=full, columns=areas, dtype=float)
    gen_total = pd.DataFrame(index=full, columns=areas, dtype=float)
    for a in areas:
        i, g = carbon.own_generation_intensity({c: w[c][a].to_numpy() for c in carbon.COLUMN_FACTORS})
        has_mix = w["thermal_mw"][a].notna().to_numpy()
        own[a] = np.where(has_mix, i, np.nan)
        gen_total[a] = np.where(has_mix, g, np.nan)
    if "tokyo" in areas:
        # TEPCO's FY2021-FY2023 files have no mix: solar share + Tokyo's non-solar annual mix
        d = w["demand_mw"]["tokyo"].to_numpy()
        s = w["solar_mw"]["tokyo"].to_numpy()
        ok = np.isfinite(d) & np.isfinite(s) & (d > 0)
        share = np.where(ok, np.clip(s / np.where(ok, d, 1), 0, 1), np.nan)
        tk = share * carbon.LIFECYCLE_G_PER_KWH["solar"] + (1 - share) * carbon.TOKYO_NON_SOLAR_G_PER_KWH
        no_mix = gen_total["tokyo"].isna().to_numpy()
        own["tokyo"] = np.where(no_mix, np.where(ok, tk, carbon.TOKYO_ANNUAL_G_PER_KWH), own["tokyo"].to_numpy())
        tokyo_fallback = no_mix
    # imports at the mean own-generation intensity of the neighbours present in the data
    avg = own.copy()
    for a in areas:
        nbr = [n for n in _NEIGHBOURS[a] if n in own.columns]
        ef_imp = own[nbr].mean(axis=1, skipna=True).to_numpy() if nbr else own[a].to_numpy()
        imp = np.clip(np.nan_to_num(w["tie_net_import_mw"][a].to_numpy()), 0, None)
        g = np.nan_to_num(gen_total[a].to_numpy())
        num = np.nan_to_num(own[a].to_numpy()) * g + np.nan_to_num(ef_imp) * imp
        den = g + imp
        value = np.where((den > 0) & present[a].to_numpy(), num / np.where(den > 0, den, 1), np.nan)
        if a == "tokyo":
            # an hour without a row stays NaN: load_signals fills and counts it (GapWarning)
            value = np.where(tokyo_fallback & present[a].to_numpy(), own[a].to_numpy(), value)
        avg[a] = value
    marg = pd.DataFrame(
        np.where(curt.to_numpy() > 0, 0.0, carbon.MARGINAL_THERMAL_G_PER_KWH), index=full, columns=areas
    ).where(curt_known)
    return {
        "present": present,
        "curtailment_mw": curt.where(curt_known & present),
        "carbon_avg_g_per_kwh": avg,
        "carbon_marginal_g_per_kwh": marg.where(present),
    }


def hourly_signals(data_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """Recorded hourly signals over the whole dataset, each a (time × area) frame.

    Keys: ``curtailment_mw``, ``carbon_avg_g_per_kwh``, ``carbon_marginal_g_per_kwh`` (NaN where
    the dataset has no data for that area and hour) and ``present`` (bool: the area has a row).

    data_dir : dataset folder; default the bundled dataset
    """
    return {k: v.copy() for k, v in _hourly_cached(_resolve(data_dir)).items()}


def signal_span(data_dir: Path | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First slot start and end instant [UTC] that :func:`load_signals` can cover: where both the
    hourly area data and the JEPX prices exist.

    data_dir : dataset folder; default the bundled dataset
    """
    path = _resolve(data_dir)
    prices = load_prices_wide(path)
    h_index = _hourly_cached(path)["present"].index
    first = max(prices.index[0], h_index[0])
    last = min(prices.index[-1] + pd.Timedelta(minutes=30), h_index[-1] + pd.Timedelta(hours=1))
    return first, last


def signal_areas(data_dir: Path | None = None) -> tuple[str, ...]:
    """The interconnected areas a dataset has signals for, in the usual order (a dataset imported
    from some TSOs' files has only theirs).

    >>> len(signal_areas())  # the bundled dataset: all nine
    9
    """
    present = set(_hourly_cached(_resolve(data_dir))["present"].columns)
    return tuple(a for a in INTERCONNECTED_AREAS if a in present)


def _as_utc(t: pd.Timestamp, name: str) -> pd.Timestamp:
    t = pd.Timestamp(t)
    if t.tz is None:
        raise InvalidInput(f"load_signals: {name} = {t} has no time zone; pass a UTC instant, e.g. pd.Timestamp('{t}', tz='UTC')")
    return t.tz_convert("UTC")


def load_signals(
    start: pd.Timestamp,
    end: pd.Timestamp,
    step_s: float = 1800,
    areas: Sequence[str] | None = None,
    data_dir: Path | None = None,
) -> GridSignals:
    """The recorded grid signals on the slot grid ``[start, end)``.

    Hourly values are held constant over their two half-hours on a 30-min grid; prices are the
    JEPX 30-min area prices (averaged over the hour on an hourly grid). Hours an area lacks
    inside the data's span are filled (curtailment 0 MW, carbon by linear interpolation in time;
    Tokyo's, e.g. its January-March 2022 in the bundled data, with :data:`TOKYO_GAP_FILL`) and
    counted, per signal and area, in a :class:`GapWarning`; a period outside the data raises
    InvalidInput.

    start, end : first slot start and end of the period (tz-aware) [UTC];  step_s : slot length,
    1800 or 3600 [s];  areas : area names (default the nine interconnected areas, in
    :data:`wattbit.domain.INTERCONNECTED_AREAS` order);  data_dir : dataset folder (default the
    bundled FY2021-FY2022 data)
    """
    if step_s not in (1800, 3600):
        raise InvalidInput(f"load_signals: step_s = {step_s}; expected 1800 (30 min) or 3600 (1 h)")
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    step = pd.Timedelta(seconds=step_s)
    if end <= start:
        raise InvalidInput(f"load_signals: end {end} is not after start {start}")
    if (start - pd.Timestamp("2000-01-01", tz="UTC")) % step:
        raise InvalidInput(f"load_signals: start {start} is not on the {int(step_s)} s slot grid; round it to a slot start")
    areas = tuple(INTERCONNECTED_AREAS if areas is None else areas)
    path = _resolve(data_dir)
    hourly = _hourly_cached(path)
    known = tuple(hourly["present"].columns)
    for a in areas:
        if a not in known:
            if a == "okinawa":
                raise InvalidInput(
                    "load_signals: area 'okinawa' is isolated: it has no JEPX price and no tie-line, "
                    "and the signals cover the nine interconnected areas only"
                )
            if a in INTERCONNECTED_AREAS:
                raise InvalidInput(
                    f"load_signals: the dataset {path} has no data for area {a!r} (it has "
                    f"{', '.join(known)}); import that area's TSO files too (docs/data.md, \"Importing "
                    "newer TSO files\"), or use the bundled dataset")
            raise unknown_name("area", a, known, field="load_signals")
    time = pd.date_range(start, end, freq=step, inclusive="left", name="time")

    prices = load_prices_wide(path)
    first, last = signal_span(path)
    if start < first or time[-1] + step > last:
        raise InvalidInput(
            f"load_signals: period {start} .. {end} is outside the data, which covers {first} .. {last} "
            f"(dataset {path}); choose a period inside it or import newer files (wattbit data import)"
        )

    hours = time.floor("h")
    out: dict[str, np.ndarray] = {}
    filled: dict[str, int] = {}
    gap_areas: dict[str, int] = {}
    for name in ("curtailment_mw", "carbon_avg_g_per_kwh", "carbon_marginal_g_per_kwh"):
        frame = hourly[name][list(areas)]
        # one day of margin on each side so interpolation across a gap sees real neighbours
        lo, hi = hours[0] - pd.Timedelta(days=1), hours[-1] + pd.Timedelta(days=1)
        part = frame.loc[lo:hi]
        per_area = part.loc[hours[0]:hours[-1]].isna().sum()
        n_gap = int(per_area.sum())
        if n_gap:
            filled[name] = n_gap
            for a, n in per_area.items():
                if n:
                    gap_areas[a] = max(gap_areas.get(a, 0), int(n))
            if "tokyo" in part.columns:  # Tokyo's documented values, not interpolated
                part = part.fillna({"tokyo": TOKYO_GAP_FILL[name]})
            if name == "curtailment_mw":
                part = part.fillna(0.0)
            else:
                part = part.interpolate(method="time", limit_direction="both")
                if part.isna().to_numpy().any():  # an area with no value at all nearby
                    fallback = carbon.MARGINAL_THERMAL_G_PER_KWH if "marginal" in name else carbon.THERMAL_G_PER_KWH
                    part = part.fillna(fallback)
        out[name] = part.reindex(hours).to_numpy(dtype=float)

    pr = prices[list(areas)].astype("float64")
    if step_s == 1800:
        out["price_jpy_per_mwh"] = pr.reindex(time).to_numpy()
    else:
        out["price_jpy_per_mwh"] = pr.resample("h").mean().reindex(time).to_numpy()
    if np.isnan(out["price_jpy_per_mwh"]).any():
        n = int(np.isnan(out["price_jpy_per_mwh"]).sum())
        raise InvalidInput(f"load_signals: {n} price slots missing in {start} .. {end}; re-import the JEPX files")
    if filled:
        text = ", ".join(f"{k} {v}" for k, v in filled.items())
        where = ", ".join(f"{a} {n} h" for a, n in gap_areas.items())
        how = "curtailment 0 MW, carbon interpolated in time"
        if "tokyo" in gap_areas:
            how += (f"; Tokyo's with its documented values: curtailment 0 MW, average carbon "
                    f"{TOKYO_GAP_FILL['carbon_avg_g_per_kwh']:.0f} g/kWh (annual mix), marginal "
                    f"{TOKYO_GAP_FILL['carbon_marginal_g_per_kwh']:.0f} g/kWh")
        warnings.warn(GapWarning(
            f"hourly values missing in {jst_text(start)} .. {jst_text(end)} were filled ({how}): "
            f"{text} (area-hours; {where})",
            "Choose a period the data covers, or import the missing files (docs/data.md), to use "
            "recorded values"), stacklevel=2)
    return GridSignals(
        time=time, areas=areas,
        curtailment_mw=out["curtailment_mw"],
        price_jpy_per_mwh=out["price_jpy_per_mwh"],
        carbon_avg_g_per_kwh=out["carbon_avg_g_per_kwh"],
        carbon_marginal_g_per_kwh=out["carbon_marginal_g_per_kwh"],
        step_s=float(step_s),
    )
