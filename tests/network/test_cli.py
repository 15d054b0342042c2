"""`wattbit network ...` commands: golden output and error messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from wattbit.cli import app

GOLDEN = Path(__file__).parent / "golden"
runner = CliRunner()


def test_network_paths_golden():
    result = runner.invoke(app, ["network", "paths"])
    assert result.exit_code == 0, result.output
    expected = (GOLDEN / "network_paths.txt").read_text(encoding="utf-8")
    assert result.output == expected
    # the acceptance figures, read from the printed table
    rows = {tuple(line.split()[:2]): line.split() for line in result.output.splitlines()[2:]}
    assert 5.0 <= float(rows[("tokyo-dc", "kyushu-dc")][3]) <= 7.0
    assert 2.5 <= float(rows[("tokyo-dc", "kansai-dc")][3]) <= 3.5
    assert len(rows) == 36  # every pair of the nine sites


def test_network_links_and_move():
    links = runner.invoke(app, ["network", "links"])
    assert links.exit_code == 0 and "Hokkaido Shinkansen" in links.output and "(estimated)" in links.output
    move = runner.invoke(app, ["network", "move", "1000", "tokyo-dc", "kyushu-dc", "--wavelengths", "2"])
    assert move.exit_code == 0
    assert "checkpoint write" in move.output and "lightpath setup" in move.output and "2 x 200 Gbit/s" in move.output


def test_unknown_site_exits_with_message():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    out = subprocess.run(
        [sys.executable, "-c", "from wattbit.cli import main; main()", "network", "move", "100", "tokio-dc", "kyushu-dc"],
        check=False, capture_output=True, text=True, env=env, timeout=120,
    )
    assert out.returncode == 2
    text = " ".join(out.stdout.split())
    assert "src_site: site 'tokio-dc' not found; did you mean 'tokyo-dc'?" in text


def test_a_move_from_a_site_to_itself_is_refused():
    result = CliRunner().invoke(app, ["network", "move", "1000", "tokyo-dc", "tokyo-dc"])
    assert result.exit_code != 0
    assert "source and destination are both 'tokyo-dc'" in str(result.exception)
