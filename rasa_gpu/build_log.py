"""An image build's whole output, kept in a file while the person at the terminal follows a few lines of it.

`recording` gives the line sink that engine.build (or base_image) writes to: each line goes, masked (redact), into
a new log file, to the command's sink as a BuildOutput (what -v shows) and through a parser (build_progress) that
turns it into stage and progress events. An error raised while a log exists names the file in its one line.

A bot's logs are in BOT/.rasa-gpu/logs/build-<time>.log (made as every file of rasa-gpu's own folder: no link
followed, owned by the bot's owner); `rasa-gpu base-image`, which has no bot, keeps them in the user's state folder
($XDG_STATE_HOME/rasa-gpu/logs, else ~/.local/state/rasa-gpu/logs). Only the newest KEEP of a kind stay.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, safefs
from .errors import RasaGpuError
from .events import BuildFinished, BuildLogOpened, BuildOutput, EventSink
from .redact import redact

if TYPE_CHECKING:
    from .build_progress import LineParser
    from .project import BotProject

#: How many logs of a kind a folder keeps (the newest).
KEEP = 5
LOGS = "logs"


@dataclass(frozen=True)
class LogFolder:
    """Where a command's build logs go: `folder` inside `root` (nothing is written outside root and no link in it is
    followed: safefs), made by `make_dirs`, each file given to `owner` when rasa-gpu runs as root."""

    root: Path
    folder: Path
    make_dirs: Callable[[Path], Path]
    owner: tuple[int, int] | None = None


def of_bot(project: BotProject) -> LogFolder:
    """BOT/.rasa-gpu/logs, owned by the bot's owner."""
    owner = project.owner if os.geteuid() == 0 else None
    return LogFolder(project.root, project.state_dir / LOGS, project.make_owned_dirs, owner)


def user_state_dir() -> Path:
    """rasa-gpu's folder in the user's state folder (XDG): $XDG_STATE_HOME/rasa-gpu, else ~/.local/state/rasa-gpu."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "rasa-gpu"


def of_user() -> LogFolder:
    """The logs of builds that belong to no bot (`rasa-gpu base-image`): the user's own, readable by them only."""
    root = user_state_dir()

    def make(path: Path) -> Path:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return safefs.make_dirs(root, path)[0]

    return LogFolder(root, root / LOGS, make)


def shown(path: Path) -> str:
    """A path as a message names it: relative to the current folder when it lies below it, else absolute."""
    with contextlib.suppress(ValueError, OSError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


class BuildLog:
    """One command's build log: created with its first line (a build found in the cache writes none), written line
    by line as the build goes (a killed build leaves what it said), closed at the end."""

    def __init__(self, place: LogFolder, kind: str = "build", keep: int = KEEP) -> None:
        self.place, self.kind, self.keep = place, kind, keep
        self.path: Path | None = None
        self._fd = -1

    def write(self, line: str) -> None:
        if self._fd < 0:
            self._open()
        os.write(self._fd, (line + "\n").encode("utf-8", errors="replace"))

    def _open(self) -> None:
        folder = self.place.make_dirs(self.place.folder)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for attempt in range(1, 100):
            name = f"{self.kind}-{stamp}{'' if attempt == 1 else f'-{attempt}'}.log"
            try:
                # exclusive, never through a link; 0600: a build's output can name private hosts
                self._fd = safefs.create_exclusive(self.place.root, folder / name, mode=0o600)
            except FileExistsError:
                continue
            self.path = folder / name
            break
        else:
            raise RasaGpuError(f"cannot create a build log in {folder}: 99 logs of this second exist")
        if self.place.owner is not None:
            os.fchown(self._fd, *self.place.owner)
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        os.write(
            self._fd, f"# rasa-gpu {__version__}: the whole output of a build, started {started}\n".encode()
        )
        self._prune(folder)

    def _prune(self, folder: Path) -> None:
        """Remove all but the newest `keep` logs of this kind, never the one being written."""
        pattern = re.compile(rf"^{re.escape(self.kind)}-\d{{8}}-\d{{6}}(-\d+)?\.log$")
        found = [
            (entry.stat(follow_symlinks=False).st_mtime_ns, entry.name)
            for entry in safefs.real_entries(self.place.root, folder)
            if pattern.match(entry.name) and entry.is_file(follow_symlinks=False)
        ]
        logs = [name for _, name in sorted(found)]
        mine = self.path.name if self.path is not None else ""
        for name in [n for n in logs if n != mine][: max(0, len(logs) - self.keep)]:
            safefs.remove(self.place.root, folder / name)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def name_the_log(error: RasaGpuError, path: Path) -> None:
    """Add "; the full log: PATH" to an error's one line."""
    if "the full log: " not in error.message:
        error.message = f"{error.message}; the full log: {shown(path)}"
        error.args = (error.message,)


@contextlib.contextmanager
def recording(
    place: LogFolder, on_event: EventSink, parser: LineParser | None = None, *, kind: str = "build"
) -> Iterator[Callable[[str], None]]:
    """The line sink for the builds of one command: every line into the log (masked again: a login in any URL),
    to on_event as a BuildOutput, and through `parser` (default: Docker's build) as stage and progress events. A
    RasaGpuError raised inside names the log in its line; BuildFinished ends it all (when anything was logged)."""
    if parser is None:
        from .build_progress import DockerBuildParser

        parser = DockerBuildParser()
    log = BuildLog(place, kind)

    def on_line(line: str) -> None:
        line = redact(line)
        first = log.path is None
        log.write(line)
        if first and log.path is not None:
            on_event(BuildLogOpened(log.path))
        on_event(BuildOutput(line))
        for event in parser.feed(line):
            on_event(event)

    failed = True
    try:
        yield on_line
        failed = False
    except RasaGpuError as exc:
        if log.path is not None:
            name_the_log(exc, log.path)
        raise
    finally:
        log.close()
        if log.path is not None:
            for event in [] if failed else parser.close():
                on_event(event)
            on_event(BuildFinished(log.path))
