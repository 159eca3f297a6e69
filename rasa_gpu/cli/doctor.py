"""`rasa-gpu doctor`: is this machine (and the bot) ready to train? One line per check, with the fix."""

from __future__ import annotations

import sys

import click

from ._common import ImageOptions, gpu_option, gpus_option, image_options, json_option, show_notice


@click.command()
@click.argument("bot", required=False, type=click.Path())
@image_options(builds=False)
@gpu_option
@gpus_option
@json_option
def doctor(bot: str | None, image: ImageOptions, gpu: str | None, gpus: str | None, as_json: bool) -> None:
    """Check that this machine and BOT (default: the current folder, if it is a bot) are ready: the Docker engine,
    compose, the NVIDIA runtime, a GPU smoke test in the training image, the driver against the CUDA the bot's
    TensorFlow needs, disk space, the inotify limit for watch, and the bot itself. Each check says ok, warn, fail
    or skip, with the fix. Exits 1 when a check that stops training fails. The GPU checks ask for the GPUs train
    would use: with --gpu auto their problems are warnings (train falls back to the CPU), with on they are blocking
    failures, and off skips them.

    \b
    Examples:
      rasa-gpu doctor example_bot
      rasa-gpu doctor example_bot --gpu on --json
    """
    import json

    from rich.markup import escape

    from .. import doctor as doctor_mod
    from ..settings import Settings
    from ._common import err, out

    given = image.settings(Settings(gpu=gpu, gpus=gpus))
    context, bot_check = doctor_mod.context_for(bot, given, image.variant)
    checks: list[doctor_mod.Check] = []
    marks = {
        "ok": "[green]ok  [/]",
        "warn": "[yellow]warn[/]",
        "fail": "[bold red]FAIL[/]",
        "skip": "[dim]skip[/]",
    }
    from ..runners import connect

    with connect(context.where, show_notice) as runner:
        for check in doctor_mod.run(context, bot_check, runner):
            checks.append(check)
            if not as_json:
                out.print(f"{marks[check.status]}  [bold]{escape(check.name)}[/]: {escape(check.detail)}")
                if check.fix and check.status in ("warn", "fail"):
                    out.print(f"      [dim]fix:[/] {escape(check.fix)}")
    blocking = doctor_mod.blocking_failures(checks)
    if as_json:
        click.echo(json.dumps({"ready": not blocking, "checks": [c.to_json() for c in checks]}, indent=2))
    if blocking:
        err.print(
            f"[bold red]error:[/] {len(blocking)} blocking problem(s): "
            + escape(", ".join(c.name for c in blocking))
            + "; fix them as shown and run doctor again"
        )
        sys.exit(1)
    if not as_json:
        warnings = sum(c.status in ("warn", "fail") for c in checks)
        out.print(f"ready to train{f' ({warnings} warning(s) above)' if warnings else ''}")
