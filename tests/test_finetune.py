"""Which retrainings may fine-tune the newest model: only changed training examples; anything that sizes the
model's layers (labels, regex/lookup features, config beyond epochs, custom code) means a training from scratch,
with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support import EXAMPLE_BOT, copy_bot

from rasa_gpu.finetune import (
    EAGER_DIET_MAX_STEPS,
    Shape,
    dialogue_digest,
    diet_steps,
    nlu_examples,
    shape_of,
    why_not,
)
from rasa_gpu.project import BotProject


@pytest.fixture
def bot(tmp_path) -> Path:
    return copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)


def _shape(bot: Path) -> Shape:
    return shape_of(BotProject.load(bot))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_example_bots_shape(bot):
    shape = _shape(bot)
    assert {"greet", "goodbye", "affirm"} <= set(shape.labels["intents"])
    assert shape.labels["responses"] and shape.labels["actions"]
    assert Shape.from_json(shape.to_json()) == shape


def test_new_examples_stories_and_epochs_fine_tune(bot):
    before = _shape(bot)
    _edit(bot / "data" / "nlu.yml", "      - howdy\n", "      - howdy\n      - hiya there\n")
    _edit(bot / "config.yml", "epochs: 40", "epochs: 80")
    (bot / "data" / "stories.yml").write_text((bot / "data" / "stories.yml").read_text() + "\n")
    assert why_not(before, _shape(bot)) is None


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            "  - intent: goodbye\n",
            "  - intent: thanks\n    examples: |\n      - thanks\n\n  - intent: goodbye\n",
            "new intent thanks",
        ),
        ("      - howdy\n", "      - howdy from [Berlin](city)\n", "new entity city"),
        (
            "      - howdy\n",
            '      - howdy from [Berlin]{"entity": "city", "role": "from"}\n',
            "new entities city, city#role=from",
        ),
    ],
    ids=["intent", "entity", "entity-role"],
)
def test_new_labels_in_the_nlu_data_train_from_scratch(bot, old, new, reason):
    before = _shape(bot)
    _edit(bot / "data" / "nlu.yml", old, new)
    assert why_not(before, _shape(bot)) == reason


def test_domain_config_and_code_changes_train_from_scratch(bot):
    before = _shape(bot)
    _edit(bot / "config.yml", "threshold: 0.4", "threshold: 0.5")
    assert why_not(before, _shape(bot)) == "config.yml changed in more than the epochs"
    _edit(bot / "config.yml", "threshold: 0.5", "threshold: 0.4")
    assert why_not(before, _shape(bot)) is None
    slot = "slots:\n  size:\n    type: text\n    mappings:\n    - type: from_text\n"
    _edit(bot / "domain.yml", "slots:\n", slot)
    assert why_not(before, _shape(bot)) == "new slot size"
    _edit(bot / "domain.yml", slot, "slots:\n")
    (bot / "my_component.py").write_text("X = 1\n")
    assert why_not(before, _shape(bot)) == "the custom component code changed"


def test_a_split_domain_folder_counts_every_part(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    before = _shape(bot)
    (bot / "domain").mkdir()
    (bot / "domain.yml").rename(bot / "domain" / "main.yml")
    (bot / "domain" / "extra.yml").write_text(
        'version: "3.1"\nresponses:\n  utter_extra:\n  - text: "Extra"\n'
    )
    assert why_not(before, _shape(bot)) == "new response utter_extra"


def test_no_known_shape_is_a_reason():
    assert "shape is unknown" in why_not(None, Shape())
    assert Shape.from_json("garbage") is None


def test_a_short_fine_tune_of_diet_is_counted_in_steps(bot):
    """example_bot: 96 NLU examples, DIET 50 epochs; a fine-tune of 0.2 trains 10 epochs of 2 batches of 64."""
    project = BotProject.load(bot)
    examples = nlu_examples(project)
    intents = [
        item for item in yaml.safe_load((bot / "data" / "nlu.yml").read_text())["nlu"] if "intent" in item
    ]
    assert examples == sum(len(item["examples"].strip().splitlines()) for item in intents)
    _edit(bot / "data" / "nlu.yml", "      - howdy\n", "      - howdy\n      - hiya there\n")
    assert nlu_examples(BotProject.load(bot)) == examples + 1
    config = project.config_data()
    assert diet_steps(config, examples, 0.2) == 10 * -(-examples // 64)
    assert diet_steps(config, examples, 0.2) <= EAGER_DIET_MAX_STEPS


def test_diet_steps_follow_rasas_defaults_and_the_batch_size():
    diet = {"name": "DIETClassifier"}
    assert diet_steps({"pipeline": [diet]}, 640, 0.2) == 60 * 10  # 300 epochs by default, batches of 64
    assert diet_steps({"pipeline": [{**diet, "epochs": 100, "batch_size": [32, 256]}]}, 64, 0.1) == 10 * 2
    assert diet_steps({"pipeline": [{"name": "rasa_plus.nlu.DIETClassifier", "epochs": 10}]}, 1, 1.0) == 10
    assert diet_steps({"pipeline": [{"name": "LogisticRegressionClassifier"}]}, 640, 0.2) is None
    assert diet_steps({"pipeline": [{**diet, "epochs": "many"}]}, 640, 0.2) is None
    assert diet_steps(None, 640, 0.2) is None


def _dialogue(bot: Path) -> str | None:
    return dialogue_digest(BotProject.load(bot))


def test_the_dialogue_digest_ignores_nlu_edits_and_follows_stories_rules_domain_and_policies(bot):
    before = _dialogue(bot)
    assert before is not None
    _edit(bot / "data" / "nlu.yml", "      - howdy\n", "      - howdy\n      - hiya there\n")
    _edit(bot / "config.yml", "epochs: 50", "epochs: 60")  # DIET's: an NLU component
    _edit(bot / "domain.yml", "session_config:", "# a comment changes nothing\nsession_config:")
    assert _dialogue(bot) == before
    for path, old, new in [
        (
            "data/stories.yml",
            "      - action: utter_greet\n",
            "      - action: utter_greet\n      - intent: affirm\n",
        ),
        ("data/rules.yml", "steps:", "conversation_start: true\n    steps:"),
        ("domain.yml", "session_config:", "slots_extra: {}\nsession_config:"),
        ("config.yml", "epochs: 40", "epochs: 30"),  # TEDPolicy's
    ]:
        _edit(bot / path, old, new)
        now = _dialogue(bot)
        assert now is not None and now != before, path
        before = now


def test_end_to_end_stories_have_no_dialogue_digest(bot):
    stories = bot / "data" / "stories.yml"
    _edit(
        stories,
        "      - intent: greet\n",
        "      - user: hello there\n",
    )
    assert _dialogue(bot) is None
