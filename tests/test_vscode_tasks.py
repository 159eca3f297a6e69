"""Every task that `rasa-gpu vscode` writes, run the way VS Code runs a "process" task: the command looked up on
PATH, the arguments as given, ${workspaceFolder} substituted, in the task's working folder. Then its result is
checked, and the problem matcher is applied to the output as VS Code would (ANSI colours removed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import json5
import pytest
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, free_ports, models, run_cli
from test_services import project_containers, require_compose, say

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: VS Code finds `rasa-gpu` on the PATH of the environment it was started from: here, this test's venv.
TASK_ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def workspace(trained_bot, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    ws = tmp_path_factory.mktemp("workspace")
    copy_bot(trained_bot[0], ws / "shop")
    result = run_cli("vscode", str(ws / "shop"), "--workspace", str(ws))
    assert result.returncode == 0, result.output
    assert "created" in result.stdout
    tasks = {
        task["label"]: task for task in json5.loads((ws / ".vscode" / "tasks.json").read_text())["tasks"]
    }
    return ws, tasks


def resolve(value: str, ws: Path) -> str:
    return value.replace("${workspaceFolder}", str(ws))


def task_command(task: dict, ws: Path) -> tuple[list[str], Path]:
    assert task["type"] == "process"
    return [resolve(task["command"], ws), *(resolve(a, ws) for a in task["args"])], Path(
        resolve(task["options"]["cwd"], ws)
    )


def run_task(task: dict, ws: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    argv, cwd = task_command(task, ws)
    return subprocess.run(argv, cwd=cwd, env=TASK_ENV, capture_output=True, text=True, timeout=timeout)


def problems(task: dict, output: str, ws: Path) -> list[tuple[Path, int, int, str]]:
    """What VS Code's Problems panel would list for this output."""
    matcher = task["problemMatcher"]
    pattern = matcher["pattern"]
    kind, base = matcher["fileLocation"]
    assert kind == "relative"
    found = []
    for line in ANSI.sub("", output).splitlines():
        m = re.match(pattern["regexp"], line)
        if m:
            found.append(
                (
                    Path(resolve(base, ws)) / m.group(pattern["file"]),
                    int(m.group(pattern["line"])),
                    int(m.group(pattern["column"])),
                    m.group(pattern["message"]),
                )
            )
    return found


def test_train_gpu_task_is_the_default_build_task_and_trains(workspace, docker_client):
    ws, tasks = workspace
    task = tasks["Train bot (GPU)"]
    assert task["group"] == {"kind": "build", "isDefault": True}
    nlu = ws / "shop" / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("      - hello\n", "      - hello from vs code\n", 1))
    before = models(ws / "shop")
    result = run_task(task, ws)
    assert result.returncode == 0, result.stderr
    assert (
        "no NVIDIA runtime for GPU requests: going on to train on the CPU" in result.stderr
    )  # said honestly
    assert len(models(ws / "shop")) == len(before) + 1
    assert problems(task, result.stdout + result.stderr, ws) == []


def test_train_cpu_task_reports_yaml_errors_to_the_problems_panel(workspace):
    ws, tasks = workspace
    task = tasks["Train bot (CPU)"]
    assert task["args"][-2:] == ["--gpu", "off"]
    domain = ws / "shop" / "domain.yml"
    original = domain.read_text()
    domain.write_text(original + "responses:\n  utter_x: [unclosed\n")
    try:
        result = run_task(task, ws)
    finally:
        domain.write_text(original)
    assert result.returncode == 1
    [(file, line, column, message)] = problems(task, result.stdout + result.stderr, ws)
    assert file == ws / "shop" / "domain.yml" and file.is_file()
    assert line > original.count("\n") and column >= 1 and "invalid YAML" in message
    result = run_task(task, ws)  # fixed: nothing changed since the last model, so it is quick
    assert result.returncode == 0, result.stderr
    assert "Nothing changed since the newest model" in result.stdout


def test_start_and_stop_services_tasks(workspace, docker_client, user_services_on_default_ports):
    require_compose("docker compose")
    ws, tasks = workspace
    rasa_port, actions_port = free_ports(2)  # the bot's settings, which the task's `rasa-gpu up` reads
    (ws / "shop" / "rasa-gpu.toml").write_text(f"rasa_port = {rasa_port}\nactions_port = {actions_port}\n")
    started = run_task(tasks["Start services"], ws)
    try:
        assert started.returncode == 0, started.stderr
        assert "are up" in started.stdout
        replies = say(f"http://127.0.0.1:{rasa_port}", "vscode", "hello")
        assert any("GPU shop assistant" in reply for reply in replies)
    finally:
        stopped = run_task(tasks["Stop services"], ws)
    assert stopped.returncode == 0, stopped.stderr
    assert project_containers(docker_client, ws / "shop") == []


