"""The live views of a build (build, base-image, push, rasa, test, validate) and of a training (train, up, restart,
benchmark, watch): stages of a build and one bar per training component, instead of the raw output (-v shows it).

Imported by the commands that train or build, inside their functions: it loads rich.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..events import Notice, TrainingStarted
from . import _common

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: What BuildView draws.
BUILD_EVENTS = (
    ev.BuildOutput,
    ev.BuildLogOpened,
    ev.BuildStarted,
    ev.BuildStage,
    ev.BuildProgress,
    ev.BuildStageDone,
    ev.BuildNote,
    ev.BuildFinished,
)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class BuildView:
    """An image build as a person follows it. Without -v: a line per image, a line per stage as it ends (with what
    pip, uv or debootstrap installed and how long it took) and the sentences rasa-gpu says; on a terminal a live
    status line under them (the stage, what is downloading, the time so far) that goes when the build ends, and
    elsewhere (CI logs, pipes) a line as each stage starts instead. With -v: the raw output, as it comes."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.status: Progress | None = None
        self.task: TaskID | None = None
        self.image = self.stage = ""

    def __enter__(self) -> BuildView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def handle(self, event: Any) -> None:
        from rich.markup import escape

        err = _common.err
        if isinstance(event, ev.BuildOutput):
            if self.verbose:
                err.print(_common.verbatim(event.text))
        elif isinstance(event, ev.BuildLogOpened):
            where = escape(_shown(event.path))
            err.print(
                f"[dim]the build's whole output goes to {where}{'' if self.verbose else ' (-v shows it)'}[/]"
            )
        elif isinstance(event, ev.BuildFinished):
            self._stop()
        elif self.verbose:
            return  # the raw lines said it all
        elif isinstance(event, ev.BuildStarted):
            self.image, self.stage = event.image, ""
            err.print(f"[bold]building[/] {escape(event.image)} [dim]({escape(event.what)})[/]")
            self._show("")
        elif isinstance(event, ev.BuildStage):
            self.stage = event.title + (f" ({event.step})" if event.step else "")
            if not err.is_terminal:
                err.print(f"  [bold]▶[/] {escape(self.stage)}")
            self._show("")
        elif isinstance(event, ev.BuildProgress):
            self._show(event.detail)
        elif isinstance(event, ev.BuildStageDone):
            summary = f" ({escape(event.summary)})" if event.summary else ""
            err.print(f"  [green]✓[/] {escape(event.title)}{summary} [dim]{duration(event.seconds)}[/]")
            self.stage = ""
            self._show("")
        elif isinstance(event, ev.BuildNote):
            err.print(f"  {escape(event.text)}", style="cyan")

    def _show(self, detail: str) -> None:
        """The live status line, on a terminal only: image · stage · detail, and the time since the build began."""
        if not _common.err.is_terminal:
            return
        # the image is named on the line above; while no stage runs it is what the line says
        text = " · ".join(part for part in (self.stage or self.image, detail) if part) or "building"
        if self.status is None:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.table import Column

            self.status = Progress(
                SpinnerColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis")),
                console=_common.err,
                transient=True,
            )
            self.status.start()
            self.task = self.status.add_task(text, total=None)
        elif self.task is not None:
            self.status.update(self.task, description=text)

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status, self.task = None, None


def _shown(path: Any) -> str:
    from ..build_log import shown

    return shown(path)


class TrainView:
    """Live view of a training: one bar per training component with epoch and metrics, instead of tqdm noise. The
    bars (and their refresh thread) start with the first epoch: a no-change skip never draws any."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.bars: Progress | None = None
        self.task: Any | None = None
        self.started: dict[str, float] = {}
        self.build = BuildView(verbose)

    def __enter__(self) -> TrainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.build.__exit__()
        if self.bars is not None:
            self.bars.stop()

    def handle(self, event: Any) -> None:
        # rich and the progress parser load with the first event: a no-change skip has none
        from rich.markup import escape

        from .. import progress

        err, verbatim = _common.err, _common.verbatim
        if isinstance(event, BUILD_EVENTS):
            self.build.handle(event)
        elif isinstance(event, Notice):
            style = "bold yellow" if event.level == "warn" else "cyan"
            label = "warning: " if event.level == "warn" else ""
            err.print(f"[{style}]{label}{escape(event.text)}[/]")
        elif isinstance(event, TrainingStarted):
            where = "on the CPU" if event.gpu == "none" else f"with {event.gpu}"
            err.print(f"training in {escape(event.image)} {where}")
        elif isinstance(event, progress.ComponentStarted):
            # one line per component, when it ends; while it runs, a live line on a terminal only
            self.started[event.name] = time.monotonic()
            if err.is_terminal:
                self._drop_bar()
                self.task = self._bars().add_task(f"▶ {event.name}", total=None, metrics="")
        elif isinstance(event, progress.ComponentFinished):
            self._drop_bar()
            took = time.monotonic() - self.started.pop(event.name, time.monotonic())
            err.print(f"  [green]✓[/] {event.name} [dim]{took:.1f} s[/]")
        elif isinstance(event, progress.ComponentRestored):
            self._drop_bar()
            err.print(f"  [green]↺[/] {event.name} [dim]restored from cache[/]")
        elif isinstance(event, progress.EpochProgress) and err.is_terminal:  # a log gets no bars
            metrics = " ".join(f"{k}={v:g}" for k, v in event.metrics.items())
            bars = self._bars()
            description = f"{event.component or 'training'} epochs"
            if self.task is None:
                self.task = bars.add_task(description, total=event.total, metrics=metrics)
            bars.update(
                self.task, description=description, completed=event.epoch, total=event.total, metrics=metrics
            )
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
