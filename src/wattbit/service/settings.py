"""How one control-plane process is set up: a frozen value, from arguments or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from wattbit.domain._validate import integer, positive
from wattbit.errors import InvalidInput
from wattbit.units import slots_per_day

__all__ = ["EXECUTORS", "Settings", "aware_instant"]

EXECUTORS = ("slurm", "simulated", "dry-run")
"""``slurm``: one real Slurm cluster per site (needs ``slurm_sites``); ``simulated``: the twin's
executor, in memory (demos and tests of the API); ``dry-run``: the controller decides and every
decision is logged, nothing is executed (shadow operation next to a running fleet)."""


def aware_instant(text: str, name: str) -> pd.Timestamp:
    """An ISO 8601 instant that carries its UTC offset, in UTC; a value without one is refused.

    name : where the value came from (an option or a variable), for the message

    >>> aware_instant("2022-08-01T18:00+09:00", "--replay-start")
    Timestamp('2022-08-01 09:00:00+0000', tz='UTC')
    >>> aware_instant("2022-08-01T18:00", "--replay-start")
    Traceback (most recent call last):
    ...
    wattbit.errors.InvalidInput: --replay-start = '2022-08-01T18:00' has no time zone; add its offset, e.g. 2022-08-01T18:00+09:00 for JST
    """
    try:
        t = pd.Timestamp(text)
        if t is pd.NaT:
            raise ValueError(text)
    except ValueError:
        raise InvalidInput(f"{name} = {text!r} is not an ISO 8601 instant; write e.g. "
                           "2022-08-01T18:00+09:00 (JST)") from None
    if t.tz is None:
        example = t.strftime("%Y-%m-%dT%H:%M") + "+09:00"
        raise InvalidInput(f"{name} = {text!r} has no time zone; add its offset, e.g. {example} for JST")
    return t.tz_convert("UTC")


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of the control plane.

    database_url : SQLAlchemy URL (default: SQLite in ``state_dir``);  state_dir : folder for the
    database and the executor's ledger;  fleet : bundled fleet name or a fleet file;
    executor : one of :data:`EXECUTORS`;  slurm_sites : the Slurm clusters file (see
    :func:`wattbit.control.slurm.load_slurm_sites`);  policy : controller policy;
    step_s : slot length [s];  horizon_slots : planner look-ahead [slots];
    tick_s : period of the live loop [s] (0: no background loop, decisions only on events);
    admin_token : a secret that becomes an admin token at start (bootstrap);
    replay_curtailment : fill unposted curtailment from the recorded years (demos);
    solver_time_limit_s : cap on one controller step's LP [s];
    lightpath_setup_s : time to set up a lightpath for a move [s] (None: the APN model's
    default; 0 for a fleet that keeps lightpaths standing between its sites);
    replay_start : the recorded instant (UTC) whose prices and carbon intensities the grid
    forecaster replays at the process start, the replay then following the wall clock (None:
    the live instant's own season and hour, see :class:`wattbit.control.live.ReplayForecaster`);
    pins what the controller sees for tests and for demos of a chosen day.
    """

    state_dir: Path = Path("wattbit-state")
    database_url: str | None = None
    fleet: str = "japan-9"
    executor: str = "dry-run"
    slurm_sites: Path | None = None
    policy: str = "wls"
    step_s: float = 1800.0
    horizon_slots: int = 48
    tick_s: float = 60.0
    admin_token: str | None = field(default=None, repr=False)
    replay_curtailment: bool = False
    solver_time_limit_s: float = 10.0
    lightpath_setup_s: float | None = None
    replay_start: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if self.replay_start is not None:
            t = pd.Timestamp(self.replay_start)
            if t.tz is None:
                raise InvalidInput(f"settings: replay_start = {self.replay_start!s} has no time zone; "
                                   "give an instant with its offset, e.g. 2022-08-01T18:00+09:00")
            object.__setattr__(self, "replay_start", t.tz_convert("UTC"))
        if self.executor not in EXECUTORS:
            raise InvalidInput(f"settings: executor = {self.executor!r}; expected one of {', '.join(EXECUTORS)}")
        if self.executor == "slurm" and self.slurm_sites is None:
            raise InvalidInput("settings: executor 'slurm' needs slurm_sites (a clusters file, see docs/service.md)")
        positive("settings", "tick_s", self.tick_s, allow_zero=True)  # 0 disables the loop
        positive("settings", "step_s", self.step_s)
        slots_per_day(self.step_s, "settings")  # the forecasts repeat by day
        positive("settings", "solver_time_limit_s", self.solver_time_limit_s)
        object.__setattr__(self, "horizon_slots", integer("settings", "horizon_slots", self.horizon_slots, low=1))
        if self.lightpath_setup_s is not None:  # 0 for lightpaths kept standing
            positive("settings", "lightpath_setup_s", self.lightpath_setup_s, allow_zero=True)
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise InvalidInput("settings: admin_token is shorter than 16 characters; use a long random secret")

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'wattbit.db').resolve()}"

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``WATTBIT_*`` variables (unset ones keep their defaults)."""
        env = os.environ if env is None else env
        parsers = {
            "state_dir": ("WATTBIT_STATE_DIR", Path), "database_url": ("WATTBIT_DATABASE_URL", str),
            "fleet": ("WATTBIT_FLEET", str), "executor": ("WATTBIT_EXECUTOR", str),
            "slurm_sites": ("WATTBIT_SLURM_SITES", Path), "policy": ("WATTBIT_POLICY", str),
            "step_s": ("WATTBIT_STEP_S", float), "horizon_slots": ("WATTBIT_HORIZON_SLOTS", int),
            "tick_s": ("WATTBIT_TICK_S", float), "admin_token": ("WATTBIT_ADMIN_TOKEN", str),
            "replay_curtailment": ("WATTBIT_REPLAY_CURTAILMENT", lambda v: v.lower() in ("1", "true", "yes")),
            "solver_time_limit_s": ("WATTBIT_SOLVER_TIME_LIMIT_S", float),
            "lightpath_setup_s": ("WATTBIT_LIGHTPATH_SETUP_S", float),
            "replay_start": ("WATTBIT_REPLAY_START", lambda v: aware_instant(v, "WATTBIT_REPLAY_START")),
        }
        values = {}
        for name, (var, parse) in parsers.items():
            if env.get(var):
                try:
                    values[name] = parse(env[var])
                except InvalidInput:
                    raise
                except ValueError:
                    raise InvalidInput(f"environment: {var} = {env[var]!r} is not a valid {name}") from None
        return cls(**values)
