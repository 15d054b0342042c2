"""The live loop: observe → reconcile → controller.step → apply → report.

The same controller that runs in the twin runs here against real executors. This module holds no
policy: it turns what the executors observe and what the job book wants into the controller's
:class:`~wattbit.control.state.FleetState`, hands the controller's actions to the executor one by
one, and reports what happened (for the decision log and the audit trail). The only commands it
issues on its own are the mechanical ones: cancel a job its tenant cancelled.

The loop trusts the executor's observation over its own memory. A job the book says runs at
Kyushu but that Slurm does not know is pending again; a job Slurm runs that the book does not know
is reported as an orphan. The work done is counted from observation: a job seen running at two
consecutive ticks is credited ``gpus × duty × Δt`` [GPU-h].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from wattbit.control.executor import Executor, Observed
from wattbit.control.state import FleetState, JobState, JobStatus
from wattbit.domain import (
    Action,
    Cancel,
    DemandResponse,
    Job,
    Migrate,
    Reroute,
    SiteOutage,
    Start,
    Suspend,
    Throttle,
)
from wattbit.errors import ExecutorError, InvalidInput, ResidencyViolation, WattbitError
from wattbit.grid.carbon import MARGINAL_THERMAL_G_PER_KWH
from wattbit.power import work_rate_pu
from wattbit.units import jst_text, slots_per_day

__all__ = [
    "REPLAY_SHIFT",
    "BookedJob",
    "ControllerLike",
    "DecisionLike",
    "LiveLoop",
    "Outcome",
    "ReplayForecaster",
    "TickReport",
    "converged",
    "reconcile",
    "replay_offset",
    "utc_now",
]

RUN, CANCEL = "run", "cancel"


def utc_now() -> pd.Timestamp:
    """The wall clock as a UTC timestamp."""
    return pd.Timestamp.now(tz="UTC")


class DecisionLike(Protocol):
    """What :meth:`ControllerLike.step` returns (``wattbit.control.Decision``)."""

    actions: tuple[Action, ...]
    dr_commitments: dict[str, float]
    objective_terms: dict[str, float]
    status: str


class ControllerLike(Protocol):
    """The controller interface the loop drives (``wattbit.control.Controller``)."""

    def step(self, state: FleetState, events: Sequence[DemandResponse | SiteOutage] = ()) -> DecisionLike: ...

    def flexibility(self, state: FleetState, n_slots: int) -> pd.DataFrame: ...


@dataclass(frozen=True, slots=True)
class BookedJob:
    """A job as the job book holds it: the job, what its tenant wants (``"run"`` or
    ``"cancel"``) and the work credited so far [GPU-h]."""

    job: Job
    desired: str = RUN
    done_gpu_h: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one action: ``applied``, ``refused`` (residency), ``failed`` (the
    scheduler said no) or ``skipped`` (no such job, or its tenant cancelled it); ``at_s`` is the
    wall clock when the executor returned [s since the epoch]."""

    action: Action
    outcome: str
    error: str | None
    at_s: float


@dataclass(frozen=True)
class TickReport:
    """One turn of the loop.

    state : what the controller saw;  observed : the executor's view;  decision : the
    controller's decision (None when there was no controller call);  outcomes : the
    controller's actions, then the loop's mechanical ones, with their fate;
    done_gpu_h : work credited per job after this tick [GPU-h];  orphans : jobs active on the
    executor that the book does not know;  unreachable : sites whose scheduler did not answer
    (given to the controller as out of service for this turn);  started_s : wall clock at the start [s];
    observe_s, decide_s, apply_s : time spent in each phase [s];
    last_command_s : wall clock when the last command of this tick returned [s] (None: none).
    """

    at: pd.Timestamp
    state: FleetState
    observed: Mapping[str, Observed]
    decision: Any | None
    outcomes: tuple[Outcome, ...]
    done_gpu_h: Mapping[str, float]
    orphans: tuple[str, ...]
    unreachable: frozenset[str]
    started_s: float
    observe_s: float
    decide_s: float
    apply_s: float
    last_command_s: float | None

    @property
    def dr_commitments(self) -> dict[str, float]:
        return dict(getattr(self.decision, "dr_commitments", {}) or {})


