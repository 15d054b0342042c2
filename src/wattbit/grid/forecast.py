"""Forecasts of the grid signals as the controller sees them at decision time, and their error.

:class:`SeasonalPersistenceForecaster` — the baseline method, built to be honest rather than
clever. For a target slot *s* and an issue instant *t*:

1. **What is known at t.** Hourly TSO values (curtailment, generation mix → carbon) are known
   for every hour that has *ended* by t. JEPX day-ahead prices for delivery day D (JST) are
   published at 10:00 JST on D-1 (JEPX spot market rules: the auction closes at 10:00 the day
   before delivery and results follow within minutes), so at t every slot whose delivery day's
   prices were published at or before t is known exactly and is returned as is.
2. **Day-ahead persistence.** Otherwise take the most recent *known* slot at the same time of day,
   *m* = *s* − *k*·1 day with the smallest *k* ≥ 1 that makes *m* known.
3. **Blend with climatology.** Forecast = w·x[m] + (1 − w)·c[m], where c[m] is the mean of the
   same time-of-day over the ``climatology_days`` days ending at m (all known at t) and w the
   per-signal persistence weight (:data:`DEFAULT_PERSISTENCE_WEIGHTS`).
4. **No same-time-of-day observation yet** (less than a day of data before t): the latest known
   value. **Nothing known at all** (the very first slot of a series without history): a
   documented prior — curtailment 0 MW, average carbon :data:`JAPAN_PRIOR_G_PER_KWH`, marginal
   :data:`~wattbit.grid.carbon.MARGINAL_THERMAL_G_PER_KWH`. Pass ``history`` to avoid it.

Everything that does not depend on t is precomputed, so ``forecast`` is a few index gathers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.domain._validate import fraction, integer
from wattbit.errors import InvalidInput
from wattbit.grid import carbon
from wattbit.grid.signals import SIGNAL_FIELDS, Forecaster, GridSignals
from wattbit.units import slots_per_day

__all__ = [
    "DEFAULT_CLIMATOLOGY_DAYS",
    "DEFAULT_PERSISTENCE_WEIGHTS",
    "JAPAN_PRIOR_G_PER_KWH",
    "JEPX_GATE_CLOSURE_JST_H",
    "SeasonalPersistenceForecaster",
    "concat_signals",
    "evaluate_forecaster",
    "forecast_error",
]

DEFAULT_PERSISTENCE_WEIGHTS: dict[str, float] = {
    "curtailment_mw": 0.7,
    "price_jpy_per_mwh": 0.5,
    "carbon_avg_g_per_kwh": 0.5,
    "carbon_marginal_g_per_kwh": 1.0,
}
"""Weight w of the latest known same-slot value against the 14-day climatology, per signal [pu].
Chosen on FY2021 (sum over areas of the 24-h-ahead MAE, weights 0, 0.3, 0.5, 0.7, 1 tried);
FY2022 is the held-out year whose error docs/data.md reports. The marginal signal is 0 or the
thermal margin, so plain persistence (w = 1) keeps it sharp and scores best."""

DEFAULT_CLIMATOLOGY_DAYS = 14
"""Days in the climatology's trailing mean [d]: two weeks hold each weekday twice and still follow
the season. A choice, not tuned; the weights above were chosen with it (docs/data.md)."""

JEPX_GATE_CLOSURE_JST_H = 10
"""JEPX day-ahead (spot) auction: bids close at 10:00 JST on the day before delivery and the
results are published right after (JEPX, 取引規程 / spot market trading guide). wattbit treats a
day's prices as known from 10:00 JST the day before."""

JAPAN_PRIOR_G_PER_KWH: float = carbon.JAPAN_ANNUAL_G_PER_KWH
"""No-data prior for average carbon intensity ≈ 475 gCO2eq/kWh: Japan's 2021 mix
(:data:`wattbit.grid.carbon.JAPAN_MIX_SHARES`) with the life-cycle factors. Used only when nothing
is known before the issue instant."""


