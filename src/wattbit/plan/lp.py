"""The Workload-Shift linear program, built as sparse arrays and solved with HiGHS.

Variables (all >= 0)::

    x[c, s, b]  GPUs of work class c busy at site s in block b (full-speed equivalents) [GPU]
    m[c, s]     GPUs of class c moved from its origin to site s                          [GPU]
    y[k, s, b]  GPUs serving online-inference class k from site s in block b             [GPU]
    u[k, b]     inference demand left unserved                                           [GPU]
    short[r]    work missing at a due row r (deadline or pacing point)                   [GPU-h]
    e[a, b]     curtailment absorbed in area a (<= curtailment_mw)                       [MW]
    d[q]        demand-response shortfall at DR row q                                    [MW]
    w[c, b]     work of class c done by the end of block b, net of move losses           [GPU-h]
                (bounded above by what is released and what is left)
    r[c, b]     GPUs of class c started in block b (with restart costs)                  [GPU]

Rows::

    Σ_s x[c,s,b]                       <= cap_gpus[c,b]          concurrency of the class
    w[c,b] - w[c,b-1] - Σ_s h_b x[c,s,b] (+ Σ_s move_h m at b=0) == 0   running total
    w[c,b] + short                     >= due_gpu_h[c,b]         deadlines and pacing
    Σ_c x[.,s,b] + Σ_k y[.,s,b]         <= cap_gpus[s,b]          site GPUs and IT power cap
    x[c,s,b] - m[c,s]                   <= 0                      work away from origin was moved
    Σ_s y[k,s,b] + u[k,b]               == demand_gpus[k,b]       serve inference
    e[a,b] - Σ_{s in a} mw_per_gpu (Σx + Σy) <= Σ_{s in a} base_mw   absorbed <= fleet load
    load[a,b] ± d                       >=/<= DR target           demand response
    Σ_s x[c,s,b] - Σ_s x[c,s,b-1] - r[c,b] <= 0 (b=0: <= running_gpus[c])   starts

Objective [JPY]: energy at area prices + carbon price × marginal emissions of grid-served energy
− value of curtailment absorbed + penalties (deadline, unserved inference, DR shortfall, moves)
+ the GPU time lost to starts (checkpoint restores and start leads, valued per GPU-hour).
Columns are grouped class-major, the order that lets HiGHS's simplex run fastest on this
structure.
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass

import numpy as np

from wattbit.errors import SolverError
from wattbit.plan.problem import PlanningProblem

__all__ = ["PlanResult", "solve"]


@dataclass(frozen=True, eq=False)
class PlanResult:
    """The planner's answer.

    x_gpus[c, s, b], m_gpus[c, s], y_gpus[k, s, b], unserved_gpus[k, b], short_gpu_h[c],
    absorbed_mw[a, b], load_mw[a, b] (fleet facility load), dr_short_mw[r] (max over its blocks);
    status : HiGHS model status;  objective_jpy : optimum;  bound_jpy : the LP's dual bound
    (equal at optimality). The class LP relaxes the job-level problem, so this bounds any
    job-level plan from below when no deadline is missed; a shortfall that persists is charged at
    each later due row of its class, so where deadlines are missed it can exceed the job-level
    optimum and is no bound;
    terms_jpy : the objective's parts;  solve_s : wall time of HiGHS [s].
    """

    x_gpus: np.ndarray
    m_gpus: np.ndarray
    y_gpus: np.ndarray
    unserved_gpus: np.ndarray
    short_gpu_h: np.ndarray
    absorbed_mw: np.ndarray
    load_mw: np.ndarray
    dr_short_mw: np.ndarray
    status: str
    objective_jpy: float
    bound_jpy: float
    terms_jpy: dict
    solve_s: float
    n_cols: int
    n_rows: int


class _Builder:
    """Accumulates COO triplets and row bounds."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.up: list[np.ndarray] = []
        self.n_rows = 0

    def add_rows(self, n: int, lo, up) -> int:
        first = self.n_rows
        self.lo.append(_flat(np.asarray(lo, dtype=float), (n,)).copy())
        self.up.append(_flat(np.asarray(up, dtype=float), (n,)).copy())
        self.n_rows += n
        return first

    def add(self, rows, cols, vals) -> None:
        rows, cols, vals = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=float)
        shape = np.broadcast(rows, cols, vals).shape
        self.rows.append(_flat(rows, shape))
        self.cols.append(_flat(cols, shape))
        self.vals.append(_flat(vals, shape))


