"""`--set Component.key=value`: change a training setting without editing config.yml.

The overrides are applied to a copy of the config that only the training container reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .errors import SettingsError


@dataclass(frozen=True)
class Override:
    component: str
    key: str
    value: Any
    text: str


def parse_overrides(items: list[str]) -> list[Override]:
    overrides = []
    for item in items:
        target, sep, raw = item.partition("=")
        component, dot, key = target.strip().rpartition(".")
        if not sep or not dot or not component or not key:
            raise SettingsError(
                f"--set '{item}' is not Component.key=value; for example --set DIETClassifier.epochs=20"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        overrides.append(Override(component=component, key=key, value=value, text=item))
    return overrides


def apply_overrides(
    config: dict[str, Any], overrides: list[Override], *, config_name: str = "config.yml"
) -> dict:
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
            if isinstance(entry, dict) and _matches(entry.get("name"), override.component)
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


def _matches(name: Any, component: str) -> bool:
    """Match by the full name or by the last dotted part (custom components are given as module.Class)."""
    if not isinstance(name, str):
        return False
    return name == component or name.rsplit(".", 1)[-1] == component


def render_config(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
