"""Recorded grid signals built from the bundled dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from wattbit.data import load_dataset, load_prices
from wattbit.domain import INTERCONNECTED_AREAS
from wattbit.errors import InvalidInput, UnknownName
from wattbit.grid import GapWarning, carbon, hourly_signals, load_signals, signal_span


def jst(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Tokyo")


@pytest.fixture(scope="module")
def may_2022():
    return load_signals(jst("2022-05-01"), jst("2022-05-08"))


def test_grid_shape_areas_and_step(may_2022):
    s = may_2022
    assert s.areas == INTERCONNECTED_AREAS
    assert len(s.time) == 7 * 48 and s.step_s == 1800
    assert s.time[0] == jst("2022-05-01") and str(s.time.tz) == "UTC"


def test_curtailment_is_solar_plus_wind_curtailed_and_held_over_half_hours(may_2022):
    df = load_dataset().xs("kyushu", level="area")
    hour = jst("2022-05-03 12:00")
    expected = float(df.loc[hour, "solar_curtailed_mw"] + df.loc[hour, "wind_curtailed_mw"])
    assert expected > 0  # a Kyushu curtailment hour
    i = may_2022.slot(hour)
    k = may_2022.area_index("kyushu")
    assert may_2022.curtailment_mw[i, k] == expected
    assert may_2022.curtailment_mw[i + 1, k] == expected  # 12:30 holds the 12:00 hour
    assert may_2022.carbon_marginal_g_per_kwh[i, k] == 0.0  # curtailing: the next MWh is free


def test_tokyo_curtailment_is_zero_and_carbon_finite(may_2022):
    k = may_2022.area_index("tokyo")
    assert (may_2022.curtailment_mw[:, k] == 0).all()
    c = may_2022.carbon_avg_g_per_kwh[:, k]
    assert np.isfinite(c).all()
    # solar at midday lowers Tokyo's intensity below its non-solar mix
    noon = may_2022.slot(jst("2022-05-03 12:00"))
    assert c[noon] < carbon.TOKYO_NON_SOLAR_G_PER_KWH - 50


def test_prices_are_the_jepx_half_hours(may_2022):
    p = load_prices().xs("kyushu", level="area")["price_jpy_per_mwh"]
    k = may_2022.area_index("kyushu")
    t = jst("2022-05-03 12:30")
    assert may_2022.price_jpy_per_mwh[may_2022.slot(t), k] == p.loc[t]


def test_hourly_step_averages_the_two_half_hour_prices():
    s = load_signals(jst("2022-05-03"), jst("2022-05-04"), step_s=3600, areas=["kyushu", "tokyo"])
    p = load_prices().xs("tokyo", level="area")["price_jpy_per_mwh"]
    t = jst("2022-05-03 18:00")
    want = (p.loc[t] + p.loc[t + pd.Timedelta(minutes=30)]) / 2
    assert s.price_jpy_per_mwh[s.slot(t), 1] == pytest.approx(want)
    assert s.areas == ("kyushu", "tokyo") and len(s.time) == 24


def test_average_carbon_by_hand_for_one_hour():
    """Kyushu, one hour: own mix plus imports at the neighbour's own intensity."""
    df = load_dataset()
    t = jst("2022-08-10 19:00")
    ky = df.loc[(t, "kyushu")].astype(float)
    cg = df.loc[(t, "chugoku")].astype(float)

    def own(row):
        num = sum(max(row[c], 0) * f for c, f in carbon.COLUMN_FACTORS.items() if not np.isnan(row[c]))
        den = sum(max(row[c], 0) for c in carbon.COLUMN_FACTORS if not np.isnan(row[c]))
        return num, den

    num, den = own(ky)
    imp = max(ky["tie_net_import_mw"], 0)
    cg_num, cg_den = own(cg)
    want = (num + imp * cg_num / cg_den) / (den + imp)
    s = load_signals(t, t + pd.Timedelta(hours=1), areas=["kyushu"])
    assert s.carbon_avg_g_per_kwh[0, 0] == pytest.approx(want, rel=1e-9)


def test_average_carbon_is_within_physical_bounds():
    with pytest.warns(GapWarning, match="tokyo 2160 h"):  # Tokyo's January-March 2022
        s = load_signals(jst("2021-04-01"), jst("2023-04-01"), step_s=3600)
    c = s.carbon_avg_g_per_kwh
    assert (c >= carbon.LIFECYCLE_G_PER_KWH["wind"]).all() and (c <= carbon.THERMAL_G_PER_KWH).all()
    m = s.carbon_marginal_g_per_kwh
    assert set(np.unique(m)) <= {0.0, carbon.MARGINAL_THERMAL_G_PER_KWH}
    ky = s.area_index("kyushu")
    # Kyushu curtails in about 1,700 hours of FY2021-FY2022; marginal is zero exactly then
    assert ((m[:, ky] == 0) == (s.curtailment_mw[:, ky] > 0)).all()
    assert 1000 < (m[:, ky] == 0).sum() < 3000


def test_period_outside_the_data():
    first, last = signal_span()
    with pytest.raises(InvalidInput, match="outside the data"):
        load_signals(last - pd.Timedelta(hours=2), last + pd.Timedelta(hours=1))
    with pytest.raises(InvalidInput, match="outside the data"):
        load_signals(first - pd.Timedelta(hours=1), first + pd.Timedelta(days=1))


