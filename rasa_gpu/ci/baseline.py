"""What a `rasa-gpu ci` report is compared with (`--baseline`, or `baseline` under [ci]): a report JSON of an earlier
run (a CI artifact of the main branch), a model file (tested now on this run's test set), a run of the history by its
id, or `pinned` (the newest pinned ci run). Resolved before anything runs, so that a wrong one costs nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SettingsError
from ..history import HistoryError
from ..project import BotProject
from .report import Scores, load_report

#: Each ci run's report JSON, by its run id: what `--baseline RUN` reads.
REPORTS = "ci/reports"


@dataclass(frozen=True)
class Baseline:
    kind: str  # report | model | run
    source: str  # as the report names it
    path: Path | None = None  # the report JSON or the model
    scores: Scores | None = None  # known without testing (report, run)
    training_examples: dict[str, int] = field(default_factory=dict)


def resolve(project: BotProject, given: str, subject: str) -> Baseline:
    """The baseline `given` names, read now (a model is tested later, on this run's test set)."""
    path = Path(given).expanduser()
    if given.endswith(".json"):
        data = load_report(path)
        return _from_report(data, f"report {given}", path)
    if given.endswith((".tar.gz", ".tgz")):
        if not path.is_file():
            raise SettingsError(f"{subject}: the model {given} does not exist")
        return Baseline("model", f"model {path.name} (tested now on the same test set)", path=path.resolve())
    if given == "pinned" or given.isdigit() or given == "last":
        return _from_history(project, given, subject)
    raise SettingsError(
        f"{subject}: '{given}' is not a baseline; give a report .json of `rasa-gpu ci`, a model .tar.gz, a run id "
        "of `rasa-gpu runs list`, or pinned"
    )


def saved_report(project: BotProject, run_id: int) -> Path:
    return project.state_dir / REPORTS / f"run-{run_id}.json"


def _from_report(data: dict[str, Any], source: str, path: Path | None) -> Baseline:
    scores = Scores.from_json(data, source)
    tested_on = data.get("tested_on") if isinstance(data.get("tested_on"), dict) else {}
    counts = tested_on.get("training_examples") if isinstance(tested_on, dict) else None
    training = {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}
    return Baseline("report", source, path=path, scores=scores, training_examples=training)


def _from_history(project: BotProject, ref: str, subject: str) -> Baseline:
    from ..history import History, RunQuery

    if not History.of(project).path.is_file():
        raise SettingsError(
            f"{subject}: {project.root} has no run history yet; run `rasa-gpu ci` once to make one"
        )
    try:
        with History.of(project) as history:
            if ref == "pinned":
                pinned = [r for r in history.runs(RunQuery(kind="ci", limit=None)) if r.pinned]
                if not pinned:
                    raise SettingsError(
                        f"{subject}: no ci run is pinned; pin one with `rasa-gpu runs pin RUN {project.root}`"
                    )
                run = pinned[0]
            else:
                run = history.get(ref)
    except HistoryError as exc:
        raise SettingsError(f"{subject}: {exc.message}") from None
    saved = saved_report(project, run.id or 0)
    if run.kind == "ci" and saved.is_file():
        return _from_report(
            json.loads(saved.read_text(encoding="utf-8")), f"run {run.id} ({run.started_at})", saved
        )
    if not run.metrics:
        raise SettingsError(
            f"{subject}: run {run.id} is a {run.kind} run without test figures; give a ci or test run"
        )
    return Baseline(
        "run",
        f"run {run.id} ({run.kind}, {run.started_at}; figures only, its test set may differ)",
        scores=Scores(dict(run.metrics)),
    )
