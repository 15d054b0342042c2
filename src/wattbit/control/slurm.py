"""The Slurm executor: every site of the fleet is a real Slurm cluster.

The controller's actions become Slurm commands, issued with ``SLURM_CONF`` pointing at the site's
cluster:

=============================  ==================================================================
action                         commands
=============================  ==================================================================
Start (new job)                ``sbatch --gres=gpu:N --requeue`` with the job's checkpoint dir
Start (job held / suspended)   ``scontrol release`` (a job requeued less than ~10 s ago starts
                               when Slurm's requeue guard has passed); ``scontrol resume`` for a
                               job SIGSTOPped by ``scontrol suspend``;
                               held or queued at another site: ``scancel`` there, checkpoint
                               copied, ``sbatch`` here
Suspend                        ``scontrol requeuehold``: the job gets SIGTERM, writes its
                               checkpoint (if it can) and waits in the queue, held, its GPUs
                               released (a job that cannot checkpoint restarts when resumed)
Throttle                       duty cycle written to the job's control file and its comment
Migrate                        SIGTERM (checkpoint signal) at the source; once the job has
                               stopped, its checkpoint is copied to the destination's storage
                               and, after the APN move time, ``sbatch`` at the destination
Reroute                        ``sbatch`` at the new site, then ``scancel`` at the old one
Cancel                         ``scancel``
=============================  ==================================================================

Data residency is checked again here before every submit and move (:class:`ResidencyViolation`),
whatever the controller decided.

**State comes from Slurm, not from memory.** :meth:`SlurmExecutor.observe` reads ``squeue`` on
every cluster and derives each job's status from what Slurm reports, the markers the job left in
its checkpoint directory, and a small durable ledger of the commands issued (which site a job was
sent to, moves in flight). A move survives a restart of the process: its journal is on disk, and
the next :meth:`observe` carries it on (stop → copy → submit) without ever submitting a job that
Slurm already runs. If a job is ever active on two clusters, the copy away from the site the
ledger names is cancelled: no job runs twice.

The job contract (what a payload script sees): ``WATTBIT_JOB_ID``, ``WATTBIT_CHECKPOINT_DIR``
(write the checkpoint there; restart from it when present), ``WATTBIT_DUTY_FILE`` (duty cycle
0..1 to run at), ``WATTBIT_WORK_S`` (seconds of work at full speed). On SIGTERM: write the
checkpoint and exit 0. When the work is finished: create ``$WATTBIT_CHECKPOINT_DIR/DONE``.
:data:`STAND_IN_JOB` is a payload that honours this contract and sleeps instead of computing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from wattbit.control.executor import Observed
from wattbit.control.state import JobStatus
from wattbit.domain import Action, Cancel, Fleet, Job, Migrate, Reroute, Start, Suspend, Throttle
from wattbit.domain._validate import integer
from wattbit.errors import ExecutorError, InvalidInput, ResidencyViolation, unknown_name
from wattbit.files import write_whole

__all__ = [
    "STAND_IN_JOB",
    "IssuedCommand",
    "SlurmExecutor",
    "SlurmRecord",
    "SlurmSite",
    "check_residency",
    "job_from_dict",
    "job_to_dict",
    "load_slurm_sites",
]

NAME_PREFIX = "wattbit:"
"""Every job wattbit submits is named ``wattbit:<job_id>``; others on the cluster are ignored."""

STAND_IN_JOB = r"""#!/bin/bash
# wattbit stand-in workload: honours the checkpoint contract and sleeps instead of computing.
# WATTBIT_WORK_S seconds of work at full speed; progress advances by the duty cycle each second.
set -u
ckpt="$WATTBIT_CHECKPOINT_DIR"
mkdir -p "$ckpt"
done_ms=$(cat "$ckpt/progress_ms" 2>/dev/null || echo 0)
work_ms=$(( ${WATTBIT_WORK_S%.*} * 1000 ))
save() { echo "$done_ms" > "$ckpt/progress_ms.tmp" && mv "$ckpt/progress_ms.tmp" "$ckpt/progress_ms"; }
trap 'save; echo "checkpoint at ${done_ms} ms"; exit 0' TERM USR1
echo "start ${SLURM_JOB_ID:-?} on ${SLURMD_NODENAME:-?} gpus=${CUDA_VISIBLE_DEVICES:-} from ${done_ms} ms"
while [ "$done_ms" -lt "$work_ms" ]; do
  sleep 1 & wait $!
  duty=$(cat "$WATTBIT_DUTY_FILE" 2>/dev/null || echo 1)
  done_ms=$(( done_ms + $(awk -v d="$duty" 'BEGIN { printf "%d", d * 1000 }') ))
  save
