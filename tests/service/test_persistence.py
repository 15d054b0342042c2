"""Jobs, decisions, signals, tokens and the audit log survive a restart; SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN_TOKEN, bearer, dr_body, job_body

from wattbit.service import Settings, create_app
from wattbit.service.db import Base, make_engine, migrate, migrations_dir
from wattbit.service.plane import ControlPlane

POSTGRES_URL = os.environ.get("WATTBIT_TEST_POSTGRES_URL")


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wattbit.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("WATTBIT_TEST_POSTGRES_URL is not set (scripts/services/postgres.sh starts a server)")
    _reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL
    _reset_postgres(POSTGRES_URL)


def test_migrations_build_exactly_the_models(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrations_go_down_and_up_again(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert {"jobs", "decisions", "actions", "signals", "audit", "tokens"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_work_done_while_the_process_was_down_is_credited(tmp_path):
    """A restarted control plane resumes from the last observation it stored: the hours between
    it and the first turn after the restart count for a job the cluster kept running."""
    from wattbit.service.store import SYSTEM, Store

    t = [pd.Timestamp.now(tz="UTC").floor("30min")]
    settings = Settings(state_dir=tmp_path / "state", executor="simulated", tick_s=0, admin_token=ADMIN_TOKEN,
                        horizon_slots=16)
    first = ControlPlane.build(settings, clock=lambda: t[0])
    with TestClient(create_app(plane=first)) as c:
        tenant = c.post("/v1/tokens", json={"role": "tenant", "subject": "acme"}, headers=bearer(ADMIN_TOKEN)).json()
        due = (t[0] + pd.Timedelta(hours=10.5)).isoformat()
        job = c.post("/v1/jobs", json=job_body(runtime_h=10.0, release=t[0].isoformat(), deadline=due),
                     headers=bearer(tenant["token"])).json()
    first.tick("periodic", SYSTEM)  # starts it (out of slack)
    t[0] += pd.Timedelta(hours=1)
    first.tick("periodic", SYSTEM)  # sees it running
    t[0] += pd.Timedelta(hours=1)
    first.tick("periodic", SYSTEM)
    assert first.store.get_job(job["job_id"]).done_gpu_h == pytest.approx(64.0)
    # a new process on the same database; the cluster (here the simulated executor) ran on
    again = ControlPlane(settings, Store(settings.url), first.fleet, first.executor, first.controller, lambda: t[0])
    t[0] += pd.Timedelta(hours=1)
    again.tick("periodic", SYSTEM)
    assert again.store.get_job(job["job_id"]).done_gpu_h == pytest.approx(128.0)  # the hour across the restart


def test_everything_survives_a_restart(database_url, tmp_path):
    settings = Settings(state_dir=tmp_path / "state", database_url=database_url, executor="simulated",
                        tick_s=0, admin_token=ADMIN_TOKEN, horizon_slots=16)
    with TestClient(create_app(plane=ControlPlane.build(settings))) as c:
        tenant = c.post("/v1/tokens", json={"role": "tenant", "subject": "acme"}, headers=bearer(ADMIN_TOKEN)).json()
        grid = c.post("/v1/tokens", json={"role": "grid-operator", "subject": "kyuden-td"},
                      headers=bearer(ADMIN_TOKEN)).json()
        job = c.post("/v1/jobs", json=job_body(name="survivor"), headers=bearer(tenant["token"])).json()
        c.post("/v1/grid/curtailment", json={"area": "kyushu", "kind": "forecast", "slots": [
            {"time": "2026-05-01T03:00:00Z", "curtailment_mw": 40}]}, headers=bearer(grid["token"]))
        dr = c.post("/v1/grid/demand-response", json=dr_body(), headers=bearer(grid["token"])).json()
        before_audit = c.get("/v1/audit", headers=bearer(ADMIN_TOKEN)).json()
        before_decisions = c.get("/v1/decisions", headers=bearer(ADMIN_TOKEN)).json()
    # a new process on the same database
    with TestClient(create_app(plane=ControlPlane.build(settings))) as c:
        seen = c.get(f"/v1/jobs/{job['job_id']}", headers=bearer(tenant["token"]))
        assert seen.status_code == 200 and seen.json()["name"] == "survivor"
        assert c.get(f"/v1/grid/demand-response/{dr['request_id']}", headers=bearer(grid["token"])).json() == dr
        assert c.get("/v1/decisions", headers=bearer(ADMIN_TOKEN)).json() == before_decisions
        assert c.get("/v1/audit", headers=bearer(ADMIN_TOKEN)).json() == before_audit
        assert [t["subject"] for t in c.get("/v1/tokens", headers=bearer(ADMIN_TOKEN)).json()] == \
            ["admin", "acme", "kyuden-td"]
        # the open DR is handed to the controller again after the restart
        c.post("/v1/plan", headers=bearer(ADMIN_TOKEN))
        plan = c.get("/v1/plan", headers=bearer(ADMIN_TOKEN)).json()
        assert dr["request_id"] in plan["dr_commitments"]
