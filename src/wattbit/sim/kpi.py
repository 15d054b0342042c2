"""The figures users care about, from a twin run (MISSION.md, "What good means")."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from wattbit.errors import InvalidInput
from wattbit.sim.twin import TwinResult
from wattbit.units import JST

__all__ = ["KPI_LABELS", "MEASURED_KPIS", "absorbed_by_area", "kpi_table", "kpis"]

KPI_LABELS: dict[str, str] = {
    "curtailment_absorbed_mwh": "curtailment absorbed [MWh]",
    "curtailment_absorbed_pct": "share of curtailment in fleet areas [%]",
    "energy_mwh": "energy [MWh]",
    "cost_mjpy": "energy cost [M JPY]",
    "emissions_avg_t": "emissions, average [t-CO2]",
    "emissions_marginal_t": "emissions, marginal [t-CO2]",
    "deadline_misses": "deadline misses [jobs]",
    "inference_unserved_gpu_h": "inference unserved [GPU-h]",
    "inference_slo_violations": "inference SLO violations [jobs]",
    "gpu_h_lost_to_moves": "lost to checkpoints and moves [GPU-h]",
    "moves": "migrations [-]",
    "apn_moved_tb": "APN data moved [TB]",
    "apn_peak_link_utilisation_pct": "APN peak link utilisation [%]",
    "lightpaths": "lightpaths set up [-]",
    "dr_delivered_mw": "DR delivered, mean [MW]",
    "dr_response_s": "DR response, worst [s]",
    "mean_delay_h": "job delay, mean [h]",
    "p95_delay_h": "job delay, p95 [h]",
    "work_done_gpu_h": "work done [GPU-h]",
    "unfinished_jobs": "jobs unfinished when the run ends [jobs]",
    "decide_ms_mean": "decision time, mean [ms]",
}

MEASURED_KPIS = frozenset({"dr_response_s", "decide_ms_mean"})
"""The KPIs that hold the controller's measured wall time (a DR response counts the decision's
own time): two runs of the same inputs agree on every KPI but these."""


EXTRA_LABELS: dict[str, str] = {
    "wls_vs_oracle_absorbed_pct": "wls / oracle run, curtailment absorbed [%]",
    "curtailment_absorbed_bound_mwh": "perfect-foresight bound, curtailment absorbed [MWh]",
    "objective_bound_mjpy": "perfect-foresight bound, objective [M JPY]",
    "wls_vs_bound_absorbed_pct": "wls / perfect-foresight bound, absorbed [%]",
}


def kpis(r: TwinResult) -> dict[str, float]:
    """One number per KPI for a run."""
    h = r.step_h
    a = r.areas
    energy = float((a["load_mw"] * h).sum())
    absorbed = float((a["absorbed_mw"] * h).sum())
    curtailed = float((a["curtailment_mw"] * h).sum())
    grid_mwh = (a["load_mw"] - a["absorbed_mw"]) * h
    jobs = r.jobs
    batch = jobs[jobs["kind"] != "online_inference"]
    inf = jobs[jobs["kind"] == "online_inference"]
    delays = batch["delay_h"].dropna().astype(float)
    dr = r.dr
    return {
        "curtailment_absorbed_mwh": absorbed,
        "curtailment_absorbed_pct": 100.0 * absorbed / curtailed if curtailed > 0 else 0.0,
        "energy_mwh": energy,
        "cost_mjpy": float((a["load_mw"] * h * a["price_jpy_per_mwh"]).sum()) / 1e6,
        "emissions_avg_t": float((a["load_mw"] * h * a["carbon_avg_g_per_kwh"]).sum()) / 1000.0,
        "emissions_marginal_t": float((grid_mwh * a["carbon_marginal_g_per_kwh"]).sum()) / 1000.0,
        "deadline_misses": int(batch["missed"].sum()),
        "inference_unserved_gpu_h": float(inf["unserved_gpu_h"].sum()) if len(inf) else 0.0,
        "inference_slo_violations": int((inf["unserved_gpu_h"] > 1e-6).sum()) if len(inf) else 0,
        "gpu_h_lost_to_moves": float(r.counters.get("lost_gpu_h", 0.0)),
        "moves": int(r.counters.get("moves", 0)),
        "apn_moved_tb": float(r.counters.get("moved_gb", 0.0)) / 1000.0,
        "apn_peak_link_utilisation_pct": 100.0 * float(r.counters.get("peak_link_utilisation_pu", 0.0)),
        "lightpaths": int(r.counters.get("lightpaths", 0)),
        "dr_delivered_mw": float(dr["delivered_mean_mw"].mean()) if len(dr) else 0.0,
        "dr_response_s": float(dr["response_s"].max()) if len(dr) else 0.0,
        "mean_delay_h": float(delays.mean()) if len(delays) else 0.0,
        "p95_delay_h": float(np.percentile(delays, 95)) if len(delays) else 0.0,
        "work_done_gpu_h": float(batch["done_gpu_h"].sum()),
        "unfinished_jobs": int((~batch["finished"].astype(bool)).sum()),
        "decide_ms_mean": float(np.mean(r.decide_s) * 1000.0) if len(r.decide_s) else 0.0,
    }


def kpi_table(results: Mapping[str, TwinResult]) -> pd.DataFrame:
    """KPIs as rows, policies as columns; with ``wls`` and ``oracle`` present, the ratio of
    their curtailment absorbed is added as the row ``wls_vs_oracle_absorbed_pct``."""
    table = pd.DataFrame({name: kpis(r) for name, r in results.items()})
    if "wls" in table and "oracle" in table:
        o = table.loc["curtailment_absorbed_mwh", "oracle"]
        ratio = 100.0 * table.loc["curtailment_absorbed_mwh", "wls"] / o if o > 0 else np.nan
        table.loc["wls_vs_oracle_absorbed_pct"] = np.nan
        table.loc["wls_vs_oracle_absorbed_pct", "wls"] = ratio
    return table


_PERIOD_OF_START = {"MS": "M", "QS": "Q", "YS": "Y"}
"""Offset aliases of a period's start, and the period they name."""


