"""The interface every executor implements: the twin's simulated one, Slurm, and any other.

An executor turns the controller's actions into commands on a real or simulated scheduler and
reports back what it observes. It checks data residency again before any submit or move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from wattbit.control.state import JobState, JobStatus
from wattbit.domain import Action, Job, Migrate, Start
from wattbit.power import checkpoint_s

__all__ = ["Executor", "Observed", "restart_delay_s"]


def restart_delay_s(action: Action, st: JobState) -> float:
    """Time a job spends before it works again under ``action``, from its observed state ``st``
    [s]: a move's transfer, or the checkpoint read of a suspended job resumed with work done;
    0 otherwise. Executors charge it to the job's slot; the controller counts it too."""
    if isinstance(action, Migrate):
        return action.transfer_s
    if isinstance(action, Start) and st.status is JobStatus.SUSPENDED and st.done_gpu_h > 0:
        return checkpoint_s(st.job)
    return 0.0


@dataclass(frozen=True, slots=True)
class Observed:
    """What the scheduler says about one job: status, site, duty cycle [0..1], the
    scheduler's own id (e.g. ``"kyushu:1234"`` for a Slurm job) and, for a job in
    migration, when its checkpoint lands at ``site`` (UTC; None otherwise)."""

    job_id: str
    status: JobStatus
    site: str | None
    duty_pu: float = 0.0
    native_id: str | None = None
    busy_until: pd.Timestamp | None = None


class Executor(Protocol):
    def apply(self, action: Action, job: Job) -> None:
        """Carry out one action; raise ExecutorError or ResidencyViolation on refusal."""

    def observe(self) -> dict[str, Observed]:
        """Current state of every job the executor knows."""
