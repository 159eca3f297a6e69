"""Which models a bot keeps: the newest `keep_models`, and always the one a running server serves and every model a
history row marks as pinned. Nothing here deletes; `to_remove` says what may go, and the caller removes it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: keep_models for `watch` when the settings say nothing: a day of saves leaves this many models, not hundreds.
WATCH_DEFAULT = 10


@dataclass(frozen=True)
class ModelFile:
    path: Path
    size: int
    modified: float  # Unix time
    run_id: int | None = None  # the training that wrote it, from the history
    served: bool = False  # the model a running Rasa server of `up` has loaded
    pinned: bool = False  # `rasa-gpu runs pin ID`
    finetuned: bool = False

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.modified)


def newest_first(models: Iterable[ModelFile]) -> list[ModelFile]:
    return sorted(models, key=lambda m: (m.modified, m.path.name), reverse=True)


def to_remove(models: Iterable[ModelFile], keep: int) -> list[ModelFile]:
    """The models beyond the newest `keep` (at least 1: the newest model is what a no-change skip and a fine-tune
    start from), except those served or pinned, which are kept on top."""
    ordered = newest_first(models)
    return [m for m in ordered[max(1, keep) :] if not (m.served or m.pinned)]