done
touch "$ckpt/DONE"
echo "done"
"""

_ACTIVE = {"PENDING", "RUNNING", "SUSPENDED", "CONFIGURING", "COMPLETING", "REQUEUED",
           "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
           "RESV_DEL_HOLD", "SPECIAL_EXIT"}
_RECORDS_FRESH_S = 2.0
"""How long a read of squeue is trusted for jobs no command has touched since [s]."""
READ_TIMEOUT_S = 5.0
"""A cluster that takes longer to answer ``squeue`` is taken as unreachable for this turn [s]."""
RETIRE_AFTER_S = 3600.0
"""A finished job's ledger is archived this long after it was first observed finished [s]."""
_RESIGNAL_S = 2.0
"""A job asked to checkpoint for a move that still runs after this long is asked again [s]."""
_HELD_REASONS = ("held", "JobHeldUser", "JobHeldAdmin")
_FINISHED_STATUS = {
    "COMPLETED": JobStatus.DONE,
    "CANCELLED": JobStatus.CANCELLED,
    "FAILED": JobStatus.FAILED,
    "TIMEOUT": JobStatus.FAILED,
    "NODE_FAIL": JobStatus.FAILED,
    "OUT_OF_MEMORY": JobStatus.FAILED,
    "BOOT_FAIL": JobStatus.FAILED,
    "DEADLINE": JobStatus.FAILED,
    "PREEMPTED": JobStatus.FAILED,
    "REVOKED": JobStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class SlurmSite:
    """How to reach one site's Slurm cluster.

    site : the fleet's site name (``"kyushu-dc"``);  slurm_conf : the cluster's slurm.conf, used as
    ``SLURM_CONF`` for the client commands;  storage_dir : checkpoint storage of the site, mounted
    on its nodes and on this host;  partition : Slurm partition (None: the default);
    cpus_per_gpu : CPUs asked per GPU [-].
    """

    site: str
    slurm_conf: Path
    storage_dir: Path
    partition: str | None = None
    cpus_per_gpu: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "slurm_conf", Path(self.slurm_conf))
        object.__setattr__(self, "storage_dir", Path(self.storage_dir))
        object.__setattr__(self, "cpus_per_gpu", integer(f"slurm site {self.site!r}", "cpus_per_gpu",
                                                         self.cpus_per_gpu, low=1))

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}


@dataclass(frozen=True, slots=True)
class SlurmRecord:
    """One line of ``squeue``: a native job on one cluster."""

    site: str
    native_id: str
    job_id: str
    state: str
    reason: str
    comment: dict[str, str]

    @property
    def active(self) -> bool:
        return self.state in _ACTIVE

    @property
    def held(self) -> bool:
        return self.state == "PENDING" and any(h in self.reason for h in _HELD_REASONS) or \
            self.state == "REQUEUE_HOLD"

    @property
    def stopped_by_us(self) -> bool:
        return "stop" in self.comment


@dataclass(frozen=True, slots=True)
class IssuedCommand:
    """One scheduler command: when (``time.time()`` [s]), where, and the argv."""

    at_s: float
    site: str
    argv: tuple[str, ...]


def check_residency(job: Job, site: str, fleet: Fleet, verb: str) -> None:
    """Raise :class:`ResidencyViolation` unless ``site`` is in one of ``job``'s allowed areas."""
    area = fleet.site(site).area
    if area not in job.allowed_areas:
        raise ResidencyViolation(
            f"job {job.job_id!r} of tenant {job.tenant!r}: may run only in areas "
            f"{sorted(job.allowed_areas)}; site {site!r} is in {area!r}; refusing to {verb}"
        )


def job_to_dict(job: Job) -> dict:
    """A JSON-ready dict of a job (timestamps as ISO 8601 UTC)."""
    return {
        "job_id": job.job_id, "tenant": job.tenant, "kind": job.kind.value, "gpus": job.gpus,
        "runtime_h": job.runtime_h, "release": job.release.isoformat(),
        "deadline": None if job.deadline is None else job.deadline.isoformat(),
        "home_site": job.home_site, "allowed_areas": sorted(job.allowed_areas),
        "priority": job.priority, "checkpoint_gb": job.checkpoint_gb,
        "user_area": job.user_area, "rtt_budget_s": job.rtt_budget_s,
    }


def job_from_dict(d: Mapping) -> Job:
    """Inverse of :func:`job_to_dict`."""
    return Job(
        job_id=d["job_id"], tenant=d["tenant"], kind=d["kind"], gpus=int(d["gpus"]),
        runtime_h=float(d["runtime_h"]), release=pd.Timestamp(d["release"]),
        deadline=None if d.get("deadline") is None else pd.Timestamp(d["deadline"]),
        home_site=d["home_site"], allowed_areas=frozenset(d["allowed_areas"]),
        priority=int(d.get("priority", 0)), checkpoint_gb=float(d.get("checkpoint_gb", 0.0)),
        user_area=d.get("user_area"), rtt_budget_s=d.get("rtt_budget_s"),
    )


