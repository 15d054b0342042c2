"""The HTTP routes: each parses, calls one method of the control plane, and shapes the answer."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Path, Query, status

from wattbit.service.db import DecisionRow, JobRow
from wattbit.service.deps import (
    AuditReader,
    DecisionReader,
    DRReader,
    FleetReader,
    FlexibilityReader,
    GridCaller,
    JobCanceller,
    JobReader,
    PlaneDep,
    SiteManager,
    TenantCaller,
    TokenAdmin,
)
from wattbit.service.plane import ControlPlane, NotFound
from wattbit.service.schemas import (
    ActionPublic,
    AuditEntry,
    CurtailmentCreate,
    DecisionPublic,
    DemandResponseCreate,
    DemandResponsePublic,
    FleetStatus,
    FlexibilitySlot,
    JobCreate,
    JobEvent,
    JobList,
    JobPublic,
    Problem,
    SignalPublic,
    SiteServiceUpdate,
    SiteStatus,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)

__all__ = ["admin", "grid", "operators", "tenants"]

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="the job's id")]
SiteName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="a fleet site")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]

_errors = {
    401: {"model": Problem, "description": "missing, unknown or revoked token"},
    403: {"model": Problem, "description": "the token's role may not do this"},
}
_not_found = {404: {"model": Problem, "description": "no such object, or none the caller may see"}}

tenants = APIRouter(prefix="/v1/jobs", tags=["tenants"], responses=_errors)
grid = APIRouter(prefix="/v1/grid", tags=["grid"], responses=_errors)
operators = APIRouter(prefix="/v1", tags=["operators"], responses=_errors)
admin = APIRouter(prefix="/v1/tokens", tags=["admin"], responses=_errors)


def job_public(row: JobRow, plane: ControlPlane) -> JobPublic:
    area = plane.fleet.site(row.site).area if row.site in plane.fleet.site_names else None
    return JobPublic.model_validate({
        **{c: getattr(row, c) for c in JobPublic.model_fields if hasattr(row, c)},
        "work_gpu_h": row.gpus * row.runtime_h, "area": area,
    })


def decision_public(row: DecisionRow, plane: ControlPlane, with_actions: bool = True) -> DecisionPublic:
    actions = plane.store.actions_of([row.decision_id])[row.decision_id] if with_actions else []
    out = DecisionPublic.model_validate(row)
    out.actions = [ActionPublic.model_validate(a) for a in actions]
    return out


def _ts(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC")


# --- tenants ----------------------------------------------------------------------------------
@tenants.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic,
              responses={422: {"description": "a field is invalid; `detail` names it"}})
def submit_job(body: JobCreate, who: TenantCaller, plane: PlaneDep) -> JobPublic:
    """Submit a job to the virtual data center. The controller decides where and when it runs."""
    row = plane.submit(who, name=body.name, kind=body.kind.value, gpus=body.gpus, runtime_h=body.runtime_h,
                       release=_ts(body.release), deadline=_ts(body.deadline),
                       allowed_areas=body.allowed_areas, home_site=body.home_site, priority=body.priority,
                       checkpoint_gb=body.checkpoint_gb, user_area=body.user_area,
                       rtt_budget_s=body.rtt_budget_s)
    return job_public(row, plane)


@tenants.get("", response_model=JobList)
def list_jobs(who: JobReader, plane: PlaneDep, status_: Annotated[
        str | None, Query(alias="status", pattern=r"^[a-z]{1,16}$")] = None,
        limit: Limit = 100, offset: Offset = 0) -> JobList:
    """Your jobs (a tenant sees only its own; operators see all)."""
    rows = plane.jobs_for(who, status_, limit, offset)
    return JobList(jobs=[job_public(r, plane) for r in rows], limit=limit, offset=offset)


@tenants.get("/{job_id}", response_model=JobPublic, responses=_not_found)
def get_job(job_id: JobId, who: JobReader, plane: PlaneDep) -> JobPublic:
    """One job: where it runs now and why."""
    return job_public(plane.job_for(who, job_id), plane)


@tenants.delete("/{job_id}", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
                responses=_not_found)
def cancel_job(job_id: JobId, who: JobCanceller, plane: PlaneDep) -> JobPublic:
    """Cancel one of your jobs; it is stopped on its cluster at once."""
    return job_public(plane.cancel(who, job_id), plane)


@tenants.get("/{job_id}/events", response_model=list[JobEvent], responses=_not_found)
def job_events(job_id: JobId, who: JobReader, plane: PlaneDep, limit: Limit = 100) -> list[JobEvent]:
    """Every decision about the job, newest first: what, where, why, and its outcome."""
    return [JobEvent(decision_id=a.decision_id, at=d.at, action=a.kind, site=a.site, source=a.source,
                     duty_pu=a.duty_pu, transfer_s=a.transfer_s, reason=a.reason, outcome=a.outcome,
                     error=a.error)
            for a, d in plane.history(who, job_id, limit)]


# --- grid side --------------------------------------------------------------------------------
@grid.post("/curtailment", status_code=status.HTTP_201_CREATED, response_model=SignalPublic)
def post_curtailment(body: CurtailmentCreate, who: GridCaller, plane: PlaneDep) -> SignalPublic:
    """A curtailment forecast or notice for one area: headroom [MW] per slot."""
    sig = plane.post_curtailment(who, body.area, body.kind,
                                 [(_ts(s.time), s.curtailment_mw) for s in body.slots],
                                 body.model_dump(mode="json"))
    return SignalPublic(signal_id=sig.signal_id, kind=sig.kind, area=sig.area, received_at=sig.received_at,
                        sender=sig.sender, n_slots=len(body.slots))


@grid.post("/demand-response", status_code=status.HTTP_201_CREATED, response_model=DemandResponsePublic,
           responses={409: {"model": Problem, "description": "request_id already used"}})
def post_demand_response(body: DemandResponseCreate, who: GridCaller, plane: PlaneDep) -> DemandResponsePublic:
    """A 上げ/下げ demand-response request. The controller answers at once: the response carries
    the MW the fleet commits and how fast it reacted."""
    result = plane.demand_response(
        who, request_id=body.request_id, direction=body.direction, area=body.area, power_mw=body.power_mw,
        start=_ts(body.start), end=_ts(body.end), response_deadline_s=body.response_deadline_s,
        body=body.model_dump(mode="json"))
    return DemandResponsePublic.model_validate(result.row)


@grid.get("/demand-response/{request_id}", response_model=DemandResponsePublic, responses=_not_found)
def get_demand_response(request_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")],
                        who: DRReader, plane: PlaneDep) -> DemandResponsePublic:
    return DemandResponsePublic.model_validate(plane.demand_response_for(who, request_id))


@grid.get("/flexibility", response_model=list[FlexibilitySlot])
def flexibility(who: FlexibilityReader, plane: PlaneDep,
                n_slots: Annotated[int, Query(ge=1, le=336)] = 48) -> list[FlexibilitySlot]:
    """The fleet's flexibility envelope: MW it can add (上げ) or shed (下げ) per area and slot."""
    frame = plane.flexibility(n_slots).reset_index()
    return [FlexibilitySlot(time=r.time.to_pydatetime(), area=r.area, add_mw=r.add_mw, shed_mw=r.shed_mw)
            for r in frame.itertuples(index=False)]


