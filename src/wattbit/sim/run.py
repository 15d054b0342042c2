"""Run a scenario through the twin under one or more policies: the chain from files to KPIs."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.control.controller import Controller
from wattbit.control.oracle import OraclePlan, plan_oracle
from wattbit.control.policies import POLICIES
from wattbit.control.policies import policy as _policy
from wattbit.domain import Job, Scenario
from wattbit.domain._validate import integer
from wattbit.domain.job import pack_jobs, unpack_jobs
from wattbit.errors import InvalidInput
from wattbit.grid import GapWarning, GridSignals
from wattbit.grid.forecast import DEFAULT_CLIMATOLOGY_DAYS
from wattbit.sim.chunks import Chunk, check_chunk_count, split_run, stitch, warmup_slots
from wattbit.sim.kpi import kpi_table
from wattbit.sim.twin import TwinResult, run_twin, run_window
from wattbit.units import jst_text

__all__ = [
    "DEFAULT_POLICIES",
    "Comparison",
    "World",
    "build_world",
    "check_chunks",
    "chunk_world",
    "make_out_dir",
    "relay",
    "reports_progress",
    "save_outputs",
    "simulate",
    "start_worker",
    "twin_controller",
]

DEFAULT_POLICIES: tuple[str, ...] = tuple(POLICIES)


@dataclass(frozen=True, eq=False)
class World:
    """The recorded world a scenario runs in: jobs, APN, the grid truth over the run window,
    and the truth a forecaster may look into (the run window plus one horizon, and the history
    before it)."""

    scenario: Scenario
    jobs: tuple[Job, ...]
    apn: object
    truth: GridSignals
    forecast_truth: GridSignals
    history: GridSignals | None

    def __reduce__(self):
        # pickled (for a worker process) with its jobs as columns: the half of FY2022 that each
        # chunk of a year cut in two runs (155,000 jobs) takes 0.8 s to write and 2.6 s to read
        # so, against 3.3 s and 5.2 s one job at a time
        return _world_from_columns, (self.scenario, pack_jobs(self.jobs), self.apn, self.truth,
                                     self.forecast_truth, self.history)


def _world_from_columns(scenario: Scenario, jobs: dict, apn, truth: GridSignals, forecast_truth: GridSignals,
                        history: GridSignals | None) -> World:
    return World(scenario, unpack_jobs(jobs), apn, truth, forecast_truth, history)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Results of the policies on one world, and their KPI table."""

    world: World
    results: dict[str, TwinResult]
    oracle: OraclePlan | None = None
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    lightpaths: dict = field(default_factory=dict)


HISTORY_DAYS = DEFAULT_CLIMATOLOGY_DAYS
"""Days of grid history before a run that its forecaster gets: its climatology's trailing
window (:class:`wattbit.grid.SeasonalPersistenceForecaster`)."""


def build_world(scenario: Scenario, *, data_dir: Path | None = None,
                jobs: Sequence[Job] | None = None, history_days: int = HISTORY_DAYS) -> World:
    """Load the grid truth, build the jobs (unless given) and the APN for a scenario."""
    from wattbit.grid import load_signals, signal_span
    from wattbit.network import build_apn
    from wattbit.workload import build_jobs

    fleet = scenario.fleet
    if jobs is None:
        jobs = build_jobs(fleet, scenario.workload, scenario.start, scenario.end)
    jobs = tuple(jobs)
    start, stop = run_window(jobs, scenario.start, scenario.end, scenario.step_s)
    first, last = signal_span(data_dir)
    if stop > last >= scenario.end:
        # the data end before the last deadline: the run stops there, and jobs still going
        # then are counted unfinished (not missed: their deadlines lie past the run)
        warnings.warn(
            f"scenario {scenario.name!r}: the grid data end at {jst_text(last)}, before the run's end "
            f"at {jst_text(stop)} (the run window's end: its jobs' last deadline, on the slot grid); the run stops at the end of "
            "the data and reports unfinished work",
            stacklevel=2)
        stop = last
    horizon = pd.Timedelta(seconds=scenario.step_s * scenario.horizon_slots)
    areas = fleet.areas
    truth = load_signals(start, stop, scenario.step_s, areas=areas, data_dir=data_dir)
    ahead = min(stop + horizon, last)
    forecast_truth = truth if ahead <= stop else load_signals(start, ahead, scenario.step_s,
                                                             areas=areas, data_dir=data_dir)
    hist_start = max(first, start - pd.Timedelta(days=history_days))
    history = _history(hist_start, start, scenario.step_s, areas, data_dir) if hist_start < start else None
    return World(scenario, jobs, build_apn(fleet), truth, forecast_truth, history)


