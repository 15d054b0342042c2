"""The digital twin: runs a controller against a recorded world, slot by slot.

Each slot: released jobs become visible, events (demand response, outages) arrive, the
controller decides from the observed state, the simulated executor carries the actions out, and
the slot's work, power and grid interaction are accounted. An area's curtailment absorbed is
min(the fleet's load there, the curtailed MW): the recorded grid had no fleet, so all of the
fleet's load is extra load, and it is served first by power that would otherwise be curtailed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from wattbit.control.controller import Controller
from wattbit.control.state import JobState, JobStatus
from wattbit.domain import DemandResponse, Job, JobKind, Migrate, SiteOutage
from wattbit.grid import GridSignals
from wattbit.plan import build as pb
from wattbit.plan.problem import Blocks
from wattbit.sim.executor import SimulatedExecutor
from wattbit.units import NS_PER_H
from wattbit.workload import job_sites

__all__ = ["SLOT_COUNTERS", "TwinResult", "job_end", "run_twin", "run_window"]

SLOT_COUNTERS: dict[str, type] = {"moves": int, "moved_gb": float, "suspends": int, "lost_gpu_h": float,
                                  "decisions": int, "plans": int, "lightpaths": int}
"""The twin's counters that are sums over slots, with their type: counts or amounts
(``TwinResult.slots`` holds them slot by slot, in this order)."""


def job_end(job: Job) -> pd.Timestamp:
    """The last instant a run must cover for a job: its deadline, or without one its release
    plus three times its run time at full speed."""
    return job.deadline if job.deadline is not None else job.release + pd.Timedelta(hours=3 * job.runtime_h)


def run_window(jobs: Sequence[Job], start: pd.Timestamp, end: pd.Timestamp, step_s: float,
               drain_h: float = 0.0) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The slots a run must cover: from ``start`` until ``end`` or the last deadline (or release
    plus three times the run time, :func:`job_end`) of ``jobs``, whichever is later, plus
    ``drain_h``, on the slot grid (give the jobs released before ``end``)."""
    last = max((end, *map(job_end, jobs))) + pd.Timedelta(hours=drain_h)
    step = pd.Timedelta(seconds=step_s)
    n = int(np.ceil((last - start) / step))
    return start, start + n * step


@dataclass(frozen=True, eq=False)
class TwinResult:
    """Everything a twin run recorded.

    sites : (time, site) → busy_gpus [GPU], power_mw [MW];
    areas : (time, area) → load_mw, curtailment_mw, absorbed_mw, price_jpy_per_mwh,
            carbon_avg_g_per_kwh, carbon_marginal_g_per_kwh;
    jobs : one row per job (finish, delay_h, missed, moves, served and unserved GPU-h, ...);
    dr : one row per demand-response request (committed; the area's load at the request,
         ``reference_mw``, and over the window, ``load_mean_mw``; delivered, as the change of the
         load in the asked direction; response time);
    counters : moves, moved_gb, suspends, lost_gpu_h, lightpaths, peak link utilisation, ...,
               decide_<part>_s: the controller's decision time by part (Controller.time_s), and
               highs_s: HiGHS's own share of decide_solve_s (Controller.highs_s);  run_s: the
               run's wall time, records included [s];
    decide_s : each slot's decision time [s];
    slots : time → the counters that add up over slots, slot by slot (:data:`SLOT_COUNTERS`: what
            happened in the slot; their sums are the counters of the same names);
    chunk_counters : for a run cut in time (:mod:`wattbit.sim.chunks`), each chunk's own
            counters, over its whole run (warm-up included); empty for a run in one piece
    """

    policy: str
    step_h: float
    sites: pd.DataFrame
    areas: pd.DataFrame
    jobs: pd.DataFrame
    dr: pd.DataFrame
    counters: dict = field(default_factory=dict)
    decide_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    slots: pd.DataFrame = field(default_factory=pd.DataFrame)
    chunk_counters: tuple[dict, ...] = ()


