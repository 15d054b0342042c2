"""Fixtures of the service tests: an app on a fresh database, tokens for every role."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from wattbit.service import Settings, create_app
from wattbit.service.plane import ControlPlane

ADMIN_TOKEN = "wb_test-admin-token-0123456789abcdef"

REPLAY_START = pd.Timestamp("2022-08-01 18:00", tz="Asia/Tokyo")
"""The recorded instant the grid tests replay (``Settings.replay_start``): a summer Monday
evening of FY2022, when prices are above those of the night ahead, so the plan defers flexible
work and Kyushu has room for a 上げDR. Pinned, the plan no longer depends on the hour the tests
run at (at some hours of the season Kyushu is already the cheapest place and holds all the
flexible work before any request)."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path / "state", executor="simulated", tick_s=0, admin_token=ADMIN_TOKEN,
                    horizon_slots=16)


@pytest.fixture
def plane(settings) -> ControlPlane:
    return ControlPlane.build(settings)


@pytest.fixture
def client(plane):
    with TestClient(create_app(plane=plane)) as c:
        yield c


@pytest.fixture
def tokens(client) -> dict[str, str]:
    """One token per holder: two tenants, a grid operator, an operator and the admin."""
    out = {"admin": ADMIN_TOKEN}
    for key, role, subject in (("acme", "tenant", "acme"), ("globex", "tenant", "globex"),
                               ("grid", "grid-operator", "kyuden-td"), ("operator", "operator", "noc")):
        r = client.post("/v1/tokens", json={"role": role, "subject": subject}, headers=bearer(ADMIN_TOKEN))
        assert r.status_code == 201, r.text
        out[key] = r.json()["token"]
    return out


def job_body(**changes) -> dict:
    now = pd.Timestamp.now(tz="UTC")
    body = {"kind": "training", "gpus": 64, "runtime_h": 4.0,
            "deadline": (now + pd.Timedelta(hours=24)).isoformat(),
            "allowed_areas": ["tokyo", "kansai", "kyushu"], "checkpoint_gb": 100.0}
    body.update(changes)
    return body


def dr_body(**changes) -> dict:
    now = pd.Timestamp.now(tz="UTC")
    body = {"direction": "up", "area": "kyushu", "power_mw": 0.1, "start": now.isoformat(),
            "end": (now + pd.Timedelta(hours=1)).isoformat()}
    body.update(changes)
    return body
