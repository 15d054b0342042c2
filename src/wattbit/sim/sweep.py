"""Scenario sweeps: many twin runs (fleet sizes × APN capacities × periods × policies) in parallel.

A sweep file (YAML or TOML) names a base scenario and the axes::

    name: size-and-fiber
    scenario: default            # bundled scenario name, or a scenario file (relative to this file)
    policies: [baseline, wls]    # run in every cell
    fleet_scale: [0.5, 1.0, 2.0] # × every site's gpu_count and it_power_max_mw
    fiber_pairs: [1, 4]          # APN capacity: fiber pairs per link (build_apn)
    periods:                     # start/end pairs, JST if naive; default: the scenario's period
      - ["2022-08-01 00:00", "2022-08-15 00:00"]
      - {start: "2023-03-06 00:00", end: "2023-03-20 00:00"}

Each cell (one value per axis) builds its world — the scaled fleet's jobs over the cell's period,
the grid truth, an APN with the cell's fiber pairs — runs :func:`wattbit.sim.run.simulate` for
the policies and returns one KPI row per policy. Cells run in parallel on Ray (the ``scale``
extra: a local instance, or an existing cluster given by its address) or, without Ray, on the
standard library's process pool. Results: one table, one row per cell × policy, axes as columns
(:func:`run_sweep`), written as Parquet with a markdown summary (:func:`write_sweep`).

Given a ``cells_dir``, every cell's rows are written there the moment the cell finishes
(``cell-0003-<key>.parquet``), so an interrupted sweep loses only the cells that were running;
with ``resume=True`` a later run takes the cells whose file is there instead of running them
again. The key is a digest of everything the cell's result depends on (:func:`cell_key`): the
base scenario, the policies, the cell's axes, the jobs, the grid data folder and wattbit's
version. Change any of them and the cell runs again.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import time as _time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.domain import Fleet, Job, Scenario
from wattbit.domain._validate import is_integer, is_number
from wattbit.errors import InvalidInput, MissingExtra, SweepFailed
from wattbit.files import write_whole
from wattbit.sim.kpi import MEASURED_KPIS
from wattbit.units import jst_minute

__all__ = [
    "CELL_RETRIES",
    "MEASURED_COLUMNS",
    "SWEEP_FIELDS",
    "Cell",
    "SweepResult",
    "SweepSpec",
    "cell_key",
    "check_cells",
    "describe_cell",
    "load_sweep",
    "run_cell",
    "run_sweep",
    "saved_cell",
    "scaled_fleet",
    "summary_markdown",
    "sweep_cells",
    "sweep_from_dict",
    "write_sweep",
]

CELL_RETRIES = 2
"""Times a cell runs again after the process running it was lost (killed, out of memory, its
node gone): on Ray as the task's ``max_retries``, on the process pool in a fresh pool. An error
raised by the cell itself is not retried: the same inputs would raise it again."""

MEASURED_COLUMNS = MEASURED_KPIS | {"cell_wall_s"}
"""Columns of a sweep's table that hold measured wall times (the cell's own, and the KPIs of
:data:`wattbit.sim.kpi.MEASURED_KPIS`): the rows of two runs of the same cell agree on every
other column."""

SWEEP_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("str", "sweep name, used in the summary (default: the file stem)"),
    "scenario": ("str", "bundled scenario name or scenario file, relative to the sweep file (default 'default')"),
    "policies": ("list of str", "policies run in every cell (default [baseline, wls])"),
    "fleet_scale": ("list of float", "factors on every site's gpu_count and it_power_max_mw [-] (default [1])"),
    "fiber_pairs": ("list of int", "fiber pairs per APN link [-] (default [1])"),
    "periods": ("list of [start, end]", "run periods, JST if naive (default: the scenario's period)"),
}
"""Every field of a sweep file: name → (type, meaning)."""

KPI_SUMMARY = (
    ("curtailment_absorbed_mwh", "absorbed MWh", "{:,.1f}"),
    ("cost_mjpy", "cost M JPY", "{:,.2f}"),
    ("emissions_marginal_t", "marginal t-CO2", "{:,.1f}"),
    ("deadline_misses", "misses", "{:.0f}"),
    ("moves", "moves", "{:.0f}"),
    ("apn_peak_link_utilisation_pct", "APN peak %", "{:.1f}"),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """One combination of the axes: fleet scale [-], fiber pairs [-], period (UTC)."""

    index: int
    fleet_scale: float
    fiber_pairs: int
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """A sweep: a base scenario and the axes to vary.

    base : the scenario every cell starts from;  policies : run in every cell;
    fleet_scale : factors on sites' GPUs and IT power caps [-];  fiber_pairs : APN fiber pairs
    per link [-];  periods : (start, end) pairs (UTC); empty means the base scenario's period;
    jobs : the same jobs in every cell (only those released inside the cell's period are used),
    e.g. a recorded job log; None builds them from the scenario's workload for each cell's fleet
    and period.
    """

    name: str
    base: Scenario
    policies: tuple[str, ...] = ("baseline", "wls")
    fleet_scale: tuple[float, ...] = (1.0,)
    fiber_pairs: tuple[int, ...] = (1,)
    periods: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    jobs: tuple[Job, ...] | None = None

    def __post_init__(self) -> None:
        from wattbit.control.policies import policy

        owner = f"sweep {self.name!r}"
        if not self.policies:
            raise InvalidInput(f"{owner}: policies is empty; list at least one, e.g. [baseline, wls]")
        for p in self.policies:
            policy(p)
        for name in ("fleet_scale", "fiber_pairs"):
            values = tuple(getattr(self, name))
            if not values:
                raise InvalidInput(f"{owner}: {name} is empty; give at least one value")
            object.__setattr__(self, name, values)
        for s in self.fleet_scale:
            if not (is_number(s) and 0 < s <= 100):
                raise InvalidInput(f"{owner}: fleet_scale value {s!r}; expected a number in (0, 100]")
        for f in self.fiber_pairs:
            if not is_integer(f) or f < 1:
                raise InvalidInput(f"{owner}: fiber_pairs value {f!r}; expected a whole number >= 1")
        object.__setattr__(self, "fleet_scale", tuple(float(s) for s in self.fleet_scale))
        object.__setattr__(self, "fiber_pairs", tuple(int(f) for f in self.fiber_pairs))
        for a, b in self.periods:
            if b <= a:
                raise InvalidInput(f"{owner}: period {a} .. {b} ends before it starts; swap them")
        object.__setattr__(self, "periods", tuple(self.periods))


@dataclass(frozen=True, eq=False)
class SweepResult:
    """A finished sweep: ``table`` has one row per cell × policy (axes, KPIs, the cell's wall
    time [s]); ``engine`` says where it ran; ``wall_s`` is the whole sweep's wall time [s];
    ``reused`` the indices of the cells taken from an earlier run (``resume``); ``failed`` the
    (index, error) of each cell that failed (their rows are not in ``table``)."""

    spec: SweepSpec
    table: pd.DataFrame
    engine: str
    wall_s: float
    reused: tuple[int, ...] = ()
    failed: tuple[tuple[int, str], ...] = ()


def _period(origin: str, value) -> tuple[pd.Timestamp, pd.Timestamp]:
    from wattbit.scenarios import read_time

    if isinstance(value, dict):
        pair = (value.get("start"), value.get("end"))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        pair = tuple(value)
    else:
        raise InvalidInput(f"{origin}: periods entry {value!r}; expected [start, end] or {{start, end}}")
    where = f"periods entry {value!r}"
    return read_time(origin, where, "start", pair[0]), read_time(origin, where, "end", pair[1])


def _as_tuple(value) -> tuple:
    """A field given as one value or a list of them, as a tuple of the values as written (the
    spec checks them: a number written as text or a bool is refused there)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def sweep_from_dict(raw: dict, origin: str = "sweep", name: str = "sweep",
                    base_dir: Path | None = None) -> SweepSpec:
    """A sweep from a parsed table (see :data:`SWEEP_FIELDS`)."""
    import difflib

    from wattbit.scenarios import load_scenario

    for key in raw:
        if key not in SWEEP_FIELDS:
            close = difflib.get_close_matches(key, list(SWEEP_FIELDS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(SWEEP_FIELDS)}"
            raise InvalidInput(f"{origin}: unknown field {key!r}; {hint}")
    scen = str(raw.get("scenario", "default"))
    path = Path(scen)
    if path.suffix in (".toml", ".yaml", ".yml") and not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    base = load_scenario(path if path.suffix else scen)
    kwargs = {"name": str(raw.get("name", name)), "base": base}
    if "policies" in raw:
        kwargs["policies"] = tuple(str(p) for p in _as_tuple(raw["policies"]))
    if "fleet_scale" in raw:
        kwargs["fleet_scale"] = _as_tuple(raw["fleet_scale"])
    if "fiber_pairs" in raw:
        kwargs["fiber_pairs"] = _as_tuple(raw["fiber_pairs"])
    if "periods" in raw:
        kwargs["periods"] = tuple(_period(origin, p) for p in raw["periods"])
    try:
        return SweepSpec(**kwargs)
    except InvalidInput as exc:
        raise InvalidInput(f"{origin}: {exc}") from None


def load_sweep(path: str | Path) -> SweepSpec:
    """A sweep from a YAML or TOML file."""
    import tomllib

    import yaml

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"sweep file {str(path)!r} does not exist; check the path")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: expected a table of fields at the top ({', '.join(SWEEP_FIELDS)})")
    return sweep_from_dict(raw, str(path), path.stem, path.parent)


def sweep_cells(spec: SweepSpec) -> list[Cell]:
    """Every combination of the axes, fleet scale outermost, period innermost."""
    periods = spec.periods or ((spec.base.start, spec.base.end),)
    cells = []
    for scale in spec.fleet_scale:
        for pairs in spec.fiber_pairs:
            for a, b in periods:
                cells.append(Cell(len(cells), float(scale), int(pairs), a, b))
    return cells


def scaled_fleet(fleet: Fleet, scale: float) -> Fleet:
    """The fleet with every site's GPUs (rounded, at least 1) and IT power cap × ``scale``.

    >>> from wattbit.examples import tiny_fleet
    >>> f = scaled_fleet(tiny_fleet(), 1.5)
    >>> f.gpu_count, f.sites[0].it_power_max_mw
    (3072, 2.1)
    """
    if scale == 1.0:
        return fleet
    sites = tuple(dataclasses.replace(s, gpu_count=max(1, round(s.gpu_count * scale)),
                                      it_power_max_mw=round(s.it_power_max_mw * scale, 6))
                  for s in fleet.sites)
    return Fleet(f"{fleet.name}-x{scale:g}", sites)


def cell_scenario(base: Scenario, cell: Cell) -> Scenario:
    """The base scenario on the cell's fleet and period (DR and outages outside it dropped)."""
    from wattbit.scenarios import with_period

    sc = with_period(base, cell.start, cell.end)
    return dataclasses.replace(sc, fleet=scaled_fleet(sc.fleet, cell.fleet_scale),
                               name=f"{base.name}#{cell.index}")


def run_cell(base: Scenario, cell: Cell, policies: Sequence[str],
             jobs: Sequence[Job] | None = None, data_dir: Path | None = None,
             progress=None) -> list[dict]:
    """Run one cell: build its world, simulate the policies, return one row per policy
    (axes, the KPI table's entries for that policy, jobs, slots and the cell's wall time [s]).

    progress : a queue (anything with ``put``) that gets ``(cell index, policy, slot, slots)``
    a few hundred times per policy run (:func:`wattbit.sim.run.reports_progress`)."""
    from wattbit.network import build_apn
    from wattbit.sim.run import build_world, reports_progress, simulate

    t0 = _time.perf_counter()
    sc = cell_scenario(base, cell)
    if jobs is not None:
        jobs = [j for j in jobs if cell.start <= j.release < cell.end]
    world = build_world(sc, data_dir=data_dir, jobs=jobs)
    world = dataclasses.replace(world, apn=build_apn(sc.fleet, fiber_pairs=cell.fiber_pairs))
    on_slot = None
    if progress is not None:
        def on_slot(policy: str, i: int, n: int) -> None:
            if reports_progress(i, n):
                progress.put((cell.index, policy, i, n))
    comparison = simulate(sc, tuple(policies), world=world, on_slot=on_slot)
    wall_s = _time.perf_counter() - t0
    rows = []
    for p in policies:
        row = {"cell": cell.index, "scenario": base.name, "fleet": sc.fleet.name,
               "fleet_scale": cell.fleet_scale, "fleet_gpus": sc.fleet.gpu_count,
               "fiber_pairs": cell.fiber_pairs, "period_start": cell.start, "period_end": cell.end,
               "policy": p, "jobs": len(world.jobs), "slots": len(world.truth.time)}
        row.update({k: float(v) for k, v in comparison.table[p].items() if pd.notna(v)})
        row["cell_wall_s"] = wall_s
        rows.append(row)
    return rows


def _canonical(obj):
    """A description of ``obj`` that is the same in every process (sets sorted, dataclasses by
    field, arrays by their bytes), for :func:`cell_key`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__name__,) + tuple((f.name, _canonical(getattr(obj, f.name)))
                                             for f in dataclasses.fields(obj))
    if isinstance(obj, (set, frozenset)):
        return ("set",) + tuple(sorted(repr(_canonical(v)) for v in obj))
    if isinstance(obj, dict):
        return ("dict",) + tuple(sorted((repr(_canonical(k)), _canonical(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return tuple(_canonical(v) for v in obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return repr(obj.value)
    if isinstance(obj, np.ndarray):
        return (obj.dtype.str, obj.shape, hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest())
    return repr(obj)


def cell_key(spec: SweepSpec, cell: Cell, data_dir: Path | None = None) -> str:
    """A digest (16 hex digits) of what the cell's result depends on: the base scenario, the
    policies, the cell's axes, the jobs, the grid data (the contents of its folder: a dataset
    imported again into the same folder is other data) and wattbit's code (its sources: a cell
    computed by other code is not taken by ``--resume``).

    >>> from wattbit.examples import tiny_scenario
    >>> spec = SweepSpec("s", tiny_scenario(), ("wls",), (1.0, 2.0))
    >>> a, b = sweep_cells(spec)
    >>> len(cell_key(spec, a)), cell_key(spec, a) == cell_key(spec, b)
    (16, False)
    """
    jobs = "scenario workload" if spec.jobs is None else hashlib.sha256(
        repr(_canonical(spec.jobs)).encode()).hexdigest()
    what = (_code_digest(), _canonical(spec.base), spec.policies, cell.fleet_scale, cell.fiber_pairs,
            cell.start.isoformat(), cell.end.isoformat(), jobs,
            "bundled" if data_dir is None else _folder_digest(*_listing(Path(data_dir).resolve())))
    return hashlib.sha256(repr(what).encode()).hexdigest()[:16]


def _listing(folder: Path) -> tuple[Path, tuple[tuple[str, int, int], ...]]:
    """A folder and its files' (relative name, size, modification time), to key a digest on."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return folder, tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


