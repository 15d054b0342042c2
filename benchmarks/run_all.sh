#!/usr/bin/env bash
# Every benchmark, one after the other (called by `make bench`; never part of the test suite).
# Each script prints its figures and refreshes its own section of benchmarks/README.md.
# Run on an otherwise idle machine: the figures are wall times.
#   QUICK=1 bash benchmarks/run_all.sh    # skip the long runs (100k jobs, the year's month)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
run() { echo; echo "== $*"; "$PY" "$@"; }

run benchmarks/bench_network.py
run benchmarks/bench_workload.py
if [ -n "${QUICK:-}" ]; then
  run benchmarks/bench_plan.py --jobs 1000 10000 --exact-up-to 1000
else
  run benchmarks/bench_plan.py --jobs 1000 10000 100000 --exact-up-to 10000
  run benchmarks/bench_plan.py --jobs 1000 10000 100000 --blocks single --exact-up-to 1000
fi
run benchmarks/bench_reaction.py --runs 20
run benchmarks/bench_lp_parts.py  # (+ a min-cost-flow solve where OR-tools is installed)
run benchmarks/bench_twin.py --profile
run benchmarks/bench_sweep.py
if [ -z "${QUICK:-}" ]; then
  # all of FY2022 (tens of minutes; `--period START END` runs a part and extrapolates)
  run benchmarks/bench_twin.py --full-year
fi
