"""What a training is asked to do (TrainOptions, Limits) and what came of it (TrainResult, TimedRun): plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import gpu as gpu_rules
from .. import license_key

if TYPE_CHECKING:
    from ..license_key import License
    from ..overrides import Override


@dataclass(frozen=True)
class TrainOptions:
    gpu: gpu_rules.GpuRequest
    overrides: list[Override] = field(default_factory=list)
    rasa_args: list[str] = field(default_factory=list)
    force: bool = False
    wait: bool = True
    rebuild: bool = False
    #: Rasa Pro's license, handed to the container in its environment (never a command line, image or log).
    license: License | None = field(default=None, repr=False)
    #: The queued job this training runs in (e.g. slurm:42) and how long it waited, for the history.
    job: str | None = None
    queued_seconds: float | None = None
    #: Continue from the newest model when only training examples changed (`rasa train --finetune`); anything else
    #: trains from scratch and says why.
    finetune: bool = False
    epoch_fraction: float = 0.2

    def secrets(self) -> dict[str, str]:
        return license_key.environment(self.license)


@dataclass(frozen=True)
class Limits:
    """What a training container may use: extra environment, CPU and memory caps (benchmarks set these)."""

    environment: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: str | None = None


@dataclass
class TrainResult:
    model: Path
    size: int
    skipped: bool
    wall_seconds: float
    device: str
    image: str
    rasa_version: str
    components: dict[str, float] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)
    host: str = ""  # the machine that trained
    sent_bytes: int = 0  # sent to an engine elsewhere (the bot's inputs); 0 for this machine's engine
    received_bytes: int = 0  # the model archive as it came back from an engine elsewhere
    run_id: int | None = (
        None  # its row in the run history (None: skipped, or the history could not be written)
    )
    finetuned_from: Path | None = None  # the model a fine-tune continued from


@dataclass(frozen=True)
class TimedRun:
    device: str
    gpu: bool  # trained with a GPU granted and seen by TensorFlow
    wall_seconds: float
    components: dict[str, float]


#: No extra environment, no caps: a training's usual limits.
NO_LIMITS = Limits()