@functools.lru_cache(maxsize=8)
def _folder_digest(folder: Path, listing: tuple) -> str:
    """SHA-256 of the files of ``folder`` (names and contents); recomputed when ``listing``
    changes."""
    h = hashlib.sha256()
    for name, _, _ in listing:
        h.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """SHA-256 of wattbit's Python sources and bundled resources, as installed."""
    import wattbit

    root = Path(wattbit.__file__).parent
    return _folder_digest(root, tuple(x for x in _listing(root)[1]
                                      if "__pycache__" not in x[0] and not x[0].endswith(".pyc")))


def _cell_path(cells_dir: Path, spec: SweepSpec, cell: Cell, data_dir: Path | None) -> Path:
    return Path(cells_dir) / f"cell-{cell.index:04d}-{cell_key(spec, cell, data_dir)}.parquet"


def saved_cell(cells_dir: Path, spec: SweepSpec, cell: Cell, data_dir: Path | None = None) -> Path | None:
    """The file an earlier run saved for this cell (same :func:`cell_key`), or None."""
    path = _cell_path(cells_dir, spec, cell, data_dir)
    return path if path.is_file() else None


def _save_cell(path: Path, rows: list[dict]) -> None:
    """The cell's rows, written whole or not at all (a partly written file never looks done)."""
    write_whole(path, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))


