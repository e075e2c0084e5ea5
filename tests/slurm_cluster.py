"""A real one-node Slurm cluster for the tests: Debian's slurmctld, slurmd and munge, configured under a temporary
folder (state, spool, logs) on ports of its own, started for the test session and stopped after it. Needs root
(munged and slurmd run as system users) and the packages (`.ci/run` installs them when missing)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

PACKAGES = ("slurmctld", "slurmd", "sbatch", "munged")
CONTROLLER_PORT, NODE_PORT = 6917, 6918  # not Slurm's defaults: a real cluster on this host stays untouched


def unavailable() -> str | None:
    """Why a private cluster cannot start here (None: it can)."""
    if os.geteuid() != 0:
        return "starting a private Slurm cluster needs root (munged, slurmd)"
    missing = [name for name in PACKAGES if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} missing): "
                f"apt-get install slurmctld slurmd slurm-client munge")
    return None


def _config(folder: Path) -> str:
    host = socket.gethostname()
    memory = int(psutil.virtual_memory().total / 2**20 * 0.8)
    return "\n".join([
        "ClusterName=galaxytest", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={CONTROLLER_PORT}", f"SlurmdPort={NODE_PORT}",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "ReturnToService=2", "MinJobAge=600", "KillWait=20", "SchedulerParameters=sched_interval=2",
        f"NodeName={host} CPUs={os.cpu_count()} RealMemory={memory} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


def _munge() -> bool:
    """Start munged unless it runs; whether this session started it (and so stops it)."""
    if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
        return False
    for folder in ("/etc/munge", "/run/munge", "/var/lib/munge", "/var/log/munge"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "munge", "munge")
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"], check=True)
    return True


def _kill_from(pid_file: Path) -> None:
    try:
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


@contextmanager
def slurm_cluster(folder: Path) -> Iterator[dict[str, str]]:
    """A running cluster; yields the environment that points Slurm's commands at it (SLURM_CONF)."""
    for part in ("state", "spool"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder))
    started_munge = _munge()
    env = {"SLURM_CONF": str(conf)}
    full = {**os.environ, **env}
    subprocess.run(["/usr/sbin/slurmctld", "-f", str(conf)], check=True, env=full)
    subprocess.run(["/usr/sbin/slurmd", "-f", str(conf)], check=True, env=full)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=full)
            if "idle" in done.stdout:
                break
            time.sleep(0.5)
        else:
            log = (folder / "slurmctld.log").read_text()[-2000:]
            raise RuntimeError(f"the test cluster's node is not idle after 60 s: {log}")
        yield env
    finally:
        subprocess.run(["scancel", "--user", "root"], capture_output=True, env=full)
        for daemon in ("slurmd", "slurmctld"):
            _kill_from(folder / f"{daemon}.pid")
        if started_munge:
            subprocess.run(["pkill", "-x", "munged"], capture_output=True)
