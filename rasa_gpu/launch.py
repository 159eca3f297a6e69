"""The `rasa-gpu` command's first step: the signal handlers, before the heavy imports (click, rich, docker).

A Ctrl+C or SIGTERM in the first moments then ends the command with exit 130 and one line, like one later on.
"""

from __future__ import annotations

import contextlib
import os
import sys

from . import signals

EXIT_INTERRUPTED = 130


def main() -> None:
    signals.install()
    try:
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt as exc:  # before the CLI's own handling, or during its error report
        message = getattr(exc, "message", "stopped while starting; nothing was done")
        sys.stderr.write(f"interrupted: {message}\n")
        _exit_interrupted()
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:
            _exit_interrupted()
        raise
    finally:
        signals.ignore()


def _exit_interrupted() -> None:
    """Exit 130 now: what the command started is cleaned up by this point. Not through Python's shutdown, which puts
    the default handlers back (a late Ctrl+C would kill the exit: status -2) and, after a Ctrl+C during an import,
    may re-raise SIGINT on itself instead of exiting with the code asked for."""
    signals.ignore()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe
            stream.flush()
    os._exit(EXIT_INTERRUPTED)
