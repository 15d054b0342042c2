"""Where the class LP's time goes: its transportation core against its move and start rows.

    PYTHONPATH=src python benchmarks/bench_lp_parts.py                       # 2 weeks of Oct 2022
    PYTHONPATH=src python benchmarks/bench_lp_parts.py --period 2023-01-09 2023-01-16
    PYTHONPATH=src python benchmarks/bench_lp_parts.py --fine-block-slots 1   # the 10-block LP

Runs the twin (``wls``) over ``--period`` of the full-year scenario (its horizon blocks, or with
``--fine-block-slots 1`` the four fine slots one by one: the 10-block LP that
docs/benchmarks.md, "The LP's floor", analyses), keeping every class LP its controller builds,
and solves each again with HiGHS four ways:

* **full**: the LP the controller solves (``wattbit.plan.lp``);
* **no starts**: without the start rows and their cost (``WorkClasses.restart_h = None``);
* **no moves**: without moves (``allow_moves = False``: no move columns, no "work away from the
  origin was moved" rows);
* **core**: neither, and no demand-response rows. What is left is a transportation problem:
  each class's released work flows through its blocks (its concurrency the arc capacity, its due
  curve a carry limit with the deadline penalty beyond it) to the (site, block) cells it may use,
  whose GPUs are the capacity, priced per GPU-hour, with the curtailment an area can absorb as a
  cheaper first tranche of each cell; online inference flows from its demand to the cells.

The core is also built as a **min-cost-flow network** (:func:`flow_network`, exact for fleets
with one site per area, as ``japan-9``: with several, the curtailment an area absorbs depends on
each site's MW per GPU and the core is a generalised flow). If OR-tools is importable, each
network is solved by its min-cost-flow solver and its optimum is checked against HiGHS's optimum
of the core LP. OR-tools pins an older protobuf than Ray, so it is not a wattbit dependency; run
this script from a separate environment to include it::

    python -m venv /tmp/flow && /tmp/flow/bin/pip install -e . ortools
    PYTHONPATH=src /tmp/flow/bin/python benchmarks/bench_lp_parts.py

Prints the time per plan of each, the rows, and how far below the full LP's optimum the core's
lies (what moves, starts and demand response add to the objective). Results go to
benchmarks/README.md (section ``bench_lp_parts``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from wattbit.errors import InvalidInput

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, today, update_section

FLOW_PER_GPU_H = 1000
"""Flow units per GPU-hour: OR-tools' min-cost flow takes integer capacities and supplies."""
COST_PER_JPY = 1000
"""Cost units per JPY (per GPU-hour): its costs are integers too."""
UNBOUNDED_GPU_H = 1e9
"""Capacity of the arcs without a limit (carry-over of work, unserved inference) [GPU-h]."""


def capture(period: tuple[str, str], fine_block_slots: int | None = None):
    """The class LPs the ``wls`` controller builds over ``period`` (JST) of the full-year scenario
    (with ``fine_block_slots`` instead of the scenario's, if given)."""
    from wattbit.scenarios import load_scenario, with_period
    from wattbit.sim.run import build_world, twin_controller
    from wattbit.sim.twin import run_twin

    sc = with_period(load_scenario("full-year"), *period)
    if fine_block_slots is not None:
        sc = dataclasses.replace(sc, fine_block_slots=fine_block_slots)
    world = build_world(sc)
    ctrl = twin_controller(sc, world, "wls")
    problems = []
    build = ctrl.build_problem

    def recording(state):
        out = build(state)
        problems.append(out[0])
        return out

    ctrl.build_problem = recording  # the controller's own step calls it for every plan
    run_twin(ctrl, world.jobs, world.truth, demand_response=sc.demand_response, outages=sc.outages)
    return problems


def variants(p):
    """The LP and its three reductions (see the module docstring)."""
    no_starts = dataclasses.replace(p.work, restart_h=None)
    return {
        "full": p,
        "no starts": dataclasses.replace(p, work=no_starts),
        "no moves": dataclasses.replace(p, allow_moves=False),
        "core": dataclasses.replace(p, work=no_starts, allow_moves=False, dr=()),
    }


