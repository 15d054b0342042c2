"""From a plan to commands: which job starts, stops, moves or slows down in this slot.

The planner speaks in GPUs per class and site; executors speak in jobs. Dispatch fills each
class's first-block targets with whole jobs, most urgent first, and never exceeds a site's GPUs.
Two safety rules sit above the plan: a job whose slack is gone runs now (so the relaxation's
rounding can never cost a deadline), and a running job that cannot be preempted is never stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.control.state import ACTIVE_STATUSES, RUNNING_STATUSES, JobState, JobStatus
from wattbit.domain import Action, Job, JobKind, Migrate, Reroute, Start, Suspend, Throttle
from wattbit.units import NS_PER_H

__all__ = ["Placement", "dispatch_fifo", "dispatch_plan", "slack_h"]

MIN_THROTTLE_DUTY_PU = 0.25
"""Lowest duty cycle used for throttling [pu]: the lowest point of the measured H200 curve
(../shared/data/accelerator-power/h200-measured.json: 25 % duty); below it suspend instead."""


_UNPREEMPTIBLE_WORK = frozenset(
    k for k in JobKind if not k.preemptible and k is not JobKind.ONLINE_INFERENCE)
"""Kinds of deferrable work that cannot be stopped once running (none today; dispatch's rule 1)."""

URGENT_SLACK_SLOTS = 2.0
"""A job whose slack is at most this many slots runs now, whatever the plan says: one slot for
the slot itself and one for checkpoint restores and the plan's rounding to whole jobs."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a job runs in this slot and at what duty cycle [0..1]."""

    site: str
    duty_pu: float = 1.0


def slack_h(st: JobState, now: pd.Timestamp | int) -> float:
    """Hours the job can still wait and meet its deadline at full speed [h] (inf if none).
    ``now`` may be integer nanoseconds since the epoch (UTC), a Python or a NumPy integer."""
    job = st.job
    if job.deadline_ns is None:
        return float("inf")
    now_ns = now if isinstance(now, int) else (now.value if isinstance(now, pd.Timestamp) else int(now))
    left_gpu_h = job.work_gpu_h - st.done_gpu_h
    return (job.deadline_ns - now_ns) / NS_PER_H - (left_gpu_h / job.gpus if left_gpu_h > 0.0 else 0.0)


def _by_value_desc(values: list[float]) -> list[int]:
    """Indices of ``values`` from the largest down; ties keep index order (as a stable argsort
    of the negated values would)."""
    return sorted(range(len(values)), key=values.__getitem__, reverse=True)


def _stays(st: JobState, place: Placement | None) -> bool:
    """True when no command is needed: a waiting job waits on, a running one runs on at the
    same site and duty, or a moving one is kept at its destination (whatever duty it is reported
    at in flight); the cheap test before :func:`_actions_for`, run for every live job."""
    running = st.status in RUNNING_STATUSES
    if place is None:
        return not running
    return running and st.site == place.site and (
        abs(st.duty_pu - place.duty_pu) <= 1e-6 or st.status is JobStatus.MIGRATING)


def _holds_state(st: JobState, running: bool) -> bool:
    """Whether moving the job means moving its state: a preemptible job that runs (its process
    holds the GPUs, even before any work is credited to it) or has work done."""
    return st.job.kind.preemptible and (running or st.done_gpu_h > 0)


def _actions_for(st: JobState, place: Placement | None, reason: str, transfer_s) -> list[Action]:
    """Commands that take a job from its observed state to the desired placement."""
    job = st.job
    running = st.status in RUNNING_STATUSES
    if place is None:
        if running and job.kind.preemptible:
            return [Suspend(job.job_id, checkpoint=True, reason=reason)]
        if running and job.kind is JobKind.ONLINE_INFERENCE:
            return [Suspend(job.job_id, checkpoint=False, reason=reason)]
        return []
    if st.site is not None and st.site != place.site:
        if job.kind is JobKind.ONLINE_INFERENCE:
            return [Reroute(job.job_id, place.site, reason=reason)] if running else [
                Start(job.job_id, place.site, place.duty_pu, reason=reason)]
        if _holds_state(st, running):
            return [Migrate(job.job_id, st.site, place.site, transfer_s(job, st.site, place.site),
                            reason=reason)]
    if not running:
        return [Start(job.job_id, place.site, place.duty_pu, reason=reason)]
    if abs(st.duty_pu - place.duty_pu) > 1e-6:
        return [Throttle(job.job_id, place.duty_pu, reason=reason)]
    return []


def dispatch_fifo(states: Mapping[str, JobState], now: pd.Timestamp, cap_gpus: Mapping[str, float],
                  ) -> tuple[dict[str, Placement], list[Action]]:
    """What data centers do today: every job at its home site, first come first served (with
    backfilling: a later job that fits starts when an earlier one does not), online inference
    first, running jobs never stopped."""
    free = dict(cap_gpus)
    placed: dict[str, Placement] = {}
    now_ns = now.value
    live = [s for s in states.values() if s.status in ACTIVE_STATUSES and s.job.release_ns <= now_ns]
    inference = JobKind.ONLINE_INFERENCE
    queue = sorted(live, key=lambda st: (st.status not in RUNNING_STATUSES, st.job.kind is not inference,
                                         st.job.release_ns, st.job.job_id))
    for st in queue:
        job = st.job
        if job.kind is inference and not (job.release_ns <= now_ns < job.deadline_ns):
            continue
        site = st.site or job.home_site
        if free.get(site, 0) >= job.gpus:
            free[site] -= job.gpus
            placed[job.job_id] = Placement(site)
    actions: list[Action] = []
    for st in live:
        place = placed.get(st.job.job_id)
        if not _stays(st, place):
            actions += _actions_for(st, place, "first come, first served at home", lambda *_: 0.0)
    return placed, actions


def dispatch_plan(states: Mapping[str, JobState], now: pd.Timestamp, *, sites: tuple[str, ...],
                  cap_gpus: np.ndarray, work_members, service_members, work_allowed: np.ndarray,
                  service_allowed: np.ndarray, x0: np.ndarray,
                  m: np.ndarray, y0: np.ndarray, throttle: bool, spatial: bool, step_h: float,
                  transfer_s: Callable[[Job, str, str], float],
                  reserve_move: Callable[[Job, str, str], bool] | None = None,
                  explain: Callable[[str, int], str] | None = None,
                  fill_pu: np.ndarray | None = None,
                  ) -> tuple[dict[str, Placement], list[Action]]:
    """Fill the plan's first-block targets with whole jobs.

    x0[c, s], y0[k, s] : GPUs of work class c / service class k at site s in the first block;
    work_allowed[c, s], service_allowed[k, s] : where each class may run (residency, RTT);
    m[c, s] : GPUs of class c the plan moves to s;  cap_gpus[s] : GPUs available now;
    transfer_s(job, src, dst) : a move's duration [s];  reserve_move(job, src, dst) : books the
    APN for a move and says whether it could;  explain(verb, site_index) : a reason string
    (asked for only where a command results).

    The per-site vectors are short (one entry per site) and touched once per job, so they are
    kept as Python lists: indexing those costs a fraction of indexing NumPy arrays.
    """
    S = len(sites)
    index = {s: i for i, s in enumerate(sites)}
    free = [float(v) for v in cap_gpus]
    fill = [0.5] * S if fill_pu is None else [float(v) for v in fill_pu]
    now_ns = now.value
    placed: dict[str, Placement] = {}
    why: dict[str, str | tuple[str, int]] = {}
    explain = explain or (lambda verb, s: f"plan: {verb} {sites[s]}")

    placements: dict[tuple[int, float], Placement] = {}  # shared: a Placement is immutable

    def take(job_id: str, s: int, gpus: int, duty: float, reason: str | tuple[str, int]) -> None:
        free[s] -= gpus
        place = placements.get((s, duty))
        if place is None:
            place = placements[(s, duty)] = Placement(sites[s], duty)
        placed[job_id] = place
        why[job_id] = reason

    # 1. jobs whose checkpoint is on its way keep the GPUs at their destination (they get no
    #    command until they land); running jobs that cannot be preempted keep theirs (no kind
    #    of work is such today)
    live: dict[str, JobState] = {}
    migrating = JobStatus.MIGRATING
    for j, st in states.items():
        if st.status in ACTIVE_STATUSES and st.job.release_ns <= now_ns:
            live[j] = st
            if st.status is migrating and st.site in index:
                take(st.job.job_id, index[st.site], st.job.gpus, 1.0, "moving; its checkpoint is in flight")
            elif _UNPREEMPTIBLE_WORK and st.status in RUNNING_STATUSES and st.job.kind in _UNPREEMPTIBLE_WORK \
                    and st.site in index:
                take(st.job.job_id, index[st.site], st.job.gpus, st.duty_pu, "running; cannot be preempted")

    inference_targets = np.asarray(y0, dtype=float).tolist()
    service_ok = np.asarray(service_allowed, dtype=bool).tolist()

    def serve_inference(single_site: bool) -> None:
        """Online inference, as the plan spreads it (stay put while the plan still wants it);
        the classes with a single possible site, or the others."""
        for k, members in enumerate(service_members):
            ok = service_ok[k]
            if (sum(ok) == 1) != single_site:
                continue
            target = inference_targets[k]
            jobs = sorted((live[j] for j in members if j in live and now_ns < live[j].job.deadline_ns),
                          key=lambda st: -st.job.gpus)
            for st in jobs:
                g = st.job.gpus
                cur = index.get(st.site, -1)
                prefs = [cur] if cur >= 0 and ok[cur] else []
                prefs += [s for s in _by_value_desc(target) if ok[s] and s != cur]
                chosen = next((s for s in prefs if free[s] >= g and target[s] >= fill[s] * g), None)
                if chosen is None:  # the plan left it short: serve it wherever it fits
                    chosen = next((s for s in prefs if free[s] >= g), None)
                if chosen is not None:
                    take(st.job.job_id, chosen, g, 1.0, ("serve from", chosen))
                    target[chosen] -= g

    # 2. online inference that can be served from one site only;
    # 3. deferrable work whose slack is gone, of every class (it may run nowhere else in time);
    # 4. online inference that can be rerouted; 5. the rest of the work, class by class: what
    #    runs already first, then the least slack
    serve_inference(single_site=True)
    targets = np.asarray(x0, dtype=float).tolist()
    budgets = np.asarray(m if spatial else np.zeros_like(m), dtype=float).tolist()
    work_ok = np.asarray(work_allowed, dtype=bool).tolist()
    n_ok = [sum(ok) for ok in work_ok]
    urgent_h = URGENT_SLACK_SLOTS * step_h
    min_fill = min(fill)
    inf = float("inf")
    # the queue's order: jobs out of slack first (those with the fewest sites to go to first,
    # then by class), then the others class by class; within either, running jobs first, then
    # the least slack (and the job id, to break ties). Each part is sorted on its own; in its
    # tuples the job id, which is unique, comes before the job state, so states are never compared.
    urgent_jobs = []  # (sites it may go to, class, waiting, slack, job id, state)
    by_class = []  # (class, [(waiting, slack, job id, state), ...]) for the jobs with slack left
    for c, members in enumerate(work_members):
        nok = n_ok[c]
        mine = []
        for j in members:
            st = live.get(j)
            if st is not None and j not in placed:
                job = st.job
                # (slack_h, written out: this runs for every waiting or running job)
                if job.deadline_ns is None:
                    sl = inf
                else:
                    left_gpu_h = job.work_gpu_h - st.done_gpu_h
                    sl = (job.deadline_ns - now_ns) / NS_PER_H - (left_gpu_h / job.gpus if left_gpu_h > 0.0 else 0.0)
                waiting = st.status not in RUNNING_STATUSES
                if sl > urgent_h:
                    mine.append((waiting, sl, j, st))
                else:
                    urgent_jobs.append((nok, c, waiting, sl, j, st))
        if mine:
            mine.sort()
            by_class.append((c, mine))
    urgent_jobs.sort()
    queue = [(True, c, waiting, st) for _, c, waiting, _, _, st in urgent_jobs]
    for c, mine in by_class:
        queue += [(False, c, waiting, st) for waiting, _, _, st in mine]
    # each class's allowed sites from the largest target down, kept until its target changes;
    # and the sites its move budget reaches, from the largest budget down, until a move is made
    order: dict[int, list[int]] = {}
    move_order: dict[int, list[int]] = {}
    # the fewest GPUs a waiting job that is not urgent could not be placed with, by its class
    # and the site that holds its state (-1: none): free GPUs, targets and move budgets only
    # fall as jobs are placed, so any later such job as large fails too (and waits, with no
    # command)
    no_room: dict[tuple[int, int], int] = {}
    served = False
    for urgent, c, waiting, st in queue:
        job, g = st.job, st.job.gpus
        cur = index.get(st.site, -1)
        # (_holds_state, written out: this runs for every waiting or running job)
        has_state = cur >= 0 and job.kind.preemptible and (not waiting or st.done_gpu_h > 0)
        quiet = waiting and not urgent  # waits on unless the plan has room for it
        if quiet:
            room_key = (c, cur if has_state else -1)
            if g >= no_room.get(room_key, inf):
                continue
        if not urgent and not served:
            serve_inference(single_site=False)
            served = True
        target, move_budget, ok = targets[c], budgets[c], work_ok[c]
        if has_state and free[cur] >= g and (urgent or target[cur] >= fill[cur] * g):
            chosen = cur  # its first candidate, where its state is, takes it (most running jobs)
        else:
            if has_state:
                reach = move_order.get(c)
                if reach is None:
                    reach = move_order[c] = [s for s in _by_value_desc(move_budget) if move_budget[s] > 0]
                candidates = [cur] + [s for s in reach if move_budget[s] >= fill[s] * g and s != cur] \
                    if reach else [cur]
            else:
                candidates = order.get(c)
                if candidates is None:
                    candidates = order[c] = [s for s in _by_value_desc(target) if ok[s]]
                if not urgent and (not candidates or target[candidates[0]] < min_fill * g):
                    candidates = []  # (a shortcut: no site's target can take it, the first has the largest)
            chosen = next((s for s in candidates
                           if free[s] >= g and (urgent or target[s] >= fill[s] * g)), None)
        if chosen is None and quiet:
            no_room[room_key] = g  # (smaller than any before it: larger ones were skipped above)
            continue  # it waits, and no command results
        if chosen is None and urgent:
            # the plan did not reach this job: run it wherever it may and fits
            fallback = [s for s in _by_value_desc(free) if ok[s]]
            if has_state:
                fallback = [cur] + [s for s in fallback if s != cur]
            chosen = next((s for s in fallback if free[s] >= g), None)
        if chosen is not None:
            if chosen != cur and has_state and reserve_move is not None \
                    and not reserve_move(job, sites[cur], sites[chosen]):
                if free[cur] < g:
                    why[job.job_id] = "wait: the APN could not carry the move now"
                    continue
                chosen = cur
            moving = has_state and chosen != cur
            verb = "urgent: run at" if urgent else ("move to" if moving else "run at")
            take(job.job_id, chosen, g, 1.0, (verb, chosen))
            target[chosen] -= g
            order.pop(c, None)
            if moving:
                move_budget[chosen] -= g
                move_order.pop(c, None)
            continue
        # partial target at its current site: throttle rather than stop
        # (not under a 下げDR: throttled GPUs draw more than their share of work, see power)
        if throttle and st.status in RUNNING_STATUSES and job.kind.throttleable and cur >= 0 and fill[cur] < 1.0:
            duty = target[cur] / g
            if duty >= MIN_THROTTLE_DUTY_PU and free[cur] >= g:
                duty = float(min(1.0, round(duty, 2)))
                take(job.job_id, cur, g, duty, (f"throttle to {duty:.0%} at", cur))
                target[cur] -= g * duty
                order.pop(c, None)
                continue
        where = cur if cur >= 0 else max((s for s in range(S) if ok[s]), key=target.__getitem__)
        why[job.job_id] = ("defer; nothing planned for it now at", where)

    if not served:
        serve_inference(single_site=False)
    actions: list[Action] = []
    for jid, st in live.items():
        place = placed.get(jid)
        # (_stays, written out: this runs for every live job)
        if place is None:
            if st.status not in RUNNING_STATUSES:
                continue
        elif st.status in RUNNING_STATUSES and st.site == place.site and (
                abs(st.duty_pu - place.duty_pu) <= 1e-6 or st.status is migrating):
            continue
        reason = why.get(jid, "plan")
        # (past _stays, a command nearly always results: the reason is worth formatting)
        actions += _actions_for(st, place, reason if isinstance(reason, str) else explain(*reason), transfer_s)
    return placed, actions
