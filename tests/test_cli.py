"""`wattbit serve`: its options reach the service's Settings; bad values are refused with the fix.

``serve --check`` builds the settings and prints them without starting the server.
"""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from wattbit.cli import app, main

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
