"""Containers: what rasa-gpu starts (ContainerSpec, as data), a started one (RunningContainer), and starting them so
that none outlives the command that started it: running, holders for files, leftovers, orphans, logs."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import gpu as gpu_rules
from .. import signals
from ..entry_contract import TIED_ENV
from ..errors import GpuUnavailable, RasaGpuError
from .connection import Connection
from .sdk import mapped

if TYPE_CHECKING:
    import docker.errors
    from docker.models.containers import Container

    import docker
else:
    from .sdk import docker

LABEL = "io.rasa-gpu"
#: Roles of containers that live only as long as the rasa-gpu process that started them (services are not among them).
ORPHAN_ROLES = ("train", "chown", "probe", "transfer", "rasa")


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
                    count=request.get("Count"),
                    device_ids=request.get("DeviceIDs"),
                    capabilities=request["Capabilities"],
                )
            ]
        return kwargs


def labels_for(role: str, bot_root: Path, **extra: str) -> dict[str, str]:
    return {
        f"{LABEL}.role": role,
        f"{LABEL}.bot": str(bot_root),
        f"{LABEL}.host": socket.gethostname(),
        f"{LABEL}.pid": str(os.getpid()),
        **({f"{LABEL}.started": started} if (started := process_start(os.getpid())) else {}),
        **{f"{LABEL}.{k}": v for k, v in extra.items()},
    }


#: The label that names what a probe container checks (cuda, smoke, python, gpu-request, ...).
CHECK_LABEL = f"{LABEL}.check"


def probe_spec(
    image: str,
    entrypoint: list[str],
    check: str,
    *,
    args: list[str] | None = None,
    environment: dict[str, str] | None = None,
    gpu: gpu_rules.GpuRequest | None = None,
) -> ContainerSpec:
    """A throw-away container that asks an image one question (its `check`, in the CHECK_LABEL); run it with
    Engine.run_to_completion. Its owner (images, gpu) decides what the answer means."""
    return ContainerSpec(
        image=image,
        command=list(args or []),
        entrypoint=entrypoint,
        name=f"rasa-gpu-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        labels=labels_for("probe", Path("/"), check=check),
        environment=dict(environment or {}),
        gpu=gpu,
    )


def process_start(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (/proc/PID/stat's field 22): with the pid, it names one
    process, where a pid alone may by now be another's (pids wrap around, at 32768 on many hosts). None where /proc
    has no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "PID (name)", whose name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None


def alive(labels: dict[str, str]) -> bool:
    """Whether the rasa-gpu process that made something (its pid label, and its start time where the label has it)
    still runs on this host; one we may not signal counts as running."""
    pid = labels.get(f"{LABEL}.pid", "")
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    if int(pid) <= 0:
        return False
    started = labels.get(f"{LABEL}.started")
    if started is None:  # made by a rasa-gpu that did not label it (older), or on a host without /proc
        return True
    now = process_start(int(pid))
    return now is None or now == started  # another start time: the pid is another process's now


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

    def start(self) -> None:
        self._container.start()

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


def _start_problem(explanation: str) -> RasaGpuError:
    """Why the engine did not create or start a container: a GPU request it cannot serve is GpuUnavailable."""
    if gpu_rules.is_missing_gpu_driver(explanation):
        return GpuUnavailable(f"{gpu_rules.NO_RUNTIME}; {gpu_rules.TOOLKIT_HINT}")
    return RasaGpuError(f"Docker could not start the container: {explanation}")


@contextmanager
def _created(image: str) -> Iterator[None]:
    """The engine's errors while a container of `image` is created or started (a missing image says how to get it)."""
    with mapped(_start_problem):
        try:
            yield
        except docker.errors.ImageNotFound:
            raise RasaGpuError(f"image {image} is missing; run `rasa-gpu build` first") from None


class Containers(Connection):
    """The containers of an engine."""

    @contextmanager
    def running(self, spec: ContainerSpec) -> Iterator[RunningContainer]:
        """Create and start a container that does not outlive the block: it is stopped and removed on the way out,
        whatever ends the block (an error, Ctrl+C pressed any number of times). A GPU request the engine cannot
        serve becomes GpuUnavailable, with nothing left behind."""
        container = None
        try:
            with signals.deferred(), _created(spec.image):  # create, attach and start are one step
                container = RunningContainer(self.client.containers.create(**spec.create_kwargs()))
                container.attach(stdin=spec.tied or spec.terminal)
                container.start()
            yield container
        finally:
            if container is not None:
                container.remove(stop_timeout=spec.stop_timeout)

    def run_to_completion(self, spec: ContainerSpec) -> tuple[int, list[str]]:
        """Run a short helper container; returns exit code and its output lines. The container is always removed."""
        with self.running(spec) as running:
            lines = b"".join(running.output()).decode("utf-8", errors="replace").splitlines()
            return running.wait(), lines

    @contextmanager
    def holder(self, spec: ContainerSpec) -> Iterator[str]:
        """A container that is created and never started, so files can be copied into and out of its volumes;
        removed on the way out whatever happens. Yields its id."""
        with signals.deferred(), _created(spec.image):
            kwargs = {**spec.create_kwargs(), "auto_remove": False, "detach": True, "stdin_open": False}
            container = self.client.containers.create(**kwargs)
        try:
            yield str(container.id)
        finally:
            with signals.deferred(), suppress(docker.errors.NotFound):
                container.remove(force=True, v=False)

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
            if role in ORPHAN_ROLES and not alive(container.labels):
                RunningContainer(container).remove(stop_timeout=2)
                removed += 1
        return removed

    def network_exists(self, name: str) -> bool:
        try:
            self.client.networks.get(name)
        except docker.errors.NotFound:
            return False
        return True

    def logs_tail(self, container_id: str, lines: int = 20) -> list[str]:
        try:
            raw = self.client.containers.get(container_id).logs(tail=lines, stdout=True, stderr=True)
        except docker.errors.NotFound:
            return []
        return [str(line) for line in raw.decode("utf-8", errors="replace").splitlines()]