def _native_order(native_id: str) -> tuple[int, int, str]:
    """The order Slurm gave a native job id in: its leading number, an array task's index (``_4``
    before ``_10``; -1 for none), then the text (a heterogeneous component's ``+0``).

    >>> sorted(["12+1", "9", "12_10", "12_3", "12+0", "x"], key=_native_order)
    ['x', '9', '12+0', '12+1', '12_3', '12_10']
    """
    m = re.match(r"(\d*)(?:_(\d+))?", native_id)
    return (int(m.group(1)) if m.group(1) else -1, int(m.group(2)) if m.group(2) else -1, native_id)


def _parse_comment(text: str) -> dict[str, str]:
    """``wattbit:duty=0.50;stop=move`` → ``{'duty': '0.50', 'stop': 'move'}``.

    >>> _parse_comment("wattbit:duty=0.50;stop=move")
    {'duty': '0.50', 'stop': 'move'}
    >>> _parse_comment("(null)")
    {}
    """
    if not text.startswith(NAME_PREFIX):
        return {}
    out = {}
    for part in text[len(NAME_PREFIX):].split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def _format_comment(fields: Mapping[str, str]) -> str:
    """
    >>> _format_comment({'duty': '1.00'})
    'wattbit:duty=1.00'
    """
    return NAME_PREFIX + ";".join(f"{k}={v}" for k, v in sorted(fields.items()))


def _write_json_atomic(path: Path, data: Mapping) -> None:
    write_whole(path, lambda tmp: tmp.write_text(json.dumps(data, sort_keys=True)), durable=True)