def _read_cell(path: Path) -> list[dict] | None:
    """A saved cell's rows; None (run it again) if the file cannot be read, as a damaged disk or
    a file not written by :func:`_save_cell` may leave it."""
    try:
        return pd.read_parquet(path).to_dict("records")
    except (OSError, ValueError) as exc:  # (pyarrow's errors derive from these)
        warnings.warn(f"sweep: {path} cannot be read ({exc}); its cell is run again", stacklevel=3)
        return None


def describe_cell(cell: Cell) -> str:
    """'cell 3 (fleet x2, 1 fiber pairs, 2023-03-06 00:00 .. 2023-03-13 00:00 JST)'."""
    return (f"cell {cell.index} (fleet x{cell.fleet_scale:g}, {cell.fiber_pairs} fiber pairs, "
            f"{jst_minute(cell.start)} .. {jst_minute(cell.end)} JST)")


def check_cells(spec: SweepSpec, data_dir: Path | None = None) -> None:
    """Refuse, before anything runs, cells that cannot run: a period the grid data do not cover
    or that does not start on the slot grid, or a scaled fleet the jobs cannot run on (a site
    smaller than one node for the built workload; for given jobs, :func:`check_jobs`)."""
    from wattbit.grid import signal_span
    from wattbit.workload import check_jobs, check_workload_fleet

    cells = sweep_cells(spec)
    first, last = signal_span(data_dir)
    outside = [c for c in cells if c.start < first or c.end > last]
    if outside:
        raise InvalidInput(
            f"sweep {spec.name!r}: {len(outside)} of {len(cells)} cells lie outside the grid data, "
            f"which cover {jst_minute(first)} .. {jst_minute(last)} "
            f"JST ({'the bundled dataset' if data_dir is None else data_dir}): "
            + "; ".join(describe_cell(c) for c in outside[:3]) + ("; ..." if len(outside) > 3 else "")
            + ". Choose periods inside the data, or import newer files (wattbit data import) and "
            "pass --data")
    step = pd.Timedelta(seconds=spec.base.step_s)
    off_grid = [c for c in cells if (c.start - pd.Timestamp("2000-01-01", tz="UTC")) % step]
    if off_grid:
        raise InvalidInput(
            f"sweep {spec.name!r}: {describe_cell(off_grid[0])} does not start on the "
            f"{spec.base.step_s / 60:g}-minute slot grid; start periods on a slot (e.g. :00 or :30)")
    for scale in dict.fromkeys(spec.fleet_scale):
        fleet = scaled_fleet(spec.base.fleet, scale)
        try:
            if spec.jobs is None:
                check_workload_fleet(fleet)
            else:
                check_jobs(fleet, spec.jobs)
        except InvalidInput as exc:
            raise InvalidInput(f"sweep {spec.name!r}, fleet_scale {scale:g}: {exc}") from None


