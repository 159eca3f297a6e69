"""The command line: the only place that prints, prompts or picks an exit code.

One module per command or group of commands, named after it (COMMANDS is the index): `train`, `services` (up, down,
ps, logs, restart), `build` (build, push, base-image), `watch`, `benchmark`, `doctor`, `runs`, `vscode`,
`versions`; `_common` holds the consoles, every option that several commands take (declared once, one help each)
and the grammar of the commands that hand arguments to Rasa (options before or after BOT, Rasa's after --), `views`
the live training view. A command's module is imported only when the command runs or its help is shown, and it
imports rich, docker-py and the core modules inside its function: `rasa-gpu --help` loads click and little else.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from .. import __version__, signals
from ..errors import Interrupted, RasaGpuError

if TYPE_CHECKING:
    from rich.console import Console

    from ._common import ImageOptions, image_options, verbatim

    out: Console
    err: Console

__all__ = ["COMMANDS", "ImageOptions", "cli", "err", "image_options", "main", "out", "verbatim"]

#: Every command: its name and where it is defined (module in this package : attribute).
COMMANDS = {
    "base-image": "build:base_image_cmd",
    "benchmark": "benchmark:benchmark_cmd",
    "build": "build:build",
    "ci": "ci:ci_cmd",
    "doctor": "doctor:doctor",
    "down": "services:down",
    "jobs": "jobs:jobs_cmd",
    "logs": "services:logs",
    "models": "models:models_cmd",
    "ps": "services:ps",
    "push": "build:push",
    "rasa": "rasa:rasa_cmd",
    "restart": "services:restart",
    "runs": "runs:runs_cmd",
    "shell": "rasa:shell_cmd",
    "submit": "jobs:submit",
    "test": "rasa:test_cmd",
    "train": "train:train_cmd",
    "up": "services:up",
    "validate": "rasa:validate_cmd",
    "versions": "versions:versions",
    "vscode": "vscode:vscode_cmd",
    "watch": "watch:watch",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is asked for (click's documented pattern)."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
            assert isinstance(command, click.Command), self.lazy_commands[cmd_name]
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rasa-gpu")
def cli() -> None:
    """Train Rasa bots on an NVIDIA GPU in Docker: no CUDA, drivers or Python to set up on the host.

    \b
    Example:
      rasa-gpu train example_bot            # build the image once, train, model lands in models/
    """


def __getattr__(name: str) -> Any:
    """The consoles and shared options live in _common (the consoles are made on first use)."""
    if name in ("out", "err", "verbatim", "ImageOptions", "image_options"):
        from . import _common

        return getattr(_common, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- entry point ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: expected errors become one line and an exit code, never a traceback."""
    signals.install()  # again: main() is also called on its own (tests, python -m rasa_gpu.cli)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="rasa-gpu", standalone_mode=False)
    except RasaGpuError as exc:
        _report("error", exc.message, exc.details)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort) as exc:
        # Interrupted says what the command did about it; a bare KeyboardInterrupt came before anything was started
        # or from a command that has nothing to undo.
        cause = exc.__cause__ if isinstance(exc, click.Abort) else exc  # click wraps Ctrl+C in Abort
        _report(
            "interrupted", cause.message if isinstance(cause, Interrupted) else "stopped before finishing"
        )
        sys.exit(Interrupted.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        _report("error", str(exc))
        sys.exit(1)
    except Exception as exc:  # a bug in rasa-gpu: one line, and the traceback only on request
        if os.environ.get("RASA_GPU_DEBUG"):
            raise
        _report(
            "internal error",
            f"{type(exc).__name__}: {exc} (set RASA_GPU_DEBUG=1 for the traceback and report it)",
        )
        sys.exit(1)


def _report(label: str, message: str, details: Sequence[str] = ()) -> None:
    """One line on stderr, `label: message`, and the details under it as they were printed."""
    from rich.markup import escape
    from rich.text import Text

    from ._common import err, verbatim

    err.print(f"[bold red]{label}:[/] {escape(message)}")
    for line in details:
        err.print(Text("  │ ", style="dim") + verbatim(line, style=""))
