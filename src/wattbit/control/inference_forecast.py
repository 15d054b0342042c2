"""Online inference that is not released yet, forecast from the arrivals seen on past days.

The controller knows a job once it is released. A serving window that opens inside the horizon is
therefore invisible to a plan made before it opens, and so is its load: a plan that commits to a
下げDR an hour before the evening peak of inference would count on power that the peak then takes
(docs/controller.md, "Demand response"). :class:`InferenceForecaster` closes that gap.

The method, for a slot *t* of the horizon (``k`` = whole days between the plan and *t*):

1. **What was seen.** The controller records every online-inference job it observes: its user
   area, service class (the sites that may serve it), GPUs and serving window.
2. **Arrivals on past days.** On each of the ``days`` days before *t* that lie wholly in the past
   (d = k + 1 … k + days), take the jobs released after that day's equivalent of *now*. Their
   demand at *t* − d days, averaged over those days (days before the first observation left
   out: their arrivals were not seen), is the expected demand at *t* of inference not released
   yet. Windows already open today are known, and are not forecast again.
3. **In the tightest class seen.** Per user area, that demand is put in the class that the fewest
   sites may serve, of those the area's users had in the recorded days. Which latency budget and
   residency a window will have is not known before it opens, and a plan that counted on
   rerouting inference that then has to stay would commit a 下げDR it cannot deliver; unserved
   inference is the objective's dearest term. The price is capacity held for inference that may be
   rerouted after all, until the next plan.

No observed day: no forecast (a plan sees only released inference). The records of the last
``days`` + 3 days are kept (a few per area and day); a forecast is a few array operations.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence

import numpy as np

from wattbit.domain import Job
from wattbit.domain.scenario import check_forecast_days
from wattbit.errors import InvalidInput
from wattbit.grid.forecast import DEFAULT_CLIMATOLOGY_DAYS
from wattbit.units import NS_PER_DAY, slots_per_day

__all__ = ["InferenceForecaster"]


class InferenceForecaster:
    """Forecast of online-inference demand not released yet [GPU per slot], per service class:
    a class's key is the sites that may serve it (a tuple of bools, one per site).

    step_s : slot length [s] (must divide a day);  days : days in the climatology [d]
    (:data:`~wattbit.grid.forecast.DEFAULT_CLIMATOLOGY_DAYS`: each weekday twice);
    horizon_slots : the longest horizon asked for [slots].

    >>> import pandas as pd
    >>> from wattbit.domain import Job, JobKind
    >>> t0 = pd.Timestamp("2023-03-01 09:00", tz="UTC")
    >>> def window(day, gpus):  # a 6 h serving window opening at 09:00 UTC
    ...     start = t0 + pd.Timedelta(days=day)
    ...     return Job(f"oi-{day}", "t", JobKind.ONLINE_INFERENCE, gpus, 6.0, start,
    ...                start + pd.Timedelta(hours=6), "tokyo-dc", frozenset({"tokyo"}),
    ...                user_area="tokyo", rtt_budget_s=0.03)
    >>> fc = InferenceForecaster(step_s=3600.0, days=2, horizon_slots=24)
    >>> fc.observe([window(0, 32)], key_of=lambda job: (True, True))
    >>> fc.observe([window(1, 64), window(2, 128)], key_of=lambda job: (True, False))
    >>> keys, demand = fc.forecast(int((t0 + pd.Timedelta(days=3, hours=-2)).value), 24)
    >>> keys, demand[:, :4].tolist()  # 2 h before the fourth window opens: (64 + 128) / 2
    ([(True, True), (True, False)], [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 96.0, 96.0]])
    >>> keys, demand = fc.forecast(int((t0 + pd.Timedelta(days=3, hours=1)).value), 24)
    >>> float(demand[:, :12].sum())  # it has opened: the next is tomorrow's
    0.0
    """

    def __init__(self, step_s: float, days: int = DEFAULT_CLIMATOLOGY_DAYS, horizon_slots: int = 96):
        self.slots_per_day = slots_per_day(step_s, "inference forecast")
        days = check_forecast_days(days, "inference forecast")
        if days < 1:
            raise InvalidInput("inference forecast: inference_forecast_days = 0; a forecaster needs 1 or more")
        self.step_ns = NS_PER_DAY // self.slots_per_day
        self.days = days
        self.horizon_slots = int(horizon_slots)
        self._row: dict[tuple[str | None, Hashable], int] = {}  # (user area, class key) → row
        self._area_rows: dict[str | None, list[int]] = {}
        self._seen: dict[str, int] = {}  # job id → end of its window [ns]
        self._records: list[tuple[int, int, int, int]] = []  # (row, release [ns], end [ns], GPUs)
        self._first_ns: int | None = None  # when the record starts: arrivals before it were not seen
        self._array: np.ndarray | None = None  # the records as an array (None: to be rebuilt)
        self._forget_at_ns = 0  # the records are pruned once a day

    def observe(self, jobs: Iterable[Job], key_of: Callable[[Job], Hashable], now_ns: int | None = None) -> None:
        """Record online-inference jobs the first time they are seen, in the service class
        ``key_of(job)``; a job seen again is ignored.

        now_ns : the instant of this observation [ns since the epoch, UTC]; the first one starts
        the record (a job released before it, still serving, is recorded, but the days before it
        are left out of the mean). Without it, the earliest release seen starts the record: right
        when every job is observed from its release on, as in a run from its start."""
        if now_ns is not None and self._first_ns is None:
            self._first_ns = now_ns
        for job in jobs:
            if job.job_id in self._seen:
                continue
            key = key_of(job)
            self._seen[job.job_id] = job.deadline_ns
            row = self._row.get((job.user_area, key))
            if row is None:
                row = self._row[(job.user_area, key)] = len(self._row)
                self._area_rows.setdefault(job.user_area, []).append(row)
            self._records.append((row, job.release_ns, job.deadline_ns, job.gpus))
            self._array = None
            if now_ns is None and (self._first_ns is None or job.release_ns < self._first_ns):
                self._first_ns = job.release_ns

    def _forget(self, now_ns: int) -> None:
        """Drop the records and ids no forecast can use any more."""
        horizon_days = -(-self.horizon_slots // self.slots_per_day)
        oldest = now_ns - (self.days + horizon_days + 1) * NS_PER_DAY
        self._records = [r for r in self._records if r[2] > oldest]
        # ids kept as long as their records: a job handed in again is not recorded twice
        self._seen = {j: end for j, end in self._seen.items() if end > oldest}
        self._array = None
        self._forget_at_ns = now_ns + NS_PER_DAY

    def forecast(self, now_ns: int, n_slots: int) -> tuple[list, np.ndarray]:
        """Demand not released yet over the ``n_slots`` slots from ``now_ns`` on: the class keys
        and a (keys × slots) array [GPU]; keys of several user areas may repeat (add them up)."""
        if n_slots > self.horizon_slots:
            raise InvalidInput(f"inference forecast: {n_slots} slots asked for; it was sized for "
                               f"horizon_slots = {self.horizon_slots}")
        if now_ns >= self._forget_at_ns:
            self._forget(now_ns)
        keys = [key for (_, key) in self._row]
        out = np.zeros((len(keys), n_slots))
        if self._first_ns is None or n_slots <= 0:
            return keys, out
        t = np.arange(n_slots)
        k = t // self.slots_per_day
        shifts = np.arange(1, int(k[-1]) + self.days + 1)  # every day back any slot may look
        observed = now_ns - shifts * NS_PER_DAY >= self._first_ns  # that day's arrivals were seen
        usable = (shifts[None, :] > k[:, None]) & (shifts[None, :] <= k[:, None] + self.days) & observed[None, :]
        count = usable.sum(1)  # days averaged at each slot
        if not count.any():
            return keys, out
        if self._array is None:
            self._array = np.array(self._records, dtype=np.int64).reshape(-1, 4)
        rec = self._array
        rel = rec[:, 1, None] + shifts[None, :] * NS_PER_DAY  # (records, shifts): past arrivals moved to now
        pick = (rel > now_ns) & (rel < now_ns + n_slots * self.step_ns) & observed[None, :]
        ri, di = np.nonzero(pick)
        if not len(ri):
            return keys, out
        a, b = rel[ri, di], rec[ri, 2] + shifts[di] * NS_PER_DAY
        # the slots each moved window covers, as fractions of a slot (only its first and last
        # slot can be partial); a window spans a few slots of the horizon, so only the (window,
        # slot) cells it touches are listed, window by window and slot by slot within one
        lo, hi = (a - now_ns) / self.step_ns, (b - now_ns) / self.step_ns
        first = np.floor(lo).astype(np.int64)
        span = np.maximum(np.minimum(np.ceil(hi).astype(np.int64), n_slots) - first, 0)
        pair = np.repeat(np.arange(len(ri)), span)
        ts = np.arange(len(pair)) - np.repeat(np.cumsum(span) - span - first, span)
        overlap = np.clip(np.minimum(hi[pair], ts + 1.0) - np.maximum(lo[pair], ts), 0.0, None)
        weight = usable[ts, di[pair]] / np.maximum(count, 1)[ts]  # 1/days where the day is used
        # summed per row with bincount: a matrix product here would start BLAS threads, which
        # steal the other core from a second run (a year cut in two) and slow both
        cells = rec[ri[pair], 0] * n_slots + ts
        by_row = np.bincount(cells, rec[ri[pair], 3] * overlap * weight,
                             len(keys) * n_slots).reshape(len(keys), n_slots)
        recorded = set(rec[:, 0].tolist())
        for rows in self._area_rows.values():
            kept = [r for r in rows if r in recorded]
            if kept:
                out[min(kept, key=lambda r: sum(keys[r]))] += by_row[rows].sum(0)
        return keys, out

    def block_demand(self, now_ns: int, slots: Sequence[int]) -> tuple[list, np.ndarray]:
        """:meth:`forecast`, averaged over blocks of ``slots[b]`` slots each [GPU], for the
        classes that get any (a class with none would only add empty columns to the plan; a key
        may repeat, one row per user area)."""
        slots = np.asarray(slots, dtype=int)
        keys, per_slot = self.forecast(now_ns, int(slots.sum()))
        if not keys:
            return [], np.zeros((0, len(slots)))
        starts = np.concatenate([[0], np.cumsum(slots)[:-1]])
        blocks = np.add.reduceat(per_slot, starts, axis=1) / slots[None, :]
        some = blocks.any(1)
        return [key for key, keep in zip(keys, some) if keep], blocks[some]
