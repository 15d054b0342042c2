"""The job builder: seeded, scaled to the fleet, faithful to the traces, rules kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wattbit.domain import INTERCONNECTED_AREAS, JobKind, WorkloadSpec
from wattbit.errors import InvalidInput
from wattbit.examples import tiny_fleet, tiny_jobs
from wattbit.scenarios import load_fleet
from wattbit.workload import (
    BYTES_PER_PARAM,
    MAX_RUNTIME_H,
    MIN_RUNTIME_H,
    PARAMS_PER_GPU,
    RTT_BUDGETS_S,
    SLACK_RULE,
    SyntheticParams,
    build_jobs,
    check_jobs,
    compare_to_trace,
    jobs_frame,
    mix_report,
    size_distribution,
    size_unit_gpus,
)

JST = "Asia/Tokyo"
START, END = pd.Timestamp("2023-03-06", tz=JST), pd.Timestamp("2023-03-20", tz=JST)
JAPAN9 = load_fleet("japan-9")


@pytest.fixture(scope="module")
def fortnight():
    return build_jobs(JAPAN9, WorkloadSpec(seed=7), START, END)


@pytest.fixture(scope="module")
def tiny_fortnight():
    return build_jobs(tiny_fleet(), WorkloadSpec(seed=3, residency_share_pu=0.3), START, END)


def busy_gpus_at_release(jobs, start, end, step_h=1.0):
    """Busy GPUs per hour if every job ran at full speed from its release (the offered load)."""
    df = jobs_frame(jobs)
    t = pd.date_range(start, end, freq=f"{step_h}h", inclusive="left").tz_convert("UTC")
    fin = df["release"] + pd.to_timedelta(df["runtime_h"], unit="h")
    tv = t.as_unit("ns").asi8
    first = np.searchsorted(tv, pd.DatetimeIndex(df["release"]).as_unit("ns").asi8, side="left")
    last = np.searchsorted(tv, pd.DatetimeIndex(fin).as_unit("ns").asi8, side="left")
    delta = np.zeros(len(tv) + 1)
    np.add.at(delta, first, df["gpus"].to_numpy())
    np.add.at(delta, last, -df["gpus"].to_numpy())
    return pd.Series(np.cumsum(delta)[:-1], index=t)


def test_busy_gpus_helper_by_hand():
    jobs = [j for j in tiny_jobs() if j.job_id in ("trn-1", "bi-1")]  # 256 GPUs 0–20 h; 64 GPUs 3–5 h
    t0 = jobs[0].release
    busy = busy_gpus_at_release(jobs, t0, t0 + pd.Timedelta(hours=24))
    assert busy.iloc[0] == 256 and busy.iloc[3] == 320 and busy.iloc[5] == 256 and busy.iloc[20] == 0


def test_same_seed_same_jobs_other_seed_other_jobs():
    a = build_jobs(tiny_fleet(), WorkloadSpec(seed=5), START, START + pd.Timedelta(days=2))
    b = build_jobs(tiny_fleet(), WorkloadSpec(seed=5), START, START + pd.Timedelta(days=2))
    c = build_jobs(tiny_fleet(), WorkloadSpec(seed=6), START, START + pd.Timedelta(days=2))
    assert a == b
    assert a != c


def test_released_in_window_sorted_and_kinds_present(fortnight):
    assert {j.kind for j in fortnight} == set(JobKind)
    assert all(START <= j.release < END for j in fortnight)
    keys = [(j.release, j.job_id) for j in fortnight]
    assert keys == sorted(keys)
    assert len({j.job_id for j in fortnight}) == len(fortnight)


def test_sizes_whole_nodes_and_runtimes_bounded(fortnight):
    unit = size_unit_gpus(JAPAN9)
    assert unit == 256
    for j in fortnight:
        assert j.gpus % 8 == 0
        assert j.runtime_h <= MAX_RUNTIME_H
        if j.kind is not JobKind.ONLINE_INFERENCE:
            assert j.gpus % unit == 0 and j.gpus <= 8 * unit
            assert j.runtime_h >= MIN_RUNTIME_H - 1e-4


def test_offered_load_matches_utilisation(fortnight):
    """Mean busy GPUs (jobs run from release, after a 3-day ramp) within 10 % of the target."""
    busy = busy_gpus_at_release(fortnight, START + pd.Timedelta(days=3), END)
    target = 0.6 * JAPAN9.gpu_count
    assert busy.mean() == pytest.approx(target, rel=0.10)


def test_gpu_hours_by_kind_follow_shares(fortnight):
    mix = mix_report(fortnight)
    share = mix["gpu_h_share_pu"]
    assert share["online_inference"] == pytest.approx(0.2, abs=0.03)
    assert share["training"] == pytest.approx(0.8 * 0.5, abs=0.05)
    assert share["fine_tuning"] == pytest.approx(0.8 * 0.2, abs=0.04)
    assert share["batch_inference"] == pytest.approx(0.8 * 0.3, abs=0.05)
    assert mix.loc["all", "jobs"] == len(fortnight)


def test_job_mix_matches_trace_statistics(fortnight, tiny_fortnight):
    """GPU-count shares within max(0.02, 3 binomial s.e.); run-time quartiles within 15 % (or the
    sampling band); KS ≤ max(0.03, 1.95/√n) — for a big and a tiny fleet."""
    for jobs in (fortnight, tiny_fortnight):
        cmp = compare_to_trace(jobs)
        assert len(cmp) == 27
        assert cmp["ok"].all(), cmp[~cmp["ok"]]


def test_compare_to_trace_can_fail():
    """A workload of only 8-unit jobs of 60 h is nothing like the trace: the check says so."""
    jobs = [j for j in tiny_jobs() if j.kind is JobKind.TRAINING]
    cmp = compare_to_trace(jobs)
    assert not cmp["ok"].all()


def test_synthetic_source_is_close_to_the_trace():
    jobs = build_jobs(JAPAN9, WorkloadSpec(source="synthetic", seed=2), START, END)
    cmp = compare_to_trace(jobs)
    sizes = cmp[cmp.index.get_level_values("statistic").str.startswith("share size")]
    assert sizes["ok"].all()
    ks = cmp.xs("runtime KS", level="statistic")["built"]
    assert (ks <= 0.10).all(), ks
    busy = busy_gpus_at_release(jobs, START + pd.Timedelta(days=3), END)
    assert busy.mean() == pytest.approx(0.6 * JAPAN9.gpu_count, rel=0.10)


def test_home_sites_in_proportion_to_gpus(fortnight):
    batch = [j for j in fortnight if j.kind is not JobKind.ONLINE_INFERENCE]
    counts = pd.Series([j.home_site for j in batch]).value_counts(normalize=True)
    expected = pd.Series({s.name: s.gpu_count / JAPAN9.gpu_count for s in JAPAN9.sites})
    assert (counts.reindex(expected.index) - expected).abs().max() < 0.02


def test_residency_share(tiny_fortnight):
    df = jobs_frame(tiny_fortnight)
    assert df["resident"].mean() == pytest.approx(0.3, abs=0.03)
    fleet = tiny_fleet()
    for j in tiny_fortnight:
        home_area = fleet.site(j.home_site).area
        assert j.allowed_areas in (frozenset({home_area}), frozenset(INTERCONNECTED_AREAS))
    check_jobs(fleet, tiny_fortnight)


def test_deadlines_follow_slack_rule(fortnight):
    for j in fortnight:
        if j.kind is JobKind.ONLINE_INFERENCE:
            continue
        _low, high, minimum = SLACK_RULE[j.kind]
        slack = j.slack_h
        assert slack >= minimum - 1e-3
        assert slack <= max(high * j.runtime_h, minimum) + 1e-3


def test_online_services(fortnight):
    online = [j for j in fortnight if j.kind is JobKind.ONLINE_INFERENCE]
    assert len(online) == 9 * 4 * 14  # 9 user areas × 4 windows a day × 14 days
    for j in online:
        assert j.user_area in JAPAN9.areas
        assert JAPAN9.site(j.home_site).area == j.user_area
        assert j.rtt_budget_s in RTT_BUDGETS_S
        assert j.runtime_h == pytest.approx(6.0)
        assert j.checkpoint_gb == 0
    tokyo = np.mean([j.gpus for j in online if j.user_area == "tokyo"])
    shikoku = np.mean([j.gpus for j in online if j.user_area == "shikoku"])
    assert tokyo > 8 * shikoku  # users in proportion to population


def test_checkpoint_sizes(fortnight):
    for j in fortnight:
        if j.kind.checkpointable:
            assert j.checkpoint_gb == pytest.approx(PARAMS_PER_GPU[j.kind] * j.gpus * BYTES_PER_PARAM / 1e9)
        else:
            assert j.checkpoint_gb == 0


def test_size_distribution_columns_sum_to_one(fortnight):
    sd = size_distribution(fortnight)
    assert np.allclose(sd.sum(axis=0), 1.0)


def test_naive_or_reversed_period_rejected():
    with pytest.raises(InvalidInput, match="start = .*time-zone aware"):
        build_jobs(tiny_fleet(), WorkloadSpec(), pd.Timestamp("2023-03-06"), END)
    with pytest.raises(InvalidInput, match="is not after start"):
        build_jobs(tiny_fleet(), WorkloadSpec(), END, START)


def test_a_site_smaller_than_one_node_is_refused_with_the_fix():
    from dataclasses import replace

    from wattbit.domain import Fleet

    fleet = tiny_fleet()
    small = Fleet("small", (replace(fleet.sites[0], gpu_count=4),) + fleet.sites[1:])
    with pytest.raises(InvalidInput, match=r"site '.*' has 4 GPU\(s\); the workload's jobs use whole "
                                           r"8-GPU nodes, so every site needs at least 8 GPUs"):
        build_jobs(small, WorkloadSpec(), START, END)


def test_synthetic_params_validated():
    with pytest.raises(InvalidInput, match="size_probs"):
        SyntheticParams(size_probs=(0.5, 0.5, 0.5, 0.0))
    with pytest.raises(InvalidInput, match="runtime_pareto_alpha = 0"):
        SyntheticParams(runtime_pareto_alpha=0.0)


def test_check_jobs_rejects_jobs_the_fleet_cannot_run():
    from dataclasses import replace

    job = tiny_jobs()[0]
    with pytest.raises(InvalidInput, match=r"allowed_areas = \['hokkaido'\] hold no site of fleet 'tiny-3'"):
        check_jobs(tiny_fleet(), [replace(job, allowed_areas=frozenset({"hokkaido"}))])
    with pytest.raises(InvalidInput, match="gpus = 2048 but the largest site"):
        check_jobs(tiny_fleet(), [replace(job, gpus=2048)])
