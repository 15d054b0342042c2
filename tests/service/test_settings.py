"""Settings from arguments or the environment, refused with the fix when wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattbit.errors import InvalidInput
from wattbit.service import Settings
from wattbit.service.plane import ControlPlane


def test_from_env():
    s = Settings.from_env({"WATTBIT_STATE_DIR": "/var/lib/wattbit", "WATTBIT_EXECUTOR": "slurm",
                           "WATTBIT_SLURM_SITES": "/etc/wattbit/clusters.toml", "WATTBIT_TICK_S": "30",
                           "WATTBIT_LIGHTPATH_SETUP_S": "0", "WATTBIT_ADMIN_TOKEN": "wb_" + "x" * 40})
    assert (s.state_dir, s.executor, s.slurm_sites, s.tick_s, s.lightpath_setup_s) == \
        (Path("/var/lib/wattbit"), "slurm", Path("/etc/wattbit/clusters.toml"), 30.0, 0.0)
    assert s.url == "sqlite:////var/lib/wattbit/wattbit.db"
    assert "wb_" not in repr(s)  # the admin secret never reaches a log line


@pytest.mark.parametrize("changes, words", [
    ({"executor": "kubernetes"}, "expected one of slurm, simulated, dry-run"),
    ({"executor": "slurm"}, "needs slurm_sites"),
    ({"tick_s": -1}, "tick_s"),
    ({"admin_token": "short"}, "shorter than 16"),
    ({"lightpath_setup_s": -5.0}, "lightpath_setup_s"),
    ({"tick_s": float("nan")}, "tick_s = nan; expected a finite number >= 0"),
    ({"tick_s": float("inf")}, "tick_s = inf"),
    ({"step_s": 0.0}, "step_s = 0.0; expected a finite number > 0"),
    ({"step_s": 7 * 3600.0}, "does not divide a day"),
    ({"solver_time_limit_s": -1.0}, "solver_time_limit_s"),
    ({"horizon_slots": 4.5}, "horizon_slots = 4.5; expected an integer >= 1"),
])
def test_bad_settings_say_what_to_fix(changes, words):
    with pytest.raises(InvalidInput, match=words):
        Settings(**changes)


def test_a_numpy_integer_horizon_is_kept_as_a_python_int():
    s = Settings(horizon_slots=np.int64(16))
    assert s.horizon_slots == 16 and type(s.horizon_slots) is int


def test_replay_start_from_the_environment_in_utc():
    s = Settings.from_env({"WATTBIT_REPLAY_START": "2022-08-01T18:00+09:00"})
    assert s.replay_start == pd.Timestamp("2022-08-01 09:00", tz="UTC")
    assert Settings().replay_start is None


@pytest.mark.parametrize("value, words", [
    ("2022-08-01T18:00", (r"WATTBIT_REPLAY_START = '2022-08-01T18:00' has no time zone; add its offset, "
                          r"e.g. 2022-08-01T18:00\+09:00 for JST")),
    ("yesterday evening", "WATTBIT_REPLAY_START = 'yesterday evening' is not an ISO 8601 instant"),
])
def test_bad_replay_start_says_what_to_fix(value, words):
    with pytest.raises(InvalidInput, match=words):
        Settings.from_env({"WATTBIT_REPLAY_START": value})


def test_a_naive_replay_start_argument_is_refused():
    with pytest.raises(InvalidInput, match="replay_start = 2022-08-01 18:00:00 has no time zone"):
        Settings(replay_start=pd.Timestamp("2022-08-01 18:00"))


def test_a_replay_start_outside_the_recorded_grid_is_refused_at_build(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", executor="simulated", tick_s=0,
                        replay_start=pd.Timestamp("2019-08-01 18:00", tz="Asia/Tokyo"))
    with pytest.raises(InvalidInput, match="replay_start = 2019-08-01 18:00 JST: .*pick an instant from"):
        ControlPlane.build(settings)
    assert not (tmp_path / "state").exists()  # refused before anything was created


def test_bad_environment_names_the_variable():
    with pytest.raises(InvalidInput, match="WATTBIT_TICK_S"):
        Settings.from_env({"WATTBIT_TICK_S": "soon"})
