"""Where rasa-gpu's containers run: chosen once from the settings, then handed to every command.

- ``base.py``: what a runner provides (an engine, a workspace per run, a sweep of leftovers).
- ``local.py``: the engine on this machine; the bot folder is bind-mounted.
- ``remote.py``: an engine elsewhere (ssh://, tcp://, a Docker context); inputs are copied in, the model out.
- ``ssh.py``: reaching an engine through the user's own OpenSSH.

Commands ask a runner what it can do (``Runner.capabilities``), never where its engine is. A new engine to run
containers on is one more Runner subclass with its Capabilities and one more branch in ``connect``. Trainings that
wait in a queue (Slurm, Kubernetes) are ``rasa_gpu.queues``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SettingsError
from ..events import Notice
from .base import BOT_MOUNT, ELSEWHERE, HERE, Capabilities, Runner, Workspace, rasa_environment
from .local import LocalRunner

if TYPE_CHECKING:
    from docker.context import Context

    from ..events import EventSink
    from .remote import RemoteRunner

__all__ = [
    "BOT_MOUNT",
    "ELSEWHERE",
    "HERE",
    "Capabilities",
    "LocalRunner",
    "RemoteRunner",
    "Runner",
    "Where",
    "Workspace",
    "connect",
    "rasa_environment",
]


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


def connect(where: Where, on_event: EventSink) -> Runner:
    """The runner for `where`. Nothing is contacted yet: the engine is reached on first use. A tcp:// engine without
    TLS is said here, once per command, as a warning through on_event."""
    if where.host and where.context:
        raise SettingsError("--host and --context both name an engine; give one of them")
    if where.host:
        return _for_url(where.host, where.host, on_event)
    if where.context:
        return _for_context(where.context, on_event)
    if os.environ.get("DOCKER_HOST"):
        return _for_url(os.environ["DOCKER_HOST"], os.environ["DOCKER_HOST"], on_event, from_env=True)
    context = os.environ.get("DOCKER_CONTEXT") or _current_context()
    if context and context != "default":
        return _for_context(context, on_event)
    return LocalRunner()


def _for_url(
    url: str, shown_as: str, on_event: EventSink, *, from_env: bool = False, context: Context | None = None
) -> Runner:
    """The runner for an address; a tcp:// one is encrypted with its context's TLS, else (an address from --host,
    the settings or DOCKER_HOST) with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI does."""
    if not url.startswith(_SCHEMES):
        raise SettingsError(
            f"'{url}' is not a Docker engine address; use ssh://[user@]host[:port], tcp://host:port or "
            "unix:///path/to/docker.sock (or --context NAME)"
        )
    if url.startswith(("unix://", "npipe://")):
        return LocalRunner(None if from_env else url)
    tls: object = None
    if url.startswith("tcp://"):
        tls = _context_tls(context) if context is not None else _tls_from_env()
    if url.startswith(("tcp://", "http://")) and tls is None:
        on_event(Notice(_in_clear(shown_as, context), "warn"))
    from .remote import RemoteRunner

    return RemoteRunner(url, shown_as=shown_as, tls=tls)


def _in_clear(shown_as: str, context: Context | None) -> str:
    if context is None:
        fix = "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH"
    else:
        fix = f"give the context TLS (docker context update {context.name} --docker host=…,ca=…,cert=…,key=…)"
    return (
        f"{shown_as} is not encrypted: the bot's inputs and secrets (a Rasa Pro license, an index login) travel in "
        f"clear; {fix}, or use ssh://"
    )


def _tls_from_env() -> object:
    """DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, read as docker-py reads them (a docker.tls.TLSConfig with the
    folder's ca.pem, cert.pem and key.pem), or None when neither is set."""
    from docker.errors import TLSParameterError
    from docker.utils import kwargs_from_env

    try:
        tls = kwargs_from_env().get("tls")
    except TLSParameterError:
        folder = os.environ.get("DOCKER_CERT_PATH") or "~/.docker"
        verify = os.environ.get("DOCKER_TLS_VERIFY", "") != ""
        wanted = ["ca.pem", "cert.pem", "key.pem"] if verify else ["cert.pem", "key.pem"]
        missing = [name for name in wanted if not (Path(folder).expanduser() / name).is_file()]
        named = " or ".join(filter(None, [", ".join(missing[:-1]), missing[-1]]))
        raise SettingsError(
            f"DOCKER_TLS_VERIFY/DOCKER_CERT_PATH ask for TLS, but {folder} has no {named}: put the "
            "engine's CA (ca.pem) and this client's certificate and key (cert.pem, key.pem) there, or point "
            "DOCKER_CERT_PATH at the folder that holds them"
        ) from None
    return None if tls is None else _tls(tls.cert, tls.ca_cert, tls.verify)


def _context_tls(context: Context) -> object:
    """The TLS of a context's engine as the docker CLI takes it: whichever of its CA, client certificate and key it
    holds (`docker context create --docker ca=…,cert=…,key=…`), verified unless it says SkipTLSVerify; None when it
    has none of them and verifies (a plain tcp:// context)."""
    from docker.context.config import get_tls_dir

    folder = Path(get_tls_dir(context.name)) / "docker"
    ca, cert, key = (folder / f"{name}.pem" for name in ("ca", "cert", "key"))
    skip_verify = bool(context.endpoints.get("docker", {}).get("SkipTLSVerify"))
    if not (ca.is_file() or cert.is_file() or skip_verify):
        return None
    return _tls(
        (str(cert), str(key)) if cert.is_file() and key.is_file() else None,
        str(ca) if ca.is_file() else None,
        not skip_verify,
    )


def _tls(client_cert: tuple[str, str] | None, ca_cert: str | None, verify: bool) -> object:
    """A docker.tls.TLSConfig that verifies with its own CA even where REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set
    (requests lets those replace a client's CA, psf/requests#3829; the docker CLI reads no such variable)."""
    from docker.tls import TLSConfig

    class OwnCA(TLSConfig):  # type: ignore[misc]  # docker-py has no type hints
        def configure_client(self, client: Any) -> None:
            super().configure_client(client)
            merge, own = client.merge_environment_settings, client.verify
            if isinstance(own, str):
                client.merge_environment_settings = lambda *args: {**merge(*args), "verify": own}

    return OwnCA(client_cert=client_cert, ca_cert=ca_cert, verify=verify)


def _for_context(name: str, on_event: EventSink) -> Runner:
    from docker.context import ContextAPI
    from docker.errors import ContextNotFound, DockerException

    try:
        context = ContextAPI.get_context(name)
    except (ContextNotFound, DockerException):
        context = None
    if context is None:
        raise SettingsError(f"there is no Docker context named '{name}'; see `docker context ls`")
    host = context.Host or "unix:///var/run/docker.sock"
    return _for_url(host, f"{host} (context {name})", on_event, context=context)


def _current_context() -> str | None:
    """The docker CLI's current context from its config file (without importing docker-py)."""
    import json

    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        context = json.loads((folder / "config.json").read_text()).get("currentContext")
        return context if isinstance(context, str) else None
    except (OSError, ValueError, AttributeError):
        return None
