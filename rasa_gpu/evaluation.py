"""The figures of a `rasa test` run, read from the reports Rasa writes into its results folder.

Rasa writes scikit-learn classification reports as JSON: `intent_report.json` (NLU intents),
`<Extractor>_report.json` per entity extractor (e.g. DIETClassifier_report.json), `response_selection_report.json`,
and `story_report.json` (Core: the action report plus `conversation_accuracy`). rasa-gpu keeps one number per
figure, named the same in the terminal, the run history and `runs compare`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INTENT_REPORT = "intent_report.json"
STORY_REPORT = "story_report.json"
RESPONSE_REPORT = "response_selection_report.json"
#: The figures in the order they are shown, with their labels.
FIGURES = {
    "intent_f1": "intent F1",
    "intent_accuracy": "intent accuracy",
    "entity_f1": "entity F1",
    "response_f1": "response F1",
    "story_accuracy": "story accuracy",
    "action_f1": "action F1",
}


def read_results(folder: Path) -> dict[str, float]:
    """The figures found in a results folder (weighted averages over labels; entity F1 of the first extractor by
    name when there are several, each also as entity_f1[Extractor])."""
    figures: dict[str, float] = {}
    intents = read_report(folder / INTENT_REPORT)
    if intents is not None:
        _put(figures, "intent_f1", _weighted(intents, "f1-score"))
        _put(figures, "intent_accuracy", _accuracy(intents))
    for path in extractor_reports(folder):
        report = read_report(path)
        value = _weighted(report, "f1-score") if report is not None else None
        if value is not None:
            figures.setdefault("entity_f1", value)
            figures[f"entity_f1[{path.name[: -len('_report.json')]}]"] = value
    responses = read_report(folder / RESPONSE_REPORT)
    if responses is not None:
        _put(figures, "response_f1", _weighted(responses, "f1-score"))
    stories = read_report(folder / STORY_REPORT)
    if stories is not None:
        conversations = stories.get("conversation_accuracy")
        if isinstance(conversations, dict):
            _put(figures, "story_accuracy", _number(conversations.get("accuracy")))
        _put(figures, "action_f1", _weighted(stories, "f1-score"))
    return figures


def label(name: str) -> str:
    """A figure's name as people read it: intent F1, entity F1 (DIETClassifier)."""
    if name.startswith("entity_f1["):
        return f"entity F1 ({name[len('entity_f1[') : -1]})"
    return FIGURES.get(name, name.replace("_", " "))


def extractor_reports(folder: Path) -> list[Path]:
    """The entity extractors' reports in a results folder (`<Extractor>_report.json`), by name."""
    return sorted(
        p
        for p in folder.glob("*_report.json")
        if p.name not in (INTENT_REPORT, STORY_REPORT, RESPONSE_REPORT)
    )


def read_report(path: Path) -> dict[str, Any] | None:
    """One of Rasa's JSON reports, or None when it is missing, unreadable or not a mapping."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _weighted(report: dict[str, Any], key: str) -> float | None:
    average = report.get("weighted avg")
    return _number(average.get(key)) if isinstance(average, dict) else None


def _accuracy(report: dict[str, Any]) -> float | None:
    """scikit-learn writes `accuracy` as a number, or `micro avg` instead when some labels are missing."""
    value = report.get("accuracy")
    if isinstance(value, dict):
        return _number(value.get("f1-score"))
    if value is not None:
        return _number(value)
    micro = report.get("micro avg")
    return _number(micro.get("f1-score")) if isinstance(micro, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _put(figures: dict[str, float], name: str, value: float | None) -> None:
    if value is not None:
        figures[name] = value
