"""`rasa-gpu train`: train a bot in a container and say what came of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ._common import (
    ImageOptions,
    PassesToRasa,
    bot_argument,
    dry_run_option,
    finetune_option,
    force_option,
    gpu_option,
    gpus_option,
    image_options,
    json_option,
    load,
    set_option,
    show_notice,
    verbose_option,
)

#: `train --dry-run`'s exit code when it would train (0: nothing to train; errors keep their codes).
WOULD_TRAIN = 10

if TYPE_CHECKING:
    from pathlib import Path

    from ..overrides import Override
    from ..project import BotProject
    from ..resolve import Resolved
    from ..runners import Runner
    from ..training import TrainOptions, TrainResult


@click.command("train", cls=PassesToRasa)
@bot_argument
@image_options
@gpu_option
@gpus_option
@set_option
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Write TensorBoard logs (DIETClassifier, TEDPolicy, ResponseSelector) to .rasa-gpu/tensorboard; "
    "view them with `rasa-gpu up --profile tensorboard`.",
)
@force_option
@click.option("--no-wait", is_flag=True, help="Fail instead of waiting when this bot is already training.")
@verbose_option
@finetune_option(default=False)
@click.option(
    "--epoch-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.2,
    show_default=True,
    help="The share of each component's epochs a fine-tune trains.",
)
@click.option(
    "--job", hidden=True, help="The scheduler's job this training runs in (set by a submitted job)."
)
@dry_run_option
@json_option
def train_cmd(
    bot: str,
    rasa_args: Sequence[str],
    image: ImageOptions,
    gpu: str | None,
    gpus: str | None,
    overrides: Sequence[str],
    tensorboard: bool,
    force: bool,
    no_wait: bool,
    verbose: bool,
    finetune: bool,
    epoch_fraction: float,
    job: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Train BOT (default: the current folder) in a container; the model lands in BOT/models/.

    Arguments after -- go to `rasa train` (so do words after BOT and options rasa-gpu does not have).

    \b
    Examples:
      rasa-gpu train example_bot
      rasa-gpu train example_bot --gpu off --set DIETClassifier.epochs=20
      rasa-gpu train . -- --augmentation 0
      rasa-gpu train example_bot --dry-run --json
    """
    from ..settings import Settings
    from ..training import TrainOptions, train
    from ._common import say
    from .views import TrainView

    if as_json and not dry_run:
        from ..errors import SettingsError

        raise SettingsError("--json prints the plan of --dry-run: add --dry-run")
    resolved = load(bot, image, Settings(gpu=gpu, gpus=gpus, set=list(overrides)))
    if job:  # a queued job trains on its node's own engine, whatever host or context the bot's settings name
        resolved.settings.host = resolved.settings.context = None
    project, settings, spec = resolved.project, resolved.settings, resolved.spec
    override_lines = list(settings.set)
    if tensorboard:
        from .. import services

        override_lines += services.tensorboard_overrides(project.config_data())
    options = TrainOptions(
        gpu=settings.gpu_request(),
        overrides=_parse_overrides(override_lines),
        rasa_args=list(rasa_args),
        force=force,
        wait=not no_wait,
        rebuild=image.rebuild,
        license=resolved.license(),
        job=job,
        queued_seconds=_queued_seconds(job),
        finetune=finetune,
        epoch_fraction=epoch_fraction,
    )
    if dry_run:
        return _dry_run(resolved, options, as_json)
    say(
        ("rasa-gpu", {"bold": True}),
        " training ",
        (str(project.root), {"fg": "cyan"}),
        f" with {spec.release.name} ({resolved.why}), TensorFlow {spec.release.tensorflow}",
    )
    with resolved.runner(show_notice) as runner:
        if not runner.capabilities.shares_host_machine:
            say(f"on the Docker engine at {runner.name}")
        with TrainView(verbose) as view:
            result = train(project, spec, options, view.handle, runner=runner)
        removed = _tidy(project, settings.keep_models, runner) if not result.skipped else []
    _print_summary(result)
    if removed:
        say(f"removed {len(removed)} older model(s) (keep_models = {settings.keep_models})")


def _dry_run(resolved: Resolved, options: TrainOptions, as_json: bool) -> None:
    """The training's plan, made without writing or starting anything; exit 0 or WOULD_TRAIN."""
    import json

    from ..errors import GpuUnavailable
    from ..training import make_plan
    from ._common import say

    with resolved.runner(show_notice) as runner:
        plan = make_plan(resolved.project, resolved.spec, options, runner)
    for line in [json.dumps(plan.to_json(), indent=2)] if as_json else plan.lines():
        say(line, err=False)
    if plan.gpu_error:
        raise GpuUnavailable(plan.gpu_error)
    raise SystemExit(WOULD_TRAIN if plan.train else 0)


def _tidy(project: BotProject, keep: int | None, runner: Runner) -> list[Path]:
    """keep_models after a training: the model a running server serves and pinned ones stay."""
    if not keep:
        return []
    from .. import retention, services

    served = services.served_model(runner.engine, project) if runner.capabilities.serves_here else None
    return retention.tidy(project, keep, served)


def _queued_seconds(job: str | None) -> float | None:
    """How long the job this training runs in waited in its queue (None outside a job, or if its scheduler does
    not say)."""
    if not job:
        return None
    from .. import jobs

    return jobs.queue_wait(job)


def _parse_overrides(lines: list[str]) -> list[Override]:
    if not lines:  # the usual case, without loading the override parser
        return []
    from ..overrides import parse_overrides

    return parse_overrides(lines)


def _print_summary(result: TrainResult) -> None:
    from ._common import say

    size_mb = result.size / 1_000_000
    if result.skipped:
        say("Nothing changed since the newest model; not training (use --force to train anyway).", err=False)
        say(f"model: {result.model} ({size_mb:.1f} MB, trained on {result.device})", err=False)
        return
    from rich.markup import escape
    from rich.table import Table

    from ._common import out

    out.print(f"[bold green]Model ready:[/] {escape(str(result.model))} ({size_mb:.1f} MB)")
    if result.finetuned_from is not None:
        out.print(f"fine-tuned from {escape(result.finetuned_from.name)}")
    out.print(
        f"wall time {result.wall_seconds:.1f} s · device {escape(result.device)} · Rasa {result.rasa_version}"
        + (f" · run {result.run_id} (`rasa-gpu runs show {result.run_id}`)" if result.run_id else "")
    )
    if result.components or result.restored:
        table = Table("component", "seconds", box=None, padding=(0, 2))
        for name, seconds in result.components.items():
            table.add_row(name, f"{seconds:.1f}")
        for name in result.restored:
            table.add_row(name, "cached")
        out.print(table)
