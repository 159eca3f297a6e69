"""Training where the engine is: this machine's, or a second engine reachable only over SSH (scripts/remote-engine.sh:
its own dockerd in its own network and mount namespaces, where no path of these bots exists, behind an sshd on a
loopback port). The same tests run against both and assert the same things; only the way in differs."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support import (
    BOT_UID,
    EXAMPLE_BOT,
    assert_one_line_error,
    copy_bot,
    free_port,
    intent_of,
    leftover_containers,
    models,
    require_docker,
    run_cli,
    start_cli,
    wait_for_line,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SSH_HOST = os.environ.get("RASA_GPU_TEST_SSH_HOST", "")
SSH_PATH = os.environ.get("RASA_GPU_TEST_SSH_PATH", "")
REMOTE_SOCKET = os.environ.get("RASA_GPU_TEST_REMOTE_SOCKET", "")


@dataclass
class Where:
    name: str
    args: tuple[str, ...]  # what the user adds to a command
    env: dict[str, str]
    client: object  # docker-py client of the engine that runs the containers (to look at it directly)

    def cli(self, *args: str) -> tuple[str, ...]:
        return (*args, *self.args)


def _ssh_rig() -> tuple[str, str, str]:
    if not (SSH_HOST and SSH_PATH and REMOTE_SOCKET):
        if require_docker():
            pytest.fail(
                "the SSH engine is not set up; scripts/test.sh starts it with scripts/remote-engine.sh"
            )
        pytest.skip("no SSH engine (run scripts/remote-engine.sh and export the lines it prints)")
    return SSH_HOST, SSH_PATH, REMOTE_SOCKET


# The SSH engine first: its image builds there while the run's shared training (trained_bot) is made here.
@pytest.fixture(scope="module", params=["ssh", "local"])
def where(request, docker_client) -> Where:
    if request.param == "local":
        return Where("local", (), {}, docker_client)
    import docker

    host, path, socket = _ssh_rig()
    # The SSH engine builds its own image (the build context goes over SSH); without the CUDA wheels, which
    # tests/test_cuda_images.py checks on the local engine: the same transport, 1.7 GB and about 90 s less.
    env = {"PATH": f"{path}:{os.environ['PATH']}", "RASA_GPU_CUDA": "none"}
    return Where("ssh", ("--host", host), env, docker.DockerClient(base_url=socket))


@pytest.fixture(scope="module")
def trained_there(where, request, tmp_path_factory) -> Path:
    """example_bot (owned by a non-root uid) trained once on that engine; on the SSH one this also builds the image
    there (the build context goes over SSH). On this machine's engine that training is the run's shared one
    (trained_bot: the same `rasa-gpu train BOT` of the same sources), copied with its model, cache and history."""
    folder = tmp_path_factory.mktemp(f"remote-{where.name}") / "bot"
    if where.name == "local":
        shared, result = request.getfixturevalue("trained_bot")
        bot = copy_bot(shared, folder)
    else:
        bot = copy_bot(EXAMPLE_BOT, folder)
        result = run_cli(*where.cli("train", str(bot)), env=where.env)
    assert result.returncode == 0, result.output
    assert "Model ready" in result.stdout
    return bot


def _containers_created(client, bot: Path, since: datetime) -> list[str]:
    """Containers for this bot that the engine created since `since` (its own event log)."""
    events = client.events(
        since=since,
        until=datetime.now(timezone.utc),
        decode=True,
        filters={"type": "container", "event": "create", "label": f"io.rasa-gpu.bot={bot}"},
    )
    return [event["Actor"]["Attributes"].get("name", "?") for event in events]


def _run_volumes(client, bot: Path) -> list[str]:
    volumes = client.volumes.list(filters={"label": [f"io.rasa-gpu.bot={bot}", "io.rasa-gpu.role=run"]})
    return [v.name for v in volumes]


def test_the_model_lands_here_owned_by_the_bot_owner_and_loads(
    where, trained_there, built_image, docker_client
):
    [model] = models(trained_there)
    assert model.stat().st_uid == BOT_UID and model.stat().st_gid == BOT_UID
    assert not list((trained_there / ".rasa-gpu" / "tmp").glob("*"))
    # Loaded by a Rasa server on this machine, whichever engine trained it.
    assert intent_of(docker_client, built_image, trained_there, model, "hello there") == "greet"
    runs = json.loads(run_cli("runs", "list", str(trained_there), "--json").stdout)
    assert runs[0]["status"] == "ok"
    if where.name == "ssh":
        assert SSH_HOST in runs[0]["host"]  # the history says which engine trained
    assert leftover_containers(where.client, trained_there) == []
    assert _run_volumes(where.client, trained_there) == []


def test_a_second_call_is_a_skip_without_a_container(where, trained_there):
    since = datetime.now(timezone.utc)
    result = run_cli(*where.cli("train", str(trained_there)), env=where.env)
    assert result.returncode == 0, result.output
    assert "Nothing changed since the newest model; not training" in result.stdout
    time.sleep(1)
    assert _containers_created(where.client, trained_there, since) == []


def test_an_nlu_edit_retrains_there_with_the_cache(where, trained_there):
    nlu = trained_there / "data" / "nlu.yml"
    nlu.write_text(
        nlu.read_text().replace("      - hey\n", "      - hey\n      - good day to you\n", 1),
        encoding="utf-8",
    )
    before = models(trained_there)
    result = run_cli(*where.cli("train", str(trained_there), "--gpu", "off"), env=where.env)
    assert result.returncode == 0, result.output
    assert len(models(trained_there)) == len(before) + 1
    assert "TEDPolicy restored from cache" in result.stderr  # only the NLU part trained again
    assert leftover_containers(where.client, trained_there) == []


def test_ctrl_c_there_leaves_no_container(where, trained_there):
    before = models(trained_there)
    proc = start_cli(*where.cli("train", str(trained_there), "--force", "--gpu", "off"), env=where.env)
    wait_for_line(proc, "training in ", timeout=600)
    time.sleep(1)
    assert leftover_containers(where.client, trained_there), "the training container should be running"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 130, stderr
    assert "interrupted: stopped and removed the training container; no model was written" in stderr
    assert leftover_containers(where.client, trained_there) == []
    assert _run_volumes(where.client, trained_there) == []
    assert models(trained_there) == before


# ---- what can go wrong on the way there: one line each ---------------------------------------------------------------


def _wrapper(tmp_path: Path, body: str) -> dict[str, str]:
    """An `ssh` first on PATH that runs the real one in some other way (the user's own ssh, misconfigured)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "ssh").write_text(f"#!/bin/sh\n{body}\n")
    (folder / "ssh").chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def test_ssh_unreachable_is_one_line(tmp_path):
    host, path, _ = _ssh_rig()
    closed = f"ssh://root@127.0.0.1:{free_port()}"
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    result = run_cli("train", str(bot), "--host", closed, env={"PATH": f"{path}:{os.environ['PATH']}"})
    assert_one_line_error(result, None, "cannot reach", "over SSH", "Connection refused")
    assert models(bot) == []


def test_an_unknown_host_key_is_one_line(tmp_path):
    host, path, _ = _ssh_rig()
    config = Path(path).parent / "ssh" / "ssh_config"
    strange = tmp_path / "ssh_config"
    strange.write_text(
        "".join(line for line in config.read_text().splitlines(keepends=True) if "KnownHostsFile" not in line)
        + f"UserKnownHostsFile {tmp_path / 'known_hosts'}\nGlobalKnownHostsFile /dev/null\n"
    )
    env = _wrapper(tmp_path, f'exec /usr/bin/ssh -F {strange} "$@"')
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    result = run_cli("train", str(bot), "--host", host, env=env)
    assert_one_line_error(result, None, "host key", "not known", "ssh -p")


def test_no_engine_on_the_far_host_is_one_line(tmp_path):
    host, path, _ = _ssh_rig()
    # The far side's docker CLI asks a socket where no engine listens (a host whose dockerd is stopped).
    env = _wrapper(
        tmp_path,
        'for a in "$@"; do\n'
        '  if [ "$a" = docker ]; then set -- "$@" env DOCKER_HOST=unix:///var/run/no-engine-here.sock docker\n'
        '  else set -- "$@" "$a"; fi\n'
        "  shift\n"
        "done\n"
        f'exec {path}/ssh "$@"',
    )
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    result = run_cli("train", str(bot), "--host", host, env=env)
    assert_one_line_error(result, None, "no Docker engine answers on 127.0.0.1")


def test_up_on_an_engine_elsewhere_refuses_in_one_line(trained_bot, tmp_path):
    host, path, _ = _ssh_rig()
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    result = run_cli("up", str(bot), "--host", host, env={"PATH": f"{path}:{os.environ['PATH']}"})
    assert_one_line_error(result, None, "services run on this machine's Docker engine only")
    assert not (bot / "rasa-gpu.compose.yml").exists()
    # Rasa's other commands too, before an image is built or a GPU asked for there.
    tested = run_cli("test", str(bot), "--host", host, env={"PATH": f"{path}:{os.environ['PATH']}"})
    assert_one_line_error(tested, None, "run on this machine's Docker engine only")
    assert "rasa test" not in tested.stderr, tested.output  # it had found or built the image there first
    runs = run_cli("runs", str(bot), "--kind", "test", "--json", "-n", "0")
    assert json.loads(runs.stdout) == [], runs.output  # a refused test is no failed run in the history


def test_doctor_checks_the_far_engine(trained_bot, tmp_path):
    host, path, _ = _ssh_rig()
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    result = run_cli(
        "doctor", str(bot), "--host", host, "--json", env={"PATH": f"{path}:{os.environ['PATH']}"}
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["engine"]["status"] == "ok" and host in checks["engine"]["detail"], checks["engine"]
    assert checks["NVIDIA runtime"]["status"] in ("warn", "skip")  # the rig's engine has no NVIDIA runtime
    disk = checks["disk (images)"]
    if disk["status"] != "skip":  # measured on that host, where its engine keeps its data
        assert "/var/lib/rasa-gpu-remote/data" in disk["detail"], disk
