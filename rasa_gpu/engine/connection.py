"""The connection to an engine: docker-py's client (unix socket, tcp, TLS), whether the engine answers, and what it
says about itself.

The two questions of a cache-hit `build` (is the engine there, which id has this image) go to an engine on this
machine's unix socket with the standard library's http.client, read-only, so that docker-py is not imported.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import EngineUnavailable
from .sdk import mapped

if TYPE_CHECKING:
    import docker
else:
    from .sdk import docker

DEFAULT_SOCKET = "the default socket (/var/run/docker.sock)"
START_HINT = (
    "start one (Debian/Ubuntu: `sudo systemctl start docker`, or `sudo dockerd &`; "
    "see https://docs.docker.com/engine/install/) or point DOCKER_HOST at a running engine"
)

_Self = TypeVar("_Self", bound="Connection")


@dataclass(frozen=True)
class EngineAbout:
    name: str  # the engine's host name
    engine_id: str
    version: str
    api_version: str
    runtimes: list[str]
    root_dir: str  # the engine's data folder, as the engine sees it
    host: str
    local: bool  # the engine runs on this machine (a unix socket), so its data folder can be looked at here


class Connection:
    """One engine, reached through docker-py's client (made on first use) or, for read-only questions while there is
    none, through its local unix socket."""

    def __init__(self, base_url: str | None = None, *, tls: Any = None, shown_as: str = "") -> None:
        self._base_url, self._tls = base_url, tls
        self._client: docker.DockerClient | None = None
        #: Read-only questions go here, without docker-py, until a docker-py client exists.
        self._socket = _local_socket(base_url) if tls is None else None
        self.shown_as = shown_as  # the address the user gave, "" for the local default

    @property
    def client(self) -> docker.DockerClient:
        """docker-py's client, made (and docker-py imported) on first use."""
        if self._client is None:
            self._client = self._make_client(self._base_url, self._tls, self.shown_as or DEFAULT_SOCKET)
        return self._client

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    @staticmethod
    def _make_client(base_url: str | None, tls: Any, host: str) -> docker.DockerClient:
        try:
            if base_url:
                client = docker.DockerClient(base_url=base_url, timeout=600, tls=tls or False)
            else:
                client = docker.from_env(timeout=600)
            client.ping()
        except docker.errors.DockerException as exc:
            reason = _unreachable_reason(exc)
            if tls:
                raise EngineUnavailable(
                    f"cannot reach a Docker engine over TLS at {host} ({reason}); check that it runs there and "
                    "that the CA, certificate and key given (DOCKER_CERT_PATH or the context's) are that engine's"
                ) from None
            if base_url and base_url.startswith("tcp://"):
                raise EngineUnavailable(
                    f"cannot reach a Docker engine at {host} ({reason}); check that it runs there, and if it wants "
                    "TLS (port 2376), set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem)"
                ) from None
            raise EngineUnavailable(
                f"cannot reach a Docker engine at {host} ({reason}); {START_HINT}"
            ) from None
        return client

    @classmethod
    def connect(
        cls: type[_Self],
        base_url: str | None = None,
        *,
        shown_as: str | None = None,
        tls: Any = None,
        quick: bool = True,
    ) -> _Self:
        """The engine at base_url (unix://, tcp://; ssh:// goes through runners.ssh first), or DOCKER_HOST's, or the
        local socket, checked to answer. `shown_as` names it in messages (the address the user gave); `quick=False`
        uses docker-py from the start."""
        host = shown_as or base_url or os.environ.get("DOCKER_HOST", DEFAULT_SOCKET)
        engine = cls(
            base_url, tls=tls, shown_as=host if (shown_as or base_url or "DOCKER_HOST" in os.environ) else ""
        )
        if not quick:
            engine._socket = None
        if engine._socket is None:
            engine._client = cls._make_client(base_url, tls, host)
            return engine
        try:
            status, _ = ask_socket(engine._socket, "/_ping")
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise EngineUnavailable(
                f"cannot reach a Docker engine at {host} ({reason}: {engine._socket}); {START_HINT}"
            ) from None
        if status != 200:
            engine._socket = None  # something answers, not plainly: docker-py says what
            engine._client = cls._make_client(base_url, tls, host)
        return engine

    def engine_id(self) -> str:
        """Which engine this is, stable across restarts (see engine_identity); "" when it does not say."""
        try:
            return engine_identity(self.api.info())
        except docker.errors.APIError:
            return ""

    def about(self) -> EngineAbout:
        """Version, registered runtimes and data folder, for `rasa-gpu doctor`."""
        with mapped("the Docker engine did not describe itself"):
            version, info = self.client.version(), self.client.info()
        host = self.shown_as
        return EngineAbout(
            name=str(info.get("Name", "")),
            engine_id=engine_identity(info),
            version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            runtimes=sorted((info.get("Runtimes") or {}).keys()),
            root_dir=str(info.get("DockerRootDir", "")),
            host=host or "unix:///var/run/docker.sock",
            local=not host or host.startswith("unix://"),
        )


def engine_identity(info: dict[str, Any]) -> str:
    """An engine's identity from its `docker info`: its ID with its host name and data folder. The ID alone is not
    enough: dockerd 20.10 derives it from /etc/docker/key.json, so two engines on one machine (a second dockerd with
    its own data root) or cloned machines share it. "" when the engine gives no ID."""
    engine_id = str(info.get("ID", ""))
    if not engine_id:
        return ""
    return f"{engine_id} {info.get('Name', '')}:{info.get('DockerRootDir', '')}"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _local_socket(base_url: str | None) -> str | None:
    """The path of the engine's unix socket when it is one on this machine (base_url, else DOCKER_HOST, else the
    default), None for any other address or when TLS settings are in the environment."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not url.startswith("unix://") or (not base_url and os.environ.get("DOCKER_TLS_VERIFY")):
        return None
    return "/" + url[len("unix://") :].lstrip("/")


#: In docker-py's long message of an engine that does not answer: the TLS library's own words for a failed handshake,
#: the connection's for a refused or dropped one.
_UNREACHABLE_CAUSES = (
    r"\[SSL: \w+\] ([^(]+?) \(",
    r"\[Errno -?\d+\] ([^'\")]+)",
    r"RemoteDisconnected\('([^']+)'",
)


def _unreachable_reason(exc: Exception) -> str:
    """What went wrong, in a few words (_UNREACHABLE_CAUSES, else the message's first words)."""
    text = str(exc)
    for pattern in _UNREACHABLE_CAUSES:
        found = re.search(pattern, text)
        if found:
            return found.group(1).strip()
    return text.split("(")[0].strip().rstrip(":")


def ask_socket(path: str, url: str, timeout: float = 10) -> tuple[int, Any]:
    """GET url from the engine at the unix socket path: (HTTP status, decoded JSON or None). OSError when the socket
    does not answer."""
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        body = response.read()
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from None
    finally:
        connection.close()
    try:
        return response.status, json.loads(body) if body.strip() else None
    except ValueError:
        return response.status, None