def _ray_engine(address: str | None, workers: int | None):
    """(ray module, engine description, whether we started it) or raise MissingExtra."""
    from wattbit.errors import require_extra

    ray = require_extra("ray", "scale")
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                     logging_level="ERROR", log_to_driver=False)
        started = True
    cpus = int(ray.cluster_resources().get("CPU", 0))
    where = f"cluster at {address}" if address else "local instance"
    return ray, f"ray {ray.__version__} ({where}, {cpus} CPUs)", started


def run_sweep(spec: SweepSpec, *, address: str | None = None, workers: int | None = None,
              data_dir: Path | None = None,
              on_cell: Callable[[Cell, int, int], None] | None = None,
              cells_dir: Path | None = None, resume: bool = False,
              on_slot: Callable[[Cell, str, int, int], None] | None = None) -> SweepResult:
    """Run every cell of a sweep in parallel.

    address : join the Ray cluster at this address (``ray://host:10001`` or ``host:6379``);
    workers : CPUs of a local Ray instance, or with 0 the standard library's process pool (as
    many workers as cores) instead of Ray; None: Ray if installed, else the process pool;
    data_dir : grid dataset folder (default: the bundled one; on a cluster it must exist on every
    node);  on_cell(cell, done, total) : called as each cell that runs finishes (done and total
    count the cells that run);  cells_dir : folder where each cell's rows are written as it finishes;
    resume : take the cells already in ``cells_dir`` (same :func:`cell_key`) instead of running
    them again;  on_slot(cell, policy, slot, slots) : progress inside the running cells, a few
    hundred times per policy run (for progress bars; called from a thread of this process).
    Cells that cannot run are refused before anything runs (:func:`check_cells`). A cell whose
    process is lost (killed, out of memory, its node gone) runs again, up to
    :data:`CELL_RETRIES` times. A cell that raises does not stop the others: they all run to
    the end (and are saved), and then :class:`wattbit.errors.SweepFailed` names each failed cell
    with its error and carries the result of the others (``.result``).
    """
    from wattbit.sim.run import relay, single_threaded_workers

    t0 = _time.perf_counter()
    if resume and cells_dir is None:
        raise InvalidInput(f"sweep {spec.name!r}: resume needs the cells_dir an earlier run wrote its cells to")
    check_cells(spec, data_dir)
    rows: list[dict] = []
    reused: list[int] = []
    cells = []
    for cell in sweep_cells(spec):
        path = saved_cell(cells_dir, spec, cell, data_dir) if resume else None
        saved = _read_cell(path) if path is not None else None
        if saved is not None:
            rows.extend(saved)
            reused.append(cell.index)
        else:
            cells.append(cell)

    done = 0
    failures: list[tuple[Cell, str]] = []

    def finished(cell: Cell, cell_rows: list[dict]) -> None:
        nonlocal done
        done += 1
        rows.extend(cell_rows)
        if cells_dir is not None:
            _save_cell(_cell_path(cells_dir, spec, cell, data_dir), cell_rows)
        if on_cell:
            on_cell(cell, done, len(cells))

    def failed(cell: Cell, exc: BaseException | str) -> None:
        cause = getattr(exc, "cause", None)  # Ray wraps the cell's own exception
        err = cause if isinstance(cause, BaseException) else exc
        failures.append((cell, err if isinstance(err, str) else f"{type(err).__name__}: {err}"))

    by_index = {c.index: c for c in cells}

    def forward(item: tuple) -> None:  # a progress report from a running cell
        index, policy, i, n = item
        on_slot(by_index[index], policy, i, n)

    engine = None
    if not cells:
        engine = "none: every cell was taken from an earlier run"
    elif workers != 0:
        try:
            ray, engine, started = _ray_engine(address, workers)
        except MissingExtra:
            if address or workers:
                raise
            engine = None
        if engine is not None:
            try:
                queue = None
                if on_slot is not None:
                    from ray.util.queue import Queue

                    queue = Queue()
                with relay(queue, forward):
                    _run_on_ray(ray, spec, cells, data_dir, queue, finished, failed)
            finally:
                if started:
                    ray.shutdown()
    if engine is None:
        import multiprocessing

        n = os.cpu_count() or 1
        why = "workers = 0" if workers == 0 else "ray is not installed (pip install 'wattbit[scale]')"
        engine = f"process pool ({n} workers; {why})"
        ctx = multiprocessing.get_context("spawn")
        manager = ctx.Manager() if on_slot is not None else None
        queue = manager.Queue() if manager is not None else None
        try:
            with relay(queue, forward), single_threaded_workers():
                _run_on_pool(ctx, n, spec, cells, data_dir, queue, finished, failed)
        finally:
            if manager is not None:
                manager.shutdown()
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(["cell", "policy"], kind="stable").reset_index(drop=True)
    failures.sort(key=lambda f: f[0].index)
    result = SweepResult(spec, table, engine, _time.perf_counter() - t0, tuple(sorted(reused)),
                         tuple((c.index, msg) for c, msg in failures))
    if failures:
        what = "; ".join(f"{describe_cell(c)}: {msg.rstrip('. ')}" for c, msg in failures)
        if not done:
            kept = "no cell finished"
        elif cells_dir is not None:
            kept = (f"the other {done} finished and are saved in {cells_dir}; fix the cause and run the "
                    "sweep again with resume (wattbit sweep --resume) to run only the failed cells")
        else:
            kept = f"the other {done} finished"
        raise SweepFailed(f"sweep {spec.name!r}: {len(failures)} of {len(cells)} cells failed: {what}. {kept}",
                          result)
    return result


