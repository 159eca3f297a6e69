"""`rasa-gpu rasa`, `shell`, `validate` and `test`: Rasa's own commands in the bot's image, nothing on the host."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import (
    ImageOptions,
    PassesToRasa,
    bot_argument,
    gpu_option,
    image_options,
    load,
    show_notice,
    verbose_option,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..gpu import GpuRequest
    from ..rasa_commands import RasaOptions
    from ..resolve import Resolved
    from ..runners import Runner


def prepare_image(
    resolved: Resolved, runner: Runner, gpu: GpuRequest, terminal: bool, verbose: bool = False
) -> tuple[str, RasaOptions]:
    """The bot's image on the runner's engine (built once, as for a training; -v: its raw output) and the options of
    Rasa's container there (`rasa`, `shell`, `validate`, `test` and `ci`'s tests)."""
    from .. import build_log, license_key
    from .. import gpu as gpu_rules
    from ..images import ensure_image
    from ..rasa_commands import LOCAL_ONLY, RasaOptions
    from ._common import err
    from .views import BuildView

    runner.engine_for(LOCAL_ONLY, mounts_bot_folder=True)  # before an image is built or a GPU asked for there
    logs = build_log.of_bot(resolved.project)
    with BuildView(verbose) as view, build_log.recording(logs, view.handle) as on_line:
        image = ensure_image(runner.engine, resolved.spec, on_line)
    request, warning = gpu_rules.for_image(gpu, image.tag, image.gpu_ready, image.cuda_note, "run rasa")
    if warning:
        err.print(f"warning: {warning}", markup=False)
    return image.tag, RasaOptions(
        gpu=request, terminal=terminal, secrets=license_key.environment(resolved.license())
    )


def _notice(event: object) -> None:
    from ..events import Notice
    from ._common import err

    if isinstance(event, Notice):
        err.print(f"{'warning: ' if event.level == 'warn' else ''}{event.text}", markup=False)


def _write(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


@click.command("rasa", cls=PassesToRasa, bot_or_word=True)
@bot_argument
@image_options
@gpu_option
@click.option("--tty/--no-tty", default=None, help="A terminal for Rasa (default: when rasa-gpu has one).")
def rasa_cmd(
    bot: str, rasa_args: tuple[str, ...], image: ImageOptions, gpu: str | None, tty: bool | None
) -> None:
    """Run any Rasa command in BOT's image: the bot mounted at /bot, as its owner, with a terminal when this one is,
    and the action server of `rasa-gpu up` reachable when it runs. Rasa's exit code is rasa-gpu's. rasa-gpu's
    options go before or after BOT; Rasa's command follows -- (words after BOT, and options rasa-gpu does not have,
    are Rasa's too).

    \b
    Examples:
      rasa-gpu rasa example_bot -- data validate
      rasa-gpu rasa example_bot --gpu off -- data split nlu
      rasa-gpu rasa -- interactive
    """
    if not rasa_args:
        raise click.UsageError(
            "give the Rasa command after --, e.g. rasa-gpu rasa example_bot -- data validate"
        )
    _run(bot, list(rasa_args), image, gpu, tty)


def _run(bot: str, args: list[str], image: ImageOptions, gpu: str | None, tty: bool | None) -> None:
    from .. import rasa_commands
    from ..settings import Settings
    from . import terminal

    terminal_wanted = terminal.available() if tty is None else tty
    resolved = load(bot, image, Settings(gpu=gpu))
    request = resolved.settings.gpu_request()
    with resolved.runner(show_notice) as runner:
        tag, options = prepare_image(resolved, runner, request, terminal_wanted)
        code = rasa_commands.run(
            resolved.project, tag, args, options, runner, _notice, _write, pump=terminal.pump
        )
    if code != 0:
        raise SystemExit(code)


@click.command("shell", cls=PassesToRasa)
@bot_argument
@image_options
@gpu_option
def shell_cmd(bot: str, rasa_args: tuple[str, ...], image: ImageOptions, gpu: str | None) -> None:
    """Talk to BOT's newest model in the terminal (`rasa shell`), with the action server of `rasa-gpu up` when it
    runs. Ctrl+D or /stop ends it. Arguments after -- go to `rasa shell`.

    \b
    Example:
      rasa-gpu shell example_bot
    """
    from ..project import BotProject

    project = BotProject.load(bot)
    if project.newest_model() is None:
        from ..errors import SettingsError

        raise SettingsError(f"no model in {project.models_dir}; `rasa-gpu train {bot}` makes one")
    _run(bot, ["shell", *rasa_args], image, gpu, None)


@click.command("validate")
@bot_argument
@image_options
@verbose_option
def validate_cmd(bot: str, image: ImageOptions, verbose: bool) -> None:
    """Check BOT's data with `rasa data validate`: each finding as `warning|error: FILE:LINE:COL: message` (the
    VS Code task "Validate data" shows them in the Problems panel). Exits 1 when Rasa finds an error.

    \b
    Example:
      rasa-gpu validate example_bot
    """
    from .. import rasa_commands, validation
    from ..gpu import CPU
    from ._common import err, out, verbatim

    resolved = load(bot, image)
    project = resolved.project
    args = validation.validate_args(project)
    output: list[bytes] = []
    with resolved.runner(show_notice) as runner:
        tag, options = prepare_image(resolved, runner, CPU, False, verbose)
        code = rasa_commands.run(project, tag, args, options, runner, _notice, output.append)
    text = b"".join(output).decode("utf-8", errors="replace")
    if verbose:
        for line in text.splitlines():
            err.print(verbatim(line))
    found = validation.problems(text, project)
    for problem in found:
        out.print(problem.line_text(), markup=False)
    errors = sum(p.severity == "error" for p in found)
    err.print(
        f"rasa data validate: {errors} error(s), {len(found) - errors} warning(s)"
        + ("" if code == 0 else f" (exit code {code})"),
        markup=False,
    )
    if code != 0 or errors:
        raise SystemExit(1)


@click.command("test", cls=PassesToRasa)
@bot_argument
@click.argument("kind", required=False, metavar="[KIND]")
@image_options
@gpu_option
@click.option(
    "--model", "model", type=click.Path(dir_okay=False), help="The model to test (default: the newest)."
)
@click.option("--cross-validation", is_flag=True, help="NLU: train and test on --folds splits of the data.")
@click.option(
    "--folds", type=click.IntRange(2), default=None, help="Folds for --cross-validation (default 5)."
)
@verbose_option
def test_cmd(
    bot: str,
    kind: str | None,
    rasa_args: tuple[str, ...],
    image: ImageOptions,
    gpu: str | None,
    model: str | None,
    cross_validation: bool,
    folds: int | None,
    verbose: bool,
) -> None:
    """Test BOT's newest model (`rasa test`; KIND: nlu, core, e2e, default all): reports and confusion matrices in
    BOT/results/, the figures in the terminal and in the run history (`rasa-gpu runs compare A B`).

    \b
    Examples:
      rasa-gpu test example_bot
      rasa-gpu test example_bot nlu --cross-validation --folds 3
      rasa-gpu test example_bot core -- --fail-on-prediction-errors
    """
    from rich.table import Table

    from .. import evaluation, history, rasa_commands
    from ..errors import SettingsError
    from ..settings import Settings
    from ._common import err, out

    if kind is None and bot in TEST_KINDS and not Path(bot, "config.yml").is_file():
        bot, kind = ".", bot
    if kind is not None and kind not in TEST_KINDS:
        raise click.BadParameter(f"'{kind}' is not one of {', '.join(TEST_KINDS)}", param_hint="KIND")
    if folds is not None and not cross_validation:
        raise SettingsError("--folds goes with --cross-validation")
    resolved = load(bot, image, Settings(gpu=gpu))
    project, spec = resolved.project, resolved.spec
    options = rasa_commands.RasaTestOptions(
        kind=kind or "all",
        model=Path(model).resolve() if model else None,
        folds=(folds or 5) if cross_validation else None,
        extra=list(rasa_args),
    )
    record = history.Run(
        kind="test",
        rasa_version=spec.release.version,
        tensorflow=spec.release.tensorflow,
        image=spec.tag(),
        phase=options.kind + (f" cross-validation {options.folds} folds" if options.folds else ""),
    )
    with resolved.runner(show_notice) as runner:
        runner.engine_for(
            rasa_commands.LOCAL_ONLY, mounts_bot_folder=True
        )  # refused before a history row is opened
        record.host = runner.machine()
        with history.recording(project, record, lambda text: err.print(f"warning: {text}", markup=False)):
            tag, rasa_options = prepare_image(
                resolved, runner, resolved.settings.gpu_request(), False, verbose
            )
            err.print(
                f"rasa test {options.kind} of {project.name} in {tag} (-v shows Rasa's output)", markup=False
            )
            result = rasa_commands.run_tests(
                project, tag, options, rasa_options, runner, _notice, rasa_output(verbose), record
            )
    table = Table("figure", "value", box=None, padding=(0, 2))
    for name, value in result.figures.items():
        table.add_row(evaluation.label(name), f"{value:.3f}")
    out.print(table)
    where = f"reports in {result.results}"
    err.print(where + (f" · run {record.id} (`rasa-gpu runs show {record.id}`)" if record.id else ""))


#: What `rasa-gpu test` tests (KIND).
TEST_KINDS = ("nlu", "core", "e2e", "all")


def rasa_output(verbose: bool) -> Callable[[bytes], None]:
    """Where the raw output of Rasa's commands goes: to stderr as it comes with -v, else nowhere (it is kept for the
    cause of a failure)."""
    return _progress if verbose else _quiet


def _quiet(chunk: bytes) -> None:
    """Rasa's output is kept for the cause of a failure, not shown."""


def _progress(chunk: bytes) -> None:
    sys.stderr.buffer.write(chunk)
    sys.stderr.buffer.flush()