# --- operators --------------------------------------------------------------------------------
@operators.get("/fleet", response_model=FleetStatus)
def fleet_status(who: FleetReader, plane: PlaneDep) -> FleetStatus:
    """Sites, their load and service state; jobs per status; actions still in flight."""
    return FleetStatus.model_validate(plane.fleet_status())


@operators.put("/fleet/sites/{site}", response_model=SiteStatus, responses=_not_found)
def set_site_service(site: SiteName, body: SiteServiceUpdate, who: SiteManager, plane: PlaneDep) -> SiteStatus:
    """Take a site out of service (its jobs are moved away at once) or back in."""
    return SiteStatus.model_validate(plane.set_site_service(who, site, body.in_service, body.note))


@operators.get("/plan", response_model=DecisionPublic, responses=_not_found)
def current_plan(who: DecisionReader, plane: PlaneDep) -> DecisionPublic:
    """The controller's latest decision and its actions."""
    row = plane.store.latest_decision()
    if row is None:
        raise NotFound("no decision yet; the controller decides at its first turn")
    return decision_public(row, plane)


@operators.post("/plan", response_model=DecisionPublic, status_code=status.HTTP_201_CREATED)
def decide_now(who: SiteManager, plane: PlaneDep) -> DecisionPublic:
    """Run the controller now instead of waiting for its next turn."""
    _, decision_id = plane.tick("operator", who)
    return decision_public(plane.store.get_decision(decision_id), plane)  # this turn's, not a later one


@operators.get("/decisions", response_model=list[DecisionPublic])
def decisions(who: DecisionReader, plane: PlaneDep, limit: Limit = 50, offset: Offset = 0) -> list[DecisionPublic]:
    """The decision log, newest first."""
    rows = plane.store.list_decisions(limit, offset)
    acts = plane.store.actions_of([r.decision_id for r in rows])
    out = []
    for r in rows:
        d = DecisionPublic.model_validate(r)
        d.actions = [ActionPublic.model_validate(a) for a in acts[r.decision_id]]
        out.append(d)
    return out


@operators.get("/audit", response_model=list[AuditEntry])
def audit(who: AuditReader, plane: PlaneDep, limit: Limit = 100, offset: Offset = 0,
          actor: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] = None) -> list[AuditEntry]:
    """Who did what and when: requests that changed something, decisions, signals, refusals."""
    return [AuditEntry.model_validate(r) for r in plane.store.list_audit(limit, offset, actor)]


# --- admin ------------------------------------------------------------------------------------
@admin.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenCreate, who: TokenAdmin, plane: PlaneDep) -> TokenCreated:
    """A new token for a tenant, a grid operator, an operator or an admin. The secret is in this
    response only."""
    row, secret = plane.store.create_token(body.role, body.subject, who.subject)
    plane.store.audit(who, "token.create", f"token:{row.token_id}", {"role": row.role, "subject": row.subject})
    return TokenCreated.model_validate({**TokenPublic.model_validate(row).model_dump(), "token": secret})


@admin.get("", response_model=list[TokenPublic])
def list_tokens(who: TokenAdmin, plane: PlaneDep) -> list[TokenPublic]:
    return [TokenPublic.model_validate(r) for r in plane.store.list_tokens()]


@admin.delete("/{token_id}", response_model=TokenPublic, responses=_not_found)
def revoke_token(token_id: Annotated[str, Path(pattern=r"^tok_[0-9a-f]{12}$")], who: TokenAdmin,
                 plane: PlaneDep) -> TokenPublic:
    row = plane.store.revoke_token(token_id)
    if row is None:
        raise NotFound(f"token {token_id!r} not found")
    plane.store.audit(who, "token.revoke", f"token:{token_id}", {})
    return TokenPublic.model_validate(row)
