"""The flexibility-class LP against the exact job-level LP on small instances.

The class LP relaxes the job-level one (a class's curves are sums of its jobs'), so its optimum is
never above the exact optimum when no deadline is missed, and with one job the two coincide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wattbit.control.controller import Controller
from wattbit.control.state import FleetState, JobState
from wattbit.domain import INTERCONNECTED_AREAS, Job, JobKind
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
