"""Build a :class:`PlanningProblem` from the fleet, the jobs' state and the grid forecast.

The jobs are grouped into flexibility classes (same allowed sites, same origin); each class is
described by its concurrency, its due-work curve and its remaining work (see ``problem.py``).
Online inference forms service classes (same sites inside the RTT budget).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wattbit.domain import DemandResponse, DRDirection, Fleet, Job
from wattbit.domain._validate import integer
from wattbit.grid import GridSignals
from wattbit.grid.carbon import MARGINAL_THERMAL_G_PER_KWH
from wattbit.plan.problem import Blocks, DRConstraint, ServiceClasses, WorkClasses
from wattbit.power import restart_h_per_gpu
from wattbit.units import NS_PER_H

__all__ = [
    "FleetArrays",
    "JobView",
    "JobViews",
    "dr_constraints",
    "dr_target_mw",
    "fleet_arrays",
    "grid_blocks",
    "job_views",
    "service_classes",
    "service_key",
    "service_key_fields",
    "state_origin",
    "with_expected_demand",
    "work_classes",
    "work_key",
    "work_keys",
]



@dataclass(frozen=True, eq=False)
class FleetArrays:
    """The fleet as arrays for the LP (site order = fleet order; areas = fleet areas).

    base_mw[s] : facility power with no job running [MW];  mw_per_gpu[s] : facility power per busy
    GPU at full speed [MW/GPU];  cap_gpus[s] : GPUs wattbit may use, limited by the IT power cap
    and the base load [GPU].
    """

    sites: tuple[str, ...]
    areas: tuple[str, ...]
    site_area: np.ndarray
    base_mw: np.ndarray
    mw_per_gpu: np.ndarray
    cap_gpus: np.ndarray
    _masks: dict = field(default_factory=dict, repr=False, compare=False)

    def allowed_sites(self, allowed_areas: frozenset[str]) -> tuple[bool, ...]:
        """Which sites lie in ``allowed_areas`` (one flag per site; remembered per area set)."""
        mask = self._masks.get(allowed_areas)
        if mask is None:
            mask = self._masks[allowed_areas] = tuple(
                self.areas[a] in allowed_areas for a in self.site_area)
        return mask

    def only(self, site_index: int) -> tuple[bool, ...]:
        """The flags of a single site (one flag per site)."""
        mask = self._masks.get(site_index)
        if mask is None:
            mask = self._masks[site_index] = tuple(s == site_index for s in range(len(self.sites)))
        return mask


def fleet_arrays(fleet: Fleet) -> FleetArrays:
    from wattbit.power import power_coefficients

    areas = fleet.areas
    base, per_gpu, cap = [], [], []
    for s in fleet.sites:
        base_mw, mw_per_gpu = power_coefficients(s)
        base.append(base_mw)
        per_gpu.append(mw_per_gpu)
        power_cap = (s.it_power_max_mw * s.pue - base_mw) / mw_per_gpu
        cap.append(max(0.0, min(s.gpu_count * (1.0 - s.base_load_pu), power_cap)))
    return FleetArrays(
        sites=fleet.site_names,
        areas=areas,
        site_area=np.array([areas.index(s.area) for s in fleet.sites]),
        base_mw=np.asarray(base),
        mw_per_gpu=np.asarray(per_gpu),
        cap_gpus=np.floor(np.asarray(cap)),
    )


def grid_blocks(signals: GridSignals, areas: Sequence[str], blocks: Blocks):
    """Price [JPY/MWh], curtailment [MW] and the marginal intensity of grid-served energy
    [g/kWh] per (area, block). While an area curtails, the energy beyond the surplus comes from
    its thermal margin, so the marginal intensity used there is the thermal margin,
    :data:`wattbit.grid.carbon.MARGINAL_THERMAL_G_PER_KWH` (LNG combined cycle, 490 g/kWh, the
    value the signals carry outside curtailment): the same in every window, so a slot is charged
    alike in a plan's horizon, in a run in one piece and in a chunk of it."""
    sig = signals.select_areas(areas)
    price = blocks.aggregate_mean(sig.price_jpy_per_mwh).T
    curt = blocks.aggregate_mean(sig.curtailment_mw).T
    mc_eff = np.where(sig.curtailment_mw > 0, MARGINAL_THERMAL_G_PER_KWH, sig.carbon_marginal_g_per_kwh)
    return price, curt, blocks.aggregate_mean(mc_eff).T


