"""One Slurm task of a job: `srun python -m galaxy_tui.executors.slurm_task RUN_DIR --mode MODE [--module M]`.

Gives the worker the variables torchrun would (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
MASTER_PORT) from Slurm's own (one task per GPU; rank 0's node hosts the rendezvous), then becomes the
worker. A job Slurm requeued (after a preemption) resumes from last.pt instead of starting again.
Stdlib only: the worker imports torch after the exec.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PORT_BASE, PORT_SPAN = 20000, 20000


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list ("gpu[01-04],gpu07" -> gpu01), as scontrol expands it."""
    try:
        done = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30)
        hosts = done.stdout.split()
        if done.returncode == 0 and hosts:
            return hosts[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return nodelist.split(",")[0].split("[")[0]  # a single plain host name


def torchrun_variables(environ: dict[str, str]) -> dict[str, str]:
    job = int(environ.get("SLURM_JOB_ID", "0"))
    tasks_per_node = environ.get("SLURM_NTASKS_PER_NODE", environ.get("SLURM_NTASKS", "1")).split("(")[0]
    return {"RANK": environ.get("SLURM_PROCID", "0"), "WORLD_SIZE": environ.get("SLURM_NTASKS", "1"),
            "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"), "LOCAL_WORLD_SIZE": tasks_per_node,
            "MASTER_ADDR": environ.get("MASTER_ADDR") or first_host(environ.get("SLURM_JOB_NODELIST", "localhost")),
            "MASTER_PORT": environ.get("MASTER_PORT") or str(PORT_BASE + job % PORT_SPAN)}


def mode_for(run_dir: Path, mode: str, environ: dict[str, str]) -> str:
    requeued = int(environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    if requeued and mode == "train" and (run_dir / "checkpoints" / "last.pt").exists():
        return "resume"
    return mode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="galaxy_tui.executors.slurm_task")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--module", default="galaxy_tui.train.worker",
                        help="the job's worker (another job than training takes only the folder)")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    environ.update(torchrun_variables(environ))
    worker = [sys.executable, "-m", args.module, str(args.run_dir)]
    if args.module == "galaxy_tui.train.worker":
        worker += ["--mode", mode_for(args.run_dir, args.mode, environ)]
    os.execve(sys.executable, worker, environ)
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
