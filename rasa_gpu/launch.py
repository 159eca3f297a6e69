"""The `rasa-gpu` command's first step: the signal handlers, before the heavy imports (click, rich, docker).

A Ctrl+C or SIGTERM in the first moments then ends the command with exit 130 and one line, like one later on.
"""

from __future__ import annotations

import sys

from . import signals

EXIT_INTERRUPTED = 130


def main() -> None:
    signals.install()
    try:
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt as exc:  # before the CLI's own handling, or during its error report
        message = getattr(exc, "message", "interrupted while starting; nothing was done")
        sys.stderr.write(f"interrupted: {message}\n")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        signals.ignore()