@dataclass(frozen=True, slots=True)
class JobView:
    """What the planner needs of one job now: remaining work [GPU-h], where its state is
    (site index or -1), whether it may move, the hours from now to its release and deadline."""

    job: Job
    remaining_gpu_h: float
    origin: int
    pinned: bool
    release_in_h: float
    deadline_in_h: float
    running: bool = False


@dataclass(frozen=True, eq=False)
class JobViews:
    """:class:`JobView` of many jobs at once, as columns (one entry per job, in ``jobs`` order):
    what :func:`work_classes` reads. :func:`job_views` builds them with array arithmetic, which
    is what a controller does for the few hundred live jobs of every plan."""

    jobs: tuple[Job, ...]
    remaining_gpu_h: np.ndarray
    origin: np.ndarray
    pinned: np.ndarray
    release_in_h: np.ndarray
    deadline_in_h: np.ndarray
    running: np.ndarray

    def __len__(self) -> int:
        return len(self.jobs)

    @classmethod
    def of(cls, views: Iterable[JobView]) -> JobViews:
        """The columns of single views."""
        views = list(views)
        n = len(views)
        return cls(tuple(v.job for v in views),
                   np.fromiter((v.remaining_gpu_h for v in views), float, n),
                   np.fromiter((v.origin for v in views), np.int64, n),
                   np.fromiter((v.pinned for v in views), bool, n),
                   np.fromiter((v.release_in_h for v in views), float, n),
                   np.fromiter((v.deadline_in_h for v in views), float, n),
                   np.fromiter((v.running for v in views), bool, n))


def _hours(delta: pd.Timedelta) -> float:
    return delta.as_unit("ns").value / NS_PER_H


def _hours_between(later: pd.Timestamp, earlier: pd.Timestamp) -> float:
    """(later - earlier) in hours, on integer nanoseconds (fast in loops over many jobs)."""
    return (later.as_unit("ns").value - earlier.as_unit("ns").value) / NS_PER_H


DEADLINE_MARGIN_H = 1.0
"""The planner aims to finish every job this long before its deadline [h] (two 30-min slots):
coarse blocks, whole-job rounding, checkpoint restores and a plan laid from the start of the slot
it is made in then cannot push it past the deadline. Where a job's slack is shorter, the margin
shrinks to what the slack allows. An assumption (docs/assumptions.md)."""

NOMINAL_SLACK_H = 72.0
"""A job without a deadline is planned as if due this long after it could finish [h]: longer than
the planner's 48 h horizon, so that such work waits for cheap hours, yet gets done within days.
An assumption; the bundled workloads give every job a deadline."""


def job_view(job: Job, now: pd.Timestamp | int, remaining_gpu_h: float, site_index: int,
             running: bool, nominal_slack_h: float = NOMINAL_SLACK_H,
             margin_h: float = DEADLINE_MARGIN_H) -> JobView:
    """One job's :class:`JobView`, by the rules of :func:`job_views` (written there once).
    ``now`` may be given as integer nanoseconds since the epoch (UTC), a Python or a NumPy integer."""
    now_ns = now.value if isinstance(now, pd.Timestamp) else integer("job_view", "now", now)
    v = job_views([job], now_ns, [remaining_gpu_h],
                  [site_index], [running], nominal_slack_h, margin_h)
    return JobView(job, float(v.remaining_gpu_h[0]), int(v.origin[0]), bool(v.pinned[0]),
                   float(v.release_in_h[0]), float(v.deadline_in_h[0]), bool(v.running[0]))


