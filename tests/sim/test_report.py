"""The HTML report of a comparison: every section, numbers that match the KPIs, one inline
plotly.js, JST time axes, link utilisation from the lightpath books.

The world is the tiny example fleet and jobs on synthetic grid signals: Kyushu curtails 3 MW
from 10:00 to 16:00 JST every day at a floor price, Tokyo and Kansai never curtail. With no
history the forecaster does not see the first curtailment coming, so wls starts jobs at home and
then moves one to Kyushu (a lightpath, a pair in the APN section).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("plotly")

from wattbit.control.controller import Controller
from wattbit.examples import tiny_jobs, tiny_scenario
from wattbit.grid import GridSignals, SeasonalPersistenceForecaster
from wattbit.network import LightpathBook, build_apn
from wattbit.sim.kpi import KPI_LABELS, kpi_table
from wattbit.sim.report import (
    SECTIONS,
    _fmt,
    link_utilisation_pu,
    link_wavelengths_in_use,
    report_summary,
    write_report,
)
from wattbit.sim.run import Comparison, World, simulate
from wattbit.sim.twin import run_twin, run_window

CURTAIL_MW = 3.0
"""Kyushu's synthetic curtailment, 10:00–16:00 JST [MW]: more than kyushu-dc's full load."""


def synthetic_signals(start: pd.Timestamp, end: pd.Timestamp, step_s: float,
                      areas: tuple[str, ...], flip_h: float | None = None) -> GridSignals:
    """flip_h: if given, every area but Kyushu is cheap (5 JPY/kWh) for the first flip_h hours
    and dear (300 JPY/kWh) after, so that work started there has reason to move to Kyushu."""
    time = pd.date_range(start, end, freq=pd.Timedelta(seconds=step_s), inclusive="left", name="time")
    hour = np.asarray(time.tz_convert("Asia/Tokyo").hour)
    midday = (hour >= 10) & (hour < 16)
    n = len(time)
    curt, price, avg, marg = (np.zeros((n, len(areas))) for _ in range(4))
    for i, area in enumerate(areas):
        cheap = area == "kyushu"
        curt[:, i] = np.where(midday, CURTAIL_MW, 0.0) if cheap else 0.0
        price[:, i] = np.where(midday, 10.0, 12_000.0) if cheap else {"tokyo": 20_000.0}.get(area, 15_000.0)
        avg[:, i] = np.where(midday, 150.0, 350.0) if cheap else 480.0
        marg[:, i] = np.where(midday, 0.0, 490.0) if cheap else 490.0
        if flip_h is not None and not cheap:
            hours = np.asarray((time - start).total_seconds()) / 3600.0
            price[:, i] = np.where(hours < flip_h, 5_000.0, 300_000.0)
    return GridSignals(time, areas, curt, price, avg, marg)


@pytest.fixture(scope="module")
def world() -> World:
    sc = tiny_scenario()
    jobs = tuple(tiny_jobs())
    start, stop = run_window(jobs, sc.start, sc.end, sc.step_s)
    areas = sc.fleet.areas
    ahead = stop + pd.Timedelta(seconds=sc.step_s * sc.horizon_slots)
    return World(sc, jobs, build_apn(sc.fleet),
                 truth=synthetic_signals(start, stop, sc.step_s, areas),
                 forecast_truth=synthetic_signals(start, ahead, sc.step_s, areas),
                 history=None)


@pytest.fixture(scope="module")
def comparison(world) -> Comparison:
    return simulate(world.scenario, ("baseline", "wls", "oracle"), world=world)


@pytest.fixture(scope="module")
def wls_book(world) -> tuple[LightpathBook, Comparison]:
    """wls run directly, keeping its controller's lightpath book, beside the baseline, in a
    world where prices outside Kyushu jump after 8 h: work started there moves."""
    sc = world.scenario
    areas = sc.fleet.areas
    start, stop = world.truth.time[0], world.truth.time[-1] + pd.Timedelta(seconds=sc.step_s)
    ahead = stop + pd.Timedelta(seconds=sc.step_s * sc.horizon_slots)
    world = dataclasses.replace(
        world, truth=synthetic_signals(start, stop, sc.step_s, areas, flip_h=8.0),
        forecast_truth=synthetic_signals(start, ahead, sc.step_s, areas, flip_h=8.0))
    book = LightpathBook(world.apn)
    controller = Controller(sc.fleet, world.apn, "wls", sc.weights,
                            SeasonalPersistenceForecaster(world.forecast_truth, world.history),
                            step_s=sc.step_s, horizon_slots=sc.horizon_slots, lightpaths=book)
    wls = run_twin(controller, world.jobs, world.truth, demand_response=sc.demand_response,
                   outages=sc.outages)
    base = simulate(sc, ("baseline",), world=world).results["baseline"]
    results = {"baseline": base, "wls": wls}
    return book, Comparison(world, results, None, kpi_table(results))


@pytest.fixture(scope="module")
def page(comparison, tmp_path_factory) -> str:
    path = write_report(comparison, tmp_path_factory.mktemp("report") / "sub" / "report.html")
    return path.read_text(encoding="utf-8")


def figure_json(page: str, div_id: str) -> str:
    """The JSON a figure's Plotly.newPlot call receives (its data and layout)."""
    m = re.search(r'Plotly\.newPlot\("' + div_id + r'",wattbitArrays\((.*?)\);</script>', page, re.DOTALL)
    assert m, f"no Plotly.newPlot for {div_id}"
    return m.group(1)


