"""What the control plane keeps: tables, engine, and the migrations that build them.

SQLAlchemy 2 models; SQLite (a file) by default, PostgreSQL for production. The schema is only
ever created by the Alembic migrations in ``wattbit/resources/migrations`` (run by
:func:`migrate`), never by ``create_all``, so a database built from scratch and one upgraded from
an old release are the same. Instants are stored as UTC and read back timezone-aware.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

__all__ = [
    "ActionRow",
    "AuditRow",
    "Base",
    "CurtailmentRow",
    "DecisionRow",
    "DemandResponseRow",
    "JobRow",
    "SignalRow",
    "SiteRow",
    "TokenRow",
    "UTCDateTime",
    "make_engine",
    "migrate",
    "migrations_dir",
]


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware datetimes stored as naive UTC (SQLite has no time zones)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: wattbit stores only timezone-aware instants")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {
        dt.datetime: UTCDateTime(), float: sa.Float(), dict[str, Any]: sa.JSON, list[Any]: sa.JSON,
    }


class TokenRow(Base):
    """An API token: only its SHA-256 is kept; the secret is shown once, when it is made."""

    __tablename__ = "tokens"
    token_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    subject: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(sa.String(64))
    revoked_at: Mapped[dt.datetime | None]


class JobRow(Base):
    """A tenant's job: what was asked (the domain Job's fields), what is wanted now (``desired``)
    and what was last observed on the executors."""

    __tablename__ = "jobs"
    job_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    kind: Mapped[str] = mapped_column(sa.String(32))
    gpus: Mapped[int]
    runtime_h: Mapped[float]
    release: Mapped[dt.datetime]
    deadline: Mapped[dt.datetime | None]
    home_site: Mapped[str] = mapped_column(sa.String(64))
    allowed_areas: Mapped[list[Any]]
    priority: Mapped[int] = mapped_column(default=0)
    checkpoint_gb: Mapped[float] = mapped_column(default=0.0)
    user_area: Mapped[str | None] = mapped_column(sa.String(32))
    rtt_budget_s: Mapped[float | None]
    submitted_at: Mapped[dt.datetime]
    submitted_by: Mapped[str] = mapped_column(sa.String(32))
    desired: Mapped[str] = mapped_column(sa.String(16), default="run")  # run | cancel
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    site: Mapped[str | None] = mapped_column(sa.String(64))
    duty_pu: Mapped[float] = mapped_column(default=0.0)
    done_gpu_h: Mapped[float] = mapped_column(default=0.0)
    native_id: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    observed_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class DecisionRow(Base):
    """One step of the controller: when, what triggered it, its outcome and timings."""

    __tablename__ = "decisions"
    decision_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    trigger: Mapped[str] = mapped_column(sa.String(32))
    triggered_by: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(64))
    objective_terms: Mapped[dict[str, Any]]
    dr_commitments: Mapped[dict[str, Any]]
    observe_s: Mapped[float]
    decide_s: Mapped[float]
    apply_s: Mapped[float]
    n_actions: Mapped[int]


class ActionRow(Base):
    """One action of a decision and what became of it on the executor."""

    __tablename__ = "actions"
    action_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(sa.ForeignKey("decisions.decision_id"), index=True)
    seq: Mapped[int]
    job_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    site: Mapped[str | None] = mapped_column(sa.String(64))
    source: Mapped[str | None] = mapped_column(sa.String(64))
    duty_pu: Mapped[float | None]
    transfer_s: Mapped[float | None]
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    outcome: Mapped[str] = mapped_column(sa.String(16))  # applied | refused | failed | skipped
    error: Mapped[str | None] = mapped_column(sa.Text)
    issued_at: Mapped[dt.datetime]


class SignalRow(Base):
    """Every grid signal received, as sent, with its sender."""

    __tablename__ = "signals"
    signal_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(32))  # curtailment_forecast | curtailment_notice | demand_response
    area: Mapped[str] = mapped_column(sa.String(32), index=True)
    received_at: Mapped[dt.datetime]
    sender: Mapped[str] = mapped_column(sa.String(64))
    token_id: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[dict[str, Any]]


class CurtailmentRow(Base):
    """Curtailment headroom per area and slot, from forecasts and notices (latest wins)."""

    __tablename__ = "curtailment"
    row_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    signal_id: Mapped[int] = mapped_column(sa.ForeignKey("signals.signal_id"), index=True)
    area: Mapped[str] = mapped_column(sa.String(32))
    time: Mapped[dt.datetime]
    curtailment_mw: Mapped[float]
    kind: Mapped[str] = mapped_column(sa.String(16))  # forecast | notice
    __table_args__ = (sa.Index("ix_curtailment_area_time", "area", "time"),)


class DemandResponseRow(Base):
    """A demand-response request and the MW the fleet committed."""

    __tablename__ = "demand_response"
    request_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    signal_id: Mapped[int] = mapped_column(sa.ForeignKey("signals.signal_id"))
    direction: Mapped[str] = mapped_column(sa.String(8))
    area: Mapped[str] = mapped_column(sa.String(32))
    power_mw: Mapped[float]
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    response_deadline_s: Mapped[float]
    received_at: Mapped[dt.datetime]
    sender: Mapped[str] = mapped_column(sa.String(64))
    committed_mw: Mapped[float | None]
    decision_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="received")
    decided_in_s: Mapped[float | None]  # request received → decision made [s]
    reaction_s: Mapped[float | None]  # request received → last command returned [s]


class SiteRow(Base):
    """A site's service state, set by operators (absent row: in service)."""

    __tablename__ = "sites"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    in_service: Mapped[bool]
    changed_at: Mapped[dt.datetime]
    changed_by: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str] = mapped_column(sa.Text, default="")


class AuditRow(Base):
    """Who did what, when: every request that changes something, every decision, every signal."""

    __tablename__ = "audit"
    audit_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(64), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    token_id: Mapped[str | None] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str] = mapped_column(sa.String(128))
    detail: Mapped[dict[str, Any]]


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets thread-safe settings (and one shared in-memory DB)."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            kwargs["poolclass"] = StaticPool
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def migrations_dir() -> str:
    return str(resources.files("wattbit") / "resources" / "migrations")


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` with the bundled Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
