"""Scenario sweeps: the sweep file, the cells, and a small sweep on local Ray (and on the
standard library's process pool)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattbit.domain import JobKind
from wattbit.errors import InvalidInput, SweepFailed
from wattbit.examples import tiny_fleet, tiny_jobs, tiny_scenario
from wattbit.sim import sweep as sweep_module
from wattbit.sim.sweep import (
    CELL_RETRIES,
    MEASURED_COLUMNS,
    SweepSpec,
    cell_key,
    load_sweep,
    run_sweep,
    scaled_fleet,
    summary_markdown,
    sweep_cells,
    write_sweep,
)


def _jst(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Tokyo").tz_convert("UTC")


# two 6-hour periods of the tiny scenario's Saturday
PERIODS = ((_jst("2023-03-18 00:00"), _jst("2023-03-18 06:00")),
           (_jst("2023-03-18 06:00"), _jst("2023-03-18 12:00")))


def _small_spec(periods=PERIODS[:1], fleet_scale=(1.0, 2.0)) -> SweepSpec:
    return SweepSpec("tiny-sweep", tiny_scenario(), ("baseline", "wls"), fleet_scale, (1,),
                     periods, jobs=tuple(tiny_jobs()))


def _check_table(table: pd.DataFrame, spec: SweepSpec) -> None:
    cells = sweep_cells(spec)
    assert len(table) == len(cells) * len(spec.policies)
    assert not table.duplicated(["cell", "policy"]).any()
    for cell in cells:
        rows = table[table.cell == cell.index]
        assert set(rows.policy) == set(spec.policies)
        assert (rows.fleet_scale == cell.fleet_scale).all()
        assert (rows.fleet_gpus == round(tiny_fleet().gpu_count * cell.fleet_scale)).all()
        released = [j for j in tiny_jobs() if cell.start <= j.release < cell.end]
        assert (rows.jobs == len(released)).all()
        # every batch job released in the period finishes in every policy: work is conserved
        work = sum(j.work_gpu_h for j in released if j.kind is not JobKind.ONLINE_INFERENCE)
        assert rows.work_done_gpu_h.to_numpy() == pytest.approx(work)
        assert (rows.deadline_misses == 0).all()
    # a bigger fleet draws more power for the same jobs (idle GPUs count)
    by_scale = table[table.policy == "baseline"].groupby("fleet_scale").energy_mwh.sum()
    assert by_scale.is_monotonic_increasing


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'wattbit[scale]')")
def test_small_sweep_on_local_ray(tmp_path):
    spec = _small_spec()
    seen, slots = [], []
    result = run_sweep(spec, workers=2, on_cell=lambda c, k, n: seen.append((c.index, k, n)),
                       on_slot=lambda c, p, i, n: slots.append((c.index, p, i, n)))
    assert result.engine.startswith("ray ")
    assert sorted(i for i, _, _ in seen) == [0, 1] and seen[-1][1:] == (2, 2)
    _check_table(result.table, spec)
    _check_progress(slots, result.table)
    paths = write_sweep(result, tmp_path)
    back = pd.read_parquet(paths["table"])
    assert len(back) == len(result.table)
    assert {"fleet_scale", "fiber_pairs", "period_start", "period_end", "policy"} <= set(back.columns)
    summary = paths["summary"].read_text(encoding="utf-8")
    assert "ray" in summary and "| wls |" in summary


def _check_progress(slots: list[tuple], table: pd.DataFrame) -> None:
    """Each cell × policy reported its slots in order, from the first to the last."""
    for row in table.itertuples():
        mine = [(i, n) for c, p, i, n in slots if (c, p) == (row.cell, row.policy)]
        assert mine[0] == (0, row.slots) and mine[-1] == (row.slots - 1, row.slots)
        assert [i for i, _ in mine] == sorted({i for i, _ in mine}) and len(mine) > 2


def test_process_pool_without_ray():
    spec = _small_spec(fleet_scale=(1.0,))
    slots = []
    result = run_sweep(spec, workers=0, on_slot=lambda c, p, i, n: slots.append((c.index, p, i, n)))
    assert result.engine.startswith("process pool") and "workers = 0" in result.engine
    _check_table(result.table, spec)
    _check_progress(slots, result.table)


def _without_timing(table: pd.DataFrame) -> pd.DataFrame:
    """The rows without the measured wall times, which differ between runs of the same cell."""
    return table.drop(columns=list(MEASURED_COLUMNS & set(table.columns))).reset_index(drop=True)


def test_cells_are_saved_as_they_finish_and_a_resumed_sweep_runs_only_the_missing(tmp_path):
    spec = _small_spec(periods=PERIODS, fleet_scale=(1.0,))
    cells_dir = tmp_path / "cells"
    first = run_sweep(spec, workers=0, cells_dir=cells_dir)
    files = sorted(cells_dir.glob("cell-*.parquet"))
    assert [f.name for f in files] == [f"cell-{c.index:04d}-{cell_key(spec, c)}.parquet" for c in sweep_cells(spec)]
    assert first.reused == () and not list(cells_dir.glob("*.tmp"))
    # as if the sweep had been interrupted before cell 1 finished; and cell 0's saved rows marked,
    # to see that the resumed sweep reads them rather than running the cell again
    files[1].unlink()
    saved = pd.read_parquet(files[0])
    saved["energy_mwh"] = -1.0
    saved.to_parquet(files[0], index=False)
    ran = []
    second = run_sweep(spec, workers=0, cells_dir=cells_dir, resume=True,
                       on_cell=lambda c, k, n: ran.append((c.index, k, n)))
    assert second.reused == (0,) and ran == [(1, 1, 1)]
    assert (second.table.loc[second.table.cell == 0, "energy_mwh"] == -1.0).all()
    pd.testing.assert_frame_equal(  # the cell that ran again: the same results
        _without_timing(second.table[second.table.cell == 1]), _without_timing(first.table[first.table.cell == 1]))
    assert list(second.table.columns) == list(first.table.columns)
    assert "Taken from an earlier run of the same sweep: 1 of 2 cells (0)." in summary_markdown(second)
    # everything there: nothing runs; without resume, everything runs again
    third = run_sweep(spec, workers=0, cells_dir=cells_dir, resume=True)
    assert third.reused == (0, 1) and third.engine.startswith("none")
    fourth = run_sweep(spec, workers=0, cells_dir=cells_dir)
    assert fourth.reused == () and (fourth.table.energy_mwh > 0).all()
    # a saved cell the disk damaged is run again, and said so
    files[1].write_bytes(b"not parquet")
    with pytest.warns(UserWarning, match="cannot be read .* its cell is run again"):
        fifth = run_sweep(spec, workers=0, cells_dir=cells_dir, resume=True)
    assert fifth.reused == (0,)


def test_a_failing_cell_does_not_stop_the_others(tmp_path, monkeypatch):
    spec = _small_spec(periods=PERIODS, fleet_scale=(1.0,))  # cells 0 and 1
    clean = run_sweep(spec, workers=0)
    # the workers are spawned: they import the failing runner from its module, on the path they inherit
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    failing = importlib.import_module("_failing_cell")
    monkeypatch.setattr(sweep_module, "run_cell", failing.run_cell_failing_in_cell_1)
    cells_dir = tmp_path / "cells"
    with pytest.raises(SweepFailed) as caught:
        run_sweep(spec, workers=0, cells_dir=cells_dir)
    exc = caught.value
    message = str(exc)
    assert message.startswith("sweep 'tiny-sweep': 1 of 2 cells failed: cell 1 (fleet x1, 1 fiber pairs, "
                              "2023-03-18 06:00 .. 2023-03-18 12:00 JST): SolverError: HiGHS ended")
    assert f"the other 1 finished and are saved in {cells_dir}" in message and "--resume" in message
    assert [i for i, _ in exc.result.failed] == [1]
    # the cell that did not fail ran to the end, was saved, and gives the same rows as in a clean run
    pd.testing.assert_frame_equal(_without_timing(exc.result.table),
                                  _without_timing(clean.table[clean.table.cell == 0]))
    assert [f.name for f in cells_dir.glob("cell-*.parquet")] == [
        f"cell-0000-{cell_key(spec, sweep_cells(spec)[0])}.parquet"]
    summary = summary_markdown(exc.result)
    assert "**1 of 2 cells failed** (no rows above):" in summary
    assert "- cell 1 (fleet x1, 1 fiber pairs, 2023-03-18 06:00 .. 2023-03-18 12:00 JST): SolverError" in summary
    # once the cause is gone, resume runs the failed cell alone
    monkeypatch.undo()
    ran = []
    resumed = run_sweep(spec, workers=0, cells_dir=cells_dir, resume=True,
                        on_cell=lambda c, k, n: ran.append(c.index))
    assert ran == [1] and resumed.failed == ()
    pd.testing.assert_frame_equal(_without_timing(resumed.table), _without_timing(clean.table))


def _kill(match) -> list[int]:
    """SIGKILL this user's processes whose command line passes ``match``; their pids."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if proc.stat().st_uid != os.getuid():
                continue
            argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            if argv and match(int(proc.name), argv):
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile
    return killed


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_cells_whose_worker_process_is_killed_run_again(tmp_path):
    """A lost worker (killed, out of memory) breaks the process pool; its cells run again in a fresh one."""
    spec = _small_spec(periods=PERIODS, fleet_scale=(1.0, 2.0))  # 4 cells on the pool's workers
    clean = run_sweep(spec, workers=0)
    me = os.getpid()
    killed: list[int] = []

    def on_cell(cell, done: int, total: int) -> None:
        if done == 1:  # the others are running or waiting: kill every worker of the pool
            killed.extend(_kill(lambda pid, argv: _parent(pid) == me and any("spawn_main" in a for a in argv)))

    result = run_sweep(spec, workers=0, cells_dir=tmp_path, on_cell=on_cell)
    assert killed and CELL_RETRIES >= 1
    assert result.failed == ()
    pd.testing.assert_frame_equal(_without_timing(result.table), _without_timing(clean.table))
    assert len(list(tmp_path.glob("cell-*.parquet"))) == 4


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'wattbit[scale]')")
def test_a_cell_whose_ray_worker_is_killed_runs_again():
    spec = _small_spec(periods=PERIODS, fleet_scale=(1.0, 2.0))
    killed: list[int] = []

    def on_slot(cell, policy: str, i: int, n: int) -> None:
        # at a cell's first slot (reported by the cell itself, so it is running), once: Ray names
        # the process of a running task after its function
        if i == 0 and not killed:
            killed.extend(_kill(lambda pid, argv: argv[0].startswith("ray::run_cell")))

    result = run_sweep(spec, workers=2, on_slot=on_slot)
    assert killed, "no Ray worker was running a cell at a cell's first slot"
    assert result.failed == () and result.engine.startswith("ray ")
    _check_table(result.table, spec)


