"""Time to build the japan-9 APN and to answer every site pair's path and move time.

    PYTHONPATH=src python benchmarks/bench_network.py
"""

from __future__ import annotations

import itertools
import statistics
import time

from wattbit.network import build_apn
from wattbit.network.railway import load_railway
from wattbit.scenarios import load_fleet


def main(repeats: int = 20) -> None:
    fleet = load_fleet("japan-9")
    t = time.perf_counter()
    load_railway()
    first_load_s = time.perf_counter() - t
    builds, queries = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        apn = build_apn(fleet)
        builds.append(time.perf_counter() - t)
        t = time.perf_counter()
        for a, b in itertools.combinations(apn.sites, 2):
            apn.path(a, b)
            apn.move_time_s(1000.0, a, b)
        apn.latency_matrix_s()
        queries.append(time.perf_counter() - t)
    print(f"railway table first read: {first_load_s * 1e3:.1f} ms")
    print(f"build_apn(japan-9): median {statistics.median(builds) * 1e3:.1f} ms, max {max(builds) * 1e3:.1f} ms")
    print(f"36 paths + move times + latency matrix on a fresh APN: median {statistics.median(queries) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
