"""Writing into a bot folder that someone else made: rasa-gpu never follows a link it did not make there.

A cloned repository can hold links where rasa-gpu writes (`.rasa-gpu/tmp -> ../../..`, `models -> ~/Downloads`,
a temporary file linked to `~/.bashrc`). The rules, owned here and used by every writer:

- rasa-gpu's own folder (.rasa-gpu/ and everything below it) holds no links at all: rasa-gpu makes none there, so a
  link is refused wherever it is met.
- The bot's output folders (models/, results/, .rasa/, .vscode/) may be links that stay inside the bot folder (they
  are followed); one that leads outside it is refused, as is a file rasa-gpu replaces that is such a link.
- Files are written beside their target under a fresh name, created exclusively and without following links, with
  their final mode from the first byte (secrets are never readable by others, not even for a moment), then renamed
  over the target in one step.
- Tidying removes only what lies inside the folder being tidied: a real directory is removed with its content (by
  file descriptors, so a link met inside is removed, never followed), a link or a file is unlinked.

Each refusal is a ProjectError in one line that names the link and what to do.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import ProjectError

#: rasa-gpu's own folder in a bot: no link is ever followed anywhere below it.
STATE_DIR = ".rasa-gpu"


def _strict(root: Path, path: Path) -> bool:
    """Whether `path` lies in rasa-gpu's own folder, where no link is allowed."""
    parts = path.relative_to(root).parts
    return bool(parts) and parts[0] == STATE_DIR


def _refusal(root: Path, link: Path, strict: bool) -> ProjectError:
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    name = link.relative_to(root)
    if strict:
        return ProjectError(
            f"{name} is a link (to {target}); rasa-gpu's own folder {STATE_DIR}/ holds no links and rasa-gpu follows "
            "none there: remove the link, then run again"
        )
    return ProjectError(
        f"{name} is a link to {target}, outside the bot folder; rasa-gpu writes there and follows no link out of "
        "the bot: replace the link with a real folder (or remove it), then run again"
    )


def check(root: Path, path: Path) -> Path:
    """The real location of `path` (inside the bot folder `root`) for writing: each level from `root` down that
    exists is checked. In rasa-gpu's own folder every link is refused; elsewhere a link that leads outside `root`
    is refused, and one that stays inside is followed (the path returned is then the resolved one). A level that is
    a file where a folder is needed is refused too."""
    root = root.resolve()
    path = Path(path)
    if not path.is_absolute():
        path = root / path
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise ProjectError(
            f"{path} is outside the bot folder {root}; rasa-gpu only writes inside it"
        ) from None
    current = root
    parts = relative.parts
    for index, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return current.joinpath(*parts[index + 1 :])
        last = index == len(parts) - 1
        if stat.S_ISLNK(st.st_mode):
            if _strict(root, current):
                raise _refusal(root, current, strict=True)
            resolved = current.resolve()
            if resolved != root and root not in resolved.parents:
                raise _refusal(root, current, strict=False)
            # a link that stays inside: go on from where it leads, checking that too
            return check(root, resolved.joinpath(*parts[index + 1 :]))
        if not last and not stat.S_ISDIR(st.st_mode):
            raise ProjectError(
                f"{current.relative_to(root)} is a file, but rasa-gpu writes into a folder of that name; rename or "
                "remove the file, then run again"
            )
    return current


def make_dirs(root: Path, path: Path, owner: tuple[int, int] | None = None) -> tuple[Path, list[Path]]:
    """mkdir -p of `path` inside `root`, checked as `check` does; returns the real folder and the levels it
    created, each given to `owner` (uid, gid) when one is named (lchown: never through a link)."""
    real = check(root, path)
    missing = []
    current = real
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    if os.path.lexists(real) and not real.is_dir():
        raise ProjectError(
            f"{real.relative_to(root.resolve())} is a file, but rasa-gpu writes into a folder of that name; rename "
            "or remove the file, then run again"
        )
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by a concurrent rasa-gpu
            os.mkdir(level)
        check(root, level)  # still a real folder (not swapped for a link meanwhile)
        if owner is not None:
            os.lchown(level, *owner)
    return real, list(reversed(missing))


def write_file(
    root: Path, path: Path, data: bytes | BinaryIO, *, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> Path:
    """Write `data` (bytes, or a file read in chunks: a model is not held in memory) to `path` inside `root`
    atomically: a fresh file beside it, created exclusively without following links and at `mode` from its first
    byte, owned by `owner`, then renamed over `path`. A `path` that is a link is refused (in rasa-gpu's own folder)
    or replaced as a link is (elsewhere, when it leads inside)."""
    folder, _ = make_dirs(root, path.parent, owner)
    target = check(root, folder / path.name)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away; nothing was written yet
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        chunks = [data] if isinstance(data, bytes) else iter(lambda: data.read(1 << 20), b"")
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        os.replace(temporary, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target


def create_exclusive(root: Path, path: Path, *, mode: int = 0o644) -> int:
    """Open a new file at `path` inside `root` for writing (a file descriptor): created exclusively, never through
    a link; refused like `check` when a level above it is a link."""
    folder = check(root, path.parent)
    return os.open(
        folder / path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode
    )


def remove(root: Path, path: Path) -> None:
    """Remove `path` inside `root`: a real directory with everything in it (links inside are unlinked, not
    followed), a file or a link by unlinking it. Nothing when it is absent."""
    folder = check(root, path.parent)
    target = folder / path.name
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(target, ignore_errors=True)  # by file descriptors: a link met inside is not followed
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)


def real_entries(root: Path, folder: Path) -> list[os.DirEntry[str]]:
    """The entries of `folder` inside `root` (none when it is absent), after checking it as `check` does."""
    real = check(root, folder)
    try:
        with os.scandir(real) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
