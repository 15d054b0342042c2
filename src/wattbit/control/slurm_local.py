"""Throwaway Slurm clusters on this machine: one single-node cluster per site, fake GPUs.

For tests, demos and benchmarks of the control plane when no real cluster is at hand. Each
cluster is a real ``slurmctld`` + ``slurmd`` pair (Slurm 22.05 from Debian 12) with its own
ports, state directory and job-id range; one ``munged`` with a private key and socket serves all
of them. The node claims ``gpus`` GPUs through gres, backed by ``/dev/null`` symlinks, so jobs
that ask ``--gres=gpu:N`` get ``CUDA_VISIBLE_DEVICES`` like on a real GPU node.

The recipe (configuration, ``SlurmdParameters=config_overrides``, fast scheduler intervals,
``cred_expire=10``) is the one measured in ``docs/service.md`` ("Local clusters"): three clusters
are accepting jobs in well under a second. Needs root (slurmd launches jobs as their user) and
the Debian packages ``slurmctld slurmd slurm-client munge``.

Everything is started with its pid recorded, and :meth:`LocalSlurm.stop` ends exactly those
processes (SIGTERM, then SIGKILL after a grace period), also after a failed start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from wattbit.domain._validate import integer
from wattbit.errors import ExecutorError, InvalidInput

__all__ = ["LocalCluster", "LocalSlurm", "free_ports", "missing_slurm_binaries"]

_BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "munged", "mungekey")


def missing_slurm_binaries() -> list[str]:
    """Names of the programs a local cluster needs that are not on PATH (empty when all are).

    >>> isinstance(missing_slurm_binaries(), list)
    True
    """
    extra = os.pathsep.join(("/usr/sbin", "/sbin"))
    path = os.environ.get("PATH", "") + os.pathsep + extra
    return [b for b in _BINARIES if shutil.which(b, path=path) is None]


def _which(name: str) -> str:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise ExecutorError(
            f"program {name!r} not found; install it: apt-get install slurmctld slurmd slurm-client munge"
        )
    return found


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports that were free on 127.0.0.1 a moment ago.

    >>> len(set(free_ports(3)))
    3
    """
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


