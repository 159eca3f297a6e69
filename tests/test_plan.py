"""The training plan's decisions, without an engine: whether to train and why, which inputs changed, the fine-tune
base or why not, the bot's files read once, last-train.json, and `train --dry-run` for a bot with nothing to train
(decided before any engine is asked)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu.finetune import dialogue_digest, nlu_examples, shape_of
from rasa_gpu.gpu import GpuRequest
from rasa_gpu.project import BotProject
from rasa_gpu.resolve import resolve
from rasa_gpu.runners import LocalRunner
from rasa_gpu.settings import Settings
from rasa_gpu.training import STATE_FILE, TrainOptions, make_plan
from rasa_gpu.training.inputs import BotInputs
from rasa_gpu.training.plan import basis, changed_inputs, decide, finetune_base, fingerprint
from rasa_gpu.training.state import TrainState

OPTIONS = TrainOptions(gpu=GpuRequest("auto"))


@pytest.fixture
def bot(tmp_path) -> Path:
    return copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
    }


def _trained(bot: Path) -> tuple[BotProject, Path]:
    """The bot as if rasa-gpu had trained it as the CLI would now (a model file and last-train.json that matches)."""
    spec = resolve(str(bot), Settings(base_image=os.environ.get("RASA_GPU_BASE_IMAGE")), "gpu").spec
    project = BotProject.load(bot)
    inputs = BotInputs.read(project)
    model = bot / "models" / "20260101-000000-tidy-plan.tar.gz"
    model.parent.mkdir()
    model.write_bytes(b"not really a model")
    TrainState(
        fingerprint=fingerprint(inputs.digest, spec, OPTIONS),
        model=project.relative(model),
        basis=basis(spec, OPTIONS),
        shape=inputs.shape(),
        dialogue=inputs.dialogue(),
        inputs=inputs.files,
        device="CPU: test",
    ).write(project)
    return project, model


def test_the_bots_files_read_once_give_what_each_reading_gave(bot):
    project = BotProject.load(bot)
    inputs = BotInputs.read(project)
    assert inputs.digest == project.inputs_digest()
    assert inputs.shape() == shape_of(project)
    assert inputs.dialogue() == dialogue_digest(project)
    assert inputs.nlu_examples() == nlu_examples(project) > 0
    assert set(inputs.files) == {project.relative(p) for p in project.training_inputs()}
    # the config a training uses (--set overrides) is the one the shape and the dialogue digest see
    config = {**project.config_data(), "policies": [{"name": "RulePolicy"}]}
    assert BotInputs.read(project, config).dialogue() != inputs.dialogue()


def test_nothing_changed_skips_and_every_other_case_trains_with_its_reason(bot):
    project, model = _trained(bot)
    state = TrainState.read(project)
    assert state is not None
    files = BotInputs.read(project).files
    assert state.fingerprint is not None and state.basis is not None
    prints, bases, newest = [state.fingerprint], [state.basis], project.relative(model)

    def reason(**changes: object) -> tuple[bool, str]:
        args: dict = {
            "state": state,
            "newest": newest,
            "fingerprints": prints,
            "files": files,
            "bases": bases,
            "force": False,
            "model_exists": True,
        }
        args.update(changes)
        return decide(**args)

    assert reason() == (False, f"nothing changed since the newest model {newest}")
    assert reason(force=True) == (True, "forced (--force): training whatever changed")
    assert reason(newest=None) == (True, "first training: there is no model in models/ yet")
    assert reason(state=None) == (
        True,
        f"the newest model {newest} was not trained by this rasa-gpu (no {STATE_FILE})",
    )
    assert reason(newest="models/other.tar.gz")[1].startswith(
        "the newest model models/other.tar.gz is not the one"
    )
    assert reason(model_exists=False)[0] is True
    assert reason(fingerprints=["other"], bases=["other"]) == (
        True,
        "the Rasa release, image or rasa train arguments changed",
    )
    edited = {**files, "data/nlu.yml": "0" * 64, "data/extra.yml": "1" * 64}
    del edited["data/rules.yml"]
    assert reason(fingerprints=["other"], files=edited) == (
        True,
        "changed: data/nlu.yml; new: data/extra.yml; removed: data/rules.yml",
    )
    assert reason(fingerprints=["other"]) == (True, "the --set overrides changed")
    older = TrainState(
        fingerprint=state.fingerprint, model=state.model, basis=state.basis
    )  # no digests per file
    assert reason(state=older, fingerprints=["other"]) == (True, "the training inputs changed")


def test_changed_inputs_names_at_most_three_of_a_kind():
    before = {f"data/{i}.yml": "a" for i in range(5)}
    assert changed_inputs(before, {k: "b" for k in before}) == (
        "changed: data/0.yml, data/1.yml, data/2.yml and 2 more"
    )
    assert changed_inputs(before, before) is None and changed_inputs({}, before) is None


def test_the_fine_tune_base_or_why_not(bot):
    project, model = _trained(bot)
    state = TrainState.read(project)
    assert state is not None and state.basis is not None
    shape = BotInputs.read(project).shape()

    def base(**changes: object) -> tuple[Path | None, str | None]:
        args: dict = {"here": True, "state": state, "basis_now": state.basis, "shape": shape}
        args.update(changes)
        asked = args.pop("asked", True)
        newest = args.pop("newest", model)
        return finetune_base(asked, newest, project, **args)

    assert base() == (model, None)
    assert base(asked=False) == (None, None) and base(newest=None) == (None, None)
    assert base(here=False) == (None, "fine-tuning runs on this machine's engine only")
    assert base(state=None) == (None, f"the newest model {model.name} was not trained by rasa-gpu here")
    assert base(basis_now="other") == (None, "the Rasa release, image or rasa train arguments changed")
    nlu = bot / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "\n  - intent: ask_time\n    examples: |\n      - what time is it\n")
    assert base(shape=BotInputs.read(BotProject.load(bot)).shape()) == (None, "new intent ask_time")


def test_last_train_json_keeps_each_inputs_digest_and_survives_garbage(bot):
    project, model = _trained(bot)
    state = TrainState.read(project)
    assert state is not None and state.model == "models/" + model.name
    assert state.inputs == dict(BotInputs.read(project).files) and state.shape is not None
    assert TrainState.from_json(state.to_json()) == state
    (bot / ".rasa-gpu" / STATE_FILE).write_text("[not a record")
    assert TrainState.read(project) is None


def test_a_plan_that_does_not_train_asks_no_engine_and_writes_nothing(bot):
    project, model = _trained(bot)
    before = _tree(bot)
    spec = resolve(str(bot), Settings(base_image=os.environ.get("RASA_GPU_BASE_IMAGE")), "gpu").spec
    runner = LocalRunner("unix:///nonexistent/docker.sock")  # a plan that asked it would fail
    plan = make_plan(project, spec, OPTIONS, runner)
    assert not plan.train and plan.image is None and plan.previous_model == model
    assert plan.lines() == [
        f"nothing to train: nothing changed since the newest model models/{model.name}",
        f"model: models/{model.name} is up to date",
    ]
    shown = plan.to_json()
    assert shown["train"] is False and shown["model"] == f"models/{model.name}" and shown["command"] is None
    assert _tree(bot) == before


def test_dry_run_with_nothing_to_train_exits_0_and_writes_nothing(bot):
    _, model = _trained(bot)
    before = _tree(bot)
    shown = run_cli("train", str(bot), "--dry-run", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert shown.returncode == 0, shown.output
    assert (
        shown.stdout.splitlines()[0]
        == f"nothing to train: nothing changed since the newest model models/{model.name}"
    )
    as_json = run_cli("train", str(bot), "--dry-run", "--json")
    assert as_json.returncode == 0, as_json.output
    plan = json.loads(as_json.stdout)
    assert (plan["train"], plan["model"], plan["where"]) == (False, f"models/{model.name}", "this machine")
    assert _tree(bot) == before


def test_json_without_dry_run_is_one_line(bot):
    assert_one_line_error(run_cli("train", str(bot), "--json"), 1, "--json", "add --dry-run")
    assert not (bot / ".rasa-gpu").exists()


def test_the_fine_tune_switches_are_typed_fields_that_become_the_entry_scripts_environment(bot):
    """The plan's booleans decide the container's switches (nothing is read back from an environment), named as the
    image's entry script reads them."""
    from dataclasses import replace

    from rasa_gpu import templates
    from rasa_gpu.training.container import EAGER_DIET_ENV, KEEP_POLICIES_ENV, switches

    project, model = _trained(bot)
    spec = resolve(str(bot), Settings(base_image=os.environ.get("RASA_GPU_BASE_IMAGE")), "gpu").spec
    skip = make_plan(project, spec, OPTIONS, LocalRunner("unix:///nonexistent/docker.sock"))
    assert switches(skip) == {}
    tuned = replace(
        skip,
        train=True,
        finetune_base=model,
        keep_policies=True,
        eager_diet=True,
        diet_steps=20,
        config_text="recipe: default.v1\n",
        options=replace(OPTIONS, finetune=True, rasa_args=["--augmentation", "0"]),
    )
    assert switches(tuned) == {KEEP_POLICIES_ENV: "1", EAGER_DIET_ENV: "1"}
    assert switches(replace(tuned, keep_policies=False)) == {EAGER_DIET_ENV: "1"}
    entry = templates.read_text("docker", "rasa-gpu-entry.py")
    assert f'KEEP_POLICIES = "{KEEP_POLICIES_ENV}"' in entry and f'EAGER_DIET = "{EAGER_DIET_ENV}"' in entry
    run = f"/bot/.rasa-gpu/tmp/{tuned.run_id}"
    assert tuned.command() == [
        "train",
        "--out",
        f"{run}/out",
        "--config",
        f"{run}/config.yml",  # the overridden config, written into the run's folder
        "--domain",
        "/bot/domain.yml",
        "--data",
        "/bot/data",
        "--augmentation",
        "0",
        "--finetune",
        f"/bot/models/{model.name}",
        "--epoch-fraction",
        "0.2",
    ]
    assert (
        f"fine-tune: from models/{model.name} (only training examples changed); the dialogue policies keep "
        in ("\n".join(tuned.lines()))
    )
