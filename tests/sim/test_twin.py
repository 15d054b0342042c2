"""The digital twin on the tiny example: invariants, the policies' order, and a golden KPI table."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from wattbit.errors import InvalidInput
from wattbit.examples import tiny_jobs, tiny_scenario
from wattbit.plan.build import fleet_arrays
from wattbit.sim.kpi import format_kpi_table
from wattbit.sim.run import build_world, simulate, twin_controller
from wattbit.sim.twin import run_twin

GOLDEN = Path(__file__).parent / "golden" / "kpi_tiny.txt"
POLICIES = ("baseline", "temporal", "spatial", "wls", "oracle")


@pytest.fixture(scope="module")
def comparison():
    sc = tiny_scenario()
    world = build_world(sc, jobs=tiny_jobs())
    return simulate(sc, POLICIES, world=world)


@pytest.mark.parametrize("policy", POLICIES)
def test_every_job_finishes_and_work_is_conserved(comparison, policy):
    jobs = comparison.results[policy].jobs
    batch = jobs[jobs.kind != "online_inference"]
    assert batch.finished.all()
    np.testing.assert_allclose(batch.done_gpu_h, batch.work_gpu_h, rtol=1e-9)


@pytest.mark.parametrize("policy", ("temporal", "spatial", "wls", "oracle"))
def test_no_deadline_missed_and_inference_served(comparison, policy):
    jobs = comparison.results[policy].jobs
    assert not jobs.missed.any(), jobs[jobs.missed]
    inf = jobs[jobs.kind == "online_inference"]
    # the kansai outage (2 h) may cost kansai-bound inference; nothing else goes unserved
    assert inf.unserved_gpu_h.sum() <= 64 * 2 + 1e-6


@pytest.mark.parametrize("policy", POLICIES)
def test_residency_and_capacity_hold(comparison, policy):
    r = comparison.results[policy]
    fleet = comparison.world.scenario.fleet
    for _, job in r.jobs.iterrows():
        assert fleet.site(job.final_site).area in job.allowed_areas.split(",")
    caps = dict(zip(fleet.site_names, fleet_arrays(fleet).cap_gpus))
    busy = r.sites.busy_gpus.unstack("site")
    for site, cap in caps.items():
        assert (busy[site] <= cap + 1e-6).all(), site


@pytest.mark.parametrize("policy", POLICIES)
def test_absorbed_never_exceeds_curtailment_or_load(comparison, policy):
    a = comparison.results[policy].areas
    assert (a.absorbed_mw <= a.curtailment_mw + 1e-9).all()
    assert (a.absorbed_mw <= a.load_mw + 1e-9).all()
    sites = comparison.results[policy].sites
    assert a.load_mw.sum() == pytest.approx(sites.power_mw.sum())


def test_workload_shift_absorbs_more_than_standing_still(comparison):
    t = comparison.table.loc["curtailment_absorbed_mwh"]
    assert t["wls"] > t["baseline"]
    assert t["wls"] >= t["temporal"]
    assert t["oracle"] > t["baseline"]
    # within reach of the perfect-foresight bound
    assert comparison.table.loc["wls_vs_bound_absorbed_pct", "wls"] >= 80.0


def test_demand_response_is_recorded_honestly(comparison):
    # in the tiny scenario wls has already filled kyushu-dc and emptied tokyo-dc when the
    # requests come: whatever it commits, it must not claim more than it delivers
    for policy in ("baseline", "wls"):
        dr = comparison.results[policy].dr.set_index("request_id")
        assert set(dr.index) == {"dr-up-kyushu", "dr-down-tokyo"}
        assert (dr.response_s < dr.response_deadline_s).all()
        assert (dr.committed_mw <= dr.asked_mw + 1e-9).all()


def test_kpi_table_matches_golden_file(comparison):
    # wall-clock figures (decision time, and the DR response time that includes it) vary by run
    text = format_kpi_table(comparison.table.drop(index=["decide_ms_mean", "dr_response_s"])) + "\n"
    if os.environ.get("WATTBIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_policies_in_worker_processes_give_the_same_results(comparison):
    """``workers=2`` runs each policy in a spawned process: same KPIs, records and lightpaths as
    the run in this process, and progress still reaches the caller (first and last slot)."""
    sc = tiny_scenario()
    seen: dict[str, set[int]] = {}
    parallel = simulate(sc, POLICIES, world=comparison.world, workers=2,
                        on_slot=lambda p, i, n: seen.setdefault(p, set()).add(i))
    drop = ["decide_ms_mean", "dr_response_s"]
    assert format_kpi_table(parallel.table.drop(index=drop)) == format_kpi_table(comparison.table.drop(index=drop))
    n = len(comparison.world.truth.time)
    for p in POLICIES:
        assert {0, n - 1} <= seen[p]
        assert parallel.results[p].jobs.equals(comparison.results[p].jobs)
        assert parallel.results[p].areas.equals(comparison.results[p].areas)
        assert len(parallel.lightpaths[p].reservations) == len(comparison.lightpaths[p].reservations)
    assert parallel.oracle is not None and parallel.oracle.result.objective_jpy == pytest.approx(
        comparison.oracle.result.objective_jpy)


@pytest.mark.parametrize("workers", [0, 1.0, True])
def test_workers_must_be_a_positive_integer(comparison, workers):
    from wattbit.errors import InvalidInput

    with pytest.raises(InvalidInput, match=f"workers = {workers!r}"):
        simulate(tiny_scenario(), ("baseline",), world=comparison.world, workers=workers)


def test_decision_time_is_split_by_part(comparison):
    """The twin's counters carry the controller's decision time by part: planners build and
    solve LPs, the baseline only dispatches; the parts never exceed the decisions' total, nor
    the decisions the run's wall time, and HiGHS's own time is a share of the solves'."""
    for p, r in comparison.results.items():
        parts = {k: v for k, v in r.counters.items() if k.startswith("decide_") and k.endswith("_s")}
        assert set(parts) == {"decide_build_s", "decide_solve_s", "decide_stored_s", "decide_dispatch_s"}
        assert parts["decide_dispatch_s"] > 0
        assert sum(parts.values()) <= r.decide_s.sum() + 1e-9
        assert r.decide_s.sum() < r.counters["run_s"]  # the run's wall time holds its decisions
        if p in ("temporal", "spatial", "wls"):
            assert parts["decide_build_s"] > 0 and parts["decide_solve_s"] > 0
            assert 0 < r.counters["highs_s"] < parts["decide_solve_s"]  # (the matrix is built first)
        if p == "baseline":
            assert parts["decide_build_s"] == parts["decide_solve_s"] == r.counters["highs_s"] == 0.0


