"""`--fail-on` rules: `FIGURE OP NUMBER` compares a figure's change from the baseline with a number
("intent_f1 < -0.02": fail when intent F1 fell by more than 0.02; "story_accuracy < 0": fail on any drop). Without
a baseline there is no change, and a rule is not checked (the report says so).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import evaluation
from ..errors import SettingsError

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_RULE = re.compile(r"^\s*([a-z_][a-z0-9_]*(?:\[[A-Za-z0-9_.-]+\])?)\s*(<=|>=|<|>)\s*([-+]?\d+(?:\.\d+)?)\s*$")
EXAMPLE = '"intent_f1 < -0.02"'


@dataclass(frozen=True)
class Rule:
    figure: str
    op: str
    limit: float

    @property
    def text(self) -> str:
        return f"{self.figure} {self.op} {self.limit:g}"

    def check(self, deltas: dict[str, float], has_baseline: bool) -> dict[str, Any]:
        """This rule against the figures' changes: whether it fails, the change, and why it was not checked."""
        verdict: dict[str, Any] = {"rule": self.text, "failed": False, "value": None, "why": None}
        if not has_baseline:
            verdict["why"] = "no baseline"
        elif self.figure not in deltas:
            verdict["why"] = f"no {evaluation.label(self.figure)} in both this run and the baseline"
        else:
            verdict["value"] = deltas[self.figure]
            verdict["failed"] = _OPERATORS[self.op](deltas[self.figure], self.limit)
        return verdict


def parse_rule(text: str, subject: str) -> Rule:
    """One rule, or a one-line SettingsError naming where it was given and what a rule looks like."""
    found = _RULE.match(text)
    if not found:
        raise SettingsError(
            f"{subject}: '{text}' is not a rule; write FIGURE OP CHANGE, e.g. {EXAMPLE} "
            f"(figures: {', '.join(evaluation.FIGURES)})"
        )
    figure, op, limit = found.groups()
    if figure not in evaluation.FIGURES and not figure.startswith("entity_f1["):
        raise SettingsError(
            f"{subject}: '{figure}' is not a figure of `rasa test`; use one of {', '.join(evaluation.FIGURES)}"
        )
    return Rule(figure, op, float(limit))


def failing_line(verdicts: list[dict[str, Any]]) -> str | None:
    """The one line that says which rules failed, or None when none did."""
    failed = [v for v in verdicts if v["failed"]]
    if not failed:
        return None
    return "; ".join(f"rule {v['rule']} failed: the change was {v['value']:+.3f}" for v in failed)
