"""End to end: the service drives three real Slurm clusters (tokyo, kansai, kyushu).

* Two tenants submit jobs; the grid operator posts a 上げDR for Kyushu; ``squeue`` on the Kyushu
  cluster shows flexible jobs started or moved there, while residency-bound jobs stay home.
* The service is killed (SIGKILL) in the middle of a move and restarted: the job is neither
  lost nor ever active on two clusters, and it resumes from its checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN_TOKEN, REPLAY_START, bearer

import wattbit
from wattbit.control.slurm_local import LocalSlurm, free_ports, missing_slurm_binaries
from wattbit.power import throttled_mw_per_gpu
from wattbit.scenarios import load_fleet
from wattbit.service import Settings, create_app

pytestmark = pytest.mark.slurm

SITES = ("tokyo-dc", "kansai-dc", "kyushu-dc")
GPUS_PER_SITE = 16
LIVE = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING")


@pytest.fixture(scope="module")
def lab():
    missing = missing_slurm_binaries()
    if missing:
        pytest.skip(f"Slurm not installed ({', '.join(missing)} missing): apt-get install slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        pytest.skip("local Slurm clusters need root (slurmd launches jobs as their owner)")
    with LocalSlurm(SITES, gpus=GPUS_PER_SITE) as lab:
        yield lab


@pytest.fixture
def setup(lab, tmp_path):
    """A fleet file and a Slurm sites file for the three clusters; the clusters left empty after."""
    fleet = lab.write_fleet_toml(tmp_path / "fleet.toml", load_fleet("japan-9"))
    sites = lab.write_sites_toml(tmp_path / "sites.toml")
    yield fleet, sites
    for c in lab.clusters.values():
        subprocess.run(["scancel", "--user=root"], env=c.env(), check=False)


def squeue(lab) -> dict[str, dict[str, str]]:
    """Per site: wattbit job id → Slurm state, for every job Slurm still lists."""
    out = {}
    for site, c in lab.clusters.items():
        text = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j|%T"], env=c.env(),
                              capture_output=True, text=True, check=True).stdout
        out[site] = {n.removeprefix("wattbit:"): st for n, st in (line.split("|") for line in text.splitlines())
                     if n.startswith("wattbit:")}
    return out


def live_sites(lab, job_id: str) -> list[str]:
    return [site for site, jobs in squeue(lab).items() if jobs.get(job_id) in LIVE]


def test_up_dr_for_kyushu_moves_flexible_work_there(lab, setup):
    fleet_file, sites_file = setup
    # the replayed grid pinned to an evening dearer than the night ahead: the flexible jobs wait,
    # so Kyushu has room for them when the 上げDR comes
    settings = Settings(state_dir=sites_file.parent / "state", fleet=str(fleet_file), executor="slurm",
                        slurm_sites=sites_file, tick_s=600, admin_token=ADMIN_TOKEN, lightpath_setup_s=0,
                        replay_start=REPLAY_START)
    with TestClient(create_app(settings)) as c:
        tok = {}
        for name, role in (("acme", "tenant"), ("globex", "tenant"), ("kyuden-td", "grid-operator"),
                           ("noc", "operator")):
            tok[name] = c.post("/v1/tokens", json={"role": role, "subject": name}, headers=bearer(ADMIN_TOKEN)).json()["token"]
        now = pd.Timestamp.now(tz="UTC")
        owner: dict[str, str] = {}

        def submit(tenant, areas, deadline_h, home=None):
            body = {"kind": "training", "gpus": 2, "runtime_h": 3.0, "allowed_areas": areas, "checkpoint_gb": 20.0,
                    "deadline": (now + pd.Timedelta(hours=deadline_h)).isoformat()}
            if home:
                body["home_site"] = home
            r = c.post("/v1/jobs", json=body, headers=bearer(tok[tenant]))
            assert r.status_code == 201, r.text
            owner[r.json()["job_id"]] = tenant
            return r.json()["job_id"]

        bound = {  # residency-bound and urgent: they run now, at home
            submit("acme", ["tokyo"], 3.5): "tokyo-dc",
            submit("globex", ["kansai"], 3.5): "kansai-dc",
        }
        flexible = {  # may run in Kyushu; deadlines leave room to wait for cheaper hours
            submit("acme", ["tokyo", "kansai", "kyushu"], 24),
            submit("acme", ["tokyo", "kansai", "kyushu"], 24),
            submit("globex", ["kansai", "kyushu"], 24, home="kansai-dc"),
            submit("globex", ["kansai", "kyushu"], 24, home="kansai-dc"),
        }
        c.post("/v1/plan", headers=bearer(tok["noc"]))
        deadline = time.monotonic() + 30
        while any(squeue(lab)[site].get(j) != "RUNNING" for j, site in bound.items()):
            assert time.monotonic() < deadline, squeue(lab)
            time.sleep(0.2)
        before = squeue(lab)
        kyushu_before = {j for j, st in before["kyushu-dc"].items() if st in LIVE}
        assert not kyushu_before & flexible, before  # the flexible jobs wait for cheaper hours

        t0 = time.time()
        r = c.post("/v1/grid/demand-response", headers=bearer(tok["kyuden-td"]), json={
            "direction": "上げ", "area": "kyushu", "power_mw": 0.004, "start": now.isoformat(),
            "end": (now + pd.Timedelta(hours=2)).isoformat(), "response_deadline_s": 300})
        client_s = time.time() - t0
        assert r.status_code == 201, r.text
        dr = r.json()
        print(f"\n上げDR Kyushu 0.004 MW: committed {dr['committed_mw']} MW; request → decision "
              f"{dr['decided_in_s']:.3f} s, request → last command {dr['reaction_s']:.3f} s "
              f"(round trip seen by the client {client_s:.3f} s)")
        assert dr["status"] == "committed" and dr["committed_mw"] == pytest.approx(0.004)
        assert 0 < dr["decided_in_s"] <= dr["reaction_s"] <= client_s

        # the decision: flexible jobs started on or moved to Kyushu, nothing else touched
        plan = c.get("/v1/plan", headers=bearer(tok["noc"])).json()
        assert plan["trigger"] == "demand_response"
        to_kyushu = {a["job_id"] for a in plan["actions"]
                     if a["kind"] in ("start", "migrate") and a["site"] == "kyushu-dc" and a["outcome"] == "applied"}
        assert to_kyushu and to_kyushu <= flexible
        assert not {a["job_id"] for a in plan["actions"]} & set(bound)

        # squeue shows it: the Kyushu cluster runs the new work, enough GPUs for the commitment
        deadline = time.monotonic() + 60
        while True:
            now_q = squeue(lab)
            running_kyushu = {j for j, st in now_q["kyushu-dc"].items() if st == "RUNNING"}
            if to_kyushu <= running_kyushu:
                break
            assert time.monotonic() < deadline, now_q
            time.sleep(0.3)
        assert running_kyushu <= flexible | kyushu_before
        mw_per_gpu = throttled_mw_per_gpu(load_fleet(fleet_file).site("kyushu-dc"), 1.0)
        added_gpus = 2 * len(running_kyushu - kyushu_before)
        assert added_gpus * mw_per_gpu >= dr["committed_mw"] - 1e-9
        # residency-bound jobs stay where they were, running, and never reach Kyushu
        for job_id, home in bound.items():
            assert now_q[home][job_id] == "RUNNING"
            assert live_sites(lab, job_id) == [home]
        # each job is live on at most one cluster
        for job_id in flexible | set(bound):
            assert len(live_sites(lab, job_id)) <= 1
        # and the tenant sees where the job runs and why
        moved = min(to_kyushu)
        seen = c.get(f"/v1/jobs/{moved}", headers=bearer(tok[owner[moved]])).json()
        assert seen["reason"].endswith(")") and "kyushu-dc" in seen["reason"]


# --- kill the service in the middle of a move --------------------------------------------------
def _serve(fleet: Path, sites: Path, state: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "WATTBIT_ADMIN_TOKEN": ADMIN_TOKEN,
           "PYTHONPATH": os.pathsep.join([str(Path(wattbit.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "wattbit.cli", "serve", "--port", str(port), "--fleet", str(fleet),
            "--slurm", str(sites), "--state-dir", str(state), "--tick-s", "2", "--horizon-slots", "16",
            "--lightpath-setup-s", "0"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"service did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_kill_during_a_move_loses_nothing_and_runs_nothing_twice(lab, setup):
    fleet_file, sites_file = setup
    state, log = sites_file.parent / "state", sites_file.parent / "service.log"
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    proc = _serve(fleet_file, sites_file, state, port, log)
    try:
        api = httpx.Client(base_url=url, timeout=30)
        tenant = api.post("/v1/tokens", json={"role": "tenant", "subject": "acme"}, headers=bearer(ADMIN_TOKEN)).json()["token"]
        noc = api.post("/v1/tokens", json={"role": "operator", "subject": "noc"}, headers=bearer(ADMIN_TOKEN)).json()["token"]
        now = pd.Timestamp.now(tz="UTC")
        # urgent (0.6 h of slack), may run in Tokyo or Kansai only, a 150 GB checkpoint (~10 s move)
        job = api.post("/v1/jobs", headers=bearer(tenant), json={
            "kind": "training", "gpus": 2, "runtime_h": 2.0, "deadline": (now + pd.Timedelta(hours=2.6)).isoformat(),
            "allowed_areas": ["tokyo", "kansai"], "checkpoint_gb": 150.0}).json()
        job_id = job["job_id"]
        deadline = time.monotonic() + 60
        while True:  # running, with work credited (the controller moves only jobs that have state)
            seen = api.get(f"/v1/jobs/{job_id}", headers=bearer(tenant)).json()
            if seen["status"] == "running" and seen["done_gpu_h"] > 0:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.3)
        source = seen["site"]
        destination = ({"tokyo-dc", "kansai-dc"} - {source}).pop()
        progress = lab.clusters[source].storage_dir / job_id / "ckpt" / "progress_ms"
        deadline = time.monotonic() + 20
        while not (progress.exists() and int(progress.read_text() or 0) >= 1000):  # some work to keep
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.2)
        r = api.put(f"/v1/fleet/sites/{source}", json={"in_service": False, "note": "drill"}, headers=bearer(noc))
        assert r.status_code == 200, r.text
        # the move is decided by that turn or by a periodic one that already saw the site out
        events = api.get(f"/v1/jobs/{job_id}/events", headers=bearer(tenant)).json()
        moves = [e for e in events if e["action"] == "migrate"]
        assert moves and moves[0]["site"] == destination and moves[0]["outcome"] == "applied", events
        assert moves[0]["transfer_s"] > 5
        # wait until the job has stopped at the source (checkpoint written), then kill the service
        deadline = time.monotonic() + 30
        while live_sites(lab, job_id):
            assert time.monotonic() < deadline, squeue(lab)
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert live_sites(lab, job_id) == []  # mid-move: checkpoint in flight, nothing runs
        saved_ms = int(progress.read_text())
        assert saved_ms > 0

        proc = _serve(fleet_file, sites_file, state, port, log)
        deadline = time.monotonic() + 90
        while True:
            where = live_sites(lab, job_id)
            assert len(where) <= 1, f"job {job_id} live on {where}"
            if where == [destination] and squeue(lab)[destination][job_id] == "RUNNING":
                break
            assert time.monotonic() < deadline, (squeue(lab), log.read_text()[-2000:])
            time.sleep(0.2)
        for _ in range(10):  # and it stays single
            assert live_sites(lab, job_id) == [destination]
            time.sleep(0.2)
        out = "".join(p.read_text() for p in (lab.clusters[destination].storage_dir / job_id).glob("slurm-*.out"))
        deadline = time.monotonic() + 10
        while f"from {saved_ms} ms" not in out and time.monotonic() < deadline:
            time.sleep(0.2)
            out = "".join(p.read_text() for p in (lab.clusters[destination].storage_dir / job_id).glob("slurm-*.out"))
        assert f"from {saved_ms} ms" in out  # resumed from the checkpoint taken at the source
        deadline = time.monotonic() + 20
        while True:
            seen = api.get(f"/v1/jobs/{job_id}", headers=bearer(tenant)).json()
            if (seen["status"], seen["site"]) == ("running", destination):
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.3)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
