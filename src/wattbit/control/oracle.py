"""The perfect-foresight plan: the whole run solved once with the real future known.

Same objective, same constraints as the online controller, but every job's arrival, every
grid signal and every demand-response request is known in advance, and jobs are grouped only by
the sites they may use (no origins: the plan places each job where it pays from the start).
Its objective is the bound no online policy can beat; the twin then executes it slot by slot
with the same dispatcher, so its KPIs are those of a feasible schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wattbit.domain import DemandResponse, DRDirection, Fleet, Job, JobKind, SiteOutage, Weights
from wattbit.grid import GridSignals
from wattbit.plan import build as pb
from wattbit.plan.lp import PlanResult, solve
from wattbit.plan.problem import Blocks, DRConstraint, PlanningProblem, weight_kwargs

__all__ = ["OraclePlan", "plan_oracle"]


@dataclass(frozen=True, eq=False)
class OraclePlan:
    """The solved perfect-foresight problem over ``time`` (one block per slot)."""

    time: pd.DatetimeIndex
    problem: PlanningProblem
    result: PlanResult
    work_members: list
    service_members: list

    def slot(self, now: pd.Timestamp) -> int:
        i = int(self.time.searchsorted(now, side="right")) - 1
        return min(max(i, 0), len(self.time) - 1)


def plan_oracle(fleet: Fleet, apn, jobs: Sequence[Job], truth: GridSignals, *,
                weights: Weights | None = None, demand_response: Sequence[DemandResponse] = (),
                outages: Sequence[SiteOutage] = (), time_limit_s: float = 600.0) -> OraclePlan:
    """Solve the run once with the recorded grid and all jobs known (perfect foresight)."""
    weights = weights if weights is not None else Weights()
    fa = pb.fleet_arrays(fleet)
    start = truth.time[0]
    step_h = truth.step_h
    blocks = Blocks.uniform(len(truth.time), step_h)
    price, curt, mc = pb.grid_blocks(truth, fa.areas, blocks)
    index = {s: i for i, s in enumerate(fa.sites)}
    work = [j for j in jobs if j.kind is not JobKind.ONLINE_INFERENCE]
    views = pb.job_views(work, start.value, [j.work_gpu_h for j in work], [-1] * len(work),
                         [False] * len(work))
    services = [j for j in jobs if j.kind is JobKind.ONLINE_INFERENCE]
    def home(job: Job) -> int:
        return index[job.home_site]

    wc, wmem = pb.work_classes(views, fa, blocks, spatial=True, temporal=True, pacing_pu=1.0,
                               move_time_s=lambda *a: 0.0, home_index=home)
    sc, smem = pb.service_classes(services, start, fa, blocks, key_of=lambda j: pb.service_key(
        j, fa, reroute=True, rtt_s=apn.rtt_s, home_index=home))
    cap = np.repeat(fa.cap_gpus[:, None], blocks.n, 1).astype(float)
    for o in outages:
        hit = (truth.time < o.end) & (truth.time + pd.Timedelta(hours=step_h) > o.start)
        cap[index[o.site], np.asarray(hit)] = 0.0
    dr = []
    for r in demand_response:
        if r.area not in fa.areas:
            continue
        mask = np.asarray((truth.time < r.end) & (truth.time + pd.Timedelta(hours=step_h) > r.start))
        first = int(np.argmax(mask)) if mask.any() else -1
        if first < 0:
            continue
        up = r.direction is DRDirection.UP
        area = fa.areas.index(r.area)
        if first == 0:  # nothing runs before the run: measured against the area's base load
            ref_mw = float(fa.base_mw[fa.site_area == area].sum())
            dr.append(DRConstraint(r.request_id, area, mask, 1 if up else -1, pb.dr_target_mw(r, ref_mw)))
        else:  # against the planned load of the slot before its window
            dr.append(DRConstraint(r.request_id, area, mask, 1 if up else -1, r.power_mw, ref_block=first - 1))
    problem = PlanningProblem(
        blocks=blocks, site_area=fa.site_area, cap_gpus=cap, base_mw=fa.base_mw,
        mw_per_gpu=fa.mw_per_gpu, price_jpy_per_mwh=price, curtailment_mw=curt,
        carbon_marginal_g_per_kwh=mc, work=wc, service=sc, dr=tuple(dr),
        allow_moves=False, **weight_kwargs(weights),
        meta={"time": truth.time, "areas": fa.areas},
    )
    result = solve(problem, time_limit_s=time_limit_s)
    return OraclePlan(truth.time, problem, result, wmem, smem)
