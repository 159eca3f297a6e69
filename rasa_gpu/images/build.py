"""Getting a training or service image: found by its name, else pulled as published (`--registry`), else built (the
shared Rasa stage first, then the bot's), each new image checked under a candidate name before it gets its own; and
the registry-less base that may stand in for the matrix's default base."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ..base_image import SUITE_PYTHON, default_name, python_bases
from ..compat import RasaRelease, accepts_python
from ..errors import PullError
from .checks import ProbeEngine, check_base_python, check_cuda, smoke_check, spacy_check
from .spec import ImageSpec, candidate, cpu_twin, published_ref


@dataclass(frozen=True)
class ImageResult:
    tag: str
    image_id: str
    built: bool  # False: found (or pulled), no builder was called
    pulled_from: str | None = None  # the published name it was pulled as, when it came from the registry
    #: The image can use a GPU: built with CUDA and every CUDA library TensorFlow opens loads (checked after the
    #: build; a found image says so by its tag). A training image only; services' images leave it False.
    gpu_ready: bool = False
    #: Why not, when it was built to use one (the check's problems), or where its CUDA comes from.
    cuda_note: str = ""
    #: The spec the image was found or built for: the one asked for, or the same on a stand-in base (settle_base).
    spec: ImageSpec | None = None


class ImageEngine(ProbeEngine, Protocol):
    """The subset of the engine that image resolution needs (the real one is rasa_gpu.engine.Engine)."""

    def image_id(self, ref: str) -> str | None: ...

    def labelled_images(self, label: str) -> list[tuple[list[str], dict[str, str]]]: ...

    def pull(self, ref: str, on_line: Callable[[str], None]) -> None: ...

    def build(
        self,
        context: bytes,
        *,
        tag: str,
        target: str,
        labels: dict[str, str],
        on_line: Callable[[str], None],
        secret_args: dict[str, str],
    ) -> str: ...

    def pull_published(self, ref: str, on_line: Callable[[str], None]) -> str | None: ...

    def tag(self, image: str, ref: str) -> None: ...

    def remove_image(self, ref: str) -> None: ...

    def can_pull(self, ref: str) -> bool: ...


def cuda_for(asked: str, release: RasaRelease, base_image: str, variant: str, has_wheels: bool) -> str:
    """Where an image's CUDA comes from ("base", "wheels" or "none") for what --cuda asked. auto: none for the CPU
    variant; the base image's own when it is TensorFlow's GPU image (it has CUDA); else NVIDIA's wheels when they
    serve this TensorFlow (a registry-less base, python:3.X-slim, a corporate base), else whatever the base has (the
    check after the build tells)."""
    if asked != "auto":
        return asked
    if variant == "cpu":
        return "none"
    if base_image == release.gpu_base_image or not has_wheels:
        return "base"
    return "wheels"


def stand_ins(spec: ImageSpec) -> list[ImageSpec]:
    """The specs a registry-less base under its default name (rasa-gpu/base:<suite>, a Python the release accepts)
    would give, when the base was not named: what settle_base may pick, known without an engine."""
    if spec.base_named:
        return []
    names = [
        default_name(suite)
        for suite, python in SUITE_PYTHON.items()
        if accepts_python(spec.release.python, python)
    ]
    return [_on_base(spec, name) for name in names]


def _on_base(spec: ImageSpec, base_image: str) -> ImageSpec:
    cuda = cuda_for(spec.cuda_asked, spec.release, base_image, spec.variant, spec.cuda_wheels is not None)
    return replace(spec, base_image=base_image, cuda=cuda)


def settle_base(engine: ImageEngine, spec: ImageSpec, on_line: Callable[[str], None]) -> ImageSpec:
    """The spec to build: as asked, unless its base is the matrix's default and this engine neither has it nor can
    pull it while a registry-less base (`rasa-gpu base-image`, found by its Python label) of a Python the release
    accepts is here; then the same spec on that base (the newest such Python), said in one line."""
    if spec.base_named or engine.image_id(spec.base_image) is not None:
        return spec
    # Under its default name (rasa-gpu/base:<suite>, newest Python first) it is found with cheap lookups; under
    # another name, by its label.
    named = [other.base_image for other in reversed(stand_ins(spec))]
    found = next((name for name in named if engine.image_id(name) is not None), None)
    if found is None:
        from packaging.version import Version

        fitting = [
            (Version(py), name)
            for name, py in python_bases(engine)
            if accepts_python(spec.release.python, py)
        ]
        found = max(fitting)[1] if fitting else None
    if found is None:
        return spec
    stand_in = _on_base(spec, found)
    # An image already built on the stand-in is used as it is, silently: asking a registry (docker-py) or printing
    # (rich) would cost every cache hit; `doctor` says which base it is on.
    if any(engine.image_id(name) is not None for name in (stand_in.tag(), cpu_twin(stand_in.tag()))):
        return stand_in
    if engine.can_pull(spec.base_image):
        return spec
    on_line(
        f"{spec.base_image} is not here and cannot be pulled: using the registry-less base {found} that "
        "`rasa-gpu base-image` made"
    )
    return stand_in


def ensure_image(
    engine: ImageEngine, spec: ImageSpec, on_line: Callable[[str], None], *, rebuild: bool = False
) -> ImageResult:
    """Find the training image by its tag, else pull its published copy when a registry is set, else build it (the
    Rasa stage first, so other bots can share it). Each image built to use a GPU is checked right after its build
    and keeps its gpu name only if it passes; otherwise it is named as its cpu_twin. The matrix's base image may
    have a registry-less stand-in (settle_base): the result's spec says which base it is built on."""
    spec = settle_base(engine, spec, on_line)
    return replace(_ensure_image(engine, spec, on_line, rebuild=rebuild), spec=spec)


