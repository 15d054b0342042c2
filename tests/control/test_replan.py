"""The controller's replan cadence: plans every ``replan_slots`` slots, events force a new plan at
once, and a job the stored plan does not know is still safe (its deadline holds)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.control.state import FleetState, JobState
from wattbit.domain import DemandResponse, Job, JobKind, Start
from wattbit.errors import Infeasible, InvalidInput
from wattbit.examples import tiny_jobs, tiny_scenario
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.network import LightpathBook
from wattbit.sim.run import build_world, simulate

T0 = pd.Timestamp("2023-03-18 00:00", tz="UTC")
STEP = pd.Timedelta(minutes=30)
SLOTS = 48


def _world(fleet) -> GridSignals:
    time = pd.date_range(T0, periods=SLOTS, freq="30min", name="time")
    shape = (SLOTS, len(fleet.areas))
    price = np.full(shape, 12_000.0)
    price[16:24] = 4_000.0  # cheap in the afternoon: the plan defers work there
    return GridSignals(time, fleet.areas, np.zeros(shape), price, np.full(shape, 450.0),
                       np.full(shape, 490.0))


def _controller(fleet, apn, replan_slots: int) -> Controller:
    return Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), horizon_slots=16,
                      lightpaths=LightpathBook(apn), replan_slots=replan_slots)


def _training(job_id: str, gpus: int, hours: float, deadline_h: float, areas, release_h: float = 0.0) -> Job:
    return Job(job_id, "tenant-a", JobKind.TRAINING, gpus, hours, T0 + pd.Timedelta(hours=release_h),
               T0 + pd.Timedelta(hours=deadline_h), "tokyo-dc", frozenset(areas), checkpoint_gb=gpus * 2.0)


def _state(now: pd.Timestamp, jobs) -> FleetState:
    return FleetState(now, {j.job_id: JobState(j) for j in jobs if j.release <= now})


def test_plans_only_every_replan_slots_without_events(fleet, apn):
    jobs = [_training("a", 64, 3.0, 20.0, ["tokyo", "kansai", "kyushu"])]
    ctrl = _controller(fleet, apn, 4)
    plans = []
    for t in range(8):
        d = ctrl.step(_state(T0 + t * STEP, jobs))
        plans.append(id(d.plan))
    assert ctrl.plans_solved == 2
    assert plans[0] == plans[1] == plans[2] == plans[3] != plans[4] == plans[7]


def test_an_event_forces_a_new_plan_at_once(fleet, apn):
    jobs = [_training("a", 64, 3.0, 20.0, ["tokyo", "kansai", "kyushu"])]
    ctrl = _controller(fleet, apn, 4)
    ctrl.step(_state(T0, jobs))
    ctrl.step(_state(T0 + STEP, jobs))
    assert ctrl.plans_solved == 1
    dr = DemandResponse("up-kyushu", "up", "kyushu", 0.05, T0 + 2 * STEP, T0 + 6 * STEP,
                        response_deadline_s=300, issued_at=T0 + STEP)
    d = ctrl.step(_state(T0 + 2 * STEP, jobs), [dr])
    assert ctrl.plans_solved == 2
    assert "up-kyushu" in d.dr_commitments


def test_a_job_of_a_class_the_plan_lacks_still_meets_its_deadline(fleet, apn):
    roomy = _training("a", 64, 3.0, 20.0, ["tokyo", "kansai", "kyushu"])
    ctrl = _controller(fleet, apn, 4)
    ctrl.step(_state(T0, [roomy]))
    # released after the plan, resident in Kyushu only (a class the plan has not seen), and
    # out of slack: it must start now, without waiting for the next plan
    tight = _training("b", 32, 2.0, 3.0, ["kyushu"], release_h=0.5)
    d = ctrl.step(_state(T0 + STEP, [roomy, tight]))
    assert ctrl.plans_solved == 1
    starts = {a.job_id: a for a in d.actions if isinstance(a, Start)}
    assert starts["b"].site == "kyushu-dc"


def test_replan_slots_beyond_the_fine_blocks_is_refused(fleet, apn):
    with pytest.raises(InvalidInput, match=r"replan_slots = 5; expected an integer 1 \.\. 4 \(fine_slots = 4"):
        Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), replan_slots=5)
    with pytest.raises(InvalidInput, match=r"replan_slots = 2\.7; expected an integer"):
        Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), replan_slots=2.7)
    with pytest.raises(InvalidInput, match="replan_slots = 0"):
        dataclasses.replace(tiny_scenario(), replan_slots=0)


def test_fine_blocks_of_four_slots_hold_the_first_target_until_the_next_plan(fleet, apn):
    """With fine blocks of 4 slots and a plan every 4 slots, the slots between two plans follow
    the plan's first block (one target per class and site); with single-slot fine blocks each
    slot follows a block of its own."""
    jobs = [_training("a", 64, 3.0, 20.0, ["tokyo", "kansai", "kyushu"])]
    for unit, blocks, held in ((4, [4, 8, 4], [0, 0, 0]), (1, [1, 1, 1, 1, 2, 4, 6], [1, 2, 3])):
        ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), horizon_slots=16,
                          lightpaths=LightpathBook(apn), replan_slots=4, coarse_blocks=1, fine_block_slots=unit)
        d = ctrl.step(_state(T0, jobs))
        assert ctrl._stored.problem.blocks.slots.tolist() == blocks
        for k in (1, 2, 3):
            plan, block, *_ = ctrl._stored_members(_state(T0 + k * STEP, jobs))
            assert plan.result is d.plan and block == held[k - 1]
        assert ctrl._stored_members(_state(T0 + 4 * STEP, jobs)) is None  # the next plan is due


@pytest.mark.parametrize("bad", [3, 0, 8])
def test_fine_blocks_must_divide_the_fine_slots(fleet, apn, bad):
    with pytest.raises(InvalidInput, match=rf"fine_block_slots = {bad}; expected an integer >= 1 that divides"):
        Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), fine_block_slots=bad)
    with pytest.raises(InvalidInput, match=rf"fine_block_slots = {bad}; expected 1, 2 or 4"):
        dataclasses.replace(tiny_scenario(), fine_block_slots=bad)


@pytest.fixture(scope="module", params=[1, 4], ids=["fine-blocks-1", "fine-blocks-4"])
def every_fourth(request):
    sc = dataclasses.replace(tiny_scenario(), replan_slots=4, fine_block_slots=request.param)
    return sc, simulate(sc, ("wls",), world=build_world(sc, jobs=tiny_jobs()))


def test_the_twin_on_a_cadence_keeps_every_promise(every_fourth):
    sc, comp = every_fourth
    r = comp.results["wls"]
    batch = r.jobs[r.jobs.kind != "online_inference"]
    assert batch.finished.all() and not r.jobs.missed.any()
    for _, job in r.jobs.iterrows():
        assert sc.fleet.site(job.final_site).area in job.allowed_areas.split(",")
    # a plan every fourth slot, plus one per event (two DR notices and an outage at most)
    slots = r.counters["slots"]
    assert math.ceil(slots / 4) <= r.counters["plans"] <= math.ceil(slots / 4) + 3


def test_coarse_blocks_shrink_the_horizon_not_its_length(fleet, apn):
    """One block per coarse size: the same 48 h in 10 blocks instead of 13, the first four still
    single slots (so the replan cadence still has a block per slot), and the job still planned."""
    jobs = [_training("a", 64, 3.0, 20.0, ["tokyo", "kansai", "kyushu"])]
    fine = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), horizon_slots=16,
                      fine_slots=4)
    coarse = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), horizon_slots=16,
                        fine_slots=4, coarse_blocks=1)
    state = _state(T0, jobs)
    p_fine, _, _ = fine.build_problem(state)
    p_coarse, _, _ = coarse.build_problem(state)
    assert p_fine.blocks.slots.tolist() == [1, 1, 1, 1, 2, 2, 4, 4]
    assert p_coarse.blocks.slots.tolist() == [1, 1, 1, 1, 2, 4, 6]
    assert p_coarse.blocks.slots.sum() == p_fine.blocks.slots.sum()
    assert coarse.step(state).plan.x_gpus.sum() > 0


def test_numpy_integers_are_accepted_and_kept_as_python_ints(fleet, apn):
    two = np.int64(2)
    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), replan_slots=two,
                      coarse_blocks=two, fine_block_slots=two, inference_forecast_days=two)
    for value in (ctrl.replan_slots, ctrl.coarse_blocks, ctrl.fine_block_slots, ctrl.inference_forecast.days):
        assert value == 2 and type(value) is int


@pytest.mark.parametrize("name", ["replan_slots", "coarse_blocks", "fine_block_slots", "inference_forecast_days",
                                  "horizon_slots", "fine_slots"])
@pytest.mark.parametrize("bad", [True, 2.5], ids=["bool", "float"])
def test_a_bool_or_a_fraction_is_refused_as_a_count_of_slots_or_days(fleet, apn, name, bad):
    with pytest.raises(InvalidInput, match=rf"{name} = {bad!r}( is a boolean)?; expected"):
        Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), **{name: bad})


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_coarse_blocks_must_be_a_positive_integer(fleet, apn, bad):
    with pytest.raises(InvalidInput, match="coarse_blocks"):
        Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)), coarse_blocks=bad)
    with pytest.raises(InvalidInput, match=r"coarse_blocks = .*expected an integer >= 1"):
        dataclasses.replace(tiny_scenario(), coarse_blocks=bad)


@pytest.mark.parametrize("refusal", [InvalidInput, Infeasible])
def test_users_the_apn_cannot_reach_are_out_of_reach_not_an_error(fleet, apn, refusal):
    """The APN refuses an RTT in two ways: users too far from any fiber (InvalidInput) and no
    railway route between two stations (Infeasible). Either way the controller takes the site as
    out of reach (an infinite RTT, which no latency budget meets) instead of raising."""
    class NoRoute:
        def __init__(self, inner):
            self.inner = inner

        def rtt_s(self, user_area, site):
            raise refusal(f"user_area {user_area!r}: no way to site {site!r}")

        def __getattr__(self, name):
            return getattr(self.inner, name)

    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)))
    ctrl.apn = NoRoute(apn)
    assert ctrl.rtt_s("kyushu", "tokyo-dc") == float("inf")


def test_the_service_class_memory_stays_bounded_and_right(fleet, apn):
    """Service classes are remembered by the fields they depend on, and the memory is cleared
    when full: keys stay what plan.build.service_key gives, however many field sets come by."""
    from wattbit.plan import build as pb

    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_world(fleet)))
    ctrl.SERVICE_KEY_CACHE_SIZE = 3
    online = next(j for j in tiny_jobs() if j.kind is JobKind.ONLINE_INFERENCE)
    services = [dataclasses.replace(online, job_id=f"oi-{i}", rtt_budget_s=budget, user_area=area)
                for i, (budget, area) in enumerate([(0.002, "tokyo"), (0.02, "tokyo"), (0.2, "tokyo"),
                                                    (0.002, "kyushu"), (0.02, "kyushu"), (0.002, "tokyo")])]
    for job in services:
        assert ctrl._service_key(job) == pb.service_key(job, ctrl.fa, reroute=True, rtt_s=ctrl.rtt_s,
                                                        home_index=ctrl.home_index)
        assert len(ctrl._service_keys) <= 3
    assert len({ctrl._service_key(j) for j in services}) > 1  # (the budgets tell some apart)
