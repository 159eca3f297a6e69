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
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from filelock import FileLock
from support import (
    DEFAULT_SERVICE_PORTS,
    EXAMPLE_BOT,
    CliResult,
    copy_bot,
    remove_containers_under,
    require_docker,
    run_cli,
)


@pytest.fixture(scope="session")
def docker_client():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        if require_docker():
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
        if require_docker():
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


# ---- tiers ------------------------------------------------------------------------------------------------------------


#: The files that train or build most, longest first (measured in a parallel run of three workers on 2 cores, in
#: minutes of a worker: test_day 15, test_ci 14, test_remote 11, test_push 7, the others 2 to 5). They start first,
#: so that the workers finish together instead of one of them starting a long file when the others are done. A file
#: not named here (each under a minute) runs after them, in the usual order.
LONG_FILES = (
    "test_day.py",
    "test_ci.py",
    "test_remote.py",
    "test_push.py",
    "test_docker_train.py",
    "test_locked_releases.py",
    "test_services.py",
    "test_vscode_tasks.py",
    "test_watch.py",
    "test_duckling.py",
    "test_layouts.py",
    "test_benchmark.py",
    "test_rasa_pro.py",
    "test_demo_layout.py",
    "test_readme_examples.py",
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
