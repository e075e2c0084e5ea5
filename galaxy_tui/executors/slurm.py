"""Slurm as an executor, through sbatch, squeue, sacct and scancel themselves.

Why not submitit: it pickles a Python callable into its own folder and follows jobs through its own files,
while here the run folder is already the protocol (status.json, events.jsonl, checkpoints) that the UI on the
login node reads exactly as for a local run. A plain batch script, written into the run folder as slurm.sh,
is what a cluster's users and admins can read, resubmit and debug by hand, and it needs nothing installed.

An attempt is one job: slurm.json holds its id. While the job lives, its state comes from Slurm (pending,
with Slurm's reason); once Slurm says it ended, the first reader settles it: the `exited` event, and a final
state the worker could not write (a time limit, a preemption, a node failure: `killed` with Slurm's reason;
a job Slurm no longer knows: `lost`).
"""

from __future__ import annotations

import getpass
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from galaxy_tui.atomic import atomic_write_bytes, atomic_write_json, locked, read_json
from galaxy_tui.errors import GalaxyError
from galaxy_tui.events import FINAL_STATES, append_event
from galaxy_tui.registry import SlurmSettings

RECORD = "slurm.json"
TRAIN_WORKER = "galaxy_tui.train.worker"
SCRIPT = "slurm.sh"
QUEUE_CACHE_S = 2.0
LIVE_JOB_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
                   "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "SPECIAL_EXIT", "STOPPED")
KILLED_BECAUSE = {
    "TIMEOUT": "Slurm ended the job at its time limit",
    "PREEMPTED": "Slurm preempted the job",
    "NODE_FAIL": "the job's node failed",
    "BOOT_FAIL": "the job's node failed to boot",
    "DEADLINE": "the job reached its deadline",
    "OUT_OF_MEMORY": "the job ran out of the memory Slurm allows it (raise mem)",
    "CANCELLED": "the job was cancelled in Slurm (scancel, not galaxy-tui stop)",
}


class Told(NamedTuple):
    """A run's state as its executor tells it."""
    state: str
    message: str
    reason: str = ""  # why a job waits in Slurm's queue ("Resources", "Priority")


@dataclass(frozen=True)
class Job:
    id: str
    state: str    # Slurm's: PENDING, RUNNING, COMPLETED, TIMEOUT, ...
    reason: str   # why it waits or ended ("Resources", "Priority", "TimeLimit", "None")


# ---------------------------------------------------------------- asking Slurm

