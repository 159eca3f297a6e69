"""A run's private folder under .rasa-gpu/tmp: claimed by a lock while its run lives, removed by the run at the end.

Every writer of .rasa-gpu/tmp (a training's workspace, `rasa-gpu test`'s fresh reports) holds an exclusive lock on
`tmp/<name>.lock` for as long as its folder lives, so tidying (`tidy`, which every training runs first) removes only
the folders of runs that are dead: SIGKILLed, powered off. A lock of a dead process is free again, so no pid guessing
is needed, and a `test` that runs while a `train` of the same bot starts keeps its files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import safefs

if TYPE_CHECKING:
    from .project import BotProject

FOLDER = "tmp"
_LOCK = ".lock"


class Scratch:
    """One run's folder, `path`, claimed until `release()`; then it is removed."""

    def __init__(self, project: BotProject, name: str) -> None:
        self.project = project
        tmp = project.make_owned_dirs(project.state_dir / FOLDER)
        self._lock = safefs.create_exclusive(project.root, tmp / f"{name}{_LOCK}", mode=0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: no one else holds it
        project.give_to_owner(tmp / f"{name}{_LOCK}")
        self.path = tmp / name
        project.make_owned_dirs(self.path)

    def release(self) -> None:
        if self._lock < 0:
            return
        safefs.remove(self.project.root, self.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path.with_name(self.path.name + _LOCK))
        os.close(self._lock)
        self._lock = -1


def tidy(project: BotProject) -> int:
    """Remove what dead runs left in .rasa-gpu/tmp (their folders and lock files); folders whose run still holds its
    lock stay. Returns how many folders were removed. Only entries of tmp/ itself are removed, each by safefs.remove
    (a link among them is unlinked, never followed)."""
    tmp = project.state_dir / FOLDER
    removed = 0
    for entry in safefs.real_entries(project.root, tmp):
        if entry.name.endswith(_LOCK):
            continue
        lock_path = tmp / f"{entry.name}{_LOCK}"
        if not _claimed(lock_path):
            safefs.remove(project.root, tmp / entry.name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
            removed += 1
    # lock files whose folder is gone and whose run is dead (a minute old: a run creates its lock just before its
    # folder)
    for entry in safefs.real_entries(project.root, tmp):
        folder = tmp / entry.name[: -len(_LOCK)]
        if (
            entry.name.endswith(_LOCK)
            and not os.path.lexists(folder)
            and entry.stat(follow_symlinks=False).st_mtime < time.time() - 60
            and not _claimed(tmp / entry.name)
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp / entry.name)
    return removed


def _claimed(lock_path: Path) -> bool:
    """Whether a live run holds this lock file (an absent one, or a link, is no claim)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
