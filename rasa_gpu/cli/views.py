"""The live view of a training (train, up, restart, benchmark, watch): one bar per component instead of tqdm noise.

Imported by the commands that train or build, inside their functions: it loads rich.
"""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import progress
from ..events import BuildOutput, Notice, TrainingStarted
from ._common import err, verbatim


class TrainView:
    """Live view of a training: one bar per training component with epoch and metrics, instead of tqdm noise."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.bars = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=err,
            transient=True,
        )
        self.task: Any | None = None
        self.started: dict[str, float] = {}

    def __enter__(self) -> TrainView:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def handle(self, event: Any) -> None:
        if isinstance(event, Notice):
            style = "bold yellow" if event.level == "warn" else "cyan"
            label = "warning: " if event.level == "warn" else ""
            self.bars.console.print(f"[{style}]{label}{escape(event.text)}[/]")
        elif isinstance(event, BuildOutput):
            self.bars.console.print(verbatim(event.text))
        elif isinstance(event, TrainingStarted):
            where = "on the CPU" if event.gpu == "none" else f"with {event.gpu}"
            self.bars.console.print(f"training in {escape(event.image)} {where}")
        elif isinstance(event, progress.ComponentStarted):
            self.started[event.name] = time.monotonic()
            self.bars.console.print(f"  [bold]▶[/] {event.name}")
        elif isinstance(event, progress.ComponentFinished):
            self._drop_bar()
            took = time.monotonic() - self.started.pop(event.name, time.monotonic())
            self.bars.console.print(f"  [green]✓[/] {event.name} [dim]{took:.1f} s[/]")
        elif isinstance(event, progress.ComponentRestored):
            self.bars.console.print(f"  [green]↺[/] {event.name} [dim]restored from cache[/]")
        elif isinstance(event, progress.EpochProgress):
            metrics = " ".join(f"{k}={v:g}" for k, v in event.metrics.items())
            if self.task is None:
                self.task = self.bars.add_task(
                    f"{event.component or 'training'} epochs", total=event.total, metrics=metrics
                )
            self.bars.update(self.task, completed=event.epoch, total=event.total, metrics=metrics)
        elif isinstance(event, progress.LogLine) and self.verbose:
            self.bars.console.print(verbatim(event.text))

    def _drop_bar(self) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None
