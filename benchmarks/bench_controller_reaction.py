"""How fast the control plane answers a demand-response request on real Slurm clusters.

Starts three single-node Slurm clusters (tokyo, kansai, kyushu; 16 fake GPUs each) and the
control plane as its own process (``wattbit serve`` over HTTP on 127.0.0.1), books jobs for two
tenants, then posts demand-response requests for Kyushu, alternately 上げ and 下げ, and reports:

* request → decision and request → last command issued, measured inside the service from the
  moment the request reached it (``decided_in_s``, ``reaction_s`` of each answer);
* the round trip the grid operator sees (request sent → answer received; the answer is sent after
  the last command, so this bounds "request → last command" from the operator's side).

Needs root and the Debian packages slurmctld, slurmd, slurm-client and munge.

    sudo PYTHONPATH=src python benchmarks/bench_controller_reaction.py [--rounds 10] [--jobs 12]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

import wattbit
from wattbit.control.slurm_local import LocalSlurm, free_ports
from wattbit.scenarios import load_fleet

SITES = ("tokyo-dc", "kansai-dc", "kyushu-dc")
ADMIN = "wb_bench-admin-" + "0" * 24


def _serve(work: Path, fleet: Path, sites: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "WATTBIT_ADMIN_TOKEN": ADMIN,
           "PYTHONPATH": os.pathsep.join([str(Path(wattbit.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    with open(work / "service.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "wattbit.cli", "serve", "--port", str(port),
                                 "--fleet", str(fleet), "--slurm", str(sites), "--state-dir", str(work / "state"),
                                 "--tick-s", "600", "--lightpath-setup-s", "0"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"service did not start; see {work / 'service.log'}")


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, round(q * (len(values) - 1)))]


def main(rounds: int, n_jobs: int) -> None:
    if os.geteuid() != 0:
        raise SystemExit("needs root: local Slurm clusters start slurmd, which launches jobs as their owner")
    work = Path(tempfile.mkdtemp(prefix="wattbit-bench-"))
    t = time.perf_counter()
    with LocalSlurm(SITES, gpus=16) as lab:
        print(f"3 Slurm clusters (munged + slurmctld + slurmd each) accepting jobs in "
              f"{time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        fleet = lab.write_fleet_toml(work / "fleet.toml", load_fleet("japan-9"))
        sites = lab.write_sites_toml(work / "sites.toml")
        port = free_ports(1)[0]
        proc = _serve(work, fleet, sites, port)
        print(f"service answering on :{port} in {time.perf_counter() - t:.2f} s")
        try:
            api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

            def h(token: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {token}"}

            tok = {name: api.post("/v1/tokens", json={"role": role, "subject": name}, headers=h(ADMIN)).json()["token"]
                   for name, role in (("acme", "tenant"), ("globex", "tenant"), ("kyuden-td", "grid-operator"),
                                      ("noc", "operator"))}
            now = pd.Timestamp.now(tz="UTC")
            for i in range(n_jobs):
                tenant = ("acme", "globex")[i % 2]
                areas = [["tokyo"], ["kansai"], ["tokyo", "kansai", "kyushu"], ["kansai", "kyushu"]][i % 4]
                r = api.post("/v1/jobs", headers=h(tok[tenant]), json={
                    "kind": "training", "gpus": 1 + i % 2, "runtime_h": 3.0, "allowed_areas": areas,
                    "checkpoint_gb": 20.0, "deadline": (now + pd.Timedelta(hours=4 if i % 3 == 0 else 24)).isoformat()})
                r.raise_for_status()
            api.post("/v1/plan", headers=h(tok["noc"])).raise_for_status()
            time.sleep(3)
            decided, reaction, rtt, actions, committed = [], [], [], [], []
            for k in range(rounds):
                start = pd.Timestamp.now(tz="UTC")
                body = {"request_id": f"bench-{k}", "direction": "up" if k % 2 == 0 else "down", "area": "kyushu",
                        "power_mw": 0.004, "start": start.isoformat(),
                        "end": (start + pd.Timedelta(seconds=4)).isoformat()}
                t0 = time.perf_counter()
                r = api.post("/v1/grid/demand-response", json=body, headers=h(tok["kyuden-td"]))
                rtt.append(time.perf_counter() - t0)
                r.raise_for_status()
                dr = r.json()
                decided.append(dr["decided_in_s"])
                reaction.append(dr["reaction_s"])
                committed.append(dr["committed_mw"] or 0.0)
                plan = api.get("/v1/plan", headers=h(tok["noc"])).json()
                actions.append(sum(a["outcome"] == "applied" for a in plan["actions"]))
                print(f"  {body['direction']:>4} DR {k}: committed {committed[-1]:.4f} MW, {actions[-1]} actions applied, "
                      f"decision {decided[-1] * 1e3:.0f} ms, last command {reaction[-1] * 1e3:.0f} ms, "
                      f"round trip {rtt[-1] * 1e3:.0f} ms")
                time.sleep(max(0.0, 4.5 - (time.perf_counter() - t0)))  # let the window close
            for name, values in (("request → decision", decided), ("request → last command", reaction),
                                 ("operator round trip", rtt)):
                print(f"{name:>24}: median {statistics.median(values) * 1e3:.0f} ms, "
                      f"p90 {_pct(values, 0.9) * 1e3:.0f} ms, max {max(values) * 1e3:.0f} ms  (n = {len(values)})")
            print(f"actions applied per answer: median {statistics.median(actions):.0f}, max {max(actions)}; "
                  f"{n_jobs} jobs booked, 3 clusters, 2 cores")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=12)
    args = parser.parse_args()
    main(args.rounds, args.jobs)
