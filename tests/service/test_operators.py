"""Operators: fleet status, the plan, the decision log, sites in and out of service, the audit log."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.service.conftest import bearer, dr_body, job_body


def test_fleet_status(client, tokens):
    r = client.get("/v1/fleet", headers=bearer(tokens["operator"]))
    assert r.status_code == 200
    f = r.json()
    assert f["fleet"] == "japan-9" and f["executor"] == "simulated" and len(f["sites"]) == 9
    assert all(s["in_service"] and s["facility_power_mw"] > 0 for s in f["sites"])


def test_no_plan_before_the_first_decision(client, tokens):
    assert client.get("/v1/plan", headers=bearer(tokens["operator"])).status_code == 404
    assert client.post("/v1/plan", headers=bearer(tokens["operator"])).status_code == 201
    assert client.get("/v1/plan", headers=bearer(tokens["operator"])).json()["decision_id"] == 1


def test_site_out_of_service_moves_its_jobs(client, tokens):
    urgent = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=5)).isoformat()
    jobs = [client.post("/v1/jobs", json=job_body(deadline=urgent, allowed_areas=["tokyo", "kansai"]),
                        headers=bearer(tokens["acme"])).json() for _ in range(2)]
    for _ in range(2):
        client.post("/v1/plan", headers=bearer(tokens["operator"]))
    sites = {client.get(f"/v1/jobs/{j['job_id']}", headers=bearer(tokens["acme"])).json()["site"] for j in jobs}
    assert len(sites) >= 1 and sites <= {"tokyo-dc", "kansai-dc"}
    out = sites.pop()
    r = client.put(f"/v1/fleet/sites/{out}", json={"in_service": False, "note": "cooling maintenance"},
                   headers=bearer(tokens["operator"]))
    assert r.status_code == 200 and r.json()["in_service"] is False
    client.post("/v1/plan", headers=bearer(tokens["operator"]))
    now_at = {client.get(f"/v1/jobs/{j['job_id']}", headers=bearer(tokens["acme"])).json()["site"] for j in jobs}
    assert out not in now_at
    audit = client.get("/v1/audit?actor=noc", headers=bearer(tokens["operator"])).json()
    assert any(e["action"] == "site.out_of_service" and e["target"] == f"site:{out}" for e in audit)
    assert client.put("/v1/fleet/sites/atlantis-dc", json={"in_service": False},
                      headers=bearer(tokens["operator"])).status_code == 404


def test_every_decision_and_signal_is_audited_with_its_sender(client, tokens):
    client.post("/v1/jobs", json=job_body(), headers=bearer(tokens["acme"]))
    client.post("/v1/grid/curtailment", json={"area": "kyushu", "kind": "forecast", "slots": [
        {"time": "2026-05-01T03:00:00Z", "curtailment_mw": 40}]}, headers=bearer(tokens["grid"]))
    dr = client.post("/v1/grid/demand-response", json=dr_body(), headers=bearer(tokens["grid"])).json()
    client.post("/v1/plan", headers=bearer(tokens["operator"]))
    audit = client.get("/v1/audit", headers=bearer(tokens["admin"])).json()
    by_action = {}
    for e in audit:
        by_action.setdefault(e["action"], []).append(e)
    assert by_action["job.submit"][0]["actor"] == "acme"
    assert by_action["signal.curtailment_forecast"][0]["actor"] == "kyuden-td"
    assert by_action["signal.demand_response"][0]["actor"] == "kyuden-td"
    assert by_action["signal.demand_response"][0]["target"] == f"dr:{dr['request_id']}"
    decisions = by_action["decision"]
    assert {e["actor"] for e in decisions} == {"kyuden-td", "noc"}  # the DR's decision is the sender's
    assert all(e["token_id"] for e in audit)
    log = client.get("/v1/decisions", headers=bearer(tokens["operator"])).json()
    assert [d["trigger"] for d in log] == ["operator", "demand_response"]


def test_metrics(client, tokens, plane):
    text = client.get("/metrics").text
    for name in ("wattbit_site_power_mw", "wattbit_site_gpus_busy", "wattbit_curtailment_absorbed_mwh_total",
                 "wattbit_pending_decisions", "wattbit_jobs"):
        assert name in text
    # while Kyushu curtails 5 MW, the Kyushu site (idle power alone is above 5 MW) absorbs all of
    # it: 5 MW × the time between the controller's turns
    now = pd.Timestamp.now(tz="UTC")
    client.post("/v1/grid/curtailment", json={"area": "kyushu", "kind": "notice", "slots": [
        {"time": (now + pd.Timedelta(minutes=30 * i)).floor("30min").isoformat(), "curtailment_mw": 5.0}
        for i in range(-1, 4)]}, headers=bearer(tokens["grid"]))
    urgent = (now + pd.Timedelta(hours=4.5)).isoformat()
    client.post("/v1/jobs", json=job_body(allowed_areas=["kyushu"], deadline=urgent), headers=bearer(tokens["acme"]))
    for _ in range(3):
        client.post("/v1/plan", headers=bearer(tokens["operator"]))
    text = client.get("/metrics").text
    lines = {line.split()[0]: float(line.split()[-1]) for line in text.splitlines() if not line.startswith("#")}
    at = [pd.Timestamp(d["at"]) for d in client.get("/v1/decisions", headers=bearer(tokens["operator"])).json()]
    hours = (max(at) - min(at)).total_seconds() / 3600
    assert lines['wattbit_curtailment_absorbed_mwh_total{area="kyushu"}'] == pytest.approx(5.0 * hours, rel=1e-6)
    assert lines['wattbit_curtailment_absorbed_mwh_total{area="tokyo"}'] == 0.0
    assert lines['wattbit_site_gpus_busy{site="kyushu-dc"}'] == 64.0
    assert lines['wattbit_jobs{status="running"}'] == 1.0
