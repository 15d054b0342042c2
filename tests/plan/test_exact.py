"""The flexibility-class LP against the exact job-level LP on small instances.

The class LP relaxes the job-level one (a class's curves are sums of its jobs'), so its optimum is
never above the exact optimum when no deadline is missed, and with one job the two coincide.
With one job per class (and demand-response requests in force) the two must agree too: the exact
LP repeats the class LP's demand-response rows on purpose, as an independent reference.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.control.state import FleetState, JobState, JobStatus
from wattbit.domain import INTERCONNECTED_AREAS, DemandResponse, Job, JobKind
from wattbit.errors import InvalidInput
from wattbit.examples import tiny_fleet, tiny_jobs, tiny_scenario
from wattbit.grid import PerfectForesight, load_signals
from wattbit.network import build_apn
from wattbit.plan import build as pb
from wattbit.plan.exact import solve_exact, solve_exact_like
from wattbit.plan.lp import solve
from wattbit.plan.problem import Blocks

HORIZON_SLOTS = 48


@pytest.fixture(scope="module")
def world():
    sc = tiny_scenario()
    truth = load_signals(sc.start, sc.end + pd.Timedelta(days=1), sc.step_s, areas=sc.fleet.areas)
    return sc, build_apn(sc.fleet), truth


def _both(world, jobs, policy="wls", now=None):
    """Class LP (as the controller builds it) and exact LP on the same state."""
    sc, apn, truth = world
    now = sc.start if now is None else now
    ctrl = Controller(sc.fleet, apn, policy, sc.weights, PerfectForesight(truth),
                      horizon_slots=HORIZON_SLOTS)
    state = FleetState(now, {j.job_id: JobState(j) for j in jobs})
    problem, _, _ = ctrl.build_problem(state)
    res = solve(problem)
    views = [pb.job_view(j, now, j.work_gpu_h, -1, False) for j in jobs
             if j.kind is not JobKind.ONLINE_INFERENCE]
    services = [j for j in jobs if j.kind is JobKind.ONLINE_INFERENCE]
    pol = ctrl.policy
    exact = solve_exact_like(problem, ctrl.fa, views, services, now=now, spatial=pol.spatial,
                             temporal=pol.temporal, reroute=pol.reroute, rtt_s=ctrl.rtt_s,
                             home_index=ctrl.home_index, move_time_s=ctrl.move_time_s)
    return problem, res, exact


def _job(i, gpus, runtime_h, release_h, deadline_h, t0, areas=INTERCONNECTED_AREAS,
         home="tokyo-dc", kind=JobKind.TRAINING):
    return Job(f"j-{i}", "tenant-a", kind, gpus, runtime_h, t0 + pd.Timedelta(hours=release_h),
               t0 + pd.Timedelta(hours=deadline_h), home, frozenset(areas))


@pytest.mark.parametrize("policy", ["wls", "temporal", "spatial"])
def test_one_job_class_and_exact_agree(world, policy):
    sc = world[0]
    # release and deadline on block edges (blocks end at 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24 h)
    job = _job(0, 64, 4.0, 2.0, 12.0, sc.start)
    _, res, exact = _both(world, [job], policy)
    assert exact.status == "Optimal"
    assert exact.short_gpu_h == pytest.approx(0.0, abs=1e-6)
    assert res.objective_jpy == pytest.approx(exact.objective_jpy, rel=1e-7)


@pytest.mark.parametrize("policy", ["wls", "temporal", "spatial"])
def test_class_lp_is_a_tight_lower_bound_on_the_tiny_jobs(world, policy):
    jobs = tiny_jobs()
    _, res, exact = _both(world, jobs, policy)
    assert exact.status == "Optimal" and exact.short_gpu_h == pytest.approx(0.0, abs=1e-6)
    assert res.objective_jpy <= exact.objective_jpy + 1e-6 * abs(exact.objective_jpy)
    assert exact.objective_jpy - res.objective_jpy <= 0.03 * abs(exact.objective_jpy)


@pytest.mark.parametrize("seed", range(4))
def test_class_lp_is_a_tight_lower_bound_on_random_jobs(world, seed):
    sc = world[0]
    rng = np.random.default_rng(seed)
    sites = tiny_fleet().sites
    jobs = []
    for i in range(25):
        home = sites[rng.integers(len(sites))]
        runtime = float(rng.choice([1.0, 2.0, 3.5, 6.0]))
        release = float(rng.uniform(0, 12))
        deadline = release + runtime + float(rng.uniform(1, 12))
        areas = (home.area,) if rng.random() < 0.3 else INTERCONNECTED_AREAS
        jobs.append(_job(i, int(rng.choice([16, 32, 64, 128])), runtime, release, deadline,
                         sc.start, areas, home.name))
    _, res, exact = _both(world, jobs)
    assert exact.status == "Optimal" and exact.short_gpu_h == pytest.approx(0.0, abs=1e-6)
    assert exact.n_jobs == 25
    assert res.objective_jpy <= exact.objective_jpy + 1e-6 * abs(exact.objective_jpy)
    assert exact.objective_jpy - res.objective_jpy <= 0.05 * abs(exact.objective_jpy)


def test_exact_plan_respects_site_capacity(world):
    sc = world[0]
    jobs = [_job(i, 128, 8.0, 0.0, 24.0, sc.start) for i in range(12)]
    problem, _, exact = _both(world, jobs)
    assert exact.status == "Optimal"
    assert (exact.site_gpus <= problem.cap_gpus + 1e-6).all()
    # 12 × 1,024 GPU-h are done inside the window
    assert exact.short_gpu_h == pytest.approx(0.0, abs=1e-6)


def test_a_missed_deadline_is_charged(world):
    sc = world[0]
    # 600 GPUs wanted for 2 h in the first 2 h, but the tiny fleet's Kyushu site has 512
    job = _job(0, 600, 2.0, 0.0, 2.0, sc.start, areas=("kyushu",), home="kyushu-dc")
    _, _, exact = _both(world, [job])
    assert exact.short_gpu_h > 0


def test_wrong_grid_shape_is_refused(world):
    sc, _, _ = world
    fa = pb.fleet_arrays(sc.fleet)
    blocks = Blocks.uniform(4, 0.5)
    with pytest.raises(InvalidInput, match="expected"):
        solve_exact(fa, [], [], blocks, np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((3, 4)),
                    now=sc.start)


# --- demand response: the class LP and the exact LP build the same rows -------------------------

def _dr_world_jobs(t0):
    """One job per flexibility class, releases and planning deadlines (deadline − 1 h margin) on
    block edges, so the class LP and the exact LP have the same optimum. Tokyo runs ``trn-tk``
    and both services are serving when the requests arrive (the 下げDR's reference load)."""
    def at(h):
        return t0 + pd.Timedelta(hours=h)

    online = JobKind.ONLINE_INFERENCE
    return [
        Job("trn-ky", "tenant-a", JobKind.TRAINING, 384, 4.0, at(0), at(13), "kyushu-dc",
            frozenset({"kyushu"})),
        Job("trn-tk", "tenant-b", JobKind.TRAINING, 256, 3.0, at(0), at(9), "tokyo-dc",
            frozenset({"tokyo"})),
        Job("trn-any", "tenant-c", JobKind.TRAINING, 128, 6.0, at(2), at(17), "kansai-dc",
            frozenset(INTERCONNECTED_AREAS)),
        Job("ft-ks", "tenant-d", JobKind.FINE_TUNING, 128, 2.0, at(1), at(7), "kansai-dc",
            frozenset({"kansai"})),
        Job("oi-ky", "tenant-a", online, 32, 24.0, at(0), at(24), "kyushu-dc", frozenset({"kyushu"}),
            user_area="kyushu", rtt_budget_s=0.05),
        Job("oi-tk", "tenant-b", online, 64, 24.0, at(0), at(24), "tokyo-dc", frozenset({"tokyo"}),
            user_area="tokyo", rtt_budget_s=0.02),
    ]


def _with_dr(world, up_mw, down_mw):
    """The class problem with a 上げDR in Kyushu (3–6 h) and a 下げDR in Tokyo (1–2 h), both
    announced now and registered through the controller; class and exact LP solved on it."""
    sc, apn, truth = world
    now = sc.start
    jobs = _dr_world_jobs(now)
    ctrl = Controller(sc.fleet, apn, "wls", sc.weights, PerfectForesight(truth),
                      horizon_slots=HORIZON_SLOTS)
    states = {j.job_id: JobState(j) for j in jobs}
    for job_id, site in [("trn-tk", "tokyo-dc"), ("oi-tk", "tokyo-dc"), ("oi-ky", "kyushu-dc")]:
        states[job_id] = JobState(states[job_id].job, JobStatus.RUNNING, site, 1.0)
    state = FleetState(now, states)
    requests = [
        DemandResponse("up-kyushu", "up", "kyushu", up_mw, now + pd.Timedelta(hours=3),
                       now + pd.Timedelta(hours=6), issued_at=now),
        DemandResponse("down-tokyo", "down", "tokyo", down_mw, now + pd.Timedelta(hours=1),
                       now + pd.Timedelta(hours=2), issued_at=now),
    ]
    ctrl.step(state, requests)  # registers the requests with the load they find
    problem, members, service_members = ctrl.build_problem(state)
    assert [r.request_id for r in problem.dr] == ["up-kyushu", "down-tokyo"]
    assert len(members) == 4 and all(len(m) == 1 for m in members)  # one job per class
    assert len(service_members) == 2 and all(len(m) == 1 for m in service_members)
    views = []
    for st in state.jobs.values():
        if st.job.kind is JobKind.ONLINE_INFERENCE:
            continue
        running = st.status is JobStatus.RUNNING
        site_i = ctrl.fa.sites.index(st.site) if running else -1
        views.append(pb.job_view(st.job, now, st.remaining_gpu_h, site_i, running))
    edges = np.concatenate([[0.0], problem.blocks.end_h])
    for v in views:  # whole blocks: the class LP's concurrency cap equals the job's
        assert np.isclose(edges, v.release_in_h).any() and np.isclose(edges, v.deadline_in_h).any()
    services = [j for j in jobs if j.kind is JobKind.ONLINE_INFERENCE]
    pol = ctrl.policy
    exact = solve_exact_like(problem, ctrl.fa, views, services, now=now, spatial=pol.spatial,
                             temporal=pol.temporal, reroute=pol.reroute, rtt_s=ctrl.rtt_s,
                             home_index=ctrl.home_index, move_time_s=ctrl.move_time_s)
    return ctrl, problem, solve(problem), exact


def _area_load_mw(fa, site_gpus):
    load = np.zeros((len(fa.areas), site_gpus.shape[1]))
    np.add.at(load, fa.site_area, fa.base_mw[:, None] + fa.mw_per_gpu[:, None] * site_gpus)
    return load


def test_demand_response_met_alike_by_class_and_exact_lp(world):
    ctrl, problem, res, exact = _with_dr(world, up_mw=0.2, down_mw=0.2)
    assert exact.status == "Optimal" and exact.short_gpu_h == pytest.approx(0.0, abs=1e-6)
    assert res.objective_jpy == pytest.approx(exact.objective_jpy, rel=1e-6)
    np.testing.assert_allclose(exact.dr_short_mw, res.dr_short_mw, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.dr_short_mw, 0.0, atol=1e-9)
    # both plans hold the load the requests ask for in every block of their windows ...
    up, down = problem.dr
    ky, tk = ctrl.fa.areas.index("kyushu"), ctrl.fa.areas.index("tokyo")
    exact_load = _area_load_mw(ctrl.fa, exact.site_gpus)
    for load in (res.load_mw, exact_load):
        assert (load[ky, up.blocks] >= up.target_mw - 1e-9).all()
        assert (load[tk, down.blocks] <= down.target_mw + 1e-9).all()
    # ... which they would not do unasked: the requests bind, so the optimum pays for them
    free = solve(replace(problem, dr=()))
    assert (free.load_mw[ky, up.blocks] < up.target_mw - 0.1).all()
    assert (free.load_mw[tk, down.blocks] > down.target_mw + 0.1).all()
    assert res.objective_jpy > free.objective_jpy + 1.0


def test_demand_response_shortfall_alike_by_class_and_exact_lp(world):
    # 1 MW more in Kyushu exceeds kyushu-dc's full load; 0.5 MW less in Tokyo goes below its
    # base load plus the Tokyo-only inference it must keep serving
    ctrl, problem, res, exact = _with_dr(world, up_mw=1.0, down_mw=0.5)
    assert exact.status == "Optimal" and exact.short_gpu_h == pytest.approx(0.0, abs=1e-6)
    assert res.objective_jpy == pytest.approx(exact.objective_jpy, rel=1e-6)
    np.testing.assert_allclose(exact.dr_short_mw, res.dr_short_mw, rtol=1e-6)
    fa = ctrl.fa
    ky, tk = fa.sites.index("kyushu-dc"), fa.sites.index("tokyo-dc")
    up, down = problem.dr
    # by hand: the most Kyushu can draw is its full site; the least Tokyo can draw is its base
    # load with the 64 GPUs of oi-tk
    full_ky_mw = fa.base_mw[ky] + fa.mw_per_gpu[ky] * fa.cap_gpus[ky]
    least_tk_mw = fa.base_mw[tk] + fa.mw_per_gpu[tk] * 64
    assert res.dr_short_mw[0] == pytest.approx(up.target_mw - full_ky_mw, rel=1e-6)
    assert res.dr_short_mw[1] == pytest.approx(least_tk_mw - down.target_mw, rel=1e-6)
    assert (res.dr_short_mw > 0.2).all()
