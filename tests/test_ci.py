"""`rasa-gpu ci` on a real engine with real Rasa: a baseline report of example_bot; after most training examples of
one intent are removed, the next report shows that intent's F1 drop among the movers and the figures' deltas, and a
rule fails in one line; with a rule that holds (and the first model as the baseline) it exits 0 without training.
The model the report describes never saw an example of the held-out split."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from support import assert_one_line_error, run_cli

from rasa_gpu.ci import testset
from rasa_gpu.project import BotProject

pytestmark = [pytest.mark.docker]

#: The dialogue policy is not what this test measures: fewer TED epochs keep each training short.
FAST = ("--set", "TEDPolicy.epochs=5")
INTENT = "ask_stock"


def _examples(path: Path) -> set[tuple[str, str]]:
    return set(testset.intent_examples({"f": yaml.safe_load(path.read_text())}))


def _remove_training_examples(bot: Path, intent: str, keep: int) -> int:
    """Remove all but `keep` of the intent's examples that the split trains on (the held-out ones stay, so the test
    set is the same). Returns how many were removed."""
    nlu = bot / "data" / "nlu.yml"
    lines, removed, kept = [], 0, 0
    current = None
    for line in nlu.read_text().splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("- intent:"):
            current = stripped.split(":", 1)[1].strip()
        elif stripped.startswith(("- synonym:", "- regex:", "- lookup:")):
            current = None
        elif (
            current == intent and stripped.startswith("- ") and not testset.is_held_out(intent, stripped[2:])
        ):
            if kept >= keep:
                removed += 1
                continue
            kept += 1
        lines.append(line)
    nlu.write_text("".join(lines))
    return removed


def test_ci_reports_an_intents_drop_fails_the_rule_and_holds_with_a_loose_one(
    bot_copy, tmp_path, docker_client
):
    bot = bot_copy
    first = tmp_path / "main" / "report.md"
    base = run_cli("ci", str(bot), "--report", str(first), *FAST)
    assert base.returncode == 0, base.output
    assert "no baseline" in base.stderr
    baseline = json.loads(first.with_suffix(".json").read_text())
    assert baseline["baseline"] is None and baseline["deltas"] == {}
    assert baseline["tested_on"]["source"] == "held-out split" and baseline["tested_on"]["stories"] == 5
    assert baseline["run"]["trained"] is True and baseline["run"]["rasa_version"] == "3.6.21"
    assert baseline["intents"][INTENT]["support"] >= 1

    # The model of the report never saw a held-out example: it is the training copy's model, and the copy's files
    # are exactly what that training hashed (last-train.json), none of them holding a held-out example.
    copy = BotProject.load(bot / ".rasa-gpu" / testset.TRAINING_COPY)
    state = json.loads((copy.state_dir / "last-train.json").read_text())
    assert f".rasa-gpu/{testset.TRAINING_COPY}/{state['model']}" == baseline["run"]["model"]
    assert state["inputs"] == copy.input_digests()
    held = _examples(bot / ".rasa-gpu" / testset.HELD_OUT_FILE)
    trained = set().union(*(_examples(p) for p in copy.training_inputs() if p.parent.name == "data"))
    assert held and not held & trained
    assert len(held) == baseline["tested_on"]["nlu_examples"]

    removed = _remove_training_examples(bot, INTENT, keep=1)
    assert removed >= 8
    second = tmp_path / "pr" / "report.md"
    worse = run_cli(
        "ci", str(bot), "--report", str(second), "--baseline", str(first.with_suffix(".json")),
        "--fail-on", "intent_f1 < -0.02", *FAST,
    )  # fmt: skip
    assert_one_line_error(worse, 1, "rule intent_f1 < -0.02 failed: the change was -")
    report = json.loads(second.with_suffix(".json").read_text())
    assert report["passed"] is False and report["deltas"]["intent_f1"] < -0.02
    movers = [m["name"] for m in report["movers"][:3]]
    assert INTENT in movers, report["movers"]
    mover = next(m for m in report["movers"] if m["name"] == INTENT)
    assert mover["delta"] < 0 and mover["training_examples"] == 1
    assert mover["training_examples_before"] == baseline["tested_on"]["training_examples"][INTENT]
    assert report["tested_on"]["nlu_examples"] == baseline["tested_on"]["nlu_examples"]  # the same test set
    text = second.read_text()
    assert f"{INTENT} F1" in text and "Tested on" in text and "❌ intent_f1 < -0.02 (was −" in text
    shutil.copy(
        second, tmp_path.parent / "ci-report-example.md"
    )  # for the docs: a report as this test made it

    third = tmp_path / "again" / "report.md"
    first_model = bot / baseline["run"]["model"]
    holds = run_cli(
        "ci", str(bot), "--report", str(third), "--baseline", str(first_model),
        "--fail-on", "intent_f1 < -0.9", "-v", *FAST,
    )  # fmt: skip
    assert holds.returncode == 0, holds.output
    assert holds.stderr.count("Intent evaluation results") == 2, (
        holds.output
    )  # -v: Rasa's own lines, both tests
    again = json.loads(third.with_suffix(".json").read_text())
    assert again["run"]["trained"] is False and again["run"]["model"] == report["run"]["model"]
    assert again["baseline"]["source"].startswith(f"model {first_model.name}")
    assert again["baseline"]["figures"]["intent_f1"] == pytest.approx(
        baseline["figures"]["intent_f1"], abs=1e-6
    )
    assert again["rules"] == [{"rule": "intent_f1 < -0.9", "failed": False, "value": again["deltas"]["intent_f1"],
                               "why": None}]  # fmt: skip
    # everything ci wrote into the bot is the bot owner's
    owner = bot.stat().st_uid
    for path in [*bot.rglob("*")]:
        if not path.is_symlink():
            assert path.lstat().st_uid == owner, path
    assert os.stat(third).st_uid == os.getuid()  # a report outside the bot is the caller's
