"""The seasonal-persistence forecaster: what it knows when, no peeking, and its error."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from wattbit.errors import InvalidInput
from wattbit.grid import (
    SIGNAL_FIELDS,
    GridSignals,
    PerfectForesight,
    SeasonalPersistenceForecaster,
    forecast_error,
    load_signals,
)
from wattbit.grid.forecast import JAPAN_PRIOR_G_PER_KWH


def jst(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Tokyo")


@pytest.fixture(scope="module")
def truth():
    return load_signals(jst("2022-05-01"), jst("2022-05-15"))


@pytest.fixture(scope="module")
def history():
    return load_signals(jst("2022-04-17"), jst("2022-05-01"))


def _perturbed(s: GridSignals, unknown: dict[str, np.ndarray]) -> GridSignals:
    """A copy of ``s`` whose values on the rows marked unknown are changed beyond recognition."""
    fields = {}
    for f in SIGNAL_FIELDS:
        arr = np.array(getattr(s, f))
        arr[unknown[f]] = arr[unknown[f]] * 3.0 + 777.0
        fields[f] = arr
    return GridSignals(s.time, s.areas, **fields)


def _unknown_at(s: GridSignals, t: pd.Timestamp) -> dict[str, np.ndarray]:
    """Rows a controller cannot know at t: hourly values whose hour has not ended; prices of
    delivery days not yet auctioned (published 10:00 JST the day before)."""
    hour_end = s.time.floor("h") + pd.Timedelta(hours=1)
    day = (s.time.tz_convert("Asia/Tokyo").floor("D"))
    published = day - pd.Timedelta(hours=14)
    unknown_hourly = np.asarray(hour_end > t)
    return {
        "curtailment_mw": unknown_hourly,
        "carbon_avg_g_per_kwh": unknown_hourly,
        "carbon_marginal_g_per_kwh": unknown_hourly,
        "price_jpy_per_mwh": np.asarray(published > t),
    }


@pytest.mark.parametrize("issued", ["2022-05-08 09:00", "2022-05-08 09:30", "2022-05-08 10:00", "2022-05-10 23:30"])
def test_no_peeking(truth, history, issued):
    t = jst(issued)
    base = SeasonalPersistenceForecaster(truth, history).forecast(t, 96)
    changed = SeasonalPersistenceForecaster(_perturbed(truth, _unknown_at(truth, t)), history).forecast(t, 96)
    for f in SIGNAL_FIELDS:
        np.testing.assert_array_equal(getattr(base, f), getattr(changed, f), err_msg=f)


def test_the_past_does_change_the_forecast(truth, history):
    """The no-peeking test can fail: perturbing what is known at t changes the forecast."""
    t = jst("2022-05-08 09:00")
    known = {f: ~m for f, m in _unknown_at(truth, t).items()}
    base = SeasonalPersistenceForecaster(truth, history).forecast(t, 96)
    changed = SeasonalPersistenceForecaster(_perturbed(truth, known), history).forecast(t, 96)
    for f in SIGNAL_FIELDS:
        assert not np.array_equal(getattr(base, f), getattr(changed, f)), f


def test_published_day_ahead_prices_are_exact(truth, history):
    fc = SeasonalPersistenceForecaster(truth, history)
    t = jst("2022-05-08 10:00")  # tomorrow's auction has just been published
    f = fc.forecast(t, 96)
    i = truth.slot(t)
    n_known = 28 + 48  # rest of today (10:00..24:00) and all of tomorrow
    np.testing.assert_array_equal(f.price_jpy_per_mwh[:n_known], truth.price_jpy_per_mwh[i : i + n_known])
    assert not np.array_equal(f.price_jpy_per_mwh[n_known:], truth.price_jpy_per_mwh[i + n_known : i + 96])
    before = fc.forecast(jst("2022-05-08 09:30"), 96)
    assert not np.array_equal(before.price_jpy_per_mwh[29:77], truth.price_jpy_per_mwh[i + 1 : i + 49])


def test_forecast_is_the_blend_by_hand(truth, history):
    """Curtailment for tomorrow noon = w * today-noon + (1-w) * 14-day mean of noons."""
    w = 0.7
    fc = SeasonalPersistenceForecaster(truth, history, persistence_weight={"curtailment_mw": w})
    t = jst("2022-05-08 14:00")
    f = fc.forecast(t, 48)
    target = jst("2022-05-09 12:00")
    k = truth.area_index("kyushu")
    both = np.concatenate([history.curtailment_mw, truth.curtailment_mw])
    times = history.time.append(truth.time)
    src = times.get_loc(jst("2022-05-08 12:00"))  # same slot, one day back, known at 14:00
    clim = np.mean([both[src - 48 * d, k] for d in range(14)])
    want = w * both[src, k] + (1 - w) * clim
    assert f.curtailment_mw[f.slot(target), k] == pytest.approx(want)


def test_shape_clipping_and_errors(truth, history):
    fc = SeasonalPersistenceForecaster(truth, history)
    f = fc.forecast(truth.time[-3], 48)
    assert len(f.time) == 3 and f.areas == truth.areas
    f = fc.forecast(truth.time[5] + pd.Timedelta(minutes=10), 4)  # inside slot 5
    assert f.time[0] == truth.time[5]
    with pytest.raises(InvalidInput):
        fc.forecast(truth.time[-1] + pd.Timedelta(hours=1), 4)
    with pytest.raises(InvalidInput, match="time zone"):
        fc.forecast(pd.Timestamp("2022-05-03"), 4)
    with pytest.raises(InvalidInput, match="history ends"):
        SeasonalPersistenceForecaster(truth, load_signals(jst("2022-04-01"), jst("2022-04-10")))
    with pytest.raises(InvalidInput, match="0..1"):
        SeasonalPersistenceForecaster(truth, persistence_weight={"curtailment_mw": 1.5})


def test_without_history_the_first_slot_uses_the_prior(truth):
    fc = SeasonalPersistenceForecaster(truth)
    f = fc.forecast(truth.time[0], 4)
    assert (f.curtailment_mw == 0).all()
    assert (f.carbon_avg_g_per_kwh == JAPAN_PRIOR_G_PER_KWH).all()
    np.testing.assert_array_equal(f.price_jpy_per_mwh, truth.price_jpy_per_mwh[:4])  # published


def test_from_dataset_loads_history(truth):
    fc = SeasonalPersistenceForecaster.from_dataset(truth, history_days=3)
    f = fc.forecast(truth.time[0], 48)
    assert not (f.carbon_avg_g_per_kwh == JAPAN_PRIOR_G_PER_KWH).any()


def test_hourly_grid(history):
    t = load_signals(jst("2022-05-01"), jst("2022-05-08"), step_s=3600)
    h = load_signals(jst("2022-04-24"), jst("2022-05-01"), step_s=3600)
    f = SeasonalPersistenceForecaster(t, h).forecast(t.time[30], 24)
    assert len(f.time) == 24 and f.step_s == 3600


def test_error_table(truth, history):
    err = forecast_error(truth, PerfectForesight(truth), horizon_slots=48, issue_every_slots=24)
    assert (err["mae"] == 0).all() and (err["bias"] == 0).all()
    err = forecast_error(truth, SeasonalPersistenceForecaster(truth, history), 48, 24)
    assert err.index.names == ["area", "signal"] and len(err) == 9 * 4
    assert err.loc[("kyushu", "curtailment_mw"), "mae"] > 0
    assert err.loc[("chubu", "curtailment_mw"), "mae"] == 0  # Chubu never curtails
    # carbon: far better than the no-information prior
    prior_mae = np.abs(truth.carbon_avg_g_per_kwh - JAPAN_PRIOR_G_PER_KWH).mean()
    ours = err.xs("carbon_avg_g_per_kwh", level="signal")["mae"].mean()
    assert ours < 0.6 * prior_mae


def test_from_dataset_default_is_14_days_of_history_and_a_14_day_climatology(truth, history):
    """The default is unchanged: the same forecasts as the constructor given the 14 days before."""
    fc = SeasonalPersistenceForecaster.from_dataset(truth)
    assert fc.climatology_days == 14
    ref = SeasonalPersistenceForecaster(truth, history)
    for t in (truth.time[0], truth.time[100]):
        a, b = fc.forecast(t, 48), ref.forecast(t, 48)
        for f in SIGNAL_FIELDS:
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_history_days_does_not_change_the_method(truth):
    """history_days is how much history is loaded, not the climatology's length."""
    fc = SeasonalPersistenceForecaster.from_dataset(truth, history_days=3)
    assert fc.climatology_days == 14
    fc = SeasonalPersistenceForecaster.from_dataset(truth, history_days=3, climatology_days=7)
    assert fc.climatology_days == 7
    assert SeasonalPersistenceForecaster.from_dataset(truth, climatology_days=2).climatology_days == 2