def reconcile(
    book: Mapping[str, BookedJob],
    observed: Mapping[str, Observed],
    now: pd.Timestamp,
    sites_out: frozenset[str] = frozenset(),
    done_gpu_h: Mapping[str, float] | None = None,
) -> tuple[FleetState, list[Action], tuple[str, ...]]:
    """Desired against observed.

    Returns the state the controller sees (every job the book wants run, with the status the
    executor observed), the mechanical actions (cancel what a tenant cancelled and still runs)
    and the orphans (active on the executor, unknown to the book).

    >>> import pandas as pd
    >>> from wattbit.domain import Job
    >>> t = pd.Timestamp("2026-01-01", tz="UTC")
    >>> job = Job("j1", "acme", "training", 2, 1.0, t, None, "tokyo-dc", frozenset({"tokyo"}))
    >>> seen = {"j1": Observed("j1", JobStatus.RUNNING, "tokyo-dc", 1.0),
    ...         "x9": Observed("x9", JobStatus.RUNNING, "tokyo-dc", 1.0)}
    >>> state, mech, orphans = reconcile({"j1": BookedJob(job)}, seen, t)
    >>> state.jobs["j1"].status.value, state.jobs["j1"].site, mech, orphans
    ('running', 'tokyo-dc', [], ('x9',))
    >>> state, mech, _ = reconcile({"j1": BookedJob(job, desired="cancel")}, seen, t)
    >>> list(state.jobs), mech[0]
    ([], Cancel(job_id='j1', reason='cancelled by its tenant'))
    """
    done = done_gpu_h or {}
    jobs: dict[str, JobState] = {}
    mechanical: list[Action] = []
    for job_id, b in book.items():
        seen = observed.get(job_id)
        if b.desired == CANCEL:
            if seen is not None and seen.status.active:
                mechanical.append(Cancel(job_id, reason="cancelled by its tenant"))
            continue
        credited = float(done.get(job_id, b.done_gpu_h))
        if seen is None:
            jobs[job_id] = JobState(b.job, JobStatus.PENDING, None, 0.0, credited)
        else:
            jobs[job_id] = JobState(
                b.job, seen.status, seen.site,
                seen.duty_pu if seen.status is JobStatus.RUNNING else 0.0,
                credited, seen.busy_until if seen.status is JobStatus.MIGRATING else None,
            )
    orphans = tuple(sorted(j for j, o in observed.items() if j not in book and o.status.active))
    return FleetState(now=now, jobs=jobs, sites_out=frozenset(sites_out)), mechanical, orphans


def converged(action: Action, seen: Observed | None) -> bool:
    """Whether what the executor observes shows the action's effect.

    >>> from wattbit.domain import Start
    >>> converged(Start("j1", "kyushu-dc"), Observed("j1", JobStatus.PENDING, "kyushu-dc"))
    False
    >>> converged(Start("j1", "kyushu-dc"), Observed("j1", JobStatus.RUNNING, "kyushu-dc", 1.0))
    True
    """
    return _CONVERGED[type(action)](action, seen)


def _running_at(site: str, seen: Observed | None) -> bool:
    return seen is not None and seen.status is JobStatus.RUNNING and seen.site == site


_CONVERGED: dict[type, Callable[[Any, Observed | None], bool]] = {
    Start: lambda a, seen: _running_at(a.site, seen),
    Suspend: lambda a, seen: seen is None or seen.status is not JobStatus.RUNNING,
    Throttle: lambda a, seen: seen is None or seen.status is not JobStatus.RUNNING
    or abs(seen.duty_pu - a.duty_pu) < 0.01,
    Migrate: lambda a, seen: _running_at(a.destination, seen),
    Reroute: lambda a, seen: _running_at(a.site, seen),
    Cancel: lambda a, seen: seen is None or not seen.status.active,
}


