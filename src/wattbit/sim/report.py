"""One self-contained HTML report of a policy comparison.

:func:`write_report` writes a single HTML file with plotly.js inline (once, in the page head), so
it opens offline and can be mailed as it is. Its sections:

1. headline: sentences computed from the KPIs (:func:`report_summary`) and the KPI table;
2. curtailment and the curtailment absorbed per area over time;
3. the sites' power stacked over time, baseline and Workload Shift;
4. job delays (ECDF per policy);
5. the APN: link utilisation over time (when the lightpath books are given) and data moved per
   site pair;
6. policy comparison bars and the demand-response table;
7. curtailment absorbed per area and month.

Times are shown in JST; every axis title carries its unit. Series of runs longer than
:data:`HOURLY_AFTER_DAYS` days are shown as hourly means (peaks for link use). To keep the file
small, regular series carry only their start and step, step series only their change points, and
long y arrays ship as 16-bit steps that a short script in the page decodes (docs/report.md,
"Size"). plotly is an optional dependency: ``pip install 'wattbit[report]'``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.errors import InvalidInput, require_extra
from wattbit.files import write_whole
from wattbit.plan.build import fleet_arrays
from wattbit.sim.kpi import KPI_LABELS, absorbed_by_area, kpi_table
from wattbit.sim.run import Comparison
from wattbit.sim.twin import TwinResult
from wattbit.units import JST, jst_minute

__all__ = [
    "HOURLY_AFTER_DAYS",
    "SECTIONS",
    "link_utilisation_pu",
    "link_wavelengths_in_use",
    "report_summary",
    "write_report",
]

HOURLY_AFTER_DAYS = 31.0
"""Runs longer than this are plotted as hourly means (link utilisation: hourly peaks) [days]."""

TOP_LINKS = 10
"""Links shown in the utilisation heatmap: the busiest by peak, then by mean use [-]."""

TOP_PAIRS = 15
"""Site pairs shown in the data-moved chart: the most bytes first [-]."""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("headline", "1. Headline"),
    ("curtailment", "2. Curtailment and what the fleet absorbed, per area"),
    ("sites", "3. Site power over time"),
    ("delays", "4. Job delays"),
    ("apn", "5. APN: links and data moved"),
    ("policies", "6. Policy comparison and demand response"),
    ("monthly", "7. Curtailment absorbed per area and month"),
)
"""(anchor id, heading) of every section, in page order."""

POLICY_COLOURS: dict[str, str] = {
    "baseline": "#7f7f7f",
    "temporal": "#1f77b4",
    "spatial": "#ff7f0e",
    "wls": "#2ca02c",
    "oracle": "#9467bd",
}
"""Colour of each bundled policy; other policies take :data:`PALETTE` in order."""

PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
"""Category colours (D3 "category10") for sites and for policies without their own colour."""

_EXTRA_ROWS = {"wls_vs_oracle_absorbed_pct": "wls curtailment absorbed, share of the oracle's [%]"}
_COUNT_KPIS = {"deadline_misses", "inference_slo_violations", "moves", "lightpaths", "unfinished_jobs"}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


# --- numbers ----------------------------------------------------------------------------------

def _fmt(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (no fewer than all its integer digits), a
    thousands separator, and "–" for a missing value.

    >>> _fmt(14999.757), _fmt(73.8899), _fmt(0.017222), _fmt(0.0), _fmt(float("nan")), _fmt(-2.5)
    ('15,000', '73.9', '0.0172', '0', '–', '-2.5')
    """
    if x is None or not np.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _kpi_cell(key: str, x: float) -> str:
    if key in _COUNT_KPIS and np.isfinite(x):
        return f"{round(x):,}"
    return _fmt(x)


def _pct_change(new: float, old: float) -> str:
    if not old:
        return "–"
    return f"{100.0 * (new - old) / abs(old):+.1f} %"


# --- which policy is the story ------------------------------------------------------------------

def _focus(policies: Sequence[str]) -> str:
    """The policy the headline speaks of: ``wls`` if run, else the first policy that is neither
    the baseline nor the oracle, else the first."""
    if "wls" in policies:
        return "wls"
    others = [p for p in policies if p not in ("baseline", "oracle")]
    return others[0] if others else policies[0]


def _colour(policy: str, policies: Sequence[str]) -> str:
    if policy in POLICY_COLOURS:
        return POLICY_COLOURS[policy]
    unknown = [p for p in policies if p not in POLICY_COLOURS]
    return PALETTE[unknown.index(policy) % len(PALETTE)]


def _table(comparison: Comparison) -> pd.DataFrame:
    return comparison.table if len(comparison.table) else kpi_table(comparison.results)


def _check(comparison: Comparison) -> None:
    if not comparison.results:
        raise InvalidInput("report: the comparison holds no results; run at least one policy (simulate)")


# --- headline -----------------------------------------------------------------------------------

