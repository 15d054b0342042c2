"""Demand response end to end through the controller and the twin, on a controlled world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.domain import DemandResponse, Job, JobKind
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.network import LightpathBook
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
