"""`rasa-gpu ci`: validate, train, test on a held-fixed test set, compare with a baseline, write the report and fail
on a rule; `--init github|gitlab` writes the CI job that runs it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import (
    ImageOptions,
    bot_argument,
    force_option,
    gpu_option,
    gpus_option,
    image_options,
    load,
    set_option,
    show_notice,
    verbose_option,
)

if TYPE_CHECKING:
    from ..ci.run import CiOutcome
    from ..resolve import Resolved


@click.command("ci")
@bot_argument
@image_options
@gpu_option
@gpus_option
@set_option
@force_option
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="RULE",
    help='Fail when a figure\'s change from the baseline meets RULE, e.g. "intent_f1 < -0.02" or '
    '"story_accuracy < 0". Repeatable (default: [ci] fail_on in rasa-gpu.toml).',
)
@click.option(
    "--baseline",
    metavar="REPORT.json|MODEL|RUN",
    help="Compare with a report .json of an earlier ci run, a model .tar.gz (tested now on the same test set), "
    "a run id of the history, or pinned (default: [ci] baseline; none: no deltas).",
)
@click.option(
    "--report",
    metavar="PATH.md",
    type=click.Path(dir_okay=False),
    help="Write the Markdown report there and PATH.json beside it (default: BOT/results/ci-report.md).",
)
@click.option(
    "--init",
    "init",
    type=click.Choice(["github", "gitlab"]),
    help="Write a CI job that runs `rasa-gpu ci` (GitHub Actions workflow or .gitlab-ci.yml) and exit.",
)
@click.option(
    "--runner-label",
    "runner_labels",
    multiple=True,
    metavar="LABEL",
    help="With --init: the GPU runner's labels (GitHub) or tags (GitLab). Repeatable (default: self-hosted, "
    "linux, gpu).",
)
@verbose_option
def ci_cmd(
    bot: str,
    image: ImageOptions,
    gpu: str | None,
    gpus: str | None,
    overrides: Sequence[str],
    force: bool,
    fail_on: Sequence[str],
    baseline: str | None,
    report: str | None,
    init: str | None,
    runner_labels: Sequence[str],
    verbose: bool,
) -> None:
    """Validate BOT, train it (or find the model for these inputs), test it on a fixed test set, compare with a
    baseline and write a report (Markdown for a pull-request comment, JSON for the next baseline). Exits 1 when a
    --fail-on rule fails, with the rule in one line. What is tested: the bot's NLU test files and test stories in
    tests/, else a held-out fifth of its NLU examples that the model is trained without.

    \b
    Examples:
      rasa-gpu ci example_bot
      rasa-gpu ci example_bot --baseline main-report.json --fail-on "intent_f1 < -0.02"
      rasa-gpu ci example_bot --init github
    """
    from ..settings import Settings

    if init:
        return _init(bot, init, runner_labels)
    resolved = load(
        bot,
        image,
        Settings(gpu=gpu, gpus=gpus, set=list(overrides), ci_fail_on=list(fail_on), ci_baseline=baseline),
    )
    outcome = _run(resolved, image, force, report, verbose)
    _summary(outcome)


def _run(
    resolved: Resolved, image: ImageOptions, force: bool, report: str | None, verbose: bool
) -> CiOutcome:
    from ..ci.rules import parse_rule
    from ..ci.run import CiRequest, run_ci, seed_overrides
    from ..overrides import parse_overrides
    from ..rasa_commands import RasaOptions
    from ..runners import Where, connect
    from ..training import TrainOptions
    from ._common import say
    from .rasa import prepare_image, rasa_output
    from .views import TrainView

    project, settings, spec = resolved.project, resolved.settings, resolved.spec
    rules = [parse_rule(text, settings.subject("ci_fail_on")) for text in settings.ci_fail_on]
    given = parse_overrides(list(settings.set))
    request = CiRequest(
        train=TrainOptions(
            gpu=settings.gpu_request(),
            overrides=seed_overrides(project.config_data(), given) + given,
            force=force,
            rebuild=image.rebuild,
            license=resolved.license(),
        ),
        rules=rules,
        baseline=settings.ci_baseline,
        baseline_subject=settings.subject("ci_baseline"),
        report=Path(report) if report else None,
    )
    say(
        ("rasa-gpu ci", {"bold": True}),
        " ",
        (str(project.root), {"fg": "cyan"}),
        f" with {spec.release.name} ({resolved.why})",
    )

    with ExitStack() as stack:
        runner = stack.enter_context(resolved.runner(show_notice))
        tests = runner
        if not runner.capabilities.mounts_bot_folder:  # trains there; validates and tests here
            say(f"training on the Docker engine at {runner.name}; validating and testing on this machine's")
            tests = stack.enter_context(connect(Where(), show_notice))
        view = stack.enter_context(TrainView(verbose))

        def prepare() -> tuple[str, RasaOptions]:  # the image on the tests' engine, where Rasa's commands run
            return prepare_image(resolved, tests, request.train.gpu, False, verbose)

        return run_ci(
            project,
            spec,
            request,
            runner,
            prepare,
            show_notice,
            view.handle,
            tests_runner=tests,
            on_output=rasa_output(verbose),
        )


def _summary(outcome: CiOutcome) -> None:
    from rich.table import Table

    from .. import evaluation
    from ..ci.rules import failing_line
    from ..errors import RasaGpuError
    from ._common import err, out

    report = outcome.report
    deltas = report.deltas()
    table = Table("figure", "value", "change", box=None, padding=(0, 2))
    for name, value in report.scores.figures.items():
        change = f"{deltas[name]:+.3f}" if name in deltas else "–"
        table.add_row(evaluation.label(name), f"{value:.3f}", change)
    out.print(table)
    for mover in report.movers()[:3]:
        if mover.delta is not None:
            out.print(
                f"moved: {mover.name} ({mover.kind}) F1 {mover.before:.3f} → {mover.after:.3f}", markup=False
            )
    err.print(f"tested on {report.tested_on.get('described')}", markup=False)
    if report.baseline is None:
        err.print("no baseline: no deltas (--baseline or [ci] baseline)", markup=False)
    err.print(
        f"report: {outcome.markdown} and {outcome.json}"
        + (f" · run {outcome.run_id} (`rasa-gpu runs show {outcome.run_id}`)" if outcome.run_id else ""),
        markup=False,
    )
    failed = failing_line(report.rules)
    if failed:
        raise RasaGpuError(failed)


def _init(bot: str, kind: str, labels: Sequence[str]) -> None:
    """Write the CI job into the repository that holds BOT (the git root above it, else BOT's folder)."""
    from ..ci import templates
    from ..errors import SettingsError
    from ._common import say

    folder = Path(bot).resolve()
    if not (folder / "config.yml").is_file():
        raise SettingsError(
            f"'{bot}' is not a bot folder (no config.yml); give the folder of the bot to test"
        )
    repo = next((p for p in (folder, *folder.parents) if (p / ".git").exists()), folder)
    options = templates.TemplateOptions(
        bot=folder.relative_to(repo).as_posix() or ".",
        runner_labels=tuple(labels) or templates.TemplateOptions.runner_labels,
    )
    target = repo / templates.PATHS[kind]
    if target.exists() or target.is_symlink():
        raise SettingsError(
            f"{target} exists; move it aside to write a new one (rasa-gpu never overwrites it)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    from .. import safefs

    safefs.write_file(repo, target, templates.render(kind, options).encode("utf-8"))
    say(
        f"wrote {target}: it runs `rasa-gpu ci {options.bot}` on a runner labelled {', '.join(options.runner_labels)}"
    )