def job_views(jobs: Sequence[Job], now_ns: int, remaining_gpu_h: Sequence[float],
              site_index: Sequence[int], running: Sequence[bool], nominal_slack_h: float = NOMINAL_SLACK_H,
              margin_h: float = DEADLINE_MARGIN_H) -> JobViews:
    """What the planner needs of each job now, as columns: ``now_ns`` is integer nanoseconds
    since the epoch (UTC); remaining_gpu_h[i], site_index[i] (or -1) and running[i] are job i's
    state.

    Jobs without a deadline get a nominal one ``nominal_slack_h`` after they could finish; the
    planning deadline is ``margin_h`` before the real one (within the job's slack). A job's
    state counts (``origin``) if it runs or can be resumed; a running job that cannot be
    preempted is ``pinned`` where it runs."""
    n = len(jobs)
    rem = np.asarray(remaining_gpu_h, dtype=float).reshape(n)
    site = np.asarray(site_index, dtype=np.int64).reshape(n)
    run = np.asarray(running, dtype=bool).reshape(n)
    release_ns = np.fromiter((j.release_ns for j in jobs), np.int64, n)
    has_dl = np.fromiter((j.deadline_ns is not None for j in jobs), bool, n)
    deadline_ns = np.fromiter((0 if j.deadline_ns is None else j.deadline_ns for j in jobs), np.int64, n)
    runtime_h = np.fromiter((j.runtime_h for j in jobs), float, n)
    gpus = np.fromiter((j.gpus for j in jobs), float, n)
    preemptible = np.fromiter((j.kind.preemptible for j in jobs), bool, n)
    release_in_h = np.maximum(0.0, (release_ns - now_ns) / NS_PER_H)
    to_deadline_h = (deadline_ns - now_ns) / NS_PER_H
    earliest_h = release_in_h + rem / gpus
    deadline_in_h = np.where(has_dl,
                             np.maximum(np.minimum(to_deadline_h, earliest_h), to_deadline_h - margin_h),
                             release_in_h + runtime_h + nominal_slack_h)
    origin = np.where(run | preemptible, site, -1)  # (state_origin's rule, in columns)
    return JobViews(tuple(jobs), rem, origin, run & ~preemptible, release_in_h, deadline_in_h, run)


def state_origin(job: Job, site_index: int, running: bool) -> tuple[int, bool]:
    """One job's ``origin`` and ``pinned`` as :func:`job_views` gives them: the site that holds
    its state (``site_index``, -1 for none) if it runs or can be resumed, else -1; and whether it
    runs and cannot be preempted."""
    preemptible = job.kind.preemptible
    return (site_index if running or preemptible else -1), (running and not preemptible)


def work_key(job: Job, origin: int, pinned: bool, fa: FleetArrays, *, spatial: bool,
             home_index: Callable[[Job], int]) -> tuple | None:
    """A job's flexibility class: (allowed-site flags, origin site index or -1, pinned); None
    where the job may run nowhere in the fleet. ``origin`` and ``pinned`` as :func:`job_views`
    gives them (or :func:`state_origin`, for one job)."""
    if pinned:
        allowed = fa.only(origin)
    elif spatial:
        allowed = fa.allowed_sites(job.allowed_areas)
    else:
        allowed = fa.only(origin if origin >= 0 else home_index(job))
    return (allowed, (origin if (origin >= 0 and allowed[origin]) else -1), pinned) if any(allowed) else None


def work_keys(views: JobViews, fa: FleetArrays, *, spatial: bool, home_index) -> list[tuple | None]:
    """Each job's :func:`work_key`."""
    return [work_key(job, origin, pinned, fa, spatial=spatial, home_index=home_index)
            for job, origin, pinned in zip(views.jobs, views.origin.tolist(), views.pinned.tolist())]


def service_key_fields(job: Job) -> tuple:
    """The fields of an online-inference job that :func:`service_key` reads (with ``home_index``
    reading its home site): jobs equal in them have the same service class."""
    return job.allowed_areas, job.user_area, job.rtt_budget_s, job.home_site


def service_key(job: Job, fa: FleetArrays, *, reroute: bool, rtt_s, home_index) -> tuple[bool, ...]:
    """The service class of an online-inference job: the sites that may serve it (inside its
    area set and RTT budget; its home site alone if none is, or without rerouting)."""
    if reroute:
        allowed = tuple(
            fa.areas[fa.site_area[s]] in job.allowed_areas
            and rtt_s(job.user_area, fa.sites[s]) <= job.rtt_budget_s
            for s in range(len(fa.sites)))
        if any(allowed):
            return allowed
    return fa.only(home_index(job))


