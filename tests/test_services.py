"""`rasa-gpu up/ps/restart/down` with a real engine, real compose (v2 and v1) and the real example bot: a REST
conversation that reaches the custom action (which keeps a SQLite file through a relative path, as RasaHQ's demo
bots do), an actions/ edit that changes the reply after a restart, and a down that leaves nothing behind. Services are published on free ports while stand-ins of the user's own services hold the
default ones, and are taken down even when a test fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import BOT_UID, DEFAULT_SERVICE_PORTS, copy_bot, free_ports, remove_containers_under, run_cli

from rasa_gpu.project import BotProject
from rasa_gpu.services import project_name

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: Compose implementations; each run gets its own free host ports. v2 also starts both profiles.
FLAVOURS = {"v2": "docker compose", "v1": "docker-compose"}
PROFILES = ("tensorboard", "jupyter")


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
    ports: dict[str, int]  # host port per service
    up_output: str

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['rasa']}"


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


#: What the example bot's order check gains in the tests: state in a SQLite file opened through a relative path when
#: the module is imported (`sqlite:///profile.db` in SQLAlchemy's words), as RasaHQ's demo bots keep their profiles.
SQLITE_STATE = (
    "import sqlite3\n"
    'PROFILES = sqlite3.connect("profile.db", check_same_thread=False)\n'
    'PROFILES.execute("CREATE TABLE IF NOT EXISTS checks (order_id TEXT)")\n'
    "PROFILES.commit()\n"
)
COUNTED = """        dispatcher.utter_message(text=order_status_text(order_id, customer_name))
        PROFILES.execute("INSERT INTO checks VALUES (?)", (order_id,))
        PROFILES.commit()
        (checked,) = PROFILES.execute("SELECT COUNT(*) FROM checks").fetchone()
        dispatcher.utter_message(text=f"Orders checked so far: {checked}")
"""


def keep_state_in_sqlite(bot: Path) -> None:
    actions = bot / "actions" / "actions.py"
    text = actions.read_text()
    line = "        dispatcher.utter_message(text=order_status_text(order_id, customer_name))\n"
    assert line in text
    actions.write_text(SQLITE_STATE + text.replace(line, COUNTED))


def checked_so_far(replies: list[str]) -> int:
    [count] = [int(m.group(1)) for r in replies if (m := re.fullmatch(r"Orders checked so far: (\d+)", r))]
    return count


def project_containers(docker_client, bot: Path) -> list:
    name = project_name(BotProject.load(bot))
    return docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={name}"})


@pytest.fixture(scope="module", params=list(FLAVOURS))
def services_up(request, trained_bot, tmp_path_factory, docker_client, user_services_on_default_ports):
    flavour = request.param
    command = FLAVOURS[flavour]
    require_compose(command)
    bot = copy_bot(trained_bot[0], tmp_path_factory.mktemp(f"services-{flavour}") / "shop")
    keep_state_in_sqlite(bot)
    env = {"RASA_GPU_COMPOSE": command}
    ports = dict(zip(("rasa", "actions", *PROFILES), free_ports(4)))
    args = ["up", str(bot), "--rasa-port", str(ports["rasa"]), "--actions-port", str(ports["actions"])]
    if flavour == "v2":
        for profile in PROFILES:
            args += ["--profile", profile, f"--{profile}-port", str(ports[profile])]
    else:
        ports = {name: ports[name] for name in ("rasa", "actions")}
    try:
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.output
        yield Services(bot, flavour, env, ports, result.output)
    finally:  # even when `up` or a test failed half-way: no service of this bot stays up
        down = run_cli("down", str(bot), env=env)
        left = remove_containers_under(docker_client, bot)
    assert not left, f"`rasa-gpu down` left containers behind (now removed): {left}\n{down.output}"


def test_up_starts_healthy_services_on_localhost_as_the_bot_owner(services_up, docker_client):
    out = services_up.up_output
    assert f"with {services_up.flavour} (" in out
    assert "actions is healthy" in out and "rasa is healthy" in out
    containers = {
        c.labels["com.docker.compose.service"]: c for c in project_containers(docker_client, services_up.bot)
    }
    assert set(containers) == set(services_up.ports)
    for service, container in containers.items():
        container.reload()
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        assert container.attrs["Config"]["User"] == f"{BOT_UID}:{BOT_UID}"
        bindings = [b for port in container.attrs["NetworkSettings"]["Ports"].values() if port for b in port]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
        assert {b["HostPort"] for b in bindings} == {str(services_up.ports[service])}
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
    with urllib.request.urlopen(
        f"http://127.0.0.1:{services_up.ports['tensorboard']}/", timeout=30
    ) as response:
        assert response.status == 200 and b"TensorBoard" in response.read()
    jupyter = f"http://127.0.0.1:{services_up.ports['jupyter']}"
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


def test_an_action_keeps_its_sqlite_file_in_the_bot_folder_across_restarts(services_up):
    """The action server runs in the bot folder, as `rasa run actions` would: `profile.db` (a relative path) is the
    bot's, owned by its owner, and a restarted action server goes on with it."""
    first = checked_so_far(order_conversation(services_up.rasa_url, f"dora-{services_up.flavour}"))
    database = services_up.bot / "profile.db"
    assert database.is_file() and database.stat().st_uid == BOT_UID
    result = run_cli("restart", str(services_up.bot), "actions", env=services_up.env)
    assert result.returncode == 0, result.output
    second = checked_so_far(order_conversation(services_up.rasa_url, f"erin-{services_up.flavour}"))
    assert second == first + 1
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM checks").fetchone() == (second,)
    actions = services_up.bot / "actions"
    assert sorted(p.name for p in actions.iterdir()) == ["__init__.py", "actions.py", "requirements.txt"]


