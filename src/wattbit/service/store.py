"""Every query the control plane makes, in one place (route handlers hold none).

Each method runs in its own short transaction; rows come back detached and safe to read after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from wattbit.control.executor import Observed
from wattbit.control.live import BookedJob, Outcome, TickReport
from wattbit.control.state import JobStatus
from wattbit.domain import Job, Migrate, Start, Throttle
from wattbit.service.auth import Principal, Role, new_token, token_sha256
from wattbit.service.db import (
    ActionRow,
    AuditRow,
    CurtailmentRow,
    DecisionRow,
    DemandResponseRow,
    JobRow,
    SignalRow,
    SiteRow,
    TokenRow,
    make_engine,
    migrate,
)

__all__ = ["SYSTEM", "TERMINAL_STATUSES", "Store"]

SYSTEM = Principal("system", Role.ADMIN, "system")
"""The control plane itself, as an actor in the audit log (periodic decisions)."""

TERMINAL_STATUSES = frozenset({JobStatus.DONE.value, JobStatus.CANCELLED.value, JobStatus.FAILED.value})
"""Statuses of a job that is over, as the rows store them."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _py(ts: pd.Timestamp | dt.datetime | None) -> dt.datetime | None:
    if ts is None:
        return None
    return pd.Timestamp(ts).tz_convert("UTC").to_pydatetime()


def job_from_row(r: JobRow) -> Job:
    return Job(
        job_id=r.job_id, tenant=r.tenant, kind=r.kind, gpus=r.gpus, runtime_h=r.runtime_h,
        release=pd.Timestamp(r.release), deadline=None if r.deadline is None else pd.Timestamp(r.deadline),
        home_site=r.home_site, allowed_areas=frozenset(r.allowed_areas), priority=r.priority,
        checkpoint_gb=r.checkpoint_gb, user_area=r.user_area, rtt_budget_s=r.rtt_budget_s,
    )