def flow_network(p) -> dict:
    """The core of ``p`` (no starts, moves or DR) as a min-cost flow: integer arrays ``tails``,
    ``heads``, ``capacities``, ``costs`` (per unit), ``supplies`` (per node; the sink's negative),
    and ``constant_jpy``: the base load's energy and curtailment absorption, which the LP's
    objective holds and the flow does not. Units: :data:`FLOW_PER_GPU_H`, :data:`COST_PER_JPY`.

    Nodes: per class and block, the class's work not yet done (its released work enters at the
    block it is released in, and what is left carries to the next block: up to what is not yet
    due at no cost, beyond it at the deadline penalty); per class and block, the work done (at
    most its concurrency × the block's hours); per cell (site, block), the GPU-hours used (at
    most the site's GPUs × hours), then the cell's exit to the sink, first through an arc worth
    the curtailment it absorbs (the MW the area curtails beyond the base load), then at no value;
    per inference class and block, its demand (to the cells it may use, or unserved at the
    penalty). Arc costs are the LP's, per GPU-hour.
    """
    B, S, A = p.blocks.n, p.n_sites, p.n_areas
    if S != A or len(set(p.site_area.tolist())) != S:
        raise InvalidInput(f"flow_network: {S} sites in {A} areas; one site per area only (with more, "
                           "the curtailment an area absorbs makes the core a generalised flow)")
    h = np.asarray(p.blocks.duration_h, dtype=float)
    W, K, C = p.work, p.service, p.work.n
    cp = p.carbon_price_jpy_per_t / 1000.0
    grid = p.price_jpy_per_mwh + cp * p.carbon_marginal_g_per_kwh                 # (a, b) JPY/MWh
    absorbed_value = cp * p.carbon_marginal_g_per_kwh + p.curtailment_value_jpy_per_mwh
    area = p.site_area
    tails, heads, caps, costs = [], [], [], []

    def arcs(t, hd, cap_gpu_h, cost_jpy_per_gpu_h) -> None:
        t, hd, c, k = np.broadcast_arrays(t, hd, np.asarray(cap_gpu_h, float), np.asarray(cost_jpy_per_gpu_h, float))
        tails.append(t.ravel())
        heads.append(hd.ravel())
        caps.append(c.ravel())
        costs.append(k.ravel())

    b_ = np.arange(B)[None, :]
    s_ = np.arange(S)[:, None]
    sink, cell, cell_out = 0, 1, 1 + S * B
    n_nodes = 1 + 2 * S * B
    site_gpu_h = p.cap_gpus * h[None, :]
    arcs(cell + s_ * B + b_, cell_out + s_ * B + b_, site_gpu_h, 0.0)
    absorbable = np.maximum(0.0, p.curtailment_mw[area] - p.base_mw[:, None]) * h[None, :] / p.mw_per_gpu[:, None]
    arcs(cell_out + s_ * B + b_, sink, np.minimum(absorbable, site_gpu_h),
         -p.mw_per_gpu[:, None] * absorbed_value[area])
    arcs(cell_out + s_ * B + b_, sink, site_gpu_h, 0.0)
    supplies = [np.zeros(n_nodes)]
    if C:
        upper = W.upper_gpu_h if W.upper_gpu_h is not None else np.repeat(W.remaining_gpu_h[:, None], B, 1)
        released = np.maximum.accumulate(np.minimum(upper, W.remaining_gpu_h[:, None]), axis=1)
        left, done = n_nodes, n_nodes + C * B
        n_nodes += 2 * C * B
        c_ = np.arange(C)[:, None]
        supplies.append(np.diff(released, axis=1, prepend=0.0).ravel())   # enters at its block
        supplies.append(np.zeros(C * B))
        due = W.due_gpu_h
        grow = np.zeros_like(due, dtype=bool)
        grow[:, 0] = due[:, 0] > 1e-9
        grow[:, 1:] = np.diff(due, axis=1) > 1e-9
        nxt = np.where(b_ + 1 < B, left + c_ * B + b_ + 1, sink)
        here = left + c_ * B + b_
        free = np.where(grow, np.maximum(0.0, released - due), UNBOUNDED_GPU_H)
        arcs(here, nxt, free, 0.0)
        arcs(here[grow], nxt[grow], UNBOUNDED_GPU_H, p.deadline_penalty_jpy_per_gpu_h)
        arcs(here, done + c_ * B + b_, W.cap_gpus * h[None, :], 0.0)
        pc, ps = np.argwhere(W.allowed).T
        per_gpu_h = p.mw_per_gpu[ps][:, None] * grid[area[ps], :]
        arcs(done + pc[:, None] * B + b_, cell + ps[:, None] * B + b_,
             np.minimum(W.cap_gpus[pc, :], p.cap_gpus[ps, :]) * h[None, :], per_gpu_h)
    if K.n:
        demand = n_nodes
        n_nodes += K.n * B
        supplies.append((K.demand_gpus * h[None, :]).ravel())
        kk, ks = np.argwhere(K.allowed).T
        arcs(demand + kk[:, None] * B + b_, cell + ks[:, None] * B + b_, p.cap_gpus[ks, :] * h[None, :],
             p.mw_per_gpu[ks][:, None] * grid[area[ks], :])
        arcs(demand + np.arange(K.n)[:, None] * B + b_, sink, UNBOUNDED_GPU_H, p.unserved_penalty_jpy_per_gpu_h)
    supply = np.rint(np.concatenate(supplies) * FLOW_PER_GPU_H).astype(np.int64)
    supply[sink] = -supply.sum()
    base_area = np.bincount(area, weights=p.base_mw, minlength=A)
    constant = float((base_area[:, None] * h[None, :] * grid).sum()
                     - (np.minimum(p.curtailment_mw, base_area[:, None]) * h[None, :] * absorbed_value).sum())
    return {"tails": np.concatenate(tails).astype(np.int32), "heads": np.concatenate(heads).astype(np.int32),
            "capacities": np.rint(np.concatenate(caps) * FLOW_PER_GPU_H).astype(np.int64),
            "costs": np.rint(np.concatenate(costs) * COST_PER_JPY).astype(np.int64),
            "supplies": supply, "constant_jpy": constant}