def figure_data(page: str, div_id: str) -> list[dict]:
    """The traces of a figure, parsed."""
    text = figure_json(page, div_id).strip()
    data, _ = json.JSONDecoder().raw_decode(text)
    return data


def values(array) -> np.ndarray:
    """A trace array as the page ships it: a list, base64 typed-array bytes (plotly), or 16-bit
    steps with a scale (the page's own wattbitArrays decodes them)."""
    if isinstance(array, dict) and "wattbit_u2" in array:
        q = np.frombuffer(base64.b64decode(array["wattbit_u2"]), dtype="<u2")
        return q * array["scale"]
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array)


def test_every_section_heading_and_figure(page):
    for anchor, heading in SECTIONS:
        assert f'<section id="{anchor}"><h2>{heading}</h2>' in page
    for div in ("fig-curtailment", "fig-sites", "fig-delays", "fig-policies"):
        assert f'<div id="{div}" class="plotly-graph-div"' in page
        figure_json(page, div)
    assert page.count("Plotly.newPlot(") == page.count('class="plotly-graph-div"')


def test_plotly_js_inline_exactly_once(page):
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    assert page.count(js) == 1
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    assert not re.search(r"<script[^>]*\bsrc=", page), "the page must not load scripts from anywhere"
    # everything but plotly.js stays small
    assert len(page.encode()) - len(js.encode()) < 300_000


def test_kpi_table_shows_every_kpi_and_policy(page, comparison):
    table = comparison.table
    kpi = page[page.index('<table class="kpi">'):]
    kpi = kpi[:kpi.index("</table>")]
    header = re.findall(r"<th>(.*?)</th>", kpi)
    assert header == ["KPI", "baseline", "wls", "oracle"]
    for key, label in KPI_LABELS.items():
        row = re.search(r"<tr><td>" + re.escape(label) + r"</td>(.*?)</tr>", kpi)
        assert row, f"KPI row {label!r} missing"
        cells = re.findall(r"<td>(.*?)</td>", row.group(1))
        assert len(cells) == 3
        if key == "curtailment_absorbed_mwh":
            assert cells == [_fmt(table.loc[key, p]) for p in ("baseline", "wls", "oracle")]
    assert "wls curtailment absorbed, share of the oracle&#x27;s [%]" in kpi or \
           "wls curtailment absorbed, share of the oracle's [%]" in kpi


