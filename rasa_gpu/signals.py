"""Ctrl+C, SIGTERM and SIGHUP: each ends a command once, and nothing cuts its cleanup short.

The first of them raises KeyboardInterrupt wherever the command is. Every later one is noted and ignored: the cleanup
that the first one started (stop and remove a container, delete temporary output) runs to its end, however often
Ctrl+C is pressed. Steps that must not be cut in two (create-and-start a container, stop-and-remove it) run inside
`deferred()`: a first signal that arrives there raises only when the step is done. Nor is an import cut in two
(rasa-gpu imports docker-py and its own modules late, to start fast): a package left half-imported would break the
cleanup that needs it, so a first signal that lands inside an import raises a moment after the import is done.

This module imports nothing heavy, so that the entry point can install the handlers before anything else loads.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How long a signal that landed inside an import waits before it looks again (seconds).
_IMPORT_RETRY = 0.02

_received: list[int] = []
_raised = False
_deferring = 0


def install() -> None:
    """Handle Ctrl+C, SIGTERM (docker stop, kill) and SIGHUP (a closed terminal, VS Code ending a task) alike.
    SIGINT is handled even when a parent started us with it ignored (a non-interactive shell's background job)."""
    global _raised, _deferring
    _received.clear()
    _raised, _deferring = False, 0
    for sig in HANDLED:
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGALRM, _on_retry)


def ignore() -> None:
    """On the way out, with everything cleaned up: later signals are ignored. (While Python shuts down it puts the
    default handlers back, and a Ctrl+C then would kill the exit itself: exit status -2 and a lost message.)"""
    signal.setitimer(signal.ITIMER_REAL, 0)
    for sig in (*HANDLED, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)


def received() -> bool:
    """Whether any of the handled signals arrived."""
    return bool(_received)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a first signal until the block is done, then raise it."""
    global _deferring, _raised
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _received and not _raised:
            _raised = True
            raise KeyboardInterrupt


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    _raise_when_safe(frame)


def _on_retry(signum: int, frame: FrameType | None) -> None:
    _raise_when_safe(frame)


def _raise_when_safe(frame: FrameType | None) -> None:
    global _raised
    if _raised or _deferring:
        return
    if _importing(frame):
        signal.setitimer(signal.ITIMER_REAL, _IMPORT_RETRY)
        return
    _raised = True
    raise KeyboardInterrupt


def _importing(frame: FrameType | None) -> bool:
    """Whether the interrupted code is inside an import (importlib's frames are on the stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
