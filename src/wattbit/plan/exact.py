"""The exact job-level planning LP: the reference the flexibility-class LP is measured against.

Same data, same objective and same constraints as :mod:`wattbit.plan.lp`, but one set of
variables per *job* instead of per class (all >= 0)::

    x[j, s, b]  GPUs of job j busy at site s in block b (full-speed equivalents, mean over b) [GPU]
    m[j, s]     GPUs of job j moved from its origin to site s                                 [GPU]
    w[j, b]     work of job j done by the end of block b, net of move losses                  [GPU-h]
    short[r]    work missing at a due row r of job j                                          [GPU-h]
    y[i, s, b]  GPUs serving online-inference job i from site s in block b                    [GPU]
    u[i, b]     inference demand of job i left unserved                                       [GPU]
    e[a, b]     curtailment absorbed in area a                                                [MW]
    d[q]        demand-response shortfall at DR row q                                         [MW]

Rows::

    Σ_s x[j,s,b]          <= gpus_j × frac[j,b]   the job runs only inside [release, deadline):
                                                   frac is the share of block b in that window
    w[j,b] - w[j,b-1] - Σ_s h_b x[j,s,b] (+ Σ_s move_h m at b=0) == 0
    w[j,b] + short        >= must[j,b]            the job's own latest-start envelope (and pacing
                                                   beyond the horizon), at blocks where it grows
    w[j,b]                <= min(remaining_j, gpus_j × (end_b - release_j))
    Σ_j x[j,s,b] + Σ_i y[i,s,b] <= cap_gpus[s,b]  site GPUs and IT power cap
    x[j,s,b] - m[j,s]     <= 0                    work away from the origin was moved
    Σ_s y[i,s,b] + u[i,b] == demand[i,b]
    e[a,b] - Σ_{s in a} mw_per_gpu (Σx + Σy) <= Σ_{s in a} base_mw
    load[a,b] ± d         >=/<= DR target

The objective is term for term that of :func:`wattbit.plan.lp.solve`. Summing a feasible
job-level plan over the jobs of a class gives a feasible class plan of the same cost whenever no
deadline is missed (the class's concurrency, due and release curves are sums of its jobs'), so
the class LP's optimum is a lower bound on this one; the difference is the *aggregation gap*.
Under a shortfall the two charge the penalty at different rows (the class LP pools its jobs' due
rows), so the bound needs the exact optimum to miss no deadline.

The exact LP has ~jobs × sites × blocks columns; it is meant for measuring the gap on instances
up to a few thousand jobs, not for online use (benchmarks/bench_plan.py).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.domain import Job, Weights
from wattbit.errors import InvalidInput
from wattbit.plan.build import FleetArrays, JobView, _hours_between
from wattbit.plan.lp import _Builder, _quiet_highs, run_highs
from wattbit.plan.problem import (
    DR_PENALTY_JPY_PER_MWH,
    WEIGHT_FIELDS,
    Blocks,
    DRConstraint,
    PlanningProblem,
)
from wattbit.power import restart_h_per_gpu

__all__ = ["ExactResult", "solve_exact", "solve_exact_like", "weights_of"]


@dataclass(frozen=True, eq=False)
class ExactResult:
    """The job-level LP's answer.

    status : HiGHS model status;  objective_jpy : optimum incl. the base-load constant [JPY]
    (NaN unless optimal);  build_s, solve_s : wall time to build the arrays and to run HiGHS [s];
    n_cols, n_rows : model size;  n_jobs, n_services : deferrable and online-inference jobs;
    site_gpus[s, b] : busy GPUs per site and block [GPU];  absorbed_mw[a, b] : curtailment
    absorbed [MW];  short_gpu_h : work missing at due rows, summed [GPU-h];  dr_short_mw[r] :
    demand-response shortfall of request r, the max over its blocks, in the order of ``dr``
    (as :attr:`wattbit.plan.lp.PlanResult.dr_short_mw`) [MW].
    """

    status: str
    objective_jpy: float
    build_s: float
    solve_s: float
    n_cols: int
    n_rows: int
    n_jobs: int
    n_services: int
    site_gpus: np.ndarray
    absorbed_mw: np.ndarray
    short_gpu_h: float
    dr_short_mw: np.ndarray


def weights_of(p: PlanningProblem) -> Weights:
    """The objective weights a class problem was built with (the inverse of
    :func:`wattbit.plan.problem.weight_kwargs`)."""
    return Weights(**{w: getattr(p, field) for field, w in WEIGHT_FIELDS.items()})


def _allowed_sites(views: Sequence[JobView], fa: FleetArrays, spatial: bool,
                   home_index: Callable[[Job], int]) -> tuple[np.ndarray, np.ndarray]:
    """allowed[j, s] and origin[j] by the rules of :func:`wattbit.plan.build.work_classes`."""
    S = len(fa.sites)
    site_areas = [fa.areas[a] for a in fa.site_area]
    by_areas: dict[frozenset, np.ndarray] = {}
    allowed = np.zeros((len(views), S), bool)
    origin = np.full(len(views), -1)
    for j, v in enumerate(views):
        if v.pinned:
            allowed[j, v.origin] = True
        elif spatial:
            key = v.job.allowed_areas
            row = by_areas.get(key)
            if row is None:
                row = by_areas[key] = np.array([a in key for a in site_areas])
            allowed[j] = row
        else:
            allowed[j, v.origin if v.origin >= 0 else home_index(v.job)] = True
        if v.origin >= 0 and allowed[j, v.origin]:
            origin[j] = v.origin
    return allowed, origin


def _due_curves(views: Sequence[JobView], blocks: Blocks, temporal: bool, pacing_pu: float):
    """must[j, b] (work due by the end of block b) and upper[j, b] (work released by then) [GPU-h],
    each job's own curve as :func:`wattbit.plan.build.work_classes` builds it."""
    end_h = blocks.end_h
    horizon_h = end_h[-1]
    g = np.array([v.job.gpus for v in views], dtype=float)
    rem = np.array([v.remaining_gpu_h for v in views], dtype=float)
    rel = np.array([v.release_in_h for v in views], dtype=float)
    dl = np.array([v.deadline_in_h for v in views], dtype=float)
    pinned = np.array([v.pinned for v in views], dtype=bool)
    must = np.maximum(0.0, rem[:, None] - g[:, None] * np.maximum(0.0, dl[:, None] - end_h[None, :]))
    if temporal:
        beyond = (dl > horizon_h) & ~pinned
        paced = rem * np.minimum(1.0, pacing_pu * horizon_h / np.maximum(dl, 1e-9))
        doable = g * np.maximum(0.0, horizon_h - rel)
        must[beyond, -1] = np.maximum(must[beyond, -1], np.minimum(paced, doable)[beyond])
    else:
        asap = np.minimum(rem[:, None], g[:, None] * np.maximum(0.0, end_h[None, :] - rel[:, None]))
        must[~pinned] = np.maximum(must[~pinned], asap[~pinned])
    if pinned.any():
        must[pinned] = np.minimum(rem[pinned, None], g[pinned, None] * end_h[None, :])
    must = np.minimum(must, rem[:, None])
    upper = np.minimum(rem[:, None], g[:, None] * np.maximum(0.0, end_h[None, :] - rel[:, None]))
    return g, rem, rel, dl, must, upper