@pytest.mark.parametrize("policy", POLICIES)
def test_slot_counters_add_up_to_the_run_counters(comparison, policy):
    from wattbit.sim.twin import SLOT_COUNTERS

    r = comparison.results[policy]
    assert r.slots.index.equals(r.sites.index.get_level_values("time").unique())
    for name in SLOT_COUNTERS:
        assert r.slots[name].sum() == pytest.approx(r.counters[name]), name
    # every move books its lightpath in the slot it starts in
    assert (r.slots.lightpaths == r.slots.moves).all()
    if policy in ("spatial", "wls"):
        assert r.slots.moves.max() >= 1


def test_absorbed_by_area_by_period_and_a_period_it_does_not_know(comparison):
    from wattbit.errors import InvalidInput
    from wattbit.sim.kpi import absorbed_by_area

    r = comparison.results["wls"]
    whole = absorbed_by_area(r)
    for freq in ("MS", "M", "W", "D"):
        by_period = absorbed_by_area(r, freq).groupby(level=1).sum()
        np.testing.assert_allclose(by_period["absorbed_mwh"], whole["absorbed_mwh"].loc[by_period.index])
    with pytest.raises(InvalidInput, match="freq = 'fortnight' is not a period; give e.g. 'M'"):
        absorbed_by_area(r, "fortnight")


def test_a_gap_in_the_forecasters_history_is_told_as_such():
    """FY2022 starts on 2022-04-01; the forecaster's 14 days before fall where TEPCO gives no rows
    (Jan-Mar 2022): the warning says so in the forecast's terms, not 'choose another period'."""
    from wattbit.grid import GapWarning
    from wattbit.scenarios import load_scenario, with_period

    sc = with_period(load_scenario("full-year"), "2022-04-01", "2022-04-02")
    with pytest.warns(GapWarning, match="the forecaster.s history before the run: hourly values missing .*tokyo 336 h") as caught:
        build_world(sc)
    assert not [w for w in caught if "Choose a period" in str(w.message)]


def test_data_that_end_before_the_last_deadline_are_told_in_jst():
    """FY2022's data end at 2023-04-01 00:00 JST; the jobs released in its last days are due
    later: the run stops at the data's end, and the warning gives both instants as users write them."""
    from wattbit.scenarios import load_scenario, with_period

    sc = with_period(load_scenario("full-year"), "2023-03-30", "2023-04-01")
    with pytest.warns(UserWarning, match=r"the grid data end at 2023-04-01 00:00 JST, before the run's end "
                                         r"at 2023-04-\d\d \d\d:\d\d JST \(the run window's end: its jobs' last deadline, on "
                                         r"the slot grid\); the run stops"):
        build_world(sc)


@pytest.mark.parametrize(("change", "message"), [({"home_site": "okinawa-dc"}, "okinawa-dc"),
                                                ({"allowed_areas": frozenset({"hokkaido"})}, "hold no site of fleet")])
def test_the_twin_refuses_a_job_the_fleet_has_no_site_for(change, message):
    sc = tiny_scenario()
    world = build_world(sc)
    job = dataclasses.replace(tiny_jobs()[0], **change)
    with pytest.raises(InvalidInput, match=message):
        run_twin(twin_controller(sc, world, "wls"), [job], world.truth)
