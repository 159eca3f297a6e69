"""Shared fixtures. Docker tests talk to a real engine and real Rasa.

Without an engine they skip, saying why; with RASA_GPU_REQUIRE_DOCKER=1 (set by .ci/run) a missing engine fails.
RASA_GPU_BASE_IMAGE picks the base image (the registry-less one where no registry answers);
RASA_GPU_TEST_STUB_HOST names a second engine started with a stand-in nvidia-container-runtime-hook, and
RASA_GPU_TEST_STUB_NETNS its own network namespace (scripts/engine.sh gpu-stub prints both).

scripts/test.sh runs the tests in parallel workers (pytest-xdist, one file per worker at a time): what the whole run
shares (the built image, the one trained example_bot, the image on the stand-in engine) is made once, by the first
worker that needs it, under a lock in the run's folder; every other check looks only at what its own test made.

Tests start from the bot's own sources (never the models, caches or history a user's training left in example_bot/),
publish services on free ports (never the defaults a user's own services may hold), and leave no container behind:
one that a test (or the whole run) leaves under pytest's temporary folders is removed and reported as an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

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


def _require_docker() -> bool:
    return os.environ.get("RASA_GPU_REQUIRE_DOCKER") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def docker_client():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        if _require_docker():
            pytest.fail(f"no Docker engine answers, but this run requires one: {exc}")
        pytest.skip(f"no Docker engine answers ({exc}); start one to run the Docker tests")
    return client


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> Path:
    """This run's folder, shared by its parallel workers: the parent of a worker's own temporary folder (xdist
    makes each worker's below the run's), or that folder itself in a run without workers."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def built_image(docker_client, run_folder) -> str:
    """Build (or find) the example bot's image through the tool itself, exactly as a user would (one worker at a
    time: the first builds it when it is missing, the others find it)."""
    with FileLock(run_folder / "built_image.lock"):
        result = run_cli("build", str(EXAMPLE_BOT))
    assert result.returncode == 0, result.output
    tag = result.stdout.split()[0]
    assert docker_client.images.get(tag)
    return tag


@pytest.fixture(scope="session")
def trained_bot(built_image, run_folder) -> tuple[Path, CliResult]:
    """example_bot, owned by a non-root uid, trained once for real per run: the first worker that needs it trains,
    the others wait for it and take its result. Tests copy it (with its warm Rasa cache)."""
    bot, record = run_folder / "trained" / "bot", run_folder / "trained.json"
    with FileLock(run_folder / "trained.lock"):
        if not record.exists():
            copy_bot(EXAMPLE_BOT, bot)
            record.write_text(json.dumps(dataclasses.asdict(run_cli("train", str(bot)))))
    result = CliResult(**json.loads(record.read_text()))
    assert result.returncode == 0, result.output
    return bot, result


@pytest.fixture
def bot_copy(trained_bot, tmp_path) -> Path:
    return copy_bot(trained_bot[0], tmp_path / "bot")


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


@pytest.fixture(scope="module")
def user_services_on_default_ports() -> Iterator[list[int]]:
    """Stand-ins for the user's own services: listening sockets on 127.0.0.1 at rasa-gpu's default ports, held while
    the module's tests run, so a test that falls back to a default port fails ("port 5005 ... is busy") instead of
    passing only on an idle machine. A port something else already holds is the same situation and is left alone.
    Yields the ports held here."""
    held = []
    with ExitStack() as stack:
        for port in DEFAULT_SERVICE_PORTS:
            sock = stack.enter_context(socket.socket())
            # Held by every parallel worker that runs such a module at once (each a socket of its own); what the
            # tests start binds without SO_REUSEPORT, so it still finds the port busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
            except OSError:
                continue  # busy already: someone's own service holds it
            held.append(port)
        yield held


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


@pytest.fixture(scope="session")
def _cleanup_client():
    """The engine the safety nets below look at, or None when there is none (they then have nothing to clean)."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:  # noqa: BLE001 - no engine, no containers to leave behind
        return None
    return client


def _fail_on_leftovers(client, root: Path, who: str) -> None:
    removed = remove_containers_under(client, root)
    if removed:
        pytest.fail(f"{who} left {len(removed)} container(s) behind (now removed): {'; '.join(removed)}")


@pytest.fixture(autouse=True)
def _no_container_left_by_the_test(request, _cleanup_client) -> Iterator[None]:
    """After each test with a tmp_path: nothing of its bots may still run, even when the test failed early."""
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is not None and _cleanup_client is not None:
        _fail_on_leftovers(_cleanup_client, tmp, "this test")


@pytest.fixture(scope="session", autouse=True)
def _no_container_left_by_the_run(tmp_path_factory, _cleanup_client) -> Iterator[None]:
    """At the end of the run: the same for everything under this run's temporary folders (module fixtures too)."""
    yield
    if _cleanup_client is not None:
        _fail_on_leftovers(_cleanup_client, tmp_path_factory.getbasetemp(), "the test run")


@pytest.fixture(scope="session")
def stub_engine(built_image, run_folder) -> Iterator[str]:
    """A second engine whose dockerd has a stand-in nvidia-container-runtime-hook, with the training image loaded."""
    host = os.environ.get("RASA_GPU_TEST_STUB_HOST")
    if not host:
        if _require_docker():
            pytest.fail(
                "RASA_GPU_TEST_STUB_HOST is not set; .ci/run starts it with scripts/engine.sh gpu-stub"
            )
        pytest.skip(
            "no stand-in GPU engine (start one with scripts/engine.sh gpu-stub and export the lines it prints)"
        )
    env = {**os.environ, "DOCKER_HOST": host}
    with FileLock(run_folder / "stub_engine.lock"):
        _load_into(built_image, env)
    yield host


def _load_into(image: str, env: dict[str, str]) -> None:
    """Copy an image of this machine's engine into the engine env names, unless it has it already."""
    if subprocess.run(["docker", "image", "inspect", image], env=env, capture_output=True).returncode:
        save = subprocess.Popen(
            ["docker", "save", image],
            stdout=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},
        )
        load = subprocess.run(["docker", "load"], stdin=save.stdout, env=env, capture_output=True, text=True)
        save.wait()
        assert load.returncode == 0 and save.returncode == 0, load.stderr


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


# ---- tiers ------------------------------------------------------------------------------------------------------------


#: The files that train or build most (measured in a parallel run on 2 cores: test_day about 17 minutes, the next
#: ones 3 to 10), longest first. They start first, so that the parallel workers finish together instead of one of
#: them starting a long file when the others are done. A file not named here runs after them, in the usual order.
LONG_FILES = (
    "test_day.py",
    "test_remote.py",
    "test_locked_releases.py",
    "test_watch.py",
    "test_vscode_tasks.py",
    "test_docker_train.py",
    "test_push.py",
    "test_demo_layout.py",
    "test_duckling.py",
    "test_services.py",
    "test_layouts.py",
    "test_benchmark.py",
    "test_slurm.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that reaches an engine through a fixture (docker_client and all that build on it) is marked docker,
    so `pytest -m "not docker"` (scripts/test.sh --fast) is the tier that needs no engine. The long files go first
    (LONG_FILES; scripts/test.sh keeps this order with --no-loadscope-reorder)."""
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    # A stable sort: the other files keep their order.
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))
