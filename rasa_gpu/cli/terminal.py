"""This terminal joined to a container's TTY (for `rasa shell`): raw keys in, the screen out, the size kept in step.
Ctrl+C is a key for Rasa here, as in `docker run -it`; the container ends when Rasa does, or with rasa-gpu."""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import RunningContainer


def available() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def pump(running: RunningContainer) -> None:
    """Copy keys to the container and its screen here until it exits."""
    import termios
    import tty

    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin)

    def resize(*_: object) -> None:
        size = shutil.get_terminal_size()
        running.resize(size.lines, size.columns)

    def screen() -> None:
        for chunk in running.output(tty=True):
            os.write(stdout, chunk)

    previous = signal.signal(signal.SIGWINCH, resize)
    writer = threading.Thread(target=screen, name="rasa-gpu-terminal", daemon=True)
    try:
        tty.setraw(stdin)
        writer.start()
        resize()
        while writer.is_alive():
            ready, _, _ = select.select([stdin], [], [], 0.1)
            if ready:
                data = os.read(stdin, 1024)
                if not data:
                    break
                running.send(data)
        writer.join(timeout=2)
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