class Store:
    """The control plane's database: jobs, decisions, signals, sites, tokens, audit log.

    url : SQLAlchemy URL (``sqlite:///path/wattbit.db``, ``postgresql+psycopg://…``);
    the schema is brought to the latest migration on construction.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._session()

    # --- tokens -------------------------------------------------------------------------------
    def create_token(self, role: Role, subject: str, created_by: str, secret: str | None = None) -> tuple[TokenRow, str]:
        """A new token; returns the row and the secret (shown once, never stored)."""
        token_id, fresh = new_token()
        secret = secret or fresh
        row = TokenRow(token_id=token_id, sha256=token_sha256(secret), role=Role(role).value,
                       subject=subject, created_at=_now(), created_by=created_by)
        with self.session() as s, s.begin():
            s.add(row)
        return row, secret

    def ensure_token(self, secret: str, role: Role, subject: str) -> TokenRow:
        """The token with this secret, created if absent (bootstrap of the first admin)."""
        with self.session() as s, s.begin():
            row = s.scalar(sa.select(TokenRow).where(TokenRow.sha256 == token_sha256(secret)))
            if row is not None:
                return row
        return self.create_token(role, subject, "bootstrap", secret)[0]

    def principal(self, secret: str) -> Principal | None:
        """Who holds ``secret``, or None if no live token has it."""
        with self.session() as s:
            row = s.scalar(sa.select(TokenRow).where(TokenRow.sha256 == token_sha256(secret),
                                                     TokenRow.revoked_at.is_(None)))
        return None if row is None else Principal(row.token_id, Role(row.role), row.subject)

    def list_tokens(self) -> list[TokenRow]:
        with self.session() as s:
            return list(s.scalars(sa.select(TokenRow).order_by(TokenRow.created_at)))

    def revoke_token(self, token_id: str) -> TokenRow | None:
        with self.session() as s, s.begin():
            row = s.get(TokenRow, token_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = _now()
            return row

    # --- jobs ---------------------------------------------------------------------------------
    def add_job(self, job: Job, name: str, submitted_by: str) -> JobRow:
        row = JobRow(
            job_id=job.job_id, tenant=job.tenant, name=name, kind=job.kind.value, gpus=job.gpus,
            runtime_h=job.runtime_h, release=_py(job.release), deadline=_py(job.deadline),
            home_site=job.home_site, allowed_areas=sorted(job.allowed_areas), priority=job.priority,
            checkpoint_gb=job.checkpoint_gb, user_area=job.user_area, rtt_budget_s=job.rtt_budget_s,
            submitted_at=_now(), submitted_by=submitted_by, desired="run",
            status=JobStatus.PENDING.value, duty_pu=0.0, done_gpu_h=0.0, reason="submitted; waiting for the controller",
        )
        with self.session() as s, s.begin():
            s.add(row)
        return row

    def get_job(self, job_id: str) -> JobRow | None:
        with self.session() as s:
            return s.get(JobRow, job_id)

    def list_jobs(self, tenant: str | None = None, status: str | None = None,
                  limit: int = 100, offset: int = 0) -> list[JobRow]:
        q = sa.select(JobRow).order_by(JobRow.submitted_at.desc(), JobRow.job_id)
        if tenant is not None:
            q = q.where(JobRow.tenant == tenant)
        if status is not None:
            q = q.where(JobRow.status == status)
        with self.session() as s:
            return list(s.scalars(q.limit(limit).offset(offset)))

    def request_cancel(self, job_id: str, reached_executor: bool) -> JobRow | None:
        """Mark a job for cancellation; one that never reached an executor ends at once (the
        caller says which: the rows show the last turn's observation, which a command applied
        in that turn, or since, has overtaken)."""
        with self.session() as s, s.begin():
            row = s.get(JobRow, job_id)
            if row is None or row.status in TERMINAL_STATUSES:
                return row
            row.desired = "cancel"
            if not reached_executor:
                row.status, row.finished_at = JobStatus.CANCELLED.value, _now()
                row.reason = "cancelled by its tenant before it started"
            return row

    def last_observed(self) -> tuple[dict[str, Observed], pd.Timestamp | None]:
        """What the last turn saw of the jobs not finished, and when: the live loop resumes from
        it after a restart, so that the work done in between is credited."""
        with self.session() as s:
            rows = list(s.scalars(sa.select(JobRow).where(JobRow.status.not_in(TERMINAL_STATUSES),
                                                          JobRow.observed_at.is_not(None))))
        if not rows:
            return {}, None
        at = max(r.observed_at for r in rows)
        seen = {r.job_id: Observed(r.job_id, JobStatus(r.status), r.site, r.duty_pu, r.native_id)
                for r in rows if r.observed_at == at}
        return seen, pd.Timestamp(at)

    def book(self) -> dict[str, BookedJob]:
        """Every job not finished, as the live loop wants it."""
        with self.session() as s:
            rows = list(s.scalars(sa.select(JobRow).where(JobRow.status.not_in(TERMINAL_STATUSES))))
        return {r.job_id: BookedJob(job_from_row(r), r.desired, r.done_gpu_h) for r in rows}

    def job_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(sa.select(JobRow.status, sa.func.count()).group_by(JobRow.status)).all()
        return {status: int(n) for status, n in rows}

    # --- decisions ----------------------------------------------------------------------------
    def record_tick(self, report: TickReport, trigger: str, actor: Principal) -> int:
        """Persist one turn of the loop: the decision with its actions, the observed state of
        every job, and an audit entry. Returns the decision id."""
        d = report.decision
        terms = {k: float(v) for k, v in (getattr(d, "objective_terms", {}) or {}).items()}
        with self.session() as s, s.begin():
            drow = DecisionRow(
                at=_py(report.at), trigger=trigger, triggered_by=actor.subject,
                status=str(getattr(d, "status", "observe-only") if d is not None else "observe-only"),
                objective_terms=terms, dr_commitments={k: float(v) for k, v in report.dr_commitments.items()},
                observe_s=report.observe_s, decide_s=report.decide_s, apply_s=report.apply_s,
                n_actions=len(report.outcomes),
            )
            s.add(drow)
            s.flush()
            reasons: dict[str, str] = {}
            for i, o in enumerate(report.outcomes):
                s.add(_action_row(drow.decision_id, i, o))
                if o.outcome == "applied":
                    reasons[o.action.job_id] = f"{_kind(o.action)}: {o.action.reason}".rstrip(": ")
                else:
                    reasons[o.action.job_id] = f"{_kind(o.action)} {o.outcome}: {o.error}"
            self._observed(s, report.observed, _py(report.at), report.done_gpu_h, reasons)
            s.add(AuditRow(at=_now(), actor=actor.subject, role=actor.role.value, token_id=actor.token_id,
                           action="decision", target=f"decision:{drow.decision_id}",
                           detail={"trigger": trigger, "status": drow.status, "n_actions": drow.n_actions,
                                   "dr_commitments": drow.dr_commitments,
                                   "orphans": list(report.orphans),
                                   "unreachable": sorted(report.unreachable)}))
            return drow.decision_id

    def record_observed(self, observed: Mapping[str, Observed], at: pd.Timestamp) -> None:
        """Record what the executors show, between decisions."""
        with self.session() as s, s.begin():
            self._observed(s, observed, _py(at), {}, {}, only_seen=True)

    @staticmethod
    def _observed(s: Session, observed: Mapping[str, Observed], at: dt.datetime,
                  done_gpu_h: Mapping[str, float], reasons: Mapping[str, str], only_seen: bool = False) -> None:
        ids = set(observed) if only_seen else set(done_gpu_h) | set(observed)
        if not ids:
            return
        for row in s.scalars(sa.select(JobRow).where(JobRow.job_id.in_(ids))):
            if row.status in TERMINAL_STATUSES:
                continue
            seen = observed.get(row.job_id)
            if seen is not None:
                row.status, row.site, row.duty_pu = seen.status.value, seen.site, seen.duty_pu
                row.native_id, row.observed_at = seen.native_id, at
                if not seen.status.active:
                    row.finished_at = at
            elif row.desired == "cancel":
                row.status, row.finished_at = JobStatus.CANCELLED.value, at
            else:  # no executor knows it (yet, or any more): it waits to be started
                row.status, row.site, row.duty_pu, row.native_id = JobStatus.PENDING.value, None, 0.0, None
            if row.job_id in done_gpu_h:
                row.done_gpu_h = float(done_gpu_h[row.job_id])
            if row.job_id in reasons:
                row.reason = reasons[row.job_id]

    def list_decisions(self, limit: int = 50, offset: int = 0) -> list[DecisionRow]:
        with self.session() as s:
            return list(s.scalars(sa.select(DecisionRow).order_by(DecisionRow.decision_id.desc())
                                  .limit(limit).offset(offset)))

    def latest_decision(self) -> DecisionRow | None:
        q = sa.select(DecisionRow).order_by(DecisionRow.decision_id.desc()).limit(1)
        with self.session() as s:
            return s.scalar(q)

    def get_decision(self, decision_id: int) -> DecisionRow | None:
        with self.session() as s:
            return s.get(DecisionRow, decision_id)

    def actions_of(self, decision_ids: Sequence[int]) -> dict[int, list[ActionRow]]:
        if not decision_ids:
            return {}
        with self.session() as s:
            rows = s.scalars(sa.select(ActionRow).where(ActionRow.decision_id.in_(decision_ids))
                             .order_by(ActionRow.decision_id, ActionRow.seq))
            out: dict[int, list[ActionRow]] = {i: [] for i in decision_ids}
            for r in rows:
                out[r.decision_id].append(r)
            return out

    def job_history(self, job_id: str, limit: int = 100) -> list[tuple[ActionRow, DecisionRow]]:
        with self.session() as s:
            rows = s.execute(
                sa.select(ActionRow, DecisionRow).join(DecisionRow, ActionRow.decision_id == DecisionRow.decision_id)
                .where(ActionRow.job_id == job_id).order_by(ActionRow.action_id.desc()).limit(limit)
            ).all()
            return [(a, d) for a, d in rows]

    # --- grid signals -------------------------------------------------------------------------
    def add_curtailment(self, area: str, kind: str, points: Iterable[tuple[pd.Timestamp, float]],
                        sender: Principal, body: Mapping[str, Any]) -> SignalRow:
        now = _now()
        with self.session() as s, s.begin():
            sig = SignalRow(kind=f"curtailment_{kind}", area=area, received_at=now, sender=sender.subject,
                            token_id=sender.token_id, body=dict(body))
            s.add(sig)
            s.flush()
            for t, mw in points:
                s.add(CurtailmentRow(signal_id=sig.signal_id, area=area, time=_py(t), curtailment_mw=float(mw), kind=kind))
            s.add(AuditRow(at=now, actor=sender.subject, role=sender.role.value, token_id=sender.token_id,
                           action=f"signal.curtailment_{kind}", target=f"signal:{sig.signal_id}",
                           detail={"area": area, "n_slots": len(body.get("slots", []))}))
            return sig

    def curtailment(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Latest posted curtailment headroom per (time, area) in [start, end): notices win over
        forecasts, later signals over earlier ones. Columns: time, area, curtailment_mw."""
        q = (sa.select(CurtailmentRow.time, CurtailmentRow.area, CurtailmentRow.curtailment_mw,
                       CurtailmentRow.kind, CurtailmentRow.signal_id)
             .where(CurtailmentRow.time >= _py(start), CurtailmentRow.time < _py(end)))
        with self.session() as s:
            rows = s.execute(q).all()
        frame = pd.DataFrame(rows, columns=["time", "area", "curtailment_mw", "kind", "signal_id"])
        if frame.empty:
            return frame[["time", "area", "curtailment_mw"]]
        frame["rank"] = (frame["kind"] == "notice").astype(int)
        frame = frame.sort_values(["rank", "signal_id"]).drop_duplicates(["time", "area"], keep="last")
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame[["time", "area", "curtailment_mw"]].sort_values(["time", "area"]).reset_index(drop=True)

    def add_demand_response(self, row: DemandResponseRow, sender: Principal, body: Mapping[str, Any]) -> DemandResponseRow:
        now = _now()
        with self.session() as s, s.begin():
            sig = SignalRow(kind="demand_response", area=row.area, received_at=now, sender=sender.subject,
                            token_id=sender.token_id, body=dict(body))
            s.add(sig)
            s.flush()
            row.signal_id, row.received_at, row.sender, row.status = sig.signal_id, now, sender.subject, "received"
            s.add(row)
            s.add(AuditRow(at=now, actor=sender.subject, role=sender.role.value, token_id=sender.token_id,
                           action="signal.demand_response", target=f"dr:{row.request_id}",
                           detail={"direction": row.direction, "area": row.area, "power_mw": row.power_mw}))
            return row

    def get_demand_response(self, request_id: str) -> DemandResponseRow | None:
        with self.session() as s:
            return s.get(DemandResponseRow, request_id)

    def open_demand_response(self, now: pd.Timestamp) -> list[DemandResponseRow]:
        """Requests whose window has not ended yet."""
        with self.session() as s:
            return list(s.scalars(sa.select(DemandResponseRow).where(DemandResponseRow.end > _py(now))
                                  .order_by(DemandResponseRow.received_at)))

    def commit_demand_response(self, request_id: str, committed_mw: float | None, decision_id: int | None,
                               status: str, decided_in_s: float | None = None,
                               reaction_s: float | None = None) -> DemandResponseRow | None:
        with self.session() as s, s.begin():
            row = s.get(DemandResponseRow, request_id)
            if row is not None:
                row.committed_mw, row.decision_id, row.status = committed_mw, decision_id, status
                row.decided_in_s, row.reaction_s = decided_in_s, reaction_s
            return row

    # --- sites --------------------------------------------------------------------------------
    def set_site_service(self, name: str, in_service: bool, note: str, by: Principal) -> SiteRow:
        now = _now()
        with self.session() as s, s.begin():
            row = s.get(SiteRow, name)
            if row is None:
                row = SiteRow(name=name, in_service=in_service, changed_at=now, changed_by=by.subject, note=note)
                s.add(row)
            else:
                row.in_service, row.changed_at, row.changed_by, row.note = in_service, now, by.subject, note
            s.add(AuditRow(at=now, actor=by.subject, role=by.role.value, token_id=by.token_id,
                           action="site.in_service" if in_service else "site.out_of_service",
                           target=f"site:{name}", detail={"note": note}))
            return row

    def site_rows(self) -> dict[str, SiteRow]:
        with self.session() as s:
            return {r.name: r for r in s.scalars(sa.select(SiteRow))}

    def sites_out(self) -> frozenset[str]:
        return frozenset(n for n, r in self.site_rows().items() if not r.in_service)

    # --- audit --------------------------------------------------------------------------------
    def audit(self, who: Principal, action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
        with self.session() as s, s.begin():
            s.add(AuditRow(at=_now(), actor=who.subject, role=who.role.value, token_id=who.token_id,
                           action=action, target=target, detail=dict(detail or {})))

    def list_audit(self, limit: int = 100, offset: int = 0, actor: str | None = None) -> list[AuditRow]:
        q = sa.select(AuditRow).order_by(AuditRow.audit_id.desc())
        if actor is not None:
            q = q.where(AuditRow.actor == actor)
        with self.session() as s:
            return list(s.scalars(q.limit(limit).offset(offset)))


def _kind(action) -> str:
    return type(action).__name__.lower()


def _action_row(decision_id: int, seq: int, o: Outcome) -> ActionRow:
    a = o.action
    site = getattr(a, "site", None) or getattr(a, "destination", None)
    return ActionRow(
        decision_id=decision_id, seq=seq, job_id=a.job_id, kind=_kind(a), site=site,
        source=getattr(a, "source", None),
        duty_pu=getattr(a, "duty_pu", None) if isinstance(a, (Start, Throttle)) else None,
        transfer_s=a.transfer_s if isinstance(a, Migrate) else None,
        reason=a.reason, outcome=o.outcome, error=o.error,
        issued_at=dt.datetime.fromtimestamp(o.at_s, dt.UTC),
    )
