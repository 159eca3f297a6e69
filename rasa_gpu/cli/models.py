"""`rasa-gpu models`: a bot's models with their size, age, run, and whether they are served, pinned or fine-tuned."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import bot_argument, json_option

if TYPE_CHECKING:
    from ..project import BotProject


@click.command("models")
@bot_argument
@json_option
def models_cmd(bot: str, as_json: bool) -> None:
    """List BOT's models, newest first: size, age, the run that trained it, and whether the running Rasa server
    (`rasa-gpu up`) serves it, `rasa-gpu runs pin` keeps it, or it was fine-tuned. keep_models in rasa-gpu.toml
    sets how many a training leaves.

    \b
    Example:
      rasa-gpu models example_bot
    """
    import json
    import sys

    from rich.table import Table

    from .. import retention
    from ..project import BotProject
    from ._common import out

    project = BotProject.load(bot)
    found = retention.scan(project, _served(project))
    if as_json:
        rows = [
            {
                "model": project.relative(m.path),
                "size": m.size,
                "age_seconds": round(m.age_seconds),
                "run": m.run_id,
                "served": m.served,
                "pinned": m.pinned,
                "finetuned": m.finetuned,
            }
            for m in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("model", "size", "age", "run", "", box=None, padding=(0, 2))
    for m in found:
        marks = [
            w for w, on in (("served", m.served), ("pinned", m.pinned), ("fine-tuned", m.finetuned)) if on
        ]
        table.add_row(
            m.path.name, f"{m.size / 1e6:.1f} MB", _age(m.age_seconds), str(m.run_id or "-"), ", ".join(marks)
        )
    out.print(table)


def _served(project: BotProject) -> str | None:
    """The model the bot's running server has loaded; None when no server runs or no engine answers here."""
    from ..engine import Engine
    from ..errors import RasaGpuError
    from ..services import served_model

    try:
        return served_model(Engine(), project)
    except (RasaGpuError, OSError):
        return None


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
