"""Settings from arguments or the environment, refused with the fix when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattbit.errors import InvalidInput
from wattbit.service import Settings


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
])
def test_bad_settings_say_what_to_fix(changes, words):
    with pytest.raises(InvalidInput, match=words):
        Settings(**changes)


def test_bad_environment_names_the_variable():
    with pytest.raises(InvalidInput, match="WATTBIT_TICK_S"):
        Settings.from_env({"WATTBIT_TICK_S": "soon"})
