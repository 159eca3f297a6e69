"""rasa-gpu build and train against a real Docker engine and real Rasa."""

from __future__ import annotations

import os
import signal
import tarfile
import time
import uuid

import pytest
from support import (
    BOT_UID,
    EXAMPLE_BOT,
    SIGNALS,
    copy_bot,
    intent_of,
    leftover_containers,
    models,
    run_cli,
    send_and_wait,
    start_cli,
    wait_for_line,
)

from rasa_gpu import gpu as gpu_rules
from rasa_gpu.engine import ContainerSpec, Engine
from rasa_gpu.images import ensure_image
from rasa_gpu.resolve import resolve
from rasa_gpu.settings import Settings

pytestmark = [pytest.mark.docker]


def test_second_build_is_a_cache_hit_without_the_builder(built_image, monkeypatch):
    result = run_cli("build", str(EXAMPLE_BOT))
    assert result.returncode == 0, result.output
    assert "found (cached, nothing built)" in result.stdout and built_image in result.stdout

    engine = Engine.connect()
    calls = []
    monkeypatch.setattr(engine, "build", lambda *a, **k: calls.append(k) or "")
    # what the CLI resolved, with the base image from the environment as the CLI reads it
    spec = resolve(str(EXAMPLE_BOT), Settings(base_image=os.environ.get("RASA_GPU_BASE_IMAGE")), "gpu").spec
    found = ensure_image(engine, spec, lambda line: None)
    assert found.tag == built_image and found.built is False and calls == []


def test_bot_requirements_build_a_bot_stage_on_the_shared_rasa_stage(built_image, tmp_path, docker_client):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    # A marker that is always true but unique to this run: an image left by an earlier run is never found instead
    # (a comment would not do: requirement lines are read without comments).
    unique = f'platform_machine != "{uuid.uuid4().hex}"'
    # more-itertools is not in Rasa 3.6.21's locked set (a package of it at another version would be a conflict).
    (bot / "requirements.txt").write_text(f"rasa==3.6.21\nmore-itertools==10.5.0 ; {unique}\n")
    first = run_cli("build", str(bot), "-v")
    assert first.returncode == 0, first.output
    tag = first.stdout.split()[0]
    assert tag.startswith("rasa-gpu/bot:3.6.21-") and " built in " in first.stdout
    assert "Step " in first.stderr and " ---> " in first.stderr  # -v: the build's raw output, as it came
    second = run_cli("build", str(bot))
    assert "found (cached, nothing built)" in second.stdout
    out = docker_client.containers.run(
        tag,
        ["-c", "import more_itertools, rasa; print(more_itertools.__version__, rasa.__version__)"],
        entrypoint=["python3"],
        remove=True,
    )
    assert out.decode().split() == ["10.5.0", "3.6.21"]
    docker_client.images.remove(tag)


