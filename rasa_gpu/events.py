"""What the commands tell whoever shows them (the CLI, a test, another front end), as data: one union of small
dataclasses and one sink type, defined here once. Core modules call the sink; only the CLI draws."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .errors import RasaGpuError
    from .progress import ProgressEvent
    from .training import TrainResult


@dataclass(frozen=True)
class Notice:
    """A sentence for the user: what rasa-gpu did or decided (level "warn": something they should act on)."""

    text: str
    level: str = "info"  # info | warn


@dataclass(frozen=True)
class BuildOutput:
    """A line of an image build or pull, as Docker printed it."""

    text: str


# ---- image builds (build_progress reads Docker's, pip's, uv's and debootstrap's lines into these) ----------------


@dataclass(frozen=True)
class BuildLogOpened:
    """A build began writing its raw lines (every BuildOutput) to this file."""

    path: Path


@dataclass(frozen=True)
class BuildStarted:
    """An image is being built: its name, and what it is in words."""

    image: str
    what: str


@dataclass(frozen=True)
class BuildStage:
    """A step worth naming started ("installing the locked set of Rasa 3.6.21"); `step` is Docker's "step 7/17"
    where there is one."""

    title: str
    step: str = ""


@dataclass(frozen=True)
class BuildProgress:
    """How the running stage is getting on, as pip, uv or debootstrap say it ("uv: 161 packages · downloading
    tensorflow (560.2 MiB) · 12/40 downloads, 1.1 of 1.6 GB")."""

    detail: str


@dataclass(frozen=True)
class BuildStageDone:
    title: str
    summary: str  # "uv, 161 packages, 1.6 GB downloaded"; may be empty
    seconds: float


@dataclass(frozen=True)
class BuildNote:
    """A sentence rasa-gpu or a tool said during a build for the user to read (a check's result, a stand-in base)."""

    text: str


@dataclass(frozen=True)
class BuildFinished:
    """The builds of this command are over (done or failed): a live status line goes."""

    log: Path


@dataclass(frozen=True)
class TrainingStarted:
    image: str
    gpu: str  # what was requested from the engine, "none" for the CPU


# ---- watch -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Watching:
    """Idle, waiting for changes (the end of a cycle)."""

    root: Path


@dataclass(frozen=True)
class Changed:
    paths: list[str]  # relative to the bot folder
    train: bool
    actions: bool


@dataclass(frozen=True)
class Invalid:
    """The bot does not validate (e.g. a YAML error with file:line); nothing is trained, watching goes on."""

    error: RasaGpuError


@dataclass(frozen=True)
class Trained:
    result: TrainResult
    loaded_into: str | None  # the Rasa server that now serves the model, or None


@dataclass(frozen=True)
class TrainFailed:
    error: RasaGpuError


@dataclass(frozen=True)
class ActionsRestarted:
    pass


# Names, not classes: the progress parser (regexes) loads only when a container runs.
Event = Union[
    "Notice",
    "BuildOutput",
    "BuildLogOpened",
    "BuildStarted",
    "BuildStage",
    "BuildProgress",
    "BuildStageDone",
    "BuildNote",
    "BuildFinished",
    "TrainingStarted",
    "ProgressEvent",
    "Watching",
    "Changed",
    "Invalid",
    "Trained",
    "TrainFailed",
    "ActionsRestarted",
]
EventSink = Callable[[Event], None]
