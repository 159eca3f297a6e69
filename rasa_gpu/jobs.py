"""Queued trainings: a job per submission, kept in the bot's state folder (`.rasa-gpu/jobs/<name>/`: the script,
the job's output, `job.json`), and what its queue says about it now. Every queue is asked through the Queue
interface (queues/base.py) only.

The training itself is a normal `rasa-gpu train` on the node: it records its run in the bot's history like a local
one, with its own host. A job's cause of failure is the `error:` line that rasa-gpu printed on the node.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import queues
from .errors import SettingsError
from .project import BotProject
from .queues import JobState, Prepared, Queue, QueueError, Request

if TYPE_CHECKING:
    from .queues.slurm import SlurmJob, SlurmOptions

JOBS_DIR = "jobs"
RECORD_FILE = "job.json"
J = TypeVar("J")


@dataclass(frozen=True)
class JobRecord:
    scheduler: str
    job_id: str
    name: str  # the job's folder under .rasa-gpu/jobs/
    submitted_at: str  # UTC, ISO 8601

    @property
    def ref(self) -> str:
        return f"{self.scheduler}:{self.job_id}"


@dataclass(frozen=True)
class JobView:
    """A job as `rasa-gpu jobs` shows it."""

    record: JobRecord
    state: str
    node: str
    gpus: str
    reason: str  # why it waits, or why it failed
    queued_seconds: float | None = None
    run_seconds: float | None = None


def jobs_dir(project: BotProject) -> Path:
    return project.state_dir / JOBS_DIR


def prepare(queue: Queue[J], request: Request, *, dry_run: bool = False) -> Prepared[J]:
    """The job for `request`, checked, with a new folder name in the bot's state folder (nothing written yet)."""
    name = "DRY-RUN" if dry_run else f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    return queue.prepare(request, jobs_dir(request.project) / name)


def submit(queue: Queue[J], prepared: Prepared[J]) -> JobRecord:
    """Make the job's folder, let the queue write what it needs there and submit it; returns at once. A refused
    job leaves no folder behind."""
    project, folder = prepared.request.project, prepared.folder
    project.make_owned_dirs(folder)
    try:
        job_id = queue.submit(prepared)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    record = JobRecord(
        queue.name, job_id, folder.name, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    project.write_owned(folder / RECORD_FILE, json.dumps(asdict(record), indent=2) + "\n")
    return record


def submit_slurm(
    project: BotProject,
    options: SlurmOptions,
    train_args: tuple[str, ...] = (),
    environment: Mapping[str, str] | None = None,
) -> tuple[JobRecord, SlurmJob]:
    """A Slurm job with these options; the record and the job. Secrets in
    `environment` reach the node through sbatch's environment; the script is the owner's alone (0600)."""
    from .queues.slurm import SlurmQueue

    queue = SlurmQueue(options)
    prepared = prepare(queue, Request(project, train_args=train_args, environment=dict(environment or {})))
    return submit(queue, prepared), prepared.job


def queue_of(record: JobRecord) -> Queue[Any]:
    return queues.named(record.scheduler)


def records(project: BotProject) -> list[JobRecord]:
    """This bot's jobs, oldest first."""
    found = []
    for path in sorted(jobs_dir(project).glob(f"*/{RECORD_FILE}")):
        try:
            found.append(JobRecord(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue  # a job folder being written, or not ours
    return found


def find(project: BotProject, job_id: str) -> JobRecord:
    for record in records(project):
        if job_id in (record.job_id, record.ref):
            return record
    raise SettingsError(f"no job {job_id} of {project.name}; `rasa-gpu jobs {project.root}` lists its jobs")


def queue_wait(ref: str) -> float | None:
    """Seconds a job (scheduler:id) waited between its submission and its start, as its scheduler says."""
    scheduler, _, job_id = ref.partition(":")
    if scheduler not in queues.NAMES or not job_id:
        return None
    try:
        state = queues.named(scheduler).states([job_id]).get(job_id)
    except (QueueError, SettingsError, OSError, ValueError, subprocess.SubprocessError):
        return None  # the history goes without it; the training does not fail for it
    if state is None or state.submitted is None or state.started is None:
        return None
    return float(max(0, state.started - state.submitted))


def output_path(project: BotProject, record: JobRecord) -> Path:
    return queue_of(record).logs(jobs_dir(project) / record.name, record.job_id)


def state_of(record: JobRecord) -> JobState | None:
    """What the job's queue says about it now (None: it has forgotten the job)."""
    return queue_of(record).states([record.job_id]).get(record.job_id)


def cause(project: BotProject, record: JobRecord) -> str:
    """The one line rasa-gpu printed on the node when the training failed ('' if none)."""
    try:
        lines = output_path(project, record).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line[len("error: ") :] for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else ""


def view(project: BotProject) -> list[JobView]:
    """Every job of the bot with what its scheduler says now (a job it forgot: done or failed by its output)."""
    mine = records(project)
    states: dict[tuple[str, str], JobState] = {}
    for scheduler in sorted({r.scheduler for r in mine}):
        asked = [r.job_id for r in mine if r.scheduler == scheduler]
        found = queues.named(scheduler).states(asked)
        states.update({(scheduler, job_id): state for job_id, state in found.items()})
    now = time.time()
    shown = []
    for record in mine:
        state = states.get((record.scheduler, record.job_id))
        failed_because = cause(project, record)
        if state is None:
            label = (
                "failed"
                if failed_because
                else ("done" if output_path(project, record).exists() else "unknown")
            )
            shown.append(JobView(record, label, node="", gpus="", reason=failed_because))
            continue
        queued = None
        if state.submitted:
            queued = (
                (state.started or now) - state.submitted
                if state.state != "pending"
                else now - state.submitted
            )
        run = None
        if state.started and state.state != "pending":
            run = (state.ended or now) - state.started
        label = state.state
        if label == "done" and (failed_because or (state.exit_code or 0) != 0):
            label = "failed"
        reason = failed_because if label == "failed" else state.reason
        shown.append(JobView(record, label, state.node, state.gpus, reason, queued, run))
    return shown


def follow(path: Path, done: Callable[[], bool], poll: float = 0.25) -> Iterator[str]:
    """The lines of a job's output as they are written, until done() says the job ended and all is read."""
    position = 0
    pending = ""
    while True:
        finished = done()
        try:
            with path.open("r", encoding="utf-8", errors="replace") as handle:
                handle.seek(position)
                chunk = handle.read()
                position = handle.tell()
        except FileNotFoundError:
            chunk = ""
        pending += chunk
        *lines, pending = pending.split("\n")
        yield from lines
        if finished and not chunk:
            if pending:
                yield pending
            return
        time.sleep(poll)
