"""Demand response end to end through the controller and the twin, on a controlled world."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.domain import DemandResponse, Job, JobKind
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.network import LightpathBook
from wattbit.power import power_coefficients
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


def _up_at_start(hours=2.0):
    return DemandResponse("up", "up", "kyushu", 0.3, T0, T0 + pd.Timedelta(hours=hours), response_deadline_s=300)


def test_the_up_discount_counts_the_jobs_the_decision_itself_moves_into_the_area(fleet, apn):
    """A job suspended at kansai-dc with 0.5 h of work left, moved to kyushu-dc by the decision
    at the request: 15 min of transfer, then it finishes 45 min in, in the second slot, and
    leaves its 128 GPUs idle for half of that slot. Counted only as the decision's placement."""
    from wattbit.control.dispatch import Placement
    from wattbit.control.state import FleetState, JobState, JobStatus
    from wattbit.domain import Migrate

    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_flat_world(fleet)), horizon_slots=12)
    job = _training(0, 128, 2.0, 6.0, "kansai-dc", ["kansai", "kyushu"])
    st = JobState(job, JobStatus.SUSPENDED, "kansai-dc", 0.0, job.work_gpu_h - 128 * 0.5)
    state = FleetState(T0, {job.job_id: st})
    dr = _up_at_start()
    mw = power_coefficients(fleet.site("kyushu-dc"))[1]
    moved = ctrl.finishing_idle_mw(state, dr, {job.job_id: Placement("kyushu-dc")},
                                   [Migrate(job.job_id, "kansai-dc", "kyushu-dc", 900.0)],
                                   inference_sites=np.zeros(3, bool))
    assert moved == pytest.approx(128 * 0.5 * mw)
    assert ctrl.finishing_idle_mw(state, dr) == 0.0  # not running in the area before the decision
    # resumed where it is instead: no transfer, and it finishes exactly at the first slot's end
    here = JobState(job, JobStatus.RUNNING, "kyushu-dc", 1.0, job.work_gpu_h - 128 * 0.5)
    assert ctrl.finishing_idle_mw(FleetState(T0, {job.job_id: here}), dr,
                                  {job.job_id: Placement("kyushu-dc")}, (), np.zeros(3, bool)) == 0.0


def test_the_up_discount_leaves_room_for_whole_jobs_where_inference_may_share_the_site(fleet, apn):
    """Whole jobs of 128 GPUs cannot fill a target that inference has made odd: 127 GPUs' worth
    is added where the plan may route inference to the site, and nothing where it may not."""
    from wattbit.control.dispatch import Placement
    from wattbit.control.state import FleetState, JobState, JobStatus

    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(_flat_world(fleet)), horizon_slots=12)
    job = _training(0, 128, 10.0, 6.0, "kyushu-dc", ["kyushu"])  # runs past the window
    state = FleetState(T0, {job.job_id: JobState(job, JobStatus.RUNNING, "kyushu-dc", 1.0, 0.0)})
    placed = {job.job_id: Placement("kyushu-dc")}
    mw = power_coefficients(fleet.site("kyushu-dc"))[1]
    sites = np.array([False, False, True])
    assert ctrl.finishing_idle_mw(state, _up_at_start(), placed, (), sites) == pytest.approx(127 * mw)
    assert ctrl.finishing_idle_mw(state, _up_at_start(), placed, (), ~sites) == 0.0
