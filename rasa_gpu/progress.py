"""Turn Rasa's training output (log lines and tqdm bars) into a few events a person can follow."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Union

_STARTED = re.compile(r"Starting to train component '([\w.]+)'")
_FINISHED = re.compile(r"Finished training component '([\w.]+)'")
_RESTORED = re.compile(r"Restored component '([\w.]+)' from cache")
# tqdm: "Epochs:  45%|████▌     | 45/100 [00:10<00:12,  4.40it/s, t_loss=1.23, i_acc=0.950]"
_EPOCHS = re.compile(r"Epochs:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)\s*\[[^\]]*?(?:it/s|s/it|\?)(?:,\s*([^\]]*))?\]")
# Any other tqdm bar ("Processed trackers: 100%|...| 3/3 [...]", "Processed actions: 12it [...]"): noise.
_TQDM = re.compile(r"^[^|]{0,60}:\s*(\d+%\||\d+it \[)")
_METRIC = re.compile(r"(\w+)=([-+0-9.eE]+)")
#: Terminal colour and cursor codes (Rasa colours its errors).
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: The last line of a Python traceback, or Rasa's own "SomeException: message" for errors it expects.
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*)?(?:Error|Exception|Exit|Failure|Interrupt|Fault)\b.*?: \S"
)
#: An error that Rasa Pro logs with structlog (`2026-11-23 05:05:35 [error    ] license.validation.error  error=...`);
#: the plain sentence it prints next, before it exits, is what it tells a user.
_LOGGED_ERROR = re.compile(r"\[(?:error|critical)\s*\]\s+(\S+)\s*(.*)$")
_LOGGED = re.compile(r"\[(?:debug|info|warning|error|critical)\s*\]")
#: A line of Python's warnings module (`/path/x.py:12: DeprecationWarning: ...`) and a timestamped log line.
_WARNING = re.compile(r"\.py:\d+: \w*Warning\b")
_TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
_DIRECT_CAUSE = "The above exception was the direct cause of the following exception"
#: Output that means the disk (or a quota) ran full, wherever in Rasa it happened.
_DISK_FULL = ("No space left on device", "[Errno 28]", "Disk quota exceeded", "database or disk is full")


@dataclass(frozen=True)
class ComponentStarted:
    name: str


@dataclass(frozen=True)
class ComponentFinished:
    name: str


@dataclass(frozen=True)
class ComponentRestored:
    name: str


@dataclass(frozen=True)
class EpochProgress:
    component: str | None
    epoch: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine:
    """Any other line, for --verbose and for the error tail."""

    text: str


ProgressEvent = Union[ComponentStarted, ComponentFinished, ComponentRestored, EpochProgress, LogLine]


class _Lines:
    """One stream's bytes into lines, splitting on \\n and on tqdm's \\r."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> Iterator[str]:
        self.pending += chunk
        parts = re.split(rb"\r\n|\r|\n", self.pending)
        self.pending = parts.pop()
        for part in parts:
            if part.strip():
                yield part.decode("utf-8", errors="replace").rstrip()
        # tqdm writes a whole bar per write and ends it with the next \r, which may come much later (DIET's first
        # epoch takes half a minute): pass a complete-looking bar on now instead of holding it back.
        if _TQDM.search(self.pending.decode("utf-8", errors="replace")) and self.pending.rstrip().endswith(
            b"]"
        ):
            yield self.pending.decode("utf-8", errors="replace").rstrip()
            self.pending = b""

    def rest(self) -> Iterator[str]:
        if self.pending.strip():
            yield self.pending.decode("utf-8", errors="replace").rstrip()
        self.pending = b""


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines from one byte stream, splitting on \\n and on tqdm's \\r."""
    lines = _Lines()
    for chunk in chunks:
        yield from lines.feed(chunk)
    yield from lines.rest()


