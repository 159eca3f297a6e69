"""`rasa-gpu watch`: retrain on every change and show each cycle as one line."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    Deferred,
    ImageOptions,
    bot_argument,
    finetune_option,
    gpu_option,
    gpus_option,
    image_options,
    load,
    set_option,
    show_notice,
    verbatim,
    verbose_option,
)

if TYPE_CHECKING:
    from .views import TrainView


@click.command()
@bot_argument
@image_options
@gpu_option
@gpus_option
@set_option
@click.option(
    "--quiet-period",
    default=Deferred("rasa_gpu.watch", "QUIET_SECONDS"),
    type=float,
    show_default=True,
    help="Seconds without further changes before a batch of changes is acted on.",
)
@finetune_option(default=True)
@click.option(
    "--warm/--no-warm",
    default=True,
    show_default=True,
    help="Keep TensorFlow and Rasa loaded in one training container between retrainings (it holds their memory "
    "while watch runs).",
)
@verbose_option
def watch(
    bot: str,
    image: ImageOptions,
    gpu: str | None,
    gpus: str | None,
    overrides: Sequence[str],
    quiet_period: float,
    finetune: bool,
    warm: bool,
    verbose: bool,
) -> None:
    """Retrain BOT when its data, domain or config change, and load each new model into the running Rasa server
    (`rasa-gpu up`) without restarting it; restart the action server when actions/ changes. Ctrl+C stops.

    \b
    Examples:
      rasa-gpu watch example_bot
      rasa-gpu watch example_bot --set DIETClassifier.epochs=20
    """
    from rich.markup import escape

    from .. import retention
    from .. import watch as watch_mod
    from ..errors import Interrupted
    from ..overrides import parse_overrides
    from ..settings import Settings
    from ..training import TrainOptions
    from ._common import err

    resolved = load(bot, image, Settings(gpu=gpu, gpus=gpus, set=list(overrides)))
    project, settings, spec, why = resolved.project, resolved.settings, resolved.spec, resolved.why
    options = watch_mod.WatchOptions(
        train=TrainOptions(
            gpu=settings.gpu_request(),
            overrides=parse_overrides(list(settings.set)),
            rebuild=image.rebuild,
            license=resolved.license(),
            finetune=finetune,
        ),
        quiet=quiet_period,
        keep_models=settings.keep_models or retention.WATCH_DEFAULT,
        warm=warm,
    )
    err.print(
        f"rasa-gpu watch: {escape(str(project.root))} with Rasa {spec.release.version} ({why}); data, domain, "
        "config → retrain; actions/ → restart the action server. Ctrl+C stops.",
        markup=False,
    )
    view = WatchView(verbose)
    try:
        with resolved.runner(show_notice) as runner:
            watch_mod.watch(project, spec, options, view.handle, runner=runner)
    except KeyboardInterrupt as exc:
        view.close()
        what = exc.message if isinstance(exc, Interrupted) else "no training was running"
        err.print(f"interrupted: rasa-gpu watch stopped; {what}", markup=False)
        sys.exit(Interrupted.exit_code)


class WatchView:
    """What watch shows: one line per cycle (the VS Code task's begin/end patterns match them), trainings as in
    train, and errors in the `error: file:line:col: message` form of the problem matcher."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.training: TrainView | None = None

    def close(self) -> None:
        if self.training is not None:
            self.training.__exit__()
            self.training = None

    def handle(self, event: Any) -> None:
        from rich.text import Text

        from .. import events
        from ._common import err
        from .views import TrainView

        if isinstance(event, events.Watching):
            self.close()
            err.print("rasa-gpu watch: watching for changes", markup=False)
        elif isinstance(event, events.Changed):
            what = " and ".join(
                part
                for part, on in (("retraining", event.train), ("restarting the action server", event.actions))
                if on
            )
            shown = ", ".join(event.paths[:3]) + (
                f" (+{len(event.paths) - 3} more)" if len(event.paths) > 3 else ""
            )
            err.print(f"rasa-gpu watch: change in {shown}: {what}", markup=False)
        elif isinstance(event, events.Invalid):
            err.print(f"error: {event.error.message}", markup=False)
            err.print(
                "rasa-gpu watch: not training until this is fixed; the previous model keeps serving",
                markup=False,
            )
        elif isinstance(event, events.TrainFailed):
            self.close()
            err.print(f"error: {event.error.message}", markup=False)
            for line in event.error.details[-10:]:
                err.print(Text("  │ ") + verbatim(line, style=""))
            err.print("rasa-gpu watch: training failed; the previous model keeps serving", markup=False)
        elif isinstance(event, events.Trained):
            self.close()
            result = event.result
            if result.skipped:
                err.print(f"rasa-gpu watch: model is up to date ({result.model.name})", markup=False)
            else:
                err.print(
                    f"rasa-gpu watch: model ready {result.model.name} ({result.wall_seconds:.1f} s)",
                    markup=False,
                )
            if event.loaded_into:
                err.print(
                    f"rasa-gpu watch: the Rasa server at {event.loaded_into} serves {result.model.name}",
                    markup=False,
                )
        elif isinstance(event, events.ActionsRestarted):
            err.print("rasa-gpu watch: action server restarted", markup=False)
        else:
            if self.training is None:
                self.training = TrainView(self.verbose).__enter__()
            self.training.handle(event)
