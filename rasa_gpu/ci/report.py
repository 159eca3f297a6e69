"""The report of `rasa-gpu ci`: the figures and their change from a baseline, the intents and entities that moved
most, new confusions, and what the figures were measured on (the test set, the device, the image and its lock, the
Rasa version). As JSON (the baseline of a later run) and as Markdown for a pull-request comment: the summary first,
the rest in a details block. Pure: it reads Rasa's report files and renders text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import evaluation
from ..errors import SettingsError

#: The report's JSON format (a baseline of another format is refused).
FORMAT = 1
#: How many movers the summary shows; smaller changes than MOVED are not movers.
TOP_MOVERS = 5
MOVED = 0.005
#: The marker that lets a CI job find its own pull-request comment again (to update it).
COMMENT_MARKER = "<!-- rasa-gpu ci report -->"


@dataclass(frozen=True)
class LabelScore:
    f1: float
    support: int
    confused_with: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Scores:
    """What one `rasa test` measured: the figures, and per intent and per entity its F1, support and confusions."""

    figures: dict[str, float]
    intents: dict[str, LabelScore] = field(default_factory=dict)
    entities: dict[str, LabelScore] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def labels(scores: dict[str, LabelScore]) -> dict[str, Any]:
            return {
                name: {"f1": s.f1, "support": s.support, "confused_with": s.confused_with}
                for name, s in scores.items()
            }

        return {
            "figures": self.figures,
            "intents": labels(self.intents),
            "entities": labels(self.entities),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], subject: str) -> Scores:
        try:
            figures = {str(k): float(v) for k, v in (data.get("figures") or {}).items()}

            def labels(key: str) -> dict[str, LabelScore]:
                return {
                    str(name): LabelScore(
                        float(s["f1"]),
                        int(s["support"]),
                        {str(k): int(v) for k, v in (s.get("confused_with") or {}).items()},
                    )
                    for name, s in (data.get(key) or {}).items()
                }

            return cls(figures, labels("intents"), labels("entities"))
        except (AttributeError, KeyError, TypeError, ValueError):
            raise SettingsError(
                f"{subject} is not a report of `rasa-gpu ci` (its figures cannot be read)"
            ) from None


def read_scores(folder: Path) -> Scores:
    """The scores in a results folder of `rasa test` (evaluation.read_results for the figures)."""
    extractors = evaluation.extractor_reports(folder)  # the first by name, as entity_f1
    entities = _labels(extractors[0]) if extractors else {}
    return Scores(evaluation.read_results(folder), _labels(folder / evaluation.INTENT_REPORT), entities)


_SUMMARY_ROWS = ("accuracy", "macro avg", "weighted avg", "micro avg", "conversation_accuracy")


def _labels(path: Path) -> dict[str, LabelScore]:
    found = {}
    for name, row in (evaluation.read_report(path) or {}).items():
        if name in _SUMMARY_ROWS or not isinstance(row, dict) or "f1-score" not in row:
            continue
        confused = row.get("confused_with")
        confused = confused if isinstance(confused, dict) else {}
        found[str(name)] = LabelScore(
            float(row["f1-score"]),
            int(row.get("support") or 0),
            {str(k): int(v) for k, v in confused.items() if isinstance(v, (int, float))},
        )
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class Mover:
    kind: str  # intent | entity
    name: str
    before: float | None
    after: float | None
    support: int  # test examples now
    trained_on: int | None = None  # training examples now (intents)
    trained_on_before: int | None = None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class Confusion:
    intent: str
    predicted: str
    count: int


@dataclass(frozen=True)
class Report:
    """Everything the JSON and Markdown say. `baseline` None: no deltas, and the report says so."""

    bot: str
    scores: Scores
    tested_on: dict[str, Any]
    run: dict[str, Any]  # training: seconds, trained or reused, device, host, image, lock, Rasa, model
    baseline: Scores | None = None
    baseline_source: str | None = None
    baseline_training: dict[str, int] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)  # rules.Verdict.to_json()
    created_at: str = ""
    validation_warnings: int = 0  # what `rasa data validate` warned about (an error stops the run)

    def deltas(self) -> dict[str, float]:
        if self.baseline is None:
            return {}
        before = self.baseline.figures
        return {n: v - before[n] for n, v in self.scores.figures.items() if n in before}

    def movers(self) -> list[Mover]:
        """Intents and entities whose F1 changed by at least MOVED, the largest change first; without a baseline,
        none."""
        if self.baseline is None:
            return []
        training = self.tested_on.get("training_examples") or {}
        found = []
        for kind, now, then in (
            ("intent", self.scores.intents, self.baseline.intents),
            ("entity", self.scores.entities, self.baseline.entities),
        ):
            for name in sorted(set(now) | set(then)):
                after, before = now.get(name), then.get(name)
                mover = Mover(
                    kind,
                    name,
                    before.f1 if before else None,
                    after.f1 if after else None,
                    after.support if after else 0,
                    training.get(name) if kind == "intent" else None,
                    self.baseline_training.get(name) if kind == "intent" else None,
                )
                if mover.delta is None or abs(mover.delta) >= MOVED:
                    found.append(mover)
        return sorted(found, key=lambda m: (-(abs(m.delta) if m.delta is not None else 2.0), m.kind, m.name))

    def confusions(self) -> list[Confusion]:
        """Intent confusions of this run, largest first."""
        found = [
            Confusion(intent, other, count)
            for intent, score in self.scores.intents.items()
            for other, count in score.confused_with.items()
            if count > 0
        ]
        return sorted(found, key=lambda c: (-c.count, c.intent, c.predicted))

    def new_confusions(self) -> list[Confusion]:
        """Confusions the baseline did not have (all of them without a baseline)."""
        if self.baseline is None:
            return self.confusions()
        old = {(i, o) for i, s in self.baseline.intents.items() for o, n in s.confused_with.items() if n > 0}
        return [c for c in self.confusions() if (c.intent, c.predicted) not in old]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rules if r.get("failed")]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "bot": self.bot,
            "created_at": self.created_at,
            "run": self.run,
            "tested_on": self.tested_on,
            **self.scores.to_json(),
            "baseline": None
            if self.baseline is None
            else {
                "source": self.baseline_source,
                "training_examples": self.baseline_training,
                **self.baseline.to_json(),
            },
            "deltas": self.deltas(),
            "movers": [
                {
                    "kind": m.kind,
                    "name": m.name,
                    "before": m.before,
                    "after": m.after,
                    "delta": m.delta,
                    "test_examples": m.support,
                    "training_examples": m.trained_on,
                    "training_examples_before": m.trained_on_before,
                }
                for m in self.movers()
            ],
            "new_confusions": [
                {"intent": c.intent, "predicted": c.predicted, "count": c.count}
                for c in self.new_confusions()
            ],
            "rules": self.rules,
            "validation_warnings": self.validation_warnings,
            "passed": not self.failed,
        }

    # ---- Markdown ------------------------------------------------------------------------------------------------

    def markdown(self) -> str:
        lines = [COMMENT_MARKER, f"### rasa-gpu ci: {self.bot}", ""]
        verdict = (
            "❌ " + "; ".join(r["rule"] + f" (was {_signed(r.get('value'))})" for r in self.failed)
            if self.failed
            else ("✅ every rule holds" if self.rules else "no rules (`--fail-on`)")
        )
        lines.append(f"**{verdict}**" if self.failed else verdict)
        lines.append("")
        if self.baseline is None:
            lines += [
                "No baseline: the figures have no deltas (give `--baseline RUN|MODEL|REPORT.json`).",
                "",
            ]
        lines += ["| figure | value | change |", "|---|---:|---:|"]
        deltas = self.deltas()
        for name, value in self.scores.figures.items():
            if name.startswith("entity_f1["):
                continue
            change = _signed(deltas[name]) if name in deltas else "–"
            lines.append(f"| {evaluation.label(name)} | {value:.3f} | {change} |")
        lines.append("")
        movers = self.movers()[:TOP_MOVERS]
        if movers:
            lines.append("**Moved most:** " + " · ".join(_mover(m) for m in movers))
            lines.append("")
        new = self.new_confusions()
        if new:
            shown = ", ".join(f"{c.intent} → {c.predicted} ({c.count})" for c in new[:3])
            more = f" and {len(new) - 3} more" if len(new) > 3 else ""
            lines += [f"**New confusions:** {shown}{more}", ""]
        run = self.run
        trained = (
            f"Trained in {_seconds(run.get('training_seconds'))}"
            if run.get("trained")
            else "The model for these inputs was trained earlier"
        )
        lines.append(
            f"Tested on {self.tested_on.get('described', '?')}. {trained} on {run.get('device') or '?'} "
            f"({run.get('host') or '?'}), Rasa {run.get('rasa_version')}."
        )
        lines += ["", "<details><summary>Details</summary>", ""]
        lines += _details(self, movers)
        lines += ["", "</details>", ""]
        return "\n".join(lines)


def _details(report: Report, shown: list[Mover]) -> list[str]:
    run = report.run
    lines = [
        f"- baseline: {report.baseline_source or 'none'}",
        f"- image: `{run.get('image')}` (lock: {run.get('lock') or 'none'}), TensorFlow {run.get('tensorflow')}",
        f"- model: `{run.get('model')}`"
        + (f" (config for this run: {', '.join(run['overrides'])})" if run.get("overrides") else ""),
        f"- rasa data validate: no error, {report.validation_warnings} warning(s)"
        + (" (`rasa-gpu validate` lists them)" if report.validation_warnings else ""),
        f"- test set: {report.tested_on.get('nlu_examples', 0)} NLU examples "
        f"({report.tested_on.get('source')}), {report.tested_on.get('stories', 0)} test stories",
    ]
    for name, value in report.scores.figures.items():
        if name.startswith("entity_f1["):
            lines.append(f"- {evaluation.label(name)}: {value:.3f}")
    movers = report.movers()
    if len(movers) > len(shown):
        lines += ["", "All changes by label:", ""]
        lines += [f"- {_mover(m)}" for m in movers]
    if report.scores.intents:
        lines += [
            "",
            "| intent | F1 | test examples | trained on | confused with |",
            "|---|---:|---:|---:|---|",
        ]
        training = report.tested_on.get("training_examples") or {}
        for name, score in report.scores.intents.items():
            confused = ", ".join(f"{o} ({n})" for o, n in sorted(score.confused_with.items()) if n)
            lines.append(
                f"| {name} | {score.f1:.3f} | {score.support} | {training.get(name, '?')} | {confused or '–'} |"
            )
    if report.rules:
        lines.append("")
    for rule in report.rules:
        state = (
            "fails" if rule.get("failed") else ("holds" if rule.get("value") is not None else "not checked")
        )
        lines.append(f"- rule `{rule['rule']}`: {state}" + (f" ({rule['why']})" if rule.get("why") else ""))
    return lines


def _mover(m: Mover) -> str:
    label = f"{m.name} ({m.kind})" if m.kind == "entity" else m.name
    if m.delta is None:
        state = "new" if m.before is None else "no longer tested"
        return f"{label} {state}"
    counts = f", {m.support} tested"
    if m.trained_on is not None:
        was = f"{m.trained_on_before} → " if m.trained_on_before not in (None, m.trained_on) else ""
        counts += f", trained on {was}{m.trained_on}"
    return f"{label} F1 {m.before:.3f} → {m.after:.3f} ({_signed(m.delta)}{counts})"


def _signed(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "?"
    return f"{value:+.3f}".replace("-", "−")


def _seconds(value: Any) -> str:
    return f"{value:.0f} s" if isinstance(value, (int, float)) else "?"


def load_report(path: Path) -> dict[str, Any]:
    """A report JSON written by `rasa-gpu ci` (a baseline); a one-line error when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read the baseline report {path} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SettingsError(f"the baseline report {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SettingsError(
            f"{path} is not a report of `rasa-gpu ci` (format {FORMAT}); give the .json it wrote beside the .md"
        )
    return data