def report_summary(comparison: Comparison) -> list[str]:
    """Three or four headline sentences computed from a comparison's KPIs: curtailment absorbed
    (against the baseline and the perfect-foresight oracle) and deadline misses; energy cost and
    emissions against the baseline; migrations, APN use and service losses; demand response."""
    _check(comparison)
    t = _table(comparison)
    policies = list(comparison.results)
    f = _focus(policies)
    k = t[f]
    out = []

    s = (f"{f} absorbed {_fmt(k['curtailment_absorbed_mwh'])} MWh of curtailment "
         f"({_fmt(k['curtailment_absorbed_pct'])} % of what the fleet's areas curtailed)")
    if "baseline" in t and f != "baseline":
        b = t.loc["curtailment_absorbed_mwh", "baseline"]
        if b > 0:
            s += f", {k['curtailment_absorbed_mwh'] / b:.1f}× baseline ({_fmt(b)} MWh)"
        else:
            s += ", where baseline absorbed none"
    if "curtailment_absorbed_bound_mwh" in t.index and f != "oracle":
        o = t.loc["curtailment_absorbed_bound_mwh", "oracle"]
        if o > 0:
            ratio = 100.0 * k["curtailment_absorbed_mwh"] / o
            s += (f", {_fmt(ratio)} % of what the perfect-foresight plan absorbs ({_fmt(o)} MWh; "
                  "it weighs curtailment against cost, carbon and deadlines like the others)")
    misses = int(k["deadline_misses"])
    s += "; no deadline missed." if misses == 0 else f"; {misses:,} deadline(s) missed."
    out.append(s)

    s = (f"{f} used {_fmt(k['energy_mwh'])} MWh for {_fmt(k['cost_mjpy'])} M JPY, emitting "
         f"{_fmt(k['emissions_avg_t'])} t-CO2 (average intensity) and "
         f"{_fmt(k['emissions_marginal_t'])} t-CO2 (marginal)")
    if "baseline" in t and f != "baseline":
        b = t["baseline"]
        s += (f": cost {_pct_change(k['cost_mjpy'], b['cost_mjpy'])}, emissions "
              f"{_pct_change(k['emissions_avg_t'], b['emissions_avg_t'])} (average) and "
              f"{_pct_change(k['emissions_marginal_t'], b['emissions_marginal_t'])} (marginal) "
              "against baseline")
    out.append(s + ".")

    moves = int(k["moves"])
    if moves:
        s = (f"{f} made {moves:,} migration(s), moving {_fmt(k['apn_moved_tb'])} TB over "
             f"{int(k['lightpaths']):,} lightpath(s) (peak link utilisation "
             f"{_fmt(k['apn_peak_link_utilisation_pct'])} %) and losing "
             f"{_fmt(k['gpu_h_lost_to_moves'])} GPU-h to checkpoints and transfers")
    else:
        s = (f"{f} made no migration and lost {_fmt(k['gpu_h_lost_to_moves'])} GPU-h to "
             "checkpoints")
    unserved = k["inference_unserved_gpu_h"]
    s += ("; online inference was always served." if unserved <= 1e-6 else
          f"; online inference went unserved for {_fmt(unserved)} GPU-h "
          f"({int(k['inference_slo_violations']):,} service(s)).")
    out.append(s)

    dr = comparison.results[f].dr
    if len(dr) > 2:
        met = int((dr["delivered_min_mw"] >= dr["asked_mw"] - 1e-6).sum())
        out.append(
            f"Demand response under {f}: {len(dr)} requests, {_fmt(dr['asked_mw'].sum())} MW asked "
            f"in all, {_fmt(dr['committed_mw'].sum())} MW committed; {met} held the asked change "
            f"over their whole window; the slowest response took {_fmt(dr['response_s'].max())} s.")
    elif len(dr):
        # what a policy can commit depends on its load when the request comes: one that already
        # left a dear area (or filled a curtailing one) has little left to shed (or to add)
        base_ref = ({} if "baseline" not in comparison.results or f == "baseline" else
                    dict(zip(comparison.results["baseline"].dr["request_id"],
                             comparison.results["baseline"].dr["reference_mw"])))
        parts = []
        for row in dr.itertuples():
            load = ""
            if np.isfinite(row.reference_mw):
                load = f"its {row.area} load {_fmt(row.reference_mw)} MW at the request"
                if np.isfinite(base_ref.get(row.request_id, np.nan)):
                    load += f" (baseline's {_fmt(base_ref[row.request_id])} MW)"
                load += ", "
            parts.append(
                f"{row.request_id} ({'上げ' if row.direction == 'up' else '下げ'}DR, {row.area}): "
                f"{_fmt(row.asked_mw)} MW asked, {load}{_fmt(row.committed_mw)} MW committed, "
                f"{_fmt(row.delivered_mean_mw)} MW delivered on average, response "
                f"{_fmt(row.response_s)} s (deadline {_fmt(row.response_deadline_s)} s)")
        out.append(f"Demand response under {f}: " + "; ".join(parts) + ".")
    return out


# --- time axes ----------------------------------------------------------------------------------

def _long_run(r: TwinResult) -> bool:
    t = r.areas.index.get_level_values("time")
    span_days = (t.max() - t.min()).total_seconds() / 86400.0 + r.step_h / 24.0
    return span_days > HOURLY_AFTER_DAYS and r.step_h < 1.0


def _wide(frame: pd.DataFrame, column: str, key: str, hourly: bool, order: Sequence[str]) -> pd.DataFrame:
    """``frame[column]`` indexed (time, key) as a (time × key) table on JST wall-clock time,
    columns in ``order``; hourly means when asked (a mean of MW keeps the energy)."""
    w = frame[column].unstack(key)[list(order)]
    w.index = w.index.tz_convert(JST).tz_localize(None)
    if hourly:
        w = w.resample("h").mean()
    return w


