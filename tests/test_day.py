"""The rest of a developer's day in the bot's image, for real: rasa test (NLU, cross-validation, Core), any Rasa
command, validation with problem lines, `rasa shell` through a pseudo-terminal, fine-tuning, and keep_models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import (
    REPO,
    CliResult,
    assert_one_line_error,
    free_ports,
    intent_of,
    leftover_containers,
    models,
    run_cli,
    start_cli,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
GREET = "  - intent: greet\n    examples: |\n"


def _runs(bot: Path, *args: str) -> list[dict]:
    result = run_cli("runs", str(bot), "--json", "-n", "0", *args)
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def test_test_nlu_writes_the_reports_and_its_figures_in_the_history(bot_copy, docker_client):
    """Trainings of the same bot that start while the test runs (no-change ones: each tidies .rasa-gpu/tmp under the
    bot's lock) leave the test's claimed folder alone (issue 21: they used to remove it mid-test)."""
    tmp = bot_copy / ".rasa-gpu" / "tmp"
    proc = start_cli("test", str(bot_copy), "nlu")
    try:
        deadline = time.monotonic() + 300
        while not list(tmp.glob("test-*/")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(tmp.glob("test-*/")), "the test's folder appeared"
        trainings = 0
        while proc.poll() is None:
            trained = run_cli("train", str(bot_copy))
            assert trained.returncode == 0, trained.output
            trainings += 1
            # one every few seconds is enough: back to back, they held a core for the whole test
            time.sleep(2)
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert trainings >= 1
    result = CliResult(proc.returncode, stdout, stderr)
    assert result.returncode == 0, result.output
    report = json.loads((bot_copy / "results" / "intent_report.json").read_text())
    for name in ("intent_report.json", "intent_confusion_matrix.png", "intent_histogram.png"):
        path = bot_copy / "results" / name
        assert path.is_file() and path.stat().st_uid == bot_copy.stat().st_uid, name
    [row] = _runs(bot_copy, "--kind", "test")
    assert row["metrics"]["intent_f1"] == report["weighted avg"]["f1-score"]
    assert "intent F1" in result.stdout and f"{report['weighted avg']['f1-score']:.3f}" in result.stdout
    assert not list((bot_copy / ".rasa-gpu" / "tmp").glob("test-*"))
    assert leftover_containers(docker_client, bot_copy) == []


def test_cross_validation_with_two_folds_runs(bot_copy):
    # fewer DIET epochs: each fold trains it, and what is tested is the folds
    config = bot_copy / "config.yml"
    config.write_text(config.read_text().replace("epochs: 50", "epochs: 5"))
    result = run_cli("test", str(bot_copy), "nlu", "--cross-validation", "--folds", "2")
    assert result.returncode == 0, result.output
    [row] = _runs(bot_copy, "--kind", "test")
    assert "cross-validation 2 folds" in row["phase"] and "intent_f1" in row["metrics"]


def test_test_core_on_the_bots_test_stories(bot_copy):
    result = run_cli("test", str(bot_copy), "core", "--", "--stories", "tests")
    assert result.returncode == 0, result.output
    [row] = _runs(bot_copy, "--kind", "test")
    assert row["metrics"]["story_accuracy"] == 1.0, row
    assert (bot_copy / "results" / "story_report.json").is_file()


def test_rasa_data_validate_passes_and_a_broken_domain_is_a_problem_line(bot_copy):
    plain = run_cli("rasa", str(bot_copy), "--", "data", "validate")
    assert plain.returncode == 0, plain.output
    domain = bot_copy / "domain.yml"
    text = domain.read_text()
    domain.write_text(text.replace("responses:\n", 'responses:\n  utter_broken: "just a string"\n', 1))
    line = next(i for i, t in enumerate(domain.read_text().splitlines(), 1) if "utter_broken" in t)
    broken = run_cli("validate", str(bot_copy))
    assert broken.returncode == 1, broken.output
    assert f"error: domain.yml:{line}:1: " in broken.stdout and "utter_broken" in broken.stdout, broken.output


def test_shell_answers_hi_through_a_pseudo_terminal(bot_copy, docker_client):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed")
    session = f"rasa-gpu-test-{os.getpid()}"
    command = f"{sys.executable} -m rasa_gpu shell {bot_copy}; echo SHELL-EXIT=$?; sleep 30"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command], env=env, check=True
    )

    def screen() -> str:
        return subprocess.run(
            [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    def until(needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in (shown := screen()):
                return shown
            time.sleep(1)
        raise AssertionError(f"never saw {needle!r}:\n{screen()}")

    try:
        until("Your input ->", 300)
        subprocess.run([tmux, "send-keys", "-t", session, "hi", "Enter"], check=True)
        greeting = "I'm the GPU shop assistant"
        until(greeting, 60)
        subprocess.run([tmux, "send-keys", "-t", session, "/stop", "Enter"], check=True)
        until("SHELL-EXIT=0", 60)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    assert leftover_containers(docker_client, bot_copy) == []


def test_a_new_example_fine_tunes_and_a_new_intent_trains_from_scratch(bot_copy, docker_client, built_image):
    nlu = bot_copy / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace(GREET, GREET + "      - salutations dear shop\n", 1))
    tuned = run_cli("train", str(bot_copy), "--finetune", "--verbose")
    assert tuned.returncode == 0, tuned.output
    assert "fine-tuning" in tuned.stderr and "fine-tuned from" in tuned.stdout, tuned.output
    # 20 DIET steps: the entry script runs DIET eagerly in the container (and says so in Rasa's output)
    assert "DIET fine-tunes without graph tracing (about 20 steps)" in tuned.stderr, tuned.output
    assert "rasa-gpu-entry: DIETClassifier runs eagerly" in tuned.output, tuned.output
    # no story changed: TEDPolicy keeps its epochs, so Rasa restores the fixture's training of it from the cache
    assert "the dialogue policies keep their last training" in tuned.stderr, tuned.output
    assert "rasa-gpu-entry: the dialogue policies keep their epochs" in tuned.output, tuned.output
    newest = _runs(bot_copy, "--kind", "train")[0]
    assert newest["finetuned_from"] and newest["status"] == "ok", newest
    assert "DIETClassifier" in newest["components"] and "TEDPolicy" not in newest["components"], newest
    model = models(bot_copy)[-1]
    assert intent_of(docker_client, built_image, bot_copy, model, "salutations dear shop") == "greet"
    stories = bot_copy / "data" / "stories.yml"
    stories.write_text(
        stories.read_text() + "\n  - story: greeted twice\n    steps:\n      - intent: greet\n"
        "      - action: utter_greet\n      - intent: greet\n      - action: utter_greet\n"
    )
    # a new story: still a fine-tune, but TEDPolicy learns it (its fine-tune epochs, not Rasa's cache)
    restory = run_cli("train", str(bot_copy), "--finetune")
    assert restory.returncode == 0, restory.output
    assert "fine-tuning" in restory.stderr and "policies keep" not in restory.stderr, restory.output
    assert "TEDPolicy" in _runs(bot_copy, "--kind", "train")[0]["components"]
    nlu.write_text(
        nlu.read_text() + "\n  - intent: ask_opening_hours\n    examples: |\n      - when are you open\n"
    )
    scratch = run_cli("train", str(bot_copy), "--finetune")
    assert scratch.returncode == 0, scratch.output
    assert "training from scratch, not fine-tuning: new intent ask_opening_hours" in scratch.stderr, (
        scratch.output
    )
    assert _runs(bot_copy, "--kind", "train")[0]["finetuned_from"] is None


def test_keep_models_three_after_five_trainings_never_the_served_one(bot_copy):
    rasa_port, actions_port = free_ports(2)
    up = run_cli("up", str(bot_copy), "--rasa-port", str(rasa_port), "--actions-port", str(actions_port))
    assert up.returncode == 0, up.output
    try:
        served = models(bot_copy)[-1].name
        (bot_copy / "rasa-gpu.toml").write_text("keep_models = 3\n")
        # what is tested is which models stay, not what they learnt: trainings of one epoch each
        few = ("--set", "DIETClassifier.epochs=1", "--set", "TEDPolicy.epochs=1")
        for _ in range(5):
            result = run_cli("train", str(bot_copy), "--force", *few)
            assert result.returncode == 0, result.output
        left = [m.name for m in models(bot_copy)]
        listed = json.loads(run_cli("models", str(bot_copy), "--json").stdout)
    finally:
        run_cli("down", str(bot_copy))
    assert served in left and len(left) == 4, left  # the three newest, and the one the server serves
    assert [row for row in listed if row["served"]][0]["model"].endswith(served)


def test_test_without_a_model_is_one_line(tmp_path):
    from support import EXAMPLE_BOT, copy_bot

    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    assert_one_line_error(run_cli("test", str(bot)), 1, "no model in", "rasa-gpu train")
