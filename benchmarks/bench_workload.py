"""Time wattbit.workload.build_jobs for japan-9: one month and one fiscal year, both sources.

    PYTHONPATH=src python benchmarks/bench_workload.py

Targets: a month < 2 s, a year < 15 s (each the best of 3 runs, after the trace statistics are
loaded once).
"""

from __future__ import annotations

import time

import pandas as pd

from wattbit.domain import WorkloadSpec
from wattbit.scenarios import load_fleet
from wattbit.workload import build_jobs, trace_stats

PERIODS = {
    "month (2023-03)": ("2023-03-01", "2023-04-01"),
    "year (FY2022)": ("2022-04-01", "2023-04-01"),
}


def main() -> None:
    fleet = load_fleet("japan-9")
    trace_stats()
    for label, (a, b) in PERIODS.items():
        start, end = pd.Timestamp(a, tz="Asia/Tokyo"), pd.Timestamp(b, tz="Asia/Tokyo")
        for source in ("traces", "synthetic"):
            best, n = float("inf"), 0
            for _ in range(3 if "month" in label else 1):
                t0 = time.perf_counter()
                n = len(build_jobs(fleet, WorkloadSpec(source=source, seed=0), start, end))
                best = min(best, time.perf_counter() - t0)
            print(f"{label:16s} {source:9s} {n:7d} jobs  {best:6.2f} s")


if __name__ == "__main__":
    main()
