"""Controller reaction: a demand-response request → the decisions issued, on the default scenario.

    PYTHONPATH=src python benchmarks/bench_reaction.py [--runs 20] [--at "2023-03-13 12:00"]

The fleet state is the default scenario's (japan-9, trace-driven jobs) at ``--at`` (JST, the
middle of the fortnight by default), reached by running the twin up to then under the baseline
policy (first come, first served at home): the jobs that are running, waiting and done there are
the observed state. Then, ``--runs`` times, a fresh ``wls`` controller receives a real-time
上げDR for Kyushu (5 MW, starting now) with ``Controller.step(state, [request])``; the time of
that call is the time from the request to the decisions (actions) issued. The same step without
a request is timed beside it. This is the controller alone, in process; the control plane's
end-to-end figure over HTTP and Slurm is benchmarks/bench_controller_reaction.py.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, today, update_section


def state_at(at_jst: str):
    """(scenario, world, the fleet state at ``at_jst``) after running baseline up to then."""
    import dataclasses

    from wattbit.control.controller import Controller
    from wattbit.network import LightpathBook
    from wattbit.scenarios import load_scenario
    from wattbit.sim.run import build_world
    from wattbit.sim.twin import run_twin

    sc = load_scenario("default")
    world = build_world(sc)
    now = pd.Timestamp(at_jst, tz="Asia/Tokyo").tz_convert("UTC")
    n = int(world.truth.time.searchsorted(now))

    class Recording(Controller):
        """The baseline controller, keeping the last state it was shown."""

        last_state = None

        def step(self, state, events=()):
            self.last_state = state
            return super().step(state, events)

    ctrl = Recording(sc.fleet, world.apn, "baseline", sc.weights, None, step_s=sc.step_s,
                     horizon_slots=sc.horizon_slots, lightpaths=LightpathBook(world.apn))
    # one slot past ``now``: the state shown at ``now`` is the one after the slots before it
    run_twin(ctrl, world.jobs, world.truth.window(0, n + 1))
    state = ctrl.last_state
    assert state.now == now, (state.now, now)
    return sc, world, dataclasses.replace(state)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--at", default="2023-03-13 12:00", help="decision instant (JST)")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    from wattbit.control.controller import Controller
    from wattbit.control.state import JobStatus
    from wattbit.domain import DemandResponse
    from wattbit.grid import SeasonalPersistenceForecaster
    from wattbit.network import LightpathBook

    t = time.perf_counter()
    sc, world, state = state_at(args.at)
    setup_s = time.perf_counter() - t
    active = state.active()
    running = sum(st.status is JobStatus.RUNNING for st in active)
    print(f"machine: {machine()}")
    print(f"state at {args.at} JST: {len(active):,} active jobs ({running:,} running); "
          f"reached in {setup_s:.1f} s")

    def controller():
        return Controller(sc.fleet, world.apn, "wls", sc.weights,
                          SeasonalPersistenceForecaster(world.forecast_truth, world.history),
                          step_s=sc.step_s, horizon_slots=sc.horizon_slots,
                          lightpaths=LightpathBook(world.apn))

    with_dr, without, n_actions, committed = [], [], [], []
    for i in range(args.runs):
        req = DemandResponse(f"bench-up-{i}", "up", "kyushu", 5.0, state.now,
                             state.now + pd.Timedelta(hours=2), response_deadline_s=300.0)
        c = controller()
        t = time.perf_counter()
        d = c.step(state, [req])
        with_dr.append(time.perf_counter() - t)
        n_actions.append(len(d.actions))
        committed.append(d.dr_commitments.get(req.request_id, 0.0))
        c = controller()
        t = time.perf_counter()
        c.step(state, [])
        without.append(time.perf_counter() - t)

    # where the decision's time goes: the LP of this decision, solved by each HiGHS solver
    from wattbit.errors import SolverError
    from wattbit.plan.lp import solve

    c = controller()
    c.step(state, [DemandResponse("bench-up-lp", "up", "kyushu", 5.0, state.now,
                                  state.now + pd.Timedelta(hours=2))])
    t = time.perf_counter()
    problem, _, _ = c.build_problem(state)
    build_ms = (time.perf_counter() - t) * 1e3
    solver_rows = []
    reference = None
    for name in ("choose", "simplex", "ipm", "hipo"):
        times, obj = [], float("nan")
        try:
            for _ in range(5):
                t = time.perf_counter()
                res = solve(problem, solver=name)
                times.append(time.perf_counter() - t)
                obj = res.objective_jpy
                highs_ms = res.solve_s * 1e3
        except (SolverError, RuntimeError, ValueError) as exc:
            solver_rows.append([name, "failed", "-", "-", str(exc)[:60]])
            continue
        reference = obj if reference is None else reference
        solver_rows.append([name, f"{statistics.median(times) * 1e3:,.0f}", f"{highs_ms:,.0f}",
                            f"{obj / 1e6:,.4f}", f"{(obj - reference) / abs(reference) * 100:+.2e}"])
    print(f"the decision's LP: {res.n_cols:,} cols × {res.n_rows:,} rows, "
          f"{problem.work.n} work + {problem.service.n} service classes; built in {build_ms:,.0f} ms")
    solver_head = ["HiGHS solver", "lp.solve median ms", "HiGHS run ms", "objective M JPY", "vs choose"]
    print(" | ".join(solver_head))
    for r in solver_rows:
        print(" | ".join(r))

    def p95(v):
        return float(np.percentile(v, 95))

    rows = [["DR request → decisions issued", f"{statistics.median(with_dr) * 1e3:,.0f}",
             f"{p95(with_dr) * 1e3:,.0f}", f"{min(with_dr) * 1e3:,.0f}", f"{max(with_dr) * 1e3:,.0f}"],
            ["ordinary step (no request)", f"{statistics.median(without) * 1e3:,.0f}",
             f"{p95(without) * 1e3:,.0f}", f"{min(without) * 1e3:,.0f}", f"{max(without) * 1e3:,.0f}"]]
    head = ["what", "median ms", "p95 ms", "min ms", "max ms"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(r))
    print(f"actions per decision: {statistics.median(n_actions):.0f}; committed "
          f"{statistics.median(committed):.2f} of 5.00 MW")
    if not args.no_readme:
        cmd = "PYTHONPATH=src python benchmarks/bench_reaction.py " + shlex.join(sys.argv[1:])
        body = (f"### Controller reaction to a demand-response request ({today()})\n\n"
                f"Machine: {machine()}.  \nCommand: `{cmd.strip()}`  \n"
                f"Default scenario at {args.at} JST ({len(active):,} active jobs, {running:,} running, "
                f"after baseline up to then); a fresh wls controller, a real-time 上げDR of 5 MW in "
                f"Kyushu; {args.runs} runs. Actions per decision: {statistics.median(n_actions):.0f}; "
                f"committed {statistics.median(committed):.2f} of 5.00 MW.\n\n"
                + markdown_table(head, rows)
                + f"\n\nThe same decision's LP ({res.n_cols:,} columns × {res.n_rows:,} rows, "
                f"{problem.work.n} work and {problem.service.n} service classes, built in "
                f"{build_ms:,.0f} ms) by HiGHS solver (median of 5):\n\n"
                + markdown_table(solver_head, solver_rows))
        update_section("bench_reaction", body)


if __name__ == "__main__":
    main()
