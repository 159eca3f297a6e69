"""The one door to Docker. Every call to the engine goes through here, so error mapping, labels and cleanup
live in one place. Callers get plain values and rasa-gpu errors, never docker SDK exceptions.

docker-py (with requests and urllib3, about 0.2 s to import) loads on the first call that needs it. The two
questions of a cache-hit `build` (is the engine there, which id has this image) go to an engine on this machine's
unix socket with the standard library's http.client, read-only.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import io
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import gpu as gpu_rules
from . import signals
from .errors import (
    BuildError,
    ComposeError,
    EngineUnavailable,
    GpuUnavailable,
    PullError,
    PushError,
    RasaGpuError,
    RegistryUnreachable,
)
from .redact import redact

if TYPE_CHECKING:
    import docker.errors
    from docker.models.containers import Container

    import docker
else:

    class _OnFirstUse:
        """`docker` for this module, imported when an attribute is first read (an except clause that is reached, a
        client being made)."""

        def __getattr__(self, name: str) -> Any:
            module = importlib.import_module("docker")
            importlib.import_module("docker.errors")
            globals()["docker"] = module
            return getattr(module, name)

    docker = _OnFirstUse()

LABEL = "io.rasa-gpu"
DEFAULT_SOCKET = "the default socket (/var/run/docker.sock)"
#: The Python (X.Y) of a base image, set by `rasa-gpu base-image`; read by image_python.
PYTHON_LABEL = f"{LABEL}.python"
#: Set in a tied container: the entry script then ends the container when its stdin closes.
TIED_ENV = "RASA_GPU_TIED"
LineSink = Callable[[str], None]

START_HINT = (
    "start one (Debian/Ubuntu: `sudo systemctl start docker`, or `sudo dockerd &`; "
    "see https://docs.docker.com/engine/install/) or point DOCKER_HOST at a running engine"
)


@dataclass(frozen=True)
class ContainerSpec:
    """Everything about a container rasa-gpu starts, as data: built by pure functions, tested without an engine."""

    image: str
    command: list[str]
    name: str
    labels: dict[str, str]
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a license: never shown
    working_dir: str | None = None
    binds: dict[str, str] = field(default_factory=dict)  # host path -> container path (read-write)
    volumes: dict[str, str] = field(default_factory=dict)  # the engine's named volume -> container path
    gpu: gpu_rules.GpuRequest | None = None
    entrypoint: list[str] | None = None
    cpus: float | None = None  # e.g. 2.0: at most two cores' worth of CPU time
    memory: str | None = None  # e.g. "8g"
    #: The container ends when rasa-gpu's process is gone, even after a SIGKILL: rasa-gpu holds its stdin open and
    #: the image's entry script (docker/rasa-gpu-entry.py) exits when stdin closes.
    tied: bool = False
    #: A terminal for `rasa shell` and friends: the container gets a TTY, and rasa-gpu's attach is its stdin (the
    #: engine closes that stdin when the attach ends, so it ends with rasa-gpu too).
    terminal: bool = False
    network: str | None = None  # a network to join besides the default (the services' network of `up`)
    stop_timeout: int = 2  # seconds between SIGTERM and SIGKILL when it has to be stopped

    def create_kwargs(self) -> dict[str, Any]:
        from docker.types import DeviceRequest, Mount

        environment = dict(self.environment)
        if self.tied:
            environment[TIED_ENV] = "1"
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "name": self.name,
            "labels": self.labels,
            "environment": environment,
            "mounts": [Mount(target=dst, source=src, type="bind") for src, dst in self.binds.items()]
            + [Mount(target=dst, source=name, type="volume") for name, dst in self.volumes.items()],
            "init": True,  # PID 1 forwards SIGTERM to Rasa; without an init Rasa would ignore it
            "auto_remove": True,  # the engine removes it once it exits, whether rasa-gpu is still there or not
            # Not detached with an open stdin: the engine sets StdinOnce, so stdin closes when rasa-gpu's attach ends.
            "detach": not (self.tied or self.terminal),
            "stdin_open": self.tied or self.terminal,
            "tty": self.terminal,
        }
        if self.network:
            kwargs["network"] = self.network
        if self.user:
            kwargs["user"] = self.user
        if self.working_dir:
            kwargs["working_dir"] = self.working_dir
        if self.entrypoint is not None:
            kwargs["entrypoint"] = self.entrypoint
        if self.cpus is not None:
            kwargs["nano_cpus"] = int(self.cpus * 1e9)
        if self.memory is not None:
            kwargs["mem_limit"] = self.memory
        if self.gpu is not None and self.gpu.wanted:
            request = self.gpu.device_request()
            kwargs["device_requests"] = [
                DeviceRequest(
                    count=request.get("Count"),  # type: ignore[arg-type]
                    device_ids=request.get("DeviceIDs"),  # type: ignore[arg-type]
                    capabilities=request["Capabilities"],  # type: ignore[arg-type]
                )
            ]
        return kwargs


#: Roles of containers that live only as long as the rasa-gpu process that started them (services are not among them).
ORPHAN_ROLES = ("train", "chown", "probe", "transfer", "rasa")


def _alive(pid: str) -> bool:
    """Whether a process with this pid runs on this host (one we may not signal counts as running)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return int(pid) > 0