def test_a_cell_key_changes_with_what_its_result_depends_on(tmp_path):
    spec = _small_spec()
    cell = sweep_cells(spec)[0]
    key = cell_key(spec, cell)
    assert key == cell_key(_small_spec(), sweep_cells(_small_spec())[0])  # same inputs, same key
    others = [
        dataclasses.replace(spec, policies=("wls",)),
        dataclasses.replace(spec, base=dataclasses.replace(spec.base, replan_slots=2)),
        dataclasses.replace(spec, jobs=spec.jobs[1:]),
    ]
    assert all(cell_key(o, cell) != key for o in others)
    assert cell_key(spec, dataclasses.replace(cell, fiber_pairs=2)) != key
    assert cell_key(spec, cell, data_dir=tmp_path) != key
    # a dataset imported again into the same folder is other data; the same files, the same key
    data = tmp_path / "data"
    data.mkdir()
    (data / "hourly.parquet").write_bytes(b"first import")
    first = cell_key(spec, cell, data_dir=data)
    assert cell_key(spec, cell, data_dir=data) == first
    (data / "hourly.parquet").write_bytes(b"second import")
    assert cell_key(spec, cell, data_dir=data) != first
    # the same in another process, whatever its string hashing (the jobs' areas are frozensets)
    code = ("import pandas as pd; from wattbit.examples import tiny_jobs, tiny_scenario; "
            "from wattbit.sim.sweep import SweepSpec, cell_key, sweep_cells; "
            "t = lambda x: pd.Timestamp(x, tz='Asia/Tokyo').tz_convert('UTC'); "
            "s = SweepSpec('tiny-sweep', tiny_scenario(), ('baseline', 'wls'), (1.0, 2.0), (1,), "
            "((t('2023-03-18 00:00'), t('2023-03-18 06:00')),), jobs=tuple(tiny_jobs())); "
            "print(cell_key(s, sweep_cells(s)[0]))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == key
    with pytest.raises(InvalidInput, match="resume needs the cells_dir"):
        run_sweep(spec, workers=0, resume=True)


@pytest.mark.parametrize(("change", "message"), [
    ({"periods": ((_jst("2030-01-01 00:00"), _jst("2030-01-01 06:00")),)},
     (r"1 of 1 cells lie outside the grid data, which cover .* JST \(the bundled dataset\): cell 0 "
      r"\(fleet x1, 1 fiber pairs, 2030-01-01 00:00 .. 2030-01-01 06:00 JST\)")),
    ({"periods": ((_jst("2023-03-18 00:10"), _jst("2023-03-18 06:00")),)},
     "does not start on the 30-minute slot grid"),
    ({"fleet_scale": (1.0, 0.001), "jobs": None},
     r"fleet_scale 0.001: fleet 'tiny-3-x0.001': site .* has 1 GPU\(s\) \(and 2 more sites"),
    ({"fleet_scale": (0.1,)}, r"fleet_scale 0.1: job .*: gpus = \d+ but the largest site"),
])
def test_cells_that_cannot_run_are_refused_before_any_runs(tmp_path, change, message):
    spec = dataclasses.replace(_small_spec(fleet_scale=(1.0,)), **change)
    with pytest.raises(InvalidInput, match=message):
        run_sweep(spec, workers=0, cells_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_cells_cover_every_combination():
    spec = SweepSpec("s", tiny_scenario(), ("wls",), (0.5, 1.0), (1, 2, 4), PERIODS)
    cells = sweep_cells(spec)
    assert len(cells) == 2 * 3 * 2
    assert {(c.fleet_scale, c.fiber_pairs, c.start) for c in cells} == {
        (s, f, p[0]) for s in (0.5, 1.0) for f in (1, 2, 4) for p in PERIODS}
    # without periods, the base scenario's period
    only = sweep_cells(SweepSpec("s", tiny_scenario()))
    assert [(c.start, c.end) for c in only] == [(tiny_scenario().start, tiny_scenario().end)]


def test_scaled_fleet_scales_gpus_and_power():
    f = scaled_fleet(tiny_fleet(), 0.5)
    assert [s.gpu_count for s in f.sites] == [512, 256, 256]
    assert f.sites[0].it_power_max_mw == pytest.approx(0.7)
    assert scaled_fleet(tiny_fleet(), 1.0) == tiny_fleet()


def test_sweep_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: fiber\nscenario: default\npolicies: [baseline, wls]\nfleet_scale: [1, 2]\n"
        "fiber_pairs: [1, 4]\nperiods:\n  - ['2023-03-06 00:00', '2023-03-13 00:00']\n"
        "  - {start: '2022-08-01 00:00', end: '2022-08-08 00:00'}\n", encoding="utf-8")
    spec = load_sweep(path)
    assert spec.name == "fiber" and spec.base.name == "default"
    assert spec.fleet_scale == (1.0, 2.0) and spec.fiber_pairs == (1, 4)
    assert spec.periods[0] == (_jst("2023-03-06 00:00"), _jst("2023-03-13 00:00"))
    assert spec.periods[1][0] == _jst("2022-08-01 00:00")
    assert len(sweep_cells(spec)) == 8


@pytest.mark.parametrize(("text", "message"), [
    ("fleet_scales: [1]\n", "did you mean 'fleet_scale'"),
    ("fiber_pairs: [0]\n", "fiber_pairs value 0"),
    ("fiber_pairs: [true]\n", "fiber_pairs value True"),
    ("fleet_scale: [true]\n", "fleet_scale value True"),
    ("fleet_scale: ['2']\n", "fleet_scale value '2'"),
    ("policies: [wsl]\n", "did you mean 'wls'"),
    ("periods: [['2023-03-08', '2023-03-06']]\n", "ends before it starts"),
    ("periods: ['2023-03-08']\n", "expected [start, end]"),
    ("periods: [['', '2023-03-06']]\n", "start = '' is not a date-time"),
])
def test_bad_sweep_files_say_what_and_how(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_sweep(path)


def test_missing_sweep_file():
    with pytest.raises(InvalidInput, match="does not exist"):
        load_sweep("no/such/sweep.yaml")


def test_sweep_axes_take_numpy_numbers_and_keep_python_ones():
    spec = _small_spec(fleet_scale=(np.float64(1.0), np.int64(2)))
    spec = dataclasses.replace(spec, fiber_pairs=(np.int64(1), 2))
    assert spec.fleet_scale == (1.0, 2.0) and all(type(s) is float for s in spec.fleet_scale)
    assert spec.fiber_pairs == (1, 2) and all(type(f) is int for f in spec.fiber_pairs)


@pytest.mark.parametrize(("axis", "value"), [("fleet_scale", True), ("fleet_scale", 0), ("fiber_pairs", True),
                                             ("fiber_pairs", 1.5)])
def test_sweep_axes_refuse_bools_and_bad_numbers(axis, value):
    with pytest.raises(InvalidInput, match=f"{axis} value {value!r}"):
        dataclasses.replace(_small_spec(), **{axis: (value,)})
