"""The planner's view of jobs: its rules by hand, and many jobs at once give what one job at a
time gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wattbit.domain import JobKind
from wattbit.examples import tiny_fleet, tiny_jobs, tiny_scenario
from wattbit.plan import build as pb
from wattbit.plan.problem import Blocks


@pytest.fixture(scope="module")
def jobs_and_state():
    """The tiny scenario's jobs, each given a state: some done in part, some running (at a site
    of the fleet or at none), and one without a deadline."""
    sc = tiny_scenario()
    jobs = list(tiny_jobs())
    jobs[0] = dataclasses.replace(jobs[0], deadline=None)
    rng = np.random.default_rng(7)
    n = len(jobs)
    remaining = np.array([j.work_gpu_h for j in jobs]) * rng.choice([1.0, 0.6, 0.05], n)
    site = rng.integers(-1, len(sc.fleet.sites), n)
    running = rng.random(n) < 0.5
    return sc, jobs, remaining, site, running


def test_job_views_equal_job_view_one_job_at_a_time(jobs_and_state):
    sc, jobs, remaining, site, running = jobs_and_state
    for now in (sc.start, sc.start + pd.Timedelta(hours=7.5), sc.end):
        cols = pb.job_views(jobs, now.value, remaining, site, running)
        one = [pb.job_view(j, now, float(r), int(s), bool(run))
               for j, r, s, run in zip(jobs, remaining, site, running)]
        back = pb.JobViews.of(one)
        assert len(cols) == len(back) == len(jobs) and cols.jobs == back.jobs
        for f in ("remaining_gpu_h", "origin", "pinned", "release_in_h", "deadline_in_h", "running"):
            np.testing.assert_array_equal(cols_f := getattr(cols, f), getattr(back, f), err_msg=f)
            assert cols_f.dtype == getattr(back, f).dtype, f  # the same numbers, to the bit
        # one job's origin and pinned, from its state alone, by the same rule
        assert [pb.state_origin(j, int(s), bool(run)) for j, s, run in zip(jobs, site, running)] == \
            list(zip(cols.origin.tolist(), cols.pinned.tolist()))
    # the cases the rules tell apart are all there
    assert cols.pinned.any() and (cols.origin < 0).any() and (cols.origin >= 0).any()


def test_the_planners_view_by_hand():
    """Planning deadline = max(min(deadline, earliest finish), deadline − 1 h margin); without a
    deadline, 72 h after the job could finish; state counts where the job runs or can resume;
    a running job that cannot be preempted is pinned."""
    base = tiny_jobs()
    train = next(j for j in base if j.kind is JobKind.TRAINING)
    online = next(j for j in base if j.kind is JobKind.ONLINE_INFERENCE)
    now = train.release + pd.Timedelta(hours=1)
    h = pd.Timedelta(hours=1)
    jobs = [
        # half done (16 of 32 GPU-h at 8 GPUs: 2 h left), with ample slack and with 0.5 h of it
        dataclasses.replace(train, gpus=8, runtime_h=4.0, release=now - 3 * h, deadline=now + 10 * h),
        dataclasses.replace(train, gpus=8, runtime_h=4.0, release=now - 3 * h, deadline=now + 2.5 * h),
        dataclasses.replace(train, runtime_h=5.0, release=now + 3 * h, deadline=None),
        dataclasses.replace(online, release=now - h, deadline=now + 5 * h),
        dataclasses.replace(online, release=now - h, deadline=now + 5 * h),
    ]
    v = pb.job_views(jobs, now.value, [16.0, 16.0, 40.0, 8.0, 8.0], [2, 2, -1, 1, 1],
                     [False, False, False, True, False])
    np.testing.assert_allclose(v.release_in_h, [0.0, 0.0, 3.0, 0.0, 0.0])
    np.testing.assert_allclose(v.deadline_in_h[:3], [9.0, 2.0, 3.0 + 5.0 + 72.0])
    assert v.origin.tolist() == [2, 2, -1, 1, -1] and v.pinned.tolist() == [False] * 3 + [True, False]
    one = pb.job_view(jobs[1], now, 16.0, 2, False)
    assert (one.deadline_in_h, one.origin, one.pinned) == (2.0, 2, False)


def test_work_classes_take_columns_or_single_views_alike(jobs_and_state):
    sc, jobs, remaining, site, running = jobs_and_state
    work = [i for i, j in enumerate(jobs) if j.kind.deferrable]
    fa = pb.fleet_arrays(tiny_fleet())
    blocks = Blocks.telescoping(48, 0.5, 4)
    now = sc.start + pd.Timedelta(hours=3)
    cols = pb.job_views([jobs[i] for i in work], now.value, remaining[work], site[work], running[work])
    one = [pb.job_view(jobs[i], now, float(remaining[i]), int(site[i]), bool(running[i])) for i in work]
    kw = {"spatial": True, "temporal": True, "pacing_pu": 1.0,
          "move_time_s": lambda gb, a, b: 60.0 + gb, "home_index": lambda job: fa.sites.index(job.home_site)}
    wc_cols, members_cols = pb.work_classes(cols, fa, blocks, **kw)
    wc_one, members_one = pb.work_classes(one, fa, blocks, **kw)
    assert members_cols == members_one and len(members_cols) > 1
    for f in dataclasses.fields(wc_one):
        a, b = getattr(wc_cols, f.name), getattr(wc_one, f.name)
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        else:
            assert a == b, f.name


def test_a_curtailed_slot_is_charged_the_thermal_margin_whatever_the_window():
    """The grid-served energy of a curtailing slot comes from the thermal margin: the same value in
    a plan's horizon, in a whole run and in a chunk of it (not a maximum over the window given)."""
    from wattbit.grid import GridSignals
    from wattbit.grid.carbon import MARGINAL_THERMAL_G_PER_KWH

    t = pd.date_range("2023-03-18", periods=4, freq="30min", tz="UTC", name="time")
    curt = np.array([[100.0], [0.0], [0.0], [0.0]])
    marginal = np.array([[0.0], [400.0], [400.0], [700.0]])
    sig = GridSignals(t, ("kyushu",), curt, np.full((4, 1), 10_000.0), np.full((4, 1), 400.0), marginal)
    _, _, whole = pb.grid_blocks(sig, ("kyushu",), Blocks.uniform(4, 0.5))
    _, _, first_two = pb.grid_blocks(sig.window(0, 2), ("kyushu",), Blocks.uniform(2, 0.5))
    _, _, alone = pb.grid_blocks(sig.window(0, 1), ("kyushu",), Blocks.uniform(1, 0.5))
    assert whole[0, 0] == first_two[0, 0] == alone[0, 0] == MARGINAL_THERMAL_G_PER_KWH
    assert whole[0, 1:].tolist() == [400.0, 400.0, 700.0]  # elsewhere the signals' own value


