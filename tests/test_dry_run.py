"""`rasa-gpu train --dry-run` on real engines: the plan it prints for a bot with nothing to train, one that would
fine-tune, one that would train from scratch (in an image it would build), and one on an engine over SSH; and that
nothing was created on the engine (container, image, volume) or in the bot folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support import EXAMPLE_BOT, copy_bot, models, require_docker, run_cli

pytestmark = [pytest.mark.docker]

WOULD_TRAIN = 10


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path in the bot with its size, mtime and owner: a file made, changed or given away shows."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns, p.lstat().st_uid)
        for p in sorted(root.rglob("*"))
    }


def _image_id(client, tag: str) -> str | None:
    import docker

    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


class Untouched:
    """What a dry run must leave as it found it: the bot's files, the engine's containers and volumes of this bot
    (listed, and the engine's own log of containers created), and the images the plan names."""

    def __init__(self, client, bot: Path) -> None:
        self.client, self.bot = client, bot
        self.since = datetime.now(timezone.utc)
        self.before = self._view()

    def _view(self) -> dict[str, object]:
        label = f"io.rasa-gpu.bot={self.bot}"
        return {
            "tree": _tree(self.bot),
            "containers": sorted(
                c.name for c in self.client.containers.list(all=True, filters={"label": label})
            ),
            "volumes": sorted(v.name for v in self.client.volumes.list(filters={"label": label})),
            "candidates": sorted(
                t for image in self.client.images.list(name="rasa-gpu/candidate") for t in image.tags
            ),
        }

    def check(self, *tags: str) -> None:
        after = self._view()
        # another test's build may name a candidate meanwhile; none of this plan's images may appear
        names = [tag.rpartition(":")[2] for tag in tags]
        after["candidates"] = [c for c in after["candidates"] if c in self.before["candidates"]] + [  # type: ignore[union-attr]
            c
            for c in after["candidates"]  # type: ignore[union-attr]
            if c not in self.before["candidates"] and any(n in c for n in names)  # type: ignore[operator]
        ]
        assert after == self.before
        created = self.client.events(
            since=self.since,
            until=datetime.now(timezone.utc),
            decode=True,
            filters={"type": "container", "event": "create", "label": f"io.rasa-gpu.bot={self.bot}"},
        )
        assert [e["Actor"]["Attributes"].get("name") for e in created] == []


def _plan(bot: Path, *args: str, env: dict[str, str] | None = None) -> tuple[list[str], dict]:
    shown = run_cli("train", str(bot), "--dry-run", *args, env=env)
    as_json = run_cli("train", str(bot), "--dry-run", "--json", *args, env=env)
    assert shown.returncode == as_json.returncode, (shown.output, as_json.output)
    assert "Traceback" not in shown.output + as_json.output
    assert shown.returncode in (0, WOULD_TRAIN), shown.output
    return shown.stdout.splitlines(), {**json.loads(as_json.stdout), "exit": as_json.returncode}


def test_nothing_to_train_exits_0_and_touches_nothing(bot_copy, docker_client):
    untouched = Untouched(docker_client, bot_copy)
    model = f"models/{models(bot_copy)[-1].name}"
    lines, plan = _plan(bot_copy)
    assert plan["exit"] == 0
    assert lines == [
        f"nothing to train: nothing changed since the newest model {model}",
        f"model: {model} is up to date",
    ]
    assert (plan["train"], plan["model"], plan["image"], plan["command"]) == (False, model, None, None)
    untouched.check()


def test_a_new_example_would_fine_tune_in_the_image_that_is_there(bot_copy, docker_client, built_image):
    nlu = bot_copy / "data" / "nlu.yml"
    greet = "  - intent: greet\n    examples: |\n"
    nlu.write_text(nlu.read_text().replace(greet, greet + "      - salutations dear shop\n", 1))
    untouched = Untouched(docker_client, bot_copy)
    base = f"models/{models(bot_copy)[-1].name}"
    lines, plan = _plan(bot_copy, "--finetune", "--gpu", "off")
    assert plan["exit"] == WOULD_TRAIN
    assert lines[0] == "would train: changed: data/nlu.yml", lines
    assert lines[1] == "where: this machine (the bot folder is mounted)"
    assert lines[2] == f"image: {built_image} (on the engine; used as it is)"
    assert "GPU: none (--gpu off): it trains on the CPU" in lines
    assert (
        f"fine-tune: from {base} (only training examples changed); the dialogue policies keep their last "
        "training; DIET without graph tracing (about 20 steps)"
    ) in lines
    command = lines[-1]
    assert command.startswith("command: rasa train --out /bot/.rasa-gpu/tmp/") and command.endswith(
        f"--config /bot/config.yml --domain /bot/domain.yml --data /bot/data --finetune /bot/{base} "
        "--epoch-fraction 0.2"
    )
    assert plan["image"]["action"] == "use" and plan["image"]["tag"] == built_image
    assert plan["finetune"] == {
        "asked": True,
        "base": base,
        "reason": None,
        "keep_policies": True,
        "eager_diet": True,
        "diet_steps": 20,
    }
    assert plan["gpu"]["asked"] == "off" and plan["command"][:2] == ["rasa", "train"]
    untouched.check(built_image)


def test_a_changed_config_and_new_requirements_would_train_from_scratch_in_an_image_to_build(
    bot_copy, docker_client
):
    config = bot_copy / "config.yml"
    config.write_text(
        config.read_text().replace("constrain_similarities: true", "constrain_similarities: false")
    )
    # a requirement no image has yet: a bot stage would be built
    unique = f'platform_machine != "{uuid.uuid4().hex}"'
    (bot_copy / "requirements.txt").write_text(f"rasa==3.6.21\nmore-itertools==10.5.0 ; {unique}\n")
    untouched = Untouched(docker_client, bot_copy)
    lines, plan = _plan(bot_copy, "--finetune")
    assert plan["exit"] == WOULD_TRAIN
    assert lines[0] == "would train: the Rasa release, image or rasa train arguments changed", lines
    tag = plan["image"]["tag"]
    assert tag.startswith("rasa-gpu/bot:3.6.21-") and plan["image"]["action"] == "build"
    assert f"image: {tag} (not on the engine; would be built there)" in lines
    assert any(line.startswith(f"  would build {tag} ") for line in lines), lines
    assert "fine-tune: no, from scratch: the Rasa release, image or rasa train arguments changed" in lines
    assert plan["image"]["gpu_ready"] in (None, False) and plan["finetune"]["base"] is None
    assert _image_id(docker_client, tag) is None
    untouched.check(tag)
    # the same bot without the new requirement: the config alone is the reason, and no fine-tune for it
    (bot_copy / "requirements.txt").unlink()
    lines, plan = _plan(bot_copy, "--finetune")
    assert lines[0] == "would train: changed: config.yml" and plan["exit"] == WOULD_TRAIN, lines
    assert "fine-tune: no, from scratch: config.yml changed in more than the epochs" in lines


SSH_HOST = os.environ.get("RASA_GPU_TEST_SSH_HOST", "")
SSH_PATH = os.environ.get("RASA_GPU_TEST_SSH_PATH", "")
REMOTE_SOCKET = os.environ.get("RASA_GPU_TEST_REMOTE_SOCKET", "")


@pytest.mark.slow
def test_on_an_engine_over_ssh_the_plan_says_where_and_nothing_is_created_there(tmp_path, request):
    if not (SSH_HOST and SSH_PATH and REMOTE_SOCKET):
        if require_docker():
            pytest.fail(
                "the SSH engine is not set up; scripts/test.sh starts it with scripts/remote-engine.sh"
            )
        pytest.skip("no SSH engine (run scripts/remote-engine.sh and export the lines it prints)")
    import docker

    remote = docker.DockerClient(base_url=REMOTE_SOCKET)
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    # the SSH tunnel's folder is made here (TMPDIR) and must be gone afterwards; a short path: its sockets live there
    tunnels = Path(tempfile.mkdtemp(prefix="rg-plan-"))
    request.addfinalizer(lambda: shutil.rmtree(tunnels, ignore_errors=True))
    env = {"PATH": f"{SSH_PATH}:{os.environ['PATH']}", "RASA_GPU_CUDA": "none", "TMPDIR": str(tunnels)}
    untouched = Untouched(remote, bot)
    lines, plan = _plan(bot, "--host", SSH_HOST, env=env)
    assert plan["exit"] == WOULD_TRAIN
    assert lines[0] == "would train: first training: there is no model in models/ yet", lines
    assert lines[1] == f"where: {SSH_HOST} (the bot's inputs travel there in a volume)"
    assert plan["where"] == SSH_HOST and plan["capabilities"]["mounts_bot_folder"] is False
    tag, action = plan["image"]["tag"], plan["image"]["action"]
    # what the plan says of the image is what that engine has
    there = _image_id(remote, tag) is not None
    assert action == ("use" if there else "build"), (action, there)
    assert lines[2] == (
        f"image: {tag} (on the engine; used as it is)"
        if there
        else f"image: {tag} (not on the engine; would be built there)"
    )
    untouched.check(tag)
    assert (_image_id(remote, tag) is not None) == there
    assert list(tunnels.iterdir()) == []  # the tunnel did not outlive the command
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        assert str(tunnels).encode() not in cmdline, cmdline