def test_watch_task_signals_begin_and_end_of_each_cycle(workspace, docker_client):
    ws, tasks = workspace
    task = tasks["Watch and retrain"]
    assert task["isBackground"] is True
    background = task["problemMatcher"]["background"]
    argv, cwd = task_command(task, ws)
    proc = subprocess.Popen(
        argv, cwd=cwd, env=TASK_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None

    def read_until(regexp: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if re.search(regexp, ANSI.sub("", line)):
                return
        raise AssertionError(f"never saw /{regexp}/:\n{''.join(lines)}")

    nlu = ws / "shop" / "data" / "nlu.yml"
    original = nlu.read_text()
    try:
        read_until(background["endsPattern"])  # idle: VS Code shows the task as not busy
        nlu.write_text(original + "  - intent: [broken\n")
        read_until(background["beginsPattern"])  # busy
        read_until(background["endsPattern"])  # idle again, with the problem reported
        [(file, line, _, message)] = problems(task, "".join(lines), ws)
        assert file == nlu and line > 1 and "invalid YAML" in message
        nlu.write_text(original)
    finally:
        proc.send_signal(signal.SIGTERM)  # what VS Code does when a task is terminated
        proc.wait(timeout=60)
    assert proc.returncode == 130  # interrupted, as the README says
    trainings = {"label": ["io.rasa-gpu.role=train", f"io.rasa-gpu.bot={ws / 'shop'}"]}
    assert docker_client.containers.list(all=True, filters=trainings) == []


def test_benchmark_task_measures_the_cpu_and_says_the_gpu_is_missing(workspace):
    ws, tasks = workspace
    task = tasks["Benchmark CPU vs GPU"]
    # A quick benchmark: the bot's settings cut the epochs; one measured run, no warm-up (from the environment
    # VS Code passes on to its tasks).
    (ws / "shop" / "rasa-gpu.toml").write_text('set = ["DIETClassifier.epochs=2", "TEDPolicy.epochs=2"]\n')
    argv, cwd = task_command(task, ws)
    env = {**TASK_ENV, "RASA_GPU_BENCHMARK_REPEAT": "1", "RASA_GPU_BENCHMARK_WARMUP": "0"}
    try:
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    finally:
        (ws / "shop" / "rasa-gpu.toml").unlink()
    assert result.returncode == 0, result.stderr
    assert "GPU not measured" in result.stdout and "DIETClassifier" in result.stdout
    reports = list((ws / "shop" / ".rasa-gpu" / "benchmarks").glob("*/report.md"))
    assert len(reports) == 1 and (reports[0].parent / "chart.png").is_file()


def test_running_vscode_again_changes_nothing_and_keeps_user_tasks(workspace):
    ws, _ = workspace
    path = ws / ".vscode" / "tasks.json"
    text = path.read_text()
    user = text.replace(
        '"tasks": [',
        '"tasks": [\n    // mine\n    { "label": "lint", "type": "shell", "command": "ruff ." },',
        1,
    )
    path.write_text(user)
    result = run_cli("vscode", str(ws / "shop"), "--workspace", str(ws))
    assert result.returncode == 0 and "unchanged" in result.stdout
    assert path.read_text() == user


def test_a_tasks_file_with_a_key_twice_is_left_untouched(tmp_path):
    """JSON parsers keep the last of two equal keys without a word; the merge used to drop the user's own task list.
    Needs no engine (the module's marks are for the tasks that train)."""
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    tasks = bot / ".vscode" / "tasks.json"
    tasks.parent.mkdir()
    for text in (
        '{\n  "version": "2.0.0",\n  // mine\n  "tasks": [{ "label": "lint", "type": "shell", "command": "ruff ." }],\n'
        '  "tasks": []\n}\n',
        '{ "version": "2.0.0", "tasks": [{ "label": "lint", "command": "ruff", command: "ruff ." }] }\n',
    ):
        tasks.write_bytes(text.encode())
        result = run_cli("vscode", str(bot))
        key = "tasks" if "[]" in text else "command"
        line = assert_one_line_error(
            result, 1, f'.vscode/tasks.json has two "{key}" keys', "did not touch it"
        )
        assert result.stderr.strip() == line
        assert tasks.read_bytes() == text.encode()
        assert sorted(p.name for p in tasks.parent.iterdir()) == ["tasks.json"]
