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
    from .train import TrainResult


@dataclass(frozen=True)
class Notice:
    """A sentence for the user: what rasa-gpu did or decided (level "warn": something they should act on)."""

    text: str
    level: str = "info"  # info | warn


@dataclass(frozen=True)
class BuildOutput:
    """A line of an image build or pull, as Docker printed it."""

    text: str


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
