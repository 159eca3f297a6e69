"""What doctor's checks are made of: a check's verdict, what doctor was asked about, and the images an engine has."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import gpu as gpu_rules
from ..compat import RasaRelease
from ..engine import Engine
from ..images import ImageSpec, cpu_twin
from ..project import BotProject
from ..runners import Where

STATUSES = ("ok", "warn", "fail", "skip")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    fix: str | None = None
    blocking: bool = False  # a failure that stops `rasa-gpu train`

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """What doctor was asked about: the bot (if any), the image train would use, and the GPU mode."""

    gpu: gpu_rules.GpuRequest  # the mode and the devices, from the settings and the command line as for train
    project: BotProject | None = None
    spec: ImageSpec | None = None
    release: RasaRelease | None = None
    #: The engine asked about (--host/--context, the bot's settings, DOCKER_HOST), as train would use it.
    where: Where = field(default_factory=lambda: Where())

    @property
    def gpu_mode(self) -> str:
        return self.gpu.mode

    @property
    def probe_request(self) -> gpu_rules.GpuRequest:
        """What the GPU checks ask the engine for: the GPUs train would use."""
        return gpu_rules.GpuRequest("on", self.gpu.device_ids)


@dataclass(frozen=True)
class LocalImages:
    """Which of the bot's images this engine already has, asked once for every check that needs it."""

    built: str | None  # the training image's tag, when it is built
    base: str | None  # its base image, when that is here

    @classmethod
    def of(cls, engine: Engine, spec: ImageSpec | None) -> LocalImages:
        if spec is None:
            return cls(None, None)
        built = next(
            (ref for ref in (spec.tag(), cpu_twin(spec.tag())) if engine.image_id(ref) is not None), None
        )
        base = spec.base_image if engine.image_id(spec.base_image) is not None else None
        return cls(built, base)

    @property
    def probe(self) -> str | None:
        """An image to start probe containers from."""
        return self.built or self.base


def gpu_problem(name: str, detail: str, fix: str, mode: str) -> Check:
    """A GPU check that found a problem: a warning in auto mode (train falls back to the CPU), blocking with on."""
    if mode == "on":
        return Check(name, "fail", detail, fix, blocking=True)
    return Check(name, "warn", f"{detail}; `--gpu auto` trains on the CPU", fix)
