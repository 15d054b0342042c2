"""The perfect-foresight plan: demand-response requests over the whole run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wattbit.control.oracle import plan_oracle
from wattbit.domain import DemandResponse
from wattbit.examples import tiny_jobs, tiny_scenario
from wattbit.plan.build import fleet_arrays
from wattbit.sim.run import build_world


@pytest.fixture(scope="module")
def world():
    return build_world(tiny_scenario(), jobs=tiny_jobs())


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_request_over_the_first_slot_is_planned_against_the_empty_fleet(world, direction):
    # nothing runs before the run's first slot: the load to measure the request against is the
    # area's base load (what the online controller reads from the fleet there)
    t0 = world.truth.time[0]
    power_mw = 0.1
    dr = DemandResponse("dr-first", direction, "kyushu", power_mw, t0, t0 + pd.Timedelta(hours=2))
    fleet = world.scenario.fleet
    plan = plan_oracle(fleet, world.apn, world.jobs, world.truth, demand_response=[dr])
    assert [r.request_id for r in plan.problem.dr] == ["dr-first"]
    fa = fleet_arrays(fleet)
    area = fa.areas.index("kyushu")
    base_mw = float(fa.base_mw[fa.site_area == area].sum())
    window = plan.problem.dr[0].blocks
    load = plan.result.load_mw[area, window]
    if direction == "up":
        assert plan.result.dr_short_mw[0] == pytest.approx(0.0, abs=1e-9)
        assert np.all(load >= base_mw + power_mw - 1e-6)
    else:  # the fleet cannot go below its base load: the request is short by what it cannot shed
        target_mw = max(0.0, base_mw - power_mw)
        assert plan.result.dr_short_mw[0] == pytest.approx(float((load - target_mw).max()))
        assert plan.result.dr_short_mw[0] >= base_mw - target_mw - 1e-9
