"""The control plane behind the API: the store, the executor, the controller and the live loop.

Route handlers call one method here each; the methods hold no policy — every placement, move and
commitment comes from :class:`wattbit.control.Controller`, run by
:class:`wattbit.control.live.LiveLoop`. One lock serialises the loop's turns: a periodic tick, a
demand-response request and an operator's "decide now" never interleave.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.control.controller import Controller
from wattbit.control.executor import Executor, Observed
from wattbit.control.live import LiveLoop, ReplayForecaster, TickReport, replay_offset, utc_now
from wattbit.control.state import FleetState, JobStatus
from wattbit.domain import Action, DemandResponse, Fleet, Job, Weights
from wattbit.errors import (
    ExecutorError,
    Infeasible,
    InvalidInput,
    UnknownName,
    WattbitError,
    unknown_name,
)
from wattbit.scenarios import load_fleet
from wattbit.service.auth import Permission, Principal, Role
from wattbit.service.db import DemandResponseRow, JobRow
from wattbit.service.metrics import Metrics
from wattbit.service.settings import Settings
from wattbit.service.store import SYSTEM, TERMINAL_STATUSES, Store
from wattbit.units import jst_text
from wattbit.workload import check_jobs

__all__ = ["Conflict", "ControlPlane", "Forbidden", "NotFound", "build_executor"]

log = logging.getLogger("wattbit.service")

PENDING_REFRESH_S = 2.0
"""While actions are in flight, the executors are observed this often [s] (without deciding)."""


class Forbidden(WattbitError):
    """The caller's role does not allow this (HTTP 403)."""


class NotFound(UnknownName):
    """No such resource, or none the caller may see (HTTP 404)."""


class Conflict(WattbitError):
    """The request contradicts the current state, e.g. a request id already used (HTTP 409)."""


class _DryRun:
    """Executor of the dry-run mode: observes nothing, refuses every command (the decisions are
    still made and logged)."""

    def apply(self, action: Action, job: Job) -> None:
        raise ExecutorError("dry run: no executor is configured, nothing was executed")

    def observe(self) -> dict[str, Observed]:
        return {}


class _Simulated:
    """The twin's simulated executor behind the live API (jobs join it on their first action)."""

    def __init__(self, fleet: Fleet):
        from wattbit.sim.executor import SimulatedExecutor

        self.sim = SimulatedExecutor(fleet)

    def apply(self, action: Action, job: Job) -> None:
        if job.job_id not in self.sim.states:
            self.sim.submit(job)
        self.sim.apply(action, job)

    def observe(self) -> dict[str, Observed]:
        return self.sim.observe()


def build_executor(settings: Settings, fleet: Fleet) -> Executor:
    """The executor ``settings.executor`` names."""
    if settings.executor == "slurm":
        from wattbit.control.slurm import SlurmExecutor, load_slurm_sites

        sites = load_slurm_sites(settings.slurm_sites)
        return SlurmExecutor(fleet, sites, settings.state_dir / "slurm")
    if settings.executor == "simulated":
        return _Simulated(fleet)
    return _DryRun()


def check_settings(settings: Settings, clock=utc_now) -> tuple[pd.Timedelta, Fleet]:
    """Everything in ``settings`` that the control plane refuses at its start, checked without
    creating anything (no folder, database or connection to a cluster): the replayed instant, the
    fleet, the policy and the Slurm clusters file. Returns the replay's offset and the fleet."""
    from wattbit.control.policies import policy

    offset = pd.Timedelta(0)
    if settings.replay_start is not None:
        offset = replay_offset(settings.replay_start, clock(), settings.step_s, settings.horizon_slots)
    fleet = load_fleet(settings.fleet)
    if policy(settings.policy).foresight:
        raise InvalidInput(f"settings: policy = {settings.policy!r} plans with the real future known, which a "
                           "control plane does not have; use wls (or baseline, temporal, spatial)")
    if settings.executor == "slurm":
        from wattbit.control.slurm import load_slurm_sites

        load_slurm_sites(settings.slurm_sites)
    return offset, fleet


