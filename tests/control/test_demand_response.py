"""Demand response end to end through the controller and the twin, on a controlled world."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.control.dispatch import Placement
from wattbit.control.executor import restart_delay_s
from wattbit.control.state import FleetState, JobState, JobStatus
from wattbit.domain import DemandResponse, Job, JobKind, Migrate, Start
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.network import LightpathBook
from wattbit.power import power_coefficients, throttled_mw_per_gpu
from wattbit.sim.twin import run_twin

T0 = pd.Timestamp("2023-03-18 00:00", tz="UTC")
SLOTS = 24


def _flat_world(fleet):
    time = pd.date_range(T0, periods=SLOTS, freq="30min", name="time")
    shape = (SLOTS, len(fleet.areas))
    return GridSignals(time, fleet.areas, np.zeros(shape), np.full(shape, 12_000.0),
                       np.full(shape, 450.0), np.full(shape, 490.0))


def _training(i, gpus, hours, slack_h, home, areas):
    return Job(f"trn-{i}", "tenant-a", JobKind.TRAINING, gpus, hours, T0,
               T0 + pd.Timedelta(hours=hours + slack_h), home, frozenset(areas), checkpoint_gb=gpus * 2.0)


def _run(fleet, apn, jobs, dr, policy="wls"):
    truth = _flat_world(fleet)
    ctrl = Controller(fleet, apn, policy, forecaster=PerfectForesight(truth), horizon_slots=12,
                      lightpaths=LightpathBook(apn))
    return run_twin(ctrl, jobs, truth, demand_response=[dr])


def test_up_request_pulls_deferred_work_into_the_area(fleet, apn):
    jobs = [_training(i, 64, 4.0, 7.0, "kyushu-dc", ["kyushu"]) for i in range(4)]
    # announced at T0 (day-ahead style): the planner holds work back for the window
    dr = DemandResponse("up", "up", "kyushu", 0.15, T0 + pd.Timedelta(hours=3),
                        T0 + pd.Timedelta(hours=5), response_deadline_s=300, issued_at=T0)
    r = _run(fleet, apn, jobs, dr)
    row = r.dr.iloc[0]
    assert row.committed_mw == pytest.approx(0.15)
    assert row.delivered_min_mw >= 0.15 - 1e-6
    assert row.response_s < 300
    assert not r.jobs.missed.any()


def test_down_request_sheds_load_with_slack(fleet, apn):
    jobs = [_training(i, 128, 6.0, 6.0, "tokyo-dc", ["tokyo"]) for i in range(4)]
    dr = DemandResponse("down", "down", "tokyo", 0.2, T0 + pd.Timedelta(hours=2),
                        T0 + pd.Timedelta(hours=3), response_deadline_s=300)
    r = _run(fleet, apn, jobs, dr)
    row = r.dr.iloc[0]
    assert row.committed_mw == pytest.approx(0.2)
    assert row.delivered_min_mw >= 0.2 - 1e-6
    assert not r.jobs.missed.any()


def test_baseline_commits_nothing(fleet, apn):
    jobs = [_training(i, 128, 6.0, 6.0, "tokyo-dc", ["tokyo"]) for i in range(4)]
    dr = DemandResponse("down", "down", "tokyo", 0.2, T0 + pd.Timedelta(hours=2),
                        T0 + pd.Timedelta(hours=3))
    r = _run(fleet, apn, jobs, dr, policy="baseline")
    assert r.dr.iloc[0].committed_mw == 0.0


def _evening_service(day: int, gpus: int) -> Job:
    """Online inference for Tokyo's users that must stay in Tokyo, 18:00–24:00 JST on ``day``."""
    opens = T0 + pd.Timedelta(days=day, hours=9)
    return Job(f"oi-{day}", "tenant-a", JobKind.ONLINE_INFERENCE, gpus, 6.0, opens,
               opens + pd.Timedelta(hours=6), "tokyo-dc", frozenset({"tokyo"}), 9,
               user_area="tokyo", rtt_budget_s=0.02)


