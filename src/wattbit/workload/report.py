"""What a built workload looks like, and how it compares with the traces it came from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from wattbit.domain import Fleet, Job, JobKind
from wattbit.errors import InvalidInput
from wattbit.workload.stats import trace_stats

__all__ = [
    "KS_ALPHA_COEF",
    "QUANTILE_REL_TOL_PU",
    "SIZE_BINS_GPUS",
    "SIZE_SHARE_TOL_PU",
    "check_jobs",
    "compare_to_trace",
    "describe_workload",
    "job_sites",
    "jobs_frame",
    "mix_report",
    "size_distribution",
]

SIZE_SHARE_TOL_PU = 0.02
"""Tolerance on the share of jobs of each size against the trace: the larger of 0.02 and three
binomial standard errors, sqrt(p(1-p)/n) [pu]."""

KS_ALPHA_COEF = 1.95
"""Kolmogorov–Smirnov critical value coefficient at the 0.1 % level (c(α) = sqrt(-ln(α/2)/2) = 1.95):
the run-time distribution matches the trace when KS ≤ max(0.03, 1.95/sqrt(n)). A bootstrap from
the trace fails this one time in a thousand."""

QUANTILE_REL_TOL_PU = 0.15
"""Tolerance on the run-time quartiles and 90th percentile against the trace, relative [pu]; for
few jobs it widens to the trace's quantile spread over q ± 3 sqrt(q(1-q)/n)."""

_KIND_ORDER = [k.value for k in JobKind]


