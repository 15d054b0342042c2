"""The receding-horizon Workload-Shift controller: the one brain of the twin and the control plane.

Every slot (and at once on an event) it reads the fleet's observed state and the grid forecast,
solves the planning LP over the horizon, carries out the first block's decisions (dispatch) and
drops the rest. The twin runs it against a recorded world; the control plane against real
schedulers. Policies only switch levers (see :mod:`wattbit.control.policies`).
"""

from __future__ import annotations

import bisect
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wattbit.control.dispatch import Placement, dispatch_fifo, dispatch_plan, slack_h
from wattbit.control.executor import restart_delay_s
from wattbit.control.inference_forecast import InferenceForecaster
from wattbit.control.policies import Policy
from wattbit.control.policies import policy as _policy
from wattbit.control.state import ACTIVE_STATUSES, RUNNING_STATUSES, FleetState, JobState, JobStatus
from wattbit.domain import (
    Action,
    DemandResponse,
    DRDirection,
    Fleet,
    Job,
    JobKind,
    SiteOutage,
    Weights,
)
from wattbit.domain._validate import integer
from wattbit.domain.scenario import check_forecast_days
from wattbit.errors import Infeasible, InvalidInput
from wattbit.grid import Forecaster
from wattbit.grid.forecast import DEFAULT_CLIMATOLOGY_DAYS
from wattbit.network.apn import MoveCost
from wattbit.plan import build as pb
from wattbit.plan.lp import PlanResult, solve
from wattbit.plan.problem import Blocks, PlanningProblem, weight_kwargs
from wattbit.power import throttled_mw_per_gpu

__all__ = ["Controller", "Decision"]


@dataclass(frozen=True, eq=False)
class Decision:
    """What the controller decided at ``now``, and why.

    actions : commands for the executor;  placements : where each running job runs this slot;
    dr_commitments : MW the fleet commits per demand-response request [MW];
    status : solver status ("fifo" for the baseline);  objective_terms : the LP objective's
    parts [JPY];  decide_s : wall time of the decision [s].
    """

    now: pd.Timestamp
    actions: tuple[Action, ...]
    placements: dict[str, Placement]
    dr_commitments: dict[str, float] = field(default_factory=dict)
    status: str = "fifo"
    objective_jpy: float | None = None
    bound_jpy: float | None = None
    objective_terms: dict = field(default_factory=dict)
    decide_s: float = 0.0
    plan: PlanResult | None = None


@dataclass(frozen=True, eq=False)
class _StoredPlan:
    """The last plan solved: when, the problem and its answer, each job's class in it, and the
    slot (from the plan's start) before which each of its blocks ends."""

    now: pd.Timestamp
    problem: PlanningProblem
    result: PlanResult
    work_of: dict[str, int]
    service_of: dict[str, int]
    block_ends: tuple[int, ...]