def test_history_days_zero_loads_no_history(truth):
    fc = SeasonalPersistenceForecaster.from_dataset(truth, history_days=0)
    assert fc.climatology_days == 14
    f = fc.forecast(truth.time[0], 4)  # nothing known before the truth: the prior
    assert (f.carbon_avg_g_per_kwh == JAPAN_PRIOR_G_PER_KWH).all()


@pytest.mark.parametrize("kw, match", [
    ({"history_days": -1}, r"history_days = -1; expected an integer >= 0"),
    ({"history_days": 2.5}, r"history_days = 2.5; expected an integer >= 0"),
    ({"climatology_days": 0}, r"climatology_days = 0; expected an integer >= 1"),
    ({"climatology_days": 2.5, "history_days": 3}, r"climatology_days = 2.5; expected an integer >= 1"),
    ({"climatology_days": 2.5}, r"climatology_days = 2.5; expected an integer >= 1"),  # (not history_days)
])
def test_from_dataset_bad_arguments(truth, kw, match):
    with pytest.raises(InvalidInput, match=match):
        SeasonalPersistenceForecaster.from_dataset(truth, **kw)


def test_forecast_with_a_naive_instant_is_refused(truth):
    with pytest.raises(InvalidInput, match="no time zone"):
        PerfectForesight(truth).forecast(pd.Timestamp("2022-05-02 00:00"), 4)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"persistence_weight": {"price_jpy_per_mwh": 1.5}}, "persistence_weight['price_jpy_per_mwh'] = 1.5; expected a fraction"),
    ({"persistence_weight": {"price_jpy_per_mwh": "0.5"}}, "is a string; expected a fraction"),
    ({"persistence_weight": {"price": 0.5}}, "unknown signal 'price'"),
    ({"climatology_days": 0}, "climatology_days = 0; expected an integer >= 1"),
    ({"climatology_days": 7.5}, "climatology_days = 7.5; expected an integer >= 1"),
])
def test_the_forecaster_refuses_bad_settings_naming_them(truth, history, kwargs, words):
    with pytest.raises(InvalidInput, match=re.escape(words)):
        SeasonalPersistenceForecaster(truth, history, **kwargs)