def absorbed_mwh(load_mw: Mapping[str, float], forecaster, start: pd.Timestamp, end: pd.Timestamp,
                 step_s: float) -> dict[str, float]:
    """Curtailment the fleet's load absorbed per area over [start, end) [MWh]: the load held
    from ``start`` (``load_mw`` per area), against the posted headroom of each slot it spans,
    slot by slot (turns may be hours apart)."""
    step = pd.Timedelta(seconds=step_s)
    n_slots = max(1, int(np.ceil((end - start.floor(step)) / step)))
    fc = forecaster.forecast(start, n_slots)
    slot_start = fc.time[:n_slots].as_unit("ns")  # (asi8 counts the index's own unit)
    lo = np.maximum(slot_start.asi8, start.as_unit("ns").value)
    hi = np.minimum((slot_start + step).asi8, end.as_unit("ns").value)
    hours = np.clip(hi - lo, 0, None) / 3.6e12
    out = {}
    for a, mw in load_mw.items():
        k = fc.areas.index(a) if a in fc.areas else None
        curt = fc.curtailment_mw[:n_slots, k] if k is not None else np.zeros(n_slots)
        out[a] = float((np.minimum(mw, curt) * hours).sum())
    return out


@dataclass(frozen=True)
class DRResult:
    row: DemandResponseRow
    report: TickReport


