"""The parts of `rasa-gpu ci` that need no engine: the held-out split and the training copy, the report from Rasa's
report files (JSON and Markdown), the --fail-on rules, the [ci] settings, and the CI jobs --init writes, checked
offline against the GitHub workflow and GitLab CI schemas and with shellcheck on every shell step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu.ci import report as ci_report
from rasa_gpu.ci import rules, templates, testset
from rasa_gpu.ci.baseline import resolve as resolve_baseline
from rasa_gpu.errors import ProjectError, SettingsError
from rasa_gpu.project import BotProject
from rasa_gpu.settings import load_settings


@pytest.fixture
def bot(tmp_path) -> Path:
    return copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None, state=False)


def _pairs(path: Path) -> set[tuple[str, str]]:
    return set(testset.intent_examples({"f": yaml.safe_load(path.read_text())}))


# ---- the held-out split -----------------------------------------------------------------------------------------


def test_the_split_holds_out_a_fifth_that_the_training_copy_lacks(bot):
    project = BotProject.load(bot)
    tests, copy = testset.prepare(project)
    every = _pairs(bot / "data" / "nlu.yml")
    held = _pairs(tests.nlu_file)
    trained = _pairs(copy.root / "data" / "nlu.yml")
    assert held and not held & trained
    assert held | trained == every
    assert 0.1 < len(held) / len(every) < 0.3
    assert tests.source == "held-out split" and tests.nlu_examples == len(held)
    assert sum(tests.training_counts.values()) == len(trained)
    # the rest of the bot is copied as it is; the stories are the bot's own tests/
    assert (copy.root / "data" / "stories.yml").read_bytes() == (bot / "data" / "stories.yml").read_bytes()
    assert (copy.root / "domain.yml").read_bytes() == (bot / "domain.yml").read_bytes()
    assert tests.stories == bot / "tests" and tests.stories_count == 5
    # the bot's own fingerprint is untouched by the copy inside .rasa-gpu/
    assert project.inputs_digest() == BotProject.load(bot).inputs_digest()


def test_an_example_stays_on_its_side_when_others_change(bot):
    project = BotProject.load(bot)
    tests, _ = testset.prepare(project)
    held = _pairs(tests.nlu_file)
    nlu = bot / "data" / "nlu.yml"
    text = nlu.read_text()
    assert "      - how many [H100](gpu_model) do you have?\n" in text
    nlu.write_text(text.replace("      - how many [H100](gpu_model) do you have?\n", ""))
    again, copy = testset.prepare(BotProject.load(bot))
    held_again = _pairs(again.nlu_file)
    assert held_again == {p for p in held if p != ("ask_stock", "how many [H100](gpu_model) do you have?")}
    assert ("ask_stock", "how many [H100](gpu_model) do you have?") not in _pairs(
        copy.root / "data" / "nlu.yml"
    )


def test_an_intent_keeps_one_example_to_train_on():
    always = [t for t in (f"x{i}" for i in range(200)) if testset.is_held_out("tiny", t)][:2]
    docs = {"data/nlu.yml": {"nlu": [{"intent": "tiny", "examples": "".join(f"- {t}\n" for t in always)}]}}
    held = testset.held_out_examples(docs)
    assert len(held) == 1


def test_a_file_the_bot_no_longer_has_leaves_the_training_copy(bot):
    (bot / "data" / "extra.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - yo\n'
    )
    _, copy = testset.prepare(BotProject.load(bot))
    assert (copy.root / "data" / "extra.yml").is_file()
    (bot / "data" / "extra.yml").unlink()
    _, copy = testset.prepare(BotProject.load(bot))
    assert not (copy.root / "data" / "extra.yml").exists()


def test_the_bots_own_nlu_test_file_is_used_and_nothing_is_held_out(bot):
    (bot / "tests" / "nlu_test.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hiya\n'
    )
    project = BotProject.load(bot)
    tests, trained_from = testset.prepare(project)
    assert trained_from == project
    assert tests.source == "tests/" and tests.nlu_file == bot / "tests" / "nlu_test.yml"
    assert tests.nlu_examples == 1 and tests.stories == bot / "tests"
    assert not (bot / ".rasa-gpu" / testset.TRAINING_COPY).exists()


def test_markdown_nlu_data_is_refused_in_one_line(bot):
    (bot / "data" / "nlu.md").write_text("## intent:greet\n- hi\n")
    with pytest.raises(ProjectError, match="Markdown training data"):
        testset.prepare(BotProject.load(bot))


def test_a_link_in_the_state_folder_is_never_followed(bot, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (bot / ".rasa-gpu").mkdir()
    (bot / ".rasa-gpu" / "ci").symlink_to(outside)
    with pytest.raises(ProjectError):
        testset.prepare(BotProject.load(bot))
    assert list(outside.iterdir()) == []


# ---- the report ---------------------------------------------------------------------------------------------------


def _results(folder: Path, intents: dict[str, tuple[float, int, dict[str, int]]], f1: float) -> Path:
    folder.mkdir(parents=True)
    report: dict = {
        name: {"precision": v, "recall": v, "f1-score": v, "support": n, "confused_with": c}
        for name, (v, n, c) in intents.items()
    }
    report["accuracy"] = f1
    report["weighted avg"] = {"precision": f1, "recall": f1, "f1-score": f1, "support": 10}
    report["macro avg"] = {"precision": f1, "recall": f1, "f1-score": f1, "support": 10}
    (folder / "intent_report.json").write_text(json.dumps(report))
    (folder / "story_report.json").write_text(
        json.dumps({"conversation_accuracy": {"accuracy": 0.8}, "weighted avg": {"f1-score": 0.9}})
    )
    return folder


def _report(tmp_path, baseline: bool = True, **kw) -> ci_report.Report:
    now = ci_report.read_scores(
        _results(
            tmp_path / "now",
            {"greet": (1.0, 2, {}), "ask_stock": (0.4, 3, {"inform": 2}), "affirm": (0.98, 2, {})},
            0.8,
        )
    )
    before = ci_report.read_scores(
        _results(
            tmp_path / "before",
            {"greet": (1.0, 2, {}), "ask_stock": (1.0, 3, {}), "affirm": (1.0, 2, {})},
            0.95,
        )
    )
    return ci_report.Report(
        bot="bot",
        scores=now,
        tested_on={"described": "15 NLU examples", "training_examples": {"ask_stock": 2}, "nlu_examples": 7},
        run={"trained": True, "training_seconds": 61.2, "device": "CPU: x", "host": "h", "image": "img:1"},
        baseline=before if baseline else None,
        baseline_source="report main.json" if baseline else None,
        baseline_training={"ask_stock": 11},
        **kw,
    )


def test_the_report_names_the_mover_its_counts_and_the_new_confusion(tmp_path):
    report = _report(tmp_path, validation_warnings=2)
    assert report.deltas()["intent_f1"] == pytest.approx(-0.15)
    [top, second] = report.movers()
    assert (top.name, top.trained_on, top.trained_on_before, top.support) == ("ask_stock", 2, 11, 3)
    assert top.delta == pytest.approx(-0.6) and second.name == "affirm"
    assert [(c.intent, c.predicted, c.count) for c in report.new_confusions()] == [("ask_stock", "inform", 2)]
    text = report.markdown()
    assert text.startswith(ci_report.COMMENT_MARKER)
    assert "| intent F1 | 0.800 | −0.150 |" in text
    assert "ask_stock F1 1.000 → 0.400 (−0.600, 3 tested, trained on 11 → 2)" in text
    assert "**New confusions:** ask_stock → inform (2)" in text
    assert "<details>" in text and text.index("Moved most") < text.index("<details>")
    assert "- rasa data validate: no error, 2 warning(s)" in text
    data = report.to_json()
    assert data["movers"][0]["name"] == "ask_stock" and data["baseline"]["source"] == "report main.json"
    again = ci_report.Scores.from_json(data, "x")
    assert again == report.scores


def test_without_a_baseline_the_report_says_so_and_has_no_deltas(tmp_path):
    report = _report(tmp_path, baseline=False)
    assert report.deltas() == {} and report.movers() == []
    assert "No baseline" in report.markdown()
    assert report.to_json()["baseline"] is None


def test_a_baseline_report_is_read_back_and_a_wrong_file_is_one_line(tmp_path, bot):
    path = tmp_path / "main.json"
    path.write_text(json.dumps(_report(tmp_path).to_json()))
    base = resolve_baseline(BotProject.load(bot), str(path), "--baseline")
    assert base.kind == "report" and base.scores is not None and base.scores.figures["intent_f1"] == 0.8
    (tmp_path / "other.json").write_text('{"figures": {}}')
    with pytest.raises(SettingsError, match="is not a report of `rasa-gpu ci`"):
        resolve_baseline(BotProject.load(bot), str(tmp_path / "other.json"), "--baseline")
    with pytest.raises(SettingsError, match="the model .* does not exist"):
        resolve_baseline(BotProject.load(bot), str(tmp_path / "none.tar.gz"), "--baseline")
    with pytest.raises(SettingsError, match="is not a baseline"):
        resolve_baseline(BotProject.load(bot), "yesterday", "--baseline")


# ---- rules ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta", "failed"),
    [
        ("intent_f1 < -0.02", -0.15, True),
        ("intent_f1 < -0.2", -0.15, False),
        ("story_accuracy < 0", 0.0, False),
        ("story_accuracy <= 0", 0.0, True),
        ("entity_f1[DIETClassifier] < -0.1", -0.3, True),
    ],
)
def test_a_rule_compares_the_change(text, delta, failed):
    rule = rules.parse_rule(text, "--fail-on")
    verdict = rule.check({rule.figure: delta}, has_baseline=True)
    assert verdict["failed"] is failed and verdict["value"] == delta
    if failed:
        line = rules.failing_line([verdict])
        assert line is not None and rule.text in line and "\n" not in line


def test_a_rule_without_a_baseline_or_its_figure_is_not_checked():
    rule = rules.parse_rule("intent_f1 < -0.02", "--fail-on")
    assert rule.check({}, has_baseline=False)["why"] == "no baseline"
    assert "no intent F1" in rule.check({"action_f1": 0.1}, has_baseline=True)["why"]


@pytest.mark.parametrize("text", ["intent_f1 -0.02", "intent_f1 < x", "intent_f1 == 0", "bogus_f1 < 0"])
def test_a_wrong_rule_is_one_line(text):
    with pytest.raises(SettingsError) as caught:
        rules.parse_rule(text, "rasa-gpu.toml: [ci] fail_on")
    assert (
        caught.value.message.startswith("rasa-gpu.toml: [ci] fail_on: ") and "\n" not in caught.value.message
    )


def test_the_ci_table_is_read_and_type_checked(bot):
    (bot / "rasa-gpu.toml").write_text('[ci]\nfail_on = ["intent_f1 < -0.02"]\nbaseline = "pinned"\n')
    settings = load_settings(bot)
    assert settings.ci_fail_on == ["intent_f1 < -0.02"] and settings.ci_baseline == "pinned"
    (bot / "rasa-gpu.toml").write_text("[ci]\nfail_on = [1]\n")
    with pytest.raises(SettingsError, match=r"^rasa-gpu.toml: \[ci\] fail_on must be"):
        load_settings(bot)


def test_a_wrong_rule_on_the_command_line_stops_before_anything_runs(bot):
    result = run_cli(
        "ci", str(bot), "--fail-on", "intent_f1 is worse", env={"DOCKER_HOST": "unix:///nonexistent"}
    )
    assert_one_line_error(result, 1, "--fail-on: 'intent_f1 is worse' is not a rule")
    assert not (bot / ".rasa-gpu").exists() and not (bot / "results").exists()


# ---- the CI jobs ----------------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is in the test extra (pip install -e '.[test]')"
    return found


@pytest.mark.parametrize(
    ("kind", "schema"), [("github", "vendor.github-workflows"), ("gitlab", "vendor.gitlab-ci")]
)
def test_init_writes_a_job_that_its_schema_and_shellcheck_accept(tmp_path, bot, kind, schema):
    repo = tmp_path / "repo"
    shutil.move(bot, repo)
    (repo / ".git").mkdir()
    result = run_cli(
        "ci", str(repo), "--init", kind, "--runner-label", "self-hosted", "--runner-label", "a100"
    )
    assert result.returncode == 0, result.output
    job = repo / templates.PATHS[kind]
    checked = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", schema, str(job)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    scripts = _shell_steps(yaml.safe_load(job.read_text()), kind)
    assert any("rasa-gpu ci" in s for s in scripts)
    for number, script in enumerate(scripts):
        path = tmp_path / f"step{number}.sh"
        path.write_text("#!/usr/bin/env bash\n" + script)
        lint = subprocess.run(
            [_tool("shellcheck"), "--severity=warning", str(path)], capture_output=True, text=True
        )
        assert lint.returncode == 0, script + lint.stdout
    again = run_cli("ci", str(repo), "--init", kind)
    assert_one_line_error(again, 1, "exists; move it aside")


def test_a_broken_job_fails_its_schema(tmp_path):
    """The check above can fail: the same schema refuses a job with a misspelt key."""
    job = tmp_path / "job.yml"
    job.write_text(templates.render("github", templates.TemplateOptions()).replace("runs-on:", "runs-onn:"))
    checked = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(job)],
        capture_output=True,
    )
    assert checked.returncode != 0


def test_the_jobs_run_the_one_ci_script_with_values_from_the_environment():
    odd = templates.TemplateOptions(bot='bots/a "quoted" $(bot)', default_branch="main")
    for kind in templates.KINDS:
        text = templates.render(kind, odd)
        data = yaml.safe_load(text)
        scripts = _shell_steps(data, kind)
        assert sum(templates.CI_SCRIPT.strip() in s for s in scripts) >= 1
        assert "$(bot)" not in "".join(scripts)  # the bot's name is a variable's value, never script text
        env = data["env"] if kind == "github" else data[".rasa-gpu-ci"]["variables"]
        assert env["RASA_GPU_BOT"] == 'bots/a "quoted" $(bot)'


def _shell_steps(data: dict, kind: str) -> list[str]:
    if kind == "github":
        return [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]
    found = []
    for job in data.values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                found += [line for line in job.get(key, []) if isinstance(line, str)]
    return found


def test_the_ci_script_runs_rasa_gpu_ci_with_the_baseline_only_when_there_is_one(tmp_path):
    """The job's script as bash runs it, with a stand-in `rasa-gpu` that prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "rasa-gpu"
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    stand_in.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RASA_GPU_BOT": "my bot",
        "RASA_GPU_REPORT": "r/report.md",
        "RASA_GPU_BASELINE": str(tmp_path / "base.json"),
    }
    run = subprocess.run(["bash", "-c", templates.CI_SCRIPT], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["[ci]", "[my", "bot]", "[--report]", "[r/report.md]"]
    (tmp_path / "base.json").write_text("{}")
    run = subprocess.run(["bash", "-c", templates.CI_SCRIPT], env=env, capture_output=True, text=True)
    assert run.stdout.splitlines()[-2:] == ["[--baseline]", f"[{tmp_path / 'base.json'}]"]


def test_a_run_of_the_history_is_a_baseline_and_pinned_is_the_newest_pinned_ci_run(tmp_path, bot):
    from rasa_gpu import history
    from rasa_gpu.ci.baseline import saved_report

    project = BotProject.load(bot)
    with pytest.raises(SettingsError, match="has no run history yet"):
        resolve_baseline(project, "pinned", "--baseline")
    run = history.Run(kind="ci", metrics={"intent_f1": 0.8})
    history.record(project, run)
    assert run.id is not None
    project.write_owned(saved_report(project, run.id), json.dumps(_report(tmp_path).to_json()))
    test_run = history.Run(kind="test", metrics={"intent_f1": 0.7})
    history.record(project, test_run)
    with pytest.raises(SettingsError, match="no ci run is pinned"):
        resolve_baseline(project, "pinned", "--baseline")
    with history.History.of(project) as runs:
        runs.pin(str(run.id))
    pinned = resolve_baseline(project, "pinned", "[ci] baseline")
    assert pinned.kind == "report" and pinned.source.startswith(f"run {run.id} ")
    assert pinned.scores is not None and "ask_stock" in pinned.scores.intents
    figures_only = resolve_baseline(project, str(test_run.id), "--baseline")
    assert figures_only.scores is not None and figures_only.scores.figures == {"intent_f1": 0.7}
    assert "figures only" in figures_only.source
    with pytest.raises(SettingsError, match="no run 99"):
        resolve_baseline(project, "99", "--baseline")


def test_ci_seeds_the_components_the_config_leaves_unseeded():
    from rasa_gpu.ci.run import SEED, seed_overrides
    from rasa_gpu.overrides import parse_overrides

    def seeds(config, *given):
        return [o.text for o in seed_overrides(config, parse_overrides(list(given)))]

    config = {
        "pipeline": [{"name": "WhitespaceTokenizer"}, {"name": "DIETClassifier", "epochs": 50}],
        "policies": [{"name": "TEDPolicy", "random_seed": 7}, {"name": "my.custom.ResponseSelector"}],
    }
    assert seeds(config) == [f"DIETClassifier.random_seed={SEED}", f"ResponseSelector.random_seed={SEED}"]
    assert seeds(config, "DIETClassifier.random_seed=1") == [f"ResponseSelector.random_seed={SEED}"]
    # a seed given for the full name counts too, and so does one in the config for either of two entries
    assert seeds(config, "my.custom.ResponseSelector.random_seed=3") == [f"DIETClassifier.random_seed={SEED}"]
    two = {"pipeline": [{"name": "DIETClassifier", "random_seed": 5}, {"name": "DIETClassifier"}]}
    assert seeds(two) == []
    assert seeds({"language": "en"}) == []  # Rasa picks the pipeline: nothing to seed here


def test_a_baseline_model_outside_the_bot_is_copied_in_and_one_inside_is_used_where_it_is(bot, tmp_path):
    """The test container sees only the bot folder: a model from elsewhere is copied (in chunks) into
    .rasa-gpu/ci/baseline-model/, replacing the one an earlier run copied there."""
    from rasa_gpu.ci.run import BASELINE_MODEL, _inside

    project = BotProject.load(bot)
    outside = tmp_path / "elsewhere" / "base.tar.gz"
    outside.parent.mkdir()
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    outside.write_bytes(data)
    earlier = project.state_dir / BASELINE_MODEL / "old.tar.gz"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"old")
    copy = _inside(project, outside)
    assert copy == project.state_dir / BASELINE_MODEL / "base.tar.gz" and copy.read_bytes() == data
    assert sorted(p.name for p in copy.parent.iterdir()) == ["base.tar.gz"]
    inside = project.root / "models" / "m.tar.gz"
    inside.parent.mkdir(exist_ok=True)
    inside.write_bytes(b"m")
    assert _inside(project, inside) == inside
