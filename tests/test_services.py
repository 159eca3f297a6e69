"""`rasa-gpu up/ps/restart/down` with a real engine, real compose (v2 and v1) and the real example bot: a REST
conversation that reaches the custom action, an actions/ edit that changes the reply after a restart, and a down
that leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BOT_UID, copy_bot, run_cli

from rasa_gpu.project import BotProject
from rasa_gpu.services import project_name

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: Compose implementations and the host ports each test run uses (distinct, so a leftover cannot mask a bug);
#: v2 also starts both profiles (tensorboard, jupyter).
FLAVOURS = {
    "v2": ("docker compose", 15005, 15055),
    "v1": ("docker-compose", 25005, 25055),
}
PROFILE_PORTS = {"tensorboard": 16006, "jupyter": 18888}


def require_compose(command: str) -> None:
    ok = shutil.which(command.split()[0]) is not None and (
        subprocess.run([*command.split(), "version"], capture_output=True).returncode == 0
    )
    if ok:
        return
    message = f"`{command}` is not installed (scripts/compose.sh installs v1 and v2)"
    if os.environ.get("RASA_GPU_REQUIRE_DOCKER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Services:
    bot: Path
    flavour: str
    env: dict[str, str]
    rasa_url: str
    actions_port: int
    up_output: str


def say(url: str, sender: str, text: str) -> list[str]:
    request = urllib.request.Request(
        f"{url}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return [m.get("text", "") for m in json.loads(response.read())]


def order_conversation(url: str, sender: str) -> list[str]:
    replies = []
    for text in ("hi", "where is my order?", "Alice", "42"):
        replies += say(url, sender, text)
    return replies


def project_containers(docker_client, bot: Path) -> list:
    name = project_name(BotProject.load(bot))
    return docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={name}"})


@pytest.fixture(scope="module", params=list(FLAVOURS))
def services_up(request, trained_bot, tmp_path_factory, docker_client):
    flavour = request.param
    command, rasa_port, actions_port = FLAVOURS[flavour]
    require_compose(command)
    bot = copy_bot(trained_bot[0], tmp_path_factory.mktemp(f"services-{flavour}") / "shop")
    env = {"RASA_GPU_COMPOSE": command}
    args = ["up", str(bot), "--rasa-port", str(rasa_port), "--actions-port", str(actions_port)]
    if flavour == "v2":
        for profile, port in PROFILE_PORTS.items():
            args += ["--profile", profile, f"--{profile}-port", str(port)]
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.output
    yield Services(bot, flavour, env, f"http://127.0.0.1:{rasa_port}", actions_port, result.output)
    run_cli("down", str(bot), env=env)  # in case a test failed before its own down


def test_up_starts_healthy_services_on_localhost_as_the_bot_owner(services_up, docker_client):
    out = services_up.up_output
    assert f"with {services_up.flavour} (" in out
    assert "actions is healthy" in out and "rasa is healthy" in out
    containers = {
        c.labels["com.docker.compose.service"]: c for c in project_containers(docker_client, services_up.bot)
    }
    assert set(containers) == {"actions", "rasa"} | (
        set(PROFILE_PORTS) if services_up.flavour == "v2" else set()
    )
    for container in containers.values():
        container.reload()
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        assert container.attrs["Config"]["User"] == f"{BOT_UID}:{BOT_UID}"
        bindings = [b for port in container.attrs["NetworkSettings"]["Ports"].values() if port for b in port]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
    compose_text = (services_up.bot / "rasa-gpu.compose.yml").read_text()
    token = next(
        line.split("=", 1)[1]
        for line in (services_up.bot / ".rasa-gpu/services.env").read_text().splitlines()
        if line.startswith("RASA_AUTH_TOKEN=")
    )
    assert token not in compose_text
    image = docker_client.images.get(containers["rasa"].image.id)
    assert token not in json.dumps(image.attrs) and token not in json.dumps(image.history())
    ps = run_cli("ps", str(services_up.bot), env=services_up.env)
    assert ps.returncode == 0 and "healthy" in ps.stdout and "actions" in ps.stdout


def test_profiles_serve_tensorboard_and_a_token_protected_notebook(services_up):
    if services_up.flavour != "v2":
        pytest.skip("the profiles are started in the v2 run only (one notebook image build is enough)")
    with urllib.request.urlopen(f"http://127.0.0.1:{PROFILE_PORTS['tensorboard']}/", timeout=30) as response:
        assert response.status == 200 and b"TensorBoard" in response.read()
    jupyter = f"http://127.0.0.1:{PROFILE_PORTS['jupyter']}"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{jupyter}/api/contents", timeout=30)
    assert denied.value.code == 403
    token = next(
        line.split("=", 1)[1]
        for line in (services_up.bot / ".rasa-gpu/services.env").read_text().splitlines()
        if line.startswith("JUPYTER_TOKEN=")
    )
    with urllib.request.urlopen(f"{jupyter}/api/contents?token={token}", timeout=30) as response:
        names = {item["name"] for item in json.loads(response.read())["content"]}
    assert {"data", "domain.yml", "models"} <= names  # the bot folder is the notebook folder


def test_rest_conversation_reaches_the_custom_action(services_up):
    replies = order_conversation(services_up.rasa_url, f"alice-{services_up.flavour}")
    assert "Order 42 for Alice is on its way." in replies, replies
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{services_up.rasa_url}/status", timeout=10)
    assert denied.value.code in (401, 403)  # the HTTP API needs the token


def test_actions_edit_and_restart_change_the_reply(services_up, docker_client):
    actions = services_up.bot / "actions" / "actions.py"
    actions.write_text(actions.read_text().replace('"is on its way"', '"has left our warehouse"'))
    rasa = next(
        c
        for c in project_containers(docker_client, services_up.bot)
        if c.labels["com.docker.compose.service"] == "rasa"
    )
    rasa_started = rasa.attrs["State"]["StartedAt"]
    result = run_cli("restart", str(services_up.bot), "actions", env=services_up.env)
    assert result.returncode == 0, result.output
    assert "restarted actions" in result.stdout
    replies = order_conversation(services_up.rasa_url, f"bob-{services_up.flavour}")
    assert "Order 42 for Alice has left our warehouse." in replies, replies
    rasa.reload()
    assert rasa.attrs["State"]["StartedAt"] == rasa_started  # only the action server restarted


def test_down_leaves_nothing_running(services_up, docker_client):
    models_before = sorted((services_up.bot / "models").iterdir())
    result = run_cli("down", str(services_up.bot), env=services_up.env)
    assert result.returncode == 0, result.output
    expected = 2 + (len(PROFILE_PORTS) if services_up.flavour == "v2" else 0)
    assert f"stopped and removed {expected} container(s)" in result.stdout
    assert project_containers(docker_client, services_up.bot) == []
    project = project_name(BotProject.load(services_up.bot))
    assert docker_client.networks.list(filters={"label": f"com.docker.compose.project={project}"}) == []
    assert sorted((services_up.bot / "models").iterdir()) == models_before
    assert "no services" in run_cli("ps", str(services_up.bot), env=services_up.env).stdout
    for path in services_up.bot.rglob("*"):  # nothing root-owned was left in the bot folder
        assert path.lstat().st_uid == BOT_UID, path
