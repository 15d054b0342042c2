"""Build a fleet's jobs from the real traces (or a synthetic generator), seeded and scaled.

The method, step by step (docs/workload.md has the numbers and the reasons):

1. **Offered load.** The workload asks for ``utilisation_pu × fleet GPUs`` busy GPUs on average;
   ``inference_share_pu`` of it is online inference, the rest is split between training,
   fine-tuning and batch inference by :data:`KIND_SHARE_PU`.
2. **Job shapes** come from the traces. Training: GPU count from the Alibaba openb pods, run time
   from the Philly run-time distribution. Fine-tuning and batch inference: (GPU count, run time)
   pairs drawn together from the openb pods, so their correlation is kept. Runs shorter than
   :data:`~wattbit.workload.stats.MIN_RUNTIME_H` are left out, longer than
   :data:`~wattbit.workload.stats.MAX_RUNTIME_H` clipped.
3. **Size scaling.** One trace GPU becomes :func:`size_unit_gpus` H200s (8 × a power of two, so
   GPU counts are whole 8-GPU nodes): the openb cluster's pods use 1–8 GPUs of older types,
   while the fleet has ~10^5 H200s; the unit keeps the number of jobs tractable.
4. **Arrivals.** The number of jobs of each kind is fixed by the offered load; their release
   times follow the openb inter-arrival times (resampled, normalised) stretched over
   ``[start, end)``, so the trace's burstiness is kept.
5. **Online inference** is a service per user area and serving window: GPUs sized from a request
   rate (population share × an assumed diurnal profile) and the Azure LLM trace's tokens per
   request at a published H200 serving throughput.
6. Tenants, home sites (∝ site GPU count), residency, deadlines, priorities and checkpoint sizes
   follow the documented rules below.

The same ``seed`` gives identical jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType

import numpy as np
import pandas as pd

from wattbit.domain import INTERCONNECTED_AREAS, Fleet, Job, JobKind, WorkloadSpec
from wattbit.domain.area import area as _area
from wattbit.domain.site import Site
from wattbit.errors import InvalidInput
from wattbit.units import JST
from wattbit.workload.stats import MAX_RUNTIME_H, MIN_RUNTIME_H, trace_stats

__all__ = [
    "BYTES_PER_PARAM",
    "DECODE_TOKENS_PER_S_PER_GPU",
    "DIURNAL_PROFILE_PU",
    "KIND_SHARE_PU",
    "NODE_GPUS",
    "ONLINE_WINDOW_H",
    "PARAMS_PER_GPU",
    "PRIORITY",
    "PROMPT_TOKEN_COST_PU",
    "RTT_BUDGETS_S",
    "SERVING_UTILISATION_PU",
    "SLACK_RULE",
    "TENANTS",
    "TENANT_WEIGHTS",
    "USER_POPULATION_M",
    "SyntheticParams",
    "build_jobs",
    "check_workload_fleet",
    "checkpoint_gb",
    "gpu_s_per_request",
    "online_request_rate_per_s",
    "size_unit_gpus",
]

T, FT, BI, OI = JobKind.TRAINING, JobKind.FINE_TUNING, JobKind.BATCH_INFERENCE, JobKind.ONLINE_INFERENCE

KIND_SHARE_PU = MappingProxyType({T: 0.5, FT: 0.2, BI: 0.3})
"""Split of the non-online GPU-hours between kinds [pu]. Assumption (docs/assumptions.md): the
traces do not label kinds; training takes the largest share in AI data centers."""

TENANTS = ("tenant-a", "tenant-b", "tenant-c", "tenant-d", "tenant-e")
TENANT_WEIGHTS = (0.35, 0.25, 0.2, 0.12, 0.08)
"""Share of jobs per tenant [pu] (assumption: a few large tenants and a tail)."""

PRIORITY = MappingProxyType({T: 2, FT: 3, BI: 5, OI: 8})
"""Priority by kind (0 best effort .. 9 critical); tenant-a (the largest) gets +1."""

SLACK_RULE = MappingProxyType({T: (1.0, 3.0, 6.0), FT: (0.5, 2.0, 4.0), BI: (0.25, 1.0, 2.0)})
"""Deadline slack per kind: (low, high, minimum [h]). slack = max(U(low, high) × runtime_h, minimum);
deadline = release + runtime + slack. Assumption: training has generous slack (1–3 × its run
time), batch inference is deadline-bound with moderate slack."""

PARAMS_PER_GPU = MappingProxyType({T: 25e6, FT: 250e6})
"""Model parameters per GPU of the job [params/GPU].