def test_summary_sentences_from_the_numbers(comparison, page):
    t = comparison.table
    lines = report_summary(comparison)
    assert 3 <= len(lines) <= 4
    wls, base, orc = (t.loc["curtailment_absorbed_mwh", p] for p in ("wls", "baseline", "oracle"))
    assert wls > 0 and base > 0 and orc > 0, "the synthetic world must let every policy absorb"
    first = lines[0]
    assert first.startswith(f"wls absorbed {_fmt(wls)} MWh of curtailment")
    assert f"{wls / base:.1f}× baseline ({_fmt(base)} MWh)" in first
    bound = t.loc["curtailment_absorbed_bound_mwh", "oracle"]
    assert f"{_fmt(100 * wls / bound)} % of what the perfect-foresight plan absorbs ({_fmt(bound)} MWh" in first
    misses = int(t.loc["deadline_misses", "wls"])
    assert first.endswith("no deadline missed." if misses == 0 else f"{misses:,} deadline(s) missed.")
    assert f"{_fmt(t.loc['cost_mjpy', 'wls'])} M JPY" in lines[1]
    assert "Demand response under wls" in lines[3]
    base_dr = comparison.results["baseline"].dr.set_index("request_id")
    for row in comparison.results["wls"].dr.itertuples():  # what it had left to give, beside baseline
        assert (f"{row.request_id} ({'上げ' if row.direction == 'up' else '下げ'}DR, {row.area}): "
                f"{_fmt(row.asked_mw)} MW asked, its {row.area} load {_fmt(row.reference_mw)} MW at "
                f"the request (baseline's {_fmt(base_dr.loc[row.request_id, 'reference_mw'])} MW), "
                f"{_fmt(row.committed_mw)} MW committed") in lines[3]
    for line in lines:  # every sentence is on the page, as written (html-escaped)
        assert line.replace("'", "&#x27;") in page


def test_curtailment_subplots_only_where_it_curtails(page, comparison):
    fig = figure_json(page, "fig-curtailment")
    r = comparison.results["wls"]
    kyushu = r.areas.xs("kyushu", level="area")
    total = float(kyushu["curtailment_mw"].sum() * r.step_h)
    assert f"kyushu: curtailed {_fmt(total)} MWh, peak {_fmt(CURTAIL_MW)} MW" in fig
    assert "tokyo: curtailed" not in fig and "kansai: curtailed" not in fig
    # one filled curtailment trace, one absorbed line per policy
    assert fig.count('"fill":"tozeroy"') == 1
    for p in ("baseline", "wls", "oracle"):
        assert f'"name":"absorbed, {p}"' in fig


def test_curtailment_capped_at_the_fleet_full_load(page, comparison):
    from wattbit.plan.build import fleet_arrays

    traces = figure_data(page, "fig-curtailment")
    filled = [t for t in traces if t.get("fill") == "tozeroy"]
    assert len(filled) == 1
    y = values(filled[0]["y"])
    fa = fleet_arrays(comparison.world.scenario.fleet)
    k = fa.sites.index("kyushu-dc")
    full_mw = fa.base_mw[k] + fa.mw_per_gpu[k] * fa.cap_gpus[k]
    assert full_mw < CURTAIL_MW
    assert y.max() == pytest.approx(full_mw, rel=1e-5)
    # the absorbed lines, drawn as steps from their change points, are the twin's absorbed MW
    # slot by slot
    kyushu = comparison.results["wls"].areas.xs("kyushu", level="area")
    wls = next(t for t in traces if t["name"] == "absorbed, wls")
    x, y = values(wls["x"]), values(wls["y"])
    assert len(x) < len(kyushu) / 2, "flat stretches should ship no points"
    slot_ms = kyushu.index.tz_convert("Asia/Tokyo").tz_localize(None).as_unit("ms").asi8
    drawn = y[np.searchsorted(x, slot_ms, side="right") - 1]
    np.testing.assert_allclose(drawn, kyushu["absorbed_mw"].to_numpy(), rtol=1e-6, atol=1e-6)


def test_time_axes_in_jst(page):
    # the run starts at 2023-03-18 00:00 JST (15:00 UTC the day before)
    fig = figure_json(page, "fig-sites")
    assert '"x0":"2023-03-18 00:00"' in fig
    assert '"dx":1800000.0' in fig
    assert "time [JST]" in fig
    # change points: ms of JST wall-clock time on a date axis
    traces = figure_data(page, "fig-curtailment")
    first_ms = pd.Timestamp("2023-03-18 00:00").value // 1_000_000
    assert all(values(t["x"])[0] == first_ms for t in traces)
    assert '"type":"date"' in figure_json(page, "fig-curtailment")
    assert "time [JST]" in figure_json(page, "fig-curtailment")