def work_classes(views: JobViews | Iterable[JobView], fa: FleetArrays, blocks: Blocks, *, spatial: bool,
                 temporal: bool, pacing_pu: float, move_time_s, home_index,
                 restart_costs: bool = True) -> tuple[WorkClasses, list]:
    """Group deferrable jobs into classes and build their curves.

    move_time_s(size_gb, src_site, dst_site) gives a move's duration [s];
    home_index(job) gives the index of a job's home site.
    due curve: the work each job must have done by the end of block b to still meet its
    deadline at full speed (latest-start envelope); with ``temporal`` its work beyond the horizon
    is paced — at least ``pacing_pu`` × the share of the time left to its deadline that the
    horizon covers — and without it the job must progress at full speed (no deferral).
    The curves of all jobs are computed at once (one row per job) and summed into their classes.
    With ``restart_costs`` the classes carry the GPUs running now and the GPU time a stop and
    restart loses (see :func:`wattbit.power.restart_h_per_gpu`), so that the LP does not stop and
    start work for a trifle.
    """
    S, B = len(fa.sites), blocks.n
    end_h = blocks.end_h
    start_h = blocks.offset_h
    horizon_h = end_h[-1]
    cols = views if isinstance(views, JobViews) else JobViews.of(views)
    key_index: dict[tuple, int] = {}
    kept_i: list[int] = []
    cls: list[int] = []
    for i, key in enumerate(work_keys(cols, fa, spatial=spatial, home_index=home_index)):
        if key is None:
            continue
        c = key_index.get(key)
        if c is None:
            c = key_index[key] = len(key_index)
        cls.append(c)
        kept_i.append(i)

    keys = list(key_index)
    C, N = len(keys), len(kept_i)
    allowed = np.array([k[0] for k in keys], dtype=bool).reshape(C, S)
    origin = np.array([k[1] for k in keys], dtype=int)
    move_h = np.zeros((C, S))
    if not N:
        z = np.zeros((0, B))
        return WorkClasses(allowed, origin, z, z.copy(), np.zeros(0), move_h, np.zeros(0), z.copy(),
                           (), np.zeros(0) if restart_costs else None,
                           np.zeros(0) if restart_costs else None), []
    ci = np.asarray(cls)
    idx = np.asarray(kept_i)
    kept = [cols.jobs[i] for i in kept_i]
    g = np.fromiter((job.gpus for job in kept), float, N)
    rem = cols.remaining_gpu_h[idx]
    rel = cols.release_in_h[idx]
    dl = cols.deadline_in_h[idx]
    gb = np.fromiter((job.checkpoint_gb for job in kept), float, N)
    pinned = cols.pinned[idx]
    # a job runs from its release until its deadline, or until it can finish if that is later
    # (dispatch runs a job out of slack whatever the plan says: its load must be in the plan)
    active = (start_h[None, :] < np.maximum(dl, rel + rem / g)[:, None]) & (end_h[None, :] > rel[:, None])
    # latest-start envelope: work that must be done by end_b at full speed
    must = np.maximum(0.0, rem[:, None] - g[:, None] * np.maximum(0.0, dl[:, None] - end_h[None, :]))
    released_h = np.maximum(0.0, end_h[None, :] - rel[:, None])
    if not temporal:  # no deferral: progress at full speed from release on
        must = np.maximum(must, np.minimum(rem[:, None], g[:, None] * released_h))
    else:  # paced: work beyond the horizon keeps up with the time left to its deadline
        beyond = dl > horizon_h
        paced = rem * np.minimum(1.0, pacing_pu * horizon_h / np.maximum(dl, 1e-9))
        doable = g * np.maximum(0.0, horizon_h - rel)
        must[beyond, -1] = np.maximum(must[beyond, -1], np.minimum(paced, doable)[beyond])
    if pinned.any():  # running and not preemptible: runs on at full speed
        must[pinned] = np.minimum(rem[pinned, None], g[pinned, None] * end_h[None, :])
    must = np.minimum(must, rem[:, None])
    onehot = np.zeros((C, N))
    onehot[ci, np.arange(N)] = 1.0
    cap = onehot @ (g[:, None] * active)
    due = np.maximum.accumulate(onehot @ must, axis=1)
    upper = onehot @ np.minimum(rem[:, None], g[:, None] * released_h)
    remaining = np.bincount(ci, rem, C)
    gb_c = np.bincount(ci, gb, C)
    ckpt = gb_c / np.maximum(np.bincount(ci, g, C), 1.0)
    count = np.bincount(ci, minlength=C)
    members: list[list[str]] = [[] for _ in range(C)]
    for c, job in zip(cls, kept):
        members[c].append(job.job_id)
    if spatial:  # (Python numbers in the loop: NumPy scalars are slow to index and to check)
        moving = np.flatnonzero(origin >= 0)
        for c, o, mean_gb in zip(moving.tolist(), origin[moving].tolist(), (gb_c[moving] / count[moving]).tolist()):
            for s in np.flatnonzero(allowed[c]).tolist():
                if s != o:
                    move_h[c, s] = move_time_s(mean_gb, fa.sites[o], fa.sites[s]) / 3600.0
    running_gpus = restart_h = None
    if restart_costs:
        running = cols.running[idx]
        running_gpus = np.bincount(ci, g * running, C)
        restart_h = restart_h_per_gpu(ckpt)
    return (WorkClasses(allowed, origin, cap, due, remaining, move_h, ckpt, upper, tuple(keys),
                        running_gpus, restart_h),
            [tuple(m) for m in members])