def solve_exact(
    fa: FleetArrays,
    views: Sequence[JobView],
    services: Sequence[Job],
    blocks: Blocks,
    price_jpy_per_mwh: np.ndarray,
    curtailment_mw: np.ndarray,
    carbon_marginal_g_per_kwh: np.ndarray,
    weights: Weights | None = None,
    *,
    now: pd.Timestamp,
    cap_gpus: np.ndarray | None = None,
    spatial: bool = True,
    temporal: bool = True,
    reroute: bool = True,
    pacing_pu: float = 1.0,
    move_time_s: Callable[[float, str, str], float] | None = None,
    rtt_s: Callable[[str, str], float] | None = None,
    home_index: Callable[[Job], int] | None = None,
    dr: Sequence[DRConstraint] = (),
    time_limit_s: float = 600.0,
    solver: str = "choose",
    restart_costs: bool = False,
) -> ExactResult:
    """Build and solve the job-level LP on the same inputs as the class LP.

    fa : the fleet as arrays;  views : deferrable jobs as the planner sees them now
    (:func:`wattbit.plan.build.job_view`);  services : online-inference jobs;  blocks : the
    horizon's blocks;  price_jpy_per_mwh, curtailment_mw, carbon_marginal_g_per_kwh : grid per
    (area, block) as :func:`wattbit.plan.build.grid_blocks` gives them [JPY/MWh, MW, g/kWh];
    weights : objective weights (default ``Weights()``);  now : the decision instant (UTC);  cap_gpus[s, b] : GPUs
    available [GPU] (default: ``fa.cap_gpus`` in every block);  spatial, temporal, reroute :
    policy levers;  pacing_pu : pacing of deadlines beyond the horizon [-];
    move_time_s(size_gb, src, dst) : move duration [s] (needed when a job has an origin);
    rtt_s(user_area, site) : round trip [s] (needed with ``reroute``);  home_index(job) : index
    of a job's home site (needed without ``spatial`` and for inference);  dr : demand-response
    rows;  time_limit_s : HiGHS time limit [s];  restart_costs : charge every GPU a job starts
    (above what runs now, or above the block before) at the GPU time a stop and restart loses
    (:func:`wattbit.power.restart_h_per_gpu`), as the class LP does when its classes carry it.

    Returns the status and, if optimal, the objective; a time limit is reported in ``status``
    (objective NaN), not raised.
    """
    import highspy

    t_build = _time.perf_counter()
    views = list(views)
    services = list(services)
    B = blocks.n
    h = np.asarray(blocks.duration_h, dtype=float)
    start_h, end_h = blocks.offset_h, blocks.end_h
    S, A = len(fa.sites), len(fa.areas)
    J, I = len(views), len(services)
    inf = highspy.kHighsInf
    if price_jpy_per_mwh.shape != (A, B):
        raise InvalidInput(
            f"solve_exact: price_jpy_per_mwh has shape {price_jpy_per_mwh.shape}; expected "
            f"({A}, {B}) = (areas, blocks)")
    if home_index is None and (services or not spatial):
        raise InvalidInput("solve_exact: home_index is needed for online inference and without spatial")
    cap = (np.repeat(fa.cap_gpus[:, None], B, 1).astype(float) if cap_gpus is None
           else np.asarray(cap_gpus, dtype=float))
    weights = weights or Weights()
    cp = weights.carbon_price_jpy_per_t / 1000.0
    grid_cost = price_jpy_per_mwh + cp * carbon_marginal_g_per_kwh

    # ---- deferrable jobs: columns -------------------------------------------------------
    allowed, origin = _allowed_sites(views, fa, spatial, home_index)
    g, _rem, rel, dl, must, upper = _due_curves(views, blocks, temporal, pacing_pu)
    frac = np.clip(np.minimum(end_h[None, :], dl[:, None]) - np.maximum(start_h[None, :], rel[:, None]),
                   0.0, None) / h[None, :] if J else np.zeros((0, B))
    trip = np.argwhere(allowed[:, :, None] & (frac[:, None, :] > 1e-12))  # (j, s, b), job-major
    nx = len(trip)
    xj, xs, xb = (trip[:, 0], trip[:, 1], trip[:, 2]) if nx else (np.zeros(0, int),) * 3
    x0 = 0
    # moves: (job, site) pairs away from the job's origin
    if spatial and J:
        mj, ms = np.nonzero(allowed & (origin[:, None] >= 0) & (np.arange(S)[None, :] != origin[:, None]))
    else:
        mj, ms = np.zeros(0, int), np.zeros(0, int)
    nm = len(mj)
    if nm and move_time_s is None:
        raise InvalidInput("solve_exact: jobs have an origin and may move; give move_time_s")
    m0 = x0 + nx
    w0 = m0 + nm
    nw = J * B
    grow = np.zeros_like(must, dtype=bool)
    if J:
        grow[:, 0] = must[:, 0] > 1e-9
        grow[:, 1:] = np.diff(must, axis=1) > 1e-9
    due_rc = np.argwhere(grow)
    nshort = len(due_rc)
    s0 = w0 + nw
    # ---- online inference ---------------------------------------------------------------
    sallowed = np.zeros((I, S), bool)
    demand = np.zeros((I, B))
    for i, job in enumerate(services):
        if reroute:
            row = np.array([fa.areas[fa.site_area[s]] in job.allowed_areas
                            and rtt_s(job.user_area, fa.sites[s]) <= job.rtt_budget_s for s in range(S)])
            sallowed[i] = row
        if not sallowed[i].any():
            sallowed[i, home_index(job)] = True
        r_h = _hours_between(job.release, now)
        d_h = _hours_between(job.deadline, now)
        demand[i] = job.gpus * np.clip(np.minimum(end_h, d_h) - np.maximum(start_h, r_h), 0, None) / h
    spairs = np.argwhere(sallowed)
    Q = len(spairs)
    y0 = s0 + nshort
    ny = Q * B
    u0 = y0 + ny
    nu = I * B
    e0 = u0 + nu
    ne = A * B
    dr_rows = [(k, b) for k, r in enumerate(dr) for b in np.flatnonzero(r.blocks)]
    d0 = e0 + ne
    nd = len(dr_rows)
    z0 = d0 + nd
    nz = J * B if restart_costs else 0
    ncol = z0 + nz

    cost = np.zeros(ncol)
    lb = np.zeros(ncol)
    ub = np.full(ncol, inf)
    xarea = fa.site_area[xs]
    cost[x0:m0] = h[xb] * fa.mw_per_gpu[xs] * grid_cost[xarea, xb]
    ub[x0:m0] = np.minimum(g[xj], cap[xs, xb])
    move_h = np.zeros(nm)
    if nm:
        for k in range(nm):
            job = views[mj[k]].job
            move_h[k] = move_time_s(job.checkpoint_gb, fa.sites[origin[mj[k]]], fa.sites[ms[k]]) / 3600.0
        ckpt_per_gpu = np.array([views[j].job.checkpoint_gb for j in mj]) / g[mj]
        cost[m0:w0] = (ckpt_per_gpu * weights.move_penalty_jpy_per_gb
                       + move_h * weights.gpu_hour_value_jpy + 1e-3)
    lb[w0:s0] = -inf
    ub[w0:s0] = upper.ravel()
    cost[s0:y0] = weights.deadline_penalty_jpy_per_gpu_h
    if Q:
        ssite = spairs[:, 1]
        cost[y0:u0] = (h[None, :] * fa.mw_per_gpu[ssite][:, None] * grid_cost[fa.site_area[ssite], :]).ravel()
        ub[y0:u0] = cap[ssite, :].ravel()
    cost[u0:e0] = np.tile(weights.unserved_inference_penalty_jpy_per_gpu_h * h, I)
    cost[e0:d0] = (-h[None, :] * (cp * carbon_marginal_g_per_kwh
                                  + weights.curtailment_value_jpy_per_mwh)).ravel()
    ub[e0:d0] = np.asarray(curtailment_mw, dtype=float).ravel()
    if nd:
        cost[d0:z0] = [DR_PENALTY_JPY_PER_MWH * h[b] for _, b in dr_rows]
    if nz:
        ckpt_gb = np.array([v.job.checkpoint_gb for v in views], dtype=float)
        cost[z0:] = np.repeat(restart_h_per_gpu(ckpt_gb / g) * weights.gpu_hour_value_jpy, B)

    # ---- rows ---------------------------------------------------------------------------
    bld = _Builder()
    xcol = x0 + np.arange(nx)
    if J:
        # concurrency inside the job's window
        r = bld.add_rows(J * B, -inf, (g[:, None] * frac).ravel())
        bld.add(r + xj * B + xb, xcol, 1.0)
        # running total of work
        wcol = w0 + np.arange(J)[:, None] * B + np.arange(B)[None, :]
        r = bld.add_rows(J * B, 0.0, 0.0)
        rows_jb = r + np.arange(J)[:, None] * B + np.arange(B)[None, :]
        bld.add(rows_jb, wcol, 1.0)
        bld.add(rows_jb[:, 1:], wcol[:, :-1], -1.0)
        bld.add(rows_jb[xj, xb], xcol, -h[xb])
        if nm:
            bld.add(rows_jb[mj, 0], m0 + np.arange(nm), move_h)
            # work away from the origin needs moved GPUs: one row per (x column away from origin)
            pair = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(mj, ms))}
            away = np.array([pair.get((int(a), int(b)), -1) for a, b in zip(xj, xs)])
            sel = np.flatnonzero(away >= 0)
            r = bld.add_rows(len(sel), -inf, 0.0)
            bld.add(r + np.arange(len(sel)), xcol[sel], 1.0)
            bld.add(r + np.arange(len(sel)), m0 + away[sel], -1.0)
        if nz:
            # starts: Σ_s x[j,s,b] - Σ_s x[j,s,b-1] - z[j,b] <= 0, and <= the GPUs running now at b = 0
            rhs = np.zeros((J, B))
            rhs[:, 0] = [v.job.gpus if v.running else 0.0 for v in views]
            r = bld.add_rows(J * B, -inf, rhs.ravel())
            bld.add(r + xj * B + xb, xcol, 1.0)
            later = xb + 1 < B
            bld.add(r + xj[later] * B + xb[later] + 1, xcol[later], -1.0)
            bld.add(r + np.arange(J * B), z0 + np.arange(J * B), -1.0)
        if nshort:
            r = bld.add_rows(nshort, must[due_rc[:, 0], due_rc[:, 1]], inf)
            bld.add(r + np.arange(nshort), wcol[due_rc[:, 0], due_rc[:, 1]], 1.0)
            bld.add(r + np.arange(nshort), s0 + np.arange(nshort), 1.0)
    # site capacity
    r = bld.add_rows(S * B, -inf, cap.ravel())
    bld.add(r + xs * B + xb, xcol, 1.0)
    bidx = np.arange(B)
    ycol = y0 + np.arange(Q)[:, None] * B + bidx[None, :]
    if Q:
        bld.add(r + spairs[:, 1][:, None] * B + bidx[None, :], ycol, 1.0)
    if I:
        r = bld.add_rows(I * B, demand.ravel(), demand.ravel())
        if Q:
            bld.add(r + spairs[:, 0][:, None] * B + bidx[None, :], ycol, 1.0)
        bld.add(r + np.arange(I * B), u0 + np.arange(I * B), 1.0)
    # absorbed curtailment <= fleet load in the area
    base_area = np.bincount(fa.site_area, weights=fa.base_mw, minlength=A)
    r_abs = bld.add_rows(A * B, -inf, np.repeat(base_area, B))
    bld.add(r_abs + np.arange(A * B), e0 + np.arange(A * B), 1.0)
    bld.add(r_abs + xarea * B + xb, xcol, -fa.mw_per_gpu[xs])
    if Q:
        ssite = spairs[:, 1]
        bld.add(r_abs + fa.site_area[ssite][:, None] * B + bidx[None, :], ycol,
                -fa.mw_per_gpu[ssite][:, None].repeat(B, 1))
    # demand response (same rows as the class LP)
    for q, (k, b) in enumerate(dr_rows):
        req = dr[k]
        relative = req.ref_block >= 0
        rhs = req.direction * req.target_mw if relative else req.target_mw - base_area[req.area]
        if req.direction > 0:
            row = bld.add_rows(1, rhs, inf)
            bld.add([row], [d0 + q], [1.0])
        else:
            row = bld.add_rows(1, -inf, rhs)
            bld.add([row], [d0 + q], [-1.0])
        for blk, sign in [(b, 1.0)] + ([(req.ref_block, -1.0)] if relative else []):
            sel = np.flatnonzero((xarea == req.area) & (xb == blk))
            if len(sel):
                bld.add(np.full(len(sel), row), xcol[sel], sign * fa.mw_per_gpu[xs[sel]])
            if Q:
                sel = np.flatnonzero(fa.site_area[spairs[:, 1]] == req.area)
                if len(sel):
                    bld.add(np.full(len(sel), row), ycol[sel, blk], sign * fa.mw_per_gpu[spairs[sel, 1]])

    rows = np.concatenate(bld.rows)
    cols = np.concatenate(bld.cols)
    vals = np.concatenate(bld.vals)
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    start = np.zeros(ncol + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=ncol), out=start[1:])
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = ncol, bld.n_rows
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lb, ub
    lp.row_lower_ = np.concatenate(bld.lo)
    lp.row_upper_ = np.concatenate(bld.up)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start.astype(np.int32)
    lp.a_matrix_.index_ = rows.astype(np.int32)
    lp.a_matrix_.value_ = vals
    del rows, cols, vals, order
    hs = _quiet_highs(highspy)
    hs.setOptionValue("time_limit", float(time_limit_s))
    hs.setOptionValue("solver", solver)
    hs.passModel(lp)
    build_s = _time.perf_counter() - t_build
    solve_s, _ = run_highs(hs, highspy)
    status = hs.modelStatusToString(hs.getModelStatus())
    n_rows = bld.n_rows
    if hs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        nan = np.full((S, B), np.nan)
        return ExactResult(status, float("nan"), build_s, solve_s, ncol, n_rows, J, I, nan,
                           np.full((A, B), np.nan), float("nan"), np.full(len(dr), np.nan))
    sol = np.asarray(hs.getSolution().col_value)
    site_gpus = np.zeros((S, B))
    np.add.at(site_gpus, (xs, xb), sol[x0:m0])
    if Q:
        np.add.at(site_gpus, spairs[:, 1], sol[y0:u0].reshape(Q, B))
    base_const = float(((base_area[:, None] * h[None, :]) * grid_cost).sum())
    objective = float(hs.getInfo().objective_function_value) + base_const
    dr_short = np.zeros(len(dr))
    for q, (k, _) in enumerate(dr_rows):
        dr_short[k] = max(dr_short[k], sol[d0 + q])
    return ExactResult(status, objective, build_s, solve_s, ncol, n_rows, J, I, site_gpus,
                       sol[e0:d0].reshape(A, B), float(sol[s0:y0].sum()), dr_short)