def _flat(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` broadcast to ``shape``, flattened (np.broadcast_arrays' work without its Python
    layer, which took longer than the rest of a plan's triplets: a plan adds some forty)."""
    return (a if a.shape == shape else np.broadcast_to(a, shape)).ravel()


def _quiet_highs(highspy):
    """A silent Highs instance (its constructor prints a banner to the C-level stdout)."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            hs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    hs.silent()
    return hs


_PLAN_HIGHS = threading.local()


def _plan_highs(highspy):
    """This thread's HiGHS instance for plans: made once per thread instead of once per plan
    (making one takes 0.2 ms; in all, 1 to 6 % of HiGHS's time), with the same plans to the last
    digit (docs/benchmarks.md, "The LP's floor"). The caller sets every option a plan needs, and
    clears the model it passed when it is done, however it ends."""
    hs = getattr(_PLAN_HIGHS, "instance", None)
    if hs is None:
        hs = _PLAN_HIGHS.instance = _quiet_highs(highspy)
    return hs


RETRIES: tuple[dict[str, str], ...] = ({"presolve": "on"}, {"solver": "ipm", "presolve": "on"})
"""What :func:`run_highs` tries, in order, when HiGHS ends neither optimal nor out of time.

HiGHS's simplex can stop with status 'Unknown' when its last basis leaves a residual just over
the feasibility tolerance (1e-7): a plan of the FY2022 twin ended so with one row 1.06e-7
infeasible (tests/plan/data/unknown_status.mps.gz). Presolve changes the basis path, and the
interior-point method does not depend on it; either solved that model to the same optimum."""


def run_highs(hs, highspy) -> tuple[float, int]:
    """Run ``hs`` (a model passed, options set) to optimality, retrying with :data:`RETRIES` if
    it ends for numerical reasons. Returns (wall time of every attempt [s], attempts made).
    The caller checks the final status: still not optimal means out of time or a bad model."""
    fine = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit)
    t0 = _time.perf_counter()
    hs.run()
    attempts = 1
    for options in RETRIES:
        if hs.getModelStatus() in fine:
            break
        hs.clearSolver()
        for name, value in options.items():
            hs.setOptionValue(name, value)
        hs.run()
        attempts += 1
    return _time.perf_counter() - t0, attempts


def solve(p: PlanningProblem, *, time_limit_s: float = 60.0, solver: str = "choose",
          presolve: bool = False) -> PlanResult:
    """Build the LP of ``p`` and solve it with HiGHS.

    ``presolve`` is off by default: the class LP is small (about a thousand columns per plan),
    and HiGHS's presolve costs more there than it saves (benchmarks/README.md, ``bench_plan``).

    Raises SolverError if HiGHS ends without an optimal solution (the model is always feasible:
    every hard requirement has a penalised slack, so infeasibility means corrupt input).
    """
    import highspy

    B = p.blocks.n
    h = np.asarray(p.blocks.duration_h, dtype=float)
    S, A = p.n_sites, p.n_areas
    W, K = p.work, p.service
    C = W.n
    inf = highspy.kHighsInf

    # ---- columns -------------------------------------------------------------------------
    pairs = np.argwhere(W.allowed) if C else np.zeros((0, 2), dtype=int)  # (c, s), class-major
    P = len(pairs)
    x0 = 0
    nx = P * B
    moves = []
    if p.allow_moves and C:
        has_origin = W.origin[pairs[:, 0]] >= 0
        away = has_origin & (pairs[:, 1] != W.origin[pairs[:, 0]])
        moves = np.flatnonzero(away)
    moves = np.asarray(moves, dtype=int)
    m0 = x0 + nx
    nm = len(moves)
    spairs = np.argwhere(K.allowed) if K.n else np.zeros((0, 2), dtype=int)
    Q = len(spairs)
    y0 = m0 + nm
    ny = Q * B
    u0 = y0 + ny
    nu = K.n * B
    # due rows: blocks where the cumulative due grows, plus the last block if anything is due
    due = W.due_gpu_h if C else np.zeros((0, B))
    grow = np.zeros_like(due, dtype=bool)
    if C:
        grow[:, 0] = due[:, 0] > 1e-9
        grow[:, 1:] = np.diff(due, axis=1) > 1e-9
    due_rc = np.argwhere(grow)  # (c, b)
    nshort = len(due_rc)
    s0 = u0 + nu
    e0 = s0 + nshort
    ne = A * B
    dr_rows = [(i, b) for i, r in enumerate(p.dr) for b in np.flatnonzero(r.blocks)]
    d0 = e0 + ne
    nd = len(dr_rows)
    w0 = d0 + nd
    nw = C * B
    restart = C and W.restart_h is not None and W.running_gpus is not None
    r0 = w0 + nw
    nr = C * B if restart else 0
    ncol = r0 + nr

    cost = np.zeros(ncol)
    lb = np.zeros(ncol)
    ub = np.full(ncol, inf)

    site_of_pair = pairs[:, 1]
    area_of_pair = p.site_area[site_of_pair]
    cp = p.carbon_price_jpy_per_t / 1000.0  # JPY per (g/kWh × MWh) = JPY per kg
    grid_cost = p.price_jpy_per_mwh + cp * p.carbon_marginal_g_per_kwh  # (a, b) JPY/MWh
    if P:
        cx = h[None, :] * p.mw_per_gpu[site_of_pair][:, None] * grid_cost[area_of_pair, :]
        cost[x0:x0 + nx] = cx.ravel()
        ub[x0:x0 + nx] = np.minimum(W.cap_gpus[pairs[:, 0], :], p.cap_gpus[site_of_pair, :]).ravel()
    if nm:
        mc, ms = pairs[moves, 0], pairs[moves, 1]
        cost[m0:m0 + nm] = (W.checkpoint_gb_per_gpu[mc] * p.move_penalty_jpy_per_gb
                            + W.move_h[mc, ms] * p.gpu_hour_value_jpy + 1e-3)
    if Q:
        ssite = spairs[:, 1]
        cost[y0:y0 + ny] = (h[None, :] * p.mw_per_gpu[ssite][:, None]
                            * grid_cost[p.site_area[ssite], :]).ravel()
        ub[y0:y0 + ny] = p.cap_gpus[ssite, :].ravel()
    if nu:
        cost[u0:u0 + nu] = (p.unserved_penalty_jpy_per_gpu_h * h[None, :]).repeat(K.n, 0).ravel()
    if nshort:
        cost[s0:s0 + nshort] = p.deadline_penalty_jpy_per_gpu_h
    cost[e0:e0 + ne] = (-h[None, :] * (cp * p.carbon_marginal_g_per_kwh
                                        + p.curtailment_value_jpy_per_mwh)).ravel()
    ub[e0:e0 + ne] = p.curtailment_mw.ravel()
    if nd:
        cost[d0:d0 + nd] = [p.dr_penalty_jpy_per_mwh * h[b] for _, b in dr_rows]
    if nw:
        # cumulative work may not exceed what has been released (the oracle) or what is left
        upper = W.upper_gpu_h if W.upper_gpu_h is not None else np.repeat(
            W.remaining_gpu_h[:, None], B, 1)
        lb[w0:w0 + nw] = -inf
        ub[w0:w0 + nw] = np.minimum(upper, W.remaining_gpu_h[:, None]).ravel()
    if nr:
        cost[r0:r0 + nr] = np.repeat(W.restart_h * p.gpu_hour_value_jpy, B)

    # ---- rows ----------------------------------------------------------------------------
    bld = _Builder()
    bidx = np.arange(B)
    xcol = (x0 + np.arange(P)[:, None] * B + bidx[None, :])  # (P, B)
    pair_class = pairs[:, 0]

    if C:
        # concurrency per class and block
        r = bld.add_rows(C * B, -inf, W.cap_gpus.ravel())
        bld.add(r + pair_class[:, None] * B + bidx[None, :], xcol, 1.0)
        # running total of work: w[c,b] - w[c,b-1] - Σ_s h x[c,s,b] (+ move loss at b=0) == 0
        wcol = w0 + np.arange(C)[:, None] * B + bidx[None, :]  # (C, B)
        r = bld.add_rows(C * B, 0.0, 0.0)
        rows_cb = r + np.arange(C)[:, None] * B + bidx[None, :]
        bld.add(rows_cb, wcol, 1.0)
        bld.add(rows_cb[:, 1:], wcol[:, :-1], -1.0)
        bld.add(rows_cb[pair_class], xcol, -h[None, :])
        if nm:
            mc, ms = pairs[moves, 0], pairs[moves, 1]
            bld.add(rows_cb[mc, 0], m0 + np.arange(nm), W.move_h[mc, ms])
            # work away from the origin needs moved GPUs
            r = bld.add_rows(nm * B, -inf, 0.0)
            rows = r + np.arange(nm)[:, None] * B + bidx[None, :]
            bld.add(rows, xcol[moves], 1.0)
            bld.add(rows, (m0 + np.arange(nm))[:, None].repeat(B, 1), -1.0)
        if nr:
            # starts: Σ_s x[c,s,b] - Σ_s x[c,s,b-1] - r[c,b] <= 0, and <= running_gpus at b = 0
            rhs = np.zeros((C, B))
            rhs[:, 0] = W.running_gpus
            r = bld.add_rows(C * B, -inf, rhs.ravel())
            rows_start = r + np.arange(C)[:, None] * B + bidx[None, :]
            bld.add(rows_start[pair_class], xcol, 1.0)
            bld.add(rows_start[pair_class][:, 1:], xcol[:, :-1], -1.0)
            bld.add(rows_start, r0 + np.arange(C * B).reshape(C, B), -1.0)
        # due rows: w[c,b] + short >= due[c,b]
        if nshort:
            r = bld.add_rows(nshort, W.due_gpu_h[due_rc[:, 0], due_rc[:, 1]], inf)
            bld.add(r + np.arange(nshort), wcol[due_rc[:, 0], due_rc[:, 1]], 1.0)
            bld.add(r + np.arange(nshort), s0 + np.arange(nshort), 1.0)

    # site capacity
    r = bld.add_rows(S * B, -inf, p.cap_gpus.ravel())
    if P:
        bld.add(r + site_of_pair[:, None] * B + bidx[None, :], xcol, 1.0)
    ycol = y0 + np.arange(Q)[:, None] * B + bidx[None, :]
    if Q:
        bld.add(r + spairs[:, 1][:, None] * B + bidx[None, :], ycol, 1.0)
        # inference demand
        r = bld.add_rows(K.n * B, K.demand_gpus.ravel(), K.demand_gpus.ravel())
        bld.add(r + spairs[:, 0][:, None] * B + bidx[None, :], ycol, 1.0)
        bld.add(r + np.arange(K.n * B), u0 + np.arange(K.n * B), 1.0)
    elif K.n:
        r = bld.add_rows(K.n * B, K.demand_gpus.ravel(), K.demand_gpus.ravel())
        bld.add(r + np.arange(K.n * B), u0 + np.arange(K.n * B), 1.0)

    # absorbed curtailment <= fleet load in the area
    base_area = np.bincount(p.site_area, weights=p.base_mw, minlength=A)
    r_abs = bld.add_rows(A * B, -inf, np.repeat(base_area, B))
    bld.add(r_abs + np.arange(A * B), e0 + np.arange(A * B), 1.0)
    if P:
        bld.add(r_abs + area_of_pair[:, None] * B + bidx[None, :], xcol,
                -p.mw_per_gpu[site_of_pair][:, None].repeat(B, 1))
    if Q:
        ssite = spairs[:, 1]
        bld.add(r_abs + p.site_area[ssite][:, None] * B + bidx[None, :], ycol,
                -p.mw_per_gpu[ssite][:, None].repeat(B, 1))

    # demand response
    for qi, (ri, b) in enumerate(dr_rows):
        dr = p.dr[ri]
        relative = dr.ref_block >= 0
        rhs = dr.direction * dr.target_mw if relative else dr.target_mw - base_area[dr.area]
        if dr.direction > 0:
            row = bld.add_rows(1, rhs, inf)
            bld.add([row], [d0 + qi], [1.0])
        else:
            row = bld.add_rows(1, -inf, rhs)
            bld.add([row], [d0 + qi], [-1.0])
        terms = [(b, 1.0)] + ([(dr.ref_block, -1.0)] if relative else [])
        for blk, sign in terms:
            sel = np.flatnonzero(area_of_pair == dr.area)
            if len(sel):
                bld.add(np.full(len(sel), row), xcol[sel, blk], sign * p.mw_per_gpu[site_of_pair[sel]])
            if Q:
                sel = np.flatnonzero(p.site_area[spairs[:, 1]] == dr.area)
                if len(sel):
                    bld.add(np.full(len(sel), row), ycol[sel, blk], sign * p.mw_per_gpu[spairs[sel, 1]])

    # ---- solve ---------------------------------------------------------------------------
    rows = np.concatenate(bld.rows) if bld.rows else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(bld.cols) if bld.cols else np.zeros(0, dtype=np.int64)
    vals = np.concatenate(bld.vals) if bld.vals else np.zeros(0)
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    start = np.zeros(ncol + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=ncol), out=start[1:])

    hs = _plan_highs(highspy)
    try:  # (the instance outlives the plan: it keeps no model, large or small, in between)
        # HiGHS's time limit counts every run of an instance: this plan's runs may take time_limit_s
        # more than the instance's runs before it
        hs.setOptionValue("time_limit", float(time_limit_s) + hs.getRunTime())
        hs.setOptionValue("solver", solver)
        hs.setOptionValue("presolve", "on" if presolve else "off")
        # the arrays straight to HiGHS (filling a HighsLp's fields copies each one more time)
        hs.passModel(ncol, bld.n_rows, len(vals), int(highspy.MatrixFormat.kColwise), int(highspy.ObjSense.kMinimize),
                     0.0, cost, lb, ub, np.concatenate(bld.lo) if bld.lo else np.zeros(0),
                     np.concatenate(bld.up) if bld.up else np.zeros(0), start.astype(np.int32),
                     rows.astype(np.int32), vals, np.zeros(ncol, dtype=np.int32))  # (all continuous)
        solve_s, attempts = run_highs(hs, highspy)
        status = hs.modelStatusToString(hs.getModelStatus())
        if hs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise SolverError(
                f"HiGHS ended with status {status!r} after {solve_s:.1f} s and {attempts} attempts on "
                f"a model of {ncol} columns and {bld.n_rows} rows (time limit {time_limit_s} s); "
                "raise the time limit or shorten the horizon"
            )
        sol = np.array(hs.getSolution().col_value)
        objective = float(hs.getInfo().objective_function_value)
    finally:
        hs.clearModel()

    # ---- extract -------------------------------------------------------------------------
    x = np.zeros((C, S, B))
    if P:
        x[pairs[:, 0], pairs[:, 1], :] = sol[x0:x0 + nx].reshape(P, B)
    m = np.zeros((C, S))
    if nm:
        m[pairs[moves, 0], pairs[moves, 1]] = sol[m0:m0 + nm]
    y = np.zeros((K.n, S, B))
    if Q:
        y[spairs[:, 0], spairs[:, 1], :] = sol[y0:y0 + ny].reshape(Q, B)
    unserved = sol[u0:u0 + nu].reshape(K.n, B) if nu else np.zeros((K.n, B))
    short = np.zeros(C)
    if nshort:
        np.add.at(short, due_rc[:, 0], sol[s0:s0 + nshort])
    absorbed = sol[e0:e0 + ne].reshape(A, B)
    busy = x.sum(axis=0) + y.sum(axis=0)  # (s, b)
    site_mw = p.base_mw[:, None] + p.mw_per_gpu[:, None] * busy
    load = np.zeros((A, B))
    np.add.at(load, p.site_area, site_mw)
    dr_short = np.zeros(len(p.dr))
    for qi, (ri, _) in enumerate(dr_rows):
        dr_short[ri] = max(dr_short[ri], sol[d0 + qi])

    energy_mwh = load * h[None, :]
    grid_mwh = (load - absorbed) * h[None, :]
    terms = {
        "energy_jpy": float((energy_mwh * p.price_jpy_per_mwh).sum()),
        "carbon_jpy": float((grid_mwh * p.carbon_marginal_g_per_kwh).sum() * cp),
        "curtailment_value_jpy": -float((absorbed * h[None, :]).sum() * p.curtailment_value_jpy_per_mwh),
        "deadline_penalty_jpy": float(short.sum() * p.deadline_penalty_jpy_per_gpu_h),
        "unserved_penalty_jpy": float((unserved * h[None, :]).sum() * p.unserved_penalty_jpy_per_gpu_h),
        "dr_penalty_jpy": float(sum(sol[d0 + qi] * p.dr_penalty_jpy_per_mwh * h[b]
                                    for qi, (_, b) in enumerate(dr_rows))),
        "move_penalty_jpy": float(cost[m0:m0 + nm] @ sol[m0:m0 + nm]) if nm else 0.0,
        "restart_jpy": float(cost[r0:r0 + nr] @ sol[r0:r0 + nr]) if nr else 0.0,
    }
    # the constant (base load) part is outside the LP objective; add it so terms sum up
    base_const = float(((base_area[:, None] * h[None, :]) * grid_cost).sum())
    return PlanResult(
        x_gpus=x, m_gpus=m, y_gpus=y, unserved_gpus=unserved, short_gpu_h=short,
        absorbed_mw=absorbed, load_mw=load, dr_short_mw=dr_short,
        status=status, objective_jpy=objective + base_const,
        bound_jpy=objective + base_const, terms_jpy=terms, solve_s=solve_s,
        n_cols=ncol, n_rows=bld.n_rows,
    )
