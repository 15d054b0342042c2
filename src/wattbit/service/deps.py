"""FastAPI dependencies, as ``Annotated`` aliases: the control plane, the caller, and the caller
checked against the permission a route needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wattbit.service.auth import Permission, Principal
from wattbit.service.plane import ControlPlane

__all__ = [
    "AuditReader",
    "Caller",
    "DRReader",
    "DecisionReader",
    "FleetReader",
    "FlexibilityReader",
    "GridCaller",
    "JobReader",
    "PlaneDep",
    "SiteManager",
    "TenantCaller",
    "TokenAdmin",
    "requires",
]

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer wb_…`")


def get_plane(request: Request) -> ControlPlane:
    return request.app.state.plane


PlaneDep = Annotated[ControlPlane, Depends(get_plane)]


def current_principal(plane: PlaneDep,
                      creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if creds is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token; send `Authorization: Bearer <token>`",
                            headers={"WWW-Authenticate": "Bearer"})
    who = plane.store.principal(creds.credentials)
    if who is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


Caller = Annotated[Principal, Depends(current_principal)]


def requires(*permissions: Permission) -> Callable[..., Principal]:
    """A dependency that lets through callers holding any of ``permissions`` (403 otherwise; the
    refusal is written to the audit log)."""

    def check(who: Caller, plane: PlaneDep, request: Request) -> Principal:
        if any(who.can(p) for p in permissions):
            return who
        plane.store.audit(who, "denied", f"{request.method} {request.url.path}"[:128],
                          {"needs": [p.value for p in permissions]})
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"role {who.role.value!r} may not do this (needs {' or '.join(p.value for p in permissions)})")

    return check


TenantCaller = Annotated[Principal, Depends(requires(Permission.SUBMIT_JOBS))]
JobReader = Annotated[Principal, Depends(requires(Permission.SUBMIT_JOBS, Permission.READ_ALL_JOBS))]
JobCanceller = Annotated[Principal, Depends(requires(Permission.SUBMIT_JOBS, Permission.CANCEL_ANY_JOB))]
GridCaller = Annotated[Principal, Depends(requires(Permission.POST_GRID))]
DRReader = Annotated[Principal, Depends(requires(Permission.POST_GRID, Permission.READ_DECISIONS))]
FlexibilityReader = Annotated[Principal, Depends(requires(Permission.READ_FLEXIBILITY))]
FleetReader = Annotated[Principal, Depends(requires(Permission.READ_FLEET))]
SiteManager = Annotated[Principal, Depends(requires(Permission.MANAGE_SITES))]
DecisionReader = Annotated[Principal, Depends(requires(Permission.READ_DECISIONS))]
AuditReader = Annotated[Principal, Depends(requires(Permission.READ_AUDIT))]
TokenAdmin = Annotated[Principal, Depends(requires(Permission.MANAGE_TOKENS))]
