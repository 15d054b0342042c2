"""Who may do what: roles, permissions, bearer tokens.

==============  ==============================================================================
role            may
==============  ==============================================================================
tenant          submit jobs; list, inspect and cancel *its own* jobs
grid-operator   post curtailment forecasts/notices and demand-response requests; read the
                fleet's flexibility envelope
operator        fleet status, the plan, the decision log, the audit log, every job (read only);
                take sites in and out of service
admin           everything an operator may, plus tokens; never posts grid signals (only
                grid-operator tokens do) and never submits jobs (jobs belong to tenants)
==============  ==============================================================================

Tokens are random 256-bit secrets (``wb_…``); only their SHA-256 is stored, so a leaked database
leaks no token.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass

__all__ = ["ROLE_PERMISSIONS", "Permission", "Principal", "Role", "new_token", "token_sha256"]


class Role(str, enum.Enum):
    TENANT = "tenant"
    GRID_OPERATOR = "grid-operator"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(str, enum.Enum):
    SUBMIT_JOBS = "jobs:submit"          # and read/cancel one's own
    READ_ALL_JOBS = "jobs:read-all"
    CANCEL_ANY_JOB = "jobs:cancel-any"
    POST_GRID = "grid:post"
    READ_FLEXIBILITY = "grid:flexibility"
    READ_FLEET = "fleet:read"
    MANAGE_SITES = "fleet:sites"
    READ_DECISIONS = "decisions:read"
    READ_AUDIT = "audit:read"
    MANAGE_TOKENS = "tokens:manage"


_OPERATOR = frozenset({
    Permission.READ_ALL_JOBS, Permission.READ_FLEXIBILITY, Permission.READ_FLEET,
    Permission.MANAGE_SITES, Permission.READ_DECISIONS, Permission.READ_AUDIT,
})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.TENANT: frozenset({Permission.SUBMIT_JOBS}),
    Role.GRID_OPERATOR: frozenset({Permission.POST_GRID, Permission.READ_FLEXIBILITY}),
    Role.OPERATOR: _OPERATOR,
    Role.ADMIN: _OPERATOR | {Permission.MANAGE_TOKENS, Permission.CANCEL_ANY_JOB},
}
"""The one table of rights; the API checks nothing else."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid token: its id, role and subject (the tenant's or person's name)."""

    token_id: str
    role: Role
    subject: str

    def can(self, permission: Permission) -> bool:
        """
        >>> Principal("t1", Role.TENANT, "acme").can(Permission.POST_GRID)
        False
        >>> Principal("t2", Role.ADMIN, "root").can(Permission.MANAGE_TOKENS)
        True
        """
        return permission in ROLE_PERMISSIONS[self.role]


def new_token() -> tuple[str, str]:
    """A fresh ``(token_id, secret)`` pair.

    >>> tid, secret = new_token()
    >>> tid.startswith("tok_") and secret.startswith("wb_") and len(secret) > 40
    True
    """
    return "tok_" + secrets.token_hex(6), "wb_" + secrets.token_urlsafe(32)


def token_sha256(secret: str) -> str:
    """
    >>> token_sha256("wb_x")[:12]
    '0c7c74730b11'
    """
    return hashlib.sha256(secret.encode()).hexdigest()