@dataclass
class LiveLoop:
    """Drive an executor with a controller.

    controller : the one brain (None: observe and reconcile only — no decisions);
    executor : anything with ``apply(action, job)`` and ``observe()``;
    clock : the current instant (UTC);  wall : wall clock [s since the epoch].
    """

    controller: ControllerLike | None
    executor: Executor
    clock: Callable[[], pd.Timestamp] = utc_now
    wall: Callable[[], float] = time.time
    pending: dict[str, Action] = field(default_factory=dict, init=False)
    """The last action applied to each job whose effect the executor does not show yet."""
    _prev_at: pd.Timestamp | None = field(default=None, init=False)
    _prev: dict[str, Observed] = field(default_factory=dict, init=False)

    def resume(self, observed: Mapping[str, Observed], at: pd.Timestamp | None) -> None:
        """Start from an earlier observation (``at``, UTC), as a restarted process does from the
        one it stored: the next turn credits the work of the jobs running then."""
        self._prev_at, self._prev = (None, {}) if at is None else (pd.Timestamp(at).tz_convert("UTC"), dict(observed))

    def settle(self, observed: Mapping[str, Observed]) -> None:
        """Forget the pending actions whose effect the executor now shows."""
        self.pending = {j: a for j, a in self.pending.items() if not converged(a, observed.get(j))}

    def snapshot(self, book: Mapping[str, BookedJob], sites_out: frozenset[str] = frozenset()
                 ) -> tuple[FleetState, dict[str, Observed]]:
        """The state the controller would see now, without deciding anything."""
        observed = self.executor.observe()
        state, _, _ = reconcile(book, observed, self.clock(), sites_out)
        return state, observed

    def credit(self, book: Mapping[str, BookedJob], observed: Mapping[str, Observed],
               now: pd.Timestamp) -> dict[str, float]:
        """Work done per job after crediting the time since the last tick [GPU-h]."""
        dt_h = 0.0 if self._prev_at is None else max(0.0, (now - self._prev_at).total_seconds() / 3600)
        out = {}
        for job_id, b in book.items():
            done = b.done_gpu_h
            before, after = self._prev.get(job_id), observed.get(job_id)
            if (before is not None and after is not None and before.status is JobStatus.RUNNING
                    and after.status in (JobStatus.RUNNING, JobStatus.SUSPENDED, JobStatus.MIGRATING,
                                         JobStatus.DONE)):
                done += b.job.gpus * work_rate_pu(before.duty_pu) * dt_h  # (60 % of the work at 50 % duty)
            if after is not None and after.status is JobStatus.DONE:
                done = max(done, b.job.work_gpu_h)
            out[job_id] = min(done, b.job.work_gpu_h)
        return out

    def tick(
        self,
        book: Mapping[str, BookedJob],
        sites_out: frozenset[str] = frozenset(),
        events: Sequence[DemandResponse | SiteOutage] = (),
    ) -> TickReport:
        """One turn: observe, reconcile, decide, apply. Executor errors on one action do not
        stop the others; they are reported."""
        started = self.wall()
        t0 = time.perf_counter()
        observed = self.executor.observe()
        now = self.clock()
        # a site whose scheduler did not answer gets no new work this turn (its jobs are reported
        # as last seen, so they are neither lost nor started a second time elsewhere)
        unreachable = frozenset(getattr(self.executor, "unreachable", ()))
        sites_out = frozenset(sites_out) | unreachable
        done = self.credit(book, observed, now)
        state, mechanical, orphans = reconcile(book, observed, now, sites_out, done)
        t1 = time.perf_counter()
        decision = None
        if self.controller is not None:
            decision = self.controller.step(state, events)
        t2 = time.perf_counter()
        outcomes: list[Outcome] = []
        wanted = {j for j, b in book.items() if b.desired == RUN}
        for action in tuple(getattr(decision, "actions", ()) or ()) + tuple(mechanical):
            b = book.get(action.job_id)
            if b is None or (action.job_id not in wanted and not isinstance(action, Cancel)):
                why = "no such job in the book" if b is None else "its tenant cancelled it"
                outcomes.append(Outcome(action, "skipped", why, self.wall()))
                continue
            try:
                self.executor.apply(action, b.job)
                outcomes.append(Outcome(action, "applied", None, self.wall()))
            except ResidencyViolation as exc:
                outcomes.append(Outcome(action, "refused", str(exc), self.wall()))
            except (ExecutorError, WattbitError) as exc:
                outcomes.append(Outcome(action, "failed", str(exc), self.wall()))
        t3 = time.perf_counter()
        applied = [o.at_s for o in outcomes if o.outcome != "skipped"]
        self._prev_at, self._prev = now, dict(observed)
        self.pending = {j: a for j, a in self.pending.items() if j in wanted}
        self.settle(observed)
        self.pending.update({o.action.job_id: o.action for o in outcomes if o.outcome == "applied"})
        return TickReport(
            at=now, state=state, observed=observed, decision=decision, outcomes=tuple(outcomes),
            done_gpu_h=done, orphans=orphans, unreachable=unreachable, started_s=started, observe_s=t1 - t0,
            decide_s=t2 - t1, apply_s=t3 - t2, last_command_s=max(applied) if applied else None,
        )


