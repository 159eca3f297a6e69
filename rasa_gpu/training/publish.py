"""After a training: the model Rasa wrote, verified and moved into models/ in one step; and after a disk-full
training, the partial cache entries it left removed."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tarfile
from contextlib import closing
from pathlib import Path

from .. import safefs
from ..errors import DiskFull, RasaGpuError, TrainingFailed
from ..project import BotProject


def publish_model(out_dir: Path, project: BotProject) -> Path:
    """Verify the archive Rasa wrote, then move it into models/ in one step: models/ never holds a partial file."""
    archives = sorted(out_dir.glob("*.tar.gz"))
    if len(archives) != 1:
        raise TrainingFailed(
            f"rasa train finished but wrote {len(archives)} model archives instead of one", exit_code=0
        )
    archive = archives[0]
    _verify_archive(archive)
    models_dir = project.make_owned_dirs(project.models_dir)
    target = project.checked(models_dir / archive.name)
    try:
        os.replace(archive, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise _disk_error(exc, target) from None
        # models/ is on another filesystem: copy beside the target, then rename within models/. A copy cut short by
        # SIGKILL is removed by the next training of this bot (_remove_stale_folders).
        partial = models_dir / f".{archive.name}.partial"
        safefs.remove(project.root, partial)
        try:
            with archive.open("rb") as src, open(safefs.create_exclusive(project.root, partial), "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(partial, target)
        except OSError as copy_exc:
            partial.unlink(missing_ok=True)
            raise _disk_error(copy_exc, target) from None
        except BaseException:  # Ctrl+C during the copy: no partial file stays in models/
            partial.unlink(missing_ok=True)
            raise
    return target


def _disk_error(exc: OSError, target: Path) -> RasaGpuError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"disk full while writing {target}; free some space on {target.parent} and train again "
            "(existing models are untouched)"
        )
    return RasaGpuError(f"could not write {target}: {exc.strerror}")


def _verify_archive(archive: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = {member.name.lstrip("./").lstrip("/") for member in tar}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TrainingFailed(f"the model Rasa wrote is not a readable archive ({exc})", exit_code=0) from None
    if "metadata.json" not in names:
        raise TrainingFailed("the model Rasa wrote has no metadata.json; it would not load", exit_code=0)


def cache_entries(project: BotProject) -> set[str]:
    try:
        return {entry.name for entry in project.cache_dir.iterdir()}
    except OSError:
        return set()


def remove_partial_cache(project: BotProject, before: set[str]) -> int:
    """After a disk-full training: remove the cache folders this run added that Rasa's cache database does not
    list (Rasa adds the row only after the folder is complete, so these are partial copies). Returns how many."""
    new = cache_entries(project) - before
    if not new:
        return 0
    listed: set[str] = set()
    database = project.cache_dir / "cache.db"
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT result_location FROM cached_results").fetchall()
        listed = {Path(str(location)).name for (location,) in rows if location}
    except sqlite3.Error:
        pass  # no database yet, or not Rasa 3's layout: nothing new is complete
    removed = 0
    for name in sorted(new - listed - {database.name, f"{database.name}-journal"}):
        path = project.cache_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
