"""`wattbit serve`: its options reach the service's Settings; bad values are refused with the fix.
`wattbit simulate --workers`: the policies run side by side and the outputs are the same.
`wattbit sweep --resume`: a second run takes the cells the first one saved.

``serve --check`` builds the settings and prints them without starting the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from wattbit.cli import app, main
from wattbit.errors import InvalidInput, SweepFailed

runner = CliRunner()
NO_ENV = {"WATTBIT_REPLAY_START": None, "WATTBIT_ADMIN_TOKEN": None}


def _check(tmp_path, *args: str, env: dict[str, str | None] = NO_ENV) -> str:
    result = runner.invoke(app, ["serve", "--check", "--state-dir", str(tmp_path), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_serve_replay_start_reaches_settings_in_utc(tmp_path):
    out = _check(tmp_path, "--replay-start", "2022-08-01T18:00+09:00")
    assert "replay_start = 2022-08-01 09:00:00+00:00" in out.splitlines()
    assert "replay_start = None" in _check(tmp_path).splitlines()  # unset: the live instant's season


def test_serve_replay_start_defaults_to_the_environment(tmp_path):
    env = {**NO_ENV, "WATTBIT_REPLAY_START": "2022-08-01T18:00+09:00"}
    assert "replay_start = 2022-08-01 09:00:00+00:00" in _check(tmp_path, env=env).splitlines()
    # the option wins over the variable
    out = _check(tmp_path, "--replay-start", "2022-02-01T06:00+09:00", env=env)
    assert "replay_start = 2022-01-31 21:00:00+00:00" in out.splitlines()


def _run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["wattbit", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("source", ["option", "environment"])
def test_serve_refuses_a_naive_replay_start_saying_to_add_the_offset(tmp_path, monkeypatch, capsys, source):
    monkeypatch.delenv("WATTBIT_ADMIN_TOKEN", raising=False)
    args = ["serve", "--check", "--state-dir", str(tmp_path)]
    if source == "option":
        monkeypatch.delenv("WATTBIT_REPLAY_START", raising=False)
        args += ["--replay-start", "2022-08-01T18:00"]
        name = "--replay-start"
    else:
        monkeypatch.setenv("WATTBIT_REPLAY_START", "2022-08-01T18:00")
        name = "WATTBIT_REPLAY_START"
    code, out = _run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert (f"error: {name} = '2022-08-01T18:00' has no time zone; add its offset, "
            "e.g. 2022-08-01T18:00+09:00 for JST") in out
    assert "replay_start =" not in out  # refused before any settings were printed


def test_serve_refuses_a_replay_start_that_is_not_an_instant(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WATTBIT_REPLAY_START", raising=False)
    code, out = _run_main(monkeypatch, capsys, "serve", "--check", "--state-dir", str(tmp_path),
                          "--replay-start", "tomorrow at six")
    assert code == 2
    assert "--replay-start = 'tomorrow at six' is not an ISO 8601 instant; write e.g. 2022-08-01T18:00+09:00" in out


def test_an_error_keeps_the_brackets_of_the_section_it_names(tmp_path, monkeypatch, capsys):
    """A message names a section as "[workload]": printed as text, not read as terminal markup."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[period]\nstart = "2023-03-06 00:00"\nend = "2023-03-07 00:00"\n'
                   "[workload]\nutilisation = 0.5\n", encoding="utf-8")
    code, out = _run_main(monkeypatch, capsys, "simulate", "--scenario", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "[workload]: unknown field 'utilisation'" in out, out


@pytest.mark.parametrize("args", [["simulate", "--start", "yesterday"],
                                  ["fleet", "workload", "--start", "garbage"],
                                  ["data", "forecast-error", "--end", "garbage"],
                                  ["fleet", "workload", "--end", ""]])
def test_a_date_that_is_no_date_is_refused_naming_the_option(monkeypatch, capsys, args):
    code, out = _run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert f"error: {args[-2]} = '{args[-1]}' is not a date or time; give e.g. 2023-03-06" in out


def test_help_shows_the_units_in_brackets():
    result = runner.invoke(app, ["data", "forecast-error", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Slot length [s]: 1800 or 3600." in result.output and "Forecast horizon [h]." in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "oracle"], "policy = 'oracle' plans with the real future known"),
    (["--policy", "wsl"], "policy 'wsl' not found; did you mean 'wls'?"),
    (["--fleet", "nosuch"], "fleet 'nosuch' not found"),
    (["--slurm", "nosuch.toml"], "slurm clusters file 'nosuch.toml' does not exist"),
    (["--replay-start", "2030-08-01T18:00+09:00"],
     "replay_start = 2030-08-01 18:00 JST: the recorded grid covers 2021-04-01 00:00 JST .. 2023-04-01 00:00 JST"),
])
def test_serve_check_refuses_what_the_start_would_refuse(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.delenv("WATTBIT_REPLAY_START", raising=False)
    monkeypatch.delenv("WATTBIT_ADMIN_TOKEN", raising=False)
    code, out = _run_main(monkeypatch, capsys, "serve", "--check", "--state-dir", str(tmp_path), *args)
    assert code == 2 and message in out, out
    assert not (tmp_path / "wattbit.db").exists()


def test_simulate_runs_policies_side_by_side_with_the_same_outputs(tmp_path):
    """A day of the default scenario (its jobs run on to their deadlines) under two policies,
    once in two worker processes and once in this one: the same KPI table."""
    args = ["simulate", "--start", "2023-03-06 00:00", "--end", "2023-03-07 00:00",
            "-p", "baseline", "-p", "temporal", "--no-report"]
    tables = {}
    for workers in ("2", "1"):
        out = tmp_path / workers
        result = runner.invoke(app, [*args, "--workers", workers, "--out", str(out)])
        assert result.exit_code == 0, result.output
        lines = (out / "kpis.txt").read_text(encoding="utf-8").splitlines()
        tables[workers] = [ln for ln in lines if not ln.startswith(("decision time", "DR response"))]
    assert tables["2"] == tables["1"]
    assert "baseline" in tables["2"][0] and "temporal" in tables["2"][0]


def test_simulate_cut_in_chunks_writes_the_same_baseline(tmp_path):
    """The baseline decides each slot from the slot alone: cut in time or not, the same table."""
    args = ["simulate", "--start", "2023-03-06 00:00", "--end", "2023-03-07 00:00", "-p", "baseline", "--no-report"]
    tables = {}
    for chunks in ("1", "3"):
        out = tmp_path / chunks
        result = runner.invoke(app, [*args, "--chunks", chunks, "--workers", "1", "--out", str(out)])
        assert result.exit_code == 0, result.output
        lines = (out / "kpis.txt").read_text(encoding="utf-8").splitlines()
        tables[chunks] = [ln for ln in lines if not ln.startswith(("decision time", "DR response"))]
    assert tables["3"] == tables["1"]


def test_simulate_refuses_to_cut_the_oracle(tmp_path):
    result = runner.invoke(app, ["simulate", "-p", "oracle", "--chunks", "2", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "chunks = 1" in str(result.exception) + result.output


def test_simulate_refuses_an_output_folder_that_is_a_file_before_it_runs(tmp_path, monkeypatch):
    import wattbit.sim.run as run_module

    def build_world(*args, **kwargs):
        raise AssertionError("the world was built before the output folder was checked")

    monkeypatch.setattr(run_module, "build_world", build_world)
    taken = tmp_path / "out"
    taken.write_text("not a folder", encoding="utf-8")
    result = runner.invoke(app, ["simulate", "-p", "baseline", "--out", str(taken)])
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "is a file, not a folder" in message and "--out" in message
    assert taken.read_text(encoding="utf-8") == "not a folder"  # left as it was


def test_simulate_refuses_zero_workers(tmp_path):
    result = runner.invoke(app, ["simulate", "--workers", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--workers" in result.output


def _sweep_file(tmp_path, policies: str, *periods: tuple[str, str]):
    """A sweep of the default scenario over ``periods`` (JST), and the folder for its outputs."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"scenario: default\npolicies: [{policies}]\nperiods:\n"
                     + "".join(f"  - ['{a}', '{b}']\n" for a, b in periods), encoding="utf-8")
    return sweep, tmp_path / "out"


SIX_HOURS = (("2023-03-06 00:00", "2023-03-06 06:00"), ("2023-03-06 06:00", "2023-03-06 12:00"))


def test_sweep_saves_its_cells_and_resume_takes_them(tmp_path):
    """Two 6-hour cells of the default scenario under baseline, on the process pool; run again
    with --resume, nothing runs and the table is the same."""
    sweep, out = _sweep_file(tmp_path, "baseline", *SIX_HOURS)
    first = runner.invoke(app, ["sweep", str(sweep), "--workers", "0", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert len(list((out / "cells").glob("cell-*.parquet"))) == 2
    table = pd.read_parquet(out / "sweep.parquet")
    again = runner.invoke(app, ["sweep", str(sweep), "--workers", "0", "--out", str(out), "--resume"])
    assert again.exit_code == 0, again.output
    assert "2 of 2 cells taken from" in again.output and ") done (" not in " ".join(again.output.split())
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), table)


def test_a_sweep_with_a_cell_that_cannot_run_is_refused_before_any_runs(tmp_path):
    sweep, out = _sweep_file(tmp_path, "baseline", SIX_HOURS[0], ("2030-03-06 00:00", "2030-03-06 06:00"))
    result = runner.invoke(app, ["sweep", str(sweep), "--workers", "0", "--out", str(out)])
    assert isinstance(result.exception, InvalidInput)
    assert "1 of 2 cells lie outside the grid data" in str(result.exception) and "cell 1 (" in str(result.exception)
    assert "done (" not in result.output and "sweep stopped" not in result.output
    assert not (out / "cells").exists()


def test_a_sweep_with_a_failing_cell_writes_the_others_and_names_it(tmp_path, monkeypatch):
    """Cell 1 raises (the runner of tests/sim/_failing_cell.py, which the spawned workers import
    from the path they inherit): cell 0 still runs, and its outputs are written."""
    from pathlib import Path

    from wattbit.sim import sweep as sweep_module

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "sim"))
    failing = __import__("_failing_cell")
    monkeypatch.setattr(sweep_module, "run_cell", failing.run_cell_failing_in_cell_1)
    sweep, out = _sweep_file(tmp_path, "baseline", *SIX_HOURS)
    result = runner.invoke(app, ["sweep", str(sweep), "--workers", "0", "--out", str(out)])
    assert isinstance(result.exception, SweepFailed), result.output
    assert str(result.exception).startswith("sweep 's': 1 of 2 cells failed: cell 1 (")
    text = " ".join(result.output.split())
    assert "**1 of 2 cells failed** (no rows above): - cell 1 (" in text and "SolverError: HiGHS ended" in text
    assert "outputs of the cells that finished:" in text and "sweep stopped" not in text
    assert pd.read_parquet(out / "sweep.parquet").cell.tolist() == [0]
    assert "cells failed" in (out / "summary.md").read_text(encoding="utf-8")


def test_an_interrupted_sweep_keeps_its_finished_cells_and_resume_runs_the_rest(tmp_path):
    """Ctrl-C (SIGINT to the sweep's process group) once its first cell is saved: it stops, says
    what it kept, and --resume then takes the saved cells and runs only the others."""
    sweep, out = _sweep_file(tmp_path, "baseline, wls", *SIX_HOURS, ("2023-03-07 00:00", "2023-03-08 00:00"),
                             ("2023-03-08 00:00", "2023-03-09 00:00"))
    # Ctrl-C as a terminal gives it: a suite started in the background (`make test &`) ignores
    # SIGINT, and its children inherit that, so the sweep would run on to the end; the child
    # therefore installs Python's own handler before it starts the CLI
    prelude = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "sys.argv[0] = 'wattbit'; runpy.run_module('wattbit.cli', run_name='__main__')")
    args = [sys.executable, "-c", prelude, "sweep", str(sweep), "--workers", "0", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "COLUMNS": "1000"})
    try:
        deadline = time.monotonic() + 120
        while not list((out / "cells").glob("cell-*.parquet")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no cell finished within 120 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    saved = sorted((out / "cells").glob("cell-*.parquet"))
    assert 1 <= len(saved) < 4 and not (out / "sweep.parquet").exists(), output
    assert proc.returncode != 0
    assert " ".join(output.split()).count(
        f"sweep stopped: {len(saved)} of 4 cells finished and are saved in {out / 'cells'}; run it "
        "again with --resume to run only the others") == 1
    resumed = runner.invoke(app, ["sweep", str(sweep), "--workers", "0", "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(saved)} of 4 cells taken from" in resumed.output
    assert " ".join(resumed.output.split()).count(") done (") == 4 - len(saved)
    table = pd.read_parquet(out / "sweep.parquet")
    assert sorted(table.cell.unique()) == [0, 1, 2, 3] and len(table) == 8
    for path in saved:  # the saved cells' rows, as they were written
        rows = pd.read_parquet(path)
        got = table[table.cell == rows.cell.iloc[0]].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[rows.columns], rows, check_dtype=False)
