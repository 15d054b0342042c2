"""AI jobs as the controller sees them."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from wattbit.domain._validate import area_name, aware, integer, positive
from wattbit.domain.area import AREA_NAMES
from wattbit.errors import InvalidInput
from wattbit.units import jst_text

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""What a job id may be: it becomes a file name and part of a Slurm job's name and environment,
so no '/', ',', '|' or spaces (the service's own ids, "j" and 12 hex digits, fit)."""

__all__ = ["Job", "JobKind", "pack_jobs", "unpack_jobs"]

_AREA_NAME_SET = frozenset(AREA_NAMES)  # already-canonical area sets skip the per-name lookup


class JobKind(str, enum.Enum):
    """What a job is, which fixes the levers that apply to it.

    ========================  ==========  ===========  =========  =======  ===========
    kind                      checkpoint  preemptible  deferable  movable  throttleable
    ========================  ==========  ===========  =========  =======  ===========
    training                  yes         yes          yes        yes      yes
    fine_tuning               yes         yes          yes        yes      yes
    batch_inference           no          yes          yes        yes      yes
    online_inference          no          no           no         reroute  no
    ========================  ==========  ===========  =========  =======  ===========

    Batch inference has no model state to save, and its progress lives in the outputs it has
    already written (one shard at a time), so stopping it loses at most the shard in flight and
    it can restart elsewhere with nothing to ship (docs/assumptions.md, "Batch inference").
    """

    TRAINING = "training"
    FINE_TUNING = "fine_tuning"
    BATCH_INFERENCE = "batch_inference"
    ONLINE_INFERENCE = "online_inference"

    def __init__(self, value: str) -> None:
        # The levers are set once per member as plain attributes, not computed per call:
        # dispatch and the twin ask them for every live job in every slot.
        self.checkpointable: bool = value in ("training", "fine_tuning")
        """Has model state to save and restore."""
        self.preemptible: bool = value != "online_inference"
        """Can be stopped and resumed later (or elsewhere) without losing its progress."""
        self.deferrable: bool = value != "online_inference"
        self.throttleable: bool = value != "online_inference"


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work submitted to the virtual data center.

    job_id : unique key;  tenant : owner;  kind : :class:`JobKind`;
    gpus : accelerators it uses when running [-];
    runtime_h : run time on ``gpus`` GPUs at full speed [h] (work = gpus × runtime_h GPU-h);
    release : earliest start (UTC);  deadline : latest finish (UTC) or None;
    home_site : where it would run without Workload Shift;
    allowed_areas : areas its data may be in (data residency); never empty;
    priority : 0 (best effort) .. 9 (critical);
    checkpoint_gb : size of its checkpoint (model + optimiser state) [GB]; 0 if none;
    user_area : for online inference, the area its users are in;
    rtt_budget_s : for online inference, the round-trip budget from users to the serving site [s].

    Online inference runs over its whole window [release, deadline): it cannot wait, only move
    (reroute) between sites whose RTT to ``user_area`` fits the budget.

    Derived at construction (not arguments): ``release_ns`` and ``deadline_ns`` (None without a
    deadline), the instants as integer nanoseconds since the epoch, UTC, for the arithmetic
    that runs over every live job in every slot; and ``work_gpu_h``, its work at full speed,
    gpus × runtime_h [GPU-h].
    """

    job_id: str
    tenant: str
    kind: JobKind
    gpus: int
    runtime_h: float
    release: pd.Timestamp
    deadline: pd.Timestamp | None
    home_site: str
    allowed_areas: frozenset[str]
    priority: int = 0
    checkpoint_gb: float = 0.0
    user_area: str | None = None
    rtt_budget_s: float | None = None
    release_ns: int = field(init=False, repr=False, compare=False)
    deadline_ns: int | None = field(init=False, repr=False, compare=False)
    work_gpu_h: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = f"job {self.job_id!r}"
        if not isinstance(self.job_id, str) or not _JOB_ID.fullmatch(self.job_id):
            raise InvalidInput(
                f"job: job_id = {self.job_id!r}; expected 1 to 64 letters, digits and '._:-', starting "
                "with a letter or digit (it names files and Slurm jobs)")
        if not self.tenant:
            raise InvalidInput(f"{owner}: tenant is empty; name the tenant that owns it")
        try:
            if not isinstance(self.kind, JobKind):
                object.__setattr__(self, "kind", JobKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in JobKind)
            raise InvalidInput(f"{owner}: kind = {self.kind!r}; expected one of {kinds}") from None
        gpus = integer(owner, "gpus", self.gpus, low=1)
        if gpus is not self.gpus:  # (a NumPy integer, kept as a Python int)
            object.__setattr__(self, "gpus", gpus)
        positive(owner, "runtime_h", self.runtime_h)
        aware(owner, "release", self.release)
        aware(owner, "deadline", self.deadline)
        if self.deadline is not None and self.deadline <= self.release:
            raise InvalidInput(
                f"{owner}: deadline {jst_text(self.deadline)} is not after release {jst_text(self.release)}; "
                "move the deadline later or drop it"
            )
        if self.deadline is not None and self.kind is not JobKind.ONLINE_INFERENCE:
            window_h = (self.deadline - self.release).total_seconds() / 3600
            if window_h + 1e-9 < self.runtime_h:
                raise InvalidInput(
                    f"{owner}: runtime_h = {self.runtime_h} does not fit in its window of "
                    f"{window_h:.2f} h from release to deadline; extend the deadline"
                )
        if not self.allowed_areas:
            raise InvalidInput(
                f"{owner}: allowed_areas is empty, so the job may run nowhere; "
                "list at least one area (e.g. ['tokyo'])"
            )
        if not (isinstance(self.allowed_areas, frozenset) and self.allowed_areas <= _AREA_NAME_SET):
            if isinstance(self.allowed_areas, str):
                raise InvalidInput(
                    f"{owner}: allowed_areas = {self.allowed_areas!r} is a single string; "
                    f"give a list of areas, e.g. [{self.allowed_areas!r}]"
                )
            object.__setattr__(
                self, "allowed_areas",
                frozenset(area_name(owner, "allowed_areas", a) for a in self.allowed_areas),
            )
        priority = integer(owner, "priority", self.priority, low=0, high=9)
        if priority is not self.priority:
            object.__setattr__(self, "priority", priority)
        positive(owner, "checkpoint_gb", self.checkpoint_gb, allow_zero=True)
        if self.kind is JobKind.ONLINE_INFERENCE:
            if self.user_area is None or self.rtt_budget_s is None or self.deadline is None:
                raise InvalidInput(
                    f"{owner}: online inference needs user_area, rtt_budget_s and deadline "
                    "(the end of its serving window)"
                )
            object.__setattr__(self, "user_area", area_name(owner, "user_area", self.user_area))
            positive(owner, "rtt_budget_s", self.rtt_budget_s)
        object.__setattr__(self, "release_ns", int(self.release.value))
        object.__setattr__(self, "deadline_ns", None if self.deadline is None else int(self.deadline.value))
        object.__setattr__(self, "work_gpu_h", self.gpus * self.runtime_h)

    @property
    def slack_h(self) -> float | None:
        """Hours the job may be delayed and still meet its deadline [h]."""
        if self.deadline is None:
            return None
        return (self.deadline - self.release).total_seconds() / 3600 - self.runtime_h


_PLAIN_FIELDS = tuple(f.name for f in fields(Job)
                      if f.name not in ("kind", "release", "deadline", "release_ns", "deadline_ns"))
"""The fields :func:`pack_jobs` keeps as plain lists: all but the kind and the two instants."""


def pack_jobs(jobs: Sequence[Job]) -> dict:
    """Many jobs as columns, to send to another process; :func:`unpack_jobs` rebuilds them.

    Pickled one by one, a job costs about 20 µs to write and as much to read: its state goes
    field by field, and its two timestamps one at a time. As columns, the instants are integer
    arrays (with each one's time zone and unit, by code) and the other fields plain lists.
    """
    n = len(jobs)
    forms: dict[tuple, int] = {}  # (time zone, unit) -> code

    def form(t: pd.Timestamp) -> int:
        return forms.setdefault((t.tz, t.unit), len(forms))

    return {
        **{name: [getattr(j, name) for j in jobs] for name in _PLAIN_FIELDS},
        "kind": [j.kind.value for j in jobs],
        "release_ns": np.fromiter((j.release_ns for j in jobs), np.int64, n),
        "release_form": np.fromiter((form(j.release) for j in jobs), np.int32, n),
        "deadline_ns": np.fromiter((j.deadline_ns if j.deadline is not None else 0 for j in jobs), np.int64, n),
        "deadline_form": np.fromiter((form(j.deadline) if j.deadline is not None else -1 for j in jobs),
                                     np.int32, n),
        "forms": list(forms),
    }


def _stamps(ns: np.ndarray, codes: np.ndarray, forms: Sequence[tuple]) -> list:
    """The timestamps of integer nanoseconds since the epoch, each in its (time zone, unit)
    form by code (None where the code is -1)."""
    out: list = [None] * len(ns)
    for code, (tz, unit) in enumerate(forms):
        at = np.flatnonzero(codes == code)
        if len(at):
            stamps = pd.DatetimeIndex(ns[at].view("datetime64[ns]")).tz_localize("UTC")
            stamps = (stamps.tz_convert(tz) if tz is not None else stamps.tz_localize(None)).as_unit(unit)
            for i, t in zip(at.tolist(), stamps):
                out[i] = t
    return out


def unpack_jobs(columns: dict) -> tuple[Job, ...]:
    """The jobs :func:`pack_jobs` packed, field for field. They are built without their checks:
    they were valid when they were packed."""
    kinds = {k.value: k for k in JobKind}
    kind = [kinds[v] for v in columns["kind"]]
    release = _stamps(columns["release_ns"], columns["release_form"], columns["forms"])
    deadline = _stamps(columns["deadline_ns"], columns["deadline_form"], columns["forms"])
    release_ns, deadline_ns = columns["release_ns"].tolist(), columns["deadline_ns"].tolist()
    plain = [columns[name] for name in _PLAIN_FIELDS]
    # each field set through its slot's own setter: object.__setattr__ takes half as long again
    slot = {f.name: Job.__dict__[f.name].__set__ for f in fields(Job)}
    plain_slots = [slot[name] for name in _PLAIN_FIELDS]
    set_kind, set_release, set_deadline = slot["kind"], slot["release"], slot["deadline"]
    set_release_ns, set_deadline_ns = slot["release_ns"], slot["deadline_ns"]
    new = object.__new__
    jobs = []
    for i, values in enumerate(zip(*plain)):
        job = new(Job)
        for put, value in zip(plain_slots, values):
            put(job, value)
        set_kind(job, kind[i])
        set_release(job, release[i])
        set_deadline(job, deadline[i])
        set_release_ns(job, release_ns[i])
        set_deadline_ns(job, None if deadline[i] is None else deadline_ns[i])
        jobs.append(job)
    return tuple(jobs)
