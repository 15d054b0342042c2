"""What the controller decides: one small frozen object per command to an executor.

Every action carries a ``reason`` for the decision log ("why does my job run there?").
Executors (the twin's simulated one, Slurm, ...) implement one method per action kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbit.domain._validate import fraction

__all__ = ["Action", "Cancel", "Migrate", "Reroute", "Start", "Suspend", "Throttle"]


@dataclass(frozen=True, slots=True)
class Start:
    """Start (or resume) a job at a site at a duty cycle [0..1]."""

    job_id: str
    site: str
    duty_pu: float = 1.0
    reason: str = ""

    def __post_init__(self) -> None:
        fraction(f"start {self.job_id!r}", "duty_pu", self.duty_pu, low=1e-6)


@dataclass(frozen=True, slots=True)
class Suspend:
    """Stop a running job; checkpoint first when it can (training), so no work is lost."""

    job_id: str
    checkpoint: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Throttle:
    """Change a running job's duty cycle (power cap) [0..1]."""

    job_id: str
    duty_pu: float
    reason: str = ""

    def __post_init__(self) -> None:
        fraction(f"throttle {self.job_id!r}", "duty_pu", self.duty_pu, low=1e-6)


@dataclass(frozen=True, slots=True)
class Migrate:
    """Checkpoint a job at ``source``, ship the checkpoint over the APN, resume at ``destination``.

    transfer_s : the APN model's move time (checkpoint write + transfer + restore + setup) [s].
    """

    job_id: str
    source: str
    destination: str
    transfer_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Reroute:
    """Serve an online-inference job from another site (no state to move)."""

    job_id: str
    site: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a job (tenant request); its remaining work is dropped."""

    job_id: str
    reason: str = ""


Action = Start | Suspend | Throttle | Migrate | Reroute | Cancel
