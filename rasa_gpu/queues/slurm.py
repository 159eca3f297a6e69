"""Training as a Slurm job: the sbatch script, submitting it, and asking Slurm how the job is doing (SlurmQueue).

The job runs rasa-gpu itself on the node (`python -m rasa_gpu train`, the same Python as here, which must be on the
cluster's shared filesystem like the bot folder): the node's training follows every rule of a local `train` (the
bot owner's files, Rasa's cache, the atomic move into models/, no container left on SIGTERM). The GPUs Slurm gives
the job (`--gres=gpu:N`; Slurm sets CUDA_VISIBLE_DEVICES) are passed to Docker by id, because a container started
through the Docker daemon runs outside the job's cgroup. `scancel` sends the job SIGTERM; rasa-gpu on the node then
stops and removes its container and leaves no partial model. The image reaches the nodes through the registry in
the bot's settings (`registry`: pushed once with `rasa-gpu push`, pulled on the node); without one each node builds
it once.

What the bot's folder or settings hold never becomes shell or sbatch syntax. sbatch reads the `#SBATCH` lines
itself (src/sbatch/opt.c, _get_argument): it splits them at whitespace, ends them at `#`, takes a line holding
"hetjob" or "packjob" for the start of another job, and honours quotes and backslashes differently from one release
to the next (old ones know only `"`); nothing can carry a line break there. So only checked settings go on them (a
small alphabet, check_options), and the job's name and paths are sbatch's own arguments (argv, taken as they are:
--job-name, --chdir, --output), with --ignore-pbs so that no line of the body is read as a #PBS or #BSUB directive.
In the body each path is one shlex.quote'd assignment. Secrets (the package index URL with its login) are not
written at all: sbatch hands the environment of its process to the job (its default, --export=ALL), and the script
only checks that they arrived.

Nothing here prints; failures are QueueError or SettingsError with one line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import SettingsError
from .base import JobState, Prepared, Queue, QueueError, Request, Resources

if TYPE_CHECKING:
    from ..project import BotProject
    from ..settings import Settings

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
#: All an #SBATCH value may hold: nothing sbatch's parser reads as syntax (whitespace, quotes, backslashes, `#`),
#: nothing that ends a line, and not the words that start the next part of a heterogeneous job.
_SBATCH_WORD = re.compile(r"[A-Za-z0-9._:,-]+")
_HETJOB = re.compile(r"hetjob|packjob", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # a line break, or what shows as one
_NOT_IN_JOB_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
#: The options that go onto #SBATCH lines as text, with what each is (for messages).
_TEXT_OPTIONS = {
    "partition": "partition name",
    "account": "account name",
    "time": "time limit",
    "memory": "memory size",
}


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    account: str | None = None
    time: str | None = None  # Slurm's time format: minutes, HH:MM:SS, D-HH:MM
    gpus: int = 1
    cpus: int | None = None
    memory: str | None = None  # e.g. 16G

    @classmethod
    def from_settings(cls, settings: Settings) -> SlurmOptions:
        """The [slurm] and [resources] settings with the flags on top (their types and the one-line rule are
        settings.py's), checked for an #SBATCH line (check_options), each named as the user gave it ("--partition",
        "rasa-gpu.toml: [slurm] partition")."""
        resources = Resources.from_settings(settings)
        options = cls(
            partition=settings.slurm_partition,
            account=settings.slurm_account,
            time=resources.time,
            gpus=resources.gpus,
            cpus=resources.cpus,
            memory=resources.memory,
        )
        table = {"partition": "slurm", "account": "slurm"}
        return check_options(options, lambda key: settings.subject(f"{table.get(key, 'resources')}_{key}"))


def check_options(
    options: SlurmOptions, subject: Callable[[str], str] = lambda key: f"[slurm] {key}"
) -> SlurmOptions:
    """The one rule for what goes onto an #SBATCH line, whoever built the options: a text setting is one word of
    letters, digits and . _ - : , (no space, quote, backslash, # or line break: nothing sbatch's parser reads) and
    neither "hetjob" nor "packjob"; GPUs and CPUs are whole numbers. A SettingsError starts with `subject(key)`."""
    for key, noun in _TEXT_OPTIONS.items():
        value = getattr(options, key)
        if value is None:
            continue
        if not isinstance(value, str) or not _SBATCH_WORD.fullmatch(value):
            raise SettingsError(
                f"{subject(key)} must be a Slurm {noun} of letters, digits and . _ - : , only (no spaces, quotes, "
                f"# or line breaks), not {value!r}"
            )
        hetjob = _HETJOB.search(value)
        if hetjob:
            raise SettingsError(
                f"{subject(key)} holds {hetjob.group()!r}, which sbatch may read as the start of another job in "
                f"the script; use another {noun}, not {value!r}"
            )
    for key, least in (("gpus", 0), ("cpus", 1)):
        value = getattr(options, key)
        if value is None and key == "cpus":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SettingsError(f"{subject(key)} must be a whole number, at least {least}, not {value!r}")
    return options


@dataclass(frozen=True)
class SlurmJob:
    """One training to submit: the bot, the job's folder (on the shared filesystem), what `rasa-gpu train` gets."""

    bot: Path
    job_dir: Path
    options: SlurmOptions
    train_args: tuple[str, ...] = ()
    python: str = sys.executable
    #: Secrets the node's `rasa-gpu train` reads from its environment (RASA_GPU_PIP_INDEX_URL: an index URL with its
    #: login): set in the environment of sbatch only, which hands it to the job; never in the script or an argv.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def script_path(self) -> Path:
        return self.job_dir / "job.sbatch"

    @property
    def output_path(self) -> Path:
        return self.job_dir / "output.log"

    @property
    def name(self) -> str:
        """Slurm's job name: the bot's folder name reduced to characters that need no quoting anywhere (squeue,
        scontrol's key=value lines, an #SBATCH line)."""
        return "rasa-gpu-" + _NOT_IN_JOB_NAME.sub("_", self.bot.name)

    def sbatch_args(self) -> list[str]:
        """sbatch's arguments for this job: the ones that come from the bot's folder, as argv elements, which
        sbatch takes as they are (an #SBATCH line it parses itself); no #PBS or #BSUB line read."""
        return [
            "--ignore-pbs",
            f"--job-name={self.name}",
            f"--chdir={os.path.abspath(self.bot)}",
            f"--output={_slurm_filename(self.output_path)}",
        ]


def render(job: SlurmJob) -> str:
    """The sbatch script: readable, kept next to the job's output in the bot's state folder. Only rasa-gpu's own
    words and checked settings are on its #SBATCH and comment lines; each path is one shlex.quote'd assignment in
    its body, used as "$bot" (an expansion, never evaluated again); secrets are only named."""
    o = check_options(job.options)
    _check_job(job)
    directives: list[str] = []
    directives += [f"--partition={o.partition}"] if o.partition else []
    directives += [f"--account={o.account}"] if o.account else []
    directives += [f"--time={o.time}"] if o.time else []
    directives += [f"--gres=gpu:{o.gpus}"] if o.gpus else []
    directives += [f"--cpus-per-task={o.cpus}"] if o.cpus else []
    directives += [f"--mem={o.memory}"] if o.memory else []
    gpu_args = '--gpus "$CUDA_VISIBLE_DEVICES"' if o.gpus else "--gpu off"
    train = " ".join(
        ['"$python" -m rasa_gpu train "$bot" --no-wait --job "slurm:$SLURM_JOB_ID"', gpu_args]
        + [shlex.quote(a) for a in job.train_args]
    )
    secrets = [
        "# Secrets come from the job's environment (sbatch hands it the submitter's), never from this file."
    ]
    for name in sorted(job.environment):
        secrets += [
            f'if [ -z "${{{name}:-}}" ]; then',
            f'  echo "error: {name} did not reach this node: sbatch passes the environment of whoever submits '
            'unless SBATCH_EXPORT or --export say otherwise (unset SBATCH_EXPORT)" >&2',
            "  exit 2",
            "fi",
        ]
    lines = [
        "#!/bin/bash",
        f"# rasa-gpu {__version__}: a training on a Slurm node. `rasa-gpu submit --to slurm` submitted it as",
        "# `sbatch --ignore-pbs --job-name=NAME --chdir=BOT --output=THIS-FOLDER/output.log job.sbatch`: no name",
        "# or path of the bot's goes on an #SBATCH line.",
        "# `rasa-gpu jobs` shows it, `rasa-gpu jobs cancel ID` ends it (Slurm's SIGTERM: the container goes too).",
        *(f"#SBATCH {d}" for d in directives),
        "set -euo pipefail",
        f"bot={shlex.quote(os.path.abspath(job.bot))}",
        f"job_dir={shlex.quote(os.path.abspath(job.job_dir))}",
        f"python={shlex.quote(job.python)}",
        "# The bot folder must be on a filesystem this node shares with the machine that submitted the job.",
        f'if [ ! -e "$job_dir/{SUBMITTED_MARK}" ]; then',
        "  echo \"error: the bot folder $bot is not on this node's filesystem (put it on the cluster's shared "
        'filesystem)" >&2',
        "  exit 2",
        "fi",
        'if [ ! -x "$python" ]; then',
        "  echo \"error: rasa-gpu's Python $python is not on this node (install rasa-gpu on the shared "
        'filesystem)" >&2',
        "  exit 2",
        "fi",
        *(secrets if job.environment else []),
        "# Slurm writes this output file as the submitting user: it belongs to the bot's owner, like the rest of it.",
        '[ "$(id -u)" != 0 ] || chown "$(stat -c %u:%g "$bot")" "$job_dir/output.log" 2>/dev/null || true',
        "# Output goes to the log file line by line, so `jobs logs -f` and `submit --wait` show it as it comes.",
        "export PYTHONUNBUFFERED=1",
        "# The GPUs Slurm gave this job, by id: a container started through Docker runs outside the job's cgroup.",
        f"exec {train}",
        "",
    ]
    return "\n".join(lines)


def _check_job(job: SlurmJob) -> None:
    """What the script and sbatch's arguments do not carry: a line break or another control character in the bot's
    path (refused rather than quoted: a line of its own in the script, an `error:` line split in two), a backslash
    (Slurm strips every one from an output file's name), a secret's name that is not a plain variable name."""
    path = str(job.bot)
    if _CONTROL.search(path):
        raise SettingsError(
            f"the bot folder's path {path!r} holds a line break or another control character; rename the folder "
            "to submit it to Slurm"
        )
    if "\\" in path:
        raise SettingsError(
            f"the bot folder's path {path!r} holds a backslash, which Slurm removes from the job's output file "
            "name; rename the folder to submit it to Slurm"
        )
    for name, value in job.environment.items():
        if not _ENV_NAME.fullmatch(name) or "\x00" in value:
            raise SettingsError(f"{name!r} cannot be handed to a Slurm job in its environment")


def _slurm_filename(path: Path) -> str:
    """A path as sbatch's --output takes it: absolute, its `%` doubled (Slurm replaces %j, %u, ... in it; `%%` is a
    `%`). No backslash: Slurm strips them (_check_job refuses one)."""
    return os.path.abspath(path).replace("%", "%%")


def check_installed() -> None:
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise QueueError(
            "Slurm is not installed here (no sbatch or squeue on PATH): run rasa-gpu on a login node of the cluster, "
            "or install Slurm's client (Debian: slurm-client)"
        )


def submit(job: SlurmJob) -> str:
    """Submit the job's script (written by the caller, with the SUBMITTED_MARK beside it); Slurm's job id, at once.
    The paths are sbatch's arguments, the secrets are in its environment only (sbatch hands it to the job)."""
    check_installed()
    _check_job(job)
    proc = _run(
        ["sbatch", "--parsable", *job.sbatch_args(), str(job.script_path)],
        environment={**os.environ, **job.environment},
    )
    if proc.returncode != 0:
        raise QueueError(_explain(proc.stderr or proc.stdout, job.options))
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
        raise QueueError(_explain(proc.stderr, SlurmOptions()))
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
        raise QueueError(f"scancel {job_id} failed: {_first_line(proc.stderr)}")


# ---- Slurm's answers -------------------------------------------------------------------------------------------------


def _run(
    command: list[str], environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)


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


def _from_json(raw: dict[str, Any]) -> JobState:
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
        native=slurm_state,
        reason=str(raw.get("state_reason") or "").replace("None", ""),
        node=str(raw.get("nodes") or ""),
        gpus=_gpus(raw),
        exit_code=code,
        submitted=_number(raw.get("submit_time")),
        started=_number(raw.get("start_time")),
        ended=_number(raw.get("end_time")),
    )


