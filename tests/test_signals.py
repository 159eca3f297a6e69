"""Signals against the real engine: a container never outlives the rasa-gpu command that started it, whatever signal
arrives, however often, and whenever (during cleanup, in the first half second, or a SIGKILL that allows no cleanup).
Every command that touches a bot removes what a killed rasa-gpu on this host left, and never another host's."""

from __future__ import annotations

import contextlib
import signal
import socket
import time

import docker.errors
import pytest
from support import SIGNALS, leftover_containers, models, run_cli, send_and_wait, start_cli, wait_for_line

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STOPPED = "interrupted: stopped and removed the training container; no model was written"


def start_training(bot):
    """A forced training of the bot on the CPU, returned once its container runs."""
    proc = start_cli("train", str(bot), "--force", "--gpu", "off")
    wait_for_line(proc, "training in ", timeout=600)
    return proc


def wait_until_gone(client, bot, seconds: float) -> list:
    deadline = time.monotonic() + seconds
    while (left := leftover_containers(client, bot)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


@pytest.mark.parametrize("gap", [0.01, 0.05, 0.15, 0.3])
def test_a_second_ctrl_c_during_cleanup_leaves_no_container(bot_copy, docker_client, gap):
    before = models(bot_copy)
    proc = start_training(bot_copy)
    time.sleep(1)  # Rasa is starting in the container
    assert leftover_containers(docker_client, bot_copy), "the training container should be running"
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    proc.send_signal(signal.SIGINT)  # while the first one's cleanup runs
    proc.wait(timeout=60)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert STOPPED in stderr
    # Removed by the command itself before it exited: no waiting here.
    assert leftover_containers(docker_client, bot_copy) == []
    assert models(bot_copy) == before
    assert not list((bot_copy / ".rasa-gpu" / "tmp").glob("*"))  # its temporary output is gone too


def test_a_killed_wrappers_container_ends_by_itself(bot_copy, docker_client):
    proc = start_training(bot_copy)
    time.sleep(1)
    assert leftover_containers(docker_client, bot_copy)
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.wait(timeout=10)
    killed_at = time.monotonic()
    left = wait_until_gone(docker_client, bot_copy, 15)
    assert left == [], f"still there {time.monotonic() - killed_at:.0f} s after the SIGKILL: {left}"


@pytest.mark.parametrize("delay", [0.1, 0.25, 0.5])
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_in_the_first_half_second_ends_with_130(bot_copy, docker_client, delay, name):
    before = models(bot_copy)
    proc = start_cli("train", str(bot_copy), "--force", "--gpu", "off")
    time.sleep(delay)
    code, _ = send_and_wait(proc, SIGNALS[name], timeout=60)
    stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert "no model was written" in line or "nothing was done" in line or "stopped before finishing" in line
    assert models(bot_copy) == before
    assert wait_until_gone(docker_client, bot_copy, 15) == []


def test_watch_ends_with_130_on_ctrl_c(bot_copy):
    proc = start_cli("watch", str(bot_copy), "--gpu", "off")
    wait_for_line(proc, "watching for changes", timeout=600)
    code, _ = send_and_wait(proc, signal.SIGINT, timeout=60)
    stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: rasa-gpu watch stopped" in stderr


# ---- leftovers of a killed rasa-gpu: this host's are removed, another host's never ------------------------------


def _fake_leftover(client, image, bot, host: str):
    """A container labelled as a training of `bot` by rasa-gpu process 999999 (gone) on `host`."""
    labels = {
        "io.rasa-gpu.role": "train",
        "io.rasa-gpu.bot": str(bot.resolve()),
        "io.rasa-gpu.host": host,
        "io.rasa-gpu.pid": "999999",
    }
    return client.containers.run(image, ["600"], entrypoint=["sleep"], labels=labels, detach=True)


@pytest.mark.parametrize("command", ["train", "doctor", "up", "watch"])
def test_bot_commands_remove_this_hosts_leftovers_only(bot_copy, docker_client, built_image, command):
    mine = _fake_leftover(docker_client, built_image, bot_copy, socket.gethostname())
    theirs = _fake_leftover(docker_client, built_image, bot_copy, "another-host-sharing-this-engine")
    try:
        if command == "watch":
            proc = start_cli("watch", str(bot_copy), "--gpu", "off")
            wait_for_line(proc, "watching for changes", timeout=600)
            send_and_wait(proc, signal.SIGINT, timeout=60)
        elif command == "up":  # refuses (no model), after sweeping
            for model in models(bot_copy):
                model.unlink()
            result = run_cli("up", str(bot_copy))
            assert result.returncode != 0 and "no trained model" in result.stderr, result.output
        else:
            # train: --force, because a no-change skip is decided before the engine is contacted (its leftovers,
            # containers that already ended with their killed rasa-gpu, wait for the next command that uses it)
            result = run_cli(
                command, str(bot_copy), *(["--force", "--gpu", "off"] if command == "train" else [])
            )
            assert result.returncode in (0, 1), result.output
        ids = {c.id for c in leftover_containers(docker_client, bot_copy)}
        assert mine.id not in ids, f"`rasa-gpu {command}` kept this host's leftover"
        assert theirs.id in ids, f"`rasa-gpu {command}` removed another host's container"
    finally:
        for container in (mine, theirs):
            with contextlib.suppress(docker.errors.NotFound):  # removed by the command, as it should be
                container.remove(force=True)