def _x_axis(index: pd.DatetimeIndex, step_h: float) -> dict:
    """Start and step of a regular time axis (plotly's x0/dx: one string, not one per point)."""
    step_ms = ((index[1] - index[0]).total_seconds() if len(index) > 1 else step_h * 3600.0) * 1000.0
    return {"x0": index[0].strftime("%Y-%m-%d %H:%M"), "dx": step_ms}


def _f4(values) -> np.ndarray:
    """Values as float32: plotly ships them base64-encoded at 4 bytes each."""
    return np.asarray(values, dtype=np.float32)


def _steps(index: pd.DatetimeIndex, values) -> dict:
    """A step series (``line.shape = "hv"``) by its change points only: the first point, every
    point whose value differs from the one before, and the last. Draws the same line; a series
    that is zero or flat for most of the run ships a fraction of its points. x: ms since the
    epoch of JST wall-clock time, which a plotly date axis shows as is.

    >>> idx = pd.date_range("2023-03-06", periods=6, freq="30min")
    >>> d = _steps(idx, [0, 0, 2, 2, 0, 0])
    >>> [str(pd.Timestamp(int(x), unit="ms").time()) for x in d["x"]], d["y"].tolist()
    (['00:00:00', '01:00:00', '02:00:00', '02:30:00'], [0.0, 2.0, 0.0, 0.0])
    """
    y = _f4(values)
    keep = np.ones(len(y), dtype=bool)
    keep[1:] = y[1:] != y[:-1]
    keep[-1] = True
    ms = index.as_unit("ms").asi8.astype(np.float64)
    return {"x": ms[keep], "y": y[keep]}


# --- figures ------------------------------------------------------------------------------------

def _plotly():
    """plotly's figure and subplot modules, or MissingExtra naming ``pip install 'wattbit[report]'``."""
    require_extra("plotly", "report")
    import plotly.graph_objects as go
    import plotly.subplots as sp

    return go, sp


def _layout(fig, height_px: int, **axes) -> None:
    """Common look: plotly.js's plain defaults (no template shipped with every figure), the
    legend above the plot area, margins that grow to fit tick labels."""
    top_px, bottom_px = 110, 60
    plot_px = max(100, height_px - top_px - bottom_px)
    fig.update_layout(
        template="none", height=height_px, margin={"l": 80, "r": 30, "t": top_px, "b": bottom_px},
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0 + 34.0 / plot_px, "x": 0},
        hovermode="x unified", **axes)
    fig.update_xaxes(automargin=True, title_standoff=8)
    fig.update_yaxes(automargin=True)


def _mark(fig, period_end: str | None) -> None:
    """A dotted line on every subplot at the end of the scenario period (JST), if the run goes on."""
    if period_end is not None:
        fig.add_vline(x=period_end, line={"dash": "dot", "color": "#333", "width": 1.2}, row="all", col=1)


def _fig_curtailment(comparison: Comparison, policies: Sequence[str], hourly: bool,
                     period_end: str | None):
    """One subplot per fleet area that curtails: curtailment (capped at the fleet's full-load
    power in the area) filled, absorbed MW per policy as lines. None if no area curtails."""
    go, sp = _plotly()

    results = comparison.results
    first = results[policies[0]]
    areas = comparison.world.scenario.fleet.areas
    curt = _wide(first.areas, "curtailment_mw", "area", hourly, areas)
    curtailing = [a for a in curt.columns if curt[a].max() > 0]
    if not curtailing:
        return None
    fa = fleet_arrays(comparison.world.scenario.fleet)
    full_mw = fa.base_mw + fa.mw_per_gpu * fa.cap_gpus
    area_max_mw = {a: float(full_mw[fa.site_area == i].sum()) for i, a in enumerate(fa.areas)}
    step_h = first.step_h
    total = (first.areas["curtailment_mw"] * step_h).groupby(level="area").sum()
    titles = [f"{a}: curtailed {_fmt(total[a])} MWh, peak {_fmt(first.areas['curtailment_mw'].xs(a, level='area').max())} MW"
              for a in curtailing]
    fig = sp.make_subplots(rows=len(curtailing), cols=1, shared_xaxes=True, subplot_titles=titles,
                           vertical_spacing=min(0.08, 0.35 / len(curtailing)))
    absorbed = {p: _wide(results[p].areas, "absorbed_mw", "area", hourly, areas) for p in policies}
    for row, area in enumerate(curtailing, start=1):
        cap = area_max_mw.get(area, float("inf"))
        fig.add_trace(go.Scatter(
            name="curtailment (capped at the fleet's full-load power)", legendgroup="curtailment",
            showlegend=row == 1, **_steps(curt.index, np.minimum(curt[area].to_numpy(), cap)),
            mode="lines", line={"width": 0, "shape": "hv"}, fill="tozeroy", fillcolor="rgba(160,160,160,0.45)"), row=row, col=1)
        for p in policies:
            fig.add_trace(go.Scatter(
                name=f"absorbed, {p}", legendgroup=p, showlegend=row == 1,
                **_steps(curt.index, absorbed[p][area].to_numpy()),
                mode="lines", line={"width": 1.4, "shape": "hv", "color": _colour(p, list(results))}), row=row, col=1)
        fig.update_yaxes(title_text="power [MW]", rangemode="tozero", hoverformat=".2f", row=row, col=1)
    fig.update_xaxes(type="date")
    fig.update_xaxes(title_text="time [JST]", row=len(curtailing), col=1)
    _mark(fig, period_end)
    _layout(fig, 170 + 210 * len(curtailing))
    return fig