def _gpus(raw: dict[str, Any]) -> str:
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
    return _parse_scontrol(job_id, proc.stdout)


def _parse_scontrol(job_id: str, text: str) -> JobState:
    """`scontrol show job --oneliner`: Key=Value words, some of whose values (WorkDir, StdOut) hold spaces."""
    fields: dict[str, str] = {}
    for part in text.split():
        key, equals, value = part.partition("=")
        if equals:
            # The first of each: JobState and ExitCode come before WorkDir and StdOut, which hold the bot's path
            # (a folder named "x JobState=COMPLETED" must not tell Slurm's answer).
            fields.setdefault(key, value)
    slurm_state = fields.get("JobState", "UNKNOWN")
    code = fields.get("ExitCode", "").split(":")[0]
    return JobState(
        job_id=job_id,
        state=STATE_NAMES.get(slurm_state, "unknown"),
        native=slurm_state,
        reason=fields.get("Reason", "").replace("None", ""),
        node=fields.get("NodeList", "").replace("(null)", ""),
        exit_code=int(code) if code.isdigit() else None,
    )


class SlurmQueue(Queue[SlurmJob]):
    """Slurm through its own commands (sbatch, squeue, scontrol, scancel), on a login node of the cluster."""

    name = "slurm"
    title = "Slurm"

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self.options = options or SlurmOptions()

    @classmethod
    def from_settings(cls, settings: Settings) -> SlurmQueue:
        return cls(SlurmOptions.from_settings(settings))

    def prepare(self, request: Request, folder: Path) -> Prepared[SlurmJob]:
        job = SlurmJob(
            bot=request.project.root,
            job_dir=folder,
            options=self.options,
            train_args=request.train_args,
            environment=dict(request.environment),
        )
        return Prepared(request, folder, job, render(job))

    def submit(self, prepared: Prepared[SlurmJob]) -> str:
        """The script (the owner's alone: 0600) and the mark the node looks for, then sbatch."""
        check_installed()
        project, job = prepared.request.project, prepared.job
        project.write_owned(job.script_path, prepared.text, mode=0o600)
        project.write_owned(job.job_dir / SUBMITTED_MARK, "")
        return submit(job)

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        return states(job_ids)

    def cancel(self, job_id: str) -> None:
        cancel(job_id)

    def logs(self, folder: Path, job_id: str) -> Path:
        return folder / "output.log"

    def fetch(self, project: BotProject, job_id: str) -> Path | None:
        """The node's `rasa-gpu train` moved the model into models/ on the shared filesystem and recorded the job in
        the bot's run history: the model of that run, if it is still there."""
        from ..history import History, RunQuery

        history_of = History.of(project)
        if not history_of.path.is_file():  # no training recorded yet
            return None
        with history_of as history:
            runs = [r for r in history.runs(RunQuery(limit=None)) if r.job == f"{self.name}:{job_id}"]
        for run in runs:
            model = project.root / run.model_path if run.status == "ok" and run.model_path else None
            if model is not None and model.is_file():  # an absolute model_path stays itself
                return model
        return None
