"""The one door to Docker. Every call to the engine goes through this package, so error mapping, labels and cleanup
live in one place. Callers get plain values and rasa-gpu errors, never docker SDK exceptions.

One module per concern, each a part of Engine:
- connection: docker-py's client (unix socket, tcp, TLS), whether the engine answers, what it says about itself;
- containers: ContainerSpec, RunningContainer, running, holders, leftovers, orphans, logs, probe containers;
- images and registries: build, import, tag, remove; pull and push with their progress and error wording;
- volumes: named volumes and the files in them (the workspace of an engine elsewhere);
- compose: Compose (the CLI) and the containers of a compose project;
- sdk: docker-py loaded on first use, and `mapped`, the one helper that turns its errors into rasa-gpu's.

The engine runs containers and answers; what a probe's answer means belongs to its owner (images.checks for an
image's CUDA, Python and smoke test, base_image for the registry-less bases, gpu for GPU requests).
"""

from __future__ import annotations

from ..entry_contract import TIED_ENV
from .compose import Compose, ComposeProjects, ServiceState
from .connection import DEFAULT_SOCKET, START_HINT, EngineAbout
from .containers import (
    CHECK_LABEL,
    LABEL,
    ORPHAN_ROLES,
    Containers,
    ContainerSpec,
    RunningContainer,
    labels_for,
    probe_spec,
)
from .images import WholeLines, build_cause
from .registries import Registries
from .sdk import LineSink
from .volumes import Volumes

__all__ = [
    "CHECK_LABEL",
    "DEFAULT_SOCKET",
    "LABEL",
    "ORPHAN_ROLES",
    "START_HINT",
    "TIED_ENV",
    "Compose",
    "ContainerSpec",
    "Engine",
    "EngineAbout",
    "LineSink",
    "RunningContainer",
    "ServiceState",
    "WholeLines",
    "build_cause",
    "labels_for",
    "probe_spec",
]


class Engine(Containers, Registries, Volumes, ComposeProjects):
    """A Docker engine: Engine.connect() reaches it (connection), and each part of this package adds what it does
    with it. Nothing here prints."""
