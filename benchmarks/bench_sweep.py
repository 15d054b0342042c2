"""What running a sweep's cells in parallel costs beyond the cells themselves.

    PYTHONPATH=src python benchmarks/bench_sweep.py                 # 8 one-day cells, baseline + wls
    PYTHONPATH=src python benchmarks/bench_sweep.py --cells 14 --policies baseline

Runs the same sweep — the default scenario over ``--cells`` consecutive one-day periods from
2023-03-06 JST, each cell with ``--policies`` — on each engine: the standard library's process
pool (``workers = 0``) and, if Ray is installed, a local Ray instance started for the sweep with
one CPU per core. For each it prints the sweep's wall time, the sum of the cells' own wall times
(world building and the twin runs, as each cell measured itself), the parallel efficiency
(sum of cells ÷ (wall × workers)) and the overhead per cell ((wall × workers − sum of cells) ÷
cells): starting the workers (and Ray), shipping the inputs and the rows, and the idle tail when
the cells do not divide evenly among the workers. The cells' KPIs must agree between engines
(all but the measured times); the script checks that they do. Results go to
benchmarks/README.md (section ``bench_sweep``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, today, update_section


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=8, help="one-day cells from 2023-03-06 JST")
    ap.add_argument("--policies", nargs="+", default=["baseline", "wls"])
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.cells <= 14:
        ap.error(f"--cells {args.cells}: give 1 to 14 (the default scenario's days)")

    from wattbit.scenarios import load_scenario
    from wattbit.sim.sweep import MEASURED_COLUMNS, SweepSpec, run_sweep

    jst = "Asia/Tokyo"
    day0 = pd.Timestamp("2023-03-06 00:00", tz=jst)
    periods = tuple(((day0 + pd.Timedelta(days=d)).tz_convert("UTC"),
                     (day0 + pd.Timedelta(days=d + 1)).tz_convert("UTC")) for d in range(args.cells))
    spec = SweepSpec("bench-sweep", load_scenario("default"), tuple(args.policies), periods=periods)
    workers = os.cpu_count() or 1
    engines = [("process pool", 0)]
    if importlib.util.find_spec("ray") is not None:
        engines.append(("ray, local", workers))
    print(f"machine: {machine()}")
    print(f"{args.cells} one-day cells of the default scenario × {', '.join(args.policies)}; {workers} workers")
    rows, tables = [], []
    for name, w in engines:
        t = time.perf_counter()
        result = run_sweep(spec, workers=w)
        wall = time.perf_counter() - t
        cells_s = float(result.table.drop_duplicates("cell")["cell_wall_s"].sum())
        efficiency = cells_s / (wall * workers)
        overhead = (wall * workers - cells_s) / args.cells
        print(f"{name:14s} wall {wall:6.1f} s  cells {cells_s:6.1f} s  efficiency {efficiency:5.1%}  "
              f"overhead {overhead:5.2f} s a cell  ({result.engine})", flush=True)
        rows.append([name, f"{wall:.1f}", f"{cells_s:.1f}", f"{cells_s / args.cells:.2f}",
                     f"{efficiency:.0%}", f"{overhead:.2f}", result.engine])
        tables.append(result.table)
    kpis = [c for c in tables[0].columns if c not in MEASURED_COLUMNS]
    for other in tables[1:]:
        pd.testing.assert_frame_equal(tables[0][kpis], other[kpis])
    if len(tables) > 1:
        print("the cells' KPIs agree between engines")
    text = markdown_table(["engine", "sweep wall s", "sum of cells s", "s a cell", "parallel efficiency",
                           "overhead s a cell", "engine as reported"], rows)
    print(text)
    if not args.no_readme:
        cmd = "PYTHONPATH=src python benchmarks/bench_sweep.py" + (
            f" --cells {args.cells}" if args.cells != ap.get_default("cells") else "") + (
            " --policies " + " ".join(args.policies) if args.policies != ap.get_default("policies") else "")
        body = (f"### Sweep: {args.cells} one-day cells of the default scenario × {', '.join(args.policies)} "
                f"({today()})\n\n`{cmd}` on {machine()}; {workers} workers. Efficiency = sum of the cells' "
                f"own wall times ÷ (sweep wall × workers); overhead = what the rest comes to per cell.\n\n"
                f"{text}\n")
        update_section("bench_sweep", body)


if __name__ == "__main__":
    main()