def _history(start: pd.Timestamp, end: pd.Timestamp, step_s: float, areas, data_dir) -> GridSignals:
    """The signals before a run that its forecaster starts from. Hours they lack are filled as in
    any load, and said so in terms of the forecast (the period chosen is not at fault)."""
    from wattbit.grid import load_signals

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GapWarning)
        history = load_signals(start, end, step_s, areas=areas, data_dir=data_dir)
    for w in caught:
        if isinstance(w.message, GapWarning):
            warnings.warn(GapWarning(f"the forecaster's history before the run: {w.message.filled}",
                                     "Its first days' forecasts lean on those filled values"), stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return history


def twin_controller(sc: Scenario, world: World, name: str) -> Controller:
    """The controller the twin runs for policy ``name`` on the scenario's world: the scenario's
    settings, a seasonal-persistence forecaster on the world's truth, its own lightpath book
    (``controller.lightpaths``) and, for the ``oracle`` policy, the plan solved with foresight."""
    from wattbit.grid import SeasonalPersistenceForecaster
    from wattbit.network import LightpathBook

    pol = _policy(name)
    oracle = None
    if pol.foresight:
        oracle = plan_oracle(sc.fleet, world.apn, world.jobs, world.truth, weights=sc.weights,
                             demand_response=sc.demand_response, outages=sc.outages)
    return Controller(
        sc.fleet, world.apn, pol, sc.weights, SeasonalPersistenceForecaster(world.forecast_truth, world.history),
        step_s=sc.step_s, horizon_slots=sc.horizon_slots, replan_slots=sc.replan_slots,
        coarse_blocks=sc.coarse_blocks, fine_block_slots=sc.fine_block_slots,
        inference_forecast_days=sc.inference_forecast_days, lightpaths=LightpathBook(world.apn),
        oracle_plan=oracle)


@dataclass(frozen=True, eq=False)
class _Ran:
    """One twin run's outputs: its result, its lightpath book, the oracle plan if it solved one;
    for a chunk of a run cut in time, instead of the book (which stays in the worker), the peak
    link utilisation within the chunk's kept part [pu]."""

    result: TwinResult
    book: object = None
    oracle: OraclePlan | None = None
    peak_pu: float = 0.0


def _run_policy(sc: Scenario, world: World, name: str,
                on_slot: Callable[[int, int], None] | None = None, chunk: Chunk | None = None) -> _Ran:
    """One policy's twin run (on the chunk's world, for a ``chunk`` of a run cut in time)."""
    controller = twin_controller(sc, world, name)
    result = run_twin(controller, world.jobs, world.truth, demand_response=sc.demand_response,
                      outages=sc.outages, on_slot=on_slot)
    book = controller.lightpaths
    if chunk is None:
        return _Ran(result, book, controller.oracle_plan)
    peak = max(book.utilisation(chunk.keep_start, chunk.keep_end).values(), default=0.0)
    return _Ran(result, oracle=controller.oracle_plan, peak_pu=peak)


def chunk_world(sc: Scenario, world: World, chunk: Chunk, *, last: bool) -> World:
    """The world of one chunk of a run cut in time (:mod:`wattbit.sim.chunks`): the scenario
    ``sc`` over the chunk's period, the jobs released from its ``run_start`` (until its
    ``keep_end``, unless it is the ``last``), the grid truth over its run, the forecaster's truth
    one horizon beyond, and the history before it."""
    from wattbit.grid import concat_signals
    from wattbit.scenarios import with_period

    truth, ahead = world.truth, world.forecast_truth
    i0 = int(truth.time.get_loc(chunk.run_start))
    i1 = len(truth.time) if last else int(truth.time.get_loc(chunk.keep_end))
    stop_ns = None if last else chunk.keep_end.value
    jobs = tuple(j for j in world.jobs if j.release_ns >= chunk.run_start.value
                 and (stop_ns is None or j.release_ns < stop_ns))
    history = world.history
    if i0 > 0:  # the slots before the chunk's run: HISTORY_DAYS, as far back as the world reaches
        past = ahead if history is None else concat_signals(history, ahead)
        at = i0 + len(past.time) - len(ahead.time)
        n = min(at, round(HISTORY_DAYS * 86400 / sc.step_s))
        history = past.window(at - n, n)
    return World(with_period(sc, chunk.run_start, sc.end if last else chunk.keep_end), jobs, world.apn,
                 truth.window(i0, i1 - i0), ahead.window(i0, i1 - i0 + sc.horizon_slots), history)


PROGRESS_UPDATES = 200
"""Progress reports a worker process sends per policy run (each slot would flood the pipe)."""


def reports_progress(i: int, n: int) -> bool:
    """Whether slot ``i`` of ``n`` is one of the :data:`PROGRESS_UPDATES` a worker process
    reports (always the first and the last).

    >>> [i for i in range(1000) if reports_progress(i, 1000)][:3], reports_progress(999, 1000)
    ([0, 5, 10], True)
    """
    return i == 0 or i == n - 1 or i % max(1, n // PROGRESS_UPDATES) == 0


@dataclass(frozen=True, eq=False)
class _Task:
    """One twin run: a policy on a world (a chunk's, when the run is cut in time)."""

    key: tuple[str, int]  # (policy, chunk index)
    scenario: Scenario
    world: World
    chunk: Chunk | None = None

    def run(self, on_slot: Callable[[int, int], None] | None = None) -> _Ran:
        return _run_policy(self.scenario, self.world, self.key[0], on_slot, self.chunk)


WORKER_GC_THRESHOLDS = (100_000, 20, 100)
"""The garbage collector's thresholds in a worker process (Python's default: 700, 10, 10). A twin
run allocates objects by the million and frees nearly all of them by reference counting, so the
collector mostly sweeps live ones: in the second half of FY2022 under wls it swept 1,949 times,
1.34 s of a 64 s run (when the year's chunks ran that long); with these thresholds 8 times, 0.17 s. Reading that chunk's world takes
0.75 s instead of 1.20 (docs/benchmarks.md, "A year cut in time"); the largest worker's peak
RSS was 871 MB against 789 MB. Set in the worker processes that run twins (:func:`start_worker`:
this module's and the sweep's pool), never in the caller's."""


def start_worker() -> None:
    """Set up a worker process that runs twins, before its first task arrives (a process
    pool's ``initializer``)."""
    gc.set_threshold(*WORKER_GC_THRESHOLDS)


def _run_task_in_worker(task: _Task, progress) -> _Ran:
    """A task in a worker process; progress goes to the parent through a queue."""
    cb = None
    if progress is not None:
        def cb(i: int, n: int) -> None:
            if reports_progress(i, n):
                progress.put((task.key, i, n))
    return task.run(cb)


def _run_parallel(tasks: Sequence[_Task], workers: int,
                  on_slot: Callable[[tuple[str, int], int, int], None] | None) -> dict[tuple[str, int], _Ran]:
    """Each task in its own process (spawned: HiGHS's threads do not survive a fork), at most
    ``workers`` at a time, its world sent along; the planners and the longest worlds go first so
    that the short runs fill in at the end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager() if on_slot else None
    queue = manager.Queue() if manager else None
    try:
        with relay(queue, lambda item: on_slot(*item)), single_threaded_workers(), \
                ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=start_worker) as pool:
            longest_first = sorted(tasks, key=lambda t: (not _policy(t.key[0]).foresight,
                                                         not _policy(t.key[0]).planner, -len(t.world.truth.time)))
            futures = {t.key: pool.submit(_run_task_in_worker, t, queue) for t in longest_first}
            try:
                return {t.key: futures[t.key].result() for t in tasks}
            except BaseException:
                for f in futures.values():  # a run failed: start no more (running ones end first)
                    f.cancel()
                raise
    finally:
        if manager is not None:
            manager.shutdown()


WORKER_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that size the thread pools of NumPy's BLAS (OpenBLAS or MKL) and of
OpenMP, read once when a process loads them."""


@contextlib.contextmanager
def single_threaded_workers():
    """While the block runs, processes started from this one run NumPy's BLAS and OpenMP on one
    thread each (unless :data:`WORKER_THREAD_VARIABLES` are set already): runs side by side
    already take every core, and BLAS threads waiting for work take the other run's. With a large
    matrix product in every plan, FY2022 under wls in two chunks took 260 s instead of about
    90 s (docs/benchmarks.md, "A year cut in time")."""
    saved = {name: os.environ.get(name) for name in WORKER_THREAD_VARIABLES}
    for name in WORKER_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def relay(queue, handle: Callable[[tuple], None]):
    """While the block runs, a thread of this process hands each item worker processes put on
    ``queue`` to ``handle`` (progress reports); on leaving, everything put so far is handed over
    before the thread ends. Nothing happens without a queue."""
    if queue is None:
        yield
        return

    def drain() -> None:
        while (item := queue.get()) is not None:
            handle(item)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        queue.put(None)
        thread.join()


def check_chunks(policies: Sequence[str], chunks: int) -> int:
    """Refuse a number of chunks that is not a whole number from 1 up, or chunks with a policy
    that has foresight (its plan sees the whole period at once); the number, as a Python int."""
    chunks = check_chunk_count(chunks)
    foresight = [n for n in policies if _policy(n).foresight]
    if chunks > 1 and foresight:
        raise InvalidInput(f"chunks = {chunks} with policy {foresight[0]!r}, whose plan sees the whole "
                           "period at once; run it with chunks = 1, or leave it out")
    return chunks


def simulate(scenario: Scenario, policies: Sequence[str] = DEFAULT_POLICIES, *,
             data_dir: Path | None = None, world: World | None = None,
             on_slot: Callable[[str, int, int], None] | None = None,
             workers: int = 1, chunks: int = 1) -> Comparison:
    """Run each policy on the scenario's world and compare them.

    on_slot(policy, i, n) is called after slots (progress bars): every slot in this process,
    a few hundred times per run from worker processes.
    workers : runs at once, each in its own process (1: one after the other, here). The runs are
    independent and deterministic, so the results do not depend on ``workers``.
    chunks : cut each policy's run in time into this many pieces that can run at once, each
    warmed up on the jobs before it (:mod:`wattbit.sim.chunks`: an approximation, measured in
    docs/benchmarks.md). Not for policies with foresight; the comparison then holds no
    lightpath books (each chunk had its own).
    """
    for name in policies:
        _policy(name)
    workers = integer("simulate", "workers", workers, low=1, note=" (1 runs the policies one after the other)")
    chunks = check_chunks(policies, chunks)
    world = world or build_world(scenario, data_dir=data_dir)
    sc = scenario
    cuts = split_run(world.truth.time, chunks, warmup_slots(world.jobs, sc.step_s))
    if chunks == 1:
        tasks = [_Task((name, 0), sc, world) for name in policies]
    else:
        worlds = [chunk_world(sc, world, c, last=c is cuts[-1]) for c in cuts]
        tasks = [_Task((name, c.index), w.scenario, w, c) for c, w in zip(cuts, worlds) for name in policies]
    done: dict[tuple[str, int], int] = {}  # slots run, per task (progress of a policy = their sum)
    total = {name: sum(len(t.world.truth.time) for t in tasks if t.key[0] == name) for name in policies}

    def progress(key: tuple[str, int], i: int, n: int) -> None:
        done[key] = i + 1
        on_slot(key[0], sum(v for k, v in done.items() if k[0] == key[0]) - 1, total[key[0]])

    if workers > 1 and len(tasks) > 1:
        runs = _run_parallel(tasks, min(workers, len(tasks)), progress if on_slot else None)
    else:
        runs = {t.key: t.run((lambda i, n, _key=t.key: progress(_key, i, n)) if on_slot else None)
                for t in tasks}
    if chunks == 1:
        results: dict[str, TwinResult] = {name: runs[(name, 0)].result for name in policies}
        books = {name: runs[(name, 0)].book for name in policies}
    else:
        ids = [j.job_id for j in world.jobs]
        parts = {name: [runs[(name, c.index)] for c in cuts] for name in policies}
        results = {name: stitch(cuts, [r.result for r in ran], [r.peak_pu for r in ran], ids)
                   for name, ran in parts.items()}
        books = {}
    oracle = next((r.oracle for r in runs.values() if r.oracle is not None), None)
    table = kpi_table(results)
    if oracle is not None:
        bound = float(oracle.result.absorbed_mw.sum() * world.truth.step_h)
        table.loc["curtailment_absorbed_bound_mwh"] = np.nan
        table.loc["curtailment_absorbed_bound_mwh", "oracle"] = bound
        table.loc["objective_bound_mjpy"] = np.nan
        table.loc["objective_bound_mjpy", "oracle"] = oracle.result.bound_jpy / 1e6
        if "wls" in table:
            table.loc["wls_vs_bound_absorbed_pct"] = np.nan
            table.loc["wls_vs_bound_absorbed_pct", "wls"] = (
                100.0 * table.loc["curtailment_absorbed_mwh", "wls"] / bound if bound > 0 else np.nan)
    return Comparison(world, results, oracle, table, books)


def make_out_dir(out_dir: Path) -> Path:
    """Create the folder a run writes to, if need be; a clear error if it cannot be (a file of
    that name, no permission), so that a caller can ask before the run rather than after."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "is a file, not a folder" if out_dir.exists() and not out_dir.is_dir() else \
            f"cannot be created ({exc.strerror})"
        raise InvalidInput(f"output folder {str(out_dir)!r} {what}; give another one (--out) "
                           "or move what is in the way") from None
    return out_dir


def save_outputs(comparison: Comparison, out_dir: Path, *, report: bool = True) -> dict[str, Path]:
    """Write the KPI table (CSV and text), each policy's area, site and job records (Parquet)
    and, with ``report`` and plotly installed, the HTML report. Returns what was written."""
    from wattbit.errors import MissingExtra
    from wattbit.sim.kpi import format_kpi_table

    out_dir = make_out_dir(out_dir)
    written = {"kpis_csv": out_dir / "kpis.csv", "kpis_txt": out_dir / "kpis.txt"}
    comparison.table.to_csv(written["kpis_csv"], float_format="%.6g")
    written["kpis_txt"].write_text(format_kpi_table(comparison.table) + "\n", encoding="utf-8")
    for name, r in comparison.results.items():
        for part in ("areas", "sites"):
            path = out_dir / f"{name}_{part}.parquet"
            getattr(r, part).to_parquet(path)
            written[f"{name}_{part}"] = path
        path = out_dir / f"{name}_jobs.parquet"
        r.jobs.to_parquet(path)
        written[f"{name}_jobs"] = path
    if report:
        try:
            from wattbit.sim.report import write_report
        except ImportError:  # the report module arrives with the report extra
            write_report = None
        if write_report is not None:
            try:
                written["report"] = write_report(comparison, out_dir / "report.html",
                                                 lightpaths=comparison.lightpaths)
            except MissingExtra:
                pass
    return written