Training: Llama 3 405B was pre-trained on 16,384 H100 (Dubey et al., "The Llama 3 Herd of
Models", 2024): 405e9 / 16,384 ≈ 25 M per GPU. Fine-tuning adapts a larger model on fewer GPUs:
assumption 250 M per GPU (a 70 B model on 256–512 GPUs, full-parameter)."""

BYTES_PER_PARAM = 16.0
"""Training state per parameter with mixed-precision Adam [B]: fp16 weights 2 + fp16 gradients 2
+ fp32 master weights, momentum and variance 12 = 16 bytes (Rajbhandari et al., "ZeRO: Memory
Optimizations Toward Training Trillion Parameter Models", SC 2020, §3.1). The H200 measurement
(resources/power/h200.json) gives 6 B/param for bf16 weights + bf16 moments: 16 is the upper end."""

ONLINE_WINDOW_H = 6.0
"""Length of an online-inference serving window [h], aligned to 0, 6, 12, 18 h JST."""

RTT_BUDGETS_S = (0.02, 0.03, 0.05)
"""Round-trip budgets of online services [s], drawn uniformly: 20 ms (interactive, voice),
30 ms, 50 ms (chat). Assumption; the APN adds ~11 ms RTT Tokyo–Fukuoka (MISSION.md)."""

USER_POPULATION_M = MappingProxyType({
    "hokkaido": 5.2, "tohoku": 10.8, "tokyo": 45.7, "chubu": 15.7, "hokuriku": 2.9,
    "kansai": 20.5, "chugoku": 7.3, "shikoku": 3.7, "kyushu": 12.8, "okinawa": 1.5,
})
"""Population of each TSO service area [million]: 2020 Census prefecture populations (Statistics
Bureau of Japan) summed over each area's prefectures (Tohoku includes Niigata; Tokyo includes
Yamanashi and eastern Shizuoka). Approximate: TSO borders do not follow prefectures exactly.
Online-inference users are placed in proportion."""

DIURNAL_PROFILE_PU = (
    0.55, 0.45, 0.38, 0.34, 0.33, 0.36, 0.48, 0.70, 0.95, 1.10, 1.18, 1.20,
    1.15, 1.18, 1.20, 1.20, 1.18, 1.15, 1.20, 1.35, 1.45, 1.45, 1.25, 0.87,
)
"""Online-inference request rate by hour of day (JST), meant relative to the daily mean [pu].

**Assumption.** The Azure LLM trace 2023 covers one hour, so it gives no diurnal shape; this
profile (night trough at 0.33, a daytime plateau and an evening peak of 1.45) is illustrative
of consumer-facing services. **Known defect:** its mean is 0.944, not 1, so online inference gets
5.6 % fewer GPU-hours than ``inference_share_pu`` asks; normalising it moves every published
figure and waits for a release that measures them again (docs/assumptions.md)."""

DECODE_TOKENS_PER_S_PER_GPU = 29_526 / 8
"""Output tokens per second per H200 when serving a 70 B model under a latency bound [tokens/s]:
MLPerf Inference v4.0, Llama 2 70B, server scenario, 8 × H200 with TensorRT-LLM: 29,526
tokens/s (NVIDIA, "NVIDIA H200 Tensor Core GPUs and NVIDIA TensorRT-LLM Set MLPerf LLM Inference
Records", March 2024) → 3,691 tokens/s per GPU."""

PROMPT_TOKEN_COST_PU = 0.1
"""Cost of one prompt (context) token relative to one output token [pu]. Assumption: the prompt
is processed in one parallel pass, about an order of magnitude cheaper per token than decoding
(the split that motivates Splitwise, Patel et al. 2024)."""

SERVING_UTILISATION_PU = 0.6
"""Mean utilisation at which online services are provisioned, leaving headroom for bursts within
a window and the latency bound [pu]. Assumption."""


def gpu_s_per_request() -> float:
    """Mean GPU-seconds per request of the Azure LLM trace mix (code + conversation, weighted by
    their request counts) [GPU-s].

    >>> round(gpu_s_per_request(), 4)
    0.0805
    """
    az = trace_stats().azure
    total = sum(t["requests"] for t in az.values())
    tokens = sum(
        t["requests"] / total * (t["generated_tokens_mean"] + PROMPT_TOKEN_COST_PU * t["context_tokens_mean"])
        for t in az.values()
    )
    return tokens / DECODE_TOKENS_PER_S_PER_GPU


def online_request_rate_per_s(job: Job) -> float:
    """Request rate an online-inference job is provisioned for [requests/s]:
    gpus × SERVING_UTILISATION_PU / gpu_s_per_request()."""
    return job.gpus * SERVING_UTILISATION_PU / gpu_s_per_request()


def checkpoint_gb(kind: JobKind, gpus: int) -> float:
    """Checkpoint (model + optimiser state) size of a job [GB]: params × BYTES_PER_PARAM, with
    params = PARAMS_PER_GPU[kind] × gpus; 0 for kinds that keep no state.

    >>> checkpoint_gb(JobKind.TRAINING, 2048)       # 51 B params
    819.2
    >>> checkpoint_gb(JobKind.BATCH_INFERENCE, 256)
    0.0
    """
    per_gpu = PARAMS_PER_GPU.get(kind)
    if per_gpu is None:
        return 0.0
    return round(per_gpu * gpus * BYTES_PER_PARAM / 1e9, 3)


NODE_GPUS = 8
"""GPUs per server node [-]: the workload's GPU counts are whole nodes, so a site needs at least
one node to run any of its jobs. Source: NVIDIA DGX H200 datasheet (8 × H200 per system), the
node whose power :data:`wattbit.power.NODE_OVERHEAD_W_PER_GPU` is taken from."""


def check_workload_fleet(fleet: Fleet) -> None:
    """Refuse a fleet the built workload cannot run on: every site needs one whole node.

    >>> from wattbit.examples import tiny_fleet
    >>> check_workload_fleet(tiny_fleet())
    """
    small = [s for s in fleet.sites if s.gpu_count < NODE_GPUS]
    if small:
        raise InvalidInput(
            f"fleet {fleet.name!r}: site {small[0].name!r} has {small[0].gpu_count} GPU(s)"
            + (f" (and {len(small) - 1} more sites fewer than {NODE_GPUS})" if len(small) > 1 else "")
            + f"; the workload's jobs use whole {NODE_GPUS}-GPU nodes, so every site needs at least "
            f"{NODE_GPUS} GPUs (a larger fleet, or fleet_scale)")


def size_unit_gpus(fleet: Fleet) -> int:
    """H200 GPUs per trace GPU: the largest 8 × 2^k that is at most 1/16 of the smallest site and
    1/256 of the fleet (at least 8). The largest trace job (8 trace GPUs) then takes at most half
    of the smallest site, and the fleet holds ≥ 256 one-unit jobs side by side.

    >>> from wattbit.examples import tiny_fleet
    >>> size_unit_gpus(tiny_fleet())
    8
    >>> from wattbit.scenarios import load_fleet
    >>> size_unit_gpus(load_fleet("japan-9"))
    256
    """
    cap = min(min(s.gpu_count for s in fleet.sites) / 16, fleet.gpu_count / 256)
    unit = NODE_GPUS
    while unit * 2 <= cap:
        unit *= 2
    return unit


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    """Parameters of the synthetic generator (``WorkloadSpec.source = "synthetic"``), for sweeps.
    Defaults are fitted to the openb GPU pods that run at least MIN_RUNTIME_H.

    size_probs : probability of 1, 2, 4, 8 trace GPUs [pu] (openb: 0.9839, 0.0044, 0.0028, 0.0089);
    runtime_pareto_alpha : shape α of the run time of fine-tuning and batch inference, Pareto
    with scale MIN_RUNTIME_H and clipped at MAX_RUNTIME_H [-]. The maximum-likelihood fit to openb
    is α = 1 / mean(ln(d / 0.5 h)) = 0.767; it gives the trace's run-time quartiles within 10 %;
    runtime_pareto_alpha_training : the same for training, fitted to Philly (0.737).
    Arrivals are Poisson (uniform order statistics over the window).
    """

    size_probs: tuple[float, float, float, float] = (0.9839, 0.0044, 0.0028, 0.0089)
    runtime_pareto_alpha: float = 0.767
    runtime_pareto_alpha_training: float = 0.737

    def __post_init__(self) -> None:
        if len(self.size_probs) != 4 or abs(sum(self.size_probs) - 1.0) > 1e-6 or min(self.size_probs) < 0:
            raise InvalidInput(
                f"synthetic workload: size_probs = {self.size_probs!r}; expected 4 probabilities "
                "(1, 2, 4, 8 trace GPUs) that sum to 1"
            )
        for name in ("runtime_pareto_alpha", "runtime_pareto_alpha_training"):
            a = getattr(self, name)
            if not (0.05 <= a <= 10.0):
                raise InvalidInput(
                    f"synthetic workload: {name} = {a!r}; expected 0.05..10 (trace fits: 0.767, 0.737)"
                )

    def alpha(self, kind: JobKind) -> float:
        """Pareto shape of a kind's run time [-]."""
        return self.runtime_pareto_alpha_training if kind is T else self.runtime_pareto_alpha

    def mean_runtime_h(self, kind: JobKind = JobKind.BATCH_INFERENCE) -> float:
        """Mean of the clipped Pareto run time [h]: x_m + ∫ from x_m to M of (x_m/x)^α dx.

        >>> round(SyntheticParams().mean_runtime_h(), 2)
        5.19
        """
        a, xm, m = self.alpha(kind), MIN_RUNTIME_H, MAX_RUNTIME_H
        if abs(a - 1.0) < 1e-9:
            return xm + xm * np.log(m / xm)
        return float(xm + xm**a * (m ** (1 - a) - xm ** (1 - a)) / (1 - a))


# --- shape samplers: (rng, kind, n) -> (trace GPUs, run time [h]) ------------------------------

def _trace_shapes(rng: np.random.Generator, kind: JobKind, n: int) -> tuple[np.ndarray, np.ndarray]:
    stats = trace_stats()
    rows = rng.integers(0, len(stats.openb), size=n)
    gpus = stats.openb["num_gpu"].to_numpy()[rows]
    if kind is T:
        return gpus, stats.philly_sample_h(rng.random(n))
    return gpus, stats.openb["duration_h"].to_numpy()[rows]


def _trace_mean_work(kind: JobKind) -> float:
    """E[trace GPUs × run time] of the trace sampler [trace-GPU·h]."""
    stats = trace_stats()
    if kind is T:
        return float(stats.openb["num_gpu"].mean() * stats.philly_mean_h)
    return float((stats.openb["num_gpu"] * stats.openb["duration_h"]).mean())


def _trace_arrivals(rng: np.random.Generator, n: int) -> np.ndarray:
    """n arrival instants as fractions of the window [0, 1), spaced like openb's arrivals."""
    iat = trace_stats().iat_pu
    gaps = iat[rng.integers(0, len(iat), size=n + 1)]
    return np.cumsum(gaps)[:-1] / gaps.sum()


def _synthetic_shapes(params: SyntheticParams):
    def shapes(rng: np.random.Generator, kind: JobKind, n: int) -> tuple[np.ndarray, np.ndarray]:
        gpus = rng.choice(np.array([1, 2, 4, 8]), size=n, p=np.array(params.size_probs))
        runtime = MIN_RUNTIME_H * (1.0 - rng.random(n)) ** (-1.0 / params.alpha(kind))
        return gpus, np.minimum(runtime, MAX_RUNTIME_H)
    return shapes


def _synthetic_mean_work(params: SyntheticParams, kind: JobKind) -> float:
    return float(np.dot([1, 2, 4, 8], params.size_probs) * params.mean_runtime_h(kind))


def _poisson_arrivals(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.sort(rng.random(n))


# --- the builder --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Source:
    shapes: object
    mean_work: object
    arrivals: object


def _sources(params: SyntheticParams) -> dict[str, _Source]:
    return {
        "traces": _Source(_trace_shapes, _trace_mean_work, _trace_arrivals),
        "synthetic": _Source(_synthetic_shapes(params), lambda kind: _synthetic_mean_work(params, kind),
                             _poisson_arrivals),
    }


def _profile_mean(lo: pd.Timestamp, hi: pd.Timestamp) -> float:
    """Mean of DIURNAL_PROFILE_PU over the JST hours that [lo, hi) touches."""
    h0 = lo.tz_convert(JST).floor("h")
    n = max(1, int(np.ceil((hi - h0).total_seconds() / 3600.0)))
    return sum(DIURNAL_PROFILE_PU[(h0.hour + i) % 24] for i in range(n)) / n


def _window_h(start: pd.Timestamp, end: pd.Timestamp) -> float:
    return (end - start).total_seconds() / 3600.0


def _check_period(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    for name, ts in (("start", start), ("end", end)):
        if not isinstance(ts, pd.Timestamp) or ts.tzinfo is None:
            raise InvalidInput(
                f"build_jobs: {name} = {ts!r}; expected a time-zone aware pandas.Timestamp, "
                f"e.g. pd.Timestamp('2023-03-06', tz='Asia/Tokyo')"
            )
    if end <= start:
        raise InvalidInput(f"build_jobs: end {end} is not after start {start}; swap them or widen the period")
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def build_jobs(fleet: Fleet, spec: WorkloadSpec, start: pd.Timestamp, end: pd.Timestamp,
               synthetic: SyntheticParams | None = None) -> list[Job]:
    """The jobs released in ``[start, end)`` for a fleet, built by ``spec`` (seeded).

    fleet : the fleet (sizes the load and picks home sites);  spec : source, seed, utilisation,
    inference share, residency share;  start, end : release window (time-zone aware);
    synthetic : parameters of the synthetic generator (``spec.source = "synthetic"`` only).

    Returns the jobs sorted by release time, then id.

    >>> from wattbit.examples import tiny_fleet
    >>> from wattbit.domain import WorkloadSpec
    >>> jobs = build_jobs(tiny_fleet(), WorkloadSpec(seed=1), pd.Timestamp("2023-03-06", tz="Asia/Tokyo"),
    ...                   pd.Timestamp("2023-03-07", tz="Asia/Tokyo"))
    >>> sorted({j.kind.value for j in jobs})
    ['batch_inference', 'fine_tuning', 'online_inference', 'training']
    >>> all(j.gpus % 8 == 0 for j in jobs)
    True
    """
    start, end = _check_period(start, end)
    check_workload_fleet(fleet)
    source = _sources(synthetic or SyntheticParams())[spec.source]
    rng = np.random.default_rng(spec.seed)
    window_h = _window_h(start, end)
    unit = size_unit_gpus(fleet)
    target_busy = spec.utilisation_pu * fleet.gpu_count
    ctx = _Context(fleet, spec, rng)

    jobs: list[Job] = []
    for kind, share in KIND_SHARE_PU.items():
        busy = target_busy * (1.0 - spec.inference_share_pu) * share
        n = round(busy * window_h / (unit * source.mean_work(kind)))
        if n == 0:
            continue
        trace_gpus, runtime_h = source.shapes(rng, kind, n)
        release_pu = source.arrivals(rng, n)
        jobs.extend(ctx.batch_jobs(kind, trace_gpus * unit, runtime_h, start, window_h, release_pu))
    jobs.extend(ctx.online_jobs(target_busy * spec.inference_share_pu, start, end))
    jobs.sort(key=lambda j: (j.release, j.job_id))
    return jobs


_PREFIX = MappingProxyType({T: "trn", FT: "ft", BI: "bi", OI: "oi"})


class _Context:
    """Per-build helpers: tenant, residency and home-site draws with cached area sets."""

    def __init__(self, fleet: Fleet, spec: WorkloadSpec, rng: np.random.Generator) -> None:
        self.fleet, self.spec, self.rng = fleet, spec, rng
        self.all_areas = frozenset(INTERCONNECTED_AREAS) | frozenset(fleet.areas)
        self.home_only = {a: frozenset((a,)) for a in fleet.areas}
        self.site_gpus = np.array([s.gpu_count for s in fleet.sites], dtype=float)

    def tenants(self, n: int) -> np.ndarray:
        return self.rng.choice(len(TENANTS), size=n, p=np.array(TENANT_WEIGHTS))

    def resident(self, n: int) -> np.ndarray:
        return self.rng.random(n) < self.spec.residency_share_pu

    def home_sites(self, gpus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Home site index ∝ GPU count among sites that can hold the job; GPUs clipped to the
        largest site (multiple of 8) if none can."""
        largest = int(self.site_gpus.max()) // NODE_GPUS * NODE_GPUS
        gpus = np.minimum(gpus, largest)
        u = self.rng.random(len(gpus))
        homes = np.empty(len(gpus), dtype=int)
        for g in np.unique(gpus):
            fits = self.site_gpus >= g
            w = np.where(fits, self.site_gpus, 0.0)
            cdf = np.cumsum(w) / w.sum()
            sel = gpus == g
            homes[sel] = np.minimum(np.searchsorted(cdf, u[sel], side="right"), len(cdf) - 1)
        return gpus, homes

    def allowed(self, resident: bool, site: Site) -> frozenset[str]:
        return self.home_only[site.area] if resident else self.all_areas

    def batch_jobs(self, kind: JobKind, gpus: np.ndarray, runtime_h: np.ndarray, start: pd.Timestamp,
                   window_h: float, release_pu: np.ndarray) -> list[Job]:
        n = len(gpus)
        gpus, homes = self.home_sites(gpus.astype(int))
        tenants = self.tenants(n)
        resident = self.resident(n)
        low, high, minimum = SLACK_RULE[kind]
        slack_h = np.maximum(self.rng.uniform(low, high, n) * runtime_h, minimum)
        runtime_h = np.round(runtime_h, 4)
        release_s = np.floor(release_pu * window_h * 3600.0)
        deadline_s = np.ceil(release_s + (runtime_h + slack_h) * 3600.0)
        base = start.value
        releases = pd.DatetimeIndex(base + release_s.astype("int64") * 1_000_000_000, tz="UTC")
        deadlines = pd.DatetimeIndex(base + deadline_s.astype("int64") * 1_000_000_000, tz="UTC")
        prefix, prio = _PREFIX[kind], PRIORITY[kind]
        sites = self.fleet.sites
        per_gpu = PARAMS_PER_GPU.get(kind, 0.0)
        ckpt = np.round(per_gpu * gpus * BYTES_PER_PARAM / 1e9, 3).tolist()
        gpus_l, homes_l, tenants_l = gpus.tolist(), homes.tolist(), tenants.tolist()
        resident_l, runtime_l = resident.tolist(), runtime_h.tolist()
        out = []
        for i, (rel, dl) in enumerate(zip(list(releases), list(deadlines))):
            site = sites[homes_l[i]]
            t = tenants_l[i]
            out.append(Job(
                job_id=f"{prefix}-{i:06d}", tenant=TENANTS[t], kind=kind, gpus=gpus_l[i],
                runtime_h=runtime_l[i], release=rel, deadline=dl, home_site=site.name,
                allowed_areas=self.allowed(resident_l[i], site),
                priority=prio + (t == 0), checkpoint_gb=ckpt[i],
            ))
        return out

    def online_jobs(self, target_gpus: float, start: pd.Timestamp, end: pd.Timestamp) -> list[Job]:
        """One service per user area (fleet areas, ∝ population) and serving window; GPUs follow
        the diurnal request rate. The mean over a day is ``target_gpus``."""
        if target_gpus <= 0:
            return []
        areas = self.fleet.areas
        pop = np.array([USER_POPULATION_M[a] for a in areas])
        share = pop / pop.sum()
        home = {a: max(self.fleet.sites_in([a]), key=lambda s: s.gpu_count) for a in areas}
        step = pd.Timedelta(hours=ONLINE_WINDOW_H)
        first = start.tz_convert(JST).floor("D")
        edges = pd.date_range(first, end.tz_convert(JST) + step, freq=step)
        out = []
        k = 0
        for w0, w1 in pairwise(edges):
            lo, hi = max(w0.tz_convert("UTC"), start), min(w1.tz_convert("UTC"), end)
            if hi <= lo:
                continue
            level = _profile_mean(lo, hi)
            tenants = self.tenants(len(areas))
            resident = self.resident(len(areas))
            budgets = self.rng.choice(np.array(RTT_BUDGETS_S), size=len(areas))
            for j, a in enumerate(areas):
                site = home[a]
                gpus = int(np.clip(NODE_GPUS * round(target_gpus * share[j] * level / NODE_GPUS), NODE_GPUS,
                                   site.gpu_count // NODE_GPUS * NODE_GPUS))
                t = int(tenants[j])
                out.append(Job(
                    job_id=f"oi-{k:06d}", tenant=TENANTS[t], kind=OI, gpus=gpus,
                    runtime_h=round((hi - lo).total_seconds() / 3600.0, 4), release=lo, deadline=hi,
                    home_site=site.name, allowed_areas=self.allowed(bool(resident[j]), site),
                    priority=PRIORITY[OI] + (t == 0), user_area=_area(a).name,
                    rtt_budget_s=float(budgets[j]),
                ))
                k += 1
        return out
