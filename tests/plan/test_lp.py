"""The planning LP against brute force and hand calculations on tiny instances."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import highspy
import numpy as np
import pytest

from wattbit.domain import Weights
from wattbit.errors import InvalidInput, SolverError
from wattbit.plan import lp
from wattbit.plan.exact import weights_of
from wattbit.plan.lp import _quiet_highs, run_highs, solve
from wattbit.plan.problem import (
    WEIGHT_FIELDS,
    Blocks,
    DRConstraint,
    PlanningProblem,
    ServiceClasses,
    WorkClasses,
    weight_kwargs,
)

MW_PER_GPU = 0.001  # 1 kW per busy GPU, facility


def _problem(price, curt, *, cap_site=8.0, cap_class=8.0, due, allowed=(True, True), origin=-1,
             move_h=0.0, dr=(), service=None, curtail_value=5000.0, carbon=None):
    price = np.asarray(price, dtype=float)
    A, B = price.shape
    S = 2
    work = WorkClasses(
        allowed=np.array([allowed]), origin=np.array([origin]),
        cap_gpus=np.full((1, B), cap_class), due_gpu_h=np.array([due], dtype=float),
        remaining_gpu_h=np.array([float(max(due))]), move_h=np.array([[move_h] * S]),
        checkpoint_gb_per_gpu=np.zeros(1))
    service = service or ServiceClasses(np.zeros((0, S), bool), np.zeros((0, B)))
    return PlanningProblem(
        blocks=Blocks.uniform(B, 1.0), site_area=np.array([0, 1]),
        cap_gpus=np.full((S, B), cap_site), base_mw=np.array([0.0, 0.0]),
        mw_per_gpu=np.full(S, MW_PER_GPU), price_jpy_per_mwh=price,
        curtailment_mw=np.asarray(curt, dtype=float),
        carbon_marginal_g_per_kwh=np.zeros((A, B)) if carbon is None else np.asarray(carbon, float),
        work=work, service=service, dr=tuple(dr), curtailment_value_jpy_per_mwh=curtail_value)


def _brute_force(p: PlanningProblem, gpus_step: int = 1) -> float:
    """Enumerate integer GPU allocations x[s, b] of the single class and price them exactly."""
    S, B = p.n_sites, p.blocks.n
    cap = int(min(p.work.cap_gpus[0, 0], p.cap_gpus[0, 0]))
    need = p.work.due_gpu_h[0]
    h = p.blocks.duration_h
    best = np.inf
    cp = p.carbon_price_jpy_per_t / 1000.0
    for flat in itertools.product(range(0, cap + 1, gpus_step), repeat=S * B):
        x = np.array(flat, dtype=float).reshape(S, B)
        if (x.sum(0) > p.work.cap_gpus[0]).any():
            continue
        if (x[~p.work.allowed[0]] > 0).any():
            continue
        cum = np.cumsum((x * h).sum(0))
        if (cum + 1e-9 < need).any() or cum[-1] > p.work.remaining_gpu_h[0] + 1e-9:
            continue
        load = p.mw_per_gpu[:, None] * x  # sites = areas here
        absorbed = np.minimum(load, p.curtailment_mw)
        cost = (h * load * (p.price_jpy_per_mwh + cp * p.carbon_marginal_g_per_kwh)).sum()
        cost -= (h * absorbed * (cp * p.carbon_marginal_g_per_kwh + p.curtailment_value_jpy_per_mwh)).sum()
        best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_planner_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    price = rng.uniform(1_000, 30_000, size=(2, 3)).round(0)
    # curtailment in whole GPUs' worth of power, so that the LP optimum is integral
    curt = np.where(rng.random((2, 3)) < 0.4, rng.integers(1, 5, (2, 3)) * MW_PER_GPU, 0.0)
    due = [0.0, 0.0, float(rng.integers(2, 9))]
    p = _problem(price, curt, cap_site=4, cap_class=4, due=due)
    res = solve(p)
    assert res.status == "Optimal"
    brute = _brute_force(p)
    # the LP is a relaxation of the integer problem: never above, and here integral
    assert res.objective_jpy <= brute + 1e-6
    assert res.objective_jpy == pytest.approx(brute, rel=1e-6, abs=1e-6)


def test_work_goes_to_the_cheapest_slots_by_hand():
    # 16 GPU-h due by the end, 8 GPUs max: the two cheapest (site, block) cells are
    # site 1 block 1 (1,000 JPY/MWh) and site 0 block 2 (5,000 JPY/MWh)
    price = [[10_000, 20_000, 5_000, 30_000], [15_000, 1_000, 40_000, 40_000]]
    p = _problem(price, np.zeros((2, 4)), due=[0, 0, 0, 16])
    res = solve(p)
    assert res.x_gpus[0, 1, 1] == pytest.approx(8)
    assert res.x_gpus[0, 0, 2] == pytest.approx(8)
    # 8 GPU × 1 h × 1 kW = 8 kWh at 1 and 5 JPY/kWh
    assert res.terms_jpy["energy_jpy"] == pytest.approx(8 * 1 + 8 * 5)


def test_absorption_is_bounded_by_curtailment_and_load():
    price = np.full((2, 3), 10_000.0)
    curt = np.array([[0.002, 0.0, 0.0], [0.0, 0.0, 0.5]])
    p = _problem(price, curt, due=[0, 0, 8])
    res = solve(p)
    assert (res.absorbed_mw <= curt + 1e-9).all()
    assert (res.absorbed_mw <= res.load_mw + 1e-9).all()
    # the curtailed block in area 1 is worth the most: all 8 GPU-h go there
    assert res.x_gpus[0, 1, 2] == pytest.approx(8)
    assert res.absorbed_mw[1, 2] == pytest.approx(8 * MW_PER_GPU)


def test_residency_keeps_work_on_allowed_sites():
    price = [[30_000, 30_000], [1, 1]]
    p = _problem(price, np.zeros((2, 2)), due=[0, 8], allowed=(True, False))
    res = solve(p)
    assert res.x_gpus[0, 1].sum() == 0
    assert res.x_gpus[0, 0].sum() == pytest.approx(8)


def test_moves_cost_time_and_need_moved_gpus():
    # running at site 0 (500 JPY/kWh); moving to site 1 (free) costs half an hour of the moved
    # GPUs, valued at 500 JPY per GPU-hour: worth it here
    price = [[500_000, 500_000], [0, 0]]
    p = _problem(price, np.zeros((2, 2)), due=[0, 8], origin=0, move_h=0.5)
    res = solve(p)
    moved = res.m_gpus[0, 1]
    assert moved > 0
    assert (res.x_gpus[0, 1] <= moved + 1e-9).all()
    work = (res.x_gpus[0] * 1.0).sum() - 0.5 * moved
    assert work == pytest.approx(8, abs=1e-6)


def test_small_gains_do_not_pay_for_a_move():
    price = [[20_000, 20_000], [0, 0]]  # saves 20 JPY per GPU-hour; a move costs 250 per GPU
    p = _problem(price, np.zeros((2, 2)), due=[0, 8], origin=0, move_h=0.5)
    res = solve(p)
    assert res.m_gpus.sum() == pytest.approx(0)


def test_deadline_shortfall_is_penalised_not_infeasible():
    p = _problem(np.full((2, 2), 10_000.0), np.zeros((2, 2)), cap_site=2, cap_class=2, due=[0, 8])
    res = solve(p)  # at most 2 GPUs × 2 sites × 2 h = 8 GPU-h, but the class takes only 2 at once
    assert res.short_gpu_h[0] == pytest.approx(4)
    assert res.terms_jpy["deadline_penalty_jpy"] == pytest.approx(4 * p.deadline_penalty_jpy_per_gpu_h)


def test_demand_response_raises_load_in_its_area():
    price = [[1_000, 1_000, 1_000], [50_000, 50_000, 50_000]]
    dr = DRConstraint("up", area=1, blocks=np.array([False, True, False]), direction=1, target_mw=0.004)
    p = _problem(price, np.zeros((2, 3)), due=[0, 0, 8], dr=[dr])
    res = solve(p)
    assert res.load_mw[1, 1] >= 0.004 - 1e-9
    assert res.dr_short_mw[0] == pytest.approx(0)


def test_inference_is_served_inside_its_sites():
    service = ServiceClasses(np.array([[False, True]]), np.array([[3.0, 3.0]]))
    p = _problem([[1, 1], [9_000, 9_000]], np.zeros((2, 2)), due=[0, 0], service=service)
    res = solve(p)
    assert res.y_gpus[0, 0].sum() == 0
    assert res.y_gpus[0, 1] == pytest.approx([3.0, 3.0])
    assert res.unserved_gpus.sum() == pytest.approx(0)


def test_telescoping_blocks_cover_the_horizon():
    b = Blocks.telescoping(96, 0.5, fine_slots=8)
    assert b.slots.sum() == 96
    assert list(b.slots[:8]) == [1] * 8
    assert (np.diff(b.slots) >= 0).all()
    with pytest.raises(InvalidInput):
        Blocks(np.array([]), np.array([], dtype=int))


def test_telescoping_blocks_take_numpy_integers_and_refuse_bools():
    two = np.int64(2)
    assert Blocks.telescoping(16, 0.5, 4, coarse_blocks=two, fine_block_slots=two).slots.tolist() == \
        Blocks.telescoping(16, 0.5, 4, coarse_blocks=2, fine_block_slots=2).slots.tolist()
    with pytest.raises(InvalidInput, match=r"coarse_blocks = True is a boolean; expected an integer >= 1"):
        Blocks.telescoping(16, 0.5, 4, coarse_blocks=True)
    with pytest.raises(InvalidInput, match=r"fine_block_slots = True is a boolean; expected an integer >= 1"):
        Blocks.telescoping(16, 0.5, 4, fine_block_slots=True)
    with pytest.raises(InvalidInput, match=r"coarse_blocks = 2.5; expected an integer >= 1"):
        Blocks.telescoping(16, 0.5, 4, coarse_blocks=2.5)


def test_each_objective_weight_has_one_problem_field_with_the_weights_default():
    """WEIGHT_FIELDS is read from the problem's fields, each defaulting to Weights' own value, and
    covers every weight: weight_kwargs and weights_of undo each other."""
    defaults = {f.name: f.default for f in dataclasses.fields(PlanningProblem)}
    assert sorted(WEIGHT_FIELDS.values()) == sorted(f.name for f in dataclasses.fields(Weights))
    for problem_field, weight in WEIGHT_FIELDS.items():
        assert defaults[problem_field] == getattr(Weights(), weight)
    custom = Weights(carbon_price_jpy_per_t=1.0, unserved_inference_penalty_jpy_per_gpu_h=2.0)
    kwargs = weight_kwargs(custom)
    assert kwargs["unserved_penalty_jpy_per_gpu_h"] == 2.0
    assert weights_of(dataclasses.replace(_problem(np.ones((2, 1)), np.zeros((2, 1)), due=[0]), **kwargs)) == custom


def _with_restarts(p: PlanningProblem, running_gpus: float, restart_h: float) -> PlanningProblem:
    work = dataclasses.replace(p.work, running_gpus=np.array([running_gpus]), restart_h=np.array([restart_h]))
    return dataclasses.replace(p, work=work)


def test_a_running_class_rides_through_a_small_dip_instead_of_restarting():
    # 8 GPUs run now; 16 GPU-h due over 4 blocks, so half the time may be idle. A dip of
    # 2 JPY/kWh in blocks 1-2 at site 0 saves 8 × 1 kW × 2 h × 2 JPY/kWh = 32 JPY by stopping
    # then, but a restart of 8 GPUs loses 8 × 0.05 h × 500 JPY/GPU-h = 200 JPY
    price = [[12_000, 10_000, 10_000, 12_000], [99_000] * 4]
    free = _problem(price, np.zeros((2, 4)), due=[0, 0, 0, 16], allowed=(True, False))
    res = solve(free)
    assert res.x_gpus[0, 0, 0] == pytest.approx(0) and res.x_gpus[0, 0, 3] == pytest.approx(0)
    costly = solve(_with_restarts(free, running_gpus=8.0, restart_h=0.05))
    # it keeps running from the start (winding down, which costs nothing) rather than stop now
    # and start again in the dip
    assert costly.x_gpus[0, 0, 0] > 1.0
    assert costly.terms_jpy["restart_jpy"] == pytest.approx(0.0, abs=1e-6)
    assert (np.diff(costly.x_gpus[0, 0]) <= 1e-6).all()
    # from a standing start the class pays for the GPUs it starts (its peak, here: it starts
    # once), and spreads its work to start fewer
    cold = solve(_with_restarts(free, running_gpus=0.0, restart_h=0.05))
    peak = cold.x_gpus[0].sum(axis=0).max()
    assert 0 < peak < 8
    assert cold.terms_jpy["restart_jpy"] == pytest.approx(peak * 0.05 * 500.0)


def test_a_large_gain_still_pays_for_a_restart():
    # stopping through blocks 1-2 saves 8 × 2 h × 50 JPY/kWh = 800 JPY > 200 JPY of restart
    price = [[12_000, 62_000, 62_000, 12_000], [99_000] * 4]
    p = _with_restarts(_problem(price, np.zeros((2, 4)), due=[0, 0, 0, 16], allowed=(True, False)),
                       running_gpus=8.0, restart_h=0.05)
    res = solve(p)
    assert res.x_gpus[0, 0, 1] == pytest.approx(0) and res.x_gpus[0, 0, 2] == pytest.approx(0)
    assert res.terms_jpy["restart_jpy"] == pytest.approx(200.0)


UNKNOWN_STATUS_MPS = Path(__file__).parent / "data" / "unknown_status.mps.gz"


def _highs_on(path: Path):
    hs = _quiet_highs(highspy)
    hs.readModel(str(path))
    hs.setOptionValue("presolve", "off")  # as the plan solves it
    return hs


def test_a_plan_on_which_the_simplex_stops_unknown_is_solved_by_a_retry():
    """A plan of the FY2022 twin (written by HiGHS 1.16): without presolve the dual simplex ends
    'Unknown', one row 1.06e-7 infeasible; the retries must still find its optimum."""
    hs = _highs_on(UNKNOWN_STATUS_MPS)
    run_highs(hs, highspy)
    assert hs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    assert hs.getInfo().objective_function_value == pytest.approx(88_645_238.96, rel=1e-9)


def test_a_run_out_of_time_is_not_retried():
    hs = _highs_on(UNKNOWN_STATUS_MPS)
    hs.setOptionValue("time_limit", 0.0)
    _, attempts = run_highs(hs, highspy)
    assert hs.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
    assert attempts == 1


def test_every_plan_gets_the_whole_time_limit():
    """HiGHS's time limit counts all the runs of one instance, and plans made on one thread share
    one (wattbit.plan.lp._plan_highs): each plan's limit must still be its own, not spent once
    their runs have added up to it."""
    p = _problem([[10_000.0, 20_000.0, 15_000.0], [12_000.0, 11_000.0, 30_000.0]],
                 [[0.0, 3.0, 0.0], [0.0, 0.0, 1.0]], due=[0.0, 4.0, 8.0])
    first = solve(p, time_limit_s=0.05)
    for _ in range(300):  # some 0.1 s of HiGHS in all, each well within 0.05 s
        res = solve(p, time_limit_s=0.05)
    assert res.status == first.status == "Optimal"
    assert res.objective_jpy == first.objective_jpy


def test_a_failed_plan_leaves_no_model_in_the_threads_instance():
    p = _problem([[10_000.0, 20_000.0], [15_000.0, 5_000.0]], np.zeros((2, 2)), due=[0, 8])
    with pytest.raises(SolverError, match="time limit 0.0 s"):
        solve(p, time_limit_s=0.0)
    assert lp._PLAN_HIGHS.instance.getNumCol() == 0
    assert solve(p).status == "Optimal"  # and the next plan solves as ever