@pytest.mark.parametrize("forecast_days", [0, 14])
def test_a_down_commitment_counts_inference_about_to_open(fleet, apn, forecast_days):
    """A 下げDR from 17:00 JST on the third day, while training that ran in the cheap morning
    still runs, asked when the evening's service, as on the two days before, will open inside the
    window at 18:00: with the forecast of inference the commitment holds; planning with released
    inference only commits power that the service then takes."""
    day2 = T0 + pd.Timedelta(days=2)
    jobs = [_evening_service(d, 256) for d in range(3)]
    jobs += [Job(f"trn-{i}", "tenant-b", JobKind.TRAINING, 128, 10.0, day2 + pd.Timedelta(hours=2),
                 day2 + pd.Timedelta(hours=30), "tokyo-dc", frozenset({"tokyo"}), checkpoint_gb=256.0)
             for i in range(4)]
    dr = DemandResponse("down", "down", "tokyo", 0.5, day2 + pd.Timedelta(hours=8),
                        day2 + pd.Timedelta(hours=11), response_deadline_s=300)
    time = pd.date_range(T0, periods=3 * 48, freq="30min", name="time")
    shape = (len(time), len(fleet.areas))
    price = np.where(time < day2 + pd.Timedelta(hours=8), 5_000.0, 20_000.0)[:, None] * np.ones(shape)
    truth = GridSignals(time, fleet.areas, np.zeros(shape), price, np.full(shape, 450.0),
                        np.full(shape, 490.0))
    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(truth), horizon_slots=12,
                      lightpaths=LightpathBook(apn), inference_forecast_days=forecast_days)
    row = run_twin(ctrl, jobs, truth, demand_response=[dr]).dr.iloc[0]
    assert row.reference_mw > 1.0  # the training runs when the request comes
    if forecast_days:
        assert 0.2 < row.committed_mw < 0.4  # what is left once the service's 256 GPUs draw
        assert row.delivered_min_mw >= row.committed_mw - 1e-6
    else:
        assert row.committed_mw == pytest.approx(0.5)
        assert row.delivered_min_mw < row.committed_mw - 0.1


def test_an_up_commitment_counts_the_slot_that_finishing_jobs_leave_idle(fleet, apn):
    """A 上げDR from 3 h while two jobs of 128 GPUs run to 4.25 h and four more wait: the plan
    fills kyushu-dc, but the two jobs leave their GPUs idle for the second half of the 4:00 slot
    (the next jobs start at 4:30). The commitment leaves that out, and holds."""
    running = [_training(i, 128, 4.25, 0.25, "kyushu-dc", ["kyushu"]) for i in range(2)]
    waiting = [dataclasses.replace(_training(10 + i, 128, 6.0, 12.0, "kyushu-dc", ["kyushu"]),
                                   release=T0 + pd.Timedelta(hours=3)) for i in range(4)]
    dr = DemandResponse("up", "up", "kyushu", 0.2, T0 + pd.Timedelta(hours=3),
                        T0 + pd.Timedelta(hours=5), response_deadline_s=300)
    row = _run(fleet, apn, running + waiting, dr).dr.iloc[0]
    idle_mw = 256 * 0.5 * power_coefficients(fleet.site("kyushu-dc"))[1]  # 128 GPUs' worth all slot
    assert row.committed_mw == pytest.approx(0.2 - idle_mw, abs=1e-3)
    assert row.delivered_min_mw >= row.committed_mw - 1e-6


UP_AT_T0 = DemandResponse("up", "up", "kyushu", 0.3, T0, T0 + pd.Timedelta(hours=2), response_deadline_s=300)
NO_INFERENCE = np.zeros(3, bool)  # the tiny fleet's sites, none of which may serve inference


def test_the_up_discount_counts_the_jobs_the_decision_itself_moves_into_the_area(fleet, apn):
    """A job suspended at kansai-dc with 0.5 h of work left, moved to kyushu-dc by the decision
    at the request: 15 min of transfer, then it finishes 45 min in, in the second slot, and
    leaves its 128 GPUs idle for half of that slot. Left where it is, it is no concern of the
    request's area; resumed at kyushu-dc with no transfer, it ends exactly at a slot's end."""
    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_flat_world(fleet)), horizon_slots=12)
    job = _training(0, 128, 2.0, 6.0, "kansai-dc", ["kansai", "kyushu"])
    state = FleetState(T0, {job.job_id: JobState(job, JobStatus.SUSPENDED, "kansai-dc", 0.0, job.work_gpu_h - 64)})
    mw = power_coefficients(fleet.site("kyushu-dc"))[1]
    moved = ctrl.up_discount_mw(state, UP_AT_T0, {job.job_id: Placement("kyushu-dc")},
                                [Migrate(job.job_id, "kansai-dc", "kyushu-dc", 900.0)], NO_INFERENCE)
    assert moved == pytest.approx(128 * 0.5 * mw)
    assert ctrl.up_discount_mw(state, UP_AT_T0, {job.job_id: Placement("kansai-dc")},
                               [Start(job.job_id, "kansai-dc")], NO_INFERENCE) == 0.0
    here = FleetState(T0, {job.job_id: JobState(job, JobStatus.RUNNING, "kyushu-dc", 1.0, job.work_gpu_h - 64)})
    assert ctrl.up_discount_mw(here, UP_AT_T0, {job.job_id: Placement("kyushu-dc")}, (), NO_INFERENCE) == 0.0


