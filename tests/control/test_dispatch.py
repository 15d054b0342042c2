"""Dispatch: from a plan's targets to commands, for the states a live fleet reports."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wattbit.control.dispatch import dispatch_plan
from wattbit.control.state import JobState, JobStatus
from wattbit.domain import Job, JobKind, Migrate, Start, Suspend, Throttle

NOW = pd.Timestamp("2023-03-18 00:00", tz="UTC")
SITES = ("tokyo-dc", "kansai-dc", "kyushu-dc")
ANYWHERE = frozenset({"tokyo", "kansai", "kyushu"})


def _job(job_id: str, gpus: int = 64) -> Job:
    return Job(job_id, "t", JobKind.TRAINING, gpus, 10.0, NOW, NOW + pd.Timedelta(hours=48), "tokyo-dc",
               ANYWHERE, 0, 100.0)


def _dispatch(states: dict[str, JobState], members: list[tuple[str, ...]], x0, m=None, cap=(1000.0, 500.0, 500.0)):
    x0 = np.asarray(x0, dtype=float)
    return dispatch_plan(
        states, NOW, sites=SITES, cap_gpus=np.asarray(cap), work_members=members, service_members=[],
        work_allowed=np.ones_like(x0, dtype=bool), service_allowed=np.zeros((0, 3), bool), x0=x0,
        m=np.zeros_like(x0) if m is None else np.asarray(m, dtype=float), y0=np.zeros((0, 3)),
        throttle=True, spatial=True, step_h=0.5, transfer_s=lambda *_: 10.0)


def _where_commands_take_it(st: JobState, actions) -> str | None:
    """The site a job runs at once the commands for it are carried out (None: stopped)."""
    site = st.site if st.status in (JobStatus.RUNNING, JobStatus.MIGRATING) else None
    for a in actions:
        if a.job_id != st.job.job_id:
            continue
        if isinstance(a, Start):
            site = a.site
        elif isinstance(a, Migrate):
            site = a.destination
        elif isinstance(a, Suspend):
            site = None
    return site


def test_a_running_job_with_no_work_credited_yet_is_moved_by_a_command():
    """A job seen running before any work is credited to it (the live loop credits work between
    two observations) holds its GPUs: placing it elsewhere takes a move, never nothing."""
    states = {"trn-x": JobState(_job("trn-x"), JobStatus.RUNNING, "tokyo-dc", 1.0, 0.0)}
    placed, actions = _dispatch(states, [("trn-x",)], x0=[[0.0, 64.0, 0.0]], m=[[0.0, 64.0, 0.0]])
    assert placed["trn-x"].site == "kansai-dc"
    assert [type(a) for a in actions] == [Migrate]
    assert (actions[0].source, actions[0].destination) == ("tokyo-dc", "kansai-dc")


def test_no_job_is_placed_away_from_where_it_runs_without_a_command():
    """Whatever the plan's targets and move budgets, every placement dispatch reports is where the
    commands leave the job."""
    for m_kansai in (0.0, 64.0):
        for done in (0.0, 5.0):
            states = {"trn-x": JobState(_job("trn-x"), JobStatus.RUNNING, "tokyo-dc", 1.0, done)}
            placed, actions = _dispatch(states, [("trn-x",)], x0=[[0.0, 64.0, 0.0]], m=[[0.0, m_kansai, 0.0]])
            where = placed["trn-x"].site if "trn-x" in placed else None
            assert where == _where_commands_take_it(states["trn-x"], actions), (m_kansai, done, placed, actions)


def test_a_moving_job_keeps_its_gpus_at_its_destination_and_gets_no_command():
    """A job whose checkpoint is in flight is reported at its destination, at duty 0: it gets no
    throttle (an executor cannot throttle a job that is not running) and no stop, whatever the
    plan wants, and its GPUs there are not given to another job."""
    moving = JobState(_job("trn-m", gpus=400), JobStatus.MIGRATING, "kansai-dc", 0.0, 64.0,
                      NOW + pd.Timedelta(seconds=20))
    waiting = JobState(_job("trn-w", gpus=200), JobStatus.PENDING)
    # the plan wants neither at kansai-dc; then it wants only the waiting job there
    for x_moving, x_waiting in (([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), ([0.0, 0.0, 0.0], [0.0, 200.0, 0.0])):
        placed, actions = _dispatch({"trn-m": moving, "trn-w": waiting}, [("trn-m",), ("trn-w",)],
                                    x0=[x_moving, x_waiting])
        assert placed["trn-m"].site == "kansai-dc"
        assert not [a for a in actions if a.job_id == "trn-m"]
        assert "trn-w" not in placed  # 400 of kansai-dc's 500 GPUs are the moving job's
        assert not any(isinstance(a, Throttle) for a in actions)


def test_slack_is_the_same_at_an_instant_given_as_a_timestamp_or_integer_nanoseconds():
    from wattbit.control.dispatch import slack_h

    st = JobState(_job("trn-x"), JobStatus.PENDING)
    expected = slack_h(st, NOW)
    assert slack_h(st, NOW.value) == slack_h(st, np.int64(NOW.value)) == expected == pytest.approx(38.0)


def test_a_waiting_job_too_large_for_the_plan_leaves_room_for_a_smaller_one_after_it():
    """Once a waiting job of a class finds no room (room only shrinks within a slot), dispatch
    skips larger ones but never a smaller one: here b (256 GPUs) and d (512) wait, while c (64),
    after b in the queue, still takes what is left."""
    jobs = {j: _job(j, g) for j, g in (("a", 128), ("b", 256), ("c", 64), ("d", 512))}
    states = {j: JobState(job) for j, job in jobs.items()}
    # one class, 200 GPUs planned at tokyo-dc: a takes 128, then b needs half its 256 planned
    placed, actions = _dispatch(states, [tuple(jobs)], [[200.0, 0.0, 0.0]])
    assert sorted(placed) == ["a", "c"] and {p.site for p in placed.values()} == {"tokyo-dc"}
    assert sorted(a.job_id for a in actions if isinstance(a, Start)) == ["a", "c"]


def test_a_job_state_is_the_frozen_dataclass_its_fields_say():
    """JobState's own __init__ (through its slots' setters) takes the fields' names, order and
    defaults, so that JobState(job), dataclasses.replace and pickling agree."""
    import inspect
    import pickle

    params = list(inspect.signature(JobState.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in params] == [
        (f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(JobState)]
    job = Job("j", "t", JobKind.TRAINING, 8, 1.0, NOW, NOW + pd.Timedelta(hours=4), "tokyo-dc", frozenset({"tokyo"}))
    st = JobState(job, JobStatus.RUNNING, "tokyo-dc", 0.5, 2.0)
    assert dataclasses.replace(st, site="kansai-dc") == JobState(job, JobStatus.RUNNING, "kansai-dc", 0.5, 2.0)
    assert pickle.loads(pickle.dumps(st)) == st and hash(st) == hash(JobState(job, JobStatus.RUNNING, "tokyo-dc", 0.5, 2.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.site = "kansai-dc"
