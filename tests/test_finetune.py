"""Which retrainings may fine-tune the newest model: only changed training examples; anything that sizes the
model's layers (labels, regex/lookup features, config beyond epochs, custom code) means a training from scratch,
with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLE_BOT, copy_bot

from rasa_gpu.finetune import Shape, shape_of, why_not
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
