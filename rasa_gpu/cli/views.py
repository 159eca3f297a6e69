"""The live view of a training (train, up, restart, benchmark, watch): one bar per component instead of tqdm noise.

Imported by the commands that train or build, inside their functions: it loads rich.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..events import BuildOutput, Notice, TrainingStarted
from . import _common

if TYPE_CHECKING:
    from rich.progress import Progress


class TrainView:
    """Live view of a training: one bar per training component with epoch and metrics, instead of tqdm noise. The
    bars (and their refresh thread) start with the first epoch: a no-change skip never draws any."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.bars: Progress | None = None
        self.task: Any | None = None
        self.started: dict[str, float] = {}

    def __enter__(self) -> TrainView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def handle(self, event: Any) -> None:
        # rich and the progress parser load with the first event: a no-change skip has none
        from rich.markup import escape

        from .. import progress

        err, verbatim = _common.err, _common.verbatim
        if isinstance(event, Notice):
            style = "bold yellow" if event.level == "warn" else "cyan"
            label = "warning: " if event.level == "warn" else ""
            err.print(f"[{style}]{label}{escape(event.text)}[/]")
        elif isinstance(event, BuildOutput):
            err.print(verbatim(event.text))
        elif isinstance(event, TrainingStarted):
            where = "on the CPU" if event.gpu == "none" else f"with {event.gpu}"
            err.print(f"training in {escape(event.image)} {where}")
        elif isinstance(event, progress.ComponentStarted):
            self.started[event.name] = time.monotonic()
            err.print(f"  [bold]▶[/] {event.name}")
        elif isinstance(event, progress.ComponentFinished):
            self._drop_bar()
            took = time.monotonic() - self.started.pop(event.name, time.monotonic())
            err.print(f"  [green]✓[/] {event.name} [dim]{took:.1f} s[/]")
        elif isinstance(event, progress.ComponentRestored):
            err.print(f"  [green]↺[/] {event.name} [dim]restored from cache[/]")
        elif isinstance(event, progress.EpochProgress):
            metrics = " ".join(f"{k}={v:g}" for k, v in event.metrics.items())
            bars = self._bars()
            if self.task is None:
                self.task = bars.add_task(
                    f"{event.component or 'training'} epochs", total=event.total, metrics=metrics
                )
            bars.update(self.task, completed=event.epoch, total=event.total, metrics=metrics)
        elif isinstance(event, progress.LogLine) and self.verbose:
            err.print(verbatim(event.text))

    def _bars(self) -> Progress:
        if self.bars is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bars = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=_common.err,
                transient=True,
            )
            self.bars.start()
        return self.bars

    def _drop_bar(self) -> None:
        if self.task is not None and self.bars is not None:
            self.bars.remove_task(self.task)
            self.task = None
