"""The compact trace statistics bundled in ``resources/workload`` (derived by
:func:`wattbit.data.traces.derive_workload_stats`; sources and licences in its ATTRIBUTION.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["IAT_CLIP_QUANTILE", "MAX_RUNTIME_H", "MIN_RUNTIME_H", "TraceStats", "trace_stats"]

MIN_RUNTIME_H = 0.5
"""Trace jobs shorter than this are left out [h]: below the planner's half-hour slot. In the openb
pods this drops 71 % of the GPU pods but only 5 % of their GPU-hours (docs/workload.md)."""

MAX_RUNTIME_H = 72.0
"""Longer trace jobs are clipped to this run time [h], so no job lasts more than three days.
1.1 % of Philly jobs and 0.8 % of scheduled openb GPU pods run longer (docs/workload.md)."""

IAT_CLIP_QUANTILE = 0.99
"""openb inter-arrival times above this quantile are clipped to it: the pod list has gaps of up
to 16 days (collection pauses, not load) that would otherwise leave a scaled window empty."""


@dataclass(frozen=True, slots=True)
class TraceStats:
    """What the workload builder needs from the traces.

    openb : GPU pods (columns ``num_gpu``, ``duration_h``, ``qos``) with run time in
      [MIN_RUNTIME_H, ∞), run time clipped to MAX_RUNTIME_H;
    openb_all : every scheduled GPU pod (for the report of what was left out);
    iat_pu : openb inter-arrival times normalised to mean 1, clipped at IAT_CLIP_QUANTILE [-];
    philly_q, philly_runtime_h : quantile function of the Philly run time [-], [h];
    azure : per-trace summary (requests, rate, token means and percentiles).
    """

    openb: pd.DataFrame
    openb_all: pd.DataFrame
    iat_pu: np.ndarray
    philly_q: np.ndarray
    philly_runtime_h: np.ndarray
    azure: dict

    def philly_sample_h(self, u: np.ndarray) -> np.ndarray:
        """Philly run times [h] at uniform draws ``u`` in [0, 1], restricted to
        [MIN_RUNTIME_H, ∞) and clipped to MAX_RUNTIME_H (inverse CDF, linear between quantiles)."""
        q_min = float(np.interp(MIN_RUNTIME_H, self.philly_runtime_h, self.philly_q))
        runtime = np.interp(q_min + u * (1.0 - q_min), self.philly_q, self.philly_runtime_h)
        return np.clip(runtime, MIN_RUNTIME_H, MAX_RUNTIME_H)

    @property
    def philly_mean_h(self) -> float:
        """Mean of the restricted, clipped Philly run time [h] (numerical, on 20,001 points)."""
        return float(self.philly_sample_h(np.linspace(0.0, 1.0, 20_001)).mean())


def _text(name: str) -> str:
    return (resources.files("wattbit") / "resources" / "workload" / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def trace_stats() -> TraceStats:
    """Load the bundled statistics once (cached).

    >>> s = trace_stats()
    >>> int(s.openb.num_gpu.max()), bool(s.openb.duration_h.min() >= MIN_RUNTIME_H)
    (8, True)
    """
    import io

    pods = pd.read_csv(io.StringIO(_text("openb_gpu_pods.csv")))
    pods["duration_h"] = pods["duration_s"] / 3600.0
    iat = np.diff(pods["creation_s"].to_numpy(dtype=float))
    iat = np.minimum(iat, np.quantile(iat, IAT_CLIP_QUANTILE))
    iat = iat / iat.mean()
    kept = pods[pods["duration_h"] >= MIN_RUNTIME_H].copy()
    kept["duration_h"] = kept["duration_h"].clip(upper=MAX_RUNTIME_H)
    philly = pd.read_csv(io.StringIO(_text("philly_runtime_quantiles.csv")))
    return TraceStats(
        openb=kept.reset_index(drop=True),
        openb_all=pods,
        iat_pu=iat,
        philly_q=philly["q"].to_numpy(),
        philly_runtime_h=philly["runtime_s"].to_numpy() / 3600.0,
        azure=json.loads(_text("azure_llm_summary.json")),
    )