def labels_for(role: str, bot_root: Path, **extra: str) -> dict[str, str]:
    return {
        f"{LABEL}.role": role,
        f"{LABEL}.bot": str(bot_root),
        f"{LABEL}.host": socket.gethostname(),
        f"{LABEL}.pid": str(os.getpid()),
        **{f"{LABEL}.{k}": v for k, v in extra.items()},
    }


class RunningContainer:
    """A started container: its output, its exit code, and a stop that always removes it."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._socket: Any = None
        self._exit: Any = None  # the engine's answer to "wait for the next exit", asked before the start

    @property
    def id(self) -> str:
        return str(self._container.id)

    def attach(self, stdin: bool) -> None:
        """Before the start: connect to stdout/stderr (and stdin, for a tied container) so nothing is missed, and
        ask for the exit code (an auto-removed container cannot be asked afterwards). Attaching gives the raw stream
        as it is written; the log driver would hold back tqdm's \r updates until the next newline."""
        api = self._container.client.api
        params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1, "logs": 1}
        self._socket = api.attach_socket(self.id, params=params)
        # docker-py's wait() blocks until the exit; this sends the same request and returns once it is registered.
        self._exit = api._post(
            api._url("/containers/{0}/wait", self.id),
            params={"condition": "next-exit"},
            stream=True,
            timeout=None,
        )
        api._raise_for_status(self._exit)

    def output(self, tty: bool = False) -> Iterator[bytes]:
        """stdout and stderr as they come, until the container exits (one raw stream with a TTY)."""
        for _stream, data in self.frames(tty):
            yield data

    def frames(self, tty: bool = False) -> Iterator[tuple[int, bytes]]:
        """(stream, bytes) as they come, 1 for stdout and 2 for stderr, until the container exits: to split into
        lines per stream (progress.split_stream_lines), as the two interleave mid-line."""
        from docker.utils.socket import frames_iter

        try:
            yield from frames_iter(self._socket, tty=tty)
        except (OSError, docker.errors.NotFound):
            return

    def send(self, data: bytes) -> None:
        """Write to the container's stdin (attached with stdin)."""
        self._socket._sock.sendall(data)

    def resize(self, rows: int, columns: int) -> None:
        """Tell the container's TTY the terminal's size."""
        with contextlib.suppress(docker.errors.APIError):  # not started yet or gone: the next one catches up
            self._container.resize(height=rows, width=columns)

    def wait(self) -> int:
        try:
            return int(self._container.client.api._result(self._exit, json=True)["StatusCode"])
        except (OSError, ValueError, KeyError, docker.errors.APIError):
            return 137

    def remove(self, stop_timeout: int = 8) -> None:
        """Stop (SIGTERM, then SIGKILL after stop_timeout seconds) and wait until it is removed. Safe to call twice;
        a signal that arrives meanwhile waits until it is done (see signals.deferred)."""
        with signals.deferred():
            self._remove(stop_timeout)
            for connection in (self._socket, self._exit):
                if connection is not None:
                    connection.close()

    def _remove(self, stop_timeout: int) -> None:
        try:
            self._container.stop(timeout=stop_timeout)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            pass
        try:
            self._container.remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
        try:  # the engine's auto-remove got there first: wait until it is done
            self._container.wait(condition="removed", timeout=30)
        except (docker.errors.NotFound, docker.errors.APIError):
            pass
        except OSError:  # the wait timed out; the engine removes it anyway
            pass


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


def _ask_socket(path: str, url: str, timeout: float = 10) -> tuple[int, Any]:
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