def test_the_rasa_service_caches_language_models_in_the_bot(services_up, docker_client):
    """HF_HOME of the Rasa server is the bot's .rasa/huggingface (made by rasa-gpu, the owner's): what a container
    writes there is the bot's file, seen by every later container."""
    rasa = next(
        c
        for c in project_containers(docker_client, services_up.bot)
        if c.labels["com.docker.compose.service"] == "rasa"
    )
    cache = services_up.bot / ".rasa" / "huggingface"
    assert cache.is_dir() and cache.stat().st_uid == BOT_UID
    code, output = rasa.exec_run(["sh", "-c", 'echo "$HF_HOME" && echo served > "$HF_HOME/probe-from-rasa"'])
    assert (code, output.decode().strip()) == (0, "/bot/.rasa/huggingface")
    probe = cache / "probe-from-rasa"
    assert probe.read_text() == "served\n" and probe.stat().st_uid == BOT_UID


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
    assert f"stopped and removed {len(services_up.ports)} container(s)" in result.stdout
    assert project_containers(docker_client, services_up.bot) == []
    project = project_name(BotProject.load(services_up.bot))
    assert docker_client.networks.list(filters={"label": f"com.docker.compose.project={project}"}) == []
    assert sorted((services_up.bot / "models").iterdir()) == models_before
    assert "no services" in run_cli("ps", str(services_up.bot), env=services_up.env).stdout
    for path in services_up.bot.rglob("*"):  # nothing root-owned was left in the bot folder
        assert path.lstat().st_uid == BOT_UID, path


def test_the_users_own_services_kept_the_default_ports(services_up, user_services_on_default_ports):
    """The stand-ins held 127.0.0.1:5005/5055 (and 6006/8888) all along, or something else did: the services above
    came up next to them, on their own ports."""
    for port in DEFAULT_SERVICE_PORTS:
        with socket.socket() as probe, pytest.raises(OSError):
            probe.bind(("127.0.0.1", port))
    assert not set(services_up.ports.values()) & set(DEFAULT_SERVICE_PORTS)
