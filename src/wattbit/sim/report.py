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
:data:`HOURLY_AFTER_DAYS` days are shown as hourly means (peaks for link utilisation) to keep the
file small. plotly is an optional dependency: ``pip install 'wattbit[report]'``.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.errors import InvalidInput, require_extra
from wattbit.plan.build import fleet_arrays
from wattbit.sim.kpi import KPI_LABELS, absorbed_by_area, kpi_table
from wattbit.sim.run import Comparison
from wattbit.sim.twin import TwinResult

__all__ = ["HOURLY_AFTER_DAYS", "SECTIONS", "link_utilisation_pu", "report_summary", "write_report"]

JST = "Asia/Tokyo"

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
_COUNT_KPIS = {"deadline_misses", "inference_slo_violations", "moves", "lightpaths"}
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
    if "oracle" in t and f != "oracle":
        o = t.loc["curtailment_absorbed_mwh", "oracle"]
        if o > 0:
            ratio = 100.0 * k["curtailment_absorbed_mwh"] / o
            s += f", {_fmt(ratio)} % of the perfect-foresight oracle ({_fmt(o)} MWh)"
            if ratio > 100.0:
                s += (" (the oracle weighs curtailment against cost, carbon and deadlines, so it "
                      "does not bound this one figure)")
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
        parts = [
            f"{row.request_id} ({'上げ' if row.direction == 'up' else '下げ'}DR, {row.area}): "
            f"{_fmt(row.asked_mw)} MW asked, {_fmt(row.committed_mw)} MW committed, "
            f"{_fmt(row.delivered_mean_mw)} MW delivered on average, response "
            f"{_fmt(row.response_s)} s (deadline {_fmt(row.response_deadline_s)} s)"
            for row in dr.itertuples()
        ]
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


def _fig_curtailment(comparison: Comparison, policies: Sequence[str], hourly: bool):
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
    x = _x_axis(curt.index, step_h)
    absorbed = {p: _wide(results[p].areas, "absorbed_mw", "area", hourly, areas) for p in policies}
    for row, area in enumerate(curtailing, start=1):
        cap = area_max_mw.get(area, float("inf"))
        fig.add_trace(go.Scatter(
            name="curtailment (capped at the fleet's full-load power)", legendgroup="curtailment",
            showlegend=row == 1, y=_f4(np.minimum(curt[area].to_numpy(), cap)), **x,
            mode="lines", line={"width": 0, "shape": "hv"}, fill="tozeroy", fillcolor="rgba(160,160,160,0.45)",
            hovertemplate="%{y:.1f} MW"), row=row, col=1)
        for p in policies:
            fig.add_trace(go.Scatter(
                name=f"absorbed, {p}", legendgroup=p, showlegend=row == 1, y=_f4(absorbed[p][area]), **x,
                mode="lines", line={"width": 1.4, "shape": "hv", "color": _colour(p, list(results))},
                hovertemplate="%{y:.1f} MW"), row=row, col=1)
        fig.update_yaxes(title_text="power [MW]", rangemode="tozero", row=row, col=1)
    fig.update_xaxes(title_text="time [JST]", row=len(curtailing), col=1)
    _layout(fig, 170 + 210 * len(curtailing))
    return fig


def _fig_sites(comparison: Comparison, policies: Sequence[str], hourly: bool):
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
                line={"width": 0.5, "shape": "hv", "color": colour}, fillcolor=colour,
                hovertemplate="%{y:.1f} MW"), row=row, col=1)
        fig.update_yaxes(title_text="power [MW]", range=[0, 1.05 * top], row=row, col=1)
    fig.update_xaxes(title_text="time [JST]", row=len(policies), col=1)
    _layout(fig, 160 + 300 * len(policies))
    return fig


