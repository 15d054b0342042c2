"""The grid side: curtailment signals, demand response answered at once, the flexibility envelope."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.service.conftest import ADMIN_TOKEN, REPLAY_START, bearer, dr_body, job_body

from wattbit.power import throttled_mw_per_gpu
from wattbit.scenarios import load_fleet


@pytest.fixture
def settings(settings):
    """The service settings of every grid test: the replayed grid pinned to REPLAY_START."""
    return settings.with_(replay_start=REPLAY_START)


def _slot(t: pd.Timestamp) -> str:
    return t.floor("30min").isoformat()


def test_curtailment_reaches_the_controller(client, tokens, plane):
    now = pd.Timestamp.now(tz="UTC")
    slots = [{"time": _slot(now + pd.Timedelta(minutes=30 * i)), "curtailment_mw": 250.0} for i in range(4)]
    r = client.post("/v1/grid/curtailment", json={"area": "kyushu", "kind": "forecast", "slots": slots},
                    headers=bearer(tokens["grid"]))
    assert r.status_code == 201, r.text
    assert r.json()["sender"] == "kyuden-td" and r.json()["n_slots"] == 4
    fc = plane.controller.forecaster.forecast(now, 8)
    k = fc.areas.index("kyushu")
    assert fc.curtailment_mw[:4, k].tolist() == [250.0] * 4
    assert fc.curtailment_mw[4:, k].tolist() == [0.0] * 4
    assert (fc.carbon_marginal_g_per_kwh[:4, k] == 0).all()  # the next MWh is surplus renewable power
    # a notice overrides the forecast for its slot
    client.post("/v1/grid/curtailment", json={"area": "kyushu", "kind": "notice", "slots": [slots[1] | {"curtailment_mw": 90.0}]},
                headers=bearer(tokens["grid"]))
    client.post("/v1/grid/curtailment", json={"area": "kyushu", "kind": "forecast", "slots": [slots[1] | {"curtailment_mw": 10.0}]},
                headers=bearer(tokens["grid"]))
    assert plane.controller.forecaster.forecast(now, 8).curtailment_mw[1, k] == 90.0


def test_curtailment_for_an_area_without_sites_is_422(client, tokens):
    r = client.post("/v1/grid/curtailment", json={"area": "okinawa", "kind": "forecast", "slots": [
        {"time": "2026-05-01T03:00:00Z", "curtailment_mw": 1}]}, headers=bearer(tokens["grid"]))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "area"]


def _kyushu_mw(client, tokens) -> float:
    sites = client.get("/v1/fleet", headers=bearer(tokens["operator"])).json()["sites"]
    return next(s["facility_power_mw"] for s in sites if s["name"] == "kyushu-dc")


def test_up_dr_is_answered_with_a_commitment(client, tokens):
    jobs = [client.post("/v1/jobs", json=job_body(), headers=bearer(tokens["acme"])).json()
            for _ in range(3)]
    # the replayed evening is dearer than the night ahead: the plan defers all three jobs
    first = client.post("/v1/plan", headers=bearer(tokens["operator"])).json()
    assert not [a for a in first["actions"] if a["kind"] == "start"], first["actions"]
    before_mw = _kyushu_mw(client, tokens)
    r = client.post("/v1/grid/demand-response", json=dr_body(direction="上げ", power_mw=0.1),
                    headers=bearer(tokens["grid"]))
    assert r.status_code == 201, r.text
    dr = r.json()
    assert dr["direction"] == "up" and dr["status"] == "committed"
    assert dr["committed_mw"] == pytest.approx(0.1)
    assert 0 < dr["decided_in_s"] <= dr["reaction_s"]
    assert dr["sender"] == "kyuden-td"
    again = client.get(f"/v1/grid/demand-response/{dr['request_id']}", headers=bearer(tokens["grid"])).json()
    assert again == dr
    plan = client.get("/v1/plan", headers=bearer(tokens["operator"])).json()
    assert plan["dr_commitments"] == {dr["request_id"]: pytest.approx(0.1)}
    assert plan["trigger"] == "demand_response"
    starts = [a for a in plan["actions"] if a["kind"] in ("start", "migrate")]
    assert starts and all(a["site"] == "kyushu-dc" and a["outcome"] == "applied" for a in starts)
    assert {a["job_id"] for a in starts} <= {j["job_id"] for j in jobs}
    # delivered: the started jobs' GPUs at full speed in Kyushu cover the commitment, and the
    # fleet view shows Kyushu's facility power up by that much
    mw_per_gpu = throttled_mw_per_gpu(load_fleet("japan-9").site("kyushu-dc"), 1.0)
    added_mw = sum(j["gpus"] for j in jobs if j["job_id"] in {a["job_id"] for a in starts}) * mw_per_gpu
    assert added_mw >= dr["committed_mw"] - 1e-9
    assert _kyushu_mw(client, tokens) - before_mw == pytest.approx(added_mw, rel=1e-6)


def test_dr_request_id_is_unique(client, tokens):
    body = dr_body(request_id="kyuden-2026-0001")
    assert client.post("/v1/grid/demand-response", json=body, headers=bearer(tokens["grid"])).status_code == 201
    r = client.post("/v1/grid/demand-response", json=body, headers=bearer(tokens["grid"]))
    assert r.status_code == 409 and "already received" in r.json()["detail"]


@pytest.mark.parametrize("changes, field", [
    ({"direction": "sideways"}, "direction"),
    ({"power_mw": 0}, "power_mw"),
    ({"power_mw": float("inf")}, "power_mw"),
    ({"area": "atlantis"}, "area"),
    ({"end": "2020-01-01T00:00:00Z"}, None),
    ({"response_deadline_s": -1}, "response_deadline_s"),
])
def test_bad_dr_is_422(client, tokens, changes, field):
    body = dr_body(**changes)
    r = client.post("/v1/grid/demand-response", content=pd.io.json.ujson_dumps(body),
                    headers={**bearer(tokens["grid"]), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    if field:
        assert any(field in e["loc"] for e in r.json()["detail"])


def test_flexibility_envelope(client, tokens):
    client.post("/v1/jobs", json=job_body(gpus=128), headers=bearer(tokens["acme"]))
    r = client.get("/v1/grid/flexibility?n_slots=4", headers=bearer(tokens["grid"]))
    assert r.status_code == 200
    rows = r.json()
    areas = {x["area"] for x in rows}
    assert len(rows) == 4 * len(areas) and {"tokyo", "kyushu"} <= areas
    add = {x["area"]: x["add_mw"] for x in rows}
    assert add["tokyo"] > 0 and add["hokkaido"] == 0  # the waiting job may go to tokyo, not hokkaido
    assert all(x["shed_mw"] >= 0 for x in rows)
    assert client.get("/v1/grid/flexibility?n_slots=0", headers=bearer(tokens["grid"])).status_code == 422


def test_a_request_for_a_window_already_over_is_refused(client, tokens):
    now = pd.Timestamp.now(tz="UTC")
    body = dr_body(start=(now - pd.Timedelta(hours=2)).isoformat(), end=(now - pd.Timedelta(hours=1)).isoformat())
    r = client.post("/v1/grid/demand-response", json=body, headers=bearer(tokens["grid"]))
    assert r.status_code == 422 and "the window ended at" in str(r.json()["detail"]), r.text


def test_the_same_request_id_sent_twice_at_once_is_one_request_and_one_conflict(client, tokens):
    from concurrent.futures import ThreadPoolExecutor

    body = dr_body(request_id="kyuden-2026-race")
    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(lambda _: client.post("/v1/grid/demand-response", json=body,
                                                      headers=bearer(tokens["grid"])).status_code, range(2)))
    assert codes == [201, 409]


def test_a_grid_operator_reads_its_own_requests_only(client, tokens):
    other = client.post("/v1/tokens", json={"role": "grid-operator", "subject": "tepco-pg"},
                        headers=bearer(ADMIN_TOKEN)).json()["token"]
    dr = client.post("/v1/grid/demand-response", json=dr_body(), headers=bearer(tokens["grid"])).json()
    url = f"/v1/grid/demand-response/{dr['request_id']}"
    assert client.get(url, headers=bearer(tokens["grid"])).status_code == 200
    assert client.get(url, headers=bearer(other)).status_code == 404  # another sender's: as if missing
    assert client.get(url, headers=bearer(tokens["operator"])).status_code == 200


def test_curtailment_absorbed_between_two_turns_counts_each_slot():
    """Turns may be hours apart: the absorbed energy follows each slot's posted headroom."""
    from wattbit.grid import GridSignals
    from wattbit.service.plane import absorbed_mwh

    t0 = pd.Timestamp("2026-05-01 03:00", tz="UTC")
    time = pd.date_range(t0, periods=4, freq="30min", name="time")
    curt = np.array([[40.0], [0.0], [10.0], [0.0]])

    class Posted:
        def forecast(self, issued_at, n_slots):
            k = int((issued_at.floor("30min") - t0) / pd.Timedelta("30min"))
            z = np.zeros((n_slots, 1))
            return GridSignals(time[k:k + n_slots], ("kyushu",), curt[k:k + n_slots], z + 1e4, z + 400, z + 490)

    got = absorbed_mwh({"kyushu": 20.0}, Posted(), t0 + pd.Timedelta(minutes=15), t0 + pd.Timedelta(minutes=75), 1800.0)
    assert got["kyushu"] == pytest.approx(20.0 * 0.25 + 0.0 * 0.5 + 10.0 * 0.25)