def test_site_stacks_baseline_and_wls(page, comparison):
    # every site's power, slot by slot, within half a 16-bit step of the twin's
    for trace in figure_data(page, "fig-sites"):
        policy = trace["stackgroup"].removeprefix("stack-")
        site = trace["legendgroup"]
        want = comparison.results[policy].sites.xs(site, level="site")["power_mw"].to_numpy()
        got = values(trace["y"])
        step = trace["y"]["scale"] if "wattbit_u2" in trace["y"] else 1e-6 * want.max()
        assert len(got) == len(want)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0.5 * step + 1e-9)
    fig = figure_json(page, "fig-sites")
    assert '"stackgroup":"stack-baseline"' in fig and '"stackgroup":"stack-wls"' in fig
    assert "stack-oracle" not in fig
    for site in comparison.world.scenario.fleet.site_names:
        assert fig.count(f'"legendgroup":"{site}"') == 2


def test_delays_one_curve_per_policy(page, comparison):
    fig = figure_json(page, "fig-delays")
    for p, r in comparison.results.items():
        n = int(r.jobs["delay_h"].notna().sum())
        assert f'"name":"{p} ({n:,} jobs)"' in fig


def test_dr_and_monthly_tables(page, comparison):
    dr = page[page.index('<table class="dr">'):]
    dr = dr[:dr.index("</table>")]
    for p, r in comparison.results.items():
        for row in r.dr.itertuples():
            assert f"<td>{p}</td><td>{row.request_id}</td>" in dr
            # the load at the request, and the window's mean load read from the areas frame
            load = r.areas.xs(row.area, level="area")["load_mw"]
            window = load[(load.index >= row.start) & (load.index < row.end)]
            assert len(window) and np.isfinite(row.reference_mw)
            cells = dr[dr.index(f"<td>{p}</td><td>{row.request_id}</td>"):]
            cells = cells[:cells.index("</tr>")]
            asked = f"<td>{_fmt(row.asked_mw)}</td>"
            assert f"{asked}<td>{_fmt(row.reference_mw)}</td><td>{_fmt(row.committed_mw)}</td>" \
                   f"<td>{_fmt(float(window.mean()))}</td><td>{_fmt(row.delivered_mean_mw)}</td>" in cells
    monthly = page[page.index('<table class="monthly">'):]
    monthly = monthly[:monthly.index("</table>")]
    wls = comparison.results["wls"]
    absorbed = float(wls.areas.xs("kyushu", level="area")["absorbed_mw"].sum() * wls.step_h)
    assert "<td>2023-03</td><td>kyushu</td>" in monthly
    assert f"<td>{_fmt(absorbed)}</td>" in monthly


def test_apn_without_books_falls_back_to_jobs(page, comparison):
    k = comparison.table["wls"]
    assert "Link utilisation over time is not shown" in page
    assert f"peak link utilisation under wls was {_fmt(k['apn_peak_link_utilisation_pct'])} %" in page
    assert 'id="fig-apn-links"' not in page
    if k["moves"] > 0:
        assert 'id="fig-apn-pairs"' in page


def test_apn_link_utilisation_from_the_book(wls_book, tmp_path):
    book, comp = wls_book
    assert book.reservations, "the synthetic world must make wls move at least one job"
    html = write_report(comp, tmp_path / "r.html", lightpaths={"wls": book}).read_text(encoding="utf-8")
    (heatmap,) = figure_data(html, "fig-apn-links")
    assert heatmap["type"] == "heatmap"
    # wavelengths in use per link and slot, as the book counts them
    r = comp.results["wls"]
    time = r.areas.index.get_level_values("time").unique()
    used = link_wavelengths_in_use(book, time, r.step_h * 3600.0)
    links = [label.split(" (of ")[0] for label in heatmap["y"]]
    z = values(heatmap["z"]).reshape(len(links), len(time))
    np.testing.assert_array_equal(z, used[links].to_numpy().T)
    assert "Link utilisation over time is not shown" not in html
    # the pairs table counts one move per reservation, with the moved job's checkpoint
    gb = {j.job_id: j.checkpoint_gb for j in comp.world.jobs}
    total_tb = sum(gb[r.owner] for r in book.reservations) / 1000.0
    assert total_tb == pytest.approx(comp.table.loc["apn_moved_tb", "wls"])
    assert f"in all {_fmt(comp.table.loc['apn_moved_tb', 'wls'])} TB in {len(book.reservations)} move(s)" in html