def test_a_first_training_shows_the_build_in_stages_and_keeps_its_raw_lines_in_the_bots_log(
    built_image, tmp_path, docker_client
):
    """What a newcomer's first `rasa-gpu train` prints before the training (a build of an image that is not there
    yet: a bot stage of its own, on the shared Rasa stage): a few lines, not Docker's, pip's and uv's thousand."""
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")  # owned by BOT_UID
    unique = f'platform_machine != "{uuid.uuid4().hex}"'
    (bot / "requirements.txt").write_text(f"rasa==3.6.21\nmore-itertools==10.5.0 ; {unique}\n")
    epochs = ("--set", "DIETClassifier.epochs=1", "--set", "TEDPolicy.epochs=1")
    result = run_cli("train", str(bot), "--gpu", "off", *epochs)
    assert result.returncode == 0, result.output
    lines = result.stderr.splitlines()
    before = lines[: next(i for i, line in enumerate(lines) if line.startswith("training in "))]
    print(f"lines before the training: {len(before)} (all of stderr: {len(lines)})")
    assert len(before) <= 40, result.stderr
    assert not [line for line in lines if line.startswith(("Step ", " ---> ", "Collecting "))], result.stderr
    assert (
        "(pip, 1 package, 60.0 kB downloaded)" in result.stderr
    )  # the bot's requirement, as its stage's summary
    assert "  ✓ checking the new image: training a tiny bot in it (trained and loaded) " in result.stderr
    # The raw lines are all in the log that the output names, owned by the bot's owner and readable by them only.
    [log] = (bot / ".rasa-gpu" / "logs").iterdir()
    assert f"the build's whole output goes to {log} (-v shows it)" in lines
    raw = log.read_text()
    for needle in ("Step 1/", " ---> Running in ", "Successfully installed more-itertools-10.5.0"):
        assert needle in raw
    assert len(raw.splitlines()) > len(before)
    info = log.lstat()
    assert oct(info.st_mode & 0o777) == oct(0o600)
    if os.geteuid() == 0:
        assert {(p.stat().st_uid, p.stat().st_gid) for p in (log, log.parent)} == {(BOT_UID, BOT_UID)}
    tag = next(line.split()[2] for line in lines if line.startswith("training in "))
    assert tag.startswith("rasa-gpu/bot:")
    docker_client.images.remove(tag)


def test_example_bot_trains_into_models_owned_by_the_bot_owner(trained_bot, docker_client):
    bot, result = trained_bot
    [model] = models(bot)
    assert "Model ready:" in result.stdout and str(model) in result.stdout
    assert "device CPU" in result.stdout
    assert "no NVIDIA runtime for GPU requests: going on to train on the CPU" in result.stderr
    with tarfile.open(model) as tar:
        assert "metadata.json" in {m.name.lstrip("/") for m in tar}
    if os.geteuid() == 0:
        owners = {
            (p.stat().st_uid, p.stat().st_gid)
            for top in ("models", ".rasa", ".rasa-gpu")
            for p in [bot / top, *(bot / top).rglob("*")]
        }
        assert owners == {(BOT_UID, BOT_UID)}
    assert list((bot / ".rasa" / "cache").iterdir()), "Rasa's training cache stays in the bot folder"
    assert not list((bot / ".rasa-gpu" / "tmp").iterdir())
    assert leftover_containers(docker_client, bot) == []


def test_trained_model_answers_model_parse(trained_bot, built_image, docker_client):
    bot, _ = trained_bot
    [model] = models(bot)
    assert intent_of(docker_client, built_image, bot, model, "hello there") == "greet"


def test_no_change_skip_then_force(bot_copy, docker_client):
    before = models(bot_copy)
    skipped = run_cli("train", str(bot_copy))
    assert skipped.returncode == 0, skipped.output
    assert "Nothing changed since the newest model; not training" in skipped.stdout
    assert models(bot_copy) == before
    forced = run_cli("train", str(bot_copy), "--force", "--gpu", "off")
    assert forced.returncode == 0, forced.output
    assert len(models(bot_copy)) == len(before) + 1
    assert "restored from cache" in forced.stderr  # Rasa's cache survived between containers
    assert "no NVIDIA runtime" not in forced.stderr  # --gpu off asks for no GPU at all


def test_one_line_nlu_edit_retrains(bot_copy):
    nlu = bot_copy / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("      - hello\n", "      - hello\n      - hello hello\n", 1))
    result = run_cli("train", str(bot_copy), "--gpu", "off")
    assert result.returncode == 0, result.output
    assert "Model ready:" in result.stdout and len(models(bot_copy)) == 2


def test_gpu_on_without_nvidia_runtime_is_a_clear_error(bot_copy, docker_client):
    before = models(bot_copy)
    result = run_cli("train", str(bot_copy), "--gpu", "on", "--force")
    assert result.returncode == 4
    assert "NVIDIA Container Toolkit" in result.stderr and "Traceback" not in result.output
    assert models(bot_copy) == before
    assert leftover_containers(docker_client, bot_copy) == []