class ControlPlane:
    """Everything one control-plane process runs.

    settings : the configuration;  store : the database;  fleet : the sites;
    executor : carries out actions;  controller : the one brain;  clock : now (UTC).
    """

    def __init__(self, settings: Settings, store: Store, fleet: Fleet, executor: Executor,
                 controller: Controller, clock=utc_now):
        self.settings = settings
        self.store = store
        self.fleet = fleet
        self.executor = executor
        self.controller = controller
        self.clock = clock
        self.loop = LiveLoop(controller, executor, clock=clock)
        self.loop.resume(*store.last_observed())  # work done while the process was down is credited
        self.metrics = Metrics()
        self.lock = threading.RLock()
        self.last_report: TickReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def build(cls, settings: Settings, clock=utc_now) -> ControlPlane:
        """Wire a control plane from its settings (database migrated, admin token ensured)."""
        from dataclasses import replace

        from wattbit.network import DEFAULT_PARAMS, LightpathBook, build_apn

        offset, fleet = check_settings(settings, clock)  # before anything is created
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.url)
        if settings.admin_token:
            store.ensure_token(settings.admin_token, Role.ADMIN, "admin")
        forecaster = ReplayForecaster(fleet.areas, store.curtailment, settings.step_s,
                                      replay_curtailment=settings.replay_curtailment, offset=offset)
        params = DEFAULT_PARAMS
        if settings.lightpath_setup_s is not None:
            params = replace(DEFAULT_PARAMS, lightpath_setup_s=settings.lightpath_setup_s)
        apn = build_apn(fleet, params=params)
        controller = Controller(fleet, apn, settings.policy, Weights(), forecaster,
                                step_s=settings.step_s, horizon_slots=settings.horizon_slots,
                                time_limit_s=settings.solver_time_limit_s,
                                lightpaths=LightpathBook(apn))  # moves wait for free wavelengths, as in the twin
        return cls(settings, store, fleet, build_executor(settings, fleet), controller, clock)

    # --- the loop -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the periodic loop (when ``tick_s`` > 0)."""
        if self.settings.tick_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wattbit-live-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self.store.close()

    def _run(self) -> None:
        """A controller turn every ``tick_s`` (the first at once, so a restarted process
        reconciles before anything else), and an observation whenever a move in flight is due
        (the executor carries it on)."""
        next_tick = time.monotonic()
        while True:
            delay = next_tick - time.monotonic()
            if self.loop.pending:  # follow actions in flight until the executor shows them done
                delay = min(delay, PENDING_REFRESH_S)
            wake = getattr(self.executor, "next_wakeup_s", None)
            due = wake() if wake is not None else None
            if due is not None:
                delay = min(delay, due - time.time() + 0.05)
            if self._stop.wait(max(0.05, delay)):
                return
            try:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.settings.tick_s
                    self.tick("periodic", SYSTEM)
                else:
                    self.refresh()
            except Exception:  # keep the loop alive; the failure is in the log
                log.exception("live loop: turn failed")
                self._stop.wait(1.0)

    def refresh(self) -> None:
        """Observe the executors and record what they show, without a decision."""
        with self.lock:
            observed = self.executor.observe()
            self.store.record_observed(observed, self.clock())
            self.loop.settle(observed)
            self.metrics.pending_actions.set(len(self.loop.pending))

    def tick(self, trigger: str, actor: Principal, events: Sequence = ()) -> tuple[TickReport, int]:
        """One turn of the live loop, recorded. Open demand-response requests are handed to the
        controller every turn (it keeps each once), so a restarted process honours them."""
        with self.lock:
            now = self.clock()
            open_dr = [self._dr_event(r) for r in self.store.open_demand_response(now)]
            given = {e.request_id for e in events if isinstance(e, DemandResponse)}
            events = list(events) + [e for e in open_dr if e.request_id not in given]
            report = self.loop.tick(self.store.book(), self.store.sites_out(), events)
            decision_id = self.store.record_tick(report, trigger, actor)
            self._account(report)
            self.last_report = report
            return report, decision_id

    @staticmethod
    def _dr_event(r: DemandResponseRow) -> DemandResponse:
        return DemandResponse(r.request_id, r.direction, r.area, r.power_mw, pd.Timestamp(r.start),
                              pd.Timestamp(r.end), r.response_deadline_s, r.sender)

    # --- accounting ---------------------------------------------------------------------------
    def site_load(self, state: FleetState) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
        """Per site: facility power [MW] (as the controller counts it for demand response),
        duty-weighted busy GPUs [-], running jobs [-]."""
        power = dict(zip(self.controller.fa.sites, self.controller.site_load_mw(state).tolist()))
        busy = dict.fromkeys(power, 0.0)
        running = dict.fromkeys(power, 0)
        for st in state.jobs.values():
            if st.status is JobStatus.RUNNING and st.site in power:
                busy[st.site] += st.job.gpus * st.duty_pu
                running[st.site] += 1
        return power, busy, running

    def _account(self, report: TickReport) -> None:
        m = self.metrics
        power, busy, _ = self.site_load(report.state)
        m.sites(power, busy)
        prev = self.last_report
        if prev is not None and report.at > prev.at:
            load = self.controller.area_load_mw(prev.state)
            m.absorbed(absorbed_mwh(load, self.controller.forecaster, prev.at, report.at,
                                    self.settings.step_s))
        m.pending_actions.set(len(self.loop.pending))
        m.job_counts(self.store.job_counts())
        if report.decision is not None:
            m.decision_s.observe(report.decide_s)
        for o in report.outcomes:
            m.outcomes.labels(kind=type(o.action).__name__.lower(), outcome=o.outcome).inc()

    # --- tenants ------------------------------------------------------------------------------
    def submit(self, who: Principal, *, name: str, kind: str, gpus: int, runtime_h: float,
               release: pd.Timestamp | None, deadline: pd.Timestamp | None, allowed_areas: Sequence[str],
               home_site: str | None, priority: int, checkpoint_gb: float, user_area: str | None,
               rtt_budget_s: float | None) -> JobRow:
        """Book a tenant's job; the controller places it at its next turn."""
        if who.role is not Role.TENANT:
            raise Forbidden(f"{who.role.value} tokens do not submit jobs; use a tenant token")
        areas = frozenset(allowed_areas)
        if home_site is None:
            candidates = self.fleet.sites_in(areas)
            if not candidates:
                raise InvalidInput(
                    f"allowed_areas: {sorted(areas)} holds no site of fleet {self.fleet.name!r} "
                    f"(its areas: {', '.join(self.fleet.areas)})"
                )
            home_site = candidates[0].name
        elif home_site not in self.fleet.site_names:
            raise unknown_name("site", home_site, self.fleet.site_names, field="home_site")
        elif self.fleet.site(home_site).area not in areas:
            raise InvalidInput(f"home_site: {home_site!r} is in area {self.fleet.site(home_site).area!r}, "
                               f"outside allowed_areas {sorted(areas)}")
        job = Job(
            job_id="j" + uuid.uuid4().hex[:12], tenant=who.subject, kind=kind, gpus=gpus,
            runtime_h=runtime_h, release=release if release is not None else self.clock(), deadline=deadline,
            home_site=home_site, allowed_areas=areas, priority=priority, checkpoint_gb=checkpoint_gb,
            user_area=user_area, rtt_budget_s=rtt_budget_s,
        )
        try:  # (its home site and areas are checked above: what check_jobs can refuse is its GPUs)
            check_jobs(self.fleet, [job])
        except InvalidInput as exc:
            raise InvalidInput(f"gpus: {exc}") from None
        if user_area is not None:  # (the APN names user_area when its users are too far from the fibre)
            try:
                for s in self.fleet.sites_in(areas):
                    self.controller.apn.rtt_s(user_area, s.name)
            except Infeasible as exc:  # no railway route: refused like users too far from the fibre
                raise InvalidInput(f"user_area: {exc}") from None
        row = self.store.add_job(job, name, who.token_id)
        self.store.audit(who, "job.submit", f"job:{job.job_id}",
                         {"kind": job.kind.value, "gpus": gpus, "allowed_areas": sorted(areas)})
        return row

    def job_for(self, who: Principal, job_id: str) -> JobRow:
        """A job the caller may see; another tenant's job is 'not found', like a missing one."""
        row = self.store.get_job(job_id)
        if row is None or not (who.can(Permission.READ_ALL_JOBS) or row.tenant == who.subject):
            raise NotFound(f"job {job_id!r} not found")
        return row

    def demand_response_for(self, who: Principal, request_id: str) -> DemandResponseRow:
        """A demand-response request the caller may see: its sender's, or any with the right to
        read decisions; another sender's is 'not found', like a missing one."""
        row = self.store.get_demand_response(request_id)
        if row is None or not (who.can(Permission.READ_DECISIONS) or row.sender == who.subject):
            raise NotFound(f"demand-response request {request_id!r} not found")
        return row

    def jobs_for(self, who: Principal, status: str | None, limit: int, offset: int) -> list[JobRow]:
        if who.can(Permission.READ_ALL_JOBS):
            tenant = None
        elif who.role is Role.TENANT:
            tenant = who.subject
        else:
            raise Forbidden(f"{who.role.value} tokens may not list jobs")
        return self.store.list_jobs(tenant=tenant, status=status, limit=limit, offset=offset)

    def cancel(self, who: Principal, job_id: str) -> JobRow:
        """Cancel a job: at once if no executor has it, else by the next turn's command."""
        row = self.store.get_job(job_id)
        mine = row is not None and row.tenant == who.subject and who.role is Role.TENANT
        if row is None or not (mine or who.can(Permission.CANCEL_ANY_JOB)):
            raise NotFound(f"job {job_id!r} not found")
        if row.status in TERMINAL_STATUSES:
            raise Conflict(f"job {job_id!r} is already {row.status}; there is nothing to cancel")
        with self.lock:  # (no turn may start it between the look and the mark)
            seen = self.executor.observe().get(job_id)
            reached = job_id in self.loop.pending or (seen is not None and seen.status.active and seen.site is not None)
            row = self.store.request_cancel(job_id, reached_executor=reached)
            self.store.audit(who, "job.cancel", f"job:{job_id}", {})
            if row is not None and row.desired == "cancel" and row.status not in TERMINAL_STATUSES:
                self.tick("cancel", who)
                row = self.store.get_job(job_id)
        return row

    def history(self, who: Principal, job_id: str, limit: int):
        self.job_for(who, job_id)
        return self.store.job_history(job_id, limit)

    # --- grid side ----------------------------------------------------------------------------
    def post_curtailment(self, who: Principal, area: str, kind: str,
                         slots: Sequence[tuple[pd.Timestamp, float]], body: dict):
        if area not in self.fleet.areas:
            raise InvalidInput(f"area: the fleet has no site in {area!r} (its areas: {', '.join(self.fleet.areas)})")
        return self.store.add_curtailment(area, kind, slots, who, body)

    def demand_response(self, who: Principal, *, request_id: str | None, direction: str, area: str,
                        power_mw: float, start: pd.Timestamp, end: pd.Timestamp,
                        response_deadline_s: float, body: dict) -> DRResult:
        """Record the request, let the controller answer at once, and report the MW committed and
        how fast the fleet reacted (request → decision → last command issued)."""
        received_s = time.time()
        request_id = request_id or "dr-" + uuid.uuid4().hex[:12]
        dr = DemandResponse(request_id, direction, area, power_mw, start, end, response_deadline_s, who.subject)
        if area not in self.fleet.areas:
            raise InvalidInput(f"area: the fleet has no site in {area!r} (its areas: {', '.join(self.fleet.areas)})")
        now = self.clock()
        if end <= now:
            raise InvalidInput(f"end: the window ended at {jst_text(end)}, before now ({jst_text(now)}); "
                               "send requests for windows still to come")
        with self.lock:  # (the check and the insert as one: a second request with the id waits)
            if self.store.get_demand_response(request_id) is not None:
                raise Conflict(f"request_id: {request_id!r} was already received; use a new id")
            self.store.add_demand_response(DemandResponseRow(
                request_id=request_id, direction=dr.direction.value, area=dr.area, power_mw=power_mw,
                start=start.to_pydatetime(), end=end.to_pydatetime(), response_deadline_s=response_deadline_s,
            ), who, body)
        report, decision_id = self.tick("demand_response", who, events=(dr,))
        committed = report.dr_commitments.get(request_id)
        decided_s = report.started_s + report.observe_s + report.decide_s - received_s
        reaction = (report.last_command_s - received_s) if report.last_command_s is not None else decided_s
        self.metrics.reaction_s.observe(reaction)
        row = self.store.commit_demand_response(
            request_id, committed, decision_id, "committed" if committed is not None else "outside-horizon",
            decided_in_s=decided_s, reaction_s=reaction)
        return DRResult(row, report)

    def flexibility(self, n_slots: int) -> pd.DataFrame:
        with self.lock:
            state, _ = self.loop.snapshot(self.store.book(), self.store.sites_out())
        return self.controller.flexibility(state, n_slots)

    # --- operators ----------------------------------------------------------------------------
    def fleet_status(self) -> dict:
        with self.lock:
            state, _ = self.loop.snapshot(self.store.book(), self.store.sites_out())
        power, busy, running = self.site_load(state)
        rows = self.store.site_rows()
        last = self.store.latest_decision()
        return {
            "fleet": self.fleet.name, "now": state.now.to_pydatetime(), "executor": self.settings.executor,
            "policy": self.controller.policy.name,
            "sites": [{
                "name": s.name, "area": s.area, "gpu_count": s.gpu_count,
                "in_service": rows[s.name].in_service if s.name in rows else True,
                "gpus_busy": busy[s.name], "jobs_running": running[s.name],
                "facility_power_mw": power[s.name], "note": rows[s.name].note if s.name in rows else "",
            } for s in self.fleet.sites],
            "jobs": self.store.job_counts(), "pending_actions": len(self.loop.pending),
            "last_decision_id": last.decision_id if last else None,
            "last_decision_at": last.at if last else None,
        }

    def set_site_service(self, who: Principal, site: str, in_service: bool, note: str):
        if site not in self.fleet.site_names:
            raise NotFound(str(unknown_name("site", site, self.fleet.site_names)))
        self.store.set_site_service(site, in_service, note, who)
        self.tick("site-in-service" if in_service else "site-out-of-service", who)
        return next(s for s in self.fleet_status()["sites"] if s["name"] == site)