def _slurm(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise GalaxyError(f"{argv[0]} is not on PATH: is this a Slurm login node? Set [workspace] executor = "
                          f"\"local\" to run here, or load Slurm's module (e.g. `module load slurm`).")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GalaxyError(f"`{' '.join(argv)}` did not answer in {timeout:.0f} s: is Slurm's controller "
                          f"up (sinfo)?") from None


_queue_cache: tuple[float, dict[str, Job] | None] = (-QUEUE_CACHE_S, None)


def queue() -> dict[str, Job] | None:
    """This user's jobs Slurm still remembers (finished ones for MinJobAge), by id; None: Slurm did not
    answer. One squeue every QUEUE_CACHE_S at most, however many runs are read."""
    global _queue_cache
    when, jobs = _queue_cache
    if time.monotonic() - when < QUEUE_CACHE_S:
        return jobs
    jobs = _ask_queue()
    _queue_cache = (time.monotonic(), jobs)  # a silent controller too: asked again only after the pause
    return jobs


def _ask_queue() -> dict[str, Job] | None:
    try:
        done = _slurm(["squeue", "-h", "--states=all", "-u", getpass.getuser(), "-o", "%i|%T|%r"], timeout=10)
    except GalaxyError:
        return None
    if done.returncode != 0:
        return None
    jobs = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            jobs[parts[0]] = Job(parts[0], parts[1], parts[2])
    return jobs


def forget_queue() -> None:
    """The next read asks Slurm again (after a submit, a cancel)."""
    global _queue_cache
    _queue_cache = (-QUEUE_CACHE_S, None)


def accounting(job_id: str) -> Job | None:
    """The job as Slurm's accounting remembers it (clusters keep it long after squeue forgets); None when
    accounting is off or has no such job."""
    try:
        done = _slurm(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State,Reason"])
    except GalaxyError:
        return None
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0] == job_id:
            return Job(job_id, parts[1].split()[0], parts[2] if len(parts) > 2 else "")  # "CANCELLED by 0"
    return None


def find_job(job_id: str) -> Job | None | bool:
    """The job, None if Slurm knows no such job, False if Slurm did not answer."""
    jobs = queue()
    if jobs is None:
        return False
    return jobs.get(job_id) or accounting(job_id)


# ---------------------------------------------------------------- submitting

def tasks_per_node(settings: SlurmSettings, devices: int) -> int:
    """One task per GPU; on CPU-only nodes, the experiment's devices (processes) per node."""
    return settings.gpus_per_node or max(1, devices // settings.nodes)


def job_script(run_dir: Path, mode: str, settings: SlurmSettings, devices: int, workspace: Path,
               env: dict[str, str], module: str = TRAIN_WORKER) -> str:
    """The batch script of one attempt: `module` (the training worker, or another job's) on `run_dir`, as
    many tasks as the run has ranks."""
    tasks = tasks_per_node(settings, devices)
    options = [f"--job-name=galaxy-tui:{run_dir.name}", f"--output={run_dir / 'worker.log'}", "--open-mode=append",
               f"--nodes={settings.nodes}", f"--ntasks-per-node={tasks}",
               "--requeue" if settings.requeue else "--no-requeue"]
    for flag, value in (("--gpus-per-node", settings.gpus_per_node), ("--cpus-per-task", settings.cpus_per_task),
                        ("--mem", settings.mem), ("--time", settings.time), ("--partition", settings.partition),
                        ("--account", settings.account)):
        if value:
            options.append(f"{flag}={value}")
    world = settings.nodes * tasks
    task = [sys.executable, "-m", "galaxy_tui.executors.slurm_task", str(run_dir), "--mode", mode,
            *(["--module", module] if module != TRAIN_WORKER else [])]
    srun = ["srun", "--kill-on-bad-exit=1", *(["--label"] if world > 1 else []), *task]
    lines = ["#!/bin/bash", f"# galaxy-tui run {run_dir.name}: {world} task(s); resubmit with sbatch {SCRIPT}",
             *(f"#SBATCH {option}" for option in [*options, *settings.extra]),
             f"cd {shlex.quote(str(workspace))}",
             *(f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())),
             f"rm -f {shlex.quote(str(run_dir / 'ranks'))}/failure-rank*.json "
             f"{shlex.quote(str(run_dir / 'ranks' / 'images-ready.json'))}",
             "exec " + shlex.join(srun)]
    return "\n".join(lines) + "\n"


def submit(run_dir: Path, mode: str, attempt: int, settings: SlurmSettings, devices: int, workspace: Path,
           env: dict[str, str], module: str = TRAIN_WORKER) -> str:
    """Write slurm.sh into the job's folder, sbatch it, record the job in slurm.json; the job's id."""
    script = run_dir / SCRIPT
    atomic_write_bytes(script, job_script(run_dir, mode, settings, devices, workspace, env, module).encode())
    done = _slurm(["sbatch", "--parsable", str(script)], timeout=60)
    if done.returncode != 0:
        said = " / ".join(done.stderr.strip().splitlines()[-3:]) or f"exit status {done.returncode}"
        raise GalaxyError(f"sbatch refused the job ({said}); check [workspace.slurm] (partition, account, time) "
                          f"in experiments.toml, or run `sbatch {script}` to see Slurm's whole answer.")
    job_id = done.stdout.strip().split(";")[0]
    atomic_write_json(run_dir / RECORD, {"job_id": job_id, "attempt": attempt, "submitted": time.time(),
                                         "requeue": settings.requeue, "world": settings.nodes *
                                         tasks_per_node(settings, devices)})
    forget_queue()
    return job_id


# ---------------------------------------------------------------- following

def view(run_dir: Path, status: dict) -> Told | None:
    """(state, message) of a Slurm run as Slurm and the worker tell it together; None: status.json alone
    tells (the attempt is settled)."""
    record = read_json(run_dir / RECORD) or {}
    if record.get("settled") or not record.get("job_id"):
        return None
    written = str(status.get("state", "submitted"))
    job = find_job(str(record["job_id"]))
    if job is False:
        return Told(written, "Slurm does not answer (squeue failed): the state is the one last written")
    if job is not None and (job.state in LIVE_JOB_STATES or job.state == "PREEMPTED" and record.get("requeue")):
        if job.state == "PENDING" or job.state.startswith("REQUEUE") or job.state == "PREEMPTED":
            return Told("pending", f"waiting in Slurm's queue (job {job.id}): {job.reason}", job.reason)
        if written in ("submitted", "pending") or written in FINAL_STATES:  # started, the worker not yet
            return Told("queued", f"Slurm job {job.id} is {job.state.lower()} on its node; the worker is starting")
        return Told(written, str(status.get("message") or ""))
    return Told(*settle(run_dir, job))


def settle(run_dir: Path, job: Job | None) -> tuple[str, str]:
    """The attempt's job has ended (or Slurm forgot it): the `exited` event, and the final state the worker
    could not write. Once per attempt, whoever reads first."""
    with locked(run_dir / ".slurm-settle"):
        record = read_json(run_dir / RECORD) or {}
        status = read_json(run_dir / "status.json") or {}
        if record.get("settled"):
            return str(status.get("state")), str(status.get("message") or "")
        state, message = _final(status, record, job)
        append_event(run_dir / "events.jsonl", "exited", code=None, signal=None, attempt=record.get("attempt", 1),
                     slurm_job=record.get("job_id"), slurm_state=job.state if job else None)
        if state != status.get("state") or message != status.get("message"):
            append_event(run_dir / "events.jsonl", state, message=message)
            atomic_write_json(run_dir / "status.json", {**status, "state": state, "message": message,
                                                        "updated": time.time()}, in_place_fallback=True)
        atomic_write_json(run_dir / RECORD, {**record, "settled": True, "slurm_state": job.state if job else None})
    return state, message


def _final(status: dict, record: dict, job: Job | None) -> tuple[str, str]:
    written, said = str(status.get("state", "")), str(status.get("message") or "")
    resume = "; resume continues from the last checkpoint"
    if job is None:
        if written in FINAL_STATES:
            return written, said
        return "lost", (f"Slurm job {record.get('job_id')} is in neither squeue nor sacct and the worker wrote no "
                        f"final state; see worker.log")
    if job.state == "CANCELLED" and record.get("stop_requested"):
        return "stopped", said if written == "stopped" else "stopped before the worker began" + resume
    if job.state in KILLED_BECAUSE:
        reason = f", {job.reason}" if job.reason and job.reason != "None" else ""
        return "killed", f"{KILLED_BECAUSE[job.state]} ({job.state}{reason}){resume}"
    if written in FINAL_STATES:
        return written, said
    return "failed", f"Slurm job {job.id} ended {job.state} ({job.reason}) without a final state; see worker.log"


def cancel(run_dir: Path) -> str:
    """Stop the attempt's job: a running one gets SIGTERM in its tasks (the worker finishes its step,
    checkpoints and ends `stopped`; Slurm waits as long as that takes); a pending one leaves the queue;
    asked a second time, the job is cancelled outright."""
    record = read_json(run_dir / RECORD) or {}
    job_id = str(record.get("job_id") or "")
    if not job_id:
        raise GalaxyError(f"run {run_dir.name} has no Slurm job on record ({RECORD}); nothing to stop.")
    job = find_job(job_id)
    hard = bool(record.get("stop_requested")) or (isinstance(job, Job) and job.state == "PENDING")
    atomic_write_json(run_dir / RECORD, {**record, "stop_requested": True})
    done = _slurm(["scancel", job_id] if hard else ["scancel", "--signal=TERM", job_id])
    if done.returncode != 0:
        raise GalaxyError(f"scancel did not stop job {job_id}: {done.stderr.strip() or done.returncode}")
    forget_queue()
    append_event(run_dir / "events.jsonl", "stop_requested", slurm_job=job_id, hard=hard)
    return job_id
