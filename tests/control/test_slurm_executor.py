"""The Slurm executor against real single-node clusters (slurmctld + slurmd + munged, fake GPUs)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pandas as pd
import pytest

from wattbit.control.slurm import SlurmExecutor, SlurmSite
from wattbit.control.slurm_local import LocalSlurm, missing_slurm_binaries
from wattbit.control.state import JobStatus
from wattbit.domain import Cancel, Fleet, Job, JobKind, Migrate, Reroute, Start, Suspend, Throttle
from wattbit.errors import ExecutorError, ResidencyViolation
from wattbit.scenarios import load_fleet

pytestmark = pytest.mark.slurm

SITES = ("tokyo-dc", "kansai-dc", "kyushu-dc")


def _skip_reason() -> str | None:
    missing = missing_slurm_binaries()
    if missing:
        return f"Slurm not installed ({', '.join(missing)} missing): apt-get install slurmctld slurmd slurm-client munge"
    if os.geteuid() != 0:
        return "local Slurm clusters need root (slurmd launches jobs as their owner)"
    return None


@pytest.fixture(scope="module")
def lab():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with LocalSlurm(SITES, gpus=8) as lab:
        yield lab


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    japan = load_fleet("japan-9")
    return Fleet("three", tuple(japan.site(s) for s in SITES))


@pytest.fixture
def executor(lab, fleet, tmp_path):
    sites = {s: SlurmSite(s, c.conf, c.storage_dir) for s, c in lab.clusters.items()}
    ex = SlurmExecutor(fleet, sites, tmp_path / "executor")
    yield ex
    for c in lab.clusters.values():  # leave the clusters empty for the next test
        subprocess.run(["scancel", "--user=root"], env=c.env(), check=False)
    for c in lab.clusters.values():
        settle(c)


def _slurm(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False).stdout.strip()


STUCK_COMPLETING_S = 10.0
"""A node still completing a cancelled job after this long is reset (down, then resumed): a job
stopped by hand and then cancelled has been seen to keep a node completing past the tests' waits."""


def settle(c, timeout_s: float = 60.0) -> None:
    """Wait until a cluster holds no job and its node is idle, so that the next test finds all of
    its GPUs free; a node that a cancelled job left drained or down is put back in service, and one
    stuck completing is reset. A cluster that does not settle fails the test that needs it."""
    start = time.monotonic()
    deadline = start + timeout_s
    state = jobs = ""
    while time.monotonic() < deadline:
        state = _slurm(c.env(), "sinfo", "-h", "-N", "-o", "%t")
        jobs = _slurm(c.env(), "squeue", "-h", "-o", "%i %T")
        if any(s in state for s in ("drain", "down")):
            _slurm(c.env(), "scontrol", "update", f"nodename={c.node}", "state=resume")
        elif state == "idle" and not jobs:
            return
        elif state.startswith("comp") and time.monotonic() - start > STUCK_COMPLETING_S:
            _slurm(c.env(), "scontrol", "update", f"nodename={c.node}", "state=down", "reason=stuck-completing")
            start = time.monotonic()  # (resumed on the next turn, as a down node is)
        time.sleep(0.2)
    raise AssertionError(f"cluster {c.node}: not idle after {timeout_s:g} s (node {state!r}, jobs {jobs!r})")


def make_service() -> Job:
    """An hour of online inference for Kansai's users, which Kansai or Kyushu may serve."""
    now = pd.Timestamp.now(tz="UTC")
    return Job(job_id=f"t{uuid.uuid4().hex[:10]}", tenant="acme", kind=JobKind.ONLINE_INFERENCE, gpus=1,
               runtime_h=1.0, release=now, deadline=now + pd.Timedelta(hours=1), home_site="kansai-dc",
               allowed_areas=frozenset({"kansai", "kyushu"}), user_area="kansai", rtt_budget_s=0.05)


def silenced(sites: dict[str, SlurmSite], lab, site: str) -> dict[str, SlurmSite]:
    """``sites`` with ``site``'s client configuration pointing nowhere: that cluster stops answering."""
    return {**sites, site: SlurmSite(site, lab.dir / "no-such" / "slurm.conf", sites[site].storage_dir)}


def make_job(kind=JobKind.TRAINING, gpus=2, runtime_h=10.0, areas=("tokyo", "kansai", "kyushu")) -> Job:
    return Job(job_id=f"t{uuid.uuid4().hex[:10]}", tenant="acme", kind=kind, gpus=gpus,
               runtime_h=runtime_h, release=pd.Timestamp.now(tz="UTC"), deadline=None,
               home_site="tokyo-dc", allowed_areas=frozenset(areas), checkpoint_gb=10.0)