def test_link_utilisation_by_hand():
    sc = tiny_scenario()
    apn = build_apn(sc.fleet)
    book = LightpathBook(apn)
    t0 = pd.Timestamp("2023-03-18 03:00", tz="UTC")
    slot = pd.Timedelta("30min")
    time = pd.date_range(t0, periods=4, freq=slot)
    # 40 s inside the second slot, two wavelengths; then one wavelength across slots 3 and 4
    r1 = book.reserve("tokyo-dc", "kyushu-dc", t0 + slot + pd.Timedelta("100s"),
                      t0 + slot + pd.Timedelta("140.5s"), wavelengths=2)
    r2 = book.reserve("kansai-dc", "kyushu-dc", t0 + 2 * slot + pd.Timedelta("29min"),
                      t0 + 3 * slot + pd.Timedelta("1min"))
    u = link_utilisation_pu(book, time, 1800.0)
    assert list(u.columns) == [link.link_id for link in apn.links]
    for link in apn.links:
        lid = link.link_id
        want = np.zeros(4)
        if lid in r1.link_ids:
            want[1] = 2 / link.wavelengths
        if lid in r2.link_ids:
            want[2] = want[3] = 1 / link.wavelengths
        np.testing.assert_allclose(u[lid].to_numpy(), want, err_msg=lid)


def test_link_utilisation_matches_the_book(wls_book):
    """One sweep gives what LightpathBook.utilisation gives slot by slot."""
    book, comp = wls_book
    r = comp.results["wls"]
    time = r.areas.index.get_level_values("time").unique()
    u = link_utilisation_pu(book, time, r.step_h * 3600.0)
    step = pd.Timedelta(hours=r.step_h)
    for t in time:
        want = book.utilisation(t, t + step)
        assert u.loc[t].to_dict() == pytest.approx(want), t
    assert u.to_numpy().max() == pytest.approx(book.peak_utilisation())


def test_long_runs_are_hourly(world, tmp_path):
    """A 32-day run is shown in hourly means: the time axis steps by an hour and the energy
    under the curves is kept."""
    sc = world.scenario
    start = sc.start
    stop = start + pd.Timedelta(days=32)
    areas = sc.fleet.areas
    long = World(sc, world.jobs, world.apn, synthetic_signals(start, stop, sc.step_s, areas),
                 synthetic_signals(start, stop, sc.step_s, areas), world.history)
    comp = simulate(sc, ("baseline",), world=long)
    html = write_report(comp, tmp_path / "long.html", title="long run").read_text(encoding="utf-8")
    fig = figure_json(html, "fig-sites")
    assert '"dx":3600000.0' in fig and '"dx":1800000.0' not in fig
    assert "<title>long run</title>" in html
    assert report_summary(comp)[0].startswith("baseline absorbed")
    assert "Hourly means, JST." in html


def test_empty_comparison_is_refused(world, tmp_path):
    from wattbit.errors import InvalidInput

    with pytest.raises(InvalidInput, match="no results"):
        write_report(Comparison(world, {}), tmp_path / "x.html")


def test_a_demand_response_window_past_midnight_shows_the_end_date():
    from wattbit.sim.report import _window_text

    t = lambda s: pd.Timestamp(s, tz="Asia/Tokyo")
    assert _window_text(t("2023-03-19 10:00"), t("2023-03-19 15:00")) == "2023-03-19 10:00 – 15:00"
    assert _window_text(t("2023-03-19 22:00"), t("2023-03-20 02:00")) == "2023-03-19 22:00 – 2023-03-20 02:00"


def test_a_demand_response_window_given_in_utc_is_shown_in_jst():
    """The dates are compared in JST: a window on one UTC day may end on the next JST day, and one
    across UTC midnight may lie in one JST day."""
    from wattbit.sim.report import _window_text

    t = lambda s: pd.Timestamp(s, tz="UTC")
    assert _window_text(t("2023-03-19 01:00"), t("2023-03-19 06:00")) == "2023-03-19 10:00 – 15:00"
    assert _window_text(t("2023-03-19 13:00"), t("2023-03-19 17:00")) == "2023-03-19 22:00 – 2023-03-20 02:00"
    assert _window_text(t("2023-03-18 23:00"), t("2023-03-19 03:00")) == "2023-03-19 08:00 – 12:00"
