"""Which models a bot keeps: the newest `keep_models`, and always the one a running server serves and every model a
history row marks as pinned. Nothing here deletes; `to_remove` says what may go, and the caller removes it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .project import BotProject

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


def scan(project: BotProject, served: str | None = None) -> list[ModelFile]:
    """The bot's models, newest first, with their training run, pin and fine-tune from the run history (raises
    HistoryError when the history cannot be read: without it no model may be removed)."""
    from . import history

    runs: dict[str, history.Run] = {}
    store = history.History.of(project)
    if store.path.exists():
        with store:
            for run in store.runs(history.RunQuery(kind="train", limit=0)):
                if run.model_path and run.model_path not in runs:
                    runs[run.model_path] = run  # newest first: the run that wrote it last
    found = []
    models = project.checked(project.models_dir)  # a models/ linked out of the bot is refused, never tidied
    for path in models.glob("*.tar.gz") if models.is_dir() else []:
        if path.is_symlink():
            continue  # a link rasa-gpu did not make: neither a model of this bot nor to be removed
        stat = path.stat()
        row = runs.get(project.relative(project.models_dir / path.name))
        found.append(
            ModelFile(
                path=path,
                size=stat.st_size,
                modified=stat.st_mtime,
                run_id=row.id if row else None,
                served=path.name == served,
                pinned=bool(row and row.pinned),
                finetuned=bool(row and row.finetuned_from),
            )
        )
    return newest_first(found)


def remove(models: Iterable[ModelFile]) -> list[Path]:
    """Delete these model files; returns the ones removed (one already gone is skipped)."""
    removed = []
    for model in models:
        try:
            model.path.unlink()
        except FileNotFoundError:
            continue
        removed.append(model.path)
    return removed


def tidy(project: BotProject, keep: int, served: str | None) -> list[Path]:
    """Remove the models beyond `keep` (never the served or a pinned one); returns what was removed."""
    return remove(to_remove(scan(project, served), keep))