def replay_offset(replay_start: pd.Timestamp, now: pd.Timestamp, step_s: float = 1800.0,
                  n_slots: int = 1, data_dir=None) -> pd.Timedelta:
    """The :class:`ReplayForecaster` offset that makes the slot of ``now`` stand for the recorded
    slot of ``replay_start``; later instants follow the wall clock from there.

    Pinning the replay makes the grid the controller sees independent of the hour the process
    starts at (tests, demos of a chosen day). Raises InvalidInput when ``replay_start`` and an
    ``n_slots`` horizon do not fit inside the recorded data.

    replay_start : recorded instant (UTC-aware);  now : the live instant it stands for (UTC);
    step_s : slot length [s];  n_slots : the planner's horizon [slots];  data_dir : dataset
    folder (default the bundled one)

    >>> now = pd.Timestamp("2026-05-01 10:40", tz="UTC")
    >>> now.floor("30min") + replay_offset(pd.Timestamp("2022-08-01 09:00", tz="UTC"), now)
    Timestamp('2022-08-01 09:00:00+0000', tz='UTC')
    >>> replay_offset(pd.Timestamp("1999-01-01 09:00", tz="UTC"), now)
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: replay_start = 1999-01-01 18:00 JST: the recorded grid covers ...
    """
    from wattbit.grid import signal_span

    step = pd.Timedelta(seconds=float(step_s))
    start = pd.Timestamp(replay_start).tz_convert("UTC").floor(step)
    first, last = signal_span(data_dir)
    if start < first or start + n_slots * step > last:
        raise InvalidInput(
            f"replay_start = {jst_text(replay_start)}: the recorded grid covers {jst_text(first)} .. "
            f"{jst_text(last)}; pick an instant from {jst_text(first)} to {jst_text(last - n_slots * step)} "
            f"(room for the {n_slots}-slot horizon)")
    return start - pd.Timestamp(now).tz_convert("UTC").floor(step)


REPLAY_SHIFT = pd.Timedelta(days=364)
"""Whole 52-week shift used to map a live instant into the recorded years: it keeps the weekday
and the time of day (JEPX prices follow both) and moves the season by one day a year."""


