"""The planner at national scale: 1k, 10k and 100k jobs on 20 sites over a 96-slot horizon.

    PYTHONPATH=src python benchmarks/bench_plan.py                     # 1k, 10k, 100k; exact up to 10k
    PYTHONPATH=src python benchmarks/bench_plan.py --jobs 1000 --exact-up-to 1000 --no-readme

Each instance runs in its own process (so peak memory is its own) and prints one line; the
table goes to benchmarks/README.md (section ``bench_plan``) with the machine.

Instance (docs in benchmarks/README.md, "Plan instances"):

* **Fleet**: 20 sites in the nine interconnected areas, 2 × japan-9's GPUs (254,208 H200s): two sites
  per area and a third in Tokyo and Kansai (the largest demand areas). Okinawa is left out: the
  bundled grid data have no Okinawa signals (isolated, no JEPX price) and no railway fiber
  reaches it, so it can neither be priced nor joined to the APN.
* **Grid**: the recorded signals (bundled FY2022 data) for the 48 h from 2023-03-18 00:00 JST,
  which hold Kyushu's largest curtailment day of FY2022; the planner sees them perfectly
  (``PerfectForesight``) so that forecast error does not blur the comparison.
* **Jobs**: N deferrable jobs released uniformly over the 48 h, all pending at the decision
  instant; shapes from the synthetic workload source (GPU counts 1/2/4/8 units with the openb
  probabilities, Pareto run times, the kinds' GPU-hour shares and deadline slack rules of
  :mod:`wattbit.workload`), the size unit set so that the offered load is 60 % of the fleet for
  every N (more jobs = smaller jobs, same load); 20 % are resident in their home area. Online
  inference: the services :func:`wattbit.workload.build_jobs` makes for the fleet and window.
* **Class LP**: built exactly as the controller does (``Controller.build_problem`` on a
  ``FleetState``), then :func:`wattbit.plan.lp.solve`. Blocks: the controller's telescoping
  blocks (``fine_slots=4``: 13 blocks for 96 slots) or, with ``--blocks single``, 96 single slots.
* **Exact LP**: :func:`wattbit.plan.exact.solve_exact_like` on the same inputs; the gap is
  (exact − class) / exact.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, peak_rss_mb, today, update_section

T0_JST = "2023-03-18 00:00"
HORIZON_SLOTS = 96
STEP_S = 1800.0
GPU_PER_KW = 16384 / 22.0 / 1000.0  # japan-9's kyushu-dc: 16,384 GPUs under a 22 MW IT cap

# (name, area, lat, lon, share of the area's GPUs); area GPU totals are 2 × japan-9's
SITES = (
    ("hokkaido-sapporo", "hokkaido", 43.0687, 141.3508, 0.6),
    ("hokkaido-ishikari", "hokkaido", 43.1710, 141.3160, 0.4),
    ("tohoku-sendai", "tohoku", 38.2601, 140.8824, 0.6),
    ("tohoku-morioka", "tohoku", 39.7016, 141.1365, 0.4),
    ("tokyo-marunouchi", "tokyo", 35.6812, 139.7671, 0.4),
    ("tokyo-inzai", "tokyo", 35.8327, 140.1456, 0.3),
    ("tokyo-saitama", "tokyo", 35.8936, 139.6317, 0.3),
    ("chubu-nagoya", "chubu", 35.1709, 136.8815, 0.6),
    ("chubu-shizuoka", "chubu", 34.9717, 138.3890, 0.4),
    ("hokuriku-kanazawa", "hokuriku", 36.5781, 136.6480, 0.6),
    ("hokuriku-toyama", "hokuriku", 36.7013, 137.2133, 0.4),
    ("kansai-shinosaka", "kansai", 34.7334, 135.5001, 0.4),
    ("kansai-kyoto", "kansai", 34.9858, 135.7588, 0.3),
    ("kansai-kobe", "kansai", 34.7066, 135.1953, 0.3),
    ("chugoku-hiroshima", "chugoku", 34.3978, 132.4753, 0.6),
    ("chugoku-okayama", "chugoku", 34.6661, 133.9177, 0.4),
    ("shikoku-takamatsu", "shikoku", 34.3505, 134.0467, 0.6),
    ("shikoku-matsuyama", "shikoku", 33.8392, 132.7510, 0.4),
    ("kyushu-hakata", "kyushu", 33.5897, 130.4207, 0.6),
    ("kyushu-kumamoto", "kyushu", 32.7898, 130.6887, 0.4),
)


def national_fleet():
    """20 sites, two per interconnected area (three in Tokyo and Kansai), 2 × japan-9's GPUs."""
    from wattbit.domain import Fleet, Site
    from wattbit.scenarios import load_fleet

    j9 = {s.area: s for s in load_fleet("japan-9").sites}
    sites = []
    for name, area, lat, lon, share in SITES:
        ref = j9[area]
        gpus = round(2 * ref.gpu_count * share / 256) * 256
        it_mw = round(ref.it_power_max_mw * gpus / ref.gpu_count, 2)
        sites.append(Site(name, area, lat, lon, gpu_count=gpus, it_power_max_mw=it_mw, pue=ref.pue))
    return Fleet("national-20", tuple(sites))