def solve_exact_like(problem: PlanningProblem, fa: FleetArrays, views: Sequence[JobView],
                     services: Sequence[Job], *, now: pd.Timestamp, spatial: bool = True,
                     temporal: bool = True, reroute: bool = True, pacing_pu: float = 1.0,
                     move_time_s: Callable[[float, str, str], float] | None = None,
                     rtt_s: Callable[[str, str], float] | None = None,
                     home_index: Callable[[Job], int] | None = None,
                     time_limit_s: float = 600.0, solver: str = "choose") -> ExactResult:
    """The job-level LP on the blocks, grid, site capacities, demand response and weights of a
    class problem ``problem`` (for instance the one ``Controller.build_problem`` returns), with
    the jobs that problem's classes were built from."""
    return solve_exact(
        fa, views, services, problem.blocks, problem.price_jpy_per_mwh, problem.curtailment_mw,
        problem.carbon_marginal_g_per_kwh, weights_of(problem), now=now, cap_gpus=problem.cap_gpus,
        spatial=spatial, temporal=temporal, reroute=reroute, pacing_pu=pacing_pu,
        move_time_s=move_time_s, rtt_s=rtt_s, home_index=home_index, dr=problem.dr,
        time_limit_s=time_limit_s, solver=solver,
        restart_costs=problem.work.restart_h is not None and problem.work.running_gpus is not None)
