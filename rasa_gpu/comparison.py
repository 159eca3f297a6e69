"""`rasa-gpu runs compare`: two runs of the history side by side (what differs, the times, a test's figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .history import Run

#: The fields a comparison shows when they differ, in this order.
COMPARED = (
    "kind",
    "status",
    "started_at",
    "bot_fingerprint",
    "rasa_version",
    "tensorflow",
    "image_id",
    "device",
    "cpu_limit",
    "memory_limit",
    "overrides",
    "rasa_args",
    "model_sha256",
)


@dataclass(frozen=True)
class TimeRow:
    name: str  # "total" or a component
    a: float | None
    b: float | None

    @property
    def ratio(self) -> float | None:
        """How many times faster B was than A (A/B); None when either is missing."""
        return self.a / self.b if self.a and self.b else None


@dataclass(frozen=True)
class Comparison:
    a: Run
    b: Run
    differences: list[tuple[str, Any, Any]]
    same: list[str]
    times: list[TimeRow]
    figures: list[TimeRow] = field(default_factory=list)  # a test run's figures: A, B (and B - A in to_json)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.id,
            "b": self.b.id,
            "differences": {name: {"a": va, "b": vb} for name, va, vb in self.differences},
            "same": self.same,
            "times": [{"name": t.name, "a": t.a, "b": t.b, "a_over_b": t.ratio} for t in self.times],
            "figures": [
                {
                    "name": f.name,
                    "a": f.a,
                    "b": f.b,
                    "b_minus_a": None if f.a is None or f.b is None else f.b - f.a,
                }
                for f in self.figures
            ],
        }


def compare(a: Run, b: Run) -> Comparison:
    differences, same = [], []
    for name in COMPARED:
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            differences.append((name, va, vb))
        else:
            same.append(name)
    names = list(a.components) + [n for n in b.components if n not in a.components]
    times = [TimeRow("total", a.wall_seconds, b.wall_seconds)]
    times += [TimeRow(n, a.components.get(n), b.components.get(n)) for n in names]
    figure_names = list(a.metrics) + [n for n in b.metrics if n not in a.metrics]
    figures = [TimeRow(n, a.metrics.get(n), b.metrics.get(n)) for n in figure_names]
    return Comparison(a, b, differences, same, times, figures)