class ReplayForecaster:
    """The grid as the live control plane sees it.

    Prices and carbon intensities are the recorded ones of the same season in the bundled grid
    years: the live instant is shifted back by whole 52-week steps (:data:`REPLAY_SHIFT`) until
    the horizon lies inside the data (an instant inside the data maps to itself). Curtailment
    headroom is what the grid side posted (``posted``; latest wins), 0 MW where nothing was
    posted — or, with ``replay_curtailment``, the recorded curtailment there. Where posted
    curtailment is positive the marginal intensity is 0 (the next MWh is surplus renewable
    power, as in :class:`~wattbit.grid.GridSignals`).

    areas : areas to forecast (the fleet's);  posted : ``posted(start, end)`` → frame with columns
    time, area, curtailment_mw [MW];  step_s : slot length [s];  data_dir : dataset folder
    (default the bundled one);  replay_curtailment : fill unposted slots from the record;
    offset : added to the live instant before the mapping, a whole number of slots (a replay
    pinned to a chosen recorded instant, see :func:`replay_offset`; None: no offset).
    """

    def __init__(self, areas, posted: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None = None,
                 step_s: float = 1800.0, data_dir=None, replay_curtailment: bool = False,
                 offset: pd.Timedelta | None = None):
        self.areas = tuple(areas)
        self.posted = posted
        self.step_s = float(step_s)
        slots_per_day(self.step_s, "replay forecaster")  # a replay moves by whole days and weeks
        self.data_dir = data_dir
        self.replay_curtailment = replay_curtailment
        self.offset = pd.Timedelta(0) if offset is None else pd.Timedelta(offset)
        if self.offset % pd.Timedelta(seconds=self.step_s) != pd.Timedelta(0):
            raise InvalidInput(f"replay forecaster: offset = {self.offset} is not a whole number of "
                               f"{self.step_s:g} s slots; round it to a slot")
        self._cache: tuple[tuple[pd.Timestamp, int], Any] | None = None

    def mapped(self, start: pd.Timestamp, n_slots: int) -> pd.Timestamp:
        """The recorded instant that stands for ``start`` (a slot start) [UTC]."""
        from wattbit.grid import signal_span

        first, last = signal_span(self.data_dir)
        span = pd.Timedelta(seconds=self.step_s * n_slots)
        if last - first < span:
            raise InvalidInput(f"replay forecaster: the data ({jst_text(first)} .. {jst_text(last)}) is shorter "
                               f"than the horizon of {n_slots} slots; plan over fewer slots (horizon_slots)")
        k = 0
        if start + span > last:
            k = int(-(-(start + span - last) // REPLAY_SHIFT))
        mapped = start - k * REPLAY_SHIFT
        while mapped < first:  # an instant before the data: shift forward instead
            mapped += REPLAY_SHIFT
        if mapped + span > last:
            raise InvalidInput(f"replay forecaster: no 52-week shift of {jst_text(start)} fits a {n_slots}-slot "
                               f"horizon inside the data ({jst_text(first)} .. {jst_text(last)}); plan over "
                               "fewer slots (horizon_slots)")
        return mapped

    def _recorded(self, mapped: pd.Timestamp, n_slots: int):
        import warnings

        from wattbit.grid import GapWarning, load_signals

        day = mapped.floor("D")
        n_days = int(-(-(mapped - day + pd.Timedelta(seconds=self.step_s * n_slots)) // pd.Timedelta(days=1)))
        key = (day, n_days)
        if self._cache is None or self._cache[0] != key:
            from wattbit.grid import signal_span

            _, last = signal_span(self.data_dir)
            end = min(day + pd.Timedelta(days=n_days), last)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GapWarning)
                sig = load_signals(day, end, self.step_s, self.areas, self.data_dir)
            self._cache = (key, sig)
        sig = self._cache[1]
        return sig.window(sig.slot(mapped), n_slots)

    def forecast(self, issued_at: pd.Timestamp, n_slots: int):
        """Signals for the ``n_slots`` slots from the one containing ``issued_at``."""
        from wattbit.grid import GridSignals

        step = pd.Timedelta(seconds=self.step_s)
        start = pd.Timestamp(issued_at).tz_convert("UTC").floor(step)
        rec = self._recorded(self.mapped(start + self.offset, n_slots), n_slots)
        time_index = pd.date_range(start, periods=len(rec.time), freq=step, name="time")
        curt = rec.curtailment_mw.copy() if self.replay_curtailment else np.zeros_like(rec.curtailment_mw)
        # the record's marginal intensity is 0 where it curtailed; where that curtailment is not
        # replayed (or is overridden by a posted 0 below), the next MWh is thermal again
        marginal = np.where(curt > 0, rec.carbon_marginal_g_per_kwh, MARGINAL_THERMAL_G_PER_KWH)
        if self.posted is not None:
            posted = self.posted(start, time_index[-1] + step)
            if len(posted):
                slot = ((pd.to_datetime(posted["time"], utc=True) - start) // step).to_numpy()
                col = {a: i for i, a in enumerate(self.areas)}
                for s, area, mw in zip(slot, posted["area"], posted["curtailment_mw"]):
                    if 0 <= s < len(time_index) and area in col:
                        curt[int(s), col[area]] = float(mw)
                        marginal[int(s), col[area]] = 0.0 if mw > 0 else MARGINAL_THERMAL_G_PER_KWH
        return GridSignals(time_index, self.areas, curt, rec.price_jpy_per_mwh.copy(),
                           rec.carbon_avg_g_per_kwh.copy(), marginal)