class Engine:
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
        cls, base_url: str | None = None, *, shown_as: str | None = None, tls: Any = None, quick: bool = True
    ) -> Engine:
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
            status, _ = _ask_socket(engine._socket, "/_ping")
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
        """The engine's own ID (`docker info`), stable across restarts; "" when it does not say."""
        try:
            return str(self.api.info().get("ID", ""))
        except docker.errors.APIError:
            return ""

    def about(self) -> EngineAbout:
        """Version, registered runtimes and data folder, for `rasa-gpu doctor`."""
        try:
            version, info = self.client.version(), self.client.info()
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"the Docker engine did not describe itself: {exc.explanation}") from None
        host = self.shown_as
        return EngineAbout(
            name=str(info.get("Name", "")),
            engine_id=str(info.get("ID", "")),
            version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            runtimes=sorted((info.get("Runtimes") or {}).keys()),
            root_dir=str(info.get("DockerRootDir", "")),
            host=host or "unix:///var/run/docker.sock",
            local=not host or host.startswith("unix://"),
        )

    # ---- images -----------------------------------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        """The local image id for a name, or None. One cheap API call, no builder."""
        if self._client is None and self._socket is not None:
            with suppress(OSError):
                status, answer = _ask_socket(self._socket, f"/images/{quote(ref, safe='/:')}/json")
                if status == 404:
                    return None
                if status == 200 and isinstance(answer, dict) and answer.get("Id"):
                    return str(answer["Id"])
        try:
            return str(self.api.inspect_image(ref)["Id"])
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise RasaGpuError(f"Docker could not inspect image {ref}: {exc.explanation}") from None

    def cuda_check(self, ref: str, script: str, libraries: list[str]) -> dict[str, Any]:
        """Run the CUDA readiness script (docker/rasa-gpu-cuda-check.py) in a throw-away container of the image; its
        JSON report, or one with the reason it gave none."""
        report, last = self.run_check(ref, script, [json.dumps(libraries)])
        return (
            report
            if report is not None
            else {"ready": False, "problems": [f"the check did not run ({last})"]}
        )

    def run_check(
        self, ref: str, script: str, args: list[str], environment: dict[str, str] | None = None
    ) -> tuple[dict[str, Any] | None, str]:
        """Run a check script (Python source) in a throw-away container of the image, on the CPU: the JSON report it
        printed last, or None and the last meaningful line of its output (else its exit code)."""
        spec = ContainerSpec(
            image=ref,
            command=args,
            entrypoint=["python3", "-c", script],
            name=f"rasa-gpu-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            labels=labels_for("probe", Path("/")),
            environment={"TF_CPP_MIN_LOG_LEVEL": "3", **(environment or {})},
        )
        code, lines = self.run_to_completion(spec)
        for line in reversed(lines):
            if line.startswith("{"):
                with suppress(ValueError):
                    report = json.loads(line)
                    if isinstance(report, dict):
                        return report, ""
        return None, _last_meaningful(lines) or f"exit code {code}"

    def image_python(self, ref: str) -> str | None:
        """The Python (X.Y) of a local image: its io.rasa-gpu.python label, else what python3 says in a throw-away
        container. None when the image has no python3 (or it says nothing a version looks like)."""
        try:
            config = self.api.inspect_image(ref).get("Config") or {}
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not inspect image {ref}: {exc.explanation or exc}") from None
        label = str((config.get("Labels") or {}).get(PYTHON_LABEL, "")).strip()
        if label:
            return label
        spec = ContainerSpec(
            image=ref,
            command=[],
            entrypoint=["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            name=f"rasa-gpu-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            labels=labels_for("probe", Path("/")),
        )
        try:
            code, lines = self.run_to_completion(spec)
        except RasaGpuError:  # no python3 in it: the build says so itself
            return None
        version = lines[-1].strip() if lines else ""
        parts = version.split(".")
        return version if code == 0 and len(parts) == 2 and all(p.isdigit() for p in parts) else None

    def python_bases(self) -> list[tuple[str, str]]:
        """(name, Python X.Y) of each local image named in rasa-gpu/base that carries the Python label: the
        registry-less bases `rasa-gpu base-image` made."""
        from .base_image import IMAGE_REPO

        try:
            images = self.api.images(filters={"label": PYTHON_LABEL})
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not list images: {exc.explanation or exc}") from None
        found = []
        for image in images:
            python = str((image.get("Labels") or {}).get(PYTHON_LABEL, "")).strip()
            for name in image.get("RepoTags") or []:
                if python and name.startswith(f"{IMAGE_REPO}:"):
                    found.append((name, python))
        return sorted(found)

    def can_pull(self, ref: str) -> bool:
        """Whether a registry answers for this image, asked without downloading it."""
        try:
            self.client.images.get_registry_data(ref)
        except docker.errors.APIError:
            return False
        return True

    def pull(self, ref: str, on_line: LineSink) -> None:
        """Pull a base image; a registry that cannot give it is RegistryUnreachable, with the way around it."""
        try:
            self._pull_stream(ref, on_line)
        except docker.errors.APIError as exc:
            reason = str(exc.explanation or exc).strip().splitlines()[0]
            where = f"the engine at {self.shown_as}" if self.shown_as else "this machine"
            raise RegistryUnreachable(
                f"base image {ref} is not on {where} and cannot be pulled ({reason}); the registry is "
                "unreachable or the name is wrong: pass --base-image with an image that engine has, or build a "
                "registry-less base with `rasa-gpu base-image`"
            ) from None

    def image_size(self, ref: str) -> int:
        """The image's size in bytes as the engine reports it (uncompressed, all layers)."""
        try:
            return int(self.api.inspect_image(ref).get("Size", 0))
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not inspect image {ref}: {exc.explanation or exc}") from None

    def tag(self, image: str, ref: str) -> None:
        """Give an image (name or id) a further name, e.g. its name in a registry."""
        repository, tag = _split_ref(ref)
        try:
            self.api.tag(image, repository, tag, force=True)
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not tag {image} as {ref}: {exc.explanation or exc}") from None

    def remove_image(self, ref: str) -> None:
        """Remove a name; the image itself goes only when no other name refers to it. A missing name is fine."""
        try:
            self.api.remove_image(ref, noprune=True)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 404:
                raise RasaGpuError(f"Docker could not remove {ref}: {exc.explanation or exc}") from None

    def push(self, ref: str, on_line: LineSink) -> str:
        """Push an image that carries its registry's name; returns the manifest digest. The login comes from the
        Docker config (DOCKER_CONFIG or ~/.docker/config.json, as written by `docker login`)."""
        repository, tag = _split_ref(ref)
        layers = _LayerProgress("pushed", on_line)
        digest = ""
        try:
            for event in self.api.push(repository, tag=tag, stream=True, decode=True):
                message = _event_error(event)
                if message is not None:
                    raise PushError(_registry_problem("push", ref, message))
                aux = event.get("aux") or {}
                if aux.get("Digest"):
                    digest = str(aux["Digest"])
                layers.feed(event)
        except docker.errors.APIError as exc:
            raise PushError(_registry_problem("push", ref, str(exc.explanation or exc))) from None
        if not digest:
            raise PushError(f"the push of {ref} ended without a digest from the registry; run it again")
        return digest

    def pull_published(self, ref: str, on_line: LineSink) -> str | None:
        """Pull an image by its registry name; returns its id, or None when the registry answers but does not have
        it. A registry that does not answer or refuses (no login) raises PullError."""
        try:
            self._pull_stream(ref, on_line)
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc)
            if _is_not_found(message) and not _is_auth_problem(message):
                return None
            raise PullError(_registry_problem("pull", ref, message)) from None
        return self.image_id(ref)

    def _pull_stream(self, ref: str, on_line: LineSink) -> None:
        """Pull, reporting progress a few lines at a time; an error event becomes an APIError."""
        repository, tag = _split_ref(ref)
        layers = _LayerProgress("pulled", on_line)
        for event in self.api.pull(repository, tag=tag, stream=True, decode=True):
            message = _event_error(event)
            if message is not None:
                raise docker.errors.APIError(message)
            layers.feed(event)

    def build(
        self,
        context: bytes,
        *,
        tag: str,
        target: str,
        labels: dict[str, str],
        on_line: LineSink,
        secret_args: dict[str, str] | None = None,
        nocache: bool = False,
    ) -> str:
        """Build from an in-memory tar context, streaming each output line; returns the image id. `nocache`: every
        step again, nothing from the layer cache (a cold build, for benchmarks). `secret_args`: build arguments that
        hold a login (images.INDEX_LOGIN_ARG: Docker keeps it out of the image's history); their values, and the
        login of any URL, are masked in every line and message that leaves here."""
        secrets = list((secret_args or {}).values())

        def shown(text: str) -> str:
            return redact(text, secrets)

        tail: deque[str] = deque(maxlen=200)  # pip's reason may come long before its last line
        step = ""
        whole = WholeLines(shown)

        def emit(found: list[str]) -> None:
            nonlocal step
            for line in found:
                if line.startswith("Step "):
                    instruction = line.split(" : ", 1)[-1]
                    if len(instruction) > 70:
                        instruction = instruction[:69] + "…"
                    step = line.split(" : ", 1)[0].replace("Step ", "step ") + f" ({instruction})"
                tail.append(line)
                on_line(line)

        try:
            stream = self.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                target=target,
                labels=labels,
                buildargs=dict(secret_args or {}),
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=False,
                decode=True,
            )
            for event in stream:
                message = _event_error(event)
                if message is not None:
                    emit(whole.rest())
                    last = shown(message.strip().splitlines()[-1])
                    cause = build_cause(list(tail))
                    if cause and "returned a non-zero code" in last:
                        last = f"{cause} (exit code {last.rsplit(': ', 1)[-1]})"
                    raise BuildError(
                        f"image build failed at {step or 'the first step'}: {last}", details=list(tail)[-20:]
                    )
                emit(whole.feed(str(event.get("stream", ""))))
            emit(whole.rest())
        except docker.errors.APIError as exc:
            raise BuildError(
                f"image build failed: {shown(str(exc.explanation or exc))}", details=list(tail)
            ) from None
        image_id = self.image_id(tag)
        if image_id is None:
            raise BuildError(f"image build finished but {tag} is missing", details=list(tail))
        return image_id

    def import_rootfs(self, tar_path: Path, ref: str, changes: list[str]) -> str:
        repository, tag = _split_ref(ref)
        try:
            self.api.import_image_from_file(str(tar_path), repository=repository, tag=tag, changes=changes)
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"docker import of {ref} failed: {exc.explanation or exc}") from None
        image_id = self.image_id(ref)
        if image_id is None:
            raise RasaGpuError(f"docker import of {ref} finished but the image is missing")
        return image_id

    # ---- containers -------------------------------------------------------------------------------------------

    @contextmanager
    def running(self, spec: ContainerSpec) -> Iterator[RunningContainer]:
        """Create and start a container that does not outlive the block: it is stopped and removed on the way out,
        whatever ends the block (an error, Ctrl+C pressed any number of times). A GPU request the engine cannot
        serve becomes GpuUnavailable, with nothing left behind."""
        container = None
        try:
            with signals.deferred():  # create, attach and start are one step: a signal raises after it
                try:
                    container = RunningContainer(self.client.containers.create(**spec.create_kwargs()))
                    container.attach(stdin=spec.tied or spec.terminal)
                    container._container.start()
                except docker.errors.ImageNotFound:
                    raise RasaGpuError(f"image {spec.image} is missing; run `rasa-gpu build` first") from None
                except docker.errors.APIError as exc:
                    raise self._container_error(exc) from None
            yield container
        finally:
            if container is not None:
                container.remove(stop_timeout=spec.stop_timeout)

    @staticmethod
    def _container_error(exc: docker.errors.APIError) -> RasaGpuError:
        message = str(exc.explanation or exc)
        if gpu_rules.is_missing_gpu_driver(message):
            return GpuUnavailable(f"{gpu_rules.NO_RUNTIME}; {gpu_rules.TOOLKIT_HINT}")
        return RasaGpuError(f"Docker could not start the container: {message}")

    def remove_leftovers(self, labels: dict[str, str]) -> int:
        """Remove every container (running or not) carrying all these labels; returns how many."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        removed = 0
        for container in self.client.containers.list(all=True, filters=filters, ignore_removed=True):
            RunningContainer(container).remove(stop_timeout=2)
            removed += 1
        return removed

    def remove_orphans(self, bot_root: Path) -> int:
        """Remove the containers that rasa-gpu on this host started for this bot and whose rasa-gpu process is gone
        (SIGKILL, power loss); returns how many. Containers of live rasa-gpu processes and of other hosts sharing
        this engine are left alone."""
        filters = {"label": [f"{LABEL}.bot={bot_root}", f"{LABEL}.host={socket.gethostname()}"]}
        removed = 0
        for container in self.client.containers.list(all=True, filters=filters, ignore_removed=True):
            role = container.labels.get(f"{LABEL}.role")
            if role in ORPHAN_ROLES and not _alive(container.labels.get(f"{LABEL}.pid", "")):
                RunningContainer(container).remove(stop_timeout=2)
                removed += 1
        return removed

    def network_exists(self, name: str) -> bool:
        try:
            self.client.networks.get(name)
        except docker.errors.NotFound:
            return False
        return True

    def run_to_completion(self, spec: ContainerSpec) -> tuple[int, list[str]]:
        """Run a short helper container; returns exit code and its output lines. The container is always removed."""
        with self.running(spec) as running:
            lines = b"".join(running.output()).decode("utf-8", errors="replace").splitlines()
            return running.wait(), lines

    # ---- volumes and files (the workspace of an engine elsewhere) ---------------------------------------------

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """Create a named volume (an existing one of that name is reused as it is)."""
        try:
            self.api.create_volume(name, labels=labels)
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not create volume {name}: {exc.explanation or exc}") from None

    def remove_volume(self, name: str) -> None:
        try:
            self.api.remove_volume(name, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not remove volume {name}: {exc.explanation or exc}") from None

    def volume_exists(self, name: str) -> bool:
        try:
            self.api.inspect_volume(name)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not inspect volume {name}: {exc.explanation or exc}") from None
        return True

    @contextmanager
    def holder(self, spec: ContainerSpec) -> Iterator[str]:
        """A container that is created and never started, so files can be copied into and out of its volumes;
        removed on the way out whatever happens. Yields its id."""
        with signals.deferred():
            try:
                kwargs = {**spec.create_kwargs(), "auto_remove": False, "detach": True, "stdin_open": False}
                container = self.client.containers.create(**kwargs)
            except docker.errors.ImageNotFound:
                raise RasaGpuError(f"image {spec.image} is missing; run `rasa-gpu build` first") from None
            except docker.errors.APIError as exc:
                raise self._container_error(exc) from None
        try:
            yield str(container.id)
        finally:
            with signals.deferred(), suppress(docker.errors.NotFound):
                container.remove(force=True, v=False)

    def put_files(self, container_id: str, folder: str, tar_bytes: bytes) -> None:
        """Unpack a tar archive into a (created) container's folder; volumes mounted there receive the files."""
        try:
            self.api.put_archive(container_id, folder, tar_bytes)
        except docker.errors.APIError as exc:
            raise RasaGpuError(
                f"Docker could not copy files into {folder}: {exc.explanation or exc}"
            ) from None

    def get_files(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar archive of a path in a (created) container, as it streams in."""
        try:
            stream, _stat = self.api.get_archive(container_id, path)
        except docker.errors.NotFound:
            raise RasaGpuError(
                f"{path} is missing in the run's volume; the training wrote nothing there"
            ) from None
        except docker.errors.APIError as exc:
            raise RasaGpuError(f"Docker could not copy {path} back: {exc.explanation or exc}") from None
        yield from stream

    def remove_orphan_volumes(self, bot_root: Path) -> int:
        """Volumes of single runs (role run) that rasa-gpu on this host made for this bot, whose process is gone."""
        filters = {
            "label": [f"{LABEL}.bot={bot_root}", f"{LABEL}.host={socket.gethostname()}", f"{LABEL}.role=run"]
        }
        removed = 0
        try:
            volumes = self.api.volumes(filters=filters).get("Volumes") or []
        except docker.errors.APIError:
            return 0
        for volume in volumes:
            if not _alive((volume.get("Labels") or {}).get(f"{LABEL}.pid", "")):
                self.remove_volume(volume["Name"])
                removed += 1
        return removed

    # ---- services (containers that compose started) -----------------------------------------------------------

    def gpu_request_works(self, image: str, request: gpu_rules.GpuRequest) -> bool:
        """Whether the engine grants this GPU request: a throw-away container that runs `true` with it."""
        spec = ContainerSpec(
            image=image,
            command=[],
            entrypoint=["true"],
            name=f"rasa-gpu-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            labels=labels_for("probe", Path("/")),
            gpu=request,
        )
        try:
            self.run_to_completion(spec)
        except GpuUnavailable:
            return False
        return True

    def project_containers(self, project: str) -> list[ServiceState]:
        """The containers compose made for a project, running or not."""
        filters = {"label": [f"com.docker.compose.project={project}"]}
        states = []
        for container in self.client.containers.list(all=True, filters=filters, ignore_removed=True):
            attrs = container.attrs
            state = attrs.get("State", {})
            ports = {
                key.split("/")[0]: int(binding[0]["HostPort"])
                for key, binding in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items()
                if binding
            }
            states.append(
                ServiceState(
                    service=container.labels.get("com.docker.compose.service", container.name),
                    container=container.name,
                    status=str(state.get("Status", "")),
                    health=str((state.get("Health") or {}).get("Status", "")),
                    ports=ports,
                    id=str(container.id),
                )
            )
        return sorted(states, key=lambda s: s.service)

    def logs_tail(self, container_id: str, lines: int = 20) -> list[str]:
        try:
            raw = self.client.containers.get(container_id).logs(tail=lines, stdout=True, stderr=True)
        except docker.errors.NotFound:
            return []
        return raw.decode("utf-8", errors="replace").splitlines()


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


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    status: str  # running, exited, ...
    health: str  # healthy, unhealthy, starting, or "" without a health check
    ports: dict[str, int]  # container port -> host port
    id: str


class Compose:
    """docker compose (v2, the CLI plugin) or docker-compose (v1), whichever is installed. RASA_GPU_COMPOSE picks one
    ("docker compose" or "docker-compose"). Runs against the same engine as the rest (DOCKER_HOST)."""

    CANDIDATES = (("docker", "compose"), ("docker-compose",))

    def __init__(self, command: tuple[str, ...], version: str) -> None:
        self.command = command
        self.version = version

    @property
    def flavour(self) -> str:
        return "v2" if self.command == ("docker", "compose") else "v1"

    @classmethod
    def find(cls) -> Compose:
        wanted = os.environ.get("RASA_GPU_COMPOSE")
        candidates = [tuple(wanted.split())] if wanted else list(cls.CANDIDATES)
        for command in candidates:
            if not shutil.which(command[0]):
                continue
            try:
                proc = subprocess.run(
                    [*command, "version", "--short"], capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if proc.returncode == 0 and proc.stdout.strip():
                return cls(command, proc.stdout.strip())
        which = (
            f"'{wanted}' (RASA_GPU_COMPOSE)" if wanted else "neither `docker compose` nor `docker-compose`"
        )
        raise ComposeError(
            f"{which} is installed; install Docker Compose (https://docs.docker.com/compose/install/, "
            "Debian/Ubuntu: `sudo apt-get install docker-compose`)"
        )

    def run(
        self,
        project: str,
        files: list[Path],
        args: list[str],
        *,
        profiles: tuple[str, ...] = (),
        stream: bool = False,
        secrets: dict[str, str] | None = None,
    ) -> list[str]:
        """Run one compose command for the project; returns its output lines, or raises ComposeError with its tail.
        With stream=True the output goes straight to this process's terminal (logs -f) and nothing is returned.
        `secrets` reach compose in its environment only (the compose file names them without a value)."""
        command = [*self.command, "-p", project, "--project-directory", str(files[0].parent)]
        for file in files:
            command += ["-f", str(file)]
        for profile in profiles:
            command += ["--profile", profile]
        command += args
        env = {**os.environ, **secrets} if secrets else None
        if stream:
            subprocess.run(command, check=False, env=env)
            return []
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines = proc.stdout.splitlines()
        if proc.returncode != 0:
            raise ComposeError(
                f"`{' '.join(self.command)} {' '.join(args)}` failed (exit {proc.returncode}): "
                f"{_last_meaningful(lines)}",
                details=lines[-20:],
            )
        return lines


# ---- registries ----------------------------------------------------------------------------------------------------


def _event_error(event: dict[str, Any]) -> str | None:
    """The error message of a build, pull or push stream event, or None."""
    if "error" not in event and "errorDetail" not in event:
        return None
    return str(event.get("error") or (event.get("errorDetail") or {}).get("message", ""))


def _split_ref(ref: str) -> tuple[str, str]:
    """repository and tag of `host:port/name:tag` (the last ':' after the last '/' starts the tag)."""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = ref.rpartition(":")
        return repository, tag
    return ref, "latest"


def _registry_of(ref: str) -> str:
    first = ref.split("/", 1)[0]
    return first if "/" in ref and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _is_auth_problem(message: str) -> bool:
    lowered = message.lower()
    return any(
        needle in lowered
        for needle in (
            "unauthorized",
            "authentication required",
            "no basic auth credentials",
            "denied",
            "docker login",
            "incorrect username or password",
        )
    )


def _is_not_found(message: str) -> bool:
    lowered = message.lower()
    return "manifest unknown" in lowered or "not found" in lowered or "name unknown" in lowered


def _registry_problem(action: str, ref: str, message: str) -> str:
    """One line saying why a registry did not take (or give) an image, and what to do about it."""
    registry = _registry_of(ref)
    lowered = message.lower()
    reason = message.strip().splitlines()[0] if message.strip() else "no reason given"
    if _is_auth_problem(message):
        return f"registry {registry} refused the {action} (not logged in): run `docker login {registry}`"
    if "server gave http response to https client" in lowered:
        return (
            f'registry {registry} speaks plain HTTP but the Docker engine expects HTTPS: add "{registry}" to '
            "insecure-registries in /etc/docker/daemon.json and restart dockerd, or serve the registry with TLS"
        )
    if any(n in lowered for n in ("connection refused", "no such host", "i/o timeout", "no route to host")):
        return (
            f"no registry answers at {registry} ({reason}); check the address and port, "
            "and that the registry is running"
        )
    if "x509" in lowered or "certificate" in lowered:
        return (
            f"the Docker engine does not trust the TLS certificate of {registry} ({reason}); put its CA in "
            f"/etc/docker/certs.d/{registry}/ca.crt"
        )
    return f"the {action} of {ref} failed: {reason}"


class WholeLines:
    """A build's stream as whole lines, each passed through `shown` (the masking of logins): Docker hands on a
    tool's output in the pieces it was written in (uv writes one line in several), and a login split across two
    pieces would be masked in neither."""

    def __init__(self, shown: Callable[[str], str] = lambda text: text) -> None:
        self.shown, self.pending = shown, ""

    def feed(self, text: str) -> list[str]:
        parts = re.split(r"\r\n|\r|\n", self.pending + text)
        self.pending = parts.pop()
        return [self.shown(part) for part in parts if part.strip()]

    def rest(self) -> list[str]:
        """What is left at the end of the stream (a last line without its newline)."""
        rest, self.pending = self.pending, ""
        return [self.shown(rest)] if rest.strip() else []


class _LayerProgress:
    """Turns the per-layer events of a push or pull into a few lines: what the engine says about the whole image,
    one line per finished layer and, at most every `every` seconds, how many bytes have moved."""

    DONE = ("Pushed", "Layer already exists", "Pull complete", "Already exists")
    MOVING = ("Pushing", "Downloading")

    def __init__(self, verb: str, on_line: LineSink, every: float = 10.0) -> None:
        self.verb, self.on_line, self.every = verb, on_line, every
        self.layers: dict[str, tuple[int, int]] = {}
        self.last = time.monotonic()

    def feed(self, event: dict[str, Any]) -> None:
        status = str(event.get("status", ""))
        layer = event.get("id")
        # About the whole image ("Pulling from" names the tag as its id).
        if not layer or status.startswith("Pulling from"):
            if status:
                self.on_line(status)
            return
        detail = event.get("progressDetail") or {}
        if status in self.MOVING and detail.get("total"):
            self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
            if time.monotonic() - self.last >= self.every:
                self.last = time.monotonic()
                moved = sum(current for current, _ in self.layers.values())
                total = sum(total for _, total in self.layers.values())
                self.on_line(
                    f"{self.verb} {moved / 1e6:,.0f} MB of {total / 1e6:,.0f} MB ({100 * moved // total}%) so far"
                )
        elif status in self.DONE or status.startswith("Mounted from"):
            self.on_line(f"{layer}: {status}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m|\[(?:0|9[0-9])m")
#: pip's and uv's lines that say why an install failed, best first.
_PIP_REASONS = (
    "No matching distribution found for",
    "ResolutionImpossible",
    "THESE PACKAGES DO NOT MATCH THE HASHES",
    "Could not find a version that satisfies",
    "Cannot install",
    "Hashes are required",
)


def build_cause(lines: list[str]) -> str | None:
    """The reason a build step failed, from its output: pip's own line (with the package whose build needed it,
    when a build dependency was missing), uv's error with its last cause, or the last line of a Python traceback;
    None when the output says nothing that looks like one."""
    text = [_ANSI.sub("", line).strip() for line in lines]
    text = [line for line in text if line]
    if "The conflict is caused by:" in text:  # pip's resolver names each side on a line of its own
        sides = list(itertools.takewhile(_a_side, text[text.index("The conflict is caused by:") + 1 :]))
        if sides:
            return "conflicting requirements: " + "; ".join(sides)
    for reason in _PIP_REASONS:
        found = next((line for line in text if reason in line), None)
        if found is not None:
            found = found.removeprefix("ERROR: ").removeprefix("error: ")
            if any("install build dependencies did not run successfully" in line for line in text):
                building = [
                    ln.split()[1] for ln in text if ln.startswith("Collecting ") and len(ln.split()) > 1
                ]
                if building:
                    found += f" (needed to build {building[-1]})"
            return found
    uv_error = next(
        (i for i, ln in enumerate(text) if ln.startswith("error: ") and "subprocess-exited" not in ln), None
    )
    if uv_error is not None:
        causes = [ln.removeprefix("cause: ") for ln in text[uv_error + 1 :] if ln.startswith("cause: ")]
        first = text[uv_error].removeprefix("error: ")
        return f"{first}: {causes[-1]}" if causes else first
    exception = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|NotFound)\b.*:")
    found = next((line for line in reversed(text) if exception.match(line)), None)
    return found


def _a_side(line: str) -> bool:
    return line.startswith("The user requested") or " depends on " in line


def _last_meaningful(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return "no output"