def test_a_job_that_cannot_meet_its_deadline_stays_in_the_plan_until_it_can_finish():
    """Dispatch runs a job out of slack whatever the plan says, so the plan must count its GPUs
    (power, curtailment absorbed, demand response) until it can finish, past its deadline too."""
    from wattbit.domain import Job

    fa = pb.fleet_arrays(tiny_fleet())
    now = pd.Timestamp("2023-03-18 12:00", tz="UTC")
    anywhere = frozenset({"tokyo", "kansai", "kyushu"})
    blocks = Blocks.uniform(16, 0.5)
    for deadline_in_h in (-1.0, 2.0):  # past, and 2 h away with 5 h of work left
        job = Job("late", "t", JobKind.TRAINING, 64, 10.0, now - pd.Timedelta(hours=20),
                  now + pd.Timedelta(hours=deadline_in_h), "tokyo-dc", anywhere, 0, 100.0)
        views = pb.job_views([job], now.value, [320.0], [0], [True])
        wc, _ = pb.work_classes(views, fa, blocks, spatial=True, temporal=True, pacing_pu=1.0,
                                move_time_s=lambda *_: 10.0, home_index=lambda _: 0)
        assert wc.cap_gpus[0].tolist() == [64.0] * 10 + [0.0] * 6, deadline_in_h  # 5 h of 30 min
        assert wc.due_gpu_h[0, -1] == pytest.approx(320.0)  # all of it is due, as before


def test_job_view_takes_now_as_a_timestamp_or_integer_nanoseconds(jobs_and_state):
    sc, jobs, *_ = jobs_and_state
    now = sc.start + pd.Timedelta(hours=7.5)
    views = [pb.job_view(jobs[0], t, jobs[0].work_gpu_h, -1, False) for t in (now, now.value, np.int64(now.value))]
    assert views[0] == views[1] == views[2]