def national_jobs(fleet, n_jobs: int, t0: pd.Timestamp, horizon_h: float, seed: int = 0,
                  utilisation_pu: float = 0.6, inference_share_pu: float = 0.2,
                  residency_share_pu: float = 0.2):
    """``n_jobs`` deferrable jobs released over ``[t0, t0 + horizon_h)`` with the synthetic
    source's shapes, sized so the offered load is ``utilisation_pu`` of the fleet, plus the
    online-inference services build_jobs makes for the fleet and window."""
    from wattbit.domain import INTERCONNECTED_AREAS, Job, JobKind, WorkloadSpec
    from wattbit.workload import (
        KIND_SHARE_PU,
        MAX_RUNTIME_H,
        MIN_RUNTIME_H,
        PRIORITY,
        SLACK_RULE,
        TENANT_WEIGHTS,
        TENANTS,
        SyntheticParams,
        build_jobs,
        checkpoint_gb,
    )

    rng = np.random.default_rng(seed)
    params = SyntheticParams()
    sizes = np.array([1, 2, 4, 8])
    mean_size = float(np.dot(sizes, params.size_probs))
    kinds = list(KIND_SHARE_PU)
    mean_work = np.array([mean_size * params.mean_runtime_h(k) for k in kinds])
    weight = np.array([KIND_SHARE_PU[k] for k in kinds]) / mean_work
    counts = np.floor(n_jobs * weight / weight.sum()).astype(int)
    counts[0] += n_jobs - counts.sum()
    offered_gpu_h = utilisation_pu * (1 - inference_share_pu) * fleet.gpu_count * horizon_h
    unit = offered_gpu_h / float((counts * mean_work).sum())
    site_gpus = np.array([s.gpu_count for s in fleet.sites], dtype=float)
    everywhere = frozenset(INTERCONNECTED_AREAS)
    prefix = {JobKind.TRAINING: "trn", JobKind.FINE_TUNING: "ft", JobKind.BATCH_INFERENCE: "bi"}
    jobs = []
    for kind, n in zip(kinds, counts):
        size = rng.choice(sizes, size=n, p=np.array(params.size_probs))
        runtime = np.minimum(MIN_RUNTIME_H * (1.0 - rng.random(n)) ** (-1.0 / params.alpha(kind)),
                             MAX_RUNTIME_H).round(4)
        gpus = np.maximum(8, 8 * np.round(size * unit / 8)).astype(int)
        gpus = np.minimum(gpus, int(site_gpus.max()) // 8 * 8)
        release_s = np.floor(rng.uniform(0, horizon_h * 3600.0, n))
        low, high, minimum = SLACK_RULE[kind]
        slack = np.maximum(rng.uniform(low, high, n) * runtime, minimum)
        tenant = rng.choice(len(TENANTS), size=n, p=np.array(TENANT_WEIGHTS))
        resident = rng.random(n) < residency_share_pu
        u = rng.random(n)
        for i in range(n):
            w = np.where(site_gpus >= gpus[i], site_gpus, 0.0)
            home = fleet.sites[min(int(np.searchsorted(np.cumsum(w) / w.sum(), u[i], side="right")),
                                   len(site_gpus) - 1)]
            rel = t0 + pd.Timedelta(seconds=float(release_s[i]))
            jobs.append(Job(
                f"{prefix[kind]}-{i:06d}", TENANTS[tenant[i]], kind, int(gpus[i]), float(runtime[i]),
                rel, rel + pd.Timedelta(seconds=float(np.ceil((runtime[i] + slack[i]) * 3600.0))),
                home.name, frozenset((home.area,)) if resident[i] else everywhere,
                PRIORITY[kind] + (tenant[i] == 0), checkpoint_gb(kind, int(gpus[i]))))
    spec = WorkloadSpec(source="synthetic", seed=seed, utilisation_pu=utilisation_pu,
                        inference_share_pu=inference_share_pu, residency_share_pu=residency_share_pu)
    online = [j for j in build_jobs(fleet, spec, t0, t0 + pd.Timedelta(hours=horizon_h))
              if j.kind is JobKind.ONLINE_INFERENCE]
    return jobs, online, unit


def split_classes(ctrl, state, problem, split_h: float):
    """The controller's problem with its work classes split further by release and deadline,
    each in buckets of ``split_h`` hours (deadlines beyond the horizon in one bucket): a tighter
    relaxation, to show what finer classes would buy. Not what the controller does today."""
    import dataclasses

    from wattbit.domain import JobKind
    from wattbit.plan import build as pb
    from wattbit.plan.problem import WorkClasses

    horizon_h = float(problem.blocks.end_h[-1])
    views = [pb.job_view(st.job, state.now, st.remaining_gpu_h, -1, False)
             for st in state.jobs.values() if st.job.kind is not JobKind.ONLINE_INFERENCE]
    groups: dict[tuple, list] = {}
    for v in views:
        key = (int(v.release_in_h // split_h), int(min(v.deadline_in_h, horizon_h + split_h) // split_h))
        groups.setdefault(key, []).append(v)
    parts = [pb.work_classes(vs, ctrl.fa, problem.blocks, spatial=True, temporal=True,
                             pacing_pu=ctrl.pacing_pu, move_time_s=ctrl.move_time_s,
                             home_index=ctrl.home_index)[0] for vs in groups.values()]
    cat = {f: np.concatenate([getattr(w, f) for w in parts]) for f in (
        "allowed", "origin", "cap_gpus", "due_gpu_h", "remaining_gpu_h", "move_h",
        "checkpoint_gb_per_gpu", "upper_gpu_h", "running_gpus", "restart_h")}
    keys = tuple(k for w in parts for k in w.keys)
    return dataclasses.replace(problem, work=WorkClasses(**cat, keys=keys))


def run_one(n_jobs: int, blocks: str, exact: bool, exact_time_limit_s: float, seed: int,
            split_h: float = 0.0) -> dict:
    """One instance, in this process; returns the figures."""
    from wattbit.control.controller import Controller
    from wattbit.control.state import FleetState, JobState
    from wattbit.domain import Weights
    from wattbit.grid import PerfectForesight, load_signals
    from wattbit.network import build_apn
    from wattbit.plan import build as pb
    from wattbit.plan.exact import solve_exact_like
    from wattbit.plan.lp import solve

    t0 = pd.Timestamp(T0_JST, tz="Asia/Tokyo").tz_convert("UTC")
    horizon_h = HORIZON_SLOTS * STEP_S / 3600.0
    fleet = national_fleet()
    apn = build_apn(fleet)
    truth = load_signals(t0, t0 + pd.Timedelta(hours=horizon_h), STEP_S, areas=fleet.areas)
    tg = time.perf_counter()
    batch, online, unit = national_jobs(fleet, n_jobs, t0, horizon_h, seed)
    gen_s = time.perf_counter() - tg
    fine = 4 if blocks == "telescoping" else HORIZON_SLOTS
    ctrl = Controller(fleet, apn, "wls", Weights(), PerfectForesight(truth), step_s=STEP_S,
                      horizon_slots=HORIZON_SLOTS, fine_slots=fine)
    state = FleetState(t0, {j.job_id: JobState(j) for j in batch + online})
    rss_before = peak_rss_mb()
    tb = time.perf_counter()
    problem, _, _ = ctrl.build_problem(state)
    if split_h > 0:
        problem = split_classes(ctrl, state, problem, split_h)
    build_s = time.perf_counter() - tb
    ts = time.perf_counter()
    res = solve(problem, time_limit_s=600.0)
    solve_s = time.perf_counter() - ts
    out = {
        "jobs": len(batch), "services": len(online), "unit_gpus": round(unit, 1),
        "blocks": problem.blocks.n, "sites": len(fleet.sites), "gpus": fleet.gpu_count,
        "classes": problem.work.n, "service_classes": problem.service.n, "n_cols": res.n_cols,
        "n_rows": res.n_rows, "gen_s": gen_s, "build_s": build_s, "solve_s": solve_s,
        "highs_s": res.solve_s, "plan_s": build_s + solve_s, "objective_jpy": res.objective_jpy,
        "status": res.status, "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
        "short_gpu_h": float(res.short_gpu_h.sum()),
    }
    if exact:
        views = [pb.job_view(j, t0, j.work_gpu_h, -1, False) for j in batch]
        pol = ctrl.policy
        ex = solve_exact_like(problem, ctrl.fa, views, online, now=t0, spatial=pol.spatial,
                              temporal=pol.temporal, reroute=pol.reroute, rtt_s=ctrl.rtt_s,
                              home_index=ctrl.home_index, move_time_s=ctrl.move_time_s,
                              time_limit_s=exact_time_limit_s)
        out.update(exact_status=ex.status, exact_objective_jpy=ex.objective_jpy,
                   exact_build_s=ex.build_s, exact_solve_s=ex.solve_s, exact_cols=ex.n_cols,
                   exact_rows=ex.n_rows, exact_short_gpu_h=ex.short_gpu_h,
                   exact_peak_rss_mb=peak_rss_mb(),
                   gap_pct=100.0 * (ex.objective_jpy - res.objective_jpy) / abs(ex.objective_jpy))
    return out


def _fmt_row(r: dict) -> list[object]:
    exact = "-"
    gap = "-"
    if "exact_status" in r:
        if r["exact_status"] == "Optimal":
            exact = (f"{r['exact_cols']:,} cols, build {r['exact_build_s']:.1f} s + "
                     f"solve {r['exact_solve_s']:.1f} s, {r['exact_peak_rss_mb']:,.0f} MB")
            gap = f"{r['gap_pct']:.3f}"
        else:
            exact = f"not solved in {r['exact_solve_s']:.0f} s ({r['exact_status']}, {r['exact_cols']:,} cols)"
    return [f"{r['jobs']:,}", r["blocks"], f"{r['classes']} + {r['service_classes']}",
            f"{r['n_cols']:,} × {r['n_rows']:,}", f"{r['build_s']:.2f}", f"{r['solve_s']:.2f}",
            f"{r['plan_s']:.2f}", f"{r['peak_rss_mb']:,.0f}", f"{r['objective_jpy'] / 1e6:,.3f}",
            exact, gap]


HEADER = ["jobs", "blocks", "classes (work + service)", "class LP cols × rows", "build s",
          "solve s", "plan s", "peak RSS MB", "objective M JPY", "exact LP", "gap %"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--blocks", choices=["telescoping", "single", "both"], default="telescoping")
    ap.add_argument("--exact-up-to", type=int, default=10_000,
                    help="solve the exact LP for instances up to this many jobs")
    ap.add_argument("--exact-time-limit-s", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split-h", type=float, default=0.0,
                    help="also split classes by release and deadline in buckets of this many hours "
                         "(an experiment: not what the controller does)")
    ap.add_argument("--no-readme", action="store_true", help="print only; leave README.md alone")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    kinds = ["telescoping", "single"] if args.blocks == "both" else [args.blocks]
    if args.one:
        r = run_one(args.jobs[0], kinds[0], args.jobs[0] <= args.exact_up_to,
                    args.exact_time_limit_s, args.seed, args.split_h)
        print(json.dumps(r))
        return
    print(f"machine: {machine()}")
    print(" | ".join(HEADER))
    rows = []
    for kind in kinds:
        for n in args.jobs:
            cmd = [sys.executable, __file__, "--one", "--jobs", str(n), "--blocks", kind,
                   "--exact-up-to", str(args.exact_up_to), "--exact-time-limit-s",
                   str(args.exact_time_limit_s), "--seed", str(args.seed), "--split-h", str(args.split_h)]
            t = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{n} jobs ({kind}) failed:\n{done.stderr[-2000:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            r["wall_s"] = time.perf_counter() - t
            r["blocks_kind"] = kind
            rows.append(r)
            print(" | ".join(str(c) for c in _fmt_row(r)), flush=True)
    if rows and not args.no_readme:
        cmd = "PYTHONPATH=src python benchmarks/bench_plan.py " + shlex.join(sys.argv[1:])
        for kind in kinds:
            mine = [r for r in rows if r["blocks_kind"] == kind]
            if not mine:
                continue
            label = ("the controller's 13 telescoping blocks" if kind == "telescoping"
                     else "96 single-slot blocks")
            if args.split_h:
                label += f", classes split by release and deadline in {args.split_h:g} h buckets"

            body = (f"### Planner: class LP vs exact LP, {label} ({today()})\n\n"
                    f"Machine: {machine()}.  \nCommand: `{cmd.strip()}`  \n"
                    f"Fleet national-20 ({mine[0]['sites']} sites, {mine[0]['gpus']:,} GPUs), 96 slots of "
                    f"30 min from {T0_JST} JST, policy wls, perfect foresight; "
                    f"{mine[0]['services']} online-inference services besides the jobs. "
                    "plan s = build + solve (what the target counts); peak RSS of the instance's "
                    "process before the exact LP; gap = (exact - class) / exact.\n\n"
                    + markdown_table(HEADER, [_fmt_row(r) for r in mine]))
            update_section(f"bench_plan_{kind}" + (f"_split{args.split_h:g}h" if args.split_h else ""), body)


if __name__ == "__main__":
    main()