def test_gpu_request_reaches_the_container_on_a_stub_engine(stub_engine, built_image, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", stub_engine)
    engine = Engine.connect()
    for request, expected in (
        (gpu_rules.GpuRequest("on"), "all"),
        (gpu_rules.parse_gpu_request("on", "1,2"), "1,2"),
    ):
        spec = ContainerSpec(
            image=built_image,
            command=["-c", "echo $NVIDIA_VISIBLE_DEVICES"],
            entrypoint=["sh"],
            name=f"rasa-gpu-test-stub-{expected.replace(',', '-')}",
            labels={"io.rasa-gpu.test": "1"},
            gpu=request,
        )
        code, lines = engine.run_to_completion(spec)
        assert (code, lines) == (0, [expected])


def test_tensorflow_seeing_no_gpu_is_loud(stub_engine, bot_copy):
    env = {"DOCKER_HOST": stub_engine}
    before = models(bot_copy)
    on = run_cli("train", str(bot_copy), "--gpu", "on", "--force", env=env)
    assert on.returncode == 4, on.output
    assert "TensorFlow inside the container sees no GPU" in on.stderr
    assert models(bot_copy) == before
    auto = run_cli("train", str(bot_copy), "--force", "--gpus", "0", env=env)
    assert auto.returncode == 0, auto.output
    assert "GPU REQUESTED BUT TENSORFLOW SEES NONE" in auto.stderr
    assert "training in" in auto.stderr and "with GPUs 0" in auto.stderr
    assert "device CPU" in auto.stdout
    assert len(models(bot_copy)) == len(before) + 1


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_interrupt_stops_and_removes_everything(name, bot_copy, docker_client):
    before = models(bot_copy)
    proc = start_cli("train", str(bot_copy), "--force", "--gpu", "off")
    wait_for_line(proc, "training in")
    time.sleep(3)
    assert len(leftover_containers(docker_client, bot_copy)) == 1
    code, took = send_and_wait(proc, SIGNALS[name])
    assert code == 130, proc.stderr.read() if proc.stderr else ""
    assert took < 15
    assert leftover_containers(docker_client, bot_copy) == []
    assert models(bot_copy) == before
    assert not [p for p in (bot_copy / "models").iterdir() if p.name.startswith(".")]
    assert not list((bot_copy / ".rasa-gpu" / "tmp").iterdir())


def test_leftovers_of_a_killed_wrapper_are_removed_by_the_next_run(bot_copy, docker_client):
    proc = start_cli("train", str(bot_copy), "--force", "--gpu", "off")
    wait_for_line(proc, "training in")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert list((bot_copy / ".rasa-gpu" / "tmp").iterdir())  # its temporary output is still there
    # Its container ends by itself (test_signals.py); the next run removes the temporary output under the lock.
    result = run_cli("train", str(bot_copy))
    assert result.returncode == 0, result.output
    assert "removed what an interrupted training left behind: " in result.stderr
    assert "1 temporary folder(s)" in result.stderr
    assert not list((bot_copy / ".rasa-gpu" / "tmp").iterdir())
    # Nothing changed since the newest model, so that run did not contact the engine: the killed run's container
    # ends by itself once its stdin closes (Rasa stopped in whatever it was doing; on a busy machine, some seconds).
    deadline = time.monotonic() + 60
    while leftover_containers(docker_client, bot_copy) and time.monotonic() < deadline:
        time.sleep(1)
    assert leftover_containers(docker_client, bot_copy) == []


def test_two_trainings_of_one_bot_are_serialized(bot_copy):
    first = start_cli("train", str(bot_copy), "--force", "--gpu", "off")
    wait_for_line(first, "training in")
    busy = run_cli("train", str(bot_copy), "--no-wait")
    assert busy.returncode == 75 and "another training of" in busy.stderr and "--no-wait" in busy.stderr
    second = start_cli("train", str(bot_copy), "--gpu", "off")
    waiting = wait_for_line(second, "waiting for it to finish", timeout=60)
    assert waiting and second.poll() is None
    assert first.wait(timeout=600) == 0
    assert second.wait(timeout=600) == 0
    # The second one ran after the first and found its model: nothing changed since.
    assert "Nothing changed since the newest model" in (second.stdout.read() if second.stdout else "")


@pytest.mark.skipif(os.geteuid() != 0, reason="making root-owned files to give back needs root")
def test_root_owned_leftovers_are_given_back_by_a_root_container_when_not_root(
    bot_copy, built_image, docker_client, monkeypatch
):
    """A user without sudo cannot chown root's files: rasa-gpu does it in a short-lived root container."""
    from rasa_gpu.project import BotProject
    from rasa_gpu.runners import LocalRunner
    from rasa_gpu.runners import base as runner_base

    for stray in (bot_copy / "models" / "old-root-model.tar.gz", bot_copy / ".rasa" / "root-file"):
        stray.write_bytes(b"left by a plain `docker run` as root\n")
        os.chown(stray, 0, 0)
    project = BotProject.load(bot_copy)
    assert len(runner_base.foreign_files(project)) == 2
    monkeypatch.setattr(os, "geteuid", lambda: BOT_UID)  # act as the bot's owner, not root
    LocalRunner().give_back(project, built_image)
    monkeypatch.undo()
    assert runner_base.foreign_files(project) == []
    assert (bot_copy / "models" / "old-root-model.tar.gz").stat().st_uid == BOT_UID
    assert leftover_containers(docker_client, bot_copy) == []


#: Run in the containers below instead of Rasa: where HF_HOME points, and a file of a "language model" written by one
#: container and read (then added to) by the next, as transformers caches what it downloads.
HF_PROBE = (
    "import os, pathlib, sys; home = pathlib.Path(os.environ['HF_HOME']); print(home); "
    "model = home / 'hub' / 'models--probe'; model.mkdir(parents=True, exist_ok=True); "
    "seen = (model / 'weights').read_text() if (model / 'weights').exists() else ''; print(repr(seen)); "
    "(model / 'weights').write_text(seen + sys.argv[1] + '\\n')"
)


def test_language_models_are_cached_in_the_bot_for_every_later_container(built_image, tmp_path):
    """HF_HOME of a training container and of `rasa-gpu rasa/test/shell` is the bot's .rasa/huggingface, made
    beforehand as the bot owner's: what one container caches there, the next one finds (no download: huggingface.co
    is not reachable here, so the containers write the cache themselves)."""
    from dataclasses import replace

    from rasa_gpu.project import BotProject
    from rasa_gpu.rasa_commands import rasa_container
    from rasa_gpu.runners import LocalRunner
    from rasa_gpu.training import training_container

    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    project = BotProject.load(bot)
    cache = bot / ".rasa" / "huggingface"
    engine = Engine.connect()
    with LocalRunner().workspace(project, uuid.uuid4().hex[:12], built_image) as workspace:
        assert cache.is_dir() and (cache.stat().st_uid, cache.parent.stat().st_uid) == (BOT_UID, BOT_UID)
        training = training_container(workspace, built_image, [], gpu_rules.GpuRequest("off"))
    rasa = rasa_container(
        project,
        built_image,
        [],
        gpu_rules.GpuRequest("off"),
        terminal=False,
        network=None,
        secrets={},
        run_id=uuid.uuid4().hex[:12],
    )
    outputs = []
    for spec, who in ((training, "training"), (rasa, "rasa")):
        probe = replace(spec, entrypoint=["python3", "-c", HF_PROBE], command=[who], tied=False)
        code, lines = engine.run_to_completion(probe)
        assert code == 0, lines
        outputs.append(lines[-2:])
    assert outputs == [["/bot/.rasa/huggingface", "''"], ["/bot/.rasa/huggingface", repr("training\n")]]
    weights = cache / "hub" / "models--probe" / "weights"
    assert weights.read_text() == "training\nrasa\n"
    assert {p.stat().st_uid for p in [cache, *cache.rglob("*")]} == {BOT_UID}