def wait_for(ex: SlurmExecutor, job_id: str, ok, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        seen = ex.observe().get(job_id)
        if seen is not None and ok(seen):
            return seen
        if time.monotonic() > deadline:
            where = ""
            if seen is not None and seen.site in ex.sites:  # what Slurm says there, for the report
                env = {**os.environ, "SLURM_CONF": str(ex.sites[seen.site].slurm_conf)}
                where = (f"; at {seen.site}, jobs (id state reason): "
                         f"{_slurm(env, 'squeue', '-h', '-o', '%i %T %r')!r}, node (state reason): "
                         f"{_slurm(env, 'sinfo', '-h', '-N', '-o', '%t %E')!r}")
            raise AssertionError(f"job {job_id}: last observed {seen}{where}")
        time.sleep(0.2)


def squeue(lab, site: str, job_id: str) -> list[tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-t", "all", f"--name=wattbit:{job_id}", "-o", "%i|%T"],
                         env=lab.clusters[site].env(), capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("|")) for line in out.splitlines()]


def active_copies(lab, job_id: str) -> list[str]:
    live = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING")
    return [s for s in SITES for _, st in squeue(lab, s, job_id) if st in live]


def job_log(lab, site: str, job_id: str, expect: str, timeout_s: float = 10.0) -> str:
    """The job's output at ``site`` once it contains ``expect`` (or the last read, on timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = "".join(p.read_text() for p in (lab.clusters[site].storage_dir / job_id).glob("slurm-*.out"))
        if expect in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def wait_progress(lab, site: str, job_id: str, at_least_ms: int = 1000, timeout_s: float = 20.0) -> None:
    """Wait until the job has saved some progress (its script is up and working)."""
    deadline = time.monotonic() + timeout_s
    while progress_ms(lab, site, job_id) < at_least_ms:
        assert time.monotonic() < deadline, f"job {job_id} made no progress at {site}"
        time.sleep(0.2)


def progress_ms(lab, site: str, job_id: str) -> int:
    p = lab.clusters[site].storage_dir / job_id / "ckpt" / "progress_ms"
    return int(p.read_text()) if p.exists() else 0


def test_start_submits_with_gres_and_runs(executor, lab):
    job = make_job(gpus=3)
    executor.apply(Start(job.job_id, "kyushu-dc"), job)
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    assert seen.site == "kyushu-dc"
    assert seen.native_id.startswith("kyushu-dc:3")  # kyushu's job ids start at 3,000,000
    show = subprocess.run(["scontrol", "show", "job", seen.native_id.split(":")[1]],
                          env=lab.clusters["kyushu-dc"].env(), capture_output=True, text=True, check=True).stdout
    assert "gpu:3" in show
    assert active_copies(lab, job.job_id) == ["kyushu-dc"]


def test_residency_is_checked_before_submit_and_move(executor, lab):
    job = make_job(areas=("tokyo",))
    with pytest.raises(ResidencyViolation, match="kyushu"):
        executor.apply(Start(job.job_id, "kyushu-dc"), job)
    assert squeue(lab, "kyushu-dc", job.job_id) == []
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    with pytest.raises(ResidencyViolation, match="refusing to move"):
        executor.apply(Migrate(job.job_id, "tokyo-dc", "kansai-dc", transfer_s=0.0), job)
    seen = executor.observe()[job.job_id]
    assert (seen.status, seen.site) == (JobStatus.RUNNING, "tokyo-dc")


def test_checkpoint_suspend_then_resume_keeps_progress(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    wait_progress(lab, "tokyo-dc", job.job_id)
    executor.apply(Suspend(job.job_id, checkpoint=True), job)
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.SUSPENDED)
    assert seen.site == "tokyo-dc"
    saved = progress_ms(lab, "tokyo-dc", job.job_id)
    assert saved >= 1000
    time.sleep(1.5)
    assert progress_ms(lab, "tokyo-dc", job.job_id) == saved  # nothing runs while held
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING, timeout_s=30)
    assert f"from {saved} ms" in job_log(lab, "tokyo-dc", job.job_id, f"from {saved} ms")


def test_suspend_without_checkpoint_releases_the_gpus(executor, lab):
    job = make_job(kind=JobKind.BATCH_INFERENCE)
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    executor.apply(Suspend(job.job_id, checkpoint=True), job)  # not checkpointable: starts over
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.PENDING)
    assert seen.site == "kansai-dc"
    assert squeue(lab, "kansai-dc", job.job_id)[0][1] == "PENDING"
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING, timeout_s=30)


def test_slurm_suspend_by_hand_is_resumed(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    subprocess.run(["scontrol", "suspend", seen.native_id.split(":")[1]],
                   env=lab.clusters["kansai-dc"].env(), check=True)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.SUSPENDED)
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)


def test_a_held_job_starts_elsewhere_with_its_checkpoint(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    wait_progress(lab, "tokyo-dc", job.job_id)
    executor.apply(Suspend(job.job_id, checkpoint=True), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.SUSPENDED)
    saved = progress_ms(lab, "tokyo-dc", job.job_id)
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    assert seen.site == "kansai-dc"
    assert active_copies(lab, job.job_id) == ["kansai-dc"]
    assert f"from {saved} ms" in job_log(lab, "kansai-dc", job.job_id, f"from {saved} ms")


def test_throttle_sets_duty(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc", duty_pu=1.0), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    executor.apply(Throttle(job.job_id, 0.25), job)
    seen = executor.observe()[job.job_id]
    assert seen.duty_pu == pytest.approx(0.25)
    duty_file = lab.clusters["tokyo-dc"].storage_dir / job.job_id / "ckpt" / "duty"
    assert float(duty_file.read_text()) == pytest.approx(0.25)


def test_cancel(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    executor.apply(Cancel(job.job_id), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.CANCELLED)
    assert active_copies(lab, job.job_id) == []


def test_a_cancelled_job_is_not_started_moved_or_rerouted_again(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    executor.apply(Cancel(job.job_id), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.CANCELLED)
    for action in (Start(job.job_id, "kansai-dc"), Reroute(job.job_id, "kansai-dc"),
                   Migrate(job.job_id, "tokyo-dc", "kansai-dc", 0.0)):
        with pytest.raises(ExecutorError, match="was cancelled"):
            executor.apply(action, job)
    assert active_copies(lab, job.job_id) == []
    assert executor.observe()[job.job_id].status is JobStatus.CANCELLED


def test_a_finished_job_is_done_and_its_ledger_retires(executor, lab):
    job = make_job(runtime_h=2 / 3600)
    executor.apply(Start(job.job_id, "kyushu-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.DONE, timeout_s=30)
    ledger = executor.state_dir / "jobs" / f"{job.job_id}.json"
    assert ledger.exists()
    executor.clock = lambda: time.time() + 2 * 3600  # long after it finished
    executor.observe()
    assert not ledger.exists() and (executor.state_dir / "jobs" / "finished" / ledger.name).exists()
    assert executor.observe()[job.job_id].status is JobStatus.DONE  # Slurm still lists it


def test_migrate_stops_with_checkpoint_and_resumes_at_destination(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    wait_progress(lab, "tokyo-dc", job.job_id)
    t0 = time.time()
    executor.apply(Migrate(job.job_id, "tokyo-dc", "kyushu-dc", transfer_s=2.0), job)
    seen = executor.observe()[job.job_id]
    assert seen.status in (JobStatus.RUNNING, JobStatus.MIGRATING)  # stopping at the source
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.MIGRATING)
    assert seen.site == "kyushu-dc"
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    assert seen.site == "kyushu-dc"
    submits = [c for c in executor.commands if c.site == "kyushu-dc" and c.argv[0] == "sbatch"]
    assert submits and submits[-1].at_s - t0 >= 2.0  # not before the APN move time
    assert active_copies(lab, job.job_id) == ["kyushu-dc"]
    saved = progress_ms(lab, "tokyo-dc", job.job_id)
    assert saved >= 1000
    assert f"from {saved} ms" in job_log(lab, "kyushu-dc", job.job_id, f"from {saved} ms")


def test_a_move_survives_a_restart_of_the_executor(executor, lab, fleet):
    job = make_job()
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    executor.apply(Migrate(job.job_id, "kansai-dc", "kyushu-dc", transfer_s=1.0), job)
    # the process dies here; a new one starts from the same state directory
    fresh = SlurmExecutor(fleet, executor.sites, executor.state_dir)
    seen = wait_for(fresh, job.job_id, lambda o: o.status is JobStatus.RUNNING and o.site == "kyushu-dc")
    for _ in range(5):  # stays single
        fresh.observe()
        assert active_copies(lab, job.job_id) == ["kyushu-dc"]
        time.sleep(0.2)
    assert seen.native_id.startswith("kyushu-dc:")


def test_a_second_copy_is_cancelled(executor, lab):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    # someone (or a crash at the wrong moment) submits the same job on another cluster
    subprocess.run(["sbatch", f"--job-name=wattbit:{job.job_id}", "--output=/dev/null", "--wrap", "sleep 600"],
                   env=lab.clusters["kansai-dc"].env(), check=True, capture_output=True)
    assert sorted(active_copies(lab, job.job_id)) == ["kansai-dc", "tokyo-dc"]
    seen = executor.observe()[job.job_id]
    assert seen.site == "tokyo-dc"
    deadline = time.monotonic() + 10
    while active_copies(lab, job.job_id) != ["tokyo-dc"]:
        assert time.monotonic() < deadline, active_copies(lab, job.job_id)
        time.sleep(0.2)


def test_reroute_makes_before_it_breaks(executor, lab):
    job = make_service()
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    executor.apply(Reroute(job.job_id, "kyushu-dc"), job)
    seen = wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING and o.site == "kyushu-dc")
    assert seen.site == "kyushu-dc"
    cmds = [(c.site, c.argv[0]) for c in executor.commands]
    assert cmds.index(("kyushu-dc", "sbatch")) < cmds.index(("kansai-dc", "scancel"))


def test_start_elsewhere_while_running_is_refused(executor):
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    with pytest.raises(ExecutorError, match="use Migrate"):
        executor.apply(Start(job.job_id, "kansai-dc"), job)


def test_an_unreachable_cluster_loses_nothing(executor, lab, fleet):
    job = make_job()
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    good = dict(executor.sites)
    # kansai's controller stops answering (here: its client config points nowhere)
    executor.sites = silenced(good, lab, "kansai-dc")
    seen = executor.observe()[job.job_id]
    assert executor.unreachable == {"kansai-dc"} and "kansai-dc" in executor.last_errors
    assert (seen.status, seen.site) == (JobStatus.RUNNING, "kansai-dc")  # as last seen, not lost
    with pytest.raises(ExecutorError, match="does not answer"):
        executor.apply(Migrate(job.job_id, "kansai-dc", "kyushu-dc", transfer_s=0.0), job)
    executor.sites = good
    seen = executor.observe()[job.job_id]
    assert executor.unreachable == frozenset() and (seen.status, seen.site) == (JobStatus.RUNNING, "kansai-dc")
    assert active_copies(lab, job.job_id) == ["kansai-dc"]


def test_a_restarted_executor_starts_nothing_elsewhere_while_its_site_is_silent(executor, lab, fleet):
    """After a restart the new process has no records of a silent cluster: a job there may still
    run, so it is started nowhere else until that cluster answers."""
    job = make_job()
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    good = dict(executor.sites)
    fresh = SlurmExecutor(fleet, silenced(good, lab, "kansai-dc"), executor.state_dir)
    fresh.observe()
    assert fresh.unreachable == {"kansai-dc"}
    with pytest.raises(ExecutorError, match="its site 'kansai-dc' does not answer"):
        fresh.apply(Start(job.job_id, "kyushu-dc"), job)
    assert active_copies(lab, job.job_id) == ["kansai-dc"]


def test_a_reroute_that_cannot_submit_leaves_the_job_where_it_runs(executor, lab):
    """The ledger is written ahead of sbatch; when sbatch fails it goes back, or the job, once it
    ends where it ran, would be taken for one never started and run again."""
    job = make_service()
    executor.apply(Start(job.job_id, "kansai-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    good = dict(executor.sites)
    executor.sites = silenced(good, lab, "kyushu-dc")
    with pytest.raises(ExecutorError):
        executor.apply(Reroute(job.job_id, "kyushu-dc"), job)
    executor.sites = good
    assert executor._ledger(job.job_id)["site"] == "kansai-dc"
    seen = executor.observe()[job.job_id]
    assert (seen.status, seen.site) == (JobStatus.RUNNING, "kansai-dc")


def test_a_move_the_source_refuses_leaves_no_stop_mark(executor, lab, monkeypatch):
    """When the source does not take the stop signal, the job stays and runs on; the 'stopped for a
    move' mark comes off its comment, or a later real failure would be read as the executor's stop."""
    job = make_job()
    executor.apply(Start(job.job_id, "tokyo-dc"), job)
    wait_for(executor, job.job_id, lambda o: o.status is JobStatus.RUNNING)
    run = executor._run

    def refuse_the_signal(site, argv, *args, **kw):
        if "--signal=TERM" in argv:
            raise ExecutorError(f"site {site!r}: scancel refused (as a failing cluster may)")
        return run(site, argv, *args, **kw)

    monkeypatch.setattr(executor, "_run", refuse_the_signal)
    with pytest.raises(ExecutorError, match="scancel refused"):
        executor.apply(Migrate(job.job_id, "tokyo-dc", "kansai-dc", transfer_s=1.0), job)
    monkeypatch.setattr(executor, "_run", run)
    comment = subprocess.run(["squeue", "-h", f"--name=wattbit:{job.job_id}", "-o", "%k"],
                             env=lab.clusters["tokyo-dc"].env(), capture_output=True, text=True,
                             check=True).stdout
    assert "stop" not in comment, comment
    seen = executor.observe()[job.job_id]
    assert (seen.status, seen.site) == (JobStatus.RUNNING, "tokyo-dc")
