"""Initial schema: tokens, jobs, decisions and actions, grid signals, sites, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from wattbit.service.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_tokens_subject", "tokens", ["subject"])
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("runtime_h", sa.Float(), nullable=False),
        sa.Column("release", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=True),
        sa.Column("home_site", sa.String(64), nullable=False),
        sa.Column("allowed_areas", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("checkpoint_gb", sa.Float(), nullable=False),
        sa.Column("user_area", sa.String(32), nullable=True),
        sa.Column("rtt_budget_s", sa.Float(), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(32), nullable=False),
        sa.Column("desired", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("duty_pu", sa.Float(), nullable=False),
        sa.Column("done_gpu_h", sa.Float(), nullable=False),
        sa.Column("native_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_jobs_tenant", "jobs", ["tenant"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("triggered_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("objective_terms", sa.JSON(), nullable=False),
        sa.Column("dr_commitments", sa.JSON(), nullable=False),
        sa.Column("observe_s", sa.Float(), nullable=False),
        sa.Column("decide_s", sa.Float(), nullable=False),
        sa.Column("apply_s", sa.Float(), nullable=False),
        sa.Column("n_actions", sa.Integer(), nullable=False),
    )
    op.create_index("ix_decisions_at", "decisions", ["at"])
    op.create_table(
        "actions",
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.decision_id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("duty_pu", sa.Float(), nullable=True),
        sa.Column("transfer_s", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_actions_decision_id", "actions", ["decision_id"])
    op.create_index("ix_actions_job_id", "actions", ["job_id"])
    op.create_table(
        "signals",
        sa.Column("signal_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )
    op.create_index("ix_signals_area", "signals", ["area"])
    op.create_table(
        "curtailment",
        sa.Column("row_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("signal_id", sa.Integer(), sa.ForeignKey("signals.signal_id"), nullable=False),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("curtailment_mw", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_curtailment_signal_id", "curtailment", ["signal_id"])
    op.create_index("ix_curtailment_area_time", "curtailment", ["area", "time"])
    op.create_table(
        "demand_response",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("signal_id", sa.Integer(), sa.ForeignKey("signals.signal_id"), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("power_mw", sa.Float(), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("response_deadline_s", sa.Float(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("committed_mw", sa.Float(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_in_s", sa.Float(), nullable=True),
        sa.Column("reaction_s", sa.Float(), nullable=True),
    )
    op.create_table(
        "sites",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("in_service", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("audit_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_actor", "audit", ["actor"])


def downgrade() -> None:
    for index, table in (("ix_audit_actor", "audit"), ("ix_audit_at", "audit")):
        op.drop_index(index, table_name=table)
    for table in ("audit", "sites", "demand_response", "curtailment", "signals", "actions",
                  "decisions", "jobs", "tokens"):
        op.drop_table(table)
