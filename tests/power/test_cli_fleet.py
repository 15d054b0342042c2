"""`wattbit fleet show` and `wattbit fleet workload`: golden output and the mix beside the trace."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from wattbit.cli import app

GOLDEN = Path(__file__).parent / "golden" / "fleet_show_japan9.txt"


def test_fleet_show_golden():
    result = CliRunner().invoke(app, ["fleet", "show", "japan-9"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    if os.environ.get("WATTBIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(result.output, encoding="utf-8")
    assert result.output == GOLDEN.read_text(encoding="utf-8")


def test_fleet_show_unknown_fleet():
    result = CliRunner().invoke(app, ["fleet", "show", "japan-8"])
    assert result.exit_code != 0
    assert "fleet 'japan-8' not found; did you mean 'japan-9'" in str(result.exception)


def test_fleet_workload_prints_mix_and_trace():
    result = CliRunner().invoke(
        app, ["fleet", "workload", "--start", "2023-03-06", "--end", "2023-03-08", "--seed", "3"],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "workload mix: japan-9, 2023-03-06 00:00 .. 2023-03-08 00:00 JST, source traces, seed 3" in out
    for kind in ("training", "fine_tuning", "batch_inference", "online_inference"):
        assert kind in out
    assert "built jobs beside the traces" in out and "runtime KS" in out
