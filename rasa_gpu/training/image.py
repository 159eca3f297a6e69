"""Which image a training would use, and how it would get there (found, pulled from the registry, built), asked of
the runner's engine read-only: images.ensure_image itself decides, on an engine that answers every question but
refuses every change, so the plan and the training follow the same rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RasaGpuError
from ..images import ImageEngine, ImageSpec, ensure_image, settle_base

if TYPE_CHECKING:
    from ..engine import ContainerSpec


@dataclass(frozen=True)
class ImagePlan:
    #: The image the training would run in (a found CPU twin's name when that is what is there).
    tag: str
    #: use (it is on the engine), pull (its published copy, from the registry setting) or build.
    action: str
    #: The spec it is found or built for (on a registry-less stand-in base where images.settle_base picks one).
    spec: ImageSpec
    #: Whether it can use a GPU; None while unknown (a build's CUDA check decides).
    gpu_ready: bool | None
    cuda_note: str = ""
    #: The registry's name for it (action pull).
    pull_from: str | None = None
    #: What the image step said it would do, in its own words (a stand-in base, the stage it would build).
    steps: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.action == "use":
            return f"{self.tag} (on the engine; used as it is)"
        if self.action == "pull":
            return f"{self.tag} (not on the engine; would be pulled from the registry as {self.pull_from})"
        return f"{self.tag} (not on the engine; would be built there)"


class _Change(Exception):
    """Raised by the read-only engine where ensure_image would change something."""

    def __init__(self, action: str, ref: str = "") -> None:
        super().__init__(action)
        self.action, self.ref = action, ref


class _NoContainer(RasaGpuError):
    """Raised by the read-only engine instead of starting a probe container (an image's Python asked of python3
    reads as unknown: the build checks the base's Python itself)."""


class _ReadOnly:
    """An ImageEngine that passes every question to the real one and stops at the first change."""

    def __init__(self, engine: ImageEngine) -> None:
        self._engine = engine

    def image_id(self, ref: str) -> str | None:
        return self._engine.image_id(ref)

    def image_labels(self, ref: str) -> dict[str, str]:
        return self._engine.image_labels(ref)

    def labelled_images(self, label: str) -> list[tuple[list[str], dict[str, str]]]:
        return self._engine.labelled_images(label)

    def can_pull(self, ref: str) -> bool:
        return self._engine.can_pull(ref)

    def pull_published(self, ref: str, on_line: Callable[[str], None]) -> str | None:
        if self._engine.can_pull(ref):
            raise _Change("pull", ref)
        return None  # not in the registry: ensure_image goes on to build

    def pull(self, ref: str, on_line: Callable[[str], None]) -> None:
        on_line(f"its base image {ref} would be pulled first")

    def build(self, context: bytes, *, tag: str, **kwargs: Any) -> str:
        raise _Change("build")

    def tag(self, image: str, ref: str) -> None:
        raise _Change("tag")

    def remove_image(self, ref: str) -> None:
        raise _Change("remove")

    def run_to_completion(self, spec: ContainerSpec) -> tuple[int, list[str]]:
        raise _NoContainer("a dry run starts no container")


def plan_image(engine: ImageEngine, spec: ImageSpec, *, rebuild: bool = False) -> ImagePlan:
    """What ensure_image would do on `engine`, found out without changing anything there: no container, no pull,
    no build. A missing base image is noted, not pulled; the base's Python is checked by the build itself."""
    steps: list[str] = []

    def said(line: str) -> None:
        steps.append(f"would build {line[len('building ') :]}" if line.startswith("building ") else line)

    readonly = _ReadOnly(engine)
    settled = settle_base(readonly, spec, said)
    try:
        found = ensure_image(readonly, settled, said, rebuild=rebuild)
    except _Change as change:
        if change.action == "pull":
            return ImagePlan(settled.tag(), "pull", settled, None, pull_from=change.ref, steps=tuple(steps))
        ready = None if settled.wants_gpu else False
        note = "" if settled.wants_gpu else "CPU-only: built without CUDA"
        return ImagePlan(settled.tag(), "build", settled, ready, note, steps=tuple(steps))
    return ImagePlan(
        found.tag, "use", found.spec or settled, found.gpu_ready, found.cuda_note, steps=tuple(steps)
    )