def _ensure_image(
    engine: ImageEngine, spec: ImageSpec, on_line: Callable[[str], None], *, rebuild: bool
) -> ImageResult:
    tag = spec.tag()
    if not rebuild:
        found = _find(engine, spec, tag)
        if found is not None:
            return found
        if spec.registry:
            pulled = _pull_published(engine, spec, spec.registry, on_line)
            if pulled is not None:
                return pulled
    if engine.image_id(spec.base_image) is None:
        engine.pull(spec.base_image, on_line)
    check_base_python(engine, spec)
    labels = {"io.rasa-gpu.rasa": spec.release.version, "io.rasa-gpu.tensorflow": spec.release.tensorflow}
    secret_args = spec.secret_args()
    rasa_tag, build_id = spec.rasa_tag(), secrets.token_hex(4)
    stage = None if rebuild else _find(engine, spec, rasa_tag)
    if stage is None:
        built = candidate(rasa_tag, build_id)
        on_line(f"building {rasa_tag} ({spec.release.name} on {spec.base_image}, shared by every bot on it)")
        image_id = engine.build(
            spec.context_tar(),
            tag=built,
            target="rasa",
            labels=labels,
            on_line=on_line,
            secret_args=secret_args,
        )
        stage = checked_build(engine, spec, rasa_tag, image_id, on_line, built)
    if tag == rasa_tag:
        return stage
    built = candidate(tag, build_id)
    on_line(f"building {tag} (the bot's requirements on the {spec.release.name} stage)")
    image_id = engine.build(
        spec.bot_context_tar(stage.tag),
        tag=built,
        target="bot",
        labels=labels,
        on_line=on_line,
        secret_args=secret_args,
    )
    return checked_build(engine, spec, tag, image_id, on_line, built)


