"""Invariants of the twin under any workload (Hypothesis): work is conserved, no site exceeds
its GPUs or power, residency always holds, absorbed never exceeds curtailment or load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattbit.control import Controller
from wattbit.domain import Job, JobKind
from wattbit.examples import tiny_fleet
from wattbit.grid import GridSignals, PerfectForesight
from wattbit.network import LightpathBook, build_apn
from wattbit.plan.build import fleet_arrays
from wattbit.sim.twin import run_twin

FLEET = tiny_fleet()
APN = build_apn(FLEET)
T0 = pd.Timestamp("2023-03-19 00:00", tz="UTC")
SLOTS = 24


def _world(seed: int) -> GridSignals:
    rng = np.random.default_rng(seed)
    time = pd.date_range(T0, periods=SLOTS, freq="30min", name="time")
    shape = (SLOTS, len(FLEET.areas))
    curt = np.where(rng.random(shape) < 0.3, rng.uniform(0.05, 1.5, shape), 0.0)
    price = rng.uniform(5_000, 30_000, shape)
    return GridSignals(time, FLEET.areas, curt, price, np.full(shape, 450.0),
                       np.where(curt > 0, 0.0, 490.0))


@st.composite
def jobs(draw):
    n = draw(st.integers(1, 8))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from([JobKind.TRAINING, JobKind.FINE_TUNING, JobKind.BATCH_INFERENCE]))
        gpus = 8 * draw(st.integers(1, 32))
        runtime_h = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]))
        release = T0 + pd.Timedelta(minutes=30 * draw(st.integers(0, 6)))
        slack_h = draw(st.sampled_from([1.0, 2.0, 4.0, 8.0]))
        areas = draw(st.sets(st.sampled_from(FLEET.areas), min_size=1))
        home = next(s.name for s in FLEET.sites if s.area in areas)
        out.append(Job(f"j{i}", f"tenant-{i % 2}", kind, gpus, runtime_h, release,
                       release + pd.Timedelta(hours=runtime_h + slack_h), home, frozenset(areas),
                       checkpoint_gb=gpus * 2.0))
    return out


@pytest.mark.parametrize("policy", ["baseline", "spatial", "wls"])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workload=jobs(), seed=st.integers(0, 3))
def test_invariants_hold(policy, workload, seed):
    truth = _world(seed)
    ctrl = Controller(FLEET, APN, policy, forecaster=PerfectForesight(truth), horizon_slots=8,
                      lightpaths=LightpathBook(APN))
    r = run_twin(ctrl, workload, truth)
    # work: never more done than asked, and finished jobs did all of theirs
    jobs_df = r.jobs.set_index("job_id")
    assert (jobs_df.done_gpu_h <= jobs_df.work_gpu_h + 1e-6).all()
    done = jobs_df[jobs_df.finished]
    np.testing.assert_allclose(done.done_gpu_h, done.work_gpu_h, rtol=1e-9)
    # residency
    for job_id, row in jobs_df.iterrows():
        if row.final_site is not None:
            assert FLEET.site(row.final_site).area in row.allowed_areas.split(",")
    # capacity and power
    fa = fleet_arrays(FLEET)
    busy = r.sites.busy_gpus.unstack("site")[list(FLEET.site_names)].to_numpy()
    power = r.sites.power_mw.unstack("site")[list(FLEET.site_names)].to_numpy()
    assert (busy <= fa.cap_gpus[None, :] + 1e-6).all()
    caps_mw = np.array([s.it_power_max_mw * s.pue for s in FLEET.sites])
    assert (power <= caps_mw[None, :] + 1e-6).all()
    # grid accounting
    a = r.areas
    assert (a.absorbed_mw <= a.curtailment_mw + 1e-9).all()
    assert (a.absorbed_mw <= a.load_mw + 1e-9).all()
    assert a.load_mw.sum() == pytest.approx(r.sites.power_mw.sum())
    # the APN never carries more than its wavelengths
    assert r.counters["peak_link_utilisation_pu"] <= 1.0 + 1e-9
