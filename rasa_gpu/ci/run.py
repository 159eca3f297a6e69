"""The steps of `rasa-gpu ci`, in order: the baseline is read, the data validated (`rasa data validate`), the test set
fixed (testset), the model for these inputs trained or found (the training path of `rasa-gpu train`), tested, the
baseline model tested on the same set when one was given, and the report written. Events go to callbacks; nothing
here prints."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from .. import history, locks, rasa_commands, retention, safefs, validation
from ..errors import ProjectError
from ..events import EventSink, Notice
from ..gpu import CPU
from ..images import ImageSpec
from ..overrides import Override, component_entries, matches, parse_overrides
from ..project import BotProject
from ..rasa_commands import RasaOptions, RasaTestOptions
from ..runners import Runner
from ..training import TrainOptions, TrainResult, train
from . import baseline as baselines
from . import testset
from .report import Report, Scores, read_scores
from .rules import Rule

#: The components whose training draws random numbers; ci seeds each one the config leaves unseeded, so that what
#: moves between two reports is the bot's change, not the draw.
SEEDED = ("DIETClassifier", "TEDPolicy", "ResponseSelector", "UnexpecTEDIntentPolicy")
SEED = 2026
#: How many models the training copy keeps (an earlier one may be a --baseline).
COPY_MODELS = 3
#: Where the reports of `rasa test` go (this run's, and the baseline model's), inside the bot's state folder.
RESULTS = "ci/results"
BASELINE_RESULTS = "ci/baseline-results"
BASELINE_MODEL = "ci/baseline-model"
#: Why ci refuses an engine elsewhere (for now: its tests mount the bot folder, as `rasa-gpu test` does).
LOCAL_ONLY = (
    "rasa-gpu ci validates and tests on this machine's Docker engine (the bot folder is mounted), and DOCKER_HOST "
    "or the Docker context names another; unset it (--host still trains elsewhere)"
)
#: The report's default place, in the bot.
DEFAULT_REPORT = "results/ci-report.md"


@dataclass(frozen=True)
class CiRequest:
    train: TrainOptions
    rules: list[Rule]
    baseline: str | None = None
    baseline_subject: str = "--baseline"
    report: Path | None = None  # the Markdown; the JSON beside it (default DEFAULT_REPORT)


@dataclass(frozen=True)
class CiOutcome:
    report: Report
    markdown: Path
    json: Path
    run_id: int | None


def run_ci(
    project: BotProject,
    spec: ImageSpec,
    request: CiRequest,
    runner: Runner,
    prepare: Callable[[], tuple[str, RasaOptions]],
    on_event: EventSink,
    on_train_event: EventSink,
    tests_runner: Runner | None = None,
    on_output: Callable[[bytes], None] = lambda chunk: None,
) -> CiOutcome:
    """Validate, train (or find the model), test, compare and write the report. The training runs on `runner` (an
    engine over SSH too: the model comes back into the bot), validation and tests on `tests_runner` (default the same),
    which must mount the bot folder. `prepare` gives the image's tag on the tests' engine (built once, as for a
    training) and the options of Rasa's containers. `on_output` gets the raw output of validation and tests (-v)."""
    tests_runner = tests_runner or runner
    tests_runner.engine_for(LOCAL_ONLY, mounts_bot_folder=True)
    base = (
        baselines.resolve(project, request.baseline, request.baseline_subject) if request.baseline else None
    )
    markdown = (request.report or project.root / DEFAULT_REPORT).absolute()
    if markdown.suffix != ".md":
        raise ProjectError(f"--report {markdown} must end in .md (the JSON is written beside it)")
    record = history.Run(
        kind="ci",
        rasa_version=spec.release.version,
        tensorflow=spec.release.tensorflow,
        image=spec.tag(),
        host=runner.machine(),
    )
    warn: Callable[[str], None] = lambda text: on_event(Notice(f"warning: {text}", "warn"))  # noqa: E731
    with history.recording(project, record, warn):
        tag, options = prepare()
        warnings = _validate(project, tag, replace(options, gpu=CPU), tests_runner, on_event, on_output)
        tests, trained_from = testset.prepare(project)
        on_event(Notice(f"testing on {tests.describe()}"))
        result = train(trained_from, spec, request.train, on_train_event, runner=runner)
        # the training copy keeps this model and the two before it (the bot's own models/ follow keep_models)
        if trained_from != project and not result.skipped:
            retention.tidy(trained_from, COPY_MODELS, None)
        record.device, record.wall_seconds = result.device, result.wall_seconds
        record.bot_fingerprint = project.inputs_digest()
        test = partial(_test, project, tag, options, tests_runner, on_event, on_output, tests)
        scores = test(result.model, RESULTS, record)
        if base is not None and base.kind == "model":
            assert base.path is not None
            model = _inside(project, base.path)
            base = replace(
                base,
                scores=test(model, BASELINE_RESULTS, None),
            )
        report = _report(project, spec, tests, result, scores, base, runner, request.train)
        deltas = report.deltas()
        report = replace(
            report,
            rules=[rule.check(deltas, base is not None) for rule in request.rules],
            validation_warnings=warnings,
        )
        record.metrics = scores.figures
        json_path = markdown.with_name(markdown.name[: -len(".md")] + ".json")
        text = _json_text(report)
        _write(project, markdown, report.markdown())
        _write(project, json_path, text)
    if record.id:
        project.write_owned(baselines.saved_report(project, record.id), text)
    return CiOutcome(report, markdown, json_path, record.id)


