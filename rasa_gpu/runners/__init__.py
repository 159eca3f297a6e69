"""Where rasa-gpu's containers run: chosen once from the settings, then handed to every command.

- ``base.py``: what a runner provides (an engine, a workspace per run, a sweep of leftovers).
- ``local.py``: the engine on this machine; the bot folder is bind-mounted.
- ``remote.py``: an engine elsewhere (ssh://, tcp://, a Docker context); inputs are copied in, the model out.
- ``ssh.py``: reaching an engine through the user's own OpenSSH.
- ``slurm.py``: a training queued on a Slurm cluster. The whole training is the job: on the node, `rasa-gpu train`
  runs with the local runner above, so every rule of a local training holds there (``jobs.py`` keeps the records).
- ``kubernetes.py``: the manifests of a training as a Kubernetes Job (applied by the user's kubectl).

A new engine to run containers on is one more Runner subclass and one more branch in ``connect``; a new queue is one
more module like ``slurm.py`` whose job runs `rasa-gpu train` where the queue puts it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SettingsError
from .base import BOT_MOUNT, Runner, Workspace
from .local import LocalRunner

if TYPE_CHECKING:
    from .remote import RemoteRunner

__all__ = ["BOT_MOUNT", "LocalRunner", "RemoteRunner", "Runner", "Where", "Workspace", "connect"]


def __getattr__(name: str) -> type[RemoteRunner]:
    """RemoteRunner on first use: a command on this machine's engine never loads the SSH and copy code."""
    if name != "RemoteRunner":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .remote import RemoteRunner

    return RemoteRunner


_SCHEMES = ("unix://", "npipe://", "ssh://", "tcp://", "http://", "https://")


@dataclass(frozen=True)
class Where:
    """The engine the user asked for: --host/--context, else `host`/`context` in rasa-gpu.toml, else DOCKER_HOST,
    DOCKER_CONTEXT or the docker CLI's current context, else this machine's engine."""

    host: str | None = None
    context: str | None = None


def connect(where: Where) -> Runner:
    """The runner for `where`. Nothing is contacted yet: the engine is reached on first use."""
    if where.host and where.context:
        raise SettingsError("--host and --context both name an engine; give one of them")
    if where.host:
        return _for_url(where.host, where.host)
    if where.context:
        return _for_context(where.context)
    if os.environ.get("DOCKER_HOST"):
        return _for_url(os.environ["DOCKER_HOST"], os.environ["DOCKER_HOST"], from_env=True)
    context = os.environ.get("DOCKER_CONTEXT") or _current_context()
    if context and context != "default":
        return _for_context(context)
    return LocalRunner()


def _for_url(url: str, shown_as: str, tls: object = None, *, from_env: bool = False) -> Runner:
    if not url.startswith(_SCHEMES):
        raise SettingsError(
            f"'{url}' is not a Docker engine address; use ssh://[user@]host[:port], tcp://host:port or "
            "unix:///path/to/docker.sock (or --context NAME)"
        )
    if url.startswith(("unix://", "npipe://")):
        return LocalRunner(None if from_env else url)
    if from_env and url.startswith("tcp://") and tls is None:
        from docker.utils import kwargs_from_env

        tls = kwargs_from_env().get("tls")
    from .remote import RemoteRunner

    return RemoteRunner(url, shown_as=shown_as, tls=tls)


def _for_context(name: str) -> Runner:
    from docker.context import ContextAPI
    from docker.errors import ContextNotFound, DockerException

    try:
        context = ContextAPI.get_context(name)
    except (ContextNotFound, DockerException):
        context = None
    if context is None:
        raise SettingsError(f"there is no Docker context named '{name}'; see `docker context ls`")
    host = context.Host or "unix:///var/run/docker.sock"
    return _for_url(host, f"{host} (context {name})", context.TLSConfig)


def _current_context() -> str | None:
    """The docker CLI's current context from its config file (without importing docker-py)."""
    import json
    from pathlib import Path

    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        return json.loads((folder / "config.json").read_text()).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None
