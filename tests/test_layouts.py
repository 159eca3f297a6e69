"""Bot layouts that Rasa accepts and example_bot does not use, trained and served for real: a domain split into a
domain/ folder, a config.yml without assistant_id (Rasa writes one during the first training), and custom actions in
a single actions.py at the bot root (the Rasa 2 layout), served by `rasa-gpu up` with a token that no `ps` shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from support import (
    BOT_UID,
    EXAMPLE_BOT,
    copy_bot,
    free_ports,
    models,
    remove_containers_under,
    run_cli,
)
from test_services import order_conversation, require_compose

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def give_to_bot_owner(bot: Path) -> None:
    if os.geteuid() == 0:
        for path in [bot, *bot.rglob("*")]:
            os.lchown(path, BOT_UID, BOT_UID)


@pytest.fixture(scope="module")
def split_bot(built_image, tmp_path_factory) -> Path:
    """example_bot's sources with its domain split by section into domain/*.yml, no assistant_id in config.yml, and
    few epochs (a quick training)."""
    bot = copy_bot(EXAMPLE_BOT, tmp_path_factory.mktemp("split") / "split_bot")
    domain = yaml.safe_load((bot / "domain.yml").read_text())
    (bot / "domain.yml").unlink()
    (bot / "domain").mkdir()
    version = domain.pop("version")
    for section, content in domain.items():
        text = yaml.safe_dump({"version": version, section: content}, sort_keys=False)
        (bot / "domain" / f"{section}.yml").write_text(text)
    config = (bot / "config.yml").read_text()
    config = re.sub(r"(?m)^assistant_id:.*\n", "", config)
    config = re.sub(r"epochs: \d+", "epochs: 3", config)
    (bot / "config.yml").write_text(config)
    give_to_bot_owner(bot)
    return bot


@pytest.fixture(scope="module")
def split_bot_trained(split_bot):
    result = run_cli("train", str(split_bot), "--gpu", "off")
    return split_bot, result


def test_a_domain_folder_trains_with_every_part_of_the_domain(split_bot_trained):
    bot, result = split_bot_trained
    assert result.returncode == 0, result.output
    [model] = models(bot)
    with tarfile.open(model) as tar:
        member = next(m for m in tar if m.name.lstrip("./").endswith("components/domain_provider/domain.yml"))
        trained_domain = yaml.safe_load(tar.extractfile(member).read())
    assert "check_order_status" in trained_domain["intents"]
    assert "utter_greet" in trained_domain["responses"]
    assert "order_status_form" in trained_domain["forms"]


def test_no_assistant_id_skips_the_first_retrain(split_bot_trained):
    bot, first = split_bot_trained
    assert first.returncode == 0, first.output
    assert "assistant_id" in (bot / "config.yml").read_text()  # Rasa wrote one during the training
    again = run_cli("train", str(bot), "--gpu", "off")
    assert again.returncode == 0, again.output
    assert "Nothing changed since the newest model" in again.output
    assert len(models(bot)) == 1


def test_a_change_in_the_domain_folder_retrains(split_bot_trained):
    bot, first = split_bot_trained
    assert first.returncode == 0, first.output
    responses = bot / "domain" / "responses.yml"
    responses.write_text(responses.read_text().replace("Hi!", "Hello there!", 1))
    assert "Hello there!" in responses.read_text()
    result = run_cli("train", str(bot), "--gpu", "off")
    assert result.returncode == 0, result.output
    assert "Nothing changed" not in result.output
    assert len(models(bot)) == 2


# ---- a root-level actions.py, served by `up` ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root_actions_up(trained_bot, tmp_path_factory, docker_client):
    """The trained example bot, its actions/ package turned into one actions.py at the root, served by `up`."""
    require_compose("docker compose")
    bot = copy_bot(trained_bot[0], tmp_path_factory.mktemp("rootactions") / "shop")
    shutil.move(bot / "actions" / "actions.py", bot / "actions.py")
    shutil.rmtree(bot / "actions")
    (bot / "actions-requirements.txt").write_text("# what actions.py needs besides rasa-sdk: nothing\n")
    give_to_bot_owner(bot)
    ports = dict(zip(("rasa", "actions"), free_ports(2)))
    env = {"RASA_GPU_COMPOSE": "docker compose"}
    try:
        result = run_cli(
            "up",
            str(bot),
            "--rasa-port",
            str(ports["rasa"]),
            "--actions-port",
            str(ports["actions"]),
            env=env,
        )
        assert result.returncode == 0, result.output
        yield bot, ports, result
    finally:
        run_cli("down", str(bot), env=env)
        remove_containers_under(docker_client, bot)


def test_a_root_actions_py_gets_an_action_server(root_actions_up):
    bot, ports, result = root_actions_up
    assert "actions is healthy" in result.output
    replies = order_conversation(f"http://127.0.0.1:{ports['rasa']}", "carol-root-actions")
    assert "Order 42 for Alice is on its way." in replies, replies


def test_no_process_shows_the_auth_token(root_actions_up):
    bot, _ports, _result = root_actions_up
    env_file = (bot / ".rasa-gpu" / "services.env").read_text()
    pairs = (line.split("=", 1) for line in env_file.splitlines() if "=" in line)
    tokens = [value for key, value in pairs if key.endswith("_TOKEN") and value]
    assert len(tokens) == 2, "RASA_AUTH_TOKEN and JUPYTER_TOKEN"
    # As an unprivileged user, as anybody on this host could: every process's command line.
    as_nobody = {"user": 65534, "group": 65534} if os.geteuid() == 0 else {}
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True, **as_nobody)
    assert "rasa-gpu-entry run --enable-api" in ps.stdout  # the Rasa server is there to be seen
    for token in tokens:
        assert token not in ps.stdout