def service_classes(jobs: Iterable[Job], now: pd.Timestamp, fa: FleetArrays, blocks: Blocks, *,
                    key_of: Callable[[Job], tuple[bool, ...]]) -> tuple[ServiceClasses, list]:
    """Online inference grouped by the sites that may serve it (``key_of(job)``: its
    :func:`service_key`, which a caller may remember); demand per block [GPU] is each job's GPUs
    times the share of the block inside its serving window."""
    S, B = len(fa.sites), blocks.n
    start_h, end_h = blocks.offset_h, blocks.end_h
    groups: dict[tuple, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[key_of(job)].append(job)
    keys = list(groups)
    K = len(keys)
    allowed = np.zeros((K, S), bool)
    demand = np.zeros((K, B))
    members = []
    for k, key in enumerate(keys):
        allowed[k] = key
        for job in groups[key]:
            rel = (job.release_ns - now.value) / NS_PER_H
            dl = (job.deadline_ns - now.value) / NS_PER_H
            overlap = np.clip(np.minimum(end_h, dl) - np.maximum(start_h, rel), 0, None)
            demand[k] += job.gpus * overlap / blocks.duration_h
        members.append(tuple(j.job_id for j in groups[key]))
    return ServiceClasses(allowed, demand, tuple(keys)), members


def with_expected_demand(classes: ServiceClasses, members: list, keys: Sequence, demand_gpus: np.ndarray,
                         ) -> tuple[ServiceClasses, list]:
    """Service classes with demand expected from inference not released yet [GPU per block]
    added: to the class of the same key, or as a class of its own with no member jobs yet
    (a key may repeat: its rows add up).

    >>> sc = ServiceClasses(np.array([[True, False]]), np.array([[8.0, 8.0]]), ((True, False),))
    >>> sc2, members = with_expected_demand(sc, [("oi-1",)], [(True, False), (False, True), (False, True)],
    ...                                     np.array([[0.0, 16.0], [4.0, 4.0], [1.0, 0.0]]))
    >>> sc2.demand_gpus.tolist(), sc2.allowed.tolist(), members
    ([[8.0, 24.0], [5.0, 4.0]], [[True, False], [False, True]], [('oi-1',), ()])
    """
    if not len(keys):
        return classes, members
    index = {key: k for k, key in enumerate(classes.keys)}
    new = list(dict.fromkeys(key for key in keys if key not in index))
    S = classes.allowed.shape[1]
    allowed = np.vstack([classes.allowed, np.array(new, dtype=bool).reshape(len(new), S)])
    demand = np.vstack([classes.demand_gpus, np.zeros((len(new), classes.demand_gpus.shape[1]))])
    for key in new:
        index[key] = len(index)
    for key, row in zip(keys, demand_gpus):
        demand[index[key]] += row
    return ServiceClasses(allowed, demand, (*classes.keys, *new)), [*members, *([()] * len(new))]


def dr_target_mw(dr: DemandResponse, ref_mw: float) -> float:
    """The area's fleet load a request asks for, from the reference load ``ref_mw`` [MW]: at
    least ref + MW (上げ), at most ref - MW (下げ; not below 0)."""
    return ref_mw + dr.power_mw if dr.direction is DRDirection.UP else max(0.0, ref_mw - dr.power_mw)


def dr_constraints(requests: Iterable[tuple[DemandResponse, float]], now: pd.Timestamp,
                   fa: FleetArrays, blocks: Blocks) -> tuple[DRConstraint, ...]:
    """Each (request, reference load [MW]) pair becomes a constraint on the area's fleet load
    over the blocks its window overlaps: load >= ref + MW (上げ) or <= ref - MW (下げ)."""
    out = []
    start_h, end_h = blocks.offset_h, blocks.end_h
    for dr, ref_mw in requests:
        if dr.area not in fa.areas:
            continue
        a = _hours(dr.start - now)
        b = _hours(dr.end - now)
        mask = (end_h > a + 1e-9) & (start_h < b - 1e-9)
        if not mask.any():
            continue
        out.append(DRConstraint(dr.request_id, fa.areas.index(dr.area), mask,
                                1 if dr.direction is DRDirection.UP else -1, dr_target_mw(dr, ref_mw)))
    return tuple(out)