def split_stream_lines(frames: Iterable[tuple[int, bytes]]) -> Iterator[str]:
    """Lines from a container's stdout and stderr frames ((stream, bytes), as the engine multiplexes them): each
    stream is split on its own, so a line that stderr writes in two parts around a stdout write stays whole."""
    streams: dict[int, _Lines] = {}
    for stream, chunk in frames:
        yield from streams.setdefault(stream, _Lines()).feed(chunk)
    for lines in streams.values():
        yield from lines.rest()


def _told(line: str) -> bool:
    """Whether a line of output reads as a sentence told to a user: not indented (a warning's source line, a
    traceback's), not a Python warning, not a logged or timestamped line."""
    plain = line.strip()
    return (
        bool(plain)
        and not line[:1].isspace()
        and not (_WARNING.search(plain) or _LOGGED.search(plain) or _TIMESTAMPED.match(plain))
    )


class ProgressParser:
    """Stateful: knows which component is training so epoch bars can be attributed to it."""

    def __init__(self, tail_size: int = 30) -> None:
        self.current: str | None = None
        self.tail: deque[str] = deque(maxlen=tail_size)
        self._last_exception: str | None = None
        self._root_exception: str | None = None
        self.disk_full: str | None = None  # what Rasa said when the disk ran full, if it did

    def feed(self, line: str) -> ProgressEvent:
        if m := _EPOCHS.search(line):
            metrics = {k: float(v) for k, v in _METRIC.findall(m.group(3) or "")}
            return EpochProgress(self.current, int(m.group(1)), int(m.group(2)), metrics)
        if _TQDM.search(line):
            return LogLine(line)
        plain = ANSI.sub("", line)
        self.tail.append(plain)
        if _EXCEPTION.match(plain.strip()):
            self._last_exception = plain.strip()
        elif plain.startswith(_DIRECT_CAUSE) and self._root_exception is None:
            self._root_exception = self._last_exception
        self.disk_full = self.disk_full or next((marker for marker in _DISK_FULL if marker in plain), None)
        if m := _STARTED.search(line):
            self.current = m.group(1)
            return ComponentStarted(m.group(1))
        if m := _FINISHED.search(line):
            self.current = None
            return ComponentFinished(m.group(1))
        if m := _RESTORED.search(line):
            return ComponentRestored(m.group(1))
        return LogLine(line)

    @property
    def cause(self) -> str | None:
        """Why Rasa failed, as the exception's own line: the root of a chain of wrapped exceptions (Rasa wraps a
        component's error in "GraphComponentException: Error running graph component"), else the last one; without
        a traceback, Rasa Pro's last logged error and the sentence it printed after it."""
        if self._root_exception or self._last_exception:
            return self._root_exception or self._last_exception
        return self._logged_error()

    @property
    def last_words(self) -> str | None:
        """The last line of output when it reads as a sentence told to a user (what `raise SystemExit("...")` or
        Rasa's print_error prints before exiting 1, as Rasa Pro 3.8 does for a license it refuses): not a Python
        warning, its source line or a logged line. For a failure without an exception line."""
        if not self.tail or not _told(self.tail[-1]):
            return None
        return self.tail[-1].strip()[:300]

    def _logged_error(self) -> str | None:
        """Rasa Pro's last logged error, with the sentence it printed next to it. The two go to stdout and stderr,
        which reach us in either order: the line after the error, or the one before when the error came last."""
        lines = list(self.tail)
        found = [i for i, line in enumerate(lines) if _LOGGED_ERROR.search(line)]
        if not found:
            return None
        i = found[-1]
        m = _LOGGED_ERROR.search(lines[i])
        assert m is not None
        error = f"{m.group(1)} {m.group(2)}".strip()
        # The nearest sentence after it, else before it: warnings (and their source lines) may come between.
        after = [line for line in lines[i + 1 :] if _told(line)]
        before = [line for line in lines[:i] if _told(line)][-1:] if not after else []
        told = (after or before)[:1]
        return f"{told[0].strip()} ({error})" if told else error

    def error_lines(self, count: int = 12) -> list[str]:
        """The last lines of output other than progress bars, without colour codes: where Rasa explains a failure."""
        return list(self.tail)[-count:]
