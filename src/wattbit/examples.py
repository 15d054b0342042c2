"""Tiny, fast examples for tests, docs and first steps: a 3-site fleet, a dozen jobs of every
kind, and a two-day scenario. Every call builds fresh objects (no module-level state).

>>> tiny_fleet().site_names
('tokyo-dc', 'kansai-dc', 'kyushu-dc')
>>> len(tiny_jobs())
12
>>> tiny_scenario().fleet.gpu_count
2048
"""

from __future__ import annotations

import pandas as pd

from wattbit.domain import (
    INTERCONNECTED_AREAS,
    DemandResponse,
    Fleet,
    Job,
    JobKind,
    Scenario,
    Site,
    SiteOutage,
    WorkloadSpec,
)
from wattbit.units import JST

__all__ = ["TINY_END", "TINY_START", "tiny_fleet", "tiny_jobs", "tiny_scenario"]

TINY_START = "2023-03-18 00:00"
"""Start of the tiny scenario (JST): a Saturday before the fleet's biggest curtailment day."""
TINY_END = "2023-03-20 00:00"
"""End of the tiny scenario (JST), exclusive."""


def _jst(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=JST).tz_convert("UTC")


def tiny_fleet() -> Fleet:
    """Three small sites on the Tokaido–Sanyo fiber: Tokyo (1,024 H200), Shin-Osaka (512) and
    Hakata (512). Caps leave ~10 % over full-load IT power (1.26 kW per GPU)."""
    return Fleet(
        name="tiny-3",
        sites=(
            Site("tokyo-dc", "tokyo", 35.6812, 139.7671, gpu_count=1024, it_power_max_mw=1.4, pue=1.35),
            Site("kansai-dc", "kansai", 34.7334, 135.5001, gpu_count=512, it_power_max_mw=0.7, pue=1.3),
            Site("kyushu-dc", "kyushu", 33.5897, 130.4207, gpu_count=512, it_power_max_mw=0.7, pue=1.25),
        ),
    )


def tiny_jobs() -> list[Job]:
    """Twelve hand-written jobs of all four kinds over the tiny scenario's two days.

    Three training jobs (one resident in Kyushu), three fine-tuning, three batch inference and
    three online services (one per user area). Checkpoints follow the workload rules:
    params = 25 M (training) or 250 M (fine-tuning) per GPU × 16 bytes per parameter.
    """
    anywhere = frozenset(INTERCONNECTED_AREAS)
    t0 = _jst(TINY_START)

    def at(hours: float) -> pd.Timestamp:
        return t0 + pd.Timedelta(hours=hours)

    T, FT, BI, OI = JobKind.TRAINING, JobKind.FINE_TUNING, JobKind.BATCH_INFERENCE, JobKind.ONLINE_INFERENCE
    return [
        Job("trn-1", "tenant-a", T, 256, 20.0, at(0), at(44), "tokyo-dc", anywhere, 3, 102.4),
        Job("trn-2", "tenant-b", T, 128, 12.0, at(2), at(40), "kansai-dc", anywhere, 2, 51.2),
        Job("trn-3", "tenant-c", T, 64, 8.0, at(6), at(30), "kyushu-dc", frozenset({"kyushu"}), 2, 25.6),
        Job("ft-1", "tenant-a", FT, 64, 4.0, at(1), at(12), "tokyo-dc", anywhere, 4, 256.0),
        Job("ft-2", "tenant-d", FT, 32, 6.0, at(9), at(24), "kyushu-dc", anywhere, 3, 128.0),
        Job("ft-3", "tenant-e", FT, 16, 3.0, at(20), at(30), "kansai-dc", frozenset({"kansai"}), 3, 64.0),
        Job("bi-1", "tenant-b", BI, 64, 2.0, at(3), at(7), "tokyo-dc", anywhere, 5),
        Job("bi-2", "tenant-c", BI, 32, 1.5, at(10), at(13), "kyushu-dc", anywhere, 5),
        Job("bi-3", "tenant-a", BI, 128, 3.0, at(26), at(32), "kansai-dc", anywhere, 6),
        Job("oi-1", "tenant-a", OI, 128, 48.0, at(0), at(48), "tokyo-dc", anywhere, 9,
            user_area="tokyo", rtt_budget_s=0.02),
        Job("oi-2", "tenant-b", OI, 64, 48.0, at(0), at(48), "kansai-dc", anywhere, 8,
            user_area="kansai", rtt_budget_s=0.03),
        Job("oi-3", "tenant-d", OI, 32, 48.0, at(0), at(48), "kyushu-dc", frozenset({"kyushu"}), 8,
            user_area="kyushu", rtt_budget_s=0.05),
    ]


def tiny_scenario() -> Scenario:
    """Two days (JST 2023-03-18 .. 03-20) on the tiny fleet: a 上げDR of 0.2 MW in Kyushu on the
    Sunday midday (FY2022's largest curtailment day there: 33.8 GWh), a 下げDR of 0.2 MW in Tokyo
    that Saturday evening, and a two-hour outage of kansai-dc on the Sunday night. Workload: trace-based, seed 0, utilisation 0.6."""
    return Scenario(
        name="tiny",
        fleet=tiny_fleet(),
        start=_jst(TINY_START),
        end=_jst(TINY_END),
        workload=WorkloadSpec(source="traces", seed=0, utilisation_pu=0.6),
        demand_response=(
            DemandResponse("dr-up-kyushu", "up", "kyushu", 0.2, _jst("2023-03-19 10:00"),
                           _jst("2023-03-19 14:00"), response_deadline_s=300.0),
            DemandResponse("dr-down-tokyo", "down", "tokyo", 0.2, _jst("2023-03-18 17:00"),
                           _jst("2023-03-18 20:00"), response_deadline_s=300.0),
        ),
        outages=(SiteOutage("kansai-dc", _jst("2023-03-19 02:00"), _jst("2023-03-19 04:00")),),
        step_s=1800.0,
        horizon_slots=48,
    )
