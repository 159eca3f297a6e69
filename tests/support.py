"""What the tests share besides fixtures: the example bot, running the CLI as a user does, one-line errors, free
ports, leftovers. Test files import these from here; tests/conftest.py holds the fixtures and hooks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_BOT = REPO / "example_bot"
#: A uid/gid that is not root and not the test runner: the bot owner in ownership tests.
BOT_UID = 4321


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    pid: int = 0  # the rasa-gpu process's: its containers carry it (io.rasa-gpu.pid)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rasa_gpu", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> CliResult:
    with start_cli(*args, env=env) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return CliResult(proc.returncode, stdout, stderr, proc.pid)


def assert_one_line_error(result: CliResult, code: int | None, *needles: str) -> str:
    """The CLI failed as it should: exit `code` (None: any non-zero), one `error:` line holding every needle, no
    traceback. Returns the line."""
    assert result.returncode == code if code is not None else result.returncode != 0, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for needle in needles:
        assert needle in line, line
    return line


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 300) -> list[str]:
    """Read the process's stderr until a line contains needle; returns the lines read."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"never saw {needle!r}; stderr so far:\n{''.join(lines)}")


#: What a bot folder holds besides its own sources (example_bot/.gitignore, plus the compose files of `rasa-gpu up`):
#: a user's trained models, Rasa's training cache, rasa-gpu's history and state, the user's services.
GENERATED = (
    "models",
    ".rasa",
    ".rasa-gpu",
    "results",
    "__pycache__",
    "*.pyc",
    ".git",
    ".vscode",
    "rasa-gpu.compose.yml*",
    "rasa-gpu.compose.override.yml",
)
#: Never copied, not even with the state: a training's lock and temporary output.
TRANSIENT = ("train.lock", "train.pid", "tmp", "__pycache__", "*.pyc")


def copy_bot(src: Path, dst: Path, owner: int | None = BOT_UID, *, state: bool | None = None) -> Path:
    """Copy a bot for a test. A bot of this repository (example_bot) is copied as its sources only, so a test never
    sees the models, cache or history of the user's own trainings; a bot a test made (trained_bot) is copied with its
    state (its models, warm cache and history), which is what its copies are for. `state` overrides that choice."""
    if state is None:
        state = not src.resolve().is_relative_to(REPO)
    ignore = shutil.ignore_patterns(*(TRANSIENT if state else GENERATED))
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)
    if owner is not None and os.geteuid() == 0:
        for path in [dst, *dst.rglob("*")]:
            os.lchown(path, owner, owner)
    return dst


def models(bot: Path) -> list[Path]:
    return sorted((bot / "models").glob("*.tar.gz")) if (bot / "models").is_dir() else []


# ---- the engine -----------------------------------------------------------------------------------------------------


def require_docker() -> bool:
    return os.environ.get("RASA_GPU_REQUIRE_DOCKER") == "1" or os.environ.get("CI") == "true"


def leftover_containers(client, bot: Path) -> list:
    return client.containers.list(all=True, filters={"label": f"io.rasa-gpu.bot={bot.resolve()}"})


# ---- ports -----------------------------------------------------------------------------------------------------------

#: rasa-gpu's default host ports (rasa, actions, tensorboard, jupyter): a user's own services may hold them.
DEFAULT_SERVICE_PORTS = (5005, 5055, 6006, 8888)


def free_ports(count: int) -> list[int]:
    """`count` different ports that nothing listens on at 127.0.0.1 right now (the kernel picks them)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:  # all bound at once, so no port is handed out twice
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


# ---- nothing left behind ---------------------------------------------------------------------------------------------

COMPOSE_DIR_LABEL = "com.docker.compose.project.working_dir"


def remove_containers_under(client, root: Path) -> list[str]:
    """Remove every container started for a bot folder under root, and the networks of its compose projects.
    Trainings and builds carry io.rasa-gpu.bot=<bot folder> (engine.labels_for); services started by `rasa-gpu up`
    carry compose's project labels, whose working_dir is the bot folder. Returns what was removed, for a message."""
    import docker.errors

    root = root.resolve()
    found = {}
    for label in ("io.rasa-gpu.bot", COMPOSE_DIR_LABEL):
        for container in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
            if Path(container.labels[label]).is_relative_to(root):
                found[container.id] = container
    removed, projects = [], set()
    for container in found.values():
        projects.add(container.labels.get("com.docker.compose.project"))
        removed.append(f"{container.name} ({container.status}, {container.attrs['Config']['Image']})")
        with suppress(docker.errors.NotFound):  # went away by itself meanwhile
            container.remove(force=True)
    for project in projects - {None}:
        for network in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
            with suppress(docker.errors.APIError):  # gone already, or used by a container from elsewhere
                network.remove()
    return removed


def send_and_wait(proc: subprocess.Popen[str], sig: int, timeout: float = 30) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=timeout)
    return proc.returncode, time.monotonic() - started


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


# ---- a trained model, loaded for real ----------------------------------------------------------------------------

#: How long a test waits for a Rasa server to load its model: a bound, not a speed claim. About 30 s alone on 2 cores;
#: several times that while the parallel workers train beside it.
RASA_SERVER_WAIT = 600


def intent_of(docker_client, image: str, bot: Path, model: Path, text: str) -> str:
    """The intent that a Rasa server on this machine's engine gives `text` with that model."""
    container = docker_client.containers.run(
        image,
        ["run", "--enable-api", "--model", f"/bot/models/{model.name}", "--port", "5005"],
        entrypoint=["rasa"],
        user=f"{BOT_UID}:{BOT_UID}",
        working_dir="/bot",
        detach=True,
        volumes={str(bot): {"bind": "/bot", "mode": "ro"}},
        ports={"5005/tcp": ("127.0.0.1", None)},
        environment={"HOME": "/tmp"},
        labels={"io.rasa-gpu.test": "parse"},
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5005/tcp"][0]["HostPort"]
        deadline = time.monotonic() + RASA_SERVER_WAIT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as resp:
                    if json.load(resp).get("model_file"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, container.logs()[-2000:].decode()
            time.sleep(1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/model/parse",
            method="POST",
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return str(json.load(resp)["intent"]["name"])
    finally:
        container.remove(force=True)
