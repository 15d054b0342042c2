"""Tokens and roles: who may do what, and tenants never see one another."""

from __future__ import annotations

import pytest
from tests.service.conftest import bearer, dr_body, job_body


def test_no_token_is_401(client):
    r = client.get("/v1/jobs")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/jobs", headers=bearer("wb_not-a-token")).status_code == 401


@pytest.mark.parametrize("holder, method, path, body", [
    ("acme", "post", "/v1/grid/demand-response", dr_body()),
    ("acme", "get", "/v1/fleet", None),
    ("acme", "post", "/v1/tokens", {"role": "admin", "subject": "mallory"}),
    ("grid", "post", "/v1/jobs", job_body()),
    ("grid", "get", "/v1/jobs", None),
    ("grid", "get", "/v1/audit", None),
    ("operator", "post", "/v1/grid/curtailment",
     {"area": "kyushu", "kind": "notice", "slots": [{"time": "2026-05-01T03:00:00Z", "curtailment_mw": 10}]}),
    ("operator", "post", "/v1/tokens", {"role": "tenant", "subject": "x"}),
    ("admin", "post", "/v1/grid/demand-response", dr_body()),  # only grid-operator tokens post signals
    ("admin", "post", "/v1/jobs", job_body()),  # jobs belong to tenants
])
def test_wrong_role_is_403_and_audited(client, tokens, holder, method, path, body):
    r = client.request(method.upper(), path, json=body, headers=bearer(tokens[holder]))
    assert r.status_code == 403, r.text
    assert "may not" in r.json()["detail"]
    audit = client.get("/v1/audit", headers=bearer(tokens["operator"])).json()
    assert any(e["action"] == "denied" and e["target"].endswith(path) for e in audit)


def test_tenants_never_see_each_other(client, tokens):
    mine = client.post("/v1/jobs", json=job_body(name="acme secret"), headers=bearer(tokens["acme"])).json()
    theirs = client.post("/v1/jobs", json=job_body(), headers=bearer(tokens["globex"])).json()
    assert mine["tenant"] == "acme" and theirs["tenant"] == "globex"
    listed = client.get("/v1/jobs", headers=bearer(tokens["acme"])).json()["jobs"]
    assert [j["job_id"] for j in listed] == [mine["job_id"]]
    # another tenant's job looks exactly like a missing one
    for method, suffix in (("GET", ""), ("GET", "/events"), ("DELETE", "")):
        r = client.request(method, f"/v1/jobs/{mine['job_id']}{suffix}", headers=bearer(tokens["globex"]))
        assert r.status_code == 404, (method, suffix, r.text)
        assert r.json() == {"detail": f"job {mine['job_id']!r} not found"}
    assert client.get(f"/v1/jobs/{mine['job_id']}", headers=bearer(tokens["acme"])).json()["desired"] == "run"
    # operators see every job
    everyone = client.get("/v1/jobs", headers=bearer(tokens["operator"])).json()["jobs"]
    assert {j["tenant"] for j in everyone} == {"acme", "globex"}


def test_revoked_token_stops_working(client, tokens):
    made = client.post("/v1/tokens", json={"role": "tenant", "subject": "initech"},
                       headers=bearer(tokens["admin"])).json()
    assert client.get("/v1/jobs", headers=bearer(made["token"])).status_code == 200
    r = client.delete(f"/v1/tokens/{made['token_id']}", headers=bearer(tokens["admin"]))
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert client.get("/v1/jobs", headers=bearer(made["token"])).status_code == 401


def test_token_secrets_are_not_stored(client, tokens, plane):
    rows = plane.store.list_tokens()
    assert rows and all(len(r.sha256) == 64 for r in rows)
    listed = client.get("/v1/tokens", headers=bearer(tokens["admin"])).json()
    assert all("token" not in t for t in listed)
    with plane.store.engine.connect() as conn:
        dump = "\n".join(str(row) for row in conn.exec_driver_sql("select * from tokens"))
    for secret in tokens.values():
        assert secret not in dump
