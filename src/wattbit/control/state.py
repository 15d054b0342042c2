"""The controller's view of the fleet: what each job is doing now.

The controller never trusts its own memory: executors report observed state, and the
controller reconciles desired against observed (see :mod:`wattbit.control.executor`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from wattbit.domain import Job

__all__ = ["ACTIVE_STATUSES", "RUNNING_STATUSES", "FleetState", "JobState", "JobStatus"]


class JobStatus(str, enum.Enum):
    PENDING = "pending"        # released or not, never started
    RUNNING = "running"
    SUSPENDED = "suspended"    # checkpointed, waiting
    MIGRATING = "migrating"    # checkpoint in flight on the APN
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUSPENDED, JobStatus.MIGRATING})
"""Statuses of a job that is not over (a set, for membership tests in per-job loops)."""

RUNNING_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.MIGRATING})
"""Statuses of a job that holds GPUs (a move counts: the job is still the site's to run)."""

_KEEP: Any = object()  # "leave this field as it is" (None is a value some fields take)


@dataclass(frozen=True, slots=True, init=False)
class JobState:
    """One job as observed now.

    site : where it runs, or where its checkpoint is (None before its first start);
    duty_pu : duty cycle while running [0..1];  done_gpu_h : work finished so far [GPU-h];
    busy_until : for a migration, when the checkpoint lands (UTC).
    """

    job: Job
    status: JobStatus = JobStatus.PENDING
    site: str | None = None
    duty_pu: float = 0.0
    done_gpu_h: float = 0.0
    busy_until: pd.Timestamp | None = None

    def __init__(self, job: Job, status: JobStatus = JobStatus.PENDING, site: str | None = None,
                 duty_pu: float = 0.0, done_gpu_h: float = 0.0, busy_until: pd.Timestamp | None = None) -> None:
        # the fields set through their slots' own setters (_SET): a frozen dataclass's own
        # __init__ goes through object.__setattr__ per field, which takes twice as long, and a
        # twin builds a state per running job per slot
        _SET[0](self, job)
        _SET[1](self, status)
        _SET[2](self, site)
        _SET[3](self, duty_pu)
        _SET[4](self, done_gpu_h)
        _SET[5](self, busy_until)

    @property
    def remaining_gpu_h(self) -> float:
        return max(0.0, self.job.work_gpu_h - self.done_gpu_h)

    def with_(self, *, status: JobStatus | None = None, site: str | None = _KEEP,
              duty_pu: float | None = None, done_gpu_h: float | None = None,
              busy_until: pd.Timestamp | None = _KEEP) -> JobState:
        """A copy with the given fields changed (built directly: this runs for every command)."""
        return JobState(self.job, self.status if status is None else status,
                        self.site if site is _KEEP else site,
                        self.duty_pu if duty_pu is None else duty_pu,
                        self.done_gpu_h if done_gpu_h is None else done_gpu_h,
                        self.busy_until if busy_until is _KEEP else busy_until)


_SET = tuple(JobState.__dict__[f.name].__set__ for f in fields(JobState))
"""JobState's slot setters, in field order."""


@dataclass(frozen=True, slots=True)
class FleetState:
    """Everything the controller knows at ``now``."""

    now: pd.Timestamp
    jobs: dict[str, JobState] = field(default_factory=dict)
    sites_out: frozenset[str] = frozenset()

    def active(self) -> list[JobState]:
        return [s for s in self.jobs.values() if s.status.active]