def test_the_up_discount_leaves_room_for_whole_jobs_where_inference_may_share_the_site(fleet, apn):
    """Whole jobs of 128 GPUs cannot fill a target that inference has made odd: 127 GPUs' worth
    is added where the plan may route inference to the site, and nothing where it may not."""
    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_flat_world(fleet)), horizon_slots=12)
    job = _training(0, 128, 10.0, 6.0, "kyushu-dc", ["kyushu"])  # runs past the window
    state = FleetState(T0, {job.job_id: JobState(job, JobStatus.RUNNING, "kyushu-dc", 1.0, 0.0)})
    placed = {job.job_id: Placement("kyushu-dc")}
    mw = power_coefficients(fleet.site("kyushu-dc"))[1]
    kyushu = np.array([False, False, True])
    assert ctrl.up_discount_mw(state, UP_AT_T0, placed, (), kyushu) == pytest.approx(127 * mw)
    assert ctrl.up_discount_mw(state, UP_AT_T0, placed, (), NO_INFERENCE) == 0.0


def test_a_resumed_job_and_a_moved_one_lose_what_the_executor_charges(fleet):
    """The controller's discount and the simulated executor use one rule for the time before a
    job works again: the checkpoint read of a resumed job, a move's transfer, nothing else."""
    from wattbit.power import checkpoint_s
    from wattbit.sim.executor import SimulatedExecutor

    job = _training(0, 128, 2.0, 6.0, "kyushu-dc", ["kyushu", "kansai"])
    suspended = JobState(job, JobStatus.SUSPENDED, "kyushu-dc", 0.0, 10.0)
    for action, st, expected in [
        (Start(job.job_id, "kyushu-dc"), suspended, checkpoint_s(job)),
        (Start(job.job_id, "kyushu-dc"), JobState(job), 0.0),  # never started: nothing to read
        (Migrate(job.job_id, "kyushu-dc", "kansai-dc", 120.0), suspended, 120.0),
    ]:
        assert restart_delay_s(action, st) == pytest.approx(expected)
        ex = SimulatedExecutor(fleet)
        ex.states[job.job_id] = st
        ex.apply(action, job)
        assert ex.lost_s.get(job.job_id, 0.0) == pytest.approx(expected)


def test_the_reference_load_and_the_flexibility_charge_a_throttled_job_as_the_twin_does(fleet, apn):
    """A 256-GPU job at 50 % duty draws the power model's throttled power, not half its full power
    (the twin charges :func:`throttled_mw_per_gpu`): the DR reference load counts that, and the job
    holds all 256 of its GPUs, so a waiting 384-GPU job cannot be added beside it at kyushu-dc
    (512 GPUs)."""
    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_flat_world(fleet)), horizon_slots=12)
    throttled = JobState(_training(0, 256, 10.0, 40.0, "kyushu-dc", ["kyushu"]), JobStatus.RUNNING,
                         "kyushu-dc", 0.5, 1.0)
    waiting = JobState(_training(1, 384, 2.0, 40.0, "kyushu-dc", ["kyushu"]))
    state = FleetState(T0, {"trn-0": throttled, "trn-1": waiting})
    i = ctrl.fa.sites.index("kyushu-dc")
    site = fleet.site("kyushu-dc")
    expected_mw = ctrl.fa.base_mw[i] + 256 * throttled_mw_per_gpu(site, 0.5)
    assert ctrl.site_load_mw(state)[i] == pytest.approx(expected_mw, rel=1e-12)
    assert expected_mw - (ctrl.fa.base_mw[i] + 128 * ctrl.fa.mw_per_gpu[i]) > 0.05  # not linear in duty
    flex = ctrl.flexibility(state).xs("kyushu", level="area").iloc[0]
    assert flex.add_mw == 0.0
    assert flex.shed_mw == pytest.approx(256 * throttled_mw_per_gpu(site, 0.5), rel=1e-12)
