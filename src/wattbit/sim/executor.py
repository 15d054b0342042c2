"""The twin's executor: carries out the controller's actions on simulated jobs.

It implements the same :class:`wattbit.control.executor.Executor` interface as the Slurm
executor, and like it re-checks data residency before any start or move.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from wattbit.control.executor import Observed, restart_delay_s
from wattbit.control.state import FleetState, JobState, JobStatus
from wattbit.domain import Action, Cancel, Fleet, Job, Migrate, Reroute, Start, Suspend, Throttle
from wattbit.errors import ExecutorError, ResidencyViolation
from wattbit.power import START_LEAD_S, THROTTLE_LEAD_S, checkpoint_s  # the job-side physics

__all__ = ["SimulatedExecutor"]


@dataclass
class SimulatedExecutor:
    """Holds the simulated truth of every job. ``lost_s[job_id]`` is the part of the current slot
    a job spends on checkpoints, restores or transfers instead of work [s]; ``moved_gb`` the
    checkpoint data it shipped; ``lead_s`` the lead time of the last action per job [s]."""

    fleet: Fleet
    states: dict[str, JobState] = field(default_factory=dict)
    lost_s: dict[str, float] = field(default_factory=dict)
    lead_s: dict[str, float] = field(default_factory=dict)
    moved_gb: float = 0.0
    moves: int = 0
    suspends: int = 0
    lost_gpu_h: float = 0.0
    log: list = field(default_factory=list)

    def submit(self, job: Job) -> None:
        self.states[job.job_id] = JobState(job)

    def _check_residency(self, job: Job, site: str) -> None:
        area = self.fleet.site(site).area
        if area not in job.allowed_areas:
            raise ResidencyViolation(
                f"job {job.job_id!r} may not run at {site!r}: its area {area!r} is outside "
                f"allowed_areas {sorted(job.allowed_areas)}"
            )

    def _lose(self, st: JobState, seconds: float) -> None:
        self.lost_s[st.job.job_id] = self.lost_s.get(st.job.job_id, 0.0) + seconds
        self.lost_gpu_h += st.job.gpus * seconds / 3600.0

    def apply(self, action: Action, job: Job) -> None:
        st = self.states.get(job.job_id)
        if st is None:
            raise ExecutorError(f"job {job.job_id!r} is unknown to the simulated executor; submit it first")
        self.log.append(action)
        if isinstance(action, Start):
            self._check_residency(job, action.site)
            delay_s = restart_delay_s(action, st)  # a resumed job reads its checkpoint back
            if delay_s:
                self._lose(st, delay_s)
            self.lead_s[job.job_id] = START_LEAD_S + delay_s
            self.states[job.job_id] = st.with_(status=JobStatus.RUNNING, site=action.site,
                                               duty_pu=action.duty_pu)
        elif isinstance(action, Suspend):
            if action.checkpoint and job.kind.preemptible:
                self._lose(st, checkpoint_s(job))
                self.suspends += 1
                self.lead_s[job.job_id] = checkpoint_s(job)
                self.states[job.job_id] = st.with_(status=JobStatus.SUSPENDED, duty_pu=0.0)
            else:
                self.lead_s[job.job_id] = THROTTLE_LEAD_S
                self.states[job.job_id] = st.with_(status=JobStatus.PENDING, duty_pu=0.0)
        elif isinstance(action, Throttle):
            self.lead_s[job.job_id] = THROTTLE_LEAD_S
            self.states[job.job_id] = st.with_(duty_pu=action.duty_pu)
        elif isinstance(action, Migrate):
            self._check_residency(job, action.destination)
            if st.site != action.source:
                raise ExecutorError(
                    f"job {job.job_id!r}: move from {action.source!r} but it is at {st.site!r}")
            self._lose(st, restart_delay_s(action, st))
            self.moved_gb += job.checkpoint_gb
            self.moves += 1
            self.lead_s[job.job_id] = action.transfer_s
            self.states[job.job_id] = st.with_(status=JobStatus.RUNNING, site=action.destination,
                                               duty_pu=1.0)
        elif isinstance(action, Reroute):
            self._check_residency(job, action.site)
            self.lead_s[job.job_id] = THROTTLE_LEAD_S
            self.states[job.job_id] = st.with_(site=action.site)
        elif isinstance(action, Cancel):
            self.states[job.job_id] = st.with_(status=JobStatus.CANCELLED, duty_pu=0.0)
        else:
            raise ExecutorError(f"unknown action {action!r}")

    def observe(self) -> dict[str, Observed]:
        return {j: Observed(j, s.status, s.site, s.duty_pu, None) for j, s in self.states.items()}

    def fleet_state(self, now: pd.Timestamp, sites_out: frozenset[str] = frozenset(),
                    job_ids=None) -> FleetState:
        """The state the controller sees: every released job, as observed; or only ``job_ids``,
        when the caller keeps the jobs released and still alive (finished ones are no news, and
        the release test is then skipped: it runs over every live job in every slot)."""
        states = self.states
        if job_ids is not None:
            return FleetState(now, {j: states[j] for j in job_ids}, sites_out)
        now_ns = now.value
        return FleetState(now, {j: s for j, s in states.items() if s.job.release_ns <= now_ns}, sites_out)