def _find(engine: ImageEngine, spec: ImageSpec, tag: str) -> ImageResult | None:
    """The image under its own name (GPU-ready when it says gpu: only a passed check leaves that name on it) or
    under its cpu twin's."""
    for name in dict.fromkeys([tag, cpu_twin(tag)]):
        image_id = engine.image_id(name)
        if image_id is not None:
            ready = spec.wants_gpu and name == tag
            if not spec.wants_gpu:
                note = "CPU-only: built without CUDA"
            else:
                note = "" if ready else "CPU-only: it failed the CUDA check after its build"
            return ImageResult(tag=name, image_id=image_id, built=False, gpu_ready=ready, cuda_note=note)
    return None


def checked_build(
    engine: ImageEngine,
    spec: ImageSpec,
    tag: str,
    image_id: str,
    on_line: Callable[[str], None],
    built: str,
) -> ImageResult:
    """A freshly built image (under its candidate name `built`) gets its own name only after a tiny bot trained in
    it and its model loaded (else a BuildError naming the cause, and no name but the removed candidate's); one built
    to use a GPU keeps the gpu name only if it passes the CUDA check, else it is named as its cpu twin."""
    bot_stage = tag != spec.rasa_tag()
    try:
        if bot_stage and spec.spacy_models:
            on_line(spacy_check(engine, spec, built))
        on_line(
            "training a tiny bot in the new image before it is tagged: "
            f"{smoke_check(engine, spec, built, bot_stage=bot_stage)}"
        )
        if not spec.wants_gpu:
            ready, note, name = False, "CPU-only: built without CUDA", tag
        else:
            ready, note = check_cuda(engine, spec, built)
            on_line(f"CUDA check of {tag}: {note}")
            name = tag if ready else cpu_twin(tag)
        engine.tag(built, name)
    finally:
        engine.remove_image(built)  # only the name: the image stays under its own one, or goes
    return ImageResult(tag=name, image_id=image_id, built=True, gpu_ready=ready, cuda_note=note)


def _pull_published(
    engine: ImageEngine, spec: ImageSpec, registry: str, on_line: Callable[[str], None]
) -> ImageResult | None:
    """The published copy of the image, pulled and tagged as the local tag; None (and a line why) to build."""
    tag, ref = spec.tag(), published_ref(spec, registry, spec.image_name)
    on_line(f"{tag} is not on this engine; looking for {ref} in the registry")
    try:
        image_id = engine.pull_published(ref, on_line)
    except PullError as exc:
        on_line(f"not pulled, building instead: {exc.message}")
        return None
    if image_id is None:
        on_line(f"{ref} is not in the registry (publish it with `rasa-gpu push`); building instead")
        return None
    engine.tag(ref, tag)
    on_line(f"pulled {ref} from the registry as {tag}; nothing built")
    return ImageResult(tag=tag, image_id=image_id, built=False, pulled_from=ref)


class ServiceImage(Protocol):
    """A single-stage image of a service (ActionsImageSpec, NotebookImageSpec)."""

    target: str

    @property
    def base_image(self) -> str: ...

    def tag(self) -> str: ...

    def context_tar(self) -> bytes: ...

    def secret_args(self) -> dict[str, str]: ...


def ensure_service_image(
    engine: ImageEngine, spec: ServiceImage, on_line: Callable[[str], None], *, rebuild: bool = False
) -> ImageResult:
    """Find a service image by its tag, or pull its base and build it."""
    tag = spec.tag()
    image_id = None if rebuild else engine.image_id(tag)
    if image_id is not None:
        return ImageResult(tag=tag, image_id=image_id, built=False)
    if engine.image_id(spec.base_image) is None:
        engine.pull(spec.base_image, on_line)
    on_line(f"building {tag} (the {spec.target} service's image)")
    image_id = engine.build(
        spec.context_tar(),
        tag=tag,
        target=spec.target,
        labels={"io.rasa-gpu.service": spec.target},
        on_line=on_line,
        secret_args=spec.secret_args(),
    )
    return ImageResult(tag=tag, image_id=image_id, built=True)
