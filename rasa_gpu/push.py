"""`rasa-gpu push`: publish a training image under a versioned name in a registry, so that a teammate or a CI machine
with the same bot pulls it instead of building it (`--registry` on build and train).

The name is `<registry>/<name>:<rasa>-tf<tf>-<gpu|cpu>-<hash>`, with the hash of the local tag: the same inputs give
the same name everywhere. The login is Docker's own (`docker login`, read from DOCKER_CONFIG or ~/.docker/config.json
by the engine door); no password passes through rasa-gpu. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .images import DEFAULT_IMAGE_NAME, ImageEngine, ImageSpec, ensure_image, published_ref

__all__ = ["DEFAULT_IMAGE_NAME", "PushEngine", "PushResult", "published_ref", "push_image"]

LineSink = Callable[[str], None]


class PushEngine(ImageEngine, Protocol):
    """The subset of the engine that a push needs (the real one is rasa_gpu.engine.Engine)."""

    def push(self, ref: str, on_line: LineSink) -> str: ...

    def remove_image(self, ref: str) -> None: ...

    def image_size(self, ref: str) -> int: ...


@dataclass(frozen=True)
class PushResult:
    ref: str  # the published name, <registry>/<name>:<tag>
    digest: str  # the manifest digest the registry answered with (sha256:...)
    image_id: str
    size: int  # bytes, uncompressed, as the engine reports the image
    local_tag: str  # the name the image has on this engine (rasa-gpu/rasa:... or rasa-gpu/bot:...)
    built: bool  # True when the image had to be built for this push

    def to_json(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "image_id": self.image_id,
            "size": self.size,
            "local_tag": self.local_tag,
            "built": self.built,
        }


def push_image(
    engine: PushEngine,
    spec: ImageSpec,
    registry: str,
    name: str = DEFAULT_IMAGE_NAME,
    on_event: LineSink = lambda line: None,
    *,
    rebuild: bool = False,
) -> PushResult:
    """Make sure the image exists (build it if it does not), give it its published name and push it.

    Progress lines go to on_event; a registry that refuses or does not answer raises PushError."""
    ref = published_ref(spec, registry, name)  # first: a bad registry or name fails before any build
    image = ensure_image(engine, spec, on_event, rebuild=rebuild)
    named_before = engine.image_id(ref) is not None
    engine.tag(image.tag, ref)
    on_event(f"pushing {image.tag} as {ref}")
    try:
        digest = engine.push(ref, on_event)
    except BaseException:
        if not named_before:  # a failed push leaves no registry name behind on this engine
            engine.remove_image(ref)
        raise
    return PushResult(
        ref=ref,
        digest=digest,
        image_id=image.image_id,
        size=engine.image_size(image.tag),
        local_tag=image.tag,
        built=image.built,
    )
