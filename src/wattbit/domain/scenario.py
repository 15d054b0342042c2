"""A scenario: fleet, period, workload recipe, objective weights and events — all a run needs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from wattbit.domain._validate import (
    aware,
    fraction,
    integer,
    is_integer,
    is_number,
    number_fix,
    positive,
    text,
    wrong_type,
)
from wattbit.domain.events import DemandResponse, SiteOutage
from wattbit.domain.site import Fleet
from wattbit.errors import InvalidInput, UnknownName
from wattbit.units import jst_text

__all__ = ["Scenario", "Weights", "WorkloadSpec", "check_forecast_days"]


@dataclass(frozen=True, slots=True)
class Weights:
    """Objective weights of the planner [JPY per unit]. Defaults are assumptions, documented in
    docs/assumptions.md ("Objective weights").

    carbon_price_jpy_per_t : internal carbon price on emissions [JPY/t-CO2];
    curtailment_value_jpy_per_mwh : value placed on each MWh of curtailed power absorbed [JPY/MWh];
    deadline_penalty_jpy_per_gpu_h : per GPU-hour of work left undone at a deadline [JPY/GPU-h];
    unserved_inference_penalty_jpy_per_gpu_h : per GPU-hour of online inference not served;
    move_penalty_jpy_per_gb : per GB of checkpoint moved over the APN (wear, risk) [JPY/GB];
    gpu_hour_value_jpy : what a GPU-hour lost to checkpoints and transfers is worth [JPY/GPU-h]
    (about the on-demand cloud price of an H100/H200 GPU-hour, USD 2–4; an assumption).
    """

    carbon_price_jpy_per_t: float = 10_000.0
    curtailment_value_jpy_per_mwh: float = 5_000.0
    deadline_penalty_jpy_per_gpu_h: float = 50_000.0
    unserved_inference_penalty_jpy_per_gpu_h: float = 200_000.0
    move_penalty_jpy_per_gb: float = 1.0
    gpu_hour_value_jpy: float = 500.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            positive("weights", name, getattr(self, name), allow_zero=True)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """How to build the scenario's jobs.

    source : ``"traces"`` (scaled from the bundled real traces) or ``"synthetic"``;
    seed : random seed;  utilisation_pu : mean share of fleet GPUs the workload asks for [0..1];
    inference_share_pu : share of GPU-hours that is online inference [0..1];
    residency_share_pu : share of jobs bound to their home area [0..1].
    """

    source: str = "traces"
    seed: int = 0
    utilisation_pu: float = 0.6
    inference_share_pu: float = 0.2
    residency_share_pu: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or self.source not in ("traces", "synthetic"):
            raise InvalidInput(
                f"workload: source = {self.source!r}; expected 'traces' or 'synthetic'"
            )
        object.__setattr__(self, "seed", integer(
            "workload", "seed", self.seed, low=0, note=" (the random seed; the same seed gives the same jobs)"))
        for name in ("utilisation_pu", "inference_share_pu", "residency_share_pu"):
            fraction("workload", name, getattr(self, name))


MAX_REPLAN_SLOTS = 4
"""The most slots between two plans: the controller plans its first four slots finely
(``fine_slots``: one by one, or in blocks of ``fine_block_slots``), so each slot between plans
follows a block of its fine part."""


def check_forecast_days(days: object, owner: str) -> int:
    """``inference_forecast_days`` checked for ``owner``: an integer >= 0, the days of online-inference
    arrivals the controller averages (0: no forecast); returned as a Python int (numpy's integers
    too)."""
    return integer(owner, "inference_forecast_days", days, low=0,
                   note=" (days of inference arrivals the plan averages; 14 is the default, 0 turns the "
                        "forecast off)")


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one twin run needs (the grid data are looked up by period).

    step_s : slot length [s] (1800 = JEPX half-hour);  horizon_slots : planner look-ahead [-];
    replan_slots : the controller solves its plan at most every this many slots (events force
    a new plan at once) [-]; 1 .. 4 (the controller plans its first four slots one by one);
    coarse_blocks : the planner's blocks of each coarser size (2, 4, 8 … fine blocks) after
    those four slots [-]; 2 (the default) or 1 (a smaller LP; see docs/controller.md);
    fine_block_slots : slots per block among those four [-]: 1 (the default) plans them one by
    one, 2 in pairs, 4 as one block (with ``replan_slots = 4``: one target per class and site
    from one plan to the next, and an LP less than half as large; see docs/controller.md);
    inference_forecast_days : days of online-inference arrivals whose mean the controller expects
    from serving windows not yet open [d]; 0 plans with released inference only
    (:class:`wattbit.control.inference_forecast.InferenceForecaster`).
    """

    name: str
    fleet: Fleet
    start: pd.Timestamp
    end: pd.Timestamp
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    weights: Weights = field(default_factory=Weights)
    demand_response: tuple[DemandResponse, ...] = ()
    outages: tuple[SiteOutage, ...] = ()
    step_s: float = 1800.0
    horizon_slots: int = 96
    replan_slots: int = 1
    coarse_blocks: int = 2
    fine_block_slots: int = 1
    inference_forecast_days: int = 14

    def __post_init__(self) -> None:
        text("scenario", "name", self.name)
        owner = f"scenario {self.name!r}"
        aware(owner, "start", self.start)
        aware(owner, "end", self.end)
        if self.end <= self.start:
            raise InvalidInput(
                f"{owner}: end {jst_text(self.end)} is not after start {jst_text(self.start)}; give an end "
                "later than the start")
        if not is_number(self.step_s) or self.step_s not in (900.0, 1800.0, 3600.0):
            raise wrong_type(owner, "step_s", self.step_s,
                             "900, 1800 or 3600 (seconds)" + number_fix(self.step_s))
        object.__setattr__(self, "step_s", float(self.step_s))
        object.__setattr__(self, "horizon_slots", integer(
            owner, "horizon_slots", self.horizon_slots, low=1, note=" (planner look-ahead in slots)"))
        object.__setattr__(self, "replan_slots", integer(
            owner, "replan_slots", self.replan_slots, low=1, high=MAX_REPLAN_SLOTS,
            note=" (the slots the controller plans one by one)"))
        object.__setattr__(self, "coarse_blocks", integer(
            owner, "coarse_blocks", self.coarse_blocks, low=1,
            note=" (blocks of each coarser size in the planner's horizon; 2 is the default, 1 a smaller LP)"))
        divisors = [n for n in range(1, MAX_REPLAN_SLOTS + 1) if MAX_REPLAN_SLOTS % n == 0]
        fine_block_choices = f"{', '.join(map(str, divisors[:-1]))} or {divisors[-1]} (slots per block among the " \
            f"{MAX_REPLAN_SLOTS} the controller plans finely; 1 is the default)"
        if not is_integer(self.fine_block_slots) or self.fine_block_slots not in divisors:
            raise wrong_type(owner, "fine_block_slots", self.fine_block_slots, fine_block_choices)
        object.__setattr__(self, "fine_block_slots", int(self.fine_block_slots))
        object.__setattr__(self, "inference_forecast_days", check_forecast_days(self.inference_forecast_days, owner))
        for dr in self.demand_response:
            if dr.area not in self.fleet.areas:
                raise InvalidInput(
                    f"{owner}: demand response {dr.request_id!r} is for area {dr.area!r}, where the "
                    f"fleet has no site (fleet areas: {', '.join(self.fleet.areas)})"
                )
        for o in self.outages:
            try:
                self.fleet.site(o.site)
            except UnknownName as exc:
                raise UnknownName(f"{owner}: outage of {o.site!r}: {exc}") from None

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    @property
    def time(self) -> pd.DatetimeIndex:
        """Slot start instants of the run (UTC), named ``time``."""
        return pd.date_range(self.start, self.end, freq=pd.Timedelta(seconds=self.step_s),
                             inclusive="left", name="time")