def run_twin(controller: Controller, jobs: Sequence[Job], truth: GridSignals, *,
             demand_response: Sequence[DemandResponse] = (),
             outages: Sequence[SiteOutage] = (),
             on_slot: Callable[[int, int], None] | None = None) -> TwinResult:
    """Run ``controller`` over every slot of ``truth.time``; every policy compared must run over
    the same slots (idle power counts too), so give a window that outlasts the last deadline
    (see :func:`run_window`). ``on_slot(i, n)`` is called after each slot (for progress bars)."""
    from wattbit.power import throttled_mw_per_gpu, work_rate_pu

    started = time.perf_counter()
    fleet, fa = controller.fleet, controller.fa
    checked: set[tuple[str, frozenset[str]]] = set()  # jobs share a few (home, areas) pairs
    for job in jobs:
        if (job.home_site, job.allowed_areas) not in checked:
            job_sites(fleet, job)  # a site it may run at (a job larger than any of them just waits)
            checked.add((job.home_site, job.allowed_areas))
    step_s = truth.step_s
    step_h = step_s / 3600.0
    step = pd.Timedelta(seconds=step_s)
    step_ns = int(step.value)
    times = truth.time
    T, S = len(times), len(fa.sites)
    site_i = {s: i for i, s in enumerate(fa.sites)}
    sites_by_area = {a: [fa.sites[s] for s in range(S) if fa.site_area[s] == i] for i, a in enumerate(fa.areas)}

    @cache
    def mw_per_gpu(site: str, duty: float) -> float:
        return throttled_mw_per_gpu(fleet.site(site), duty)

    rate = cache(work_rate_pu)  # (asked below only for a duty under 1: at full duty the rate is 1)

    ex = SimulatedExecutor(fleet)
    pending = sorted(jobs, key=lambda j: (j.release_ns, j.job_id))
    ptr = 0
    # jobs released and alive, in release order (a set's order would vary by run)
    active: dict[str, None] = {}
    busy = np.zeros((T, S))
    site_mwh = np.zeros((T, S))
    finish_ns: dict[str, int] = {}  # when each job finished [ns since the epoch, UTC]
    served = dict.fromkeys((j.job_id for j in jobs if j.kind is JobKind.ONLINE_INFERENCE), 0.0)
    unserved = dict(served)
    moves_by_job: dict[str, int] = {}
    dr_rows: dict[str, dict] = {}
    decide = np.zeros(T)

    def counts() -> dict[str, float]:
        """The slot counters kept as running totals (lightpaths: counted from the book at the end)."""
        return {"moves": ex.moves, "moved_gb": ex.moved_gb, "suspends": ex.suspends,
                "lost_gpu_h": ex.lost_gpu_h, "decisions": len(ex.log), "plans": controller.plans_solved}

    RUNNING, INFERENCE = JobStatus.RUNNING, JobKind.ONLINE_INFERENCE  # (looked up for every live job)
    totals = [name for name in SLOT_COUNTERS if name != "lightpaths"]
    so_far = np.zeros((T, len(totals)))  # the running totals after each slot
    for t, now in enumerate(times):
        now_ns = now.value  # (instants compared as integer nanoseconds: Timestamps compare slowly)
        end_ns = now_ns + step_ns
        while ptr < len(pending) and pending[ptr].release_ns <= now_ns:
            ex.submit(pending[ptr])
            active[pending[ptr].job_id] = None
            ptr += 1
        events = [d for d in demand_response if now_ns <= d.notice_at.value < end_ns] + \
                 [o for o in outages if now_ns <= o.start.value < end_ns]
        out = frozenset(o.site for o in outages if o.start.value < end_ns and o.end.value > now_ns)
        state = ex.fleet_state(now, out, job_ids=active)
        decision = controller.step(state, events)
        decide[t] = decision.decide_s
        ex.lost_s.clear()
        ex.lead_s.clear()
        for action in decision.actions:
            ex.apply(action, ex.states[action.job_id].job)
            if isinstance(action, Migrate):
                moves_by_job[action.job_id] = moves_by_job.get(action.job_id, 0) + 1
        for d in events:
            if isinstance(d, DemandResponse):
                touched = [a for a in decision.actions
                           if getattr(a, "site", None) in sites_by_area.get(d.area, ())
                           or getattr(a, "destination", None) in sites_by_area.get(d.area, ())
                           or ex.states[a.job_id].site in sites_by_area.get(d.area, ())]
                lead = max((ex.lead_s.get(a.job_id, 0.0) for a in touched), default=0.0)
                ref = controller.dr_reference_mw(d.request_id)
                dr_rows[d.request_id] = {
                    "request_id": d.request_id, "direction": d.direction.value, "area": d.area,
                    "asked_mw": d.power_mw, "start": d.start, "end": d.end,
                    "response_deadline_s": d.response_deadline_s,
                    "committed_mw": decision.dr_commitments.get(d.request_id, 0.0),
                    "response_s": decision.decide_s + lead, "actions": len(touched),
                    "reference_mw": ref if ref is not None else np.nan}

        # --- advance the slot ---------------------------------------------------------------
        done_now = []
        states, lost_s = ex.states, ex.lost_s
        busy_t = [0.0] * S  # this slot's rows, as lists: per-element NumPy indexing is slow here
        mwh_t = [0.0] * S
        for jid in active:
            st = states[jid]
            job = st.job
            running = st.status is RUNNING
            if not running and job.kind is not INFERENCE:
                continue
            if job.kind is INFERENCE:
                overlap_h = max(0.0, (min(end_ns, job.deadline_ns) - max(now_ns, job.release_ns)) / NS_PER_H)
                if running:
                    lost_h = min(overlap_h, lost_s.get(jid, 0.0) / 3600.0)
                    served[jid] += job.gpus * (overlap_h - lost_h)
                    unserved[jid] += job.gpus * lost_h
                    s = site_i[st.site]
                    busy_t[s] += job.gpus * overlap_h / step_h
                    mwh_t[s] += job.gpus * mw_per_gpu(st.site, 1.0) * overlap_h
                else:
                    unserved[jid] += job.gpus * overlap_h
                if job.deadline_ns <= end_ns:
                    states[jid] = JobState(job, JobStatus.DONE, st.site, 0.0, st.done_gpu_h, st.busy_until)
                    finish_ns[jid] = job.deadline_ns
                    done_now.append(jid)
                continue
            s = site_i[st.site]
            lost = lost_s.get(jid)  # (most jobs lose no time in a slot)
            lost_h = 0.0 if lost is None else min(step_h, lost / 3600.0)
            duty = st.duty_pu
            r = 1.0 if duty >= 1.0 else rate(duty)
            run_h = step_h - lost_h
            can = job.gpus * r * run_h
            remaining = max(0.0, job.work_gpu_h - st.done_gpu_h)  # (JobState.remaining_gpu_h)
            if can >= remaining - 1e-9:
                run_h = remaining / (job.gpus * r)
                states[jid] = JobState(job, JobStatus.DONE, st.site, 0.0, job.work_gpu_h, st.busy_until)
                # (hours to ns as pd.Timedelta(hours=...) converts them: to seconds, then truncated ns)
                finish_ns[jid] = now_ns + int((lost_h + run_h) * 3600 * 1e9)
                done_now.append(jid)
            else:
                states[jid] = JobState(job, st.status, st.site, st.duty_pu, st.done_gpu_h + can, st.busy_until)
            busy_t[s] += job.gpus * duty * (run_h + lost_h) / step_h
            mwh_t[s] += job.gpus * mw_per_gpu(st.site, duty) * (run_h + lost_h)
        busy[t] = busy_t
        site_mwh[t] = mwh_t
        for jid in done_now:
            del active[jid]
        now_counts = counts()
        so_far[t] = [now_counts[name] for name in totals]
        if on_slot is not None:
            on_slot(t, T)

    site_mw = fa.base_mw[None, :] + site_mwh / step_h
    sites = pd.DataFrame(
        {"busy_gpus": busy.ravel(), "power_mw": site_mw.ravel()},
        index=pd.MultiIndex.from_product([times, list(fa.sites)], names=["time", "site"]))
    # --- areas --------------------------------------------------------------------------------
    sig = truth.window(0, T).select_areas(fa.areas)
    _, _, mc_eff = pb.grid_blocks(sig, fa.areas, Blocks.uniform(T, step_h))
    load = np.zeros((T, len(fa.areas)))
    for s in range(S):
        load[:, fa.site_area[s]] += site_mw[:, s]
    absorbed = np.minimum(load, sig.curtailment_mw)
    areas = pd.DataFrame({
        "load_mw": load.ravel(), "curtailment_mw": sig.curtailment_mw.ravel(),
        "absorbed_mw": absorbed.ravel(), "price_jpy_per_mwh": sig.price_jpy_per_mwh.ravel(),
        "carbon_avg_g_per_kwh": sig.carbon_avg_g_per_kwh.ravel(),
        "carbon_marginal_g_per_kwh": mc_eff.T.ravel(),
    }, index=pd.MultiIndex.from_product([times, list(fa.areas)], names=["time", "area"]))
    # --- jobs (column by column: a year holds some 300,000) ----------------------------------
    run_end_ns = (times[-1] + step).value
    states = [ex.states.get(j.job_id) for j in jobs]
    fin_ns = np.array([finish_ns.get(j.job_id, -1) for j in jobs], dtype=np.int64)
    has_fin = fin_ns >= 0
    fins = pd.DatetimeIndex(np.where(has_fin, fin_ns, np.iinfo(np.int64).min).view("datetime64[ns]")
                            ).tz_localize("UTC").tz_convert(times.tz)  # (int64 min is NaT: unfinished)
    is_inf = np.array([j.kind is JobKind.ONLINE_INFERENCE for j in jobs], dtype=bool)
    dl_ns = np.array([j.deadline_ns if j.deadline_ns is not None else -1 for j in jobs], dtype=np.int64)
    has_dl = dl_ns >= 0
    earliest_ns = (np.array([j.release_ns for j in jobs], dtype=np.int64)
                   + np.array([j.runtime_h for j in jobs], dtype=float) * NS_PER_H)
    # a deadline after the run's end is no miss yet: the job is only unfinished
    missed = ~is_inf & has_dl & ((~has_fin & (dl_ns <= run_end_ns)) | (has_fin & (fin_ns > dl_ns + 1e9)))
    delay_h = np.where(has_fin & ~is_inf, np.maximum(0.0, (fin_ns - earliest_ns) / NS_PER_H), np.nan)
    areas_text: dict[frozenset[str], str] = {}
    jobs_df = pd.DataFrame({
        "job_id": [j.job_id for j in jobs], "tenant": [j.tenant for j in jobs],
        "kind": [j.kind.value for j in jobs], "gpus": [j.gpus for j in jobs],
        "work_gpu_h": [j.work_gpu_h for j in jobs], "release": [j.release for j in jobs],
        "deadline": [j.deadline for j in jobs], "finish": fins, "delay_h": delay_h,
        "missed": missed, "done_gpu_h": [st.done_gpu_h if st else 0.0 for st in states],
        "finished": has_fin, "moves": [moves_by_job.get(j.job_id, 0) for j in jobs],
        "home_site": [j.home_site for j in jobs], "final_site": [st.site if st else None for st in states],
        "served_gpu_h": [served.get(j.job_id, np.nan) for j in jobs],
        "unserved_gpu_h": [unserved.get(j.job_id, np.nan) for j in jobs],
        "allowed_areas": [areas_text.get(j.allowed_areas) or areas_text.setdefault(
            j.allowed_areas, ",".join(sorted(j.allowed_areas))) for j in jobs],
    })
    # --- demand response ------------------------------------------------------------------------
    dr_out = []
    for d in demand_response:
        row = dr_rows.get(d.request_id)
        if row is None or d.area not in fa.areas:
            continue
        a = fa.areas.index(d.area)
        in_window = np.asarray((times >= d.start) & (times < d.end))
        sign = 1.0 if d.direction.value == "up" else -1.0
        delivered = sign * (load[in_window, a] - row["reference_mw"]) if in_window.any() else np.zeros(1)
        row.update(delivered_mean_mw=float(np.mean(delivered)), delivered_min_mw=float(np.min(delivered)),
                   load_mean_mw=float(np.mean(load[in_window, a])) if in_window.any() else np.nan)
        dr_out.append(row)
    dr_df = pd.DataFrame(dr_out, columns=[
        "request_id", "direction", "area", "asked_mw", "start", "end", "response_deadline_s",
        "committed_mw", "response_s", "actions", "reference_mw", "load_mean_mw", "delivered_mean_mw",
        "delivered_min_mw"])
    # --- slot by slot: what happened in each ----------------------------------------------------
    lp = controller.lightpaths
    per_slot = np.diff(so_far, axis=0, prepend=0.0)
    set_up = np.zeros(T)
    if lp is not None and lp.reservations:  # a lightpath counts in the slot it was set up in
        starts = np.array([r.start.value for r in lp.reservations], dtype=np.int64)
        slot = np.clip(np.searchsorted(times.as_unit("ns").asi8, starts, side="right") - 1, 0, T - 1)
        set_up = np.bincount(slot, minlength=T).astype(float)
    slots = pd.DataFrame(np.column_stack([per_slot, set_up]), index=times, columns=[*totals, "lightpaths"])[
        list(SLOT_COUNTERS)]
    for name, kind in SLOT_COUNTERS.items():
        if kind is int:
            slots[name] = slots[name].round().astype(np.int64)
    counters = dict(
        **counts(), slots=T, highs_s=controller.highs_s,
        lightpaths=(len(lp.reservations) if lp is not None else 0),
        peak_link_utilisation_pu=(float(lp.peak_utilisation()) if lp is not None else 0.0),
        **{f"decide_{part}_s": s for part, s in controller.time_s.items()},
        run_s=time.perf_counter() - started,
    )
    return TwinResult(controller.policy.name, step_h, sites, areas, jobs_df, dr_df, counters,
                      decide, slots)