def _fig_sites(comparison: Comparison, policies: Sequence[str], hourly: bool, period_end: str | None):
    """Each site's facility power stacked over time, one panel per policy."""
    go, sp = _plotly()
    results = comparison.results
    fleet = comparison.world.scenario.fleet
    site_area = {s.name: s.area for s in fleet.sites}
    frames = {p: _wide(results[p].sites, "power_mw", "site", hourly, fleet.site_names) for p in policies}
    top = max(float(w.sum(axis=1).max()) for w in frames.values())
    fig = sp.make_subplots(rows=len(policies), cols=1, shared_xaxes=True,
                           subplot_titles=[f"{p}: facility power per site" for p in policies],
                           vertical_spacing=0.1)
    for row, p in enumerate(policies, start=1):
        w = frames[p]
        x = _x_axis(w.index, results[p].step_h)
        for i, site in enumerate(w.columns):
            colour = PALETTE[i % len(PALETTE)]
            fig.add_trace(go.Scatter(
                name=f"{site} ({site_area.get(site, '?')})", legendgroup=site, showlegend=row == 1,
                y=_f4(w[site]), **x, mode="lines", stackgroup=f"stack-{p}",
                line={"width": 0.5, "shape": "hv", "color": colour}, fillcolor=colour), row=row, col=1)
        fig.update_yaxes(title_text="power [MW]", range=[0, 1.05 * top], hoverformat=".2f", row=row, col=1)
    fig.update_xaxes(title_text="time [JST]", row=len(policies), col=1)
    _mark(fig, period_end)
    _layout(fig, 160 + 300 * len(policies))
    return fig


