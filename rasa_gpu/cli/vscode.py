"""`rasa-gpu vscode`: write the VS Code tasks (train, services, watch, benchmark) for a bot."""

from __future__ import annotations

import click

from ._common import bot_argument


@click.command("vscode")
@bot_argument
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    help="The folder opened in VS Code (default: BOT); its .vscode/tasks.json is written.",
)
@click.option(
    "--command",
    "command",
    default="rasa-gpu",
    show_default=True,
    help="How the tasks start rasa-gpu: a name on PATH or a full path (e.g. .venv/bin/rasa-gpu).",
)
def vscode_cmd(bot: str, workspace: str | None, command: str) -> None:
    """Write VS Code tasks for BOT into .vscode/tasks.json: Train bot (GPU) as the default build task, Train bot
    (CPU), Start/Stop services, Watch and retrain, Benchmark CPU vs GPU. An existing tasks.json is merged: your
    tasks and comments stay, rasa-gpu's tasks are updated in place.

    \b
    Examples:
      rasa-gpu vscode example_bot
      rasa-gpu vscode example_bot --workspace . --command .venv/bin/rasa-gpu
    """
    from pathlib import Path

    from .. import vscode
    from ..errors import SettingsError
    from ..project import BotProject
    from ._common import out

    project = BotProject.load(bot)
    root = Path(workspace).resolve() if workspace else project.root
    if not root.is_dir():
        raise SettingsError(f"--workspace {workspace}: no such folder")
    try:
        relative = project.root.relative_to(root).as_posix() or "."
    except ValueError:
        raise SettingsError(
            f"the bot folder {project.root} is outside the workspace {root}; open a folder that contains it"
        ) from None
    path, status = vscode.write_tasks(root, vscode.TaskTemplate(bot=relative, command=command))
    extra = " (the previous version is in tasks.json.bak)" if status == "updated" else ""
    out.print(f"{path}: {status}{extra}", markup=False)
