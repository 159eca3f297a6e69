"""Shared fixtures. Docker tests talk to a real engine and real Rasa.

Without an engine they skip, saying why; with RASA_GPU_REQUIRE_DOCKER=1 (set by .ci/run) a missing engine fails.
RASA_GPU_BASE_IMAGE picks the base image (the registry-less one where no registry answers);
RASA_GPU_TEST_STUB_HOST names a second engine started with a stand-in nvidia-container-runtime-hook.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_BOT = REPO / "example_bot"
#: A uid/gid that is not root and not the test runner: the bot owner in ownership tests.
BOT_UID = 4321


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rasa_gpu", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> CliResult:
    proc = subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


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


def copy_bot(src: Path, dst: Path, owner: int | None = BOT_UID) -> Path:
    # Everything, rasa-gpu's state included (so the copy knows its newest model), but no lock or temporary output.
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("train.lock", "train.pid", "tmp"))
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
def built_image(docker_client) -> str:
    """Build (or find) the example bot's image through the tool itself, exactly as a user would."""
    result = run_cli("build", str(EXAMPLE_BOT))
    assert result.returncode == 0, result.output
    tag = result.stdout.split()[0]
    assert docker_client.images.get(tag)
    return tag


@pytest.fixture(scope="session")
def trained_bot(built_image, tmp_path_factory) -> tuple[Path, CliResult]:
    """example_bot, owned by a non-root uid, trained once for real. Tests copy it (with its warm Rasa cache)."""
    bot = copy_bot(EXAMPLE_BOT, tmp_path_factory.mktemp("trained") / "bot")
    result = run_cli("train", str(bot))
    assert result.returncode == 0, result.output
    return bot, result


@pytest.fixture
def bot_copy(trained_bot, tmp_path) -> Path:
    return copy_bot(trained_bot[0], tmp_path / "bot")


def leftover_containers(client, bot: Path) -> list:
    return client.containers.list(all=True, filters={"label": f"io.rasa-gpu.bot={bot.resolve()}"})


@pytest.fixture(scope="session")
def stub_engine(built_image) -> Iterator[str]:
    """A second engine whose dockerd has a stand-in nvidia-container-runtime-hook, with the training image loaded."""
    host = os.environ.get("RASA_GPU_TEST_STUB_HOST")
    if not host:
        if _require_docker():
            pytest.fail(
                "RASA_GPU_TEST_STUB_HOST is not set; .ci/run starts it with scripts/engine.sh gpu-stub"
            )
        pytest.skip(
            "no stand-in GPU engine (start one with scripts/engine.sh gpu-stub, set RASA_GPU_TEST_STUB_HOST)"
        )
    env = {**os.environ, "DOCKER_HOST": host}
    if subprocess.run(["docker", "image", "inspect", built_image], env=env, capture_output=True).returncode:
        save = subprocess.Popen(
            ["docker", "save", built_image],
            stdout=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},
        )
        load = subprocess.run(["docker", "load"], stdin=save.stdout, env=env, capture_output=True, text=True)
        save.wait()
        assert load.returncode == 0 and save.returncode == 0, load.stderr
    yield host


def send_and_wait(proc: subprocess.Popen[str], sig: int, timeout: float = 30) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=timeout)
    return proc.returncode, time.monotonic() - started


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
