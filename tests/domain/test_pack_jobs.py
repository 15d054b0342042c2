"""Jobs packed as columns (to send to a worker process) come back field for field."""

from __future__ import annotations

import dataclasses
import pickle

import pandas as pd

from wattbit.domain import Job, JobKind
from wattbit.domain.job import pack_jobs, unpack_jobs
from wattbit.examples import tiny_jobs


def _same(a: Job, b: Job) -> bool:
    """Every field equal and of the same type; instants also in the same time zone and unit."""
    for f in dataclasses.fields(Job):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y or type(x) is not type(y):
            return False
        if isinstance(x, pd.Timestamp) and (str(x.tz), x.unit) != (str(y.tz), y.unit):
            return False
    return True


def test_jobs_come_back_field_for_field():
    jobs = list(tiny_jobs())
    t0 = pd.Timestamp("2025-05-04 09:00", tz="Asia/Tokyo")
    jobs += [
        # no deadline; instants in another time zone and unit than the others
        Job("open-ended", "lab", JobKind.TRAINING, 8, 3.0, t0.as_unit("s"), None, "tokyo-dc",
            frozenset({"tokyo"}), priority=3, checkpoint_gb=120.0),
        Job("chat", "svc", "online_inference", 16, 6.0, t0, t0 + pd.Timedelta(hours=6), "kansai-dc",
            frozenset({"kansai", "tokyo"}), user_area="kansai", rtt_budget_s=0.02),
    ]
    kinds = {j.kind for j in jobs}
    assert JobKind.ONLINE_INFERENCE in kinds and len(kinds) >= 3
    back = unpack_jobs(pickle.loads(pickle.dumps(pack_jobs(jobs))))
    assert len(back) == len(jobs)
    assert all(_same(a, b) for a, b in zip(jobs, back))
    assert back[-2].deadline is None and back[-2].deadline_ns is None
    assert back[-2].release.unit == "s" and str(back[-1].release.tz) == "Asia/Tokyo"


def test_no_jobs():
    assert unpack_jobs(pack_jobs([])) == ()