def solve_flow(net: dict):
    """(optimum [JPY], solve time [s]) of ``net`` by OR-tools' min-cost flow, or None without it."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError:
        return None
    f = min_cost_flow.SimpleMinCostFlow()
    f.add_arcs_with_capacity_and_unit_cost(net["tails"], net["heads"], net["capacities"], net["costs"])
    f.set_nodes_supplies(np.arange(len(net["supplies"])), net["supplies"])
    t0 = time.perf_counter()
    status = f.solve()
    took = time.perf_counter() - t0
    if status != f.OPTIMAL:
        raise RuntimeError(f"min-cost flow ended with status {status}")
    return f.optimal_cost() / (FLOW_PER_GPU_H * COST_PER_JPY) + net["constant_jpy"], took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--period", nargs=2, metavar=("START", "END"), default=("2022-10-01", "2022-10-15"),
                    help="period of the full-year scenario (JST) whose plans are measured")
    ap.add_argument("--fine-block-slots", type=int, metavar="N",
                    help="slots per fine horizon block (default: the scenario's; 1: the 10-block LP)")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    from wattbit.plan.lp import solve

    t0 = time.perf_counter()
    problems = [p for p in capture(tuple(args.period), args.fine_block_slots) if p.work.n]
    print(f"{len(problems)} plans with work captured in {time.perf_counter() - t0:.0f} s")
    names = list(variants(problems[0]))
    took = {n: [] for n in names}
    rows = {n: [] for n in names}
    obj = {n: [] for n in names}
    for p in problems:
        for name, q in variants(p).items():
            r = solve(q)
            took[name].append(r.solve_s)
            rows[name].append(r.n_rows)
            obj[name].append(r.objective_jpy)
    flow_s, flow_err, build_s, size = [], [], [], []
    for p, core_obj in zip(problems, obj["core"]):
        t = time.perf_counter()
        net = flow_network(variants(p)["core"])
        build_s.append(time.perf_counter() - t)
        size.append((len(net["supplies"]), len(net["tails"])))
        out = solve_flow(net)
        if out is not None:
            flow_s.append(out[1])
            flow_err.append(abs(out[0] - core_obj) / max(1.0, abs(core_obj)))

    full = np.asarray(obj["full"])
    table = []
    for name in names:
        below = (full - np.asarray(obj[name])) / np.abs(full)
        table.append([f"HiGHS, {name} LP", f"{np.median(rows[name]):,.0f}", f"{np.mean(took[name]) * 1e3:.1f}",
                      f"{np.percentile(took[name], 95) * 1e3:.1f}",
                      "—" if name == "full" else f"{np.median(below):.2%} ({np.percentile(below, 95):.2%})"])
    if flow_s:
        nodes, n_arcs = np.median(size, axis=0)
        table.append(["OR-tools min-cost flow, core network", f"{nodes:,.0f} nodes, {n_arcs:,.0f} arcs",
                      f"{np.mean(flow_s) * 1e3:.1f}", f"{np.percentile(flow_s, 95) * 1e3:.1f}",
                      f"= core LP (max rel. diff {max(flow_err):.0e})"])
    header = ["solver, problem", "rows (median)", "ms per plan (mean)", "ms p95",
              "optimum below the full LP's: median (p95)"]
    text = markdown_table(header, table)
    print(text)
    print(f"building the flow networks: {np.mean(build_s) * 1e3:.2f} ms per plan"
          + ("" if flow_s else "; OR-tools not installed: no flow solve"))
    from importlib.metadata import PackageNotFoundError, version

    def _version(package: str) -> str:
        try:
            return f"{package} {version(package)}"
        except PackageNotFoundError:
            return f"no {package}"

    solvers = f"{_version('highspy')}, {_version('ortools')}"
    print(solvers)
    if not args.no_readme:
        cmd = "PYTHONPATH=src python benchmarks/bench_lp_parts.py" + (
            "" if tuple(args.period) == ap.get_default("period") else " --period " + shlex.join(args.period)) + (
            "" if args.fine_block_slots is None else f" --fine-block-slots {args.fine_block_slots}")
        body = (f"### Class LP by parts: wls plans of full-year {args.period[0]} .. {args.period[1]} JST "
                f"({today()})\n\n`{cmd}` ({len(problems)} plans) on {machine()}; {solvers}\n\n{text}\n")
        update_section("bench_lp_parts", body)


if __name__ == "__main__":
    main()