def _run_on_ray(ray, spec: SweepSpec, cells: Sequence[Cell], data_dir: Path | None, queue,
                finished: Callable, failed: Callable) -> None:
    """Every cell as a Ray task. A task whose worker is lost runs again (``max_retries``); the
    cell's own error is raised by ``ray.get`` and not retried."""
    task = ray.remote(num_cpus=1, max_retries=CELL_RETRIES)(run_cell)
    base_ref, jobs_ref = ray.put(spec.base), ray.put(spec.jobs)
    pending = {task.remote(base_ref, c, spec.policies, jobs_ref, data_dir, queue): c for c in cells}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(ready[0])
        try:
            cell_rows = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - any cell's error is reported, the others run on
            failed(cell, exc)
        else:
            finished(cell, cell_rows)


def _run_on_pool(ctx, workers: int, spec: SweepSpec, cells: Sequence[Cell], data_dir: Path | None,
                 queue, finished: Callable, failed: Callable) -> None:
    """Every cell on a process pool of ``workers``. A lost worker breaks the whole pool: the
    cells it was running, and those not yet started, run again in a fresh one, up to
    :data:`CELL_RETRIES` times."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from wattbit.sim.run import start_worker

    todo = list(cells)
    for _ in range(CELL_RETRIES + 1):
        lost: list[Cell] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=start_worker) as pool:
            futures = {pool.submit(run_cell, spec.base, c, spec.policies, spec.jobs, data_dir, queue): c
                       for c in todo}
            for fut in as_completed(futures):
                try:
                    cell_rows = fut.result()
                except BrokenProcessPool:
                    lost.append(futures[fut])
                except Exception as exc:  # noqa: BLE001 - reported at the end, the others run on
                    failed(futures[fut], exc)
                else:
                    finished(futures[fut], cell_rows)
        todo = sorted(lost, key=lambda c: c.index)
        if not todo:
            return
    for cell in todo:
        failed(cell, f"its worker process was lost {CELL_RETRIES + 1} time(s) (killed, or out of memory)")


def summary_markdown(result: SweepResult) -> str:
    """A short markdown report: what ran where, and the headline KPIs per cell and policy."""
    spec, t = result.spec, result.table
    cells = sweep_cells(spec)
    cell_s = t.drop_duplicates("cell")["cell_wall_s"].sum() if len(t) else 0.0
    lines = [
        f"# Sweep {spec.name}", "",
        (f"Base scenario `{spec.base.name}` (fleet {spec.base.fleet.name}); {len(cells)} cells × "
         f"{len(spec.policies)} policies ({', '.join(spec.policies)}); ran on {result.engine} in "
         f"{result.wall_s:,.1f} s (sum of cell times {cell_s:,.1f} s)."
         + (f" Taken from an earlier run of the same sweep: {len(result.reused)} of "
            f"{len(cells)} cells ({', '.join(map(str, result.reused))})." if result.reused else "")),
        "",
    ]
    head = ["cell", "fleet ×", "GPUs", "fiber pairs", "period (JST)", "policy"] + [h for _, h, _ in KPI_SUMMARY]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.itertuples(index=False):
        r = r._asdict()
        period = (f"{jst_minute(r['period_start'])} .. "
                  f"{jst_minute(r['period_end'])}")
        row = [str(r["cell"]), f"{r['fleet_scale']:g}", f"{r['fleet_gpus']:,}", str(r["fiber_pairs"]),
               period, r["policy"]]
        row += [fmt.format(r[k]) if k in r and pd.notna(r[k]) else "-" for k, _, fmt in KPI_SUMMARY]
        lines.append("| " + " | ".join(row) + " |")
    if "wls" in spec.policies and "baseline" in spec.policies and len(t):
        w = t[t.policy == "wls"].set_index("cell")
        b = t[t.policy == "baseline"].set_index("cell")
        gain = (w["curtailment_absorbed_mwh"] - b["curtailment_absorbed_mwh"]).dropna()
        if len(gain):
            best = int(gain.idxmax())
            lines += ["", (f"Most curtailment absorbed by wls over baseline: cell {best} "
                           f"(+{gain.loc[best]:,.1f} MWh).")]
    if result.failed:
        by_index = {c.index: c for c in cells}
        lines += ["", f"**{len(result.failed)} of {len(cells)} cells failed** (no rows above):", ""]
        lines += [f"- {describe_cell(by_index[i])}: {msg}" for i, msg in result.failed]
    return "\n".join(lines) + "\n"


def write_sweep(result: SweepResult, out_dir: Path) -> dict[str, Path]:
    """Write ``sweep.parquet`` (the table) and ``summary.md``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"table": out_dir / "sweep.parquet", "summary": out_dir / "summary.md"}
    # each written whole or not at all: an interrupted write leaves the last good file in place
    write_whole(paths["table"], lambda tmp: result.table.to_parquet(tmp, index=False))
    write_whole(paths["summary"], lambda tmp: tmp.write_text(summary_markdown(result), encoding="utf-8"))
    return paths
