"""Training as a Slurm job: the sbatch script, submitting it, and asking Slurm how the job is doing.

The job runs rasa-gpu itself on the node (`python -m rasa_gpu train`, the same Python as here, which must be on the
cluster's shared filesystem like the bot folder): the node's training follows every rule of a local `train` (the
bot owner's files, Rasa's cache, the atomic move into models/, no container left on SIGTERM). The GPUs Slurm gives
the job (`--gres=gpu:N`; Slurm sets CUDA_VISIBLE_DEVICES) are passed to Docker by id, because a container started
through the Docker daemon runs outside the job's cgroup. `scancel` sends the job SIGTERM; rasa-gpu on the node then
stops and removes its container and leaves no partial model. The image reaches the nodes through the registry in
the bot's settings (`registry`: pushed once with `rasa-gpu push`, pulled on the node); without one each node builds
it once.

Nothing here prints; failures are SchedulerError with one line.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import RasaGpuError

#: The job states rasa-gpu shows; Slurm's own names map onto them.
STATE_NAMES = {
    "PENDING": "pending",
    "CONFIGURING": "pending",
    "RUNNING": "running",
    "COMPLETING": "running",
    "COMPLETED": "done",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "PREEMPTED": "pending",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
}
#: A file the job looks for first: if the node cannot see it, the bot folder is not on a filesystem it shares.
SUBMITTED_MARK = "submitted"


class SchedulerError(RasaGpuError):
    """Slurm is not installed, its controller does not answer, or it refused the job (e.g. no such partition)."""


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    account: str | None = None
    time: str | None = None  # Slurm's time format: minutes, HH:MM:SS, D-HH:MM
    gpus: int = 1
    cpus: int | None = None
    memory: str | None = None  # e.g. 16G


@dataclass(frozen=True)
class SlurmJob:
    """One training to submit: the bot, the job's folder (on the shared filesystem), what `rasa-gpu train` gets."""

    bot: Path
    job_dir: Path
    options: SlurmOptions
    train_args: tuple[str, ...] = ()
    python: str = sys.executable

    @property
    def script_path(self) -> Path:
        return self.job_dir / "job.sbatch"

    @property
    def output_path(self) -> Path:
        return self.job_dir / "output.log"


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # pending | running | done | failed | cancelled | unknown
    slurm_state: str
    reason: str = ""
    node: str = ""
    gpus: str = ""  # the GPUs the job was given (e.g. gpu:fake:1(IDX:0)) or, before and after, asked for
    exit_code: int | None = None
    submitted: int | None = None  # Unix times, when Slurm says
    started: int | None = None
    ended: int | None = None


def render(job: SlurmJob) -> str:
    """The sbatch script: readable, kept next to the job's output in the bot's state folder."""
    o = job.options
    directives = [f"--job-name=rasa-gpu-{job.bot.name}", f"--output={job.output_path}", f"--chdir={job.bot}"]
    directives += [f"--partition={o.partition}"] if o.partition else []
    directives += [f"--account={o.account}"] if o.account else []
    directives += [f"--time={o.time}"] if o.time else []
    directives += [f"--gres=gpu:{o.gpus}"] if o.gpus else []
    directives += [f"--cpus-per-task={o.cpus}"] if o.cpus else []
    directives += [f"--mem={o.memory}"] if o.memory else []
    gpu_args = '--gpus "$CUDA_VISIBLE_DEVICES"' if o.gpus else "--gpu off"
    train = " ".join(
        [
            shlex.quote(job.python),
            "-m rasa_gpu train",
            shlex.quote(str(job.bot)),
            '--no-wait --job "slurm:$SLURM_JOB_ID"',
            gpu_args,
        ]
        + [shlex.quote(a) for a in job.train_args]
    )
    mark = shlex.quote(str(job.job_dir / SUBMITTED_MARK))
    lines = [
        "#!/bin/bash",
        f"# rasa-gpu {__version__}: train {job.bot.name} on a Slurm node. Submitted with `rasa-gpu submit --to slurm`;",
        "# `rasa-gpu jobs` shows it, `rasa-gpu jobs cancel ID` ends it (Slurm's SIGTERM: the container goes too).",
        *(f"#SBATCH {d}" for d in directives),
        "set -euo pipefail",
        "# The bot folder must be on a filesystem this node shares with the machine that submitted the job.",
        f"if [ ! -e {mark} ]; then",
        f"  echo \"error: the bot folder {job.bot} is not on this node's filesystem (put it on the cluster's "
        'shared filesystem)" >&2',
        "  exit 2",
        "fi",
        f"if [ ! -x {shlex.quote(job.python)} ]; then",
        f"  echo \"error: rasa-gpu's Python {job.python} is not on this node (install rasa-gpu on the shared "
        'filesystem)" >&2',
        "  exit 2",
        "fi",
        "# Slurm writes this output file as the submitting user: it belongs to the bot's owner, like the rest of it.",
        f'[ "$(id -u)" != 0 ] || chown "$(stat -c %u:%g {shlex.quote(str(job.bot))})" '
        f"{shlex.quote(str(job.output_path))} 2>/dev/null || true",
        "# Output goes to the log file line by line, so `jobs logs -f` and `submit --wait` show it as it comes.",
        "export PYTHONUNBUFFERED=1",
        "# The GPUs Slurm gave this job, by id: a container started through Docker runs outside the job's cgroup.",
        f"exec {train}",
        "",
    ]
    return "\n".join(lines)


