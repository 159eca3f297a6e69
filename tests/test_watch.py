"""`rasa-gpu watch` with real file edits, real trainings and a real Rasa server."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from support import free_ports, leftover_containers, models, run_cli, start_cli
from test_services import order_conversation, project_containers, require_compose

from rasa_gpu import vscode

pytestmark = [pytest.mark.docker, pytest.mark.slow]

GREET = "      - hello\n"


class Watch:
    """A running `rasa-gpu watch`, its stderr collected line by line in the background."""

    def __init__(self, bot: Path, *args: str) -> None:
        self.proc = start_cli("watch", str(bot), *args)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.lines)

    def wait_for(self, needle: str, count: int = 1, timeout: float = 400) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(needle) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"never saw {needle!r} {count} time(s); output:\n" + "\n".join(self.lines))

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # never leave a watcher behind, even when the test fails
            raise
        self._reader.join(timeout=5)
        return code

    def output(self) -> str:
        return "\n".join(self.lines)


def edit_nlu(bot: Path, example: str) -> None:
    nlu = bot / "data" / "nlu.yml"
    text = nlu.read_text()
    assert GREET in text
    nlu.write_text(text.replace(GREET, GREET + f"      - {example}\n", 1))


def test_burst_of_edits_trains_once_and_the_running_server_serves_the_new_model(bot_copy, docker_client):
    require_compose("docker compose")
    bot = bot_copy
    rasa_port, actions_port = free_ports(2)
    up = run_cli("up", str(bot), "--rasa-port", str(rasa_port), "--actions-port", str(actions_port))
    assert up.returncode == 0, up.output
    token = next(
        line.split("=", 1)[1]
        for line in (bot / ".rasa-gpu/services.env").read_text().splitlines()
        if line.startswith("RASA_AUTH_TOKEN=")
    )

    def served_model() -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{rasa_port}/status?token={token}", timeout=30
        ) as response:
            return json.loads(response.read())["model_file"]

    watch = Watch(bot)
    try:
        watch.wait_for("watching for changes")
        before = models(bot)
        assert served_model() == before[-1].name
        original = (bot / "data" / "nlu.yml").read_text()
        for i in range(100):  # 100 saves, about 2 ms apart: one batch
            (bot / "data" / "nlu.yml").write_text(
                original.replace(GREET, GREET + f"      - hello number {i}\n")
            )
            time.sleep(0.002)
        watch.wait_for("model ready", timeout=400)
        watch.wait_for("watching for changes", count=2, timeout=300)
        time.sleep(3)  # nothing else may follow
        assert watch.count("rasa-gpu watch: change in") == 1, watch.output()
        assert watch.count("model ready") == 1
        after = models(bot)
        assert len(after) == len(before) + 1
        assert served_model() == after[-1].name  # loaded with PUT /model, no restart
        assert watch.count("serves " + after[-1].name) == 1
        rasa = next(
            c
            for c in project_containers(docker_client, bot)
            if c.labels["com.docker.compose.service"] == "rasa"
        )
        assert rasa.attrs["RestartCount"] == 0 and rasa.attrs["State"]["Running"]

        # actions/ changed: only the action server restarts, and the reply changes
        rasa_started = rasa.attrs["State"]["StartedAt"]
        actions = bot / "actions" / "actions.py"
        actions.write_text(actions.read_text().replace('"is on its way"', '"is nearly there"'))
        watch.wait_for("action server restarted", timeout=120)
        assert "Order 42 for Alice is nearly there." in order_conversation(
            f"http://127.0.0.1:{rasa_port}", "carol"
        )
        rasa.reload()
        assert rasa.attrs["State"]["StartedAt"] == rasa_started
        assert watch.count("model ready") == 1  # an actions edit trains nothing
    finally:
        try:
            code = watch.stop()
        finally:
            run_cli("down", str(bot))
    assert code == 130 and "interrupted: rasa-gpu watch stopped" in watch.output()
    assert leftover_containers(docker_client, bot) == []


def test_an_edit_during_a_training_leads_to_exactly_one_more(bot_copy, docker_client):
    bot = bot_copy
    watch = Watch(bot)
    try:
        watch.wait_for("watching for changes")
        edit_nlu(bot, "hi there shop")
        watch.wait_for("training in ")  # the container runs
        edit_nlu(bot, "good day shop")
        watch.wait_for("model ready", count=2, timeout=600)
        watch.wait_for("watching for changes", count=3, timeout=60)
        time.sleep(3)
        assert watch.count("rasa-gpu watch: change in") == 2, watch.output()
        assert watch.count("model ready") == 2
        assert watch.count("training in ") == 2
        # the second retraining ran in the first one's container, Rasa already imported
        assert watch.count("warm trainer: TensorFlow and Rasa are already loaded") == 1, watch.output()
        [warm] = leftover_containers(docker_client, bot)
        assert warm.name.startswith("rasa-gpu-warm-"), warm.name
    finally:
        code = watch.stop()
    assert code == 130
    assert leftover_containers(docker_client, bot) == []


def test_yaml_error_is_reported_with_file_and_line_and_watching_goes_on(bot_copy, docker_client):
    bot = bot_copy
    nlu = bot / "data" / "nlu.yml"
    original = nlu.read_text()
    models_before = models(bot)
    watch = Watch(bot)
    try:
        watch.wait_for("watching for changes")
        nlu.write_text(original.replace("  - intent: greet\n", "  - intent: greet\n    examples: [oops\n", 1))
        watch.wait_for("error: data/nlu.yml:")
        watch.wait_for("watching for changes", count=2, timeout=30)
        [error] = [line for line in watch.lines if line.startswith("error: ")]
        # VS Code's problem matcher of the watch task reads it as file, line, column, message
        matcher = vscode.TaskTemplate(bot=".", command="rasa-gpu").tasks()[4]["problemMatcher"]
        match = re.match(matcher["pattern"]["regexp"], error)
        assert match and match.group(1) == "data/nlu.yml" and int(match.group(2)) > 1, error
        assert watch.proc.poll() is None  # still watching
        nlu.write_text(original)  # fixed, back to what the model was trained on: nothing to do
        time.sleep(3)
        assert watch.count("training in ") == 0 and watch.count("change in") == 1

        # Ctrl+C in the middle of a training stops it and leaves nothing behind
        edit_nlu(bot, "hey hey shop")
        watch.wait_for("training in ")
        time.sleep(2)
    finally:
        code = watch.stop(signal.SIGINT)
    assert code == 130 and "interrupted: rasa-gpu watch stopped" in watch.output()
    assert leftover_containers(docker_client, bot) == []
    assert models(bot) == models_before
    assert not any((bot / ".rasa-gpu" / "tmp").iterdir())


def test_watch_refuses_a_bot_that_is_not_a_project(tmp_path):
    result = run_cli("watch", str(tmp_path))
    assert result.returncode == 1 and "is not a Rasa project" in result.stderr
    assert "Traceback" not in result.output