@dataclass(frozen=True, slots=True)
class LocalCluster:
    """One running single-node cluster.

    name : cluster name (the site it stands for);  conf : its slurm.conf;  node : node name;
    gpus : GPUs the node offers [-];  ctld_port, slurmd_port : TCP ports on 127.0.0.1;
    storage_dir : the site's checkpoint storage.
    """

    name: str
    conf: Path
    node: str
    gpus: int
    ctld_port: int
    slurmd_port: int
    storage_dir: Path

    def env(self) -> dict[str, str]:
        """Environment for Slurm client commands aimed at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def _slurm_name(site: str) -> str:
    """Slurm cluster names: lowercase letters, digits and '_' only (slurmctld rejects '-').

    >>> _slurm_name("kyushu-dc")
    'kyushu_dc'
    """
    return "".join(c if c.isalnum() else "_" for c in site.lower())


@dataclass
class LocalSlurm:
    """Several single-node Slurm clusters and one munged, under a fresh directory.

    sites : one cluster per name;  gpus : GPUs per node [-];  cpus : CPUs the node claims [-];
    root : parent directory (default: the system temp dir).

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with LocalSlurm(["tokyo-dc", "kyushu-dc"]) as lab:
            lab.clusters["kyushu-dc"].env()   # SLURM_CONF for sbatch/squeue
    """

    sites: Sequence[str]
    gpus: int = 8
    cpus: int = 64
    root: Path | None = None
    clusters: dict[str, LocalCluster] = field(default_factory=dict, init=False)
    dir: Path | None = field(default=None, init=False)
    _procs: list[subprocess.Popen] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.sites:
            raise InvalidInput("local slurm: no sites given; name at least one (e.g. ['tokyo-dc'])")
        if len(set(self.sites)) != len(self.sites):
            raise InvalidInput(f"local slurm: site names repeat in {list(self.sites)}")
        for name in ("gpus", "cpus"):
            setattr(self, name, integer("local slurm", name, getattr(self, name), low=1))

    # --- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout_s: float = 30.0) -> dict[str, LocalCluster]:
        """Start munged and every cluster; return the clusters once each node is idle."""
        missing = missing_slurm_binaries()
        if missing:
            raise ExecutorError(
                f"local slurm: programs not found: {', '.join(missing)}; "
                "install them: apt-get install slurmctld slurmd slurm-client munge"
            )
        if os.geteuid() != 0:
            raise ExecutorError("local slurm: needs root (slurmd launches jobs as their owner)")
        # world-traversable (munged refuses sockets under directories it cannot reach)
        self.dir = Path(tempfile.mkdtemp(prefix="wattbit-slurm-", dir=self.root))
        self.dir.chmod(0o755)
        try:
            munge_socket = self._start_munge()
            ports = free_ports(2 * len(self.sites))
            for i, site in enumerate(self.sites):
                self.clusters[site] = self._write_cluster(
                    i, site, munge_socket, ports[2 * i], ports[2 * i + 1]
                )
            for c in self.clusters.values():
                self._spawn(c.conf.parent / "log" / "slurmctld.stdout",
                            [_which("slurmctld"), "-D", "-i", "-f", str(c.conf)], c.env())
            deadline = time.monotonic() + timeout_s
            for c in self.clusters.values():
                self._wait(lambda c=c: "UP" in self._run(c, ["scontrol", "ping"]), deadline,
                           f"slurmctld of {c.name!r}", c)
                self._spawn(c.conf.parent / "log" / "slurmd.stdout",
                            [_which("slurmd"), "-D", "-N", c.node, "-f", str(c.conf)], c.env())
            for c in self.clusters.values():
                self._wait(lambda c=c: self._run(c, ["sinfo", "-h", "-N", "-o", "%t"]).strip() == "idle",
                           deadline, f"node {c.node!r} of {c.name!r}", c)
        except BaseException:
            self.stop()
            raise
        return self.clusters

    def stop(self, grace_s: float = 10.0) -> None:
        """End every process this lab started (SIGTERM, wait, SIGKILL) and remove its directory."""
        procs, self._procs = self._procs, []
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        # jobs run in their own sessions under slurmstepd; sweep any left behind in our tree
        self._kill_leftover_jobs()
        if self.dir is not None and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        self.clusters = {}

    def write_sites_toml(self, path: Path) -> Path:
        """Write the clusters as a sites file for :func:`wattbit.control.slurm.load_slurm_sites`
        (and ``wattbit serve --slurm``)."""
        lines = []
        for site, c in self.clusters.items():
            lines += [f'[sites."{site}"]', f'slurm_conf = "{c.conf}"', f'storage_dir = "{c.storage_dir}"', ""]
        path = Path(path)
        path.write_text("\n".join(lines))
        return path

    def write_fleet_toml(self, path: Path, like) -> Path:
        """Write a fleet whose sites are these clusters: area, location, PUE and accelerator from
        the same-named sites of ``like`` (a :class:`~wattbit.domain.Fleet`), ``gpus`` GPUs each
        and an IT power cap (1 MW) that never binds at that size."""
        lines = [f'name = "local-{len(self.sites)}"', ""]
        for site in self.sites:
            s = like.site(site)
            lines += ["[[sites]]", f'name = "{site}"', f'area = "{s.area}"', f"lat = {s.lat}", f"lon = {s.lon}",
                      f"gpu_count = {self.gpus}", "it_power_max_mw = 1.0", f"pue = {s.pue}",
                      f'accelerator = "{s.accelerator}"', ""]
        path = Path(path)
        path.write_text("\n".join(lines))
        return path

    # --- pieces -------------------------------------------------------------------------------
    def _spawn(self, log: Path, argv: list[str], env: dict[str, str], user: str | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=env, user=user)
        self._procs.append(p)

    def _start_munge(self) -> Path:
        assert self.dir is not None
        mdir = self.dir / "munge"
        mdir.mkdir(mode=0o755)
        key = mdir / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--keyfile", str(key)], check=True,
                       capture_output=True)
        shutil.chown(mdir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        sock = mdir / "munge.socket"
        self._spawn(mdir / "munged.stdout", [
            _which("munged"), "-F", f"--socket={sock}", f"--key-file={key}",
            f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'munged.log'}",
            f"--seed-file={mdir / 'munged.seed'}",
        ], dict(os.environ), user="munge")
        deadline = time.monotonic() + 10.0
        while not sock.exists():
            if time.monotonic() > deadline:
                log = (mdir / "munged.log").read_text(errors="replace") if (mdir / "munged.log").exists() else ""
                raise ExecutorError(f"local slurm: munged did not create {sock} within 10 s; log: {log[-500:]}")
            time.sleep(0.01)
        return sock

    def _write_cluster(self, i: int, site: str, munge_socket: Path, ctld_port: int,
                       slurmd_port: int) -> LocalCluster:
        assert self.dir is not None
        name = _slurm_name(site)
        cdir = self.dir / name
        for sub in ("state", "spool", "log", "fakegpu", "storage"):
            (cdir / sub).mkdir(parents=True)
        for g in range(self.gpus):
            (cdir / "fakegpu" / f"nvidia{g}").symlink_to("/dev/null")
        node = f"{name}n1"
        conf = cdir / "slurm.conf"
        conf.write_text(f"""\
ClusterName={name}
FirstJobId={1_000_000 * (i + 1)}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket},cred_expire=10
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={cdir / 'state'}
SlurmdSpoolDir={cdir / 'spool'}/%n
SlurmctldPidFile={cdir / 'slurmctld.pid'}
SlurmdPidFile={cdir / 'slurmd-%n.pid'}
SlurmctldLogFile={cdir / 'log' / 'slurmctld.log'}
SlurmdLogFile={cdir / 'log' / 'slurmd-%n.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
GresTypes=gpu
JobCompType=jobcomp/filetxt
JobCompLoc={cdir / 'log' / 'jobcomp.txt'}
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
KillWait=5
JobRequeue=1
SlurmdParameters=config_overrides
NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=64000 Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        (cdir / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={node} Name=gpu File={cdir / 'fakegpu'}/nvidia[0-{self.gpus - 1}]\n"
        )
        return LocalCluster(site, conf, node, self.gpus, ctld_port, slurmd_port, cdir / "storage")

    @staticmethod
    def _run(c: LocalCluster, argv: list[str]) -> str:
        r = subprocess.run(argv, env=c.env(), capture_output=True, text=True, timeout=10, check=False)
        return r.stdout

    def _wait(self, ready, deadline: float, what: str, c: LocalCluster) -> None:
        while True:
            try:
                if ready():
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                log = c.conf.parent / "log"
                tails = []
                for f in sorted(log.glob("*")):
                    tails.append(f"--- {f.name}\n{f.read_text(errors='replace')[-800:]}")
                raise ExecutorError(f"local slurm: {what} not ready in time\n" + "\n".join(tails))
            time.sleep(0.03)

    def _kill_leftover_jobs(self) -> None:
        """Kill job processes (slurmstepd and children) whose command line names our directory."""
        if self.dir is None:
            return
        marker = str(self.dir).encode()
        own = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == own:
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in cmdline or marker in environ:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

