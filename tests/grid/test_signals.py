"""GridSignals itself: its slot length, and instants it cannot place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wattbit.errors import InvalidInput
from wattbit.grid import (
    GridSignals,
    PerfectForesight,
    SeasonalPersistenceForecaster,
    concat_signals,
)


def jst(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Tokyo")


def signals(n: int, spacing_s: float = 3600, **kw) -> GridSignals:
    """``n`` slots ``spacing_s`` apart from 2022-05-01 JST, two areas, constant values; ``kw``
    goes to GridSignals (``step_s``)."""
    time = pd.date_range(jst("2022-05-01").tz_convert("UTC"), periods=n, freq=pd.Timedelta(seconds=spacing_s),
                         name="time")
    z = np.zeros((n, 2))
    return GridSignals(time, ("kyushu", "tokyo"), z, z + 1e4, z + 400, z + 490, **kw)


def test_a_one_slot_series_keeps_the_step_it_was_built_with():
    """An hourly one-slot series used to report 1800 s and refuse the second half of its hour."""
    t = jst("2022-05-01")
    s = signals(1, step_s=3600)
    assert s.step_s == 3600.0 and s.step_h == 1.0
    assert s.slot(t + pd.Timedelta(minutes=45)) == 0
    with pytest.raises(InvalidInput, match="outside"):
        s.slot(t + pd.Timedelta(minutes=60))
    # the step survives the methods that make a new series
    long = signals(5, 3600)
    assert long.window(2, 1).step_s == 3600.0 and long.window(4, 10).step_s == 3600.0
    assert long.window(0, 1).select_areas(["tokyo"]).step_s == 3600.0
    assert PerfectForesight(long).forecast(long.time[-1], 4).step_s == 3600.0


def test_step_defaults_when_not_given():
    """Callers that build signals by hand need not give the step."""
    assert signals(3, 3600).step_s == 3600.0  # the spacing of the slots
    assert signals(3, 1800).step_s == 1800.0
    assert signals(1, 3600).step_s == 1800.0  # one slot, nothing said: the 30-min default
    assert signals(3, 3600, step_s=3600).step_s == 3600.0  # given and agreeing


def test_a_step_that_disagrees_with_the_slots_is_refused():
    with pytest.raises(InvalidInput, match=r"step_s = 1800 but the slots are 3600 s apart"):
        signals(3, 3600, step_s=1800)
    for bad in (0, -3600, float("nan"), "3600", True):
        with pytest.raises(InvalidInput, match="step_s = .*; expected a finite number > 0"):
            signals(1, step_s=bad)


def test_concat_and_forecast_keep_an_hourly_step():
    """A one-slot hourly history joins an hourly truth; a one-slot forecast stays hourly."""
    both = signals(49, 3600)
    history, truth = both.window(0, 1), both.window(1, 48)
    joined = concat_signals(history, truth)
    assert joined.step_s == 3600.0 and len(joined.time) == 49
    fc = SeasonalPersistenceForecaster(truth, history).forecast(truth.time[-1], 1)
    assert len(fc.time) == 1 and fc.step_s == 3600.0


@pytest.mark.parametrize("instant", [pd.Timestamp("2022-05-01 00:30"), np.datetime64("2022-05-01T00:30"),
                                     "2022-05-01 00:30"])
def test_a_naive_instant_is_refused_with_the_fix(instant):
    """No time zone: InvalidInput saying how to give one, not pandas' TypeError."""
    s = signals(4)
    for call in (s.slot, s.at, lambda t: PerfectForesight(s).forecast(t, 2)):
        with pytest.raises(InvalidInput, match=r"has no time zone; pass a tz-aware instant, e\.g\. pd\.Timestamp"):
            call(instant)
    with pytest.raises(InvalidInput, match="is not a time"):
        s.slot("half past noon")


def test_aware_instants_in_any_zone_still_work():
    s = signals(4)
    assert s.slot(jst("2022-05-01 01:30")) == 1
    assert s.slot(pd.Timestamp("2022-04-30 17:00", tz="UTC")) == 2
    assert s.slot("2022-05-01 03:59+09:00") == 3
    assert s.at(jst("2022-05-01 00:00"))["price_jpy_per_mwh"] == {"kyushu": 1e4, "tokyo": 1e4}


def test_selecting_areas_orders_the_columns_and_keeps_signals_that_have_them_already():
    s = signals(3)
    price = np.array([[10.0, 20.0]] * 3)  # kyushu, tokyo
    s = GridSignals(s.time, s.areas, s.curtailment_mw, price, s.carbon_avg_g_per_kwh, s.carbon_marginal_g_per_kwh)
    swapped = s.select_areas(["tokyo", "kyushu"])
    assert swapped.areas == ("tokyo", "kyushu")
    assert swapped.price_jpy_per_mwh.tolist() == [[20.0, 10.0]] * 3
    assert s.select_areas(("kyushu", "tokyo")) is s
    assert s.select_areas(a for a in ["tokyo", "kyushu"]).price_jpy_per_mwh.tolist() == [[20.0, 10.0]] * 3
    with pytest.raises(InvalidInput, match="hokkaido"):
        s.select_areas(["hokkaido"])