def _ecdf(values: np.ndarray, max_points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Points of the empirical CDF [value, share %]; at most ``max_points`` (exact quantiles).

    >>> _ecdf(np.array([3.0, 1.0, 2.0]))
    (array([1., 2., 3.]), array([ 33.33333333,  66.66666667, 100.        ]))
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if n <= max_points:
        return v, 100.0 * np.arange(1, n + 1) / n
    q = np.linspace(1.0 / max_points, 1.0, max_points)
    return np.quantile(v, q, method="inverted_cdf"), 100.0 * q


def _delays(r: TwinResult) -> tuple[np.ndarray, int, int]:
    """Delays of the finished non-inference jobs [h], their count and the unfinished count."""
    batch = r.jobs[r.jobs["kind"] != "online_inference"]
    d = batch["delay_h"].dropna().astype(float).to_numpy()
    return d, len(d), int(len(batch) - len(d))


def _fig_delays(comparison: Comparison) -> tuple[object, str]:
    """ECDF of the delays per policy, and a note on where the x axis is cut (at the largest
    99th percentile, when the longest delay lies well beyond it) or "" when it is not."""
    go, _ = _plotly()
    fig = go.Figure()
    policies = list(comparison.results)
    p99, longest = 0.0, 0.0
    for p, r in comparison.results.items():
        d, n, _ = _delays(r)
        if n == 0:
            continue
        p99, longest = max(p99, float(np.percentile(d, 99))), max(longest, float(d.max()))
        x, y = _ecdf(d)
        fig.add_trace(go.Scatter(
            name=f"{p} ({n:,} jobs)", x=_f4(x), y=_f4(y), mode="lines", line_shape="hv",
            line={"width": 2, "color": _colour(p, policies)},
            hovertemplate="%{y:.1f} % of jobs within %{x:.1f} h"))
    _layout(fig, 420, xaxis_title="delay past the earliest possible finish [h]",
            yaxis_title="share of jobs finished within that delay [%]")
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(range=[0, 101])
    note = ""
    if p99 > 0 and longest > 1.2 * p99:
        fig.update_xaxes(range=[0, 1.05 * p99])
        note = (f" The axis ends at {_fmt(1.05 * p99)} h, past every policy's 99th percentile; "
                f"the longest delay was {_fmt(longest)} h (zoom out to see it).")
    else:
        fig.update_xaxes(rangemode="tozero")
    return fig, note


def link_wavelengths_in_use(book, time: pd.DatetimeIndex, step_s: float) -> pd.DataFrame:
    """Most wavelengths in use on each APN link at any instant within each slot [-].

    book : a :class:`wattbit.network.LightpathBook` after a run (every reservation it ever
    made counts, released ones excepted);  time : slot starts (UTC);  step_s : slot length [s].
    Returns a (time × link) frame of integers; the columns follow the APN's links. A link's use
    peaks at a slot's start or when a reservation starts inside it, as in
    :meth:`LightpathBook.utilisation`; one sweep over each link's reservation starts and ends.
    """
    time = pd.DatetimeIndex(time).as_unit("ns")  # reservations start and end at sub-second instants
    slot_ns = time.asi8
    step_ns = round(step_s * 1e9)
    links = [link.link_id for link in book.apn.links]
    events: dict[str, list[tuple[int, int]]] = {}
    for r in book.reservations:
        for lid in r.link_ids:
            events.setdefault(lid, []).extend(((r.start.value, r.wavelengths), (r.end.value, -r.wavelengths)))
    out = np.zeros((len(time), len(links)), dtype=np.int64)
    for j, lid in enumerate(links):
        if lid not in events:
            continue
        ev = np.array(sorted(events[lid]), dtype=np.int64)  # at one instant, ends come before starts
        at_ns, level = ev[:, 0], np.cumsum(ev[:, 1])
        k = np.searchsorted(at_ns, slot_ns, side="right") - 1  # last event at or before each slot start
        peak = np.where(k >= 0, level[np.maximum(k, 0)], 0)
        slot = np.searchsorted(slot_ns, at_ns, side="right") - 1  # the slot each event falls in
        inside = (slot >= 0) & (at_ns < slot_ns[np.maximum(slot, 0)] + step_ns)
        np.maximum.at(peak, slot[inside], level[inside])
        out[:, j] = peak
    return pd.DataFrame(out, index=pd.DatetimeIndex(time, name="time"), columns=pd.Index(links, name="link"))


def link_utilisation_pu(book, time: pd.DatetimeIndex, step_s: float) -> pd.DataFrame:
    """Peak share of each APN link's wavelengths in use within each slot [pu]: the same as
    ``book.utilisation(t, t + step)`` for every slot start ``t``, for all slots in one sweep.

    book : a :class:`wattbit.network.LightpathBook` after a run;  time : slot starts (UTC);
    step_s : slot length [s]. Returns a (time × link) frame; the columns follow the APN's links.
    """
    used = link_wavelengths_in_use(book, time, step_s)
    capacity = np.array([link.wavelengths for link in book.apn.links], dtype=float)
    return used / capacity


def _fig_links(book, r: TwinResult, hourly: bool):
    """Heatmap of the busiest links' wavelengths in use over time; None if no link was used."""
    go, _ = _plotly()
    time = r.areas.index.get_level_values("time").unique()
    used = link_wavelengths_in_use(book, time, r.step_h * 3600.0)
    capacity = {link.link_id: link.wavelengths for link in book.apn.links}
    share = used / pd.Series(capacity)[used.columns]
    order = sorted(used.columns, key=lambda c: (-share[c].max(), -share[c].mean(), c))
    top = [c for c in order[:TOP_LINKS] if used[c].max() > 0]
    if not top:
        return None
    w = used[top]
    w.index = w.index.tz_convert(JST).tz_localize(None)
    if hourly:
        w = w.resample("h").max()
    # whole wavelengths: one byte per cell where they fit
    z = w.to_numpy().T.astype(np.uint8 if w.to_numpy().max() < 256 else np.uint16)
    fig = go.Figure(go.Heatmap(
        z=z, y=[f"{c} (of {capacity[c]})" for c in top], **_x_axis(w.index, r.step_h), zmin=0,
        colorscale="Blues", colorbar={"title": "wavelengths in use [-]"},
        hovertemplate="%{y}<br>%{x}<br>%{z} wavelength(s) in use<extra></extra>"))
    _layout(fig, 190 + 28 * len(top), xaxis_title="time [JST]")
    fig.update_layout(hovermode="closest", margin={"t": 40})
    return fig


def _pairs(comparison: Comparison, policy: str, book) -> pd.DataFrame:
    """Moves and data moved per directed site pair [-, TB]: from the lightpath reservations when
    a book is given (exact), else from each job's home and final site (a job that moved more
    than once is counted on that one pair)."""
    gb = {j.job_id: j.checkpoint_gb for j in comparison.world.jobs}
    if book is not None:
        rows = [(r.src, r.dst, 1, gb.get(r.owner, 0.0)) for r in book.reservations]
    else:
        jobs = comparison.results[policy].jobs
        moved = jobs[jobs["moves"] > 0]
        rows = [(j.home_site, j.final_site, int(j.moves), j.moves * gb.get(j.job_id, 0.0))
                for j in moved.itertuples()]
    frame = pd.DataFrame(rows, columns=["src", "dst", "moves", "moved_gb"])
    out = frame.groupby(["src", "dst"], as_index=False).sum()
    out["moved_tb"] = out["moved_gb"] / 1000.0
    return out.sort_values(["moved_gb", "moves"], ascending=False).drop(columns="moved_gb")


def _fig_pairs(pairs: pd.DataFrame, policy: str, policies: Sequence[str]):
    go, _ = _plotly()
    top = pairs.head(TOP_PAIRS).iloc[::-1]
    labels = [f"{a} → {b}" for a, b in zip(top["src"], top["dst"])]
    fig = go.Figure(go.Bar(
        x=top["moved_tb"].to_numpy(), y=labels, orientation="h", marker_color=_colour(policy, policies),
        text=[f"{m:,} move(s)" for m in top["moves"]], textposition="auto",
        hovertemplate="%{y}: %{x:.3f} TB"))
    _layout(fig, 130 + 30 * len(top), xaxis_title="checkpoint data moved [TB]")
    fig.update_layout(hovermode="closest", margin={"t": 40})
    return fig


_BARS: tuple[tuple[str, str], ...] = (
    ("curtailment_absorbed_mwh", "curtailment absorbed [MWh]"),
    ("cost_mjpy", "energy cost [M JPY]"),
    ("emissions_avg_t", "emissions, average [t-CO2]"),
    ("emissions_marginal_t", "emissions, marginal [t-CO2]"),
    ("deadline_misses", "deadline misses [jobs]"),
    ("gpu_h_lost_to_moves", "GPU-h lost to checkpoints and moves [GPU-h]"),
)


def _fig_policies(comparison: Comparison):
    go, sp = _plotly()
    t = _table(comparison)
    policies = list(t.columns)
    colours = [_colour(p, policies) for p in policies]
    fig = sp.make_subplots(rows=2, cols=3, subplot_titles=[title for _, title in _BARS],
                           vertical_spacing=0.22, horizontal_spacing=0.08)
    for i, (key, title) in enumerate(_BARS):
        row, col = divmod(i, 3)
        values = t.loc[key].astype(float).to_numpy()
        fig.add_trace(go.Bar(x=policies, y=values, marker_color=colours, showlegend=False,
                             text=[_kpi_cell(key, v) for v in values], textposition="outside",
                             cliponaxis=False, hovertemplate="%{x}: %{y:,.4g}", name=title),
                      row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=title.rsplit("[", 1)[-1].rstrip("]"), rangemode="tozero",
                         row=row + 1, col=col + 1)
    _layout(fig, 600)
    fig.update_layout(hovermode="closest", margin={"t": 50})
    return fig


# --- tables -------------------------------------------------------------------------------------

def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kpi_html(t: pd.DataFrame) -> str:
    labels = {**KPI_LABELS, **_EXTRA_ROWS}
    rows = [[labels.get(key, key)] + [_kpi_cell(key, float(v)) for v in t.loc[key]]
            for key in t.index]
    return _html_table(["KPI"] + list(t.columns), rows, "kpi")


def _window_text(start, end) -> str:
    """'2023-03-19 10:00 – 15:00', with the end's date where it falls on another day (JST).

    >>> _window_text(pd.Timestamp("2023-03-19 13:00", tz="UTC"), pd.Timestamp("2023-03-19 17:00", tz="UTC"))
    '2023-03-19 22:00 – 2023-03-20 02:00'
    """
    a, b = pd.Timestamp(start).tz_convert(JST), pd.Timestamp(end).tz_convert(JST)
    end_format = "%H:%M" if b.date() == a.date() else "%Y-%m-%d %H:%M"
    return f"{jst_minute(a)} – {b.strftime(end_format)}"


def _dr_html(comparison: Comparison) -> str:
    rows = []
    for p, r in comparison.results.items():
        for d in r.dr.itertuples():
            rows.append([p, d.request_id, f"{d.direction} ({'上げ' if d.direction == 'up' else '下げ'})",
                         d.area, _window_text(d.start, d.end), _fmt(d.asked_mw),
                         _fmt(d.reference_mw), _fmt(d.committed_mw),
                         _fmt(d.load_mean_mw), _fmt(d.delivered_mean_mw),
                         _fmt(d.delivered_min_mw), _fmt(d.response_s), _fmt(d.response_deadline_s)])
    if not rows:
        return "<p>No demand-response request in this scenario.</p>"
    return _html_table(["policy", "request", "direction", "area", "window [JST]", "asked [MW]",
                        "load at the request [MW]", "committed [MW]", "load in the window, mean [MW]",
                        "delivered, mean [MW]", "delivered, min [MW]", "response [s]", "deadline [s]"],
                       rows, "dr")


def _monthly_html(r: TwinResult, areas: Sequence[str]) -> str:
    with warnings.catch_warnings():  # months of JST wall-clock time are meant: dropping the zone is right
        warnings.filterwarnings("ignore", message="Converting to PeriodArray", category=UserWarning)
        m = absorbed_by_area(r, "MS")
    rank = {a: i for i, a in enumerate(areas)}
    keys = sorted(m.index, key=lambda k: (k[0], rank.get(k[1], len(rank)), k[1]))
    rows = [[str(month), area, _fmt(m.loc[(month, area), "curtailed_mwh"]),
             _fmt(m.loc[(month, area), "absorbed_mwh"]), _fmt(m.loc[(month, area), "absorbed_pct"])]
            for month, area in keys]
    return _html_table(["month [JST]", "area", "curtailed [MWh]", "absorbed [MWh]", "absorbed [%]"],
                       rows, "monthly")


def _pairs_html(pairs: pd.DataFrame) -> str:
    rows = [[f"{a} → {b}", f"{int(m):,}", _fmt(tb)]
            for a, b, m, tb in pairs.head(TOP_PAIRS).itertuples(index=False)]
    return _html_table(["site pair", "moves [-]", "data moved [TB]"], rows, "pairs")


# --- page ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;
padding:16px 28px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
.meta{color:#555}.caption{color:#444;max-width:75em}.headline li{margin:.35em 0}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #d0d0d0;padding:3px 9px}td{white-space:nowrap}
th{background:#f2f2f2;text-align:left;vertical-align:bottom}
td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
table.dr td:nth-child(-n+5){text-align:left}table.monthly td:nth-child(2){text-align:left}
nav a{margin-right:1em}
"""


QUANTISE_MIN_POINTS = 64
"""y arrays at least this long ship as 16-bit integers with a scale (see :func:`_quantised`) [-]."""

_DECODER_JS = """
/* wattbit: long non-negative y arrays ship as 16-bit unsigned integers q with a scale;
   the value is q * scale. They are turned into float32 arrays before plotly sees them. */
function wattbitArrays(traces) {
  for (const trace of traces) {
    const a = trace.y;
    if (a && a.wattbit_u2 !== undefined) {
      const bytes = atob(a.wattbit_u2), n = bytes.length >> 1, out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        out[i] = (bytes.charCodeAt(2 * i) | (bytes.charCodeAt(2 * i + 1) << 8)) * a.scale;
      }
      trace.y = out;
    }
  }
  return traces;
}
"""


def _quantised(array) -> dict | None:
    """A plotly float32 array (``{"dtype": "f4", "bdata": ...}``) of at least
    :data:`QUANTISE_MIN_POINTS` finite non-negative values as 16-bit steps of ``max / 65535``:
    half the bytes, and an error of at most half a step (0.5 kW at 65 MW). None where that
    does not apply.

    >>> import base64
    >>> mw = np.linspace(0, 65.535, 300, dtype="<f4")
    >>> q = _quantised({"dtype": "f4", "bdata": base64.b64encode(mw.tobytes()).decode()})
    >>> round(q["scale"], 9), len(base64.b64decode(q["wattbit_u2"]))
    (0.001, 600)
    """
    if not (isinstance(array, dict) and array.get("dtype") == "f4"):
        return None
    v = np.frombuffer(base64.b64decode(array["bdata"]), dtype="<f4").astype(np.float64)
    if len(v) < QUANTISE_MIN_POINTS or not np.isfinite(v).all() or v.min() < 0:
        return None
    top = float(v.max())
    scale = top / 65535.0 if top > 0 else 1.0
    q = np.round(v / scale).astype("<u2")
    return {"wattbit_u2": base64.b64encode(q.tobytes()).decode("ascii"), "scale": scale}


def _figure_html(fig, div_id: str) -> str:
    """A figure's div and the script that draws it. The JSON is plotly's, with long y arrays
    quantised (:func:`_quantised`) and only "<" escaped (all that keeps "</script>" out of a
    script; plotly's own HTML export also escapes every "/", 8 % of each base64 array)."""
    _plotly()
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=False))
    for trace in spec["data"]:
        q = _quantised(trace.get("y"))
        if q is not None:
            trace["y"] = q
    data, layout, config = (
        json.dumps(part, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
        for part in (spec["data"], spec["layout"], _PLOT_CONFIG))
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:{fig.layout.height}px;'
            f'width:100%"></div>\n'
            f'<script>Plotly.newPlot("{div_id}",wattbitArrays({data}),{layout},{config});</script>\n')


def _section(anchor: str, body: str) -> str:
    heading = dict(SECTIONS)[anchor]
    return f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>\n{body}\n</section>\n'


def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>'


@dataclass(frozen=True)
class _View:
    """What every section needs to know about the page being written."""

    comparison: Comparison
    table: pd.DataFrame
    focus: str
    hourly: bool
    run_start: pd.Timestamp
    run_end: pd.Timestamp
    period_end: str | None  # end of the scenario period (JST) when the run goes on past it

    @property
    def results(self) -> dict[str, TwinResult]:
        return self.comparison.results

    @property
    def resolution(self) -> str:
        step_h = next(iter(self.results.values())).step_h
        return "Hourly means" if self.hourly else f"{_fmt(step_h * 60)}-minute slots"

    @property
    def end_note(self) -> str:
        if self.period_end is None:
            return ""
        return (" The dotted line marks the end of the scenario period: no job is released after "
                "it, and the run goes on until the released jobs are due.")


def _headline_section(v: _View) -> str:
    sentences = "".join(f"<li>{html.escape(s)}</li>" for s in report_summary(v.comparison))
    return _section("headline", (
        f'<ul class="headline">{sentences}</ul>'
        + _caption("Every KPI of every policy over the whole run window. Energy, cost and "
                   "emissions count the fleet's whole facility load, idle power included; the "
                   "oracle solves the same problem once with the real future known.")
        + _kpi_html(v.table)))


def _curtailment_section(v: _View) -> str:
    shown = [p for p in ("baseline", v.focus, "oracle") if p in v.results]
    fig = _fig_curtailment(v.comparison, shown, v.hourly, v.period_end)
    if fig is None:
        return _section("curtailment", _caption("No area with a fleet site curtailed in this period."))
    return _section("curtailment", _caption(
        "Grey: power the area's grid operator curtailed, capped at the fleet's full-load "
        "power in that area (the most the fleet could have absorbed); the subplot title gives "
        f"the uncapped total and peak. Lines: curtailment absorbed by {', '.join(shown)} "
        f"(the other policies are in section 6). {v.resolution}, JST.{v.end_note}")
        + _figure_html(fig, "fig-curtailment"))


def _sites_section(v: _View) -> str:
    stack = [p for p in ("baseline", v.focus) if p in v.results]
    return _section("sites", _caption(
        f"Facility power of each site (IT power × PUE, idle power included), stacked, for "
        f"{' and '.join(stack)}. {v.resolution}, JST.{v.end_note}")
        + _figure_html(_fig_sites(v.comparison, stack, v.hourly, v.period_end), "fig-sites"))


def _delays_section(v: _View) -> str:
    unfinished = {p: _delays(r)[2] for p, r in v.results.items()}
    left_out = ("every job finished" if not any(unfinished.values()) else
                "unfinished: " + ", ".join(f"{p} {n:,}" for p, n in unfinished.items()))
    fig, note = _fig_delays(v.comparison)
    return _section("delays", _caption(
        "Share of training, fine-tuning and batch-inference jobs that finished within a given "
        "delay past the earliest finish they could have had (release + run time at full speed). "
        f"Online inference has no delay and is left out; so are jobs that never finished ({left_out})."
        + note) + _figure_html(fig, "fig-delays"))


def _apn_section(v: _View, book) -> str:
    focus, k = v.focus, v.table[v.focus]
    parts = []
    if book is not None:
        fig = _fig_links(book, v.results[focus], v.hourly)
        if fig is None:
            parts.append(_caption(f"{focus} set up no lightpath: no link was used."))
        else:
            parts.append(_caption(
                f"Wavelengths that {focus}'s checkpoint moves held on each link, the most at any "
                f"instant within each {'hour' if v.hourly else 'slot'} (JST), for the {TOP_LINKS} "
                "links with the highest peak share (each label gives the link's wavelengths). "
                "Moves take seconds to minutes, so a slot shows the peak of a short burst.")
                + _figure_html(fig, "fig-apn-links"))
        source = "the lightpath reservations"
    else:
        chunks = int(v.results[focus].counters.get("chunks", 1))
        why = (f"the run was cut in time into {chunks} chunks, each with a lightpath book of its own"
               if chunks > 1 else "this comparison does not carry the controllers' lightpath books "
               "(pass lightpaths= to write_report)")
        parts.append(_caption(
            f"Link utilisation over time is not shown: {why}. The run's peak link "
            f"utilisation under {focus} was {_fmt(k['apn_peak_link_utilisation_pct'])} % "
            f"over {int(k['lightpaths']):,} lightpath(s)."))
        source = ("each job's home and final site (a job that moved several times is counted on "
                  "that one pair)")
    pairs = _pairs(v.comparison, focus, book)
    if len(pairs):
        parts.append(_caption(
            f"Checkpoint data {focus} moved over the APN per site pair (top {TOP_PAIRS}), from "
            f"{source}; in all {_fmt(k['apn_moved_tb'])} TB in {int(k['moves']):,} move(s)."))
        parts.append(_figure_html(_fig_pairs(pairs, focus, list(v.results)), "fig-apn-pairs"))
        parts.append(_pairs_html(pairs))
    else:
        parts.append(_caption(f"{focus} moved no job over the APN."))
    return _section("apn", "\n".join(parts))


def _policies_section(v: _View) -> str:
    return _section("policies", _caption(
        "The main KPIs side by side, one bar per policy (values as in the table of section 1).")
        + _figure_html(_fig_policies(v.comparison), "fig-policies")
        + _caption("Demand-response requests: each policy's load in the area when the request "
                   "came, what it committed, its load over the window and the change against the "
                   "load at the request (mean and minimum over the window), and the time from the "
                   "request to the last action taking effect. A policy that has already left a "
                   "dear area, or filled a curtailing one, has little left to shed or to add.")
        + _dr_html(v.comparison))


def _monthly_section(v: _View) -> str:
    return _section("monthly", _caption(
        f"Curtailed and absorbed energy per area and calendar month (JST) under {v.focus}.")
        + _monthly_html(v.results[v.focus], v.comparison.world.scenario.fleet.areas))


def write_report(comparison: Comparison, path: Path, *, title: str | None = None,
                 lightpaths: Mapping[str, object] | None = None) -> Path:
    """Write the comparison as one self-contained HTML page (plotly.js inline, opens offline).

    comparison : the policies' results on one world (:func:`wattbit.sim.run.simulate`);
    path : the HTML file to write (folders are created);  title : page title (default: the
    scenario's name and period);  lightpaths : per policy, the
    :class:`wattbit.network.LightpathBook` its controller reserved moves in (optional: with it
    section 5 shows link utilisation over time, without it data moved per site pair only).
    Returns the path written.
    """
    _check(comparison)
    _plotly()
    from plotly.offline import get_plotlyjs

    results = comparison.results
    first = next(iter(results.values()))
    sc = comparison.world.scenario
    times = first.areas.index.get_level_values("time")
    run_start, run_end = times.min(), times.max() + pd.Timedelta(hours=first.step_h)
    v = _View(comparison, _table(comparison), _focus(list(results)), _long_run(first), run_start,
              run_end, jst_minute(sc.end) if sc.end < run_end else None)
    body = (_headline_section(v) + _curtailment_section(v) + _sites_section(v) + _delays_section(v)
            + _apn_section(v, (lightpaths or {}).get(v.focus)) + _policies_section(v)
            + _monthly_section(v))
    title = title or f"wattbit: scenario {sc.name}, {jst_minute(sc.start)} – {jst_minute(sc.end)} JST"
    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h in SECTIONS)
    meta = (f"Fleet {sc.fleet.name} ({len(sc.fleet.sites)} sites, {sc.fleet.gpu_count:,} GPUs, "
            f"areas {', '.join(sc.fleet.areas)}); {len(comparison.world.jobs):,} jobs; run window "
            f"{jst_minute(run_start)} – {jst_minute(run_end)} JST in {_fmt(first.step_h * 60)}-minute "
            f"slots; policies {', '.join(results)}.")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"<script>{_DECODER_JS}</script>\n</head><body>\n"
        f'<h1>{html.escape(title)}</h1><p class="meta">{html.escape(meta)}</p><nav>{nav}</nav>\n'
        f"{body}</body></html>\n")
    return write_whole(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
