"""The forecast of online inference not released yet: climatology of past arrivals, per user area,
in the tightest class seen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.control.inference_forecast import InferenceForecaster
from wattbit.domain import Job, JobKind
from wattbit.errors import InvalidInput
from wattbit.examples import tiny_scenario
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.units import NS_PER_DAY

T0 = pd.Timestamp("2023-03-01 09:00", tz="UTC")  # 18:00 JST
DAY = pd.Timedelta(days=1)
LOOSE, TIGHT = (True, True, True), (True, False, False)


def _service(day: int, gpus: int, user_area: str = "tokyo", hours: float = 6.0, opens_h: float = 0.0) -> Job:
    opens = T0 + day * DAY + pd.Timedelta(hours=opens_h)
    return Job(f"oi-{user_area}-{day}-{opens_h}", "t", JobKind.ONLINE_INFERENCE, gpus, hours, opens,
               opens + pd.Timedelta(hours=hours), "tokyo-dc", frozenset({"tokyo"}),
               user_area=user_area, rtt_budget_s=0.03)


def _keys(mapping):
    return lambda job: mapping[job.job_id]


def _at(when: pd.Timestamp) -> int:
    return int(when.value)


def test_nothing_seen_nothing_forecast():
    fc = InferenceForecaster(1800.0)
    keys, demand = fc.forecast(_at(T0), 96)
    assert keys == [] and demand.shape == (0, 96)


def test_the_mean_of_the_last_days_arrivals_at_the_same_time_of_day():
    fc = InferenceForecaster(1800.0, days=2, horizon_slots=96)
    jobs = [_service(d, g) for d, g in enumerate([400, 64, 128])]
    fc.observe(jobs, key_of=lambda job: TIGHT)
    keys, demand = fc.forecast(_at(T0 + 3 * DAY - pd.Timedelta(hours=1)), 96)
    assert keys == [TIGHT]
    # the window opens in 2 slots and lasts 12; the two days before it, not the third
    assert demand[0, :2].tolist() == [0.0, 0.0]
    assert demand[0, 2:14] == pytest.approx(96.0)
    assert demand[0, 14:48].tolist() == [0.0] * 34


def test_a_window_already_open_is_not_forecast_again():
    fc = InferenceForecaster(1800.0, days=3)
    fc.observe([_service(d, 64) for d in range(4)], key_of=lambda job: TIGHT)
    _, demand = fc.forecast(_at(T0 + 3 * DAY + pd.Timedelta(hours=2)), 96)
    assert demand[0, :40].sum() == 0.0  # today's window opened 2 h ago; tomorrow's is 22 h away
    assert demand[0, 44:56] == pytest.approx(64.0)


def test_the_second_day_of_the_horizon_looks_two_days_back():
    fc = InferenceForecaster(3600.0, days=1, horizon_slots=48)
    fc.observe([_service(0, 32), _service(1, 64), _service(2, 128)], key_of=lambda job: TIGHT)
    _, demand = fc.forecast(_at(T0 + 3 * DAY - pd.Timedelta(hours=1)), 48)
    assert demand[0, 1:7] == pytest.approx(128.0)  # today's window: yesterday's
    assert demand[0, 25:31] == pytest.approx(128.0)  # tomorrow's: also yesterday's, seen 2 days back


def test_days_not_yet_observed_are_left_out_of_the_mean():
    fc = InferenceForecaster(1800.0, days=14)
    fc.observe([_service(0, 32), _service(1, 96)], key_of=lambda job: TIGHT)
    _, demand = fc.forecast(_at(T0 + 2 * DAY - pd.Timedelta(hours=1)), 96)
    # the arrivals after 17:00 JST were seen on one day only (the first job came at 18:00):
    # its value, not 96 / 14 nor (32 + 96) / 2
    assert demand[0, 2:14] == pytest.approx(96.0)


def test_the_record_starts_when_observation_starts_not_at_the_earliest_release():
    """A controller that starts watching on day 2 sees a service released on day 0 still serving:
    the days before it started are not zero-demand days (its arrivals then were not seen)."""
    fc = InferenceForecaster(3600.0, days=2, horizon_slots=24)
    watching_from = T0 + 2 * DAY - pd.Timedelta(hours=3)
    fc.observe([_service(0, 8, hours=96), _service(2, 64)], key_of=lambda job: TIGHT, now_ns=_at(watching_from))
    _, demand = fc.forecast(_at(T0 + 3 * DAY - pd.Timedelta(hours=2)), 24)
    assert demand[0, 2] == pytest.approx(64.0)  # day 2's arrival, the one day seen; not (0 + 64) / 2


def test_a_job_handed_in_again_after_its_window_is_not_counted_twice():
    fc = InferenceForecaster(3600.0, days=1, horizon_slots=24)
    job = _service(0, 64)
    fc.observe([_service(-1, 8, opens_h=-4), job], key_of=lambda job: TIGHT)
    now = _at(T0 + pd.Timedelta(hours=20))  # the window closed at 15:00; the next opens in 13 h
    before = fc.forecast(now, 24)[1].max()
    fc.observe([job], key_of=lambda job: TIGHT, now_ns=now)  # a live book may still hold it
    assert before == fc.forecast(now, 24)[1].max() == pytest.approx(64.0)


def test_an_areas_demand_goes_to_the_tightest_class_its_users_had():
    fc = InferenceForecaster(1800.0, days=2)
    fc.observe([_service(0, 100), _service(1, 300), _service(1, 50, user_area="kansai")],
               key_of=_keys({"oi-tokyo-0-0.0": TIGHT, "oi-tokyo-1-0.0": LOOSE, "oi-kansai-1-0.0": LOOSE}))
    keys, demand = fc.forecast(_at(T0 + 2 * DAY - pd.Timedelta(hours=1)), 96)
    by_key = {}
    for key, row in zip(keys, demand):
        by_key[key] = by_key.get(key, 0.0) + row[2]
    assert by_key[TIGHT] == pytest.approx(300.0)  # Tokyo's of yesterday, in the class it had before
    assert by_key[LOOSE] == pytest.approx(50.0)  # Kansai's users only had the loose class


def test_blocks_average_their_slots():
    fc = InferenceForecaster(1800.0, days=1)
    fc.observe([_service(d, 64) for d in range(2)] + [_service(d, 32, user_area="kansai") for d in range(2)],
               key_of=lambda job: TIGHT)
    keys, demand = fc.block_demand(_at(T0 + 2 * DAY - pd.Timedelta(hours=1)), [2, 4, 90])
    assert keys == [TIGHT, TIGHT]  # Tokyo's and Kansai's users: with_expected_demand adds them up
    total = demand.sum(0)
    assert total[:2] == pytest.approx([0.0, 96.0])
    assert total[2] == pytest.approx(96.0 * 8 / 90)  # slots 6 .. 13 of the block's 90


def test_windows_off_the_slot_grid_are_counted_by_the_part_of_each_slot_they_cover():
    """Each slot gets the mean, over the days it looks back that were observed, of the GPUs times
    the share of the slot that day's moved window covers, windows starting and ending mid-slot
    included (checked against the sum written out slot by slot)."""
    days, step_ns = 3, 1800 * 10**9
    fc = InferenceForecaster(1800.0, days=days, horizon_slots=96)
    jobs = [_service(d, g, hours=h, opens_h=o) for d, (g, h, o) in enumerate(
        [(64, 6.0, 0.25), (32, 2.3, 1.1), (128, 6.0, 23.9), (16, 0.4, 0.05)])]
    fc.observe(jobs, key_of=lambda job: TIGHT)
    now_ns = _at(T0 + 4 * DAY - pd.Timedelta(minutes=47))
    _, demand = fc.forecast(now_ns, 96)
    expected = np.zeros(96)
    first_ns = min(job.release_ns for job in jobs)  # the record starts at the first release seen
    for t in range(96):
        k = t // 48  # the horizon's day: looks back k + 1 .. k + days days, those observed
        looked = [d for d in range(k + 1, k + days + 1) if now_ns - d * NS_PER_DAY >= first_ns]
        for d in looked:
            for job in jobs:
                a, b = job.release_ns + d * NS_PER_DAY, job.deadline_ns + d * NS_PER_DAY
                if now_ns < a < now_ns + 96 * step_ns:
                    lo, hi = now_ns + t * step_ns, now_ns + (t + 1) * step_ns
                    expected[t] += job.gpus * max(0, min(b, hi) - max(a, lo)) / step_ns / len(looked)
    assert demand[0] == pytest.approx(expected, abs=1e-9)
    assert 0 < np.count_nonzero(expected) < 96


def test_a_lap_of_records_is_forgotten_but_the_forecast_stays():
    fc = InferenceForecaster(1800.0, days=2)
    for d in range(40):
        fc.observe([_service(d, 64)], key_of=lambda job: TIGHT)
        _, demand = fc.forecast(_at(T0 + (d + 1) * DAY - pd.Timedelta(hours=1)), 96)
        if d:
            assert demand[0, 2:14] == pytest.approx(64.0)
    assert len(fc._records) <= 8


@pytest.mark.parametrize("step_s", [0.0, -60.0, 7 * 3600.0, 100_000.0])
def test_a_slot_that_does_not_divide_a_day_is_refused(step_s):
    with pytest.raises(InvalidInput, match="does not divide a day"):
        InferenceForecaster(step_s)


def test_a_horizon_longer_than_sized_for_is_refused():
    fc = InferenceForecaster(1800.0, horizon_slots=48)
    with pytest.raises(InvalidInput, match="horizon_slots = 48"):
        fc.forecast(_at(T0), 96)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_the_controller_and_a_scenario_refuse_a_bad_number_of_days(fleet, apn, bad):
    time = pd.date_range(T0, periods=4, freq="30min", name="time")
    z = np.zeros((4, len(fleet.areas)))
    foresight = PerfectForesight(GridSignals(time, fleet.areas, z, z + 1e4, z + 400, z + 400))
    said = f"inference_forecast_days = {bad}{' is a boolean' if bad is True else ''}; expected an integer >= 0"
    with pytest.raises(InvalidInput, match=f"controller: {said}"):
        Controller(fleet, apn, "wls", forecaster=foresight, inference_forecast_days=bad)
    with pytest.raises(InvalidInput, match=said):
        dataclasses.replace(tiny_scenario(), inference_forecast_days=bad)


def test_one_default_number_of_days_everywhere():
    """The scenario (domain layer, below grid) cannot import the climatology's constant: a test
    keeps the two, and the controller's default, the same."""
    import inspect

    from wattbit.domain import Scenario
    from wattbit.grid.forecast import DEFAULT_CLIMATOLOGY_DAYS

    scenario_default = Scenario.__dataclass_fields__["inference_forecast_days"].default
    controller_default = inspect.signature(Controller).parameters["inference_forecast_days"].default
    assert scenario_default == controller_default == DEFAULT_CLIMATOLOGY_DAYS
