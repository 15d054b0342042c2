"""A twin run cut in time: what each chunk keeps, and how far the whole strays from one piece."""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np
import pandas as pd
import pytest

from wattbit.errors import InvalidInput
from wattbit.examples import tiny_scenario
from wattbit.plan.build import fleet_arrays
from wattbit.sim.chunks import check_chunk_count, split_run, stitch, warmup_slots
from wattbit.sim.kpi import MEASURED_KPIS
from wattbit.sim.run import build_world, simulate
from wattbit.sim.twin import SLOT_COUNTERS, job_end
from wattbit.workload import build_jobs

POLICIES = ("baseline", "wls")
CHUNKS = 3


@pytest.fixture(scope="module")
def world():
    """Four days of the tiny fleet under the trace workload, without the jobs that live longer
    than a day (so that a warm-up of a day leaves each chunk most of its run)."""
    sc = tiny_scenario()
    sc = dataclasses.replace(sc, end=sc.start + pd.Timedelta(days=4))
    jobs = [j for j in build_jobs(sc.fleet, sc.workload, sc.start, sc.end)
            if job_end(j) - j.release <= pd.Timedelta(hours=24)]
    return build_world(sc, jobs=jobs)


@pytest.fixture(scope="module")
def runs(world):
    whole = simulate(world.scenario, POLICIES, world=world)
    cut = simulate(world.scenario, POLICIES, world=world, chunks=CHUNKS)
    return whole, cut


@pytest.fixture(scope="module")
def cuts(world):
    return split_run(world.truth.time, CHUNKS, warmup_slots(world.jobs, world.scenario.step_s))


def test_split_run_covers_the_run_once_with_warm_ups(world, cuts):
    time = world.truth.time
    assert cuts[0].keep_start == cuts[0].run_start == time[0]
    assert cuts[-1].keep_end == time[-1] + (time[1] - time[0])
    for a, b in itertools.pairwise(cuts):
        assert a.keep_end == b.keep_start
        assert b.warmup == pd.Timedelta(hours=24)  # the longest job's life: 48 slots of 30 min
    assert warmup_slots(world.jobs, 1800) == 48
    # every part runs as many slots, warm-up included (the first keeps a warm-up's more)
    step = time[1] - time[0]
    runs = [(c.keep_end - c.run_start) / step for c in cuts]
    assert max(runs) - min(runs) <= 1, runs


@pytest.mark.parametrize("chunks", [0, -1, 2.0, True])
def test_split_run_refuses_a_bad_number_of_chunks(world, chunks):
    with pytest.raises(InvalidInput, match="chunks"):
        split_run(world.truth.time, chunks, 0)


def test_a_numpy_integer_is_a_number_of_chunks(world):
    cuts = split_run(world.truth.time, np.int64(2), 0)
    assert len(cuts) == 2 and cuts == split_run(world.truth.time, 2, 0)
    assert check_chunk_count(np.int64(3)) == 3 and type(check_chunk_count(np.int64(3))) is int
    run = simulate(world.scenario, ("baseline",), world=world, workers=np.int64(1), chunks=np.int64(2))
    assert run.results["baseline"].counters["chunks"] == 2


def test_split_run_refuses_more_chunks_than_slots(world):
    n = len(world.truth.time)
    with pytest.raises(InvalidInput, match=f"only {n} slots"):
        split_run(world.truth.time, n + 1, 0)


def test_foresight_is_not_cut(world):
    with pytest.raises(InvalidInput, match="'oracle'.*chunks = 1"):
        simulate(world.scenario, ["wls", "oracle"], world=world, chunks=2)


@pytest.mark.parametrize("policy", POLICIES)
def test_the_first_chunk_is_the_run_in_one_piece(runs, cuts, policy):
    """Up to its end the first chunk has seen exactly what the run in one piece saw."""
    whole, cut = (r.results[policy] for r in runs)
    for part in ("sites", "areas"):
        a, b = getattr(whole, part), getattr(cut, part)
        t = a.index.get_level_values("time")
        pd.testing.assert_frame_equal(a[t < cuts[0].keep_end], b[t < cuts[0].keep_end])
    first = whole.slots.index < cuts[0].keep_end
    pd.testing.assert_frame_equal(whole.slots[first], cut.slots[first])