def seed_overrides(config: dict[str, Any], given: list[Override]) -> list[Override]:
    """`NAME.random_seed=SEED` for each component of SEEDED that is in the config and that no entry seeds and no
    given override (`--set`, `[ci]`'s settings) reaches: a seed the user chose, for any entry, is left as it is. Put
    them before the given ones."""

    def seeded(entry: dict[str, Any]) -> bool:
        return "random_seed" in entry or any(
            o.key == "random_seed" and matches(entry.get("name"), o.component) for o in given
        )

    entries = component_entries(config)
    unseeded = []
    for name in SEEDED:
        hits = [e for e in entries if matches(e.get("name"), name)]
        if hits and not any(seeded(e) for e in hits):
            unseeded.append(f"{name}.random_seed={SEED}")
    return parse_overrides(unseeded)


def _validate(
    project: BotProject,
    tag: str,
    options: RasaOptions,
    runner: Runner,
    on_event: EventSink,
    on_output: Callable[[bytes], None],
) -> int:
    """rasa data validate; an error stops the run in one line (the first finding). Returns how many warnings."""
    output: list[bytes] = []

    def kept(chunk: bytes) -> None:
        output.append(chunk)
        on_output(chunk)

    code = rasa_commands.run(project, tag, validation.validate_args(project), options, runner, on_event, kept)
    found = validation.problems(b"".join(output).decode("utf-8", errors="replace"), project)
    errors = [p for p in found if p.severity == "error"]
    if code != 0 or errors:
        first = errors[0].line_text() if errors else f"exit code {code}"
        raise ProjectError(
            f"rasa data validate found {len(errors) or 'an'} error(s), the first: {first}; "
            f"`rasa-gpu validate {project.root}` lists them"
        )
    return len(found)


def _test(
    project: BotProject,
    tag: str,
    options: RasaOptions,
    runner: Runner,
    on_event: EventSink,
    on_output: Callable[[bytes], None],
    tests: testset.TestSet,
    model: Path,
    results: str,
    record: history.Run | None,
) -> Scores:
    """rasa test of `model` on the test set, into .rasa-gpu/<results> (emptied first): the scores it measured."""
    folder = project.state_dir / results
    safefs.remove(project.root, folder)
    kind = "all" if tests.nlu_file and tests.stories else ("nlu" if tests.nlu_file else "core")
    if tests.nlu_file is None and tests.stories is None:
        raise ProjectError(
            f"{project.root} has no NLU examples and no test stories under tests/: nothing to test"
        )
    test_options = RasaTestOptions(
        kind=kind, model=model, nlu=tests.nlu_file, stories=tests.stories, results=project.relative(folder)
    )
    rasa_commands.run_tests(
        project,
        tag,
        test_options,
        options,
        runner,
        on_event,
        on_output,
        record or history.Run(kind="ci"),
    )
    return read_scores(folder)


def _inside(project: BotProject, model: Path) -> Path:
    """The baseline model where the test container sees it: itself when it is in the bot, else a copy in
    .rasa-gpu/ci/baseline-model/."""
    if project.root in model.parents:
        return model
    target = project.state_dir / BASELINE_MODEL / model.name
    safefs.remove(project.root, target.parent)
    owner = project.owner if os.geteuid() == 0 else None
    with model.open("rb") as source:  # a path the user gave, outside the bot
        safefs.write_file(project.root, target, source, owner=owner)
    return target


def _report(
    project: BotProject,
    spec: ImageSpec,
    tests: testset.TestSet,
    result: TrainResult,
    scores: Scores,
    base: baselines.Baseline | None,
    runner: Runner,
    options: TrainOptions,
) -> Report:
    return Report(
        bot=project.root.name,
        scores=scores,
        tested_on=tests.to_json(),
        run={
            "trained": not result.skipped,
            "training_seconds": round(result.wall_seconds, 1) if not result.skipped else None,
            "device": result.device,
            "host": result.host or runner.machine(),
            "image": result.image,
            "lock": lock_of(spec),
            "rasa_version": spec.release.version,
            "rasa_package": spec.release.package,
            "tensorflow": spec.release.tensorflow,
            "model": project.relative(result.model),
            "model_sha256": history.file_sha256(result.model),
            "overrides": [o.text for o in options.overrides],
        },
        baseline=base.scores if base is not None else None,
        baseline_source=base.source if base is not None else None,
        baseline_training=base.training_examples if base is not None else {},
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def lock_of(spec: ImageSpec) -> str | None:
    """The locked set the image installs Rasa from: its file names and their combined sha256 (None: no lock)."""
    found = locks.release_locks(spec.release)
    if not found:
        return None
    digest = hashlib.sha256(b"".join(found[python] for python in sorted(found))).hexdigest()
    pythons = ", ".join(f"py{p}" for p in found)
    return f"{spec.release.package} {spec.release.version} ({pythons}) sha256:{digest[:12]}"


def _json_text(report: Report) -> str:
    import json

    return json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n"


def _write(project: BotProject, path: Path, text: str) -> None:
    """A report file: inside the bot as its owner (no link followed), elsewhere where the CI job asked."""
    if path == project.root or project.root in path.parents:
        project.write_owned(path, text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    safefs.write_file(path.parent, path, text.encode("utf-8"))