def test_bad_arguments():
    with pytest.raises(InvalidInput, match="no time zone"):
        load_signals(pd.Timestamp("2022-05-01"), pd.Timestamp("2022-05-02"))
    with pytest.raises(InvalidInput, match="step_s"):
        load_signals(jst("2022-05-01"), jst("2022-05-02"), step_s=900)
    with pytest.raises(InvalidInput, match="slot grid"):
        load_signals(jst("2022-05-01 00:10"), jst("2022-05-02"))
    with pytest.raises(InvalidInput, match="okinawa"):
        load_signals(jst("2022-05-01"), jst("2022-05-02"), areas=["okinawa"])
    with pytest.raises(UnknownName, match="did you mean 'kyushu'"):
        load_signals(jst("2022-05-01"), jst("2022-05-02"), areas=["kyusyu"])


def test_gaps_are_filled_and_counted(tmp_path):
    """A dataset with a missing day in Kyushu: filled (curtailment 0, carbon interpolated) and warned."""
    import shutil

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from wattbit.data.dataset import HOURLY_FILE, PRICES_FILE, default_data_dir

    table = pq.read_table(default_data_dir() / HOURLY_FILE)
    t = table.column("time")
    day = (pc.greater_equal(t, pd.Timestamp("2022-05-02 15:00", tz="UTC"))) 
    day = pc.and_(day, pc.less(t, pd.Timestamp("2022-05-03 15:00", tz="UTC")))
    drop = pc.and_(day, pc.equal(table.column("area"), "kyushu"))
    pq.write_table(table.filter(pc.invert(drop)), tmp_path / HOURLY_FILE)
    shutil.copy(default_data_dir() / PRICES_FILE, tmp_path / PRICES_FILE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = load_signals(jst("2022-05-01"), jst("2022-05-05"), areas=["kyushu", "tokyo"], data_dir=tmp_path)
    msgs = [str(w.message) for w in caught if issubclass(w.category, GapWarning)]
    assert len(msgs) == 1 and "curtailment_mw 24" in msgs[0] and "carbon_avg_g_per_kwh 24" in msgs[0]
    gap = s.slot(jst("2022-05-03 12:00"))
    assert s.curtailment_mw[gap, 0] == 0.0
    assert np.isfinite(s.carbon_avg_g_per_kwh).all()


def test_tokyos_missing_quarter_is_filled_and_counted():
    """The bundled data has no Tokyo rows for January-March 2022: those hours are NaN in the
    hourly frames and load_signals fills them (documented values) with a GapWarning that counts them."""
    hourly = hourly_signals()
    gap = slice(jst("2022-01-01"), jst("2022-03-31 23:00"))
    for name in ("curtailment_mw", "carbon_avg_g_per_kwh", "carbon_marginal_g_per_kwh"):
        assert hourly[name].loc[gap, "tokyo"].isna().all(), name
        assert hourly[name].loc[gap, "kyushu"].notna().all(), name
    assert not hourly["present"].loc[gap, "tokyo"].any()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = load_signals(jst("2022-02-01"), jst("2022-02-08"), areas=["kyushu", "tokyo"])
    msgs = [str(w.message) for w in caught if issubclass(w.category, GapWarning)]
    assert len(msgs) == 1, msgs
    assert "curtailment_mw 168, carbon_avg_g_per_kwh 168, carbon_marginal_g_per_kwh 168" in msgs[0]
    assert "tokyo 168 h" in msgs[0] and "kyushu" not in msgs[0]
    k = s.area_index("tokyo")
    # nothing recorded within a day: curtailment 0, Tokyo's annual mix, marginal at LNG (module doc)
    assert (s.curtailment_mw[:, k] == 0).all()
    assert (s.carbon_avg_g_per_kwh[:, k] == carbon.TOKYO_ANNUAL_G_PER_KWH).all()
    assert (s.carbon_marginal_g_per_kwh[:, k] == carbon.MARGINAL_THERMAL_G_PER_KWH).all()


def test_tokyos_gap_keeps_its_documented_values_next_to_recorded_hours():
    """Next to recorded hours too: Tokyo's gap is not interpolated (the values of FY2022's history
    stay as they were); the recorded hours are untouched."""
    with pytest.warns(GapWarning, match=r"tokyo 24 h") as rec:
        s = load_signals(jst("2022-03-31"), jst("2022-04-02"), areas=["tokyo"])
    assert "average carbon 547 g/kWh (annual mix), marginal 490 g/kWh" in str(rec[0].message)
    april = s.slot(jst("2022-04-01"))
    assert (s.carbon_avg_g_per_kwh[:april, 0] == carbon.TOKYO_ANNUAL_G_PER_KWH).all()
    recorded = load_signals(jst("2022-04-01"), jst("2022-04-02"), areas=["tokyo"])
    np.testing.assert_array_equal(s.carbon_avg_g_per_kwh[april:], recorded.carbon_avg_g_per_kwh)
    assert (s.carbon_marginal_g_per_kwh == carbon.MARGINAL_THERMAL_G_PER_KWH).all()


def test_fiscal_2022_has_no_gap_to_report():
    with warnings.catch_warnings():
        warnings.simplefilter("error", GapWarning)
        load_signals(jst("2022-04-01"), jst("2022-04-08"))
        load_signals(jst("2023-03-25"), jst("2023-04-01"))


def test_a_one_slot_period_keeps_its_step():
    """load_signals(t, t + 1 h, 3600) is one hourly slot: step 3600 s, and 45 min in is inside it."""
    t = jst("2022-05-03 12:00")
    s = load_signals(t, t + pd.Timedelta(hours=1), 3600, areas=["kyushu"])
    assert len(s.time) == 1 and s.step_s == 3600.0
    assert s.slot(t + pd.Timedelta(minutes=45)) == 0
    assert s.window(0, 1).step_s == 3600.0 and s.select_areas(["kyushu"]).step_s == 3600.0
    half = load_signals(t, t + pd.Timedelta(minutes=30), areas=["kyushu"])
    assert half.step_s == 1800.0