@dataclass
class SlurmExecutor:
    """Drive one Slurm cluster per site.

    fleet : the fleet (site → area, for the residency check);  sites : one :class:`SlurmSite` per
    site name;  state_dir : durable ledger and move journal (survives restarts);
    payload : the batch script to run for each job (default: :data:`STAND_IN_JOB`);
    stop_timeout_s : how long a job may take to checkpoint and stop before it is cancelled [s];
    clock : wall clock [s since the epoch] (moves are timed on it, so they survive restarts).
    """

    fleet: Fleet
    sites: Mapping[str, SlurmSite]
    state_dir: Path
    payload: str = STAND_IN_JOB
    stop_timeout_s: float = 60.0
    clock: Callable[[], float] = time.time
    commands: deque[IssuedCommand] = field(default_factory=lambda: deque(maxlen=1000), init=False)
    _last_records: dict[str, list[SlurmRecord]] | None = field(default=None, init=False, repr=False)
    _dirty: set[str] = field(default_factory=set, init=False, repr=False)
    _read_at: float = field(default=0.0, init=False, repr=False)
    _site_records: dict[str, list[SlurmRecord]] = field(default_factory=dict, init=False, repr=False)
    unreachable: frozenset[str] = field(default=frozenset(), init=False)
    """Sites whose cluster did not answer the last ``squeue``; their jobs are reported as last seen."""
    last_errors: dict[str, str] = field(default_factory=dict, init=False)
    """The last error per unreachable site, and per job whose move or clean-up must be retried."""

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        for name, s in self.sites.items():
            self.fleet.site(name)  # raises with a hint when the name is not in the fleet
            if s.site != name:
                raise InvalidInput(f"slurm sites: key {name!r} holds the config of site {s.site!r}")
        (self.state_dir / "jobs").mkdir(parents=True, exist_ok=True)
        self._script = self.state_dir / "payload.sh"
        if not self._script.exists() or self._script.read_text() != self.payload:
            self._script.write_text(self.payload)
            self._script.chmod(0o755)

    # --- the Executor interface ---------------------------------------------------------------
    def apply(self, action: Action, job: Job) -> None:
        """Carry out one action; raise ExecutorError or ResidencyViolation on refusal."""
        if action.job_id != job.job_id:
            raise InvalidInput(f"action for job {action.job_id!r} applied to job {job.job_id!r}")
        handler = self._handlers[type(action)]
        try:
            handler(self, action, job)
        finally:
            self._dirty.add(job.job_id)  # its records changed: read them again before the next use

    def observe(self) -> dict[str, Observed]:
        """What Slurm (and the checkpoint storage) say about every job this executor has sent.

        Also carries on moves in flight (stop → copy → submit when their time has come) and
        cancels any second active copy of a job, so a restarted process converges.
        """
        records = self._read_all()
        if self._advance_moves(records) | self._dedupe(records):
            records = self._read_all()
        return self._derive(records)

    def next_wakeup_s(self) -> float | None:
        """Wall-clock time [s since the epoch] when the next move in flight is due, if any."""
        due = [m["ready_at_s"] for m in (self._ledger(j).get("move") for j in self._ledger_ids()) if m]
        return min(due) if due else None

    # --- actions ------------------------------------------------------------------------------
    @staticmethod
    def _refuse_if_cancelled(job: Job, ledger: dict, verb: str) -> None:
        """A cancel is final: a job started again after it would be reported cancelled once it
        ended (the ledger keeps the cancel), and its tenant asked for it to end."""
        if ledger.get("cancelled"):
            raise ExecutorError(
                f"job {job.job_id!r}: was cancelled, and a cancelled job is not {verb} again; "
                "hand the work in as a new job (a new job_id)")

    def _refuse_if_its_site_is_silent(self, job: Job, ledger: dict, verb: str) -> None:
        """A job whose last site does not answer may still run there (after a restart this process
        has not even seen it): starting it elsewhere could run it twice."""
        site = ledger.get("site")
        if site in self.unreachable:
            raise ExecutorError(
                f"job {job.job_id!r}: its site {site!r} does not answer, and it may still run there; "
                f"it is not {verb} elsewhere until {site!r} answers")

    def _start(self, a: Start, job: Job) -> None:
        self._site(a.site)
        check_residency(job, a.site, self.fleet, "submit")
        ledger = self._ledger(job.job_id)
        self._refuse_if_cancelled(job, ledger, "started")
        self._refuse_if_its_site_is_silent(job, ledger, "started")
        if ledger.get("move"):
            raise ExecutorError(
                f"job {job.job_id!r}: is migrating to {ledger['move']['destination']!r}; "
                "start it once the move has landed"
            )
        active = [r for r in self._records_of(job.job_id) if r.active]
        here = [r for r in active if r.site == a.site]
        elsewhere = [r for r in active if r.site != a.site]
        running = [r for r in elsewhere if not (r.held or r.state == "PENDING")]
        if running:
            raise ExecutorError(
                f"job {job.job_id!r}: is active at {running[0].site!r} ({running[0].state}); "
                f"use Migrate or Reroute to move it to {a.site!r}"
            )
        if elsewhere:  # queued or held at another site: start here instead, with its checkpoint
            for r in elsewhere:
                self._mark_stop(r, "restart-elsewhere")
                self._run(r.site, ["scancel", r.native_id])
            ledger["site"] = elsewhere[0].site
        self._set_duty(job, a.site, a.duty_pu, here[0] if here else None)
        if here:
            r = here[0]
            if r.state == "SUSPENDED":
                self._run(a.site, ["scontrol", "resume", r.native_id])
            elif r.held:
                self._set_comment(r, {"duty": f"{a.duty_pu:.2f}"})
                # no StartTime=now here: Slurm makes a requeued job eligible only some 10 s after
                # the requeue, so that its new launch credential postdates the one it revoked.
                # Forcing an earlier start races slurmd, which then refuses the launch ("Job
                # credential revoked") and Slurm ends the job FAILED.
                self._run(a.site, ["scontrol", "release", r.native_id])
            return
        last = ledger.get("site")
        if last and last != a.site and self._has_checkpoint(last, job.job_id):
            self._copy_checkpoint(job.job_id, last, a.site)
        self._submit(job, a.site, a.duty_pu)

    def _suspend(self, a: Suspend, job: Job) -> None:
        active = [r for r in self._records_of(job.job_id) if r.active]
        if not active:
            raise ExecutorError(f"job {job.job_id!r}: not active on any cluster; nothing to suspend")
        r = active[0]
        if r.held or r.state == "SUSPENDED":
            return
        if r.state == "PENDING":  # never started here: take it out of the queue, keep nothing
            self._mark_stop(r, "hold")
            self._run(r.site, ["scontrol", "hold", r.native_id])
            return
        # back to the queue, held, GPUs released; a checkpointable job writes its checkpoint
        # on the SIGTERM that comes with the requeue, any other job starts over when resumed
        self._mark_stop(r, "ckpt" if a.checkpoint and job.kind.checkpointable else "nockpt")
        self._run(r.site, ["scontrol", "requeuehold", r.native_id])

    def _throttle(self, a: Throttle, job: Job) -> None:
        active = [r for r in self._records_of(job.job_id) if r.active]
        if not active:
            raise ExecutorError(f"job {job.job_id!r}: not active on any cluster; nothing to throttle")
        self._set_duty(job, active[0].site, a.duty_pu, active[0])

    def _migrate(self, a: Migrate, job: Job) -> None:
        self._site(a.source)
        self._site(a.destination)
        check_residency(job, a.destination, self.fleet, "move it")
        down = {a.source, a.destination} & self.unreachable
        if down:
            raise ExecutorError(f"migrate {job.job_id!r}: the cluster of {sorted(down)} does not answer; "
                                f"not moving ({self.last_errors.get(min(down), 'no answer')})")
        if a.source == a.destination:
            raise InvalidInput(f"migrate {job.job_id!r}: source and destination are both {a.source!r}")
        if a.transfer_s < 0:
            raise InvalidInput(f"migrate {job.job_id!r}: transfer_s = {a.transfer_s}; expected >= 0")
        ledger = self._ledger(job.job_id)
        self._refuse_if_cancelled(job, ledger, "moved")
        if ledger.get("move"):
            raise ExecutorError(f"job {job.job_id!r}: already migrating to {ledger['move']['destination']!r}")
        active = [r for r in self._records_of(job.job_id) if r.active]
        if active and active[0].site != a.source:
            raise ExecutorError(
                f"migrate {job.job_id!r}: the job is at {active[0].site!r}, not at the source {a.source!r}"
            )
        if not active and ledger.get("site") != a.source:
            raise ExecutorError(
                f"migrate {job.job_id!r}: the job has no state at the source {a.source!r} "
                f"(last sent to {ledger.get('site')!r})"
            )
        now = self.clock()
        # write-ahead: the journal exists before the first command, so a crash is recoverable
        ledger.update(site=a.destination, job=job_to_dict(job), move={
            "source": a.source, "destination": a.destination, "transfer_s": a.transfer_s,
            "requested_at_s": now, "ready_at_s": now + a.transfer_s, "copied": False,
            "duty_pu": self._duty_of(active[0]) if active else 1.0,
        })
        self._save_ledger(job.job_id, ledger)
        try:
            for r in active:
                self._stop_for_move(r)
        except ExecutorError:  # the source did not take the stop: no move, the job stays there
            ledger.update(site=a.source, move=None)
            self._save_ledger(job.job_id, ledger)
            for r in active:  # and its stop mark comes off, or a real failure would read as ours
                try:
                    self._set_comment(r, r.comment)
                except ExecutorError:
                    pass  # (the cluster is failing: the next observation reports what it can)
            raise
        ledger["move"]["signalled_at_s"] = self.clock()
        self._save_ledger(job.job_id, ledger)

    def _reroute(self, a: Reroute, job: Job) -> None:
        self._site(a.site)
        check_residency(job, a.site, self.fleet, "reroute it")
        active = [r for r in self._records_of(job.job_id) if r.active]
        if any(r.site == a.site for r in active):
            return
        ledger = self._ledger(job.job_id)
        self._refuse_if_cancelled(job, ledger, "rerouted")
        self._refuse_if_its_site_is_silent(job, ledger, "rerouted")
        self._submit(job, a.site, 1.0)  # make before break
        for r in active:
            self._mark_stop(r, "reroute")
            self._run(r.site, ["scancel", r.native_id])

    def _cancel(self, a: Cancel, job: Job) -> None:
        ledger = self._ledger(job.job_id)
        ledger.update(cancelled=True, move=None, job=job_to_dict(job))
        self._save_ledger(job.job_id, ledger)
        for r in self._records_of(job.job_id):
            if r.active:
                self._run(r.site, ["scancel", r.native_id])

    _handlers: ClassVar[dict] = {}

    # --- moves --------------------------------------------------------------------------------
    def _stop_for_move(self, r: SlurmRecord) -> None:
        self._mark_stop(r, "move")
        if r.state == "RUNNING":
            self._run(r.site, ["scancel", "--signal=TERM", "--full", r.native_id])
        elif r.state == "SUSPENDED":  # SIGSTOPped: let it run again so it can write its checkpoint
            self._run(r.site, ["scontrol", "resume", r.native_id])
            self._run(r.site, ["scancel", "--signal=TERM", "--full", r.native_id])
        elif r.state != "COMPLETING":
            self._run(r.site, ["scancel", r.native_id])

    def _advance_moves(self, records: Mapping[str, list[SlurmRecord]]) -> bool:
        """Carry every move in flight one step further; True when a command was issued."""
        issued = False
        now = self.clock()
        for job_id in self._ledger_ids():
            ledger = self._ledger(job_id)
            move = ledger.get("move")
            if not move or ledger.get("cancelled"):
                continue
            if {move["source"], move["destination"]} & self.unreachable:
                continue  # wait: never decide a move's next step on a cluster's stale records
            try:
                issued |= self._advance_move(job_id, ledger, move, records.get(job_id, []), now)
            except ExecutorError as exc:  # retried at the next observation; the journal holds
                self.last_errors[job_id] = str(exc)
        return issued

    def _advance_move(self, job_id: str, ledger: dict, move: dict, mine: list[SlurmRecord],
                      now: float) -> bool:
        """One step of one move: stop at the source → copy the checkpoint → submit at the
        destination once the move time has passed. True when a command was issued."""
        at_source = [r for r in mine if r.active and r.site == move["source"]]
        at_dest = [r for r in mine if r.active and r.site == move["destination"]]
        if at_dest:  # landed (perhaps submitted just before a crash): finish the journal
            ledger["move"] = None
            self._save_ledger(job_id, ledger)
            return False
        if at_source:
            issued = False
            for r in at_source:
                if now - move["requested_at_s"] > self.stop_timeout_s:
                    self._run(r.site, ["scancel", r.native_id])  # gave up on its checkpoint
                    issued = True
                elif not r.stopped_by_us or now - move.get("signalled_at_s", 0.0) >= _RESIGNAL_S:
                    # a crash before the stop command, or a signal the job did not get (sent
                    # before its batch script was up): ask again
                    self._stop_for_move(r)
                    move["signalled_at_s"] = now
                    self._save_ledger(job_id, ledger)
                    issued = True
            return issued
        if not move["copied"]:
            if self._has_checkpoint(move["source"], job_id):
                self._copy_checkpoint(job_id, move["source"], move["destination"])
            move["copied"] = True
            self._save_ledger(job_id, ledger)
        if now < move["ready_at_s"]:
            return False
        job = job_from_dict(ledger["job"])
        self._submit(job, move["destination"], float(move.get("duty_pu", 1.0)), ledger=ledger)
        ledger["move"] = None
        self._save_ledger(job_id, ledger)
        return True

    def _dedupe(self, records: Mapping[str, list[SlurmRecord]]) -> bool:
        """Cancel every active copy of a job except the one at the site the ledger names."""
        issued = False
        for job_id, recs in records.items():
            active = [r for r in recs if r.active]
            if len(active) < 2:
                continue
            if {r.site for r in active} & self.unreachable:
                continue  # decide only on fresh records
            want = self._ledger(job_id).get("site")
            keep = next((r for r in active if r.site == want), active[-1])
            for r in active:
                if r is not keep:
                    try:
                        self._mark_stop(r, "duplicate")
                        self._run(r.site, ["scancel", r.native_id])
                        issued = True
                    except ExecutorError as exc:
                        self.last_errors[job_id] = str(exc)
        return issued

    # --- reading state ------------------------------------------------------------------------
    def _read_all(self) -> dict[str, list[SlurmRecord]]:
        """``squeue`` on every cluster. A cluster that does not answer keeps its last records and
        is listed in :attr:`unreachable` (its jobs are neither lost nor started elsewhere)."""
        by_job: dict[str, list[SlurmRecord]] = {}
        unreachable = set()
        for site in self.sites:
            try:
                out = self._run(site, ["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%r|%k"], log=False,
                                timeout_s=READ_TIMEOUT_S)
            except ExecutorError as exc:
                unreachable.add(site)
                self.last_errors[site] = str(exc)
                for r in self._site_records.get(site, []):
                    by_job.setdefault(r.job_id, []).append(r)
                continue
            self.last_errors.pop(site, None)
            mine = []
            for line in out.splitlines():
                parts = line.split("|", 4)
                if len(parts) != 5 or not parts[1].startswith(NAME_PREFIX):
                    continue
                native, name, state, reason, comment = parts
                job_id = name[len(NAME_PREFIX):]
                mine.append(SlurmRecord(site, native, job_id, state.strip(), reason.strip(),
                                        _parse_comment(comment.strip())))
            self._site_records[site] = mine
            for r in mine:
                by_job.setdefault(r.job_id, []).append(r)
        self.unreachable = frozenset(unreachable)
        for recs in by_job.values():
            recs.sort(key=lambda r: _native_order(r.native_id))
        self._last_records, self._dirty, self._read_at = by_job, set(), time.monotonic()
        return by_job

    def _records_of(self, job_id: str) -> list[SlurmRecord]:
        """The job's records: from the last read unless a command has touched the job since."""
        stale = time.monotonic() - self._read_at > _RECORDS_FRESH_S
        if self._last_records is None or job_id in self._dirty or stale:
            return self._read_all().get(job_id, [])
        return self._last_records.get(job_id, [])

    def _derive(self, records: Mapping[str, list[SlurmRecord]]) -> dict[str, Observed]:
        out: dict[str, Observed] = {}
        for job_id in set(records) | set(self._ledger_ids()):
            ledger = self._ledger(job_id)
            recs = records.get(job_id, [])
            active = [r for r in recs if r.active]
            if active:
                r = active[0]
                out[job_id] = Observed(job_id, self._status_active(r), r.site, self._duty_of(r),
                                       f"{r.site}:{r.native_id}")
                continue
            if ledger.get("cancelled"):
                out[job_id] = Observed(job_id, JobStatus.CANCELLED, ledger.get("site"), 0.0)
                continue
            move = ledger.get("move")
            if move:
                lands = pd.Timestamp(move["ready_at_s"], unit="s", tz="UTC")
                out[job_id] = Observed(job_id, JobStatus.MIGRATING, move["destination"], 0.0,
                                       busy_until=lands)
                continue
            site = ledger.get("site") or (recs[-1].site if recs else None)
            last = next((r for r in reversed(recs) if r.site == site), None)
            if site and self._is_done(site, job_id):
                status = JobStatus.DONE
            elif last is not None and not last.stopped_by_us and last.state in _FINISHED_STATUS:
                status = _FINISHED_STATUS[last.state]
            elif site and self._has_checkpoint(site, job_id):
                status = JobStatus.SUSPENDED
            else:
                status, site = JobStatus.PENDING, None
            native = f"{last.site}:{last.native_id}" if last else None
            out[job_id] = Observed(job_id, status, site, 0.0, native)
            if not status.active and ledger:
                self._retire(job_id, ledger)
        return out

    @staticmethod
    def _status_active(r: SlurmRecord) -> JobStatus:
        if r.state in ("RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT"):
            return JobStatus.RUNNING
        if r.held and r.comment.get("stop") in ("hold", "nockpt"):  # held, nothing to resume from
            return JobStatus.PENDING
        if r.state == "SUSPENDED" or r.held:
            return JobStatus.SUSPENDED
        return JobStatus.PENDING

    @staticmethod
    def _duty_of(r: SlurmRecord) -> float:
        try:
            return float(r.comment.get("duty", "1"))
        except ValueError:
            return 1.0

    def _retire(self, job_id: str, ledger: dict) -> None:
        """Move a finished job's ledger out of the way :data:`RETIRE_AFTER_S` after it was first
        seen finished (long enough for the caller to have recorded it), so observing stays cheap."""
        now = self.clock()
        if "finished_at_s" not in ledger:
            ledger["finished_at_s"] = now
            self._save_ledger(job_id, ledger)
        elif now - ledger["finished_at_s"] > RETIRE_AFTER_S:
            archive = self.state_dir / "jobs" / "finished"
            archive.mkdir(exist_ok=True)
            os.replace(self._ledger_path(job_id), archive / f"{job_id}.json")

    # --- storage ------------------------------------------------------------------------------
    def _ckpt_dir(self, site: str, job_id: str) -> Path:
        return self._site(site).storage_dir / job_id / "ckpt"

    def _has_checkpoint(self, site: str, job_id: str) -> bool:
        d = self._ckpt_dir(site, job_id)
        return d.is_dir() and any(p.name != "duty" for p in d.iterdir())

    def _is_done(self, site: str, job_id: str) -> bool:
        return (self._ckpt_dir(site, job_id) / "DONE").exists()

    def _copy_checkpoint(self, job_id: str, source: str, destination: str) -> None:
        """Copy a checkpoint between the sites' storages (the APN transfer)."""
        src, dst = self._ckpt_dir(source, job_id), self._ckpt_dir(destination, job_id)
        if src.resolve() == dst.resolve():
            return
        tmp = dst.with_name(dst.name + ".incoming")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(tmp, dst)
        self.commands.append(IssuedCommand(self.clock(), destination, ("copy", str(src), str(dst))))

    def _set_duty(self, job: Job, site: str, duty_pu: float, r: SlurmRecord | None) -> None:
        d = self._ckpt_dir(site, job.job_id)
        d.mkdir(parents=True, exist_ok=True)
        (d / "duty").write_text(f"{duty_pu:.4f}\n")
        if r is not None and abs(self._duty_of(r) - duty_pu) > 1e-9:
            self._set_comment(r, {**r.comment, "duty": f"{duty_pu:.2f}"})

    # --- commands -----------------------------------------------------------------------------
    def _submit(self, job: Job, site: str, duty_pu: float, ledger: dict | None = None) -> str:
        check_residency(job, site, self.fleet, "submit")
        s = self._site(site)
        if ledger is None:
            ledger = self._ledger(job.job_id)
        before = dict(ledger)
        ledger.update(site=site, job=job_to_dict(job))
        ledger.setdefault("cancelled", False)
        self._save_ledger(job.job_id, ledger)  # write-ahead: observe() keeps this copy if duplicated
        ckpt = self._ckpt_dir(site, job.job_id)
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt / "duty").write_text(f"{duty_pu:.4f}\n")
        argv = [
            "sbatch", "--parsable", f"--job-name={NAME_PREFIX}{job.job_id}",
            f"--gres=gpu:{job.gpus}", f"--cpus-per-task={job.gpus * s.cpus_per_gpu}", "--requeue",
            f"--comment={_format_comment({'duty': f'{duty_pu:.2f}'})}",
            f"--output={ckpt.parent / 'slurm-%j.out'}", "--open-mode=append",
            (f"--export=ALL,WATTBIT_JOB_ID={job.job_id},WATTBIT_CHECKPOINT_DIR={ckpt},"
             f"WATTBIT_DUTY_FILE={ckpt / 'duty'},WATTBIT_WORK_S={round(job.runtime_h * 3600)}"),
        ]
        if s.partition:
            argv.append(f"--partition={s.partition}")
        argv.append(str(self._script))
        try:
            out = self._run(site, argv)
        except ExecutorError:  # not submitted: the ledger goes back to where the job is
            ledger.clear()
            ledger.update(before)
            self._save_ledger(job.job_id, ledger)
            raise
        return out.strip().split(";")[0]

    def _mark_stop(self, r: SlurmRecord, why: str) -> None:
        self._set_comment(r, {**r.comment, "stop": why})

    def _set_comment(self, r: SlurmRecord, fields: Mapping[str, str]) -> None:
        """Replace the comment of the job behind ``r`` (where wattbit keeps its duty and stop marks)."""
        self._run(r.site, ["scontrol", "update", f"JobId={r.native_id}", f"Comment={_format_comment(fields)}"])

    def _run(self, site: str, argv: Sequence[str], log: bool = True, timeout_s: float = 30.0) -> str:
        s = self._site(site)
        if log:
            self.commands.append(IssuedCommand(self.clock(), site, tuple(argv)))
        try:
            r = subprocess.run(list(argv), env=s.env(), capture_output=True, text=True, timeout=timeout_s,
                               check=False)
        except FileNotFoundError:
            raise ExecutorError(
                f"site {site!r}: {argv[0]!r} not found; install the Slurm client (apt-get install slurm-client)"
            ) from None
        except subprocess.TimeoutExpired:
            raise ExecutorError(f"site {site!r}: {shlex.join(argv)} did not answer within {timeout_s:g} s") from None
        except OSError as exc:  # not executable, no permission, too many processes, ...
            raise ExecutorError(f"site {site!r}: {argv[0]!r} could not be run: {exc}") from None
        if r.returncode != 0:
            raise ExecutorError(
                f"site {site!r}: {shlex.join(argv)} failed (exit {r.returncode}): {r.stderr.strip()[:500]}"
            )
        return r.stdout

    def _site(self, name: str) -> SlurmSite:
        try:
            return self.sites[name]
        except KeyError:
            raise unknown_name("slurm site", name, self.sites) from None

    # --- ledger -------------------------------------------------------------------------------
    def _ledger_path(self, job_id: str) -> Path:
        return self.state_dir / "jobs" / f"{job_id}.json"

    def _ledger(self, job_id: str) -> dict:
        p = self._ledger_path(job_id)
        if not p.exists():
            return {}
        return json.loads(p.read_text())

    def _save_ledger(self, job_id: str, ledger: Mapping) -> None:
        _write_json_atomic(self._ledger_path(job_id), ledger)

    def _ledger_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.state_dir / "jobs").glob("*.json"))