def concat_signals(first: GridSignals, second: GridSignals) -> GridSignals:
    """Join two signal series that follow one another on the same grid and areas."""
    if first.areas != second.areas:
        raise InvalidInput(f"signals: areas differ ({first.areas} vs {second.areas}); select the same areas")
    if len(first.time) and len(second.time):
        if first.step_s != second.step_s:
            raise InvalidInput(f"signals: steps differ ({first.step_s} s vs {second.step_s} s)")
        if first.time[-1] + pd.Timedelta(seconds=first.step_s) != second.time[0]:
            raise InvalidInput(
                f"signals: history ends at {first.time[-1]} and truth starts at {second.time[0]}; "
                "history must end one slot before the truth starts"
            )
    return GridSignals(
        first.time.append(second.time), first.areas,
        *(np.concatenate([getattr(first, f), getattr(second, f)]) for f in SIGNAL_FIELDS),
        step_s=(first if len(first.time) else second).step_s,
    )


def _trailing_day_mean(x: np.ndarray, per_day: int, days: int) -> np.ndarray:
    """Mean of x[m], x[m - P], ..., x[m - (days-1)·P] over the lags that exist."""
    total = np.zeros_like(x)
    count = np.zeros((x.shape[0], 1))
    for d in range(days):
        lag = d * per_day
        if lag >= x.shape[0]:
            break
        total[lag:] += x[: x.shape[0] - lag]
        count[lag:] += 1
    return total / count


@dataclass(frozen=True)
class _Prepared:
    blend: np.ndarray  # w·x + (1-w)·c for every slot
    raw: np.ndarray  # x itself
    known_from_ns: np.ndarray  # instant (int64 ns, UTC) from which slot m's value is known


