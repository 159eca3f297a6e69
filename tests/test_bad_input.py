"""Every bad input: one line that says what is wrong and what to do, a non-zero exit, no traceback, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support import (
    BOT_UID,
    COMPOSE_DIR_LABEL,
    EXAMPLE_BOT,
    assert_one_line_error,
    copy_bot,
    free_ports,
    leftover_containers,
    models,
    run_cli,
)


@pytest.fixture
def bot(tmp_path):
    return copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)


# ---- without an engine ---------------------------------------------------------------------------------------------


def test_missing_bot_folder(tmp_path):
    assert_one_line_error(run_cli("train", str(tmp_path / "nope")), 1, "does not exist")


def test_folder_that_is_not_a_rasa_project(tmp_path):
    (tmp_path / "config.yml").write_text("language: en\n")
    assert_one_line_error(run_cli("train", str(tmp_path)), 1, "is not a Rasa project", "domain.yml", "data/")


def test_invalid_yaml_names_file_and_line(bot):
    (bot / "data" / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: greet\n    examples: [unclosed\n'
    )
    line = assert_one_line_error(run_cli("train", str(bot)), 1, "data/nlu.yml:")
    assert "invalid YAML" in line and line.split(":")[2].isdigit()


def yaml_bomb(levels: int = 9) -> str:
    """A "billion laughs" document: each level lists the one before it nine times, so `levels` levels of aliases
    expand to 9**levels strings (9 levels: 387 million) from a few hundred bytes."""
    lines = ['version: "3.1"', "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    names = "abcdefghijklmnopqrstuvwxyz"
    for before, name in zip(names, names[1:levels]):
        lines.append(f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_at_once(bot):
    from rasa_gpu.errors import YamlError
    from rasa_gpu.project import BotProject

    (bot / "data" / "bomb.yml").write_text(yaml_bomb())
    assert len(yaml_bomb()) < 450
    started = time.perf_counter()
    with pytest.raises(YamlError, match="aliases expand to more than"):
        BotProject.load(str(bot))
    assert time.perf_counter() - started < 1.0
    result = run_cli("train", str(bot))
    line = assert_one_line_error(result, 1, "data/bomb.yml:", "aliases expand to more than 100000 nodes")
    assert result.stderr.strip() == line


def test_yaml_aliases_that_real_bots_use_are_read(tmp_path):
    """The bound is far above what a real file reaches: a large domain whose responses share their buttons through
    an anchor, and a file that refers to itself, which is refused too (the input hash could not be computed)."""
    from rasa_gpu import yamlfile

    buttons = "buttons: &yes_no [{title: 'yes', payload: /affirm}, {title: 'no', payload: /deny}]"
    responses = "\n".join(
        f"  utter_{i}:\n  - text: '**Reply** {i}'\n    buttons: *yes_no" for i in range(3000)
    )
    content = yamlfile.load(f'version: "3.1"\nshared:\n  {buttons}\nresponses:\n{responses}\n')
    assert (
        len(content["responses"]) == 3000
        and content["responses"]["utter_7"][0]["buttons"][1]["title"] == "no"
    )
    for path in [
        EXAMPLE_BOT / "domain.yml",
        EXAMPLE_BOT / "config.yml",
        *(EXAMPLE_BOT / "data").glob("*.yml"),
    ]:
        assert yamlfile.load(path.read_text()) is not None
    with pytest.raises(yaml.YAMLError, match="refers to a node that holds it"):
        yamlfile.load("a: &a [1, *a]\n")


def test_unknown_rasa_version_lists_supported(bot):
    assert_one_line_error(
        run_cli("train", str(bot), "--rasa-version", "3.99.0"), 1, "3.99.0", "3.6.21", "2.0.0"
    )


def test_unreachable_engine_says_how_to_start_one(bot):
    result = run_cli("train", str(bot), env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_line_error(result, 3, "cannot reach a Docker engine", "dockerd")


def test_bad_override_and_gpu_options(bot):
    assert_one_line_error(run_cli("train", str(bot), "--set", "NoSuch.epochs=1"), 1, "no component 'NoSuch'")
    assert_one_line_error(run_cli("train", str(bot), "--gpu", "off", "--gpus", "0"), 1, "--gpu off")


# ---- with an engine ------------------------------------------------------------------------------------------------


@pytest.mark.docker
def test_base_image_that_cannot_be_pulled(bot, docker_client):
    result = run_cli("build", str(bot), "--base-image", "registry.invalid/nobody/none:1")
    assert_one_line_error(result, 1, "cannot be pulled", "--base-image", "rasa-gpu base-image")


@pytest.mark.docker
def test_build_failure_shows_the_failing_step(tmp_path, built_image, docker_client):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")  # owned by BOT_UID
    (bot / "requirements.txt").write_text("rasa-gpu-no-such-package-anywhere==0.0.1\n")
    result = run_cli("train", str(bot))
    line = assert_one_line_error(result, 1, "image build failed at step", "; the full log: ")
    assert "pip install" in line
    assert "rasa-gpu-no-such-package-anywhere" in result.stderr  # pip's own last lines are shown
    # The line names the log: the build's raw lines, pip's whole error among them, the bot owner's.
    log = Path(line.rsplit("; the full log: ", 1)[1])
    assert log.parent == bot / ".rasa-gpu" / "logs"
    raw = log.read_text()
    assert "Step " in raw and "No matching distribution found for rasa-gpu-no-such-package-anywhere" in raw
    if os.geteuid() == 0:
        assert (log.stat().st_uid, log.stat().st_gid) == (BOT_UID, BOT_UID)


@pytest.mark.docker
def test_a_bot_requirement_against_the_locked_set_names_both_sides(bot, built_image, docker_client):
    (bot / "requirements.txt").write_text("numpy==1.26.4\n")  # Rasa 3.6.21's locked set has numpy 1.23.5
    result = run_cli("build", str(bot))
    line = assert_one_line_error(result, 1, "image build failed at step")
    assert (
        "conflicting requirements: The user requested numpy==1.26.4; The user requested (constraint) numpy=="
        in line
    )


@pytest.mark.docker
def test_training_failure_shows_rasa_error_and_keeps_models(trained_bot, tmp_path, docker_client):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    before = {p: p.read_bytes() for p in models(bot)}
    config = bot / "config.yml"
    config.write_text(config.read_text().replace("- name: EntitySynonymMapper", "- name: NoSuchComponent"))
    result = run_cli("train", str(bot), "--gpu", "off")
    assert_one_line_error(result, 1, "rasa train failed inside the container", "exit code")
    assert "NoSuchComponent" in result.stderr
    assert {p: p.read_bytes() for p in models(bot)} == before
    assert leftover_containers(docker_client, bot) == []
    # The failed run is in the history, next to the fixture's training it can be compared with.
    shown = run_cli("runs", "show", "last", str(bot), "--json")
    assert shown.returncode == 0, shown.output
    failed = json.loads(shown.stdout)
    assert (failed["status"], failed["id"], failed["model_path"]) == ("failed", 2, None)
    assert failed["exit_code"] not in (None, 0) and "rasa train failed" in failed["error"]
    compared = run_cli("runs", "compare", "1", "last", str(bot), "--json")
    assert compared.returncode == 0, compared.output
    diff = json.loads(compared.stdout)["differences"]
    assert diff["status"] == {"a": "ok", "b": "failed"} and "bot_fingerprint" in diff


@pytest.mark.docker
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs over models/ needs root")
def test_disk_full_while_writing_the_model(trained_bot, tmp_path, docker_client):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    existing = {p.name: p.read_bytes()[:1000] for p in models(bot)}
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(bot / "models")], check=True)
    try:
        (bot / "models" / "old-model.tar.gz").write_bytes(b"an existing model\n")
        os.chown(bot / "models", *(lambda s: (s.st_uid, s.st_gid))(bot.stat()))
        result = run_cli("train", str(bot), "--force", "--gpu", "off")
        assert_one_line_error(result, 1, "disk full", "models")
        assert [p.name for p in (bot / "models").iterdir()] == ["old-model.tar.gz"]
        assert (bot / "models" / "old-model.tar.gz").read_bytes() == b"an existing model\n"
    finally:
        subprocess.run(["umount", str(bot / "models")], check=True)
    assert {p.name: p.read_bytes()[:1000] for p in models(bot)} == existing
    assert leftover_containers(docker_client, bot) == []


# ---- services, VS Code tasks ---------------------------------------------------------------------------------------


def test_unparseable_tasks_json_is_left_untouched(bot):
    tasks = bot / ".vscode" / "tasks.json"
    tasks.parent.mkdir()
    broken = '// mine\n{"version": "2.0.0", "tasks": [ {"label": "x",, } ]}\n'
    tasks.write_text(broken)
    assert_one_line_error(run_cli("vscode", str(bot)), 1, "tasks.json cannot be parsed", "did not touch it")
    assert tasks.read_text() == broken
    assert sorted(p.name for p in tasks.parent.iterdir()) == ["tasks.json"]


def test_vscode_workspace_must_contain_the_bot(bot, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert_one_line_error(run_cli("vscode", str(bot), "--workspace", str(other)), 1, "outside the workspace")


def test_bad_port_setting(bot):
    (bot / "rasa-gpu.toml").write_text('rasa_port = "fifty"\n')
    assert_one_line_error(run_cli("up", str(bot)), 1, "rasa-gpu.toml", "rasa_port must be a port number")


@pytest.mark.docker
def test_bad_duckling_image_setting_stops_up_before_anything_starts(bot, docker_client):
    config = bot / "config.yml"
    config.write_text(
        config.read_text().replace("  - name: EntitySynonymMapper", "  - name: DucklingEntityExtractor")
    )
    (bot / "rasa-gpu.toml").write_text('duckling_image = "rasa/duckling:0.2 --privileged"\n')
    result = run_cli("up", str(bot))
    assert_one_line_error(
        result, 1, "rasa-gpu.toml: duckling_image 'rasa/duckling:0.2 --privileged' is not an image reference"
    )
    assert not (bot / "rasa-gpu.compose.yml").exists()


def test_up_with_unreachable_engine(bot):
    result = run_cli("up", str(bot), env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_line_error(result, 3, "cannot reach a Docker engine")


@pytest.mark.docker
def test_up_without_compose_installed(bot, docker_client):
    result = run_cli("up", str(bot), env={"RASA_GPU_COMPOSE": "no-such-compose"})
    assert_one_line_error(result, 1, "is installed", "install Docker Compose")


@pytest.mark.docker
def test_up_before_any_model_says_train_first(bot, docker_client):
    assert_one_line_error(run_cli("up", str(bot)), 1, "no trained model", "rasa-gpu train")
    assert not (bot / "rasa-gpu.compose.yml").exists()


@pytest.mark.docker
def test_up_with_a_busy_port_names_port_and_setting(trained_bot, tmp_path, docker_client):
    import socket

    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # the other services on free ports: a parallel test may hold their defaults (user_services_on_default_ports)
        [actions_port] = free_ports(1)
        result = run_cli("up", str(bot), "--rasa-port", str(port), "--actions-port", str(actions_port))
    assert_one_line_error(result, 1, f"port {port} on 127.0.0.1", "rasa_port", "--rasa-port")
    assert compose_containers(docker_client, bot) == []


@pytest.mark.docker
def test_up_with_gpu_on_and_no_nvidia_runtime(trained_bot, tmp_path, docker_client):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    result = run_cli("up", str(bot), "--gpu", "on")
    assert_one_line_error(result, 4, "no NVIDIA runtime", "NVIDIA Container Toolkit")
    assert compose_containers(docker_client, bot) == []


@pytest.mark.docker
@pytest.mark.slow
def test_up_names_the_service_that_does_not_start_and_takes_the_rest_down(
    trained_bot, tmp_path, docker_client
):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    actions = bot / "actions" / "actions.py"
    actions.write_text("import no_such_module_for_rasa_gpu_tests\n" + actions.read_text())
    ports = [str(port) for port in free_ports(2)]
    result = run_cli("up", str(bot), "--timeout", "120", "--rasa-port", ports[0], "--actions-port", ports[1])
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "the actions service" in line and ("stopped" in line or "not healthy" in line), line
    # its last log lines are shown under the message (the service's own traceback), but no traceback of rasa-gpu
    assert "  │ ModuleNotFoundError: No module named 'no_such_module_for_rasa_gpu_tests'" in result.stderr
    assert not any(line.startswith("Traceback") for line in result.stderr.splitlines())
    assert compose_containers(docker_client, bot) == []


def compose_containers(client, bot):
    """The containers compose made for this bot's services (any compose project whose folder is the bot's)."""
    return client.containers.list(all=True, filters={"label": f"{COMPOSE_DIR_LABEL}={bot.resolve()}"})