SlurmExecutor._handlers = {
    Start: SlurmExecutor._start,
    Suspend: SlurmExecutor._suspend,
    Throttle: SlurmExecutor._throttle,
    Migrate: SlurmExecutor._migrate,
    Reroute: SlurmExecutor._reroute,
    Cancel: SlurmExecutor._cancel,
}


def load_slurm_sites(path: str | Path) -> dict[str, SlurmSite]:
    """One :class:`SlurmSite` per site from a TOML file::

        [sites.kyushu-dc]
        slurm_conf = "/etc/slurm-kyushu/slurm.conf"
        storage_dir = "/mnt/kyushu/wattbit"
        partition = "gpu"        # optional
        cpus_per_gpu = 4         # optional

    Relative paths are taken from the file's folder.
    """
    import tomllib

    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"slurm clusters file {str(path)!r} does not exist; see docs/service.md for its format")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from None
    sites = raw.get("sites")
    if not isinstance(sites, dict) or not sites:
        raise InvalidInput(f"{path}: no [sites.<name>] tables; give one per site with slurm_conf and storage_dir")
    out = {}
    allowed = {"slurm_conf", "storage_dir", "partition", "cpus_per_gpu"}
    for name, body in sites.items():
        if not isinstance(body, dict):
            raise InvalidInput(f"{path}: sites.{name} is not a table")
        extra = set(body) - allowed
        if extra:
            raise InvalidInput(f"{path}: sites.{name}: unknown keys {sorted(extra)}; expected {sorted(allowed)}")
        for key in ("slurm_conf", "storage_dir"):
            if key not in body:
                raise InvalidInput(f"{path}: sites.{name}: {key} is missing")
        try:
            out[name] = SlurmSite(
                site=name, slurm_conf=path.parent / body["slurm_conf"], storage_dir=path.parent / body["storage_dir"],
                partition=body.get("partition"), cpus_per_gpu=body.get("cpus_per_gpu", 1),
            )
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc}") from None
    return out