def jobs_frame(jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per job: job_id, tenant, kind, gpus, runtime_h, work_gpu_h, release, deadline,
    slack_h, home_site, resident (one allowed area), checkpoint_gb, user_area, rtt_budget_s."""
    return pd.DataFrame({
        "job_id": [j.job_id for j in jobs],
        "tenant": [j.tenant for j in jobs],
        "kind": pd.Categorical([j.kind.value for j in jobs], categories=_KIND_ORDER),
        "gpus": np.array([j.gpus for j in jobs], dtype=int),
        "runtime_h": np.array([j.runtime_h for j in jobs], dtype=float),
        "work_gpu_h": np.array([j.work_gpu_h for j in jobs], dtype=float),
        "release": pd.DatetimeIndex([j.release for j in jobs]) if jobs else pd.DatetimeIndex([], tz="UTC"),
        "deadline": [j.deadline for j in jobs],
        "slack_h": [j.slack_h for j in jobs],
        "home_site": [j.home_site for j in jobs],
        "resident": [len(j.allowed_areas) == 1 for j in jobs],
        "checkpoint_gb": [j.checkpoint_gb for j in jobs],
        "user_area": [j.user_area for j in jobs],
        "rtt_budget_s": [j.rtt_budget_s for j in jobs],
    })


def mix_report(jobs: Sequence[Job]) -> pd.DataFrame:
    """The mix by kind: jobs, GPU-hours and their share, GPU-count and run-time percentiles,
    residency share and mean checkpoint; a last row ``all``.

    >>> from wattbit.examples import tiny_jobs
    >>> r = mix_report(tiny_jobs())
    >>> int(r.loc["all", "jobs"]), float(r.loc["online_inference", "gpu_h"])
    (12, 10752.0)
    """
    df = jobs_frame(jobs)
    if df.empty:
        raise InvalidInput("mix_report: no jobs; build some first (wattbit.workload.build_jobs)")
    total = df["work_gpu_h"].sum()

    def row(g: pd.DataFrame) -> dict:
        return {
            "jobs": len(g),
            "gpu_h": g["work_gpu_h"].sum(),
            "gpu_h_share_pu": g["work_gpu_h"].sum() / total,
            "gpus_p50": g["gpus"].median(),
            "gpus_p90": g["gpus"].quantile(0.9),
            "gpus_max": g["gpus"].max(),
            "runtime_h_p50": g["runtime_h"].median(),
            "runtime_h_mean": g["runtime_h"].mean(),
            "runtime_h_p90": g["runtime_h"].quantile(0.9),
            "resident_share_pu": g["resident"].mean(),
            "checkpoint_gb_mean": g["checkpoint_gb"].mean(),
        }

    rows = {k: row(g) for k, g in df.groupby("kind", observed=True)}
    rows["all"] = row(df)
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "kind"
    return out


def _unit(df: pd.DataFrame) -> int:
    batch = df[df["kind"] != JobKind.ONLINE_INFERENCE.value]
    return int(batch["gpus"].min()) if len(batch) else 8


SIZE_BINS_GPUS = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 10**9)
"""Upper edges of the GPU-count bins of :func:`size_distribution` (powers of two) [GPUs]."""


def size_distribution(jobs: Sequence[Job]) -> pd.DataFrame:
    """Share of each kind's jobs by GPU count, in power-of-two bins ``(low, high]``
    (rows: bin, columns: kind) [pu]; empty bins are dropped.

    >>> from wattbit.examples import tiny_jobs
    >>> round(float(size_distribution(tiny_jobs()).loc["(64, 128]", "training"]), 3)
    0.333
    """
    df = jobs_frame(jobs)
    edges = SIZE_BINS_GPUS
    labels = [f"({lo}, {hi}]" if hi < 10**9 else f"> {lo}" for lo, hi in pairwise(edges)]
    bins = pd.cut(df["gpus"], bins=list(edges), labels=labels)
    table = pd.crosstab(bins, df["kind"], normalize="columns")
    table = table.loc[table.sum(axis=1) > 0]
    table.columns = [str(c) for c in table.columns]
    table.index = table.index.astype(str)
    table.index.name = "gpus"
    return table


def _step_cdf(sorted_x: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_x, at, side="right") / len(sorted_x)


def _ks(sample: np.ndarray, ref_sorted: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between the step CDFs of a sample and a sorted reference
    sample (exact with ties, e.g. the run times clipped at MAX_RUNTIME_H).

    >>> _ks(np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    0.5
    """
    xs = np.sort(sample)
    at = np.union1d(xs, ref_sorted)
    return float(np.max(np.abs(_step_cdf(xs, at) - _step_cdf(ref_sorted, at))))


def compare_to_trace(jobs: Sequence[Job]) -> pd.DataFrame:
    """Statistics of the built jobs beside the trace they were drawn from, with tolerances.

    Rows (``kind``, ``statistic``): per batch kind, the share of jobs at 1, 2, 4, 8 trace GPUs
    (``share size k``: GPU count ÷ the size unit) against the openb pods; the run-time quartiles
    and 90th percentile [h] and the KS distance against openb (fine-tuning, batch inference) or
    Philly (training) run times, both restricted to [MIN_RUNTIME_H, MAX_RUNTIME_H] as the builder
    does. Columns: ``source`` (trace), ``built``, ``trace``, ``tolerance``, ``ok``.
    """
    stats = trace_stats()
    df = jobs_frame(jobs)
    unit = _unit(df)
    openb = stats.openb
    size_share = openb["num_gpu"].value_counts(normalize=True)
    ob_sorted = np.sort(openb["duration_h"].to_numpy())
    ph_sorted = stats.philly_sample_h((np.arange(20_000) + 0.5) / 20_000)  # quantile midpoints
    rows = []
    for kind in (JobKind.TRAINING, JobKind.FINE_TUNING, JobKind.BATCH_INFERENCE):
        g = df[df["kind"] == kind.value]
        n = len(g)
        if n == 0:
            continue
        trace_gpus = g["gpus"].to_numpy() / unit
        for size in (1, 2, 4, 8):
            p = float(size_share.get(size, 0.0))
            tol = max(SIZE_SHARE_TOL_PU, 3 * math.sqrt(p * (1 - p) / n))
            built = float(np.mean(trace_gpus == size))
            rows.append((kind.value, f"share size {size}", "openb", built, p, tol, abs(built - p) <= tol))
        runtime = g["runtime_h"].to_numpy()
        ref_sorted, source = (ph_sorted, "philly") if kind is JobKind.TRAINING else (ob_sorted, "openb")
        for q in (0.25, 0.5, 0.75, 0.9):
            ref = float(np.quantile(ref_sorted, q))
            built = float(np.quantile(runtime, q))
            se = 3 * math.sqrt(q * (1 - q) / n)  # sampling band of a quantile of n draws
            band = np.quantile(ref_sorted, [max(q - se, 0.0), min(q + se, 1.0)])
            tol = max(QUANTILE_REL_TOL_PU * ref, float(np.max(np.abs(band - ref))))
            rows.append((kind.value, f"runtime_h p{int(q * 100)}", source, built, ref, tol,
                         abs(built - ref) <= tol))
        ks = _ks(runtime, ref_sorted)
        tol = max(0.03, KS_ALPHA_COEF / math.sqrt(n))
        rows.append((kind.value, "runtime KS", source, ks, 0.0, tol, ks <= tol))
    out = pd.DataFrame(rows, columns=["kind", "statistic", "source", "built", "trace", "tolerance", "ok"])
    return out.set_index(["kind", "statistic"])


def job_sites(fleet: Fleet, job: Job) -> list:
    """The fleet's sites a job may run at; InvalidInput, naming the job and the fix, if its home
    site is not the fleet's or its allowed areas hold none of the fleet's sites."""
    fleet.site(job.home_site)
    sites = fleet.sites_in(job.allowed_areas)
    if not sites:
        raise InvalidInput(
            f"job {job.job_id!r}: allowed_areas = {sorted(job.allowed_areas)} hold no site of fleet "
            f"{fleet.name!r} (its areas: {', '.join(fleet.areas)}); allow one of those areas"
        )
    return sites


def check_jobs(fleet: Fleet, jobs: Sequence[Job]) -> None:
    """Reject jobs a fleet cannot run: unknown home site, no fleet site in the allowed areas, or
    more GPUs than any allowed site holds. Raises InvalidInput naming the job and the fix.

    >>> from wattbit.examples import tiny_fleet, tiny_jobs
    >>> check_jobs(tiny_fleet(), tiny_jobs())
    """
    for j in jobs:
        sites = job_sites(fleet, j)
        largest = max(s.gpu_count for s in sites)
        if j.gpus > largest:
            raise InvalidInput(
                f"job {j.job_id!r}: gpus = {j.gpus} but the largest site in its allowed areas holds "
                f"{largest}; split the job or allow more areas"
            )


def describe_workload(fleet: Fleet, spec, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Build the jobs and return the three reports: ``mix`` (:func:`mix_report`), ``sizes``
    (:func:`size_distribution`) and ``trace`` (:func:`compare_to_trace`)."""
    from wattbit.workload.build import build_jobs

    jobs = build_jobs(fleet, spec, start, end)
    return {"mix": mix_report(jobs), "sizes": size_distribution(jobs), "trace": compare_to_trace(jobs)}
