"""The controller books the APN for the moves it decides."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wattbit.control.controller import Controller
from wattbit.control.state import FleetState, JobState, JobStatus
from wattbit.domain import Job, JobKind, Migrate
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.network import LightpathBook

T0 = pd.Timestamp("2023-03-18 00:00", tz="UTC")


def test_a_move_decided_after_the_clock_stepped_back_is_booked_from_the_books_retire_point(fleet, apn):
    # a live controller reads the wall clock, which may step back (a time-server correction);
    # its book no longer answers for windows before the last decision's instant, so the move is
    # booked from there instead of the decision failing
    time = pd.date_range(T0, periods=24, freq="30min")
    shape = (len(time), len(fleet.areas))
    truth = GridSignals(time, fleet.areas, np.zeros(shape), np.full(shape, 12_000.0),
                        np.full(shape, 450.0), np.full(shape, 490.0))
    book = LightpathBook(apn)
    ctrl = Controller(fleet, apn, "wls", forecaster=PerfectForesight(truth), horizon_slots=8, lightpaths=book)
    later, now = T0 + pd.Timedelta(hours=2), T0 + pd.Timedelta(hours=2) - pd.Timedelta(seconds=30)
    ctrl.step(FleetState(later))
    # out of slack, its state at a site that is out: it must move now
    job = Job("trn-1", "tenant-a", JobKind.TRAINING, 8, 2.0, T0, now + pd.Timedelta(hours=1.5),
              "kansai-dc", frozenset({"kansai", "kyushu"}), checkpoint_gb=16.0)
    st = JobState(job, JobStatus.SUSPENDED, "kansai-dc", 0.0, done_gpu_h=4.0)
    decision = ctrl.step(FleetState(now, {job.job_id: st}, sites_out=frozenset({"kansai-dc"})))
    moves = [a for a in decision.actions if isinstance(a, Migrate)]
    assert [(m.source, m.destination) for m in moves] == [("kansai-dc", "kyushu-dc")]
    [booked] = [r for r in book.reservations if r.owner == job.job_id]
    assert booked.start == later