def _ecdf(values: np.ndarray, max_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
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


def _fig_delays(comparison: Comparison):
    go, _ = _plotly()
    fig = go.Figure()
    policies = list(comparison.results)
    for p, r in comparison.results.items():
        d, n, _ = _delays(r)
        if n == 0:
            continue
        x, y = _ecdf(d)
        fig.add_trace(go.Scatter(
            name=f"{p} ({n:,} jobs)", x=_f4(x), y=_f4(y), mode="lines", line_shape="hv",
            line={"width": 2, "color": _colour(p, policies)},
            hovertemplate="%{y:.1f} % of jobs within %{x:.1f} h"))
    _layout(fig, 420, xaxis_title="delay past the earliest possible finish [h]",
            yaxis_title="share of jobs finished within that delay [%]")
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(range=[0, 101])
    fig.update_xaxes(rangemode="tozero")
    return fig


def link_utilisation_pu(book, time: pd.DatetimeIndex, step_s: float) -> pd.DataFrame:
    """Peak share of each APN link's wavelengths in use within each slot [pu].

    book : a :class:`wattbit.network.LightpathBook` after a run;  time : slot starts (UTC);
    step_s : slot length [s]. Returns a (time × link) frame; the columns follow the APN's links.
    """
    step = pd.Timedelta(seconds=step_s)
    time = pd.DatetimeIndex(time).as_unit("ns")  # reservations end at sub-second instants
    links = [link.link_id for link in book.apn.links]
    out = np.zeros((len(time), len(links)))
    busy: set[int] = set()
    for r in book.reservations:
        first = max(0, int(time.searchsorted(r.start, side="right")) - 1)
        last = int(time.searchsorted(r.end, side="left"))
        busy.update(range(first, last))
    for i in sorted(busy):
        u = book.utilisation(time[i], time[i] + step)
        out[i] = [u[link] for link in links]
    return pd.DataFrame(out, index=pd.DatetimeIndex(time, name="time"),
                        columns=pd.Index(links, name="link"))


def _fig_links(book, r: TwinResult, hourly: bool):
    """Heatmap of the busiest links' utilisation over time; None if no lightpath was set up."""
    go, _ = _plotly()
    if not book.reservations:
        return None
    time = r.areas.index.get_level_values("time").unique()
    u = link_utilisation_pu(book, time, r.step_h * 3600.0)
    order = sorted(u.columns, key=lambda c: (-u[c].max(), -u[c].mean(), c))
    top = [c for c in order[:TOP_LINKS] if u[c].max() > 0]
    w = u[top]
    w.index = w.index.tz_convert(JST).tz_localize(None)
    if hourly:
        w = w.resample("h").max()
    fig = go.Figure(go.Heatmap(
        z=_f4(100.0 * w.to_numpy().T), y=top, **_x_axis(w.index, r.step_h), zmin=0,
        colorscale="Blues", colorbar={"title": "wavelengths in use [%]"},
        hovertemplate="%{y}<br>%{x}<br>%{z:.1f} % of wavelengths"))
    _layout(fig, 190 + 28 * len(top), xaxis_title="time [JST]", yaxis_title="APN link")
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
    _layout(fig, 130 + 30 * len(top), xaxis_title="checkpoint data moved [TB]",
            yaxis_title="site pair")
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


def _jst_text(ts) -> str:
    return pd.Timestamp(ts).tz_convert(JST).strftime("%Y-%m-%d %H:%M")


def _dr_html(comparison: Comparison) -> str:
    rows = []
    for p, r in comparison.results.items():
        for d in r.dr.itertuples():
            rows.append([p, d.request_id, f"{'上げ' if d.direction == 'up' else '下げ'} ({d.direction})",
                         d.area, f"{_jst_text(d.start)} – {_jst_text(d.end)[-5:]}", _fmt(d.asked_mw),
                         _fmt(d.committed_mw), _fmt(d.delivered_mean_mw), _fmt(d.delivered_min_mw),
                         _fmt(d.response_s), _fmt(d.response_deadline_s)])
    if not rows:
        return "<p>No demand-response request in this scenario.</p>"
    return _html_table(["policy", "request", "direction", "area", "window [JST]", "asked [MW]",
                        "committed [MW]", "delivered, mean [MW]", "delivered, min [MW]",
                        "response [s]", "deadline [s]"], rows, "dr")


def _monthly_html(r: TwinResult) -> str:
    with warnings.catch_warnings():  # months of JST wall-clock time are meant: dropping the zone is right
        warnings.filterwarnings("ignore", message="Converting to PeriodArray", category=UserWarning)
        m = absorbed_by_area(r, "MS")
    rows = [[str(month), area, _fmt(row.curtailed_mwh), _fmt(row.absorbed_mwh), _fmt(row.absorbed_pct)]
            for (month, area), row in zip(m.index, m.itertuples())]
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
th,td{border:1px solid #d0d0d0;padding:3px 9px;white-space:nowrap}th{background:#f2f2f2;text-align:left}
td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
table.dr td:nth-child(-n+5){text-align:left}table.monthly td:nth-child(2){text-align:left}
nav a{margin-right:1em}
"""


def _figure_html(fig, div_id: str) -> str:
    _plotly()
    import plotly.io as pio

    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=_PLOT_CONFIG, default_height=f"{fig.layout.height}px")


def _section(anchor: str, body: str) -> str:
    heading = dict(SECTIONS)[anchor]
    return f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>\n{body}\n</section>\n'


def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>'


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
    policies = list(results)
    focus = _focus(policies)
    first = results[policies[0]]
    hourly = _long_run(first)
    sc = comparison.world.scenario
    times = first.areas.index.get_level_values("time")
    run_start, run_end = times.min(), times.max() + pd.Timedelta(hours=first.step_h)
    title = title or f"wattbit: scenario {sc.name}, {_jst_text(sc.start)} – {_jst_text(sc.end)} JST"
    shown = [p for p in ("baseline", focus, "oracle") if p in results]
    stack = [p for p in ("baseline", focus) if p in results]
    resolution = "hourly means" if hourly else f"{_fmt(first.step_h * 60)}-minute slots"

    parts = []
    sentences = "".join(f"<li>{html.escape(s)}</li>" for s in report_summary(comparison))
    parts.append(_section("headline", (
        f'<ul class="headline">{sentences}</ul>'
        + _caption("Every KPI of every policy over the whole run window. Energy, cost and "
                   "emissions count the fleet's whole facility load, idle power included; the "
                   "oracle solves the same problem once with the real future known.")
        + _kpi_html(_table(comparison)))))

    fig = _fig_curtailment(comparison, shown, hourly)
    if fig is None:
        body = _caption("No area with a fleet site curtailed in this period.")
    else:
        body = (_caption(
            "Grey: power the area's grid operator curtailed, capped at the fleet's full-load "
            "power in that area (the most the fleet could have absorbed); the subplot title gives "
            f"the uncapped total and peak. Lines: curtailment absorbed by {', '.join(shown)} "
            f"(the other policies are in section 6). {resolution.capitalize()}, JST.")
            + _figure_html(fig, "fig-curtailment"))
    parts.append(_section("curtailment", body))

    parts.append(_section("sites", _caption(
        f"Facility power of each site (IT power × PUE, idle power included), stacked, for "
        f"{' and '.join(stack)}. {resolution.capitalize()}, JST.")
        + _figure_html(_fig_sites(comparison, stack, hourly), "fig-sites")))

    counts = "; ".join(f"{p}: {_delays(r)[1]:,} finished, {_delays(r)[2]:,} unfinished"
                       for p, r in results.items())
    parts.append(_section("delays", _caption(
        "Share of training, fine-tuning and batch-inference jobs that finished within a given "
        "delay past the earliest finish they could have had (release + run time at full speed). "
        f"Online inference has no delay and is left out; so are jobs that never finished ({counts}).")
        + _figure_html(_fig_delays(comparison), "fig-delays")))

    book = (lightpaths or {}).get(focus)
    k = _table(comparison)[focus]
    apn = []
    if book is not None:
        fig = _fig_links(book, results[focus], hourly)
        if fig is None:
            apn.append(_caption(f"{focus} set up no lightpath: no link was used."))
        else:
            apn.append(_caption(
                f"Share of each link's wavelengths that {focus}'s checkpoint moves held, the peak "
                f"within each {'hour' if hourly else 'slot'} (JST), for the {TOP_LINKS} busiest "
                "links. Moves take seconds to minutes, so a slot shows the peak of a short burst.")
                + _figure_html(fig, "fig-apn-links"))
        source = "the lightpath reservations"
    else:
        apn.append(_caption(
            "Link utilisation over time is not shown: this comparison does not carry the "
            "controllers' lightpath books (pass lightpaths= to write_report). The run's peak link "
            f"utilisation under {focus} was {_fmt(k['apn_peak_link_utilisation_pct'])} % "
            f"over {int(k['lightpaths']):,} lightpath(s)."))
        source = ("each job's home and final site (a job that moved several times is counted on "
                  "that one pair)")
    pairs = _pairs(comparison, focus, book)
    if len(pairs):
        apn.append(_caption(
            f"Checkpoint data {focus} moved over the APN per site pair (top {TOP_PAIRS}), from "
            f"{source}; in all {_fmt(k['apn_moved_tb'])} TB in {int(k['moves']):,} move(s)."))
        apn.append(_figure_html(_fig_pairs(pairs, focus, policies), "fig-apn-pairs"))
        apn.append(_pairs_html(pairs))
    else:
        apn.append(_caption(f"{focus} moved no job over the APN."))
    parts.append(_section("apn", "\n".join(apn)))

    parts.append(_section("policies", _caption(
        "The main KPIs side by side, one bar per policy (values as in the table of section 1).")
        + _figure_html(_fig_policies(comparison), "fig-policies")
        + _caption("Demand-response requests: what each policy committed, the change of its load "
                   "in the area against the load just before the request (mean and minimum over "
                   "the window) and the time from the request to the last action taking effect.")
        + _dr_html(comparison)))

    parts.append(_section("monthly", _caption(
        f"Curtailed and absorbed energy per area and calendar month (JST) under {focus}.")
        + _monthly_html(results[focus])))

    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h in SECTIONS)
    meta = (f"Fleet {sc.fleet.name} ({len(sc.fleet.sites)} sites, {sc.fleet.gpu_count:,} GPUs, "
            f"areas {', '.join(sc.fleet.areas)}); {len(comparison.world.jobs):,} jobs; run window "
            f"{_jst_text(run_start)} – {_jst_text(run_end)} JST in {_fmt(first.step_h * 60)}-minute "
            f"slots; policies {', '.join(policies)}.")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>\n"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head><body>\n"
        f"<h1>{html.escape(title)}</h1><p class=\"meta\">{html.escape(meta)}</p><nav>{nav}</nav>\n"
        + "".join(parts) + "</body></html>\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
