"""The API's request and response bodies (pydantic lives here and nowhere else).

Naming follows one rule: ``XCreate`` is what a client sends, ``XPublic`` what it gets back.
Every number is bounded and every string constrained, so hostile input is refused with a 422
that names the field, before it reaches the controller or the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from wattbit.domain import AREA_NAMES, JobKind
from wattbit.service.auth import Role

__all__ = [
    "ActionPublic",
    "AreaName",
    "AuditEntry",
    "CurtailmentCreate",
    "CurtailmentSlot",
    "DecisionPublic",
    "DemandResponseCreate",
    "DemandResponsePublic",
    "FleetStatus",
    "FlexibilitySlot",
    "JobCreate",
    "JobEvent",
    "JobList",
    "JobPublic",
    "Problem",
    "SignalPublic",
    "SiteServiceUpdate",
    "SiteStatus",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
]

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

AreaName = Literal[AREA_NAMES]  # type: ignore[valid-type]
"""A grid area by its lowercase English name."""

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
"""Tenant, person or site names: lowercase letters, digits, '.', '_', '-' (max 64)."""

Text = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
"""Free text on one line, without control characters (max 200)."""

RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]

Instant = Annotated[AwareDatetime, Field(description="timezone-aware ISO 8601 instant, 2000..2100")]


def _bounded(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is not None and not (EARLIEST <= value < LATEST):
        raise ValueError(f"{name} = {value.isoformat()} is outside 2000-01-01 .. 2100-01-01")
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=False)


def _inputs(example: dict) -> ConfigDict:
    """Settings of a request body, with an example for the OpenAPI documentation."""
    return ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [example]})


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- jobs -------------------------------------------------------------------------------------
class JobCreate(_In):
    """A job for the virtual data center. Work = ``gpus`` × ``runtime_h`` GPU-hours."""

    model_config = _inputs({
        "name": "llm-70b-finetune", "kind": "training", "gpus": 64, "runtime_h": 12.0,
        "release": "2026-05-02T00:00:00Z", "deadline": "2026-05-03T00:00:00Z",
        "allowed_areas": ["tokyo", "kansai", "kyushu"],
        "checkpoint_gb": 1120.0})

    name: Text = Field("", description="a label of your own")
    kind: JobKind
    gpus: int = Field(ge=1, le=100_000, description="GPUs it uses when running [-]")
    runtime_h: float = Field(gt=0, le=100_000, description="run time on `gpus` GPUs at full speed [h]")
    release: Instant | None = Field(None, description="earliest start (default: now)")
    deadline: Instant | None = Field(None, description="latest finish (none: best effort)")
    allowed_areas: list[AreaName] = Field(min_length=1, max_length=10,
                                          description="areas its data may be in (data residency)")
    home_site: Name | None = Field(None, description="where it would run without Workload Shift "
                                   "(default: the fleet's first site in an allowed area)")
    priority: int = Field(0, ge=0, le=9)
    checkpoint_gb: float = Field(0.0, ge=0, le=1_000_000, description="checkpoint size [GB]")
    user_area: AreaName | None = Field(None, description="online inference: where its users are")
    rtt_budget_s: float | None = Field(None, gt=0, le=10, description="online inference: RTT budget [s]")

    @field_validator("release", "deadline")
    @classmethod
    def _in_range(cls, v, info):
        return _bounded(v, info.field_name)

    @field_validator("allowed_areas")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError("areas repeat; list each area once")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind is JobKind.ONLINE_INFERENCE:
            missing = [f for f in ("user_area", "rtt_budget_s", "deadline") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"online inference needs {', '.join(missing)}")
        if self.deadline is not None and self.release is not None and self.deadline <= self.release:
            raise ValueError("deadline is not after release")
        return self


class JobPublic(_Out):
    job_id: str
    tenant: str
    name: str
    kind: str
    gpus: int
    runtime_h: float
    work_gpu_h: float = Field(description="gpus × runtime_h [GPU-h]")
    release: dt.datetime
    deadline: dt.datetime | None
    home_site: str
    allowed_areas: list[str]
    priority: int
    checkpoint_gb: float
    user_area: str | None
    rtt_budget_s: float | None
    submitted_at: dt.datetime
    desired: Literal["run", "cancel"]
    status: str = Field(description="pending, running, suspended, migrating, done, cancelled, failed")
    site: str | None = Field(description="where it runs (or where its checkpoint is) now")
    area: str | None
    duty_pu: float
    done_gpu_h: float = Field(description="work credited so far [GPU-h]")
    reason: str = Field(description="why it is where it is: the controller's last word on it")
    observed_at: dt.datetime | None
    finished_at: dt.datetime | None


class JobList(BaseModel):
    jobs: list[JobPublic]
    limit: int
    offset: int


class JobEvent(BaseModel):
    """One decision about a job: when, what, where, why, and what became of it."""

    decision_id: int
    at: dt.datetime
    action: str
    site: str | None
    source: str | None
    duty_pu: float | None
    transfer_s: float | None
    reason: str
    outcome: str
    error: str | None


# --- grid signals ------------------------------------------------------------------------------
class CurtailmentSlot(_In):
    time: Instant = Field(description="slot start")
    curtailment_mw: float = Field(ge=0, le=100_000, description="curtailment headroom [MW]")

    @field_validator("time")
    @classmethod
    def _in_range(cls, v):
        return _bounded(v, "time")


class CurtailmentCreate(_In):
    """A curtailment forecast (出力制御の見通し) or notice (指令) for one area."""

    model_config = _inputs({
        "area": "kyushu", "kind": "forecast",
        "slots": [{"time": "2026-05-02T02:00:00Z", "curtailment_mw": 850.0},
                  {"time": "2026-05-02T02:30:00Z", "curtailment_mw": 920.0}]})

    area: AreaName
    kind: Literal["forecast", "notice"]
    slots: list[CurtailmentSlot] = Field(min_length=1, max_length=2000)

    @field_validator("slots")
    @classmethod
    def _unique_times(cls, v):
        if len({s.time for s in v}) != len(v):
            raise ValueError("slot times repeat; give each slot once")
        return v


class SignalPublic(_Out):
    signal_id: int
    kind: str
    area: str
    received_at: dt.datetime
    sender: str
    n_slots: int


class DemandResponseCreate(_In):
    """A demand-response request: 上げ (``up``) raises the fleet's load in the area, 下げ
    (``down``) lowers it, by ``power_mw`` over [start, end)."""

    model_config = _inputs({
        "request_id": "kyuden-20260502-001", "direction": "上げ", "area": "kyushu", "power_mw": 5.0,
        "start": "2026-05-02T02:00:00Z", "end": "2026-05-02T05:00:00Z", "response_deadline_s": 300})

    request_id: RequestId | None = Field(None, description="your id for it (default: one is made)")
    direction: Literal["up", "down", "上げ", "下げ"]
    area: AreaName
    power_mw: float = Field(gt=0, le=100_000, description="change asked for [MW]")
    start: Instant
    end: Instant
    response_deadline_s: float = Field(300.0, gt=0, le=86_400,
                                       description="time to reach the change after start [s]")

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, v, info):
        return _bounded(v, info.field_name)

    @field_validator("direction")
    @classmethod
    def _normalise(cls, v):
        return {"上げ": "up", "下げ": "down"}.get(v, v)

    @model_validator(mode="after")
    def _window(self):
        if self.end <= self.start:
            raise ValueError("end is not after start")
        return self


class DemandResponsePublic(_Out):
    request_id: str
    direction: str
    area: str
    power_mw: float
    start: dt.datetime
    end: dt.datetime
    response_deadline_s: float
    received_at: dt.datetime
    sender: str
    committed_mw: float | None = Field(description="MW the fleet commits (None: not decided)")
    status: str
    decision_id: int | None
    decided_in_s: float | None = Field(description="request received → decision [s]")
    reaction_s: float | None = Field(description="request received → last command issued [s]")


class FlexibilitySlot(BaseModel):
    time: dt.datetime
    area: str
    add_mw: float = Field(description="MW the fleet can add (上げ)")
    shed_mw: float = Field(description="MW the fleet can shed (下げ)")


# --- operations --------------------------------------------------------------------------------
class SiteStatus(BaseModel):
    name: str
    area: str
    gpu_count: int
    in_service: bool
    gpus_busy: float = Field(description="GPUs running work, weighted by duty cycle [-]")
    jobs_running: int
    facility_power_mw: float = Field(description="estimated facility power now [MW]")
    note: str = ""


class FleetStatus(BaseModel):
    fleet: str
    now: dt.datetime
    executor: str
    policy: str
    sites: list[SiteStatus]
    jobs: dict[str, int] = Field(description="jobs per status")
    pending_actions: int = Field(description="actions issued whose effect is not observed yet")
    last_decision_id: int | None
    last_decision_at: dt.datetime | None


class SiteServiceUpdate(_In):
    model_config = _inputs({"in_service": False, "note": "cooling maintenance"})

    in_service: bool
    note: Text = ""


class ActionPublic(_Out):
    seq: int
    job_id: str
    kind: str
    site: str | None
    source: str | None
    duty_pu: float | None
    transfer_s: float | None
    reason: str
    outcome: str
    error: str | None
    issued_at: dt.datetime


class DecisionPublic(_Out):
    decision_id: int
    at: dt.datetime
    trigger: str
    triggered_by: str
    status: str
    objective_terms: dict[str, float]
    dr_commitments: dict[str, float]
    observe_s: float
    decide_s: float
    apply_s: float
    n_actions: int
    actions: list[ActionPublic] = []


class AuditEntry(_Out):
    audit_id: int
    at: dt.datetime
    actor: str
    role: str
    token_id: str | None
    action: str
    target: str
    detail: dict


# --- tokens ------------------------------------------------------------------------------------
class TokenCreate(_In):
    role: Role

    model_config = _inputs({"role": "tenant", "subject": "acme"})
    subject: Name = Field(description="the tenant's name (for tenant tokens) or the holder's")


class TokenPublic(_Out):
    token_id: str
    role: str
    subject: str
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret; shown once, keep it safe")


class Problem(BaseModel):
    """An error: ``detail`` says what is wrong and how to fix it."""

    detail: str | list