@pytest.mark.parametrize("policy", POLICIES)
def test_the_stitched_run_has_the_shape_of_one_piece(runs, cuts, policy):
    whole, cut = (r.results[policy] for r in runs)
    for part in ("sites", "areas", "slots"):
        assert getattr(whole, part).index.equals(getattr(cut, part).index), part
    assert list(cut.jobs.columns) == list(whole.jobs.columns)
    assert cut.jobs.job_id.tolist() == whole.jobs.job_id.tolist()  # each job once, in the same order
    assert sorted(cut.dr.request_id) == sorted(whole.dr.request_id)
    assert len(cut.decide_s) == len(whole.decide_s)
    for name in SLOT_COUNTERS:
        assert cut.counters[name] == pytest.approx(cut.slots[name].sum()), name
    assert cut.counters["chunks"] == CHUNKS
    # the time counters add up the chunks' whole runs
    assert cut.decide_s.sum() < cut.counters["run_s"]
    # each chunk's own counters stay with the stitched run; the run in one piece has none
    assert len(cut.chunk_counters) == CHUNKS and whole.chunk_counters == ()
    step = whole.slots.index[1] - whole.slots.index[0]
    run_slots = [(c.keep_end - c.run_start) // step for c in cuts]  # chunk by chunk, in order, warm-ups included
    run_slots[-1] = len(whole.slots) - (cuts[-1].run_start - cuts[0].run_start) // step  # (the last runs to the end)
    assert [c["slots"] for c in cut.chunk_counters] == run_slots
    # the first chunk is the run in one piece up to its end: its counters are those slots' sums
    first = whole.slots.index < cuts[0].keep_end
    for name in SLOT_COUNTERS:
        assert cut.chunk_counters[0][name] == pytest.approx(whole.slots[name][first].sum()), name
    for name in ("run_s", "highs_s", "decide_dispatch_s"):  # time spent, warm-ups included
        assert sum(c[name] for c in cut.chunk_counters) == pytest.approx(cut.counters[name]), name
    assert sum(c["plans"] for c in cut.chunk_counters) >= cut.counters["plans"]  # (warm-ups plan too)


@pytest.mark.parametrize("policy", POLICIES)
def test_the_stitched_run_keeps_every_promise(runs, world, policy):
    whole, cut = (r.results[policy] for r in runs)
    batch = cut.jobs[cut.jobs.kind != "online_inference"]
    assert batch.finished.all()
    np.testing.assert_allclose(batch.done_gpu_h, batch.work_gpu_h, rtol=1e-9)
    # what is missed (the jobs the two-hour outage of kansai-dc strands) is missed in one piece too
    assert batch.missed.sum() == whole.jobs.missed.sum()
    fleet = world.scenario.fleet
    for site, areas in zip(cut.jobs.final_site, cut.jobs.allowed_areas):
        assert fleet.site(site).area in areas.split(",")
    busy = cut.sites.busy_gpus.unstack("site")
    for site, cap in zip(fleet.site_names, fleet_arrays(fleet).cap_gpus):
        assert (busy[site] <= cap + 1e-6).all(), site


def test_the_stitched_kpis_stay_close_to_one_piece(runs):
    """The baseline decides each slot from the slot alone: cut or not, it does the same. The
    planner's later chunks start from an emptier fleet: their energy and cost stay within 0.1 %."""
    whole, cut = (r.table.drop(index=list(MEASURED_KPIS)) for r in runs)
    pd.testing.assert_series_equal(whole["baseline"], cut["baseline"])
    for kpi in ("energy_mwh", "cost_mjpy", "curtailment_absorbed_mwh", "work_done_gpu_h"):
        assert cut.loc[kpi, "wls"] == pytest.approx(whole.loc[kpi, "wls"], rel=1e-3), kpi
    assert cut.loc["deadline_misses", "wls"] == whole.loc["deadline_misses", "wls"]


def test_chunks_in_worker_processes_give_the_same_run(world, runs):
    cut = runs[1]
    parallel = simulate(world.scenario, ["wls"], world=world, chunks=CHUNKS, workers=2)
    a, b = cut.results["wls"], parallel.results["wls"]
    pd.testing.assert_frame_equal(a.areas, b.areas)
    pd.testing.assert_frame_equal(a.jobs, b.jobs)
    assert a.counters["peak_link_utilisation_pu"] == b.counters["peak_link_utilisation_pu"]


def test_stitch_refuses_chunks_that_do_not_cover_the_jobs(runs, cuts):
    results = [runs[1].results["wls"]] * CHUNKS  # the same rows thrice: jobs counted again
    with pytest.raises(InvalidInput, match="once each"):
        stitch(cuts, results, [0.0] * CHUNKS, runs[1].results["wls"].jobs.job_id.tolist())


def test_the_report_of_a_cut_run_says_why_links_are_not_drawn(runs, tmp_path):
    pytest.importorskip("plotly")
    from wattbit.sim.report import write_report

    html = write_report(runs[1], tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"cut in time into {CHUNKS} chunks" in html


def test_each_chunk_runs_the_scenario_given_not_the_worlds(world, cuts):
    """simulate's scenario may differ from the one the world was built for (other controller
    settings): every chunk runs the one given."""
    every_4 = dataclasses.replace(world.scenario, replan_slots=4)
    whole = simulate(every_4, ["wls"], world=world).results["wls"]
    cut = simulate(every_4, ["wls"], world=world, chunks=CHUNKS).results["wls"]
    first = whole.slots.index < cuts[0].keep_end
    pd.testing.assert_frame_equal(whole.slots[first], cut.slots[first])
    assert cut.counters["plans"] < 0.5 * cut.counters["slots"]  # not a plan every slot


def _thread_variables() -> tuple[str | None, str | None]:
    return os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS")


def test_workers_run_blas_on_one_thread_and_the_parent_keeps_its_setting(monkeypatch):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from wattbit.sim.run import single_threaded_workers

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the user: left alone
    with single_threaded_workers(), ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        seen = pool.submit(_thread_variables).result()
    assert seen == ("1", "3")
    assert "OPENBLAS_NUM_THREADS" not in os.environ and os.environ["OMP_NUM_THREADS"] == "3"