class Controller:
    """Receding-horizon controller.

    fleet, apn : what it controls;  policy : lever set (name or :class:`Policy`);
    weights : objective weights;  forecaster : the grid as seen at decision time;
    step_s : slot length [s];  horizon_slots : look-ahead [slots];  fine_slots : slots planned
    one by one before blocks coarsen;  pacing_pu : share of the time-proportional progress a job
    with a deadline beyond the horizon must make inside it [-];
    oracle_plan : for the ``oracle`` policy, the plan solved once with the real future
    (see :func:`wattbit.control.oracle.plan_oracle`); each slot then follows it;
    replan_slots : solve the LP at most every this many slots [slots]; in between, each slot
    dispatches the stored plan's block for that slot against the jobs observed now (a job of a
    class the stored plan does not have waits for the next plan unless it is out of slack). An
    event (demand response, outage) forces a new plan at once. 1 (the default) plans every slot;
    at most ``fine_slots``, so that the slots between plans lie in the fine blocks;
    fine_block_slots : slots per fine block: 1 (the default) plans the fine slots one by one; with
    ``replan_slots`` slots, one target per class and site holds from one plan to the next (a
    plan less than half as large; docs/controller.md, "Horizon blocks");
    coarse_blocks : blocks of each coarser size (2, 4, 8 … fine blocks) after the fine ones
    (default half the fine blocks; see :meth:`Blocks.telescoping`); 1 makes the LP about a
    quarter smaller;
    inference_forecast_days : days of observed online-inference demand whose mean at the same time
    of day the plan expects from serving windows not released yet (:class:`InferenceForecaster`);
    0 plans with released inference only.
    """

    SERVICE_KEY_CACHE_SIZE = 10_000
    """Service classes remembered per set of the fields they depend on before the memory is
    cleared: jobs share a few sets (a live service takes any RTT budget its tenants give)."""

    def __init__(self, fleet: Fleet, apn, policy: str | Policy = "wls", weights: Weights | None = None,
                 forecaster: Forecaster | None = None, *, step_s: float = 1800.0,
                 horizon_slots: int = 96, fine_slots: int = 4, pacing_pu: float = 1.0,
                 lightpaths=None, oracle_plan=None, time_limit_s: float = 60.0,
                 replan_slots: int = 1, coarse_blocks: int | None = None, fine_block_slots: int = 1,
                 inference_forecast_days: int = DEFAULT_CLIMATOLOGY_DAYS):
        self.fleet = fleet
        self.apn = apn
        self.policy = _policy(policy)
        self.weights = weights if weights is not None else Weights()
        self.forecaster = forecaster
        self.step_s = float(step_s)
        self.horizon_slots = integer("controller", "horizon_slots", horizon_slots, low=1)
        self.fine_slots = integer("controller", "fine_slots", fine_slots, low=0)
        self.pacing_pu = float(pacing_pu)
        self.lightpaths = lightpaths
        self.oracle_plan = oracle_plan
        self.time_limit_s = time_limit_s
        self.replan_slots = integer(
            "controller", "replan_slots", replan_slots, low=1, high=max(1, self.fine_slots),
            note=f" (fine_slots = {self.fine_slots}: the slots between plans lie in the fine blocks)")
        Blocks.telescoping(1, 1.0, self.fine_slots, coarse_blocks, fine_block_slots)  # refuses bad values now
        self.coarse_blocks = None if coarse_blocks is None else int(coarse_blocks)
        self.fine_block_slots = int(fine_block_slots)
        self._stored: _StoredPlan | None = None
        self.plans_solved = 0
        self.highs_s = 0.0
        """HiGHS's own wall time over the plans so far [s] (a share of ``time_s["solve"]``, which
        also holds building the LP's matrix)."""
        self.time_s: dict[str, float] = dict.fromkeys(("build", "solve", "stored", "dispatch"), 0.0)
        """Wall time of the decisions so far, by part [s]: building the planning problem from the
        fleet state, solving the LP (matrix and HiGHS), registering events and matching jobs to a
        stored plan, and dispatch (every policy's)."""
        self.fa = pb.fleet_arrays(fleet)
        self._site_index = {s: i for i, s in enumerate(self.fa.sites)}
        self._dr: dict[str, tuple[DemandResponse, float]] = {}
        self._outages: list[SiteOutage] = []
        self._rtt_cache: dict[tuple[str, str], float] = {}
        self._move_costs: dict[tuple[str, str], MoveCost] = {}  # per (source, destination)
        self._service_keys: dict[tuple, tuple[bool, ...]] = {}  # see _service_key
        self._mw_per_gpu_at: dict[tuple[int, float], float] = {}
        self._one_slot = Blocks.uniform(1, self.step_h)  # this slot alone: its capacities
        inference_forecast_days = check_forecast_days(inference_forecast_days, "controller")
        self.inference_forecast = InferenceForecaster(self.step_s, inference_forecast_days, self.horizon_slots) \
            if inference_forecast_days and self.policy.planner and not self.policy.foresight else None
        if self.policy.planner and not self.policy.foresight and forecaster is None:
            raise InvalidInput(f"controller: policy {self.policy.name!r} needs a forecaster")
        if self.policy.foresight and oracle_plan is None:
            raise InvalidInput("controller: the oracle policy needs oracle_plan (see plan_oracle)")

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    # --- helpers --------------------------------------------------------------------------
    def home_index(self, job: Job) -> int:
        return self._site_index[job.home_site]

    def rtt_s(self, user_area: str, site: str) -> float:
        """Round-trip time from an area's users to a site [s]; infinite where the APN has no route
        from them (no site then meets a latency budget, and the job is served from its home site:
        one such job must not stop the decisions for every other)."""
        key = (user_area, site)
        if key not in self._rtt_cache:
            try:
                self._rtt_cache[key] = self.apn.rtt_s(user_area, site)
            except (InvalidInput, Infeasible):  # too far from the fiber, or no railway route
                self._rtt_cache[key] = float("inf")
        return self._rtt_cache[key]

    def move_time_s(self, size_gb: float, src: str, dst: str) -> float:
        """A move's duration [s] (:meth:`wattbit.network.APN.move_time_s`, from each site pair's
        constants, found once: a plan asks for one per class and site)."""
        cost = self._move_costs.get((src, dst))
        if cost is None:
            cost = self._move_costs[(src, dst)] = self.apn.move_cost(src, dst)
        return float(cost.time_s(size_gb))

    def _transfer_s(self, job: Job, src: str, dst: str) -> float:
        return self.move_time_s(job.checkpoint_gb, src, dst)

    def _reserve(self, now: pd.Timestamp):
        def reserve(job: Job, src: str, dst: str) -> bool:
            if self.lightpaths is None:
                return True
            dur = pd.Timedelta(seconds=max(1.0, self._transfer_s(job, src, dst)))
            # a live clock that stepped back lies behind the book's retire point (an earlier
            # decision's instant), for which the book no longer answers: book from that point
            retired_to = getattr(self.lightpaths, "retired_to", None)
            start = now if retired_to is None or now >= retired_to else retired_to
            try:
                self.lightpaths.reserve(src, dst, start, start + dur, owner=job.job_id)
            except Infeasible:
                return False
            return True
        return reserve

    def mw_per_gpu(self, site_index: int, duty_pu: float) -> float:
        """Facility power a busy GPU of the site adds at this duty cycle [MW/GPU]: the power model's
        (:func:`wattbit.power.throttled_mw_per_gpu`, which the twin charges too), not the full-duty
        slope times the duty (a GPU at 50 % duty keeps about 70 % of its power)."""
        key = (site_index, duty_pu)
        mw = self._mw_per_gpu_at.get(key)
        if mw is None:
            mw = self._mw_per_gpu_at[key] = throttled_mw_per_gpu(self.fleet.sites[site_index], duty_pu)
        return mw

    def site_load_mw(self, state: FleetState) -> np.ndarray:
        """Facility load of each site now [MW], from the observed running jobs at their duty."""
        load = self.fa.base_mw.astype(float)
        for st in state.jobs.values():
            if st.status is JobStatus.RUNNING and st.site in self._site_index:
                i = self._site_index[st.site]
                load[i] += st.job.gpus * self.mw_per_gpu(i, st.duty_pu)
        return load

    def area_load_mw(self, state: FleetState) -> dict[str, float]:
        load = self.site_load_mw(state)
        return {a: float(load[self.fa.site_area == i].sum()) for i, a in enumerate(self.fa.areas)}

    def _register(self, state: FleetState, events: Sequence) -> None:
        for ev in events:
            if isinstance(ev, DemandResponse):
                if ev.request_id not in self._dr:
                    self._dr[ev.request_id] = (ev, self.area_load_mw(state).get(ev.area, 0.0))
            elif isinstance(ev, SiteOutage):
                self._outages.append(ev)
            else:
                raise InvalidInput(f"controller: unknown event {ev!r}; expected DemandResponse or SiteOutage")
        self._dr = {k: v for k, v in self._dr.items() if v[0].end > state.now}

    def dr_reference_mw(self, request_id: str) -> float | None:
        """The area load [MW] a demand-response request is measured against: the fleet's load
        there when the request arrived."""
        entry = self._dr.get(request_id)
        return None if entry is None else entry[1]

    def _site_caps(self, state: FleetState, blocks: Blocks) -> np.ndarray:
        """GPUs each site has in each block of ``blocks``, laid from now."""
        cap = np.repeat(self.fa.cap_gpus[:, None], blocks.n, 1).astype(float)
        for s in state.sites_out:
            if s in self._site_index:
                cap[self._site_index[s], :] = 0.0
        if self._outages:
            start = state.now + pd.to_timedelta(blocks.offset_h, unit="h")
            end = state.now + pd.to_timedelta(blocks.end_h, unit="h")
            for o in self._outages:
                if o.site in self._site_index:
                    hit = (np.asarray(start) < o.end) & (np.asarray(end) > o.start)
                    cap[self._site_index[o.site], hit] = 0.0
        return cap

    def _now_caps(self, state: FleetState) -> np.ndarray:
        return self._site_caps(state, self._one_slot)[:, 0]

    # --- the decision ---------------------------------------------------------------------
    def step(self, state: FleetState, events: Sequence[DemandResponse | SiteOutage] = ()) -> Decision:
        """Decide what the fleet does from ``state.now`` on."""
        t0 = _time.perf_counter()
        self._register(state, events)
        if self.lightpaths is not None and hasattr(self.lightpaths, "retire"):
            self.lightpaths.retire(state.now)
        if not self.policy.planner:
            caps = dict(zip(self.fa.sites, self._now_caps(state)))
            placed, actions = dispatch_fifo(state.jobs, state.now, caps)
            self.time_s["dispatch"] += _time.perf_counter() - t0
            # the baseline does not respond to demand response: it commits nothing
            return Decision(state.now, tuple(actions), placed, dict.fromkeys(self._dr, 0.0),
                            decide_s=_time.perf_counter() - t0)
        if self.policy.foresight:
            return self._follow_oracle(state, t0)
        stored = None if events else self._stored_members(state)
        t1 = _time.perf_counter()
        self.time_s["stored"] += t1 - t0
        if stored is not None:
            return self._dispatch_stored(state, *stored, t0)
        problem, wmem, smem = self.build_problem(state)
        t2 = _time.perf_counter()
        res = solve(problem, time_limit_s=self.time_limit_s)
        self.time_s["build"] += t2 - t1
        self.time_s["solve"] += _time.perf_counter() - t2
        self.plans_solved += 1
        self.highs_s += res.solve_s
        self._stored = _StoredPlan(state.now, problem, res, self._member_index(wmem), self._member_index(smem),
                                   tuple(problem.blocks.end_slot.tolist()))
        return self._dispatch(state, problem, res, t0, block=0, wmem=wmem, smem=smem,
                              x=res.x_gpus[:, :, 0], m=res.m_gpus, y=res.y_gpus[:, :, 0],
                              w_ok=problem.work.allowed, s_ok=problem.service.allowed)

    @staticmethod
    def _member_index(members) -> dict[str, int]:
        return {j: c for c, ids in enumerate(members) for j in ids}

    def _stored_members(self, state: FleetState):
        """The stored plan, the block that covers ``state.now`` and the classes to dispatch now,
        if the stored plan still holds (None when a new plan is due: no plan yet, or the cadence
        is reached). Jobs that arrived since the plan join their class in it; a job whose class
        the plan does not have joins an extra class with no target, so it waits for the next plan
        unless it is out of slack (dispatch's safety rule), and inference is served where it fits."""
        plan = self._stored
        if plan is None or self.replan_slots <= 1:
            return None
        k = round((state.now - plan.now).total_seconds() / self.step_s)
        ends = plan.block_ends
        if not 0 < k < self.replan_slots or k >= ends[-1]:
            return None
        block = bisect.bisect_right(ends, k)  # the block that holds slot k
        work, service = plan.problem.work, plan.problem.service
        wkeys = {key: c for c, key in enumerate(work.keys)}
        skeys = {key: c for c, key in enumerate(service.keys)}
        wmem: list[list[str]] = [[] for _ in range(work.n)]
        smem: list[list[str]] = [[] for _ in range(service.n)]
        pol = self.policy
        unplanned: list[JobState] = []  # work jobs whose class the plan does not know
        service_of, work_of, inference = plan.service_of, plan.work_of, JobKind.ONLINE_INFERENCE
        for jid, st in state.jobs.items():
            if st.status not in ACTIVE_STATUSES:
                continue
            job = st.job
            if job.kind is inference:
                c = service_of.get(jid)
                if c is None:
                    key = self._service_key(job)
                    c = skeys.get(key)
                    if c is None:
                        c = skeys[key] = len(smem)
                        smem.append([])
                smem[c].append(jid)
                continue
            c = work_of.get(jid)
            if c is None:
                unplanned.append(st)
            else:
                wmem[c].append(jid)
        for st in unplanned:  # (their class needs no more of their view than this)
            running = st.status in RUNNING_STATUSES
            origin, pinned = pb.state_origin(st.job, self._state_site(st, running), running)
            key = pb.work_key(st.job, origin, pinned, self.fa, spatial=pol.spatial, home_index=self.home_index)
            if key is not None:
                c = wkeys.get(key)
                if c is None:
                    c = wkeys[key] = len(wmem)
                    wmem.append([])
                wmem[c].append(st.job.job_id)
        return plan, block, wmem, smem, list(wkeys), list(skeys)

    def _service_key(self, job: Job) -> tuple[bool, ...]:
        """:func:`wattbit.plan.build.service_key`, remembered for the fields it reads (jobs share
        a few of them: this is asked for every online-inference job at every plan)."""
        fields = pb.service_key_fields(job)
        key = self._service_keys.get(fields)
        if key is None:
            if len(self._service_keys) >= self.SERVICE_KEY_CACHE_SIZE:
                self._service_keys.clear()
            key = self._service_keys[fields] = pb.service_key(
                job, self.fa, reroute=self.policy.reroute, rtt_s=self.rtt_s, home_index=self.home_index)
        return key

    def _state_site(self, st: JobState, running: bool) -> int:
        """Index of the site that holds the job's state: where it runs, or its checkpoint (-1: none)."""
        return self._site_index.get(st.site, -1) if (running or st.done_gpu_h > 0) else -1

    def _work_views(self, states: Sequence[JobState], now_ns: int) -> pb.JobViews:
        """The planner's view of these work jobs, from their observed state."""
        running = [st.status in RUNNING_STATUSES for st in states]
        return pb.job_views([st.job for st in states], now_ns, [st.remaining_gpu_h for st in states],
                            [self._state_site(st, run) for st, run in zip(states, running)], running)

    def build_problem(self, state: FleetState) -> tuple[PlanningProblem, list, list]:
        """The planning problem the controller would solve now (and the online inference it sees
        is recorded for the inference forecast). A live clock is not on the slot grid: made
        between two slots, the plan's first block starts now and ends where it would have from the
        slot's start, so that the later blocks lie on the grid of the forecast's slots, as
        demand-response and inference windows do."""
        now = state.now
        pol = self.policy
        fc = self.forecaster.forecast(now, self.horizon_slots)
        elapsed_h = (now - now.floor(pd.Timedelta(seconds=self.step_s))) / pd.Timedelta(hours=1)
        blocks = Blocks.telescoping(len(fc.time), self.step_h, self.fine_slots, self.coarse_blocks,
                                    self.fine_block_slots).started(elapsed_h)
        price, curt, mc = pb.grid_blocks(fc, self.fa.areas, blocks)
        services, work = [], []
        for st in state.jobs.values():
            if st.status not in ACTIVE_STATUSES:
                continue
            if st.job.kind is JobKind.ONLINE_INFERENCE:
                services.append(st.job)
            else:
                work.append(st)
        views = self._work_views(work, now.value)
        wc, wmem = pb.work_classes(
            views, self.fa, blocks, spatial=pol.spatial, temporal=pol.temporal,
            pacing_pu=self.pacing_pu, move_time_s=self.move_time_s, home_index=self.home_index)
        sc, smem = pb.service_classes(services, now, self.fa, blocks, key_of=self._service_key)
        if self.inference_forecast is not None:
            self.inference_forecast.observe(services, self._service_key, now.value)
            sc, smem = pb.with_expected_demand(sc, smem, *self.inference_forecast.block_demand(now.value, blocks.slots))
        dr = pb.dr_constraints(self._dr.values(), now, self.fa, blocks)
        problem = PlanningProblem(
            blocks=blocks, site_area=self.fa.site_area, cap_gpus=self._site_caps(state, blocks),
            base_mw=self.fa.base_mw, mw_per_gpu=self.fa.mw_per_gpu, price_jpy_per_mwh=price,
            curtailment_mw=curt, carbon_marginal_g_per_kwh=mc, work=wc, service=sc, dr=dr,
            allow_moves=pol.spatial, **weight_kwargs(self.weights),
            meta={"time": fc.time, "areas": self.fa.areas},
        )
        return problem, wmem, smem

    def _explainer(self, problem: PlanningProblem, block: int = 0):
        price = problem.price_jpy_per_mwh[:, block]
        curt = problem.curtailment_mw[:, block]
        sites, areas, site_area = self.fa.sites, self.fa.areas, self.fa.site_area
        said: dict[tuple[str, int], str] = {}  # a slot's commands share a few verbs and sites

        def explain(verb: str, s: int) -> str:
            text = said.get((verb, s))
            if text is None:
                a = site_area[s]
                text = said[(verb, s)] = (f"{verb} {sites[s]} ({areas[a]}: {price[a] / 1000:.2f} JPY/kWh, "
                                          f"curtailment {curt[a]:.0f} MW)")
            return text
        return explain

    def _dispatch(self, state: FleetState, problem: PlanningProblem, res: PlanResult, t0: float, *,
                  block: int, wmem, smem, x: np.ndarray, m: np.ndarray, y: np.ndarray,
                  w_ok: np.ndarray, s_ok: np.ndarray) -> Decision:
        """Carry out block ``block`` of a plan: targets x[c, s], moves m[c, s], inference y[k, s]
        over the classes w_ok / s_ok (allowed sites) with the given members."""
        t1 = _time.perf_counter()
        placed, actions = dispatch_plan(
            state.jobs, state.now, sites=self.fa.sites, cap_gpus=self._now_caps(state),
            work_members=wmem, service_members=smem, work_allowed=w_ok, service_allowed=s_ok,
            x0=x, m=m, y0=y, throttle=self.policy.throttle,
            spatial=self.policy.spatial, step_h=self.step_h, transfer_s=self._transfer_s,
            reserve_move=self._reserve(state.now), explain=self._explainer(problem, block),
            fill_pu=self._fill(state.now))
        self.time_s["dispatch"] += _time.perf_counter() - t1
        commitments = {}
        for i, r in enumerate(problem.dr):
            if r.request_id in self._dr:  # (a stored plan may outlive a request's window)
                dr, _ = self._dr[r.request_id]
                short_mw = float(res.dr_short_mw[i])
                if dr.direction is DRDirection.UP:
                    short_mw += self.up_discount_mw(state, dr, placed, actions,
                                                    inference_sites=problem.service.allowed.any(axis=0))
                commitments[r.request_id] = max(0.0, dr.power_mw - short_mw)
        return Decision(state.now, tuple(actions), placed, commitments, res.status,
                        res.objective_jpy, res.bound_jpy, dict(res.terms_jpy),
                        _time.perf_counter() - t0, res)

    def up_discount_mw(self, state: FleetState, dr: DemandResponse, placed: Mapping[str, Placement],
                       actions: Sequence[Action], inference_sites: np.ndarray) -> float:
        """What a 上げDR commitment leaves out of the plan's delivery [MW], for a decision that
        runs ``placed`` (with its ``actions``) in the request's area. The plan counts GPUs in whole
        slots, and as if any number of them could be filled; two things it does not see:

        - a job that finishes inside a slot leaves its GPUs idle for the rest of it, and the next
          job starts at the next slot: the most power the decision's jobs leave so within one slot
          of the window, each at full speed after its :func:`restart_delay_s`. Jobs that start
          later finish inside slots too, so this is the least of that loss;
        - whole jobs fill the plan's GPUs: at a site where inference may be served
          (``inference_sites[s]``: its sizes make the GPUs left to work odd), or whose GPUs are no
          multiple of its smallest job, up to that job's GPUs less one may stay free in any slot.
        """
        if dr.area not in self.fa.areas:
            return 0.0
        area = self.fa.areas.index(dr.area)
        now_ns, step_ns = state.now.value, round(self.step_s * 1e9)
        delay_s = {a.job_id: restart_delay_s(a, state.jobs[a.job_id]) for a in actions if a.job_id in state.jobs}
        idle_mw: dict[int, float] = {}
        smallest: dict[int, int] = {}  # the fewest GPUs of a job of work at each site of the area
        for jid, place in placed.items():
            st = state.jobs.get(jid)
            s = self._site_index.get(place.site, -1)
            if st is None or st.job.kind is JobKind.ONLINE_INFERENCE or s < 0 or self.fa.site_area[s] != area:
                continue
            g = st.job.gpus
            smallest[s] = min(smallest.get(s, g), g)
            left_slots = (delay_s.get(jid, 0.0) / 3600.0 + st.remaining_gpu_h / g) / self.step_h
            k = int(left_slots)  # it finishes in slot k from now, having used this much of it
            used = left_slots - k
            start_ns = now_ns + k * step_ns
            if used > 1e-9 and start_ns + step_ns > dr.start.value and start_ns < dr.end.value:
                idle_mw[k] = idle_mw.get(k, 0.0) + g * (1.0 - used) * float(self.fa.mw_per_gpu[s])
        packing_mw = sum((g - 1) * float(self.fa.mw_per_gpu[s]) for s, g in smallest.items()
                         if inference_sites[s] or self.fa.cap_gpus[s] % g)
        return max(idle_mw.values(), default=0.0) + packing_mw

    def _dispatch_stored(self, state, plan: _StoredPlan, k: int, wmem, smem, wkeys, skeys, t0):
        """Dispatch block ``k`` of the stored plan; classes the plan lacks get no target, and
        nothing moves (the plan moves only at its start)."""
        res = plan.result
        S = len(self.fa.sites)
        x = np.zeros((len(wkeys), S))
        x[:res.x_gpus.shape[0]] = res.x_gpus[:, :, k]
        y = np.zeros((len(skeys), S))
        y[:res.y_gpus.shape[0]] = res.y_gpus[:, :, k]
        return self._dispatch(
            state, plan.problem, res, t0, block=k, wmem=wmem, smem=smem, x=x, m=np.zeros_like(x), y=y,
            w_ok=np.array([key[0] for key in wkeys], dtype=bool).reshape(len(wkeys), S),
            s_ok=np.array(skeys, dtype=bool).reshape(len(skeys), S))

    def _fill(self, now: pd.Timestamp) -> np.ndarray:
        """Rounding of plan targets to whole jobs per site: up where a 上げDR is in force, down
        where a 下げDR is, to the nearest job elsewhere."""
        fill = np.full(len(self.fa.sites), 0.5)
        for dr, _ in self._dr.values():
            if dr.start <= now < dr.end and dr.area in self.fa.areas:
                sel = self.fa.site_area == self.fa.areas.index(dr.area)
                fill[sel] = 0.01 if dr.direction.value == "up" else 1.0
        return fill

    def _follow_oracle(self, state: FleetState, t0: float) -> Decision:
        op = self.oracle_plan
        t = op.slot(state.now)
        wmem = [tuple(j for j in members if j in state.jobs) for members in op.work_members]
        smem = [tuple(j for j in members if j in state.jobs) for members in op.service_members]
        x = op.result.x_gpus
        # the oracle placed each class's work where it pays from the start, without moves:
        # jobs start where the plan puts their class and stay there (moves only to save a deadline)
        placed, actions = dispatch_plan(
            state.jobs, state.now, sites=self.fa.sites, cap_gpus=self._now_caps(state),
            work_members=wmem, service_members=smem, work_allowed=op.problem.work.allowed,
            service_allowed=op.problem.service.allowed, x0=x[:, :, t], m=np.zeros_like(x[:, :, t]),
            y0=op.result.y_gpus[:, :, t], throttle=True, spatial=True, step_h=self.step_h,
            transfer_s=self._transfer_s, reserve_move=self._reserve(state.now),
            explain=lambda verb, s: f"oracle plan: {verb} {self.fa.sites[s]}",
            fill_pu=self._fill(state.now))
        self.time_s["dispatch"] += _time.perf_counter() - t0
        short = {r.request_id: float(op.result.dr_short_mw[i]) for i, r in enumerate(op.problem.dr)}
        commitments = {rid: max(0.0, dr.power_mw - short.get(rid, dr.power_mw))
                       for rid, (dr, _) in self._dr.items()}
        return Decision(state.now, tuple(actions), placed, commitments, op.result.status,
                        op.result.objective_jpy, op.result.bound_jpy, dict(op.result.terms_jpy),
                        _time.perf_counter() - t0, None)

    # --- flexibility ----------------------------------------------------------------------
    def flexibility(self, state: FleetState, n_slots: int = 1) -> pd.DataFrame:
        """MW the fleet could add (上げ) or shed (下げ) per area over the next ``n_slots`` slots,
        from the jobs it holds now: add = GPUs no running job holds (throttled ones hold all of
        theirs) that waiting movable work could fill, at full duty; shed = the power of running
        jobs that still have slack, at their duty (they can be suspended or throttled)."""
        now = state.now
        caps = self._now_caps(state)
        busy = np.zeros(len(self.fa.sites))  # GPUs held by running jobs, throttled or not
        shed_mw = np.zeros(len(self.fa.sites))
        waiting: list[JobState] = []
        for st in state.jobs.values():
            if not st.status.active or st.job.release > now:
                continue
            if st.status is JobStatus.RUNNING and st.site in self._site_index:
                i = self._site_index[st.site]
                busy[i] += st.job.gpus
                if st.job.kind.throttleable and slack_h(st, now) > self.step_h:
                    shed_mw[i] += st.job.gpus * self.mw_per_gpu(i, st.duty_pu)
            elif st.job.kind.deferrable and st.status in (JobStatus.PENDING, JobStatus.SUSPENDED):
                waiting.append(st)
        free = np.maximum(0.0, caps - busy)
        add_gpus = np.zeros(len(self.fa.sites))
        for st in sorted(waiting, key=lambda s: -s.job.gpus):
            for i, site in enumerate(self.fa.sites):
                if self.fleet.sites[i].area in st.job.allowed_areas and free[i] - add_gpus[i] >= st.job.gpus \
                        and (self.policy.spatial or site == (st.site or st.job.home_site)):
                    add_gpus[i] += st.job.gpus
                    break
        time = pd.date_range(now, periods=n_slots, freq=pd.Timedelta(seconds=self.step_s), name="time")
        rows = []
        for a_i, area in enumerate(self.fa.areas):
            sel = self.fa.site_area == a_i
            add = float((add_gpus[sel] * self.fa.mw_per_gpu[sel]).sum())
            shed = float(shed_mw[sel].sum())
            rows += [(t, area, add, shed) for t in time]
        frame = pd.DataFrame(rows, columns=["time", "area", "add_mw", "shed_mw"])
        return frame.set_index(["time", "area"])