def absorbed_by_area(r: TwinResult, freq: str | None = None) -> pd.DataFrame:
    """Curtailed and absorbed MWh per area (and per period, in JST: ``freq`` a pandas period such
    as ``"M"`` for months, ``"W"`` for weeks or ``"D"`` for days; ``"MS"`` is taken as months)."""
    a = r.areas[["curtailment_mw", "absorbed_mw"]] * r.step_h
    a.columns = ["curtailed_mwh", "absorbed_mwh"]
    if freq is None:
        out = a.groupby(level="area").sum()
    else:
        t = a.index.get_level_values("time").tz_convert(JST)
        period = _PERIOD_OF_START.get(freq, freq)
        try:
            periods = t.tz_localize(None).to_period(period)
        except (ValueError, TypeError):
            raise InvalidInput(f"absorbed_by_area: freq = {freq!r} is not a period; give e.g. 'M' (months), "
                               "'W' (weeks) or 'D' (days)") from None
        out = a.groupby([periods, a.index.get_level_values("area")]).sum()
    out["absorbed_pct"] = 100.0 * out["absorbed_mwh"] / out["curtailed_mwh"].where(out["curtailed_mwh"] > 0)
    return out


def format_kpi_table(table: pd.DataFrame) -> str:
    """The KPI table as fixed-width text (labels with units, one column per policy); the form
    printed by ``wattbit run`` and kept as a golden file in the tests."""
    labels = dict(KPI_LABELS, **EXTRA_LABELS)
    rows = [(labels.get(k, k), [_fmt(v) for v in table.loc[k]]) for k in table.index]
    width = max(len(r[0]) for r in rows)
    cols = [max(len(str(c)), *(len(r[1][i]) for r in rows)) for i, c in enumerate(table.columns)]
    head = " " * width + "  " + "  ".join(str(c).rjust(w) for c, w in zip(table.columns, cols))
    lines = [head, "-" * len(head)]
    for label, cells in rows:
        lines.append(label.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, cols)))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    v = float(v)
    if abs(v) >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:,.2f}"
