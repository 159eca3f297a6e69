"""`rasa-gpu runs`: the run history of a bot (list, show, compare)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._common import LazyChoice, bot_argument, json_option

if TYPE_CHECKING:
    from ..history import History

T = TypeVar("T")


class _RunsGroup(click.Group):
    """`runs [BOT]` lists; `runs show ID [BOT]` and `runs compare A B [BOT]` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("runs", cls=_RunsGroup)
def runs_cmd() -> None:
    """The run history of a bot: every training and benchmark run, kept in BOT/.rasa-gpu/history.sqlite.

    \b
    Examples:
      rasa-gpu runs example_bot                   # the newest 20 runs
      rasa-gpu runs example_bot --device gpu --since 7d --json
      rasa-gpu runs show last example_bot
      rasa-gpu runs compare 3 7 example_bot
    """


@runs_cmd.command("list")
@bot_argument
@click.option(
    "--kind", type=LazyChoice("rasa_gpu.history", "KINDS"), help="Only trainings or only benchmark runs."
)
@click.option(
    "--status", type=LazyChoice("rasa_gpu.history", "STATUSES"), help="Only runs that ended this way."
)
@click.option("--device", type=click.Choice(["gpu", "cpu"]), help="Only runs on the GPU or on the CPU.")
@click.option("--rasa-version", metavar="X.Y.Z", help="Only runs with this Rasa release.")
@click.option("--since", metavar="WHEN", help="Only runs started since: 30m, 12h, 7d, 2w, or a date (UTC).")
@click.option("-n", "--limit", type=click.IntRange(0), default=20, show_default=True, help="0: all.")
@json_option
def runs_list(
    bot: str,
    kind: str | None,
    status: str | None,
    device: str | None,
    rasa_version: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List BOT's runs, newest first.

    \b
    Example:
      rasa-gpu runs list example_bot --kind train --status ok
    """
    import json
    from pathlib import Path

    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .. import history
    from ._common import out

    query = history.RunQuery(
        kind=kind,
        status=status,
        device=device,
        rasa_version=rasa_version,
        since=history.parse_since(since) if since else None,
        limit=limit or None,
    )
    no_runs: list[history.Run] = []
    found = _history_read(bot, lambda h: h.runs(query), when_missing=no_runs)
    if as_json:
        click.echo(json.dumps([run.to_json() for run in found], indent=2))
        return
    if not found:
        out.print(
            "no runs recorded yet" if query == history.RunQuery(limit=query.limit) else "no matching runs"
        )
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("id", "started (UTC)", "kind", "status", "device", "seconds", "rasa"):
        table.add_column(name, no_wrap=True)
    table.add_column("model / benchmark phase", no_wrap=True)
    for run in found:
        table.add_row(
            str(run.id),
            run.started_at.replace("T", " ")[:16],
            run.kind,
            _status_text(run.status),
            escape(_short_device(run.device)),
            f"{run.wall_seconds:.1f}" if run.wall_seconds is not None else "-",
            run.rasa_version or "-",
            escape(Path(run.model_path).name if run.model_path else run.phase or "-"),
        )
    out.print(table)


@runs_cmd.command("show")
@click.argument("run_id", metavar="ID")
@bot_argument
@json_option
def runs_show(run_id: str, bot: str, as_json: bool) -> None:
    """Show everything recorded about run ID (a number from `rasa-gpu runs`, or last).

    \b
    Example:
      rasa-gpu runs show last example_bot
    """
    import json

    from rich.markup import escape
    from rich.table import Table

    from ._common import out

    run = _history_read(bot, lambda h: h.get(run_id))
    if as_json:
        click.echo(json.dumps(run.to_json(), indent=2))
        return
    table = Table(box=None, show_header=False, padding=(0, 2))
    for name, value in run.to_json().items():
        if name in ("components", "metrics", "id") or value in (None, [], "", {}):
            continue
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        table.add_row(name.replace("_", " "), _status_text(shown) if name == "status" else escape(shown))
    out.print(f"[bold]run {run.id}[/]")
    out.print(table)
    if run.components:
        parts = Table("component", "seconds", box=None, padding=(0, 2))
        for name, seconds in run.components.items():
            parts.add_row(name, f"{seconds:.1f}")
        out.print(parts)
    if run.metrics:
        from ..evaluation import label

        figures = Table("figure", "value", box=None, padding=(0, 2))
        for name, value in run.metrics.items():
            figures.add_row(label(name), f"{value:.3f}")
        out.print(figures)


@runs_cmd.command("pin")
@click.argument("run_id", metavar="ID")
@bot_argument
@click.option("--unpin", is_flag=True, help="Let keep_models remove its model again.")
def runs_pin(run_id: str, bot: str, unpin: bool) -> None:
    """Keep the model of run ID whatever keep_models says (--unpin: no longer).

    \b
    Example:
      rasa-gpu runs pin 12 example_bot
    """
    from ._common import err

    run = _history_read(bot, lambda h: h.pin(run_id, pinned=not unpin))
    what = run.model_path or "no model"
    err.print(
        f"run {run.id} ({what}) {'unpinned' if unpin else 'pinned: keep_models never removes its model'}"
    )


@runs_cmd.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@bot_argument
@json_option
def runs_compare(a: str, b: str, bot: str, as_json: bool) -> None:
    """Compare runs A and B: what differed between them, and their times side by side (A/B > 1: B was faster).

    \b
    Example:
      rasa-gpu runs compare 3 last example_bot
    """
    import json

    from rich.markup import escape
    from rich.table import Table

    from ..comparison import compare
    from ._common import out

    run_a, run_b = _history_read(bot, lambda h: (h.get(a), h.get(b)))
    comparison = compare(run_a, run_b)
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=2))
        return
    times = Table("seconds", f"run {run_a.id}", f"run {run_b.id}", f"{run_a.id}/{run_b.id}")
    for row in comparison.times:
        times.add_row(
            row.name,
            f"{row.a:.1f}" if row.a is not None else "-",
            f"{row.b:.1f}" if row.b is not None else "-",
            f"{row.ratio:.2f}x" if row.ratio is not None else "-",
        )
    out.print(times)
    if comparison.differences:
        diff = Table("differs", f"run {run_a.id}", f"run {run_b.id}")
        for name, va, vb in comparison.differences:
            diff.add_row(name.replace("_", " "), escape(_value_text(va)), escape(_value_text(vb)))
        out.print(diff)
    if comparison.figures:
        from ..evaluation import label

        figures = Table("figure", f"run {run_a.id}", f"run {run_b.id}", f"{run_b.id} - {run_a.id}")
        for row in comparison.figures:
            change = "-" if row.a is None or row.b is None else f"{row.b - row.a:+.3f}"
            figures.add_row(
                label(row.name),
                f"{row.a:.3f}" if row.a is not None else "-",
                f"{row.b:.3f}" if row.b is not None else "-",
                change,
            )
        out.print(figures)
    out.print("same: " + ", ".join(n.replace("_", " ") for n in comparison.same), markup=False)


def _history_read(bot: str, read: Callable[[History], T], when_missing: T | None = None) -> T:
    """Open BOT's history (migrating an older schema) and read from it. Without one yet: `when_missing`, or an
    error that says how the first run gets recorded."""
    from .. import history
    from ..project import BotProject

    project = BotProject.load(bot)
    store = history.History.of(project)
    if not store.path.exists():
        if when_missing is not None:
            return when_missing
        raise history.HistoryError(
            f"no runs recorded for {project.root} yet; `rasa-gpu train {bot}` records the first one"
        )
    with store:
        return read(store)


def _status_text(status: str) -> str:
    colour = {"ok": "green", "failed": "red", "error": "red", "interrupted": "yellow"}.get(status)
    return f"[{colour}]{status}[/]" if colour else status


def _short_device(device: str | None) -> str:
    if not device:
        return "-"
    kind, _, name = device.partition(": ")
    return kind if kind == "CPU" else f"{kind} {name[:20]}"


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return "-" if value is None else str(value)