class SeasonalPersistenceForecaster(Forecaster):
    """Day-ahead persistence blended with a trailing climatology; JEPX prices as published.

    truth : the recorded signals the run steps through (forecasts are issued inside it);
    history : signals just before ``truth`` (same grid and areas), used as the past at the start;
    persistence_weight : per-signal weight of the persistence term [pu], default
    :data:`DEFAULT_PERSISTENCE_WEIGHTS`;  climatology_days : days in the trailing mean [d]
    """

    def __init__(
        self,
        truth: GridSignals,
        history: GridSignals | None = None,
        persistence_weight: Mapping[str, float] | None = None,
        climatology_days: int = DEFAULT_CLIMATOLOGY_DAYS,
    ):
        weights = dict(DEFAULT_PERSISTENCE_WEIGHTS)
        if persistence_weight is not None:
            for k, v in persistence_weight.items():
                if k not in SIGNAL_FIELDS:
                    raise InvalidInput(f"persistence_weight: unknown signal {k!r}; expected one of {SIGNAL_FIELDS}")
                fraction("forecaster", f"persistence_weight[{k!r}]", v)
                weights[k] = float(v)
        climatology_days = integer("forecaster", "climatology_days", climatology_days, low=1)
        step_s = truth.step_s
        per_day = slots_per_day(step_s, "forecaster")
        self.truth = truth
        self.weights = weights
        self.climatology_days = climatology_days
        world = truth if history is None or len(history.time) == 0 else concat_signals(history, truth)
        self._offset = len(world.time) - len(truth.time)
        self._per_day = per_day
        self._time = world.time
        wt = world.time.as_unit("ns")
        t_ns = wt.asi8
        hour_end = wt.floor("h").asi8 + 3_600_000_000_000
        slot_end = t_ns + int(step_s * 1e9)
        hourly_known = np.maximum(hour_end, slot_end)  # an hourly value is known once its hour ended
        jst_day = (wt + pd.Timedelta(hours=9)).floor("D") - pd.Timedelta(hours=9)
        price_known = (jst_day - pd.Timedelta(hours=24 - JEPX_GATE_CLOSURE_JST_H)).as_unit("ns").asi8
        self._prep: dict[str, _Prepared] = {}
        for f in SIGNAL_FIELDS:
            x = np.asarray(getattr(world, f), dtype=float)
            c = _trailing_day_mean(x, self._per_day, climatology_days)
            w = weights[f]
            known = price_known if f == "price_jpy_per_mwh" else hourly_known
            self._prep[f] = _Prepared(w * x + (1 - w) * c, x, np.asarray(known))
        n_areas = len(truth.areas)
        self._prior = {
            "curtailment_mw": np.zeros(n_areas),
            "price_jpy_per_mwh": None,
            "carbon_avg_g_per_kwh": np.full(n_areas, JAPAN_PRIOR_G_PER_KWH),
            "carbon_marginal_g_per_kwh": np.full(n_areas, carbon.MARGINAL_THERMAL_G_PER_KWH),
        }

    @classmethod
    def from_dataset(
        cls,
        truth: GridSignals,
        history_days: int | None = None,
        data_dir=None,
        persistence_weight: Mapping[str, float] | None = None,
        climatology_days: int = DEFAULT_CLIMATOLOGY_DAYS,
    ) -> SeasonalPersistenceForecaster:
        """A forecaster whose history is the ``history_days`` before ``truth`` in the dataset (as
        many as the dataset has).

        truth : recorded signals of the run;  history_days : days of history to load [d], >= 0
        (default ``climatology_days``: enough for a full climatology from the first slot on);
        data_dir : dataset folder (default bundled);  persistence_weight : as for the
        constructor;  climatology_days : days in the trailing mean [d] (default
        :data:`DEFAULT_CLIMATOLOGY_DAYS`)
        """
        from wattbit.grid.truth import load_signals, signal_span

        # both checked before any history is loaded; a bad climatology_days is named as such,
        # not as the history_days it gives by default
        climatology_days = integer("from_dataset", "climatology_days", climatology_days, low=1)
        history_days = climatology_days if history_days is None else integer(
            "from_dataset", "history_days", history_days, low=0, note=" (days of history; 0 loads none)")
        first, _ = signal_span(data_dir)
        start = max(truth.time[0] - pd.Timedelta(days=history_days), first)
        history = None
        if start < truth.time[0]:
            history = load_signals(start, truth.time[0], truth.step_s, truth.areas, data_dir)
        return cls(truth, history, persistence_weight, climatology_days)

    def forecast(self, issued_at: pd.Timestamp, n_slots: int) -> GridSignals:
        """Signals for the ``n_slots`` slots from the one containing ``issued_at`` (clipped at the
        end of the truth), from data known before ``issued_at`` only."""
        issued_at = pd.Timestamp(issued_at)
        if issued_at.tz is None:
            raise InvalidInput(f"forecast: issued_at = {issued_at} has no time zone; pass a UTC instant")
        if n_slots < 1:
            raise InvalidInput(f"forecast: n_slots = {n_slots}; expected >= 1")
        i = self.truth.slot(issued_at) + self._offset
        j = np.arange(i, min(i + n_slots, len(self._time)))
        t = issued_at.as_unit("ns").value
        P = self._per_day
        out = {}
        for f, prep in self._prep.items():
            a = int(np.searchsorted(prep.known_from_ns, t, side="right")) - 1  # last slot known at t
            if a < 0:
                prior = self._prior[f]
                if prior is None:
                    raise InvalidInput(f"forecast: no {f} known at {issued_at}")
                out[f] = np.broadcast_to(prior, (len(j), len(prior)))
                continue
            k = np.maximum(1, -((a - j) // P))  # ceil((j - a) / P), at least one day back
            m = j - k * P
            short = m < 0  # no same-time-of-day value known yet: the latest value, unblended
            vals = prep.blend[np.where(short, a, m)]
            if short.any():
                vals = np.where(short[:, None], prep.raw[a], vals)
            known_now = j <= a  # published day-ahead prices: exact
            if known_now.any():
                vals = np.where(known_now[:, None], prep.raw[np.minimum(j, a)], vals)
            out[f] = vals
        return GridSignals(self._time[j[0] : j[-1] + 1], self.truth.areas, *(out[f] for f in SIGNAL_FIELDS),
                           step_s=self.truth.step_s)


def forecast_error(
    truth: GridSignals,
    forecaster: Forecaster,
    horizon_slots: int = 48,
    issue_every_slots: int = 1,
) -> pd.DataFrame:
    """Mean absolute error and bias of a forecaster against the truth, per area and signal.

    Forecasts are issued at the start of every ``issue_every_slots``-th slot of ``truth`` for the
    next ``horizon_slots`` slots; every (issue, target) pair with a recorded truth counts once.

    truth : recorded signals;  forecaster : issues forecasts inside ``truth``'s period;
    horizon_slots : slots per forecast;  issue_every_slots : spacing of the issue instants [slots]
    Returns a frame indexed by (``area``, ``signal``) with ``mae``, ``bias`` (forecast − truth,
    mean), ``mean_truth`` and ``n`` (pairs).
    """
    if horizon_slots < 1 or issue_every_slots < 1:
        raise InvalidInput("forecast_error: horizon_slots and issue_every_slots must be >= 1")
    n_a = len(truth.areas)
    abs_sum = {f: np.zeros(n_a) for f in SIGNAL_FIELDS}
    err_sum = {f: np.zeros(n_a) for f in SIGNAL_FIELDS}
    true_sum = {f: np.zeros(n_a) for f in SIGNAL_FIELDS}
    count = 0
    for i in range(0, len(truth.time), issue_every_slots):
        fc = forecaster.forecast(truth.time[i], horizon_slots)
        n = len(fc.time)
        for f in SIGNAL_FIELDS:
            tru = getattr(truth, f)[i : i + n]
            d = getattr(fc, f) - tru
            abs_sum[f] += np.abs(d).sum(axis=0)
            err_sum[f] += d.sum(axis=0)
            true_sum[f] += tru.sum(axis=0)
        count += n
    rows = []
    for a_i, area in enumerate(truth.areas):
        for f in SIGNAL_FIELDS:
            rows.append({
                "area": area, "signal": f,
                "mae": abs_sum[f][a_i] / count,
                "bias": err_sum[f][a_i] / count,
                "mean_truth": true_sum[f][a_i] / count,
                "n": count,
            })
    return pd.DataFrame(rows).set_index(["area", "signal"])


def evaluate_forecaster(
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    step_s: float = 1800,
    horizon_h: float = 24.0,
    issue_every_slots: int = 4,
    data_dir=None,
) -> pd.DataFrame:
    """Error of :class:`SeasonalPersistenceForecaster` on a period of the dataset, per area and
    signal (see :func:`forecast_error`), with ``mae_pct`` = MAE / mean truth × 100.

    start, end : period [UTC] (default: the last 365 days the dataset covers);  step_s : slot
    length [s];  horizon_h : forecast horizon [h];  issue_every_slots : spacing of the issue
    instants [slots];  data_dir : dataset folder (default bundled)
    """
    from wattbit.grid.truth import load_signals, signal_areas, signal_span

    first, last = signal_span(data_dir)
    end = last if end is None else pd.Timestamp(end)
    start = max(first, end - pd.Timedelta(days=365)) if start is None else pd.Timestamp(start)
    truth = load_signals(start, end, step_s, signal_areas(data_dir), data_dir)  # the areas it has
    fc = SeasonalPersistenceForecaster.from_dataset(truth, data_dir=data_dir)
    horizon = max(1, round(horizon_h * 3600 / step_s))
    err = forecast_error(truth, fc, horizon, issue_every_slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        err["mae_pct"] = 100 * err["mae"] / err["mean_truth"].where(err["mean_truth"].abs() > 0)
    err.attrs.update(start=start, end=end, step_s=step_s, horizon_h=horizon_h)
    return err
