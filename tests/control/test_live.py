"""The live loop and its forecaster, on the real controller and the twin's executor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.control.executor import Observed
from wattbit.control.live import (
    REPLAY_SHIFT,
    BookedJob,
    LiveLoop,
    ReplayForecaster,
    converged,
    reconcile,
    replay_offset,
)
from wattbit.control.state import JobStatus
from wattbit.domain import Cancel, DemandResponse, Migrate, Start, Suspend, Throttle
from wattbit.errors import InvalidInput
from wattbit.examples import TINY_START, tiny_fleet, tiny_jobs
from wattbit.grid import load_signals
from wattbit.network import build_apn
from wattbit.power import work_rate_pu
from wattbit.sim.executor import SimulatedExecutor

T0 = pd.Timestamp(TINY_START, tz="Asia/Tokyo").tz_convert("UTC")
AREAS = ("tokyo", "kansai", "kyushu")


@pytest.fixture(scope="module")
def jobs():
    return {j.job_id: j for j in tiny_jobs()}


def test_reconcile_trusts_the_executor(jobs):
    book = {j: BookedJob(jobs[j]) for j in ("trn-1", "trn-2", "ft-1")}
    book["ft-1"] = BookedJob(jobs["ft-1"], desired="cancel")
    lands = T0 + pd.Timedelta(seconds=40)
    seen = {
        "trn-2": Observed("trn-2", JobStatus.MIGRATING, "kyushu-dc", 0.0, busy_until=lands),
        "ft-1": Observed("ft-1", JobStatus.RUNNING, "tokyo-dc", 1.0),
        "ghost": Observed("ghost", JobStatus.RUNNING, "kansai-dc", 1.0),
    }
    state, mechanical, orphans = reconcile(book, seen, T0, frozenset({"kansai-dc"}), {"trn-1": 5.0})
    assert state.jobs["trn-1"].status is JobStatus.PENDING and state.jobs["trn-1"].site is None
    assert state.jobs["trn-1"].done_gpu_h == 5.0
    assert (state.jobs["trn-2"].status, state.jobs["trn-2"].site, state.jobs["trn-2"].busy_until) == \
        (JobStatus.MIGRATING, "kyushu-dc", lands)
    assert "ft-1" not in state.jobs and mechanical == [Cancel("ft-1", reason="cancelled by its tenant")]
    assert orphans == ("ghost",) and state.sites_out == frozenset({"kansai-dc"})


def test_work_is_credited_from_observation(jobs):
    ex = SimulatedExecutor(tiny_fleet())
    clock = iter([T0, T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(minutes=60)])
    loop = LiveLoop(None, ex, clock=lambda: next(clock))
    job = jobs["trn-2"]  # 128 GPUs
    ex.submit(job)
    ex.apply(Start(job.job_id, "kansai-dc", duty_pu=0.5), job)
    book = {job.job_id: BookedJob(job, done_gpu_h=10.0)}
    first = loop.tick(book)
    assert first.done_gpu_h[job.job_id] == 10.0  # no earlier observation: nothing credited yet
    second = loop.tick({job.job_id: BookedJob(job, done_gpu_h=first.done_gpu_h[job.job_id])})
    # 30 min at 50 % duty: the measured curve's work rate (0.602), as the twin credits it
    assert second.done_gpu_h[job.job_id] == pytest.approx(10.0 + 128 * work_rate_pu(0.5) * 0.5)
    assert second.decision is None and second.outcomes == ()


def test_a_tick_decides_and_applies_and_reports_failures(jobs):
    fleet = tiny_fleet()
    truth = load_signals(T0, T0 + pd.Timedelta(days=1), 1800, fleet.areas)
    from wattbit.grid import PerfectForesight

    ctrl = Controller(fleet, build_apn(fleet), "wls", forecaster=PerfectForesight(truth), horizon_slots=16)
    ex = SimulatedExecutor(fleet)
    chosen = [jobs[j] for j in ("trn-1", "ft-1", "oi-1")]
    for j in chosen[:2]:
        ex.submit(j)  # oi-1 is not known to the executor: its action must fail, the rest go on
    loop = LiveLoop(ctrl, ex, clock=lambda: T0 + pd.Timedelta(hours=1))
    report = loop.tick({j.job_id: BookedJob(j) for j in chosen})
    outcomes = {o.action.job_id: o for o in report.outcomes}
    assert report.decision is not None and report.decision.status.lower().startswith("optimal")
    assert outcomes["oi-1"].outcome == "failed" and "unknown to the simulated executor" in outcomes["oi-1"].error
    applied = [o for o in report.outcomes if o.outcome == "applied"]
    assert applied and report.last_command_s == max(o.at_s for o in report.outcomes)
    for o in applied:  # what the controller decided is what the executor now holds
        assert ex.states[o.action.job_id].status is JobStatus.RUNNING
    assert set(loop.pending) == {o.action.job_id for o in applied}
    loop.settle(ex.observe())
    assert loop.pending == {}


def test_open_demand_response_gets_a_commitment(jobs):
    fleet = tiny_fleet()
    truth = load_signals(T0, T0 + pd.Timedelta(days=1), 1800, fleet.areas)
    from wattbit.grid import PerfectForesight

    ctrl = Controller(fleet, build_apn(fleet), "wls", forecaster=PerfectForesight(truth), horizon_slots=16)
    ex = SimulatedExecutor(fleet)
    chosen = [jobs[j] for j in ("trn-1", "trn-2", "ft-1")]
    for j in chosen:
        ex.submit(j)
    now = T0 + pd.Timedelta(hours=2)
    loop = LiveLoop(ctrl, ex, clock=lambda: now)
    dr = DemandResponse("dr-1", "up", "kyushu", 0.1, now, now + pd.Timedelta(hours=1))
    report = loop.tick({j.job_id: BookedJob(j) for j in chosen}, events=(dr,))
    assert report.dr_commitments["dr-1"] == pytest.approx(0.1)
    to_kyushu = [o.action for o in report.outcomes if getattr(o.action, "site", None) == "kyushu-dc"
                 or getattr(o.action, "destination", None) == "kyushu-dc"]
    assert to_kyushu


@pytest.mark.parametrize("action, seen, done", [
    (Start("j", "kyushu-dc"), Observed("j", JobStatus.RUNNING, "kyushu-dc", 1.0), True),
    (Start("j", "kyushu-dc"), Observed("j", JobStatus.RUNNING, "tokyo-dc", 1.0), False),
    (Suspend("j"), Observed("j", JobStatus.SUSPENDED, "tokyo-dc"), True),
    (Suspend("j"), Observed("j", JobStatus.RUNNING, "tokyo-dc", 1.0), False),
    (Throttle("j", 0.5), Observed("j", JobStatus.RUNNING, "tokyo-dc", 0.5), True),
    (Throttle("j", 0.5), Observed("j", JobStatus.RUNNING, "tokyo-dc", 1.0), False),
    (Migrate("j", "tokyo-dc", "kyushu-dc", 30.0), Observed("j", JobStatus.MIGRATING, "kyushu-dc"), False),
    (Migrate("j", "tokyo-dc", "kyushu-dc", 30.0), Observed("j", JobStatus.RUNNING, "kyushu-dc", 1.0), True),
    (Cancel("j"), Observed("j", JobStatus.CANCELLED, "tokyo-dc"), True),
    (Cancel("j"), None, True),
])
def test_converged(action, seen, done):
    assert converged(action, seen) is done


def test_replay_forecaster_inside_the_data_is_the_record():
    fc = ReplayForecaster(AREAS)
    got = fc.forecast(T0 + pd.Timedelta(minutes=10), 8)
    want = load_signals(T0, T0 + pd.Timedelta(hours=4), 1800, AREAS)
    assert got.time.equals(want.time)
    for f in ("price_jpy_per_mwh", "carbon_avg_g_per_kwh", "carbon_marginal_g_per_kwh"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
    assert (got.curtailment_mw == 0).all()  # nothing posted, nothing replayed
    replayed = ReplayForecaster(AREAS, replay_curtailment=True).forecast(T0, 8)
    np.testing.assert_array_equal(replayed.curtailment_mw, want.curtailment_mw)


def test_replay_forecaster_maps_a_live_instant_to_the_same_weekday_and_season():
    fc = ReplayForecaster(AREAS)
    live = pd.Timestamp("2026-11-27 02:00", tz="UTC")
    mapped = fc.mapped(live, 48)
    assert (live - mapped) % REPLAY_SHIFT == pd.Timedelta(0)
    assert mapped.day_of_week == live.day_of_week and mapped.time() == live.time()
    assert abs((mapped.replace(year=live.year) - live).days) <= 7  # same season
    got = fc.forecast(live, 4)
    want = load_signals(mapped, mapped + pd.Timedelta(hours=2), 1800, AREAS)
    assert got.time[0] == live and np.array_equal(got.price_jpy_per_mwh, want.price_jpy_per_mwh)


def test_a_pinned_replay_starts_at_the_chosen_instant_and_follows_the_clock():
    live = pd.Timestamp("2026-11-27 02:10", tz="UTC")
    start = pd.Timestamp("2022-08-01 18:00", tz="Asia/Tokyo")
    fc = ReplayForecaster(AREAS, replay_curtailment=True, offset=replay_offset(start, live, 1800, 8))
    for later_h in (0.0, 1.5):  # the process start, and 1.5 h of wall clock later
        t = live + pd.Timedelta(hours=later_h)
        got = fc.forecast(t, 8)
        rec = start + pd.Timedelta(hours=later_h)
        want = load_signals(rec, rec + pd.Timedelta(hours=4), 1800, AREAS)
        assert got.time[0] == t.floor("30min")  # live instants, recorded values
        for f in ("price_jpy_per_mwh", "carbon_marginal_g_per_kwh", "curtailment_mw"):
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f))


def test_a_pinned_replay_outside_the_data_or_off_the_slots_is_refused():
    live = pd.Timestamp("2026-11-27 02:10", tz="UTC")
    with pytest.raises(InvalidInput, match="the recorded grid covers 2021-04-01 00:00 JST"):
        replay_offset(pd.Timestamp("2023-03-31 14:00", tz="UTC"), live, 1800, 8)  # horizon past the end
    with pytest.raises(InvalidInput, match="whole number of 1800 s slots"):
        ReplayForecaster(AREAS, offset=pd.Timedelta(minutes=10))


def test_replay_forecaster_charges_the_thermal_margin_where_nothing_curtails():
    """The record's marginal intensity is 0 where it curtailed. Where that curtailment is not
    replayed (the default) or a posted 0 overrides it, the next MWh is thermal again: the
    forecast is 0 g/kWh only where it has curtailment (the night of 2023-03-19 in Kyushu has
    18 curtailed slots in the record)."""
    from wattbit.grid.carbon import MARGINAL_THERMAL_G_PER_KWH

    at = pd.Timestamp("2023-03-18 15:00", tz="UTC")
    recorded = ReplayForecaster(AREAS, replay_curtailment=True).forecast(at, 48)
    assert (recorded.curtailment_mw[:, 2] > 0).sum() == 18
    slots = recorded.time[recorded.curtailment_mw[:, 2] > 0]
    posted = pd.DataFrame({"time": slots[:3], "area": ["kyushu"] * 3, "curtailment_mw": [0.0, 0.0, 50.0]})
    for fc in (ReplayForecaster(AREAS), ReplayForecaster(AREAS, lambda start, end: posted, replay_curtailment=True)):
        got = fc.forecast(at, 48)
        free = got.carbon_marginal_g_per_kwh == 0.0
        assert (free == (got.curtailment_mw > 0)).all()
        assert (got.carbon_marginal_g_per_kwh[~free] == MARGINAL_THERMAL_G_PER_KWH).all()


def test_replay_forecaster_overlays_what_the_grid_posted():
    posted = pd.DataFrame({"time": [T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(minutes=45)],
                           "area": ["kyushu", "tokyo"], "curtailment_mw": [300.0, 0.0]})
    fc = ReplayForecaster(AREAS, lambda start, end: posted)
    got = fc.forecast(T0, 4)
    assert got.curtailment_mw[:, 2].tolist() == [0.0, 300.0, 0.0, 0.0]
    assert got.carbon_marginal_g_per_kwh[1, 2] == 0.0 and got.carbon_marginal_g_per_kwh[0, 2] > 0


def test_an_unreachable_site_gets_no_new_work(jobs):
    ex = SimulatedExecutor(tiny_fleet())
    ex.unreachable = frozenset({"kansai-dc"})  # what the Slurm executor reports for a silent cluster
    loop = LiveLoop(None, ex, clock=lambda: T0)
    report = loop.tick({"trn-1": BookedJob(jobs["trn-1"])}, sites_out=frozenset({"tokyo-dc"}))
    assert report.unreachable == {"kansai-dc"}
    assert report.state.sites_out == {"tokyo-dc", "kansai-dc"}


def test_a_plan_made_between_slots_is_laid_on_the_slot_grid():
    """A live clock is not on the slot grid: at 01:40 the plan's first block runs to 02:00, the end
    of the forecast's first slot, and the next blocks follow the slots, so a request for
    02:00-02:30 constrains the one block that is 02:00-02:30."""
    from wattbit.control.state import FleetState
    from wattbit.domain import DRDirection

    fleet = tiny_fleet()
    now = pd.Timestamp("2023-03-19 01:40", tz="UTC")
    ctrl = Controller(fleet, build_apn(fleet), "wls", forecaster=ReplayForecaster(fleet.areas), horizon_slots=8,
                      fine_slots=4, inference_forecast_days=0)
    dr = DemandResponse("dr-1", DRDirection.DOWN, "kyushu", 0.1, pd.Timestamp("2023-03-19 02:00", tz="UTC"),
                        pd.Timestamp("2023-03-19 02:30", tz="UTC"))
    ctrl.step(FleetState(now), [dr])
    problem, _, _ = ctrl.build_problem(FleetState(now))
    assert problem.meta["time"][0] == pd.Timestamp("2023-03-19 01:30", tz="UTC")
    assert problem.blocks.offset_h[:3] == pytest.approx([0.0, 1 / 3, 1 / 3 + 0.5])
    assert problem.dr[0].blocks.nonzero()[0].tolist() == [1]


def test_a_replay_that_cannot_be_made_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match="replay forecaster: slot length 0.0 s does not divide a day"):
        ReplayForecaster(AREAS, step_s=0)
    with pytest.raises(InvalidInput, match=r"is shorter than the horizon of 100000 slots; plan over fewer slots"):
        ReplayForecaster(AREAS).forecast(T0, 100_000)
