"""What every queue of trainings provides (Slurm, Kubernetes): a job made from a request and shown before it is
submitted (`submit --dry-run`), then submitted, viewed, cancelled, its output read and its model found.

A queue is configured once from the bot's settings (its own table, and the shared [resources]: what a job asks for)
and does not print; failures are one-line QueueError or SettingsError.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from ..errors import RasaGpuError

if TYPE_CHECKING:
    from ..images import ImageSpec
    from ..project import BotProject
    from ..settings import Settings

#: A queue's own description of one job (SlurmJob, KubeJob).
J = TypeVar("J")


class QueueError(RasaGpuError):
    """The queue's tools are missing, it does not answer, or it refused the job (e.g. no such partition)."""


class QueueUnsupported(QueueError):
    """rasa-gpu cannot do this with this queue itself (it says what to run instead)."""


@dataclass(frozen=True)
class Resources:
    """What a job asks for, on every queue: the [resources] table, with --gpus/--cpus/--memory/--time on top."""

    gpus: int = 1
    cpus: int | None = None
    memory: str | None = None  # Slurm's 16G, or a Kubernetes quantity (16Gi)
    time: str | None = None  # Slurm's time format: minutes, HH:MM:SS, D-HH:MM

    @classmethod
    def from_settings(cls, settings: Settings) -> Resources:
        """The settings' values (their types are settings.py's rule, checked where they were read)."""
        return cls(
            gpus=1 if settings.resources_gpus is None else settings.resources_gpus,
            cpus=settings.resources_cpus,
            memory=settings.resources_memory,
            time=settings.resources_time,
        )


@dataclass(frozen=True)
class Request:
    """One training to queue, as the command decided it."""

    project: BotProject
    #: `rasa-gpu train`'s arguments, for a queue whose job runs rasa-gpu on the node (image options, --force,
    #: `--` and Rasa's own).
    train_args: tuple[str, ...] = ()
    #: Rasa's own arguments, for a queue whose job runs the image's entry point directly.
    rasa_args: tuple[str, ...] = ()
    #: Secrets the node's rasa-gpu reads from its environment: never in a script, a manifest or an argv.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: The training image, for a queue whose job runs it directly (None: the node's rasa-gpu finds or builds it).
    spec: ImageSpec | None = None


@dataclass(frozen=True)
class Prepared(Generic[J]):
    """A job made and checked, nothing written or submitted yet: `text` is what it hands the queue (the sbatch
    script, the manifests), which `submit --dry-run` prints."""

    request: Request
    folder: Path  # the job's folder in the bot's state folder (.rasa-gpu/jobs/<name>)
    job: J
    text: str


@dataclass(frozen=True)
class JobState:
    """What the queue says about a job now."""

    job_id: str
    state: str  # pending | running | done | failed | cancelled | unknown
    native: str  # the queue's own word for it (Slurm's PENDING, COMPLETED, ...)
    reason: str = ""
    node: str = ""
    gpus: str = ""  # the GPUs the job was given, or (before and after) asked for
    exit_code: int | None = None
    submitted: int | None = None  # Unix times, when the queue says
    started: int | None = None
    ended: int | None = None

    @property
    def ended_now(self) -> bool:
        return self.state in ENDED


#: The states after which a job does nothing more.
ENDED = ("done", "failed", "cancelled")


class Queue(ABC, Generic[J]):
    """A place that runs trainings in turn. `rasa-gpu submit` and `rasa-gpu jobs` use only these methods."""

    #: The name in `submit --to NAME` and in job references (slurm:42).
    name: ClassVar[str]
    #: How messages name it ("Slurm").
    title: ClassVar[str]
    #: rasa-gpu hands the job to the queue itself; False: the user does (`kubectl apply -f` of the printed text).
    submits_itself: ClassVar[bool] = True

    @abstractmethod
    def prepare(self, request: Request, folder: Path) -> Prepared[J]:
        """The job for `request` with its folder, checked (a setting it cannot carry is refused here, before
        anything is written)."""

    @abstractmethod
    def submit(self, prepared: Prepared[J]) -> str:
        """Write what the job needs into its folder (made by the caller) and hand it to the queue; its job id, at
        once."""

    @abstractmethod
    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """What the queue says about these jobs; the ones it has forgotten are missing."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """End the job (the training on the node stops, leaving no container and no partial model)."""

    @abstractmethod
    def logs(self, folder: Path, job_id: str) -> Path:
        """The file the job's output goes to as it comes (rasa-gpu's lines on the node)."""

    @abstractmethod
    def fetch(self, project: BotProject, job_id: str) -> Path | None:
        """The job's model in the bot's models/ here (brought here first where the queue keeps it elsewhere);
        None while it has none."""