def check_installed() -> None:
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise SchedulerError(
            "Slurm is not installed here (no sbatch or squeue on PATH): run rasa-gpu on a login node of the cluster, "
            "or install Slurm's client (Debian: slurm-client)"
        )


def submit(job: SlurmJob) -> str:
    """Submit the job's script (written by the caller, with the SUBMITTED_MARK beside it); Slurm's job id, at once."""
    check_installed()
    proc = _run(["sbatch", "--parsable", str(job.script_path)])
    if proc.returncode != 0:
        raise SchedulerError(_explain(proc.stderr or proc.stdout, job.options))
    return proc.stdout.strip().split(";")[0]


def states(job_ids: Sequence[str]) -> dict[str, JobState]:
    """What Slurm says about these jobs: the queue for jobs still in it, `scontrol show job` for ones that ended
    lately. Jobs Slurm has forgotten are missing from the result."""
    if not job_ids:
        return {}
    check_installed()
    proc = _run(["squeue", "--json", "--jobs", ",".join(job_ids), "--states", "all"])
    found: dict[str, JobState] = {}
    if proc.returncode == 0:
        for raw in json.loads(proc.stdout).get("jobs", []):
            state = _from_json(raw)
            found[state.job_id] = state
    elif "Invalid job id" not in proc.stderr:
        raise SchedulerError(_explain(proc.stderr, SlurmOptions()))
    for job_id in job_ids:
        if job_id not in found:
            remembered = _from_scontrol(job_id)
            if remembered is not None:
                found[job_id] = remembered
    return found


def cancel(job_id: str) -> None:
    check_installed()
    proc = _run(["scancel", job_id])
    if proc.returncode != 0:
        raise SchedulerError(f"scancel {job_id} failed: {_first_line(proc.stderr)}")


# ---- Slurm's answers -------------------------------------------------------------------------------------------------


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _explain(text: str, options: SlurmOptions) -> str:
    line = _first_line(text)
    lowered = text.lower()
    if "invalid partition" in lowered:
        return (
            f"Slurm has no partition '{options.partition}' (sbatch: {line}); `sinfo` lists them: set --partition or "
            "partition in [slurm] of rasa-gpu.toml"
        )
    if "unable to contact slurm controller" in lowered or "connection refused" in lowered:
        return (
            f"the Slurm controller does not answer ({line}); is slurmctld running (`scontrol ping`)? rasa-gpu "
            "submitted nothing"
        )
    if "invalid account" in lowered:
        return f"Slurm refused the account '{options.account}' ({line}); `sacctmgr show assoc` lists yours"
    if "requested node configuration is not available" in lowered:
        return (
            f"no node of this partition has what the job asks for ({line}): fewer --gpus, --cpus or --memory"
        )
    return f"Slurm refused the job: {line}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no output"


def _number(value: object, *, zero: bool = False) -> int | None:
    """squeue --json numbers: plain, or {"set": bool, "number": n} (Slurm 23+). A plain 0 is "not set" for times
    (zero=False) and a real 0 for exit codes."""
    if isinstance(value, dict):
        return int(value["number"]) if value.get("set") else None
    if isinstance(value, (int, float)) and (value or zero):
        return int(value)
    return None


def _from_json(raw: dict) -> JobState:
    slurm_state = raw.get("job_state")
    if isinstance(slurm_state, list):  # Slurm 23+: a list of flags
        slurm_state = slurm_state[0] if slurm_state else "UNKNOWN"
    slurm_state = str(slurm_state or "UNKNOWN")
    exit_code = raw.get("exit_code")
    code = (
        _number(exit_code.get("return_code"), zero=True)
        if isinstance(exit_code, dict)
        else _number(exit_code, zero=True)
    )
    return JobState(
        job_id=str(raw.get("job_id")),
        state=STATE_NAMES.get(slurm_state, "unknown"),
        slurm_state=slurm_state,
        reason=str(raw.get("state_reason") or "").replace("None", ""),
        node=str(raw.get("nodes") or ""),
        gpus=_gpus(raw),
        exit_code=code,
        submitted=_number(raw.get("submit_time")),
        started=_number(raw.get("start_time")),
        ended=_number(raw.get("end_time")),
    )


def _gpus(raw: dict) -> str:
    given = raw.get("gres_detail") or []
    if given:
        return ",".join(str(g) for g in given)
    asked = str(raw.get("tres_per_node") or raw.get("tres_per_job") or "")
    return ",".join(
        part.removeprefix("gres:").removeprefix("gres/") for part in asked.split(",") if "gpu" in part
    )


def _from_scontrol(job_id: str) -> JobState | None:
    proc = _run(["scontrol", "show", "job", "--oneliner", job_id])
    if proc.returncode != 0:
        return None
    fields = dict(part.split("=", 1) for part in proc.stdout.split() if "=" in part)
    slurm_state = fields.get("JobState", "UNKNOWN")
    code = fields.get("ExitCode", "").split(":")[0]
    return JobState(
        job_id=job_id,
        state=STATE_NAMES.get(slurm_state, "unknown"),
        slurm_state=slurm_state,
        reason=fields.get("Reason", "").replace("None", ""),
        node=fields.get("NodeList", "").replace("(null)", ""),
        exit_code=int(code) if code.isdigit() else None,
    )
