"""--set values that Rasa would take without a word but that make no sense are refused when parsed, in one line that
names the override and what is allowed; sensible values pass unchanged."""

from __future__ import annotations

import pytest

from rasa_gpu import overrides
from rasa_gpu.errors import SettingsError
from rasa_gpu.overrides import apply_overrides, parse_overrides


def refusal(item: str) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_overrides([item])
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--set {item}: ")
    return message


def test_negative_epochs_are_refused_with_what_is_allowed():
    assert refusal("DIETClassifier.epochs=-1") == (
        "--set DIETClassifier.epochs=-1: epochs must be a whole number of at least 1"
    )


def test_a_non_number_where_a_number_belongs_is_refused_the_same_way():
    assert refusal("DIETClassifier.epochs=abc") == (
        "--set DIETClassifier.epochs=abc: epochs must be a whole number of at least 1"
    )


@pytest.mark.parametrize(
    ("item", "allowed"),
    [
        ("DIETClassifier.epochs=0", "at least 1"),
        ("TEDPolicy.epochs=2.5", "whole number"),
        ("TEDPolicy.epochs=true", "whole number"),
        ("TEDPolicy.epochs=", "whole number"),
        ("TEDPolicy.epochs=null", "whole number"),
        ("my.components.Custom.epochs=-3", "at least 1"),  # any component
        ("DIETClassifier.batch_size=0", "[min, max] pair"),
        ("DIETClassifier.batch_size=-64", "[min, max] pair"),
        ("DIETClassifier.batch_size=[0, 256]", "[min, max] pair"),
        ("DIETClassifier.batch_size=[64, -1]", "[min, max] pair"),
        ("DIETClassifier.batch_size=[64]", "[min, max] pair"),
        ("DIETClassifier.batch_size=[8, 16, 32]", "[min, max] pair"),
        ("DIETClassifier.batch_size=big", "[min, max] pair"),
        ("DIETClassifier.learning_rate=0", "above 0"),
        ("DIETClassifier.learning_rate=-0.001", "above 0"),
        ("DIETClassifier.learning_rate=fast", "above 0"),
        ("DIETClassifier.learning_rate=.inf", "above 0"),
        ("DIETClassifier.learning_rate=nan", "above 0"),
        ("TEDPolicy.max_history=0", "or null"),
        ("MemoizationPolicy.max_history=-5", "or null"),
        ("TEDPolicy.max_history=five", "or null"),
        ("DIETClassifier.embedding_dimension=0", "at least 1"),
        ("DIETClassifier.number_of_transformer_layers=-1", "at least 0"),
        ("TEDPolicy.number_of_transformer_layers={text: 1, dialogue: -1}", "per attribute"),
        ("DIETClassifier.transformer_size=-256", "at least 0"),
        ("DIETClassifier.number_of_attention_heads=0", "at least 1"),
        ("DIETClassifier.drop_rate=1", "below 1"),
        ("DIETClassifier.drop_rate=1.5", "below 1"),
        ("DIETClassifier.drop_rate_attention=-0.1", "at least 0"),
        ("TEDPolicy.drop_rate_dialogue=high", "below 1"),
        ("TEDPolicy.drop_rate_label=2", "below 1"),
    ],
)
def test_meaningless_numbers_are_refused(item, allowed):
    key = item.partition("=")[0].rpartition(".")[2]
    assert f": {key} must be " in refusal(item) and allowed in refusal(item)


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("DIETClassifier.epochs=1", 1),
        ("TEDPolicy.epochs=200", 200),
        ("DIETClassifier.batch_size=32", 32),
        ("DIETClassifier.batch_size=[64, 256]", [64, 256]),
        ("DIETClassifier.learning_rate=0.001", 0.001),
        ("DIETClassifier.learning_rate=1e-3", 0.001),  # YAML reads 1e-3 as text; Rasa needs the number
        ("DIETClassifier.learning_rate=1", 1),
        ("TEDPolicy.max_history=5", 5),
        ("TEDPolicy.max_history=null", None),
        ("DIETClassifier.embedding_dimension=20", 20),
        ("DIETClassifier.number_of_transformer_layers=0", 0),  # no transformer: a real choice
        ("TEDPolicy.number_of_transformer_layers={text: 0, dialogue: 2}", {"text": 0, "dialogue": 2}),
        ("DIETClassifier.transformer_size=256", 256),
        ("ResponseSelector.transformer_size=null", None),
        ("DIETClassifier.drop_rate=0", 0),
        ("DIETClassifier.drop_rate=0.0", 0.0),
        ("DIETClassifier.drop_rate_attention=0.999", 0.999),
        # keys without a rule are passed as they are
        ("FallbackClassifier.threshold=0.4", 0.4),
        ("MyPolicy.epochs_note=-1", -1),
        ("DIETClassifier.tensorboard_log_directory=.tensorboard/DIET", ".tensorboard/DIET"),
    ],
)
def test_sensible_values_pass(item, value):
    [override] = parse_overrides([item])
    assert override.value == value and type(override.value) is type(value)


def test_the_rules_are_checked_before_anything_is_applied():
    # parse_overrides is what the CLI calls for --set and for `set` in the settings file, before any training.
    with pytest.raises(SettingsError, match="epochs must be"):
        parse_overrides(["DIETClassifier.epochs=5", "TEDPolicy.epochs=-1"])


def test_a_valid_override_still_lands_in_the_config():
    config = {"pipeline": [{"name": "DIETClassifier", "epochs": 100}], "policies": []}
    result = apply_overrides(config, parse_overrides(["DIETClassifier.learning_rate=1e-3"]))
    assert result["pipeline"][0]["learning_rate"] == 0.001


def test_every_rule_says_what_is_allowed():
    for key, rule in overrides.RULES.items():
        assert rule.allowed and "\n" not in rule.allowed, key
