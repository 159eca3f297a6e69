"""`--set Component.key=value`: change a training setting without editing config.yml.

The overrides are applied to a copy of the config that only the training container reads. Numeric settings that
Rasa would take without a word but that make no sense (epochs=-1, drop_rate=1.5) are refused when parsed, before
any training starts; see RULES.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import yamlfile
from .errors import SettingsError


@dataclass(frozen=True)
class Override:
    component: str
    key: str
    value: Any
    text: str


def parse_overrides(items: list[str]) -> list[Override]:
    import yaml

    overrides = []
    for item in items:
        target, sep, raw = item.partition("=")
        component, dot, key = target.strip().rpartition(".")
        if not sep or not dot or not component or not key:
            raise SettingsError(
                f"--set '{item}' is not Component.key=value; for example --set DIETClassifier.epochs=20"
            )
        try:
            value = yamlfile.load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        value = _checked(item, key, value)
        overrides.append(Override(component=component, key=key, value=value, text=item))
    return overrides


# ---- numeric settings -------------------------------------------------------------------------------------------


class _Refused(ValueError):
    """A value its rule does not allow."""


@dataclass(frozen=True)
class Rule:
    #: What is allowed, as the error message says it: "<key> must be <allowed>".
    allowed: str
    #: The value to write into the config, or _Refused. May normalise (the text 1e-3 becomes the number 0.001).
    check: Callable[[Any], Any]


def _whole(minimum: int, *, null: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and null:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _Refused
        return value

    return check


def _number(
    *, above: float | None = None, at_least: float | None = None, below: float | None = None
) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as text
            try:
                value = float(value.strip())
            except ValueError:
                raise _Refused from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Refused
        if (
            (above is not None and not value > above)
            or (at_least is not None and not value >= at_least)
            or (below is not None and not value < below)
        ):
            raise _Refused
        return value

    return check


def _or_pair(one: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One value, or a [first, last] pair of them (batch_size: Rasa grows the batch from first to last)."""

    def check(value: Any) -> Any:
        if isinstance(value, list):
            if len(value) != 2:
                raise _Refused
            return [one(v) for v in value]
        return one(value)

    return check


def _or_per_attribute(one: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One value, or one per attribute ({text: 1, dialogue: 1}, as TEDPolicy takes its transformer settings)."""

    def check(value: Any) -> Any:
        if isinstance(value, dict):
            if not value:
                raise _Refused
            return {k: one(v) for k, v in value.items()}
        return one(value)

    return check


_AT_LEAST_1 = "a whole number of at least 1"
_AT_LEAST_0 = "a whole number of at least 0"
_DROPOUT = Rule("a number of at least 0 and below 1", _number(at_least=0, below=1))
_PER_ATTRIBUTE = ", or one per attribute such as {text: 1, dialogue: 1}"

#: Settings of Rasa's components whose meaningless values Rasa accepts without a word, whichever component they are
#: given to. Zero is refused only where it means nothing (no epochs, empty batches, no embedding); elsewhere
#: (0 transformer layers: no transformer) it is a real choice.
RULES: dict[str, Rule] = {
    "epochs": Rule(_AT_LEAST_1, _whole(1)),
    "batch_size": Rule(f"{_AT_LEAST_1}, or a [min, max] pair of them", _or_pair(_whole(1))),
    "learning_rate": Rule("a number above 0", _number(above=0)),
    "max_history": Rule(f"{_AT_LEAST_1}, or null for the whole conversation", _whole(1, null=True)),
    "embedding_dimension": Rule(_AT_LEAST_1, _whole(1)),
    "number_of_transformer_layers": Rule(_AT_LEAST_0 + _PER_ATTRIBUTE, _or_per_attribute(_whole(0))),
    "transformer_size": Rule(
        _AT_LEAST_0 + _PER_ATTRIBUTE + ", or null", _or_per_attribute(_whole(0, null=True))
    ),
    "number_of_attention_heads": Rule(_AT_LEAST_1, _whole(1)),
    "drop_rate": _DROPOUT,
    "drop_rate_attention": _DROPOUT,
    "drop_rate_dialogue": _DROPOUT,
    "drop_rate_label": _DROPOUT,
}


def _checked(item: str, key: str, value: Any) -> Any:
    """The value to set, or a one-line SettingsError when its rule refuses it."""
    rule = RULES.get(key)
    if rule is None:
        return value
    try:
        return rule.check(value)
    except _Refused:
        raise SettingsError(f"--set {item}: {key} must be {rule.allowed}") from None


def apply_overrides(
    config: dict[str, Any], overrides: list[Override], *, config_name: str = "config.yml"
) -> dict[str, Any]:
    """A copy of the Rasa config with every override applied to every pipeline/policy entry of that name."""
    if not overrides:
        return config
    if not isinstance(config, dict):
        raise SettingsError(
            f"{config_name} is not a mapping; --set needs a pipeline or policies list to change"
        )
    result = dict(config)
    sections = {
        name: [dict(entry) for entry in (config.get(name) or [])] for name in ("pipeline", "policies")
    }
    for override in overrides:
        hits = [
            entry
            for entries in sections.values()
            for entry in entries
            if isinstance(entry, dict) and matches(entry.get("name"), override.component)
        ]
        if not hits:
            known = sorted(
                {str(e.get("name")) for es in sections.values() for e in es if isinstance(e, dict)}
            )
            raise SettingsError(
                f"--set {override.text}: no component '{override.component}' in {config_name}; "
                f"components there: {', '.join(known) or 'none'}"
            )
        for entry in hits:
            entry[override.key] = override.value
    for name, entries in sections.items():
        if name in config:
            result[name] = entries
    return result


def component_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config's pipeline and policy entries (those that are mappings), in order."""
    return [e for key in ("pipeline", "policies") for e in (config.get(key) or []) if isinstance(e, dict)]


def matches(name: Any, component: str) -> bool:
    """Match by the full name or by the last dotted part (custom components are given as module.Class)."""
    if not isinstance(name, str):
        return False
    return name == component or name.rsplit(".", 1)[-1] == component


def render_config(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
