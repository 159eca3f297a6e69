"""A full disk is not a broken run history: recording on a really full filesystem costs one warning that says the
disk is full, leaves the history file exactly as it was (no partial write, no leftover journal, nothing moved), and
the history is read and written again once there is space."""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rasa_gpu import history
from rasa_gpu.project import BotProject

#: What a full-disk message must never say: that the healthy file is broken, or that it should be moved.
CORRUPT_WORDS = ("move it aside", "cannot be read", "corrupt", ".broken", "mv ")


def minimal_bot(root: Path) -> BotProject:
    (root / "data").mkdir(parents=True)
    (root / "config.yml").write_text("recipe: default.v1\nlanguage: en\npipeline: []\npolicies: []\n")
    (root / "domain.yml").write_text('version: "3.1"\nintents: [greet]\n')
    (root / "data" / "nlu.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n')
    return BotProject.load(root)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own, so that the disk can really be filled; always unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("filling a real filesystem needs root to mount a small tmpfs (run the tests as root)")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (no CAP_SYS_ADMIN?): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem says ENOSPC; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name) and p != db)


def record_with_warnings(project: BotProject, **fields) -> list[str]:
    warnings: list[str] = []
    with history.recording(project, history.Run(kind="train", **fields), warnings.append) as run:
        run.wall_seconds = 1.0
    return warnings


def assert_disk_full_warning(warnings: list[str], db: Path) -> None:
    assert len(warnings) == 1, warnings
    [warning] = warnings
    assert "\n" not in warning
    assert warning.startswith("this run was not added to the run history: the disk is full"), warning
    assert str(db) in warning and "was not changed" in warning
    for words in CORRUPT_WORDS:
        assert words not in warning, warning


def test_a_full_disk_costs_a_warning_and_leaves_the_history_intact(small_disk):
    project = minimal_bot(small_disk / "bot")
    history.record(project, history.Run(kind="train", device="CPU: a", wall_seconds=10.0))
    history.record(project, history.Run(kind="benchmark", device="GPU: b", wall_seconds=2.0))
    db = project.state_dir / history.DB_FILE
    before = sha256(db)
    filler = fill(small_disk)

    warnings = record_with_warnings(project, device="GPU: c")

    assert_disk_full_warning(warnings, db)
    assert sha256(db) == before  # no partial write, not moved, not deleted
    assert leftovers(db) == []  # SQLite rolled back and removed its journal; no -wal either
    with history.History.of(project) as store:  # still readable while the disk is full
        assert [r.device for r in store.runs()] == ["GPU: b", "CPU: a"]

    filler.unlink()
    with history.History.of(project) as store:
        assert [(r.kind, r.wall_seconds) for r in store.runs()] == [("benchmark", 2.0), ("train", 10.0)]
    assert record_with_warnings(project, device="GPU: d") == []
    with history.History.of(project) as store:
        assert [r.device for r in store.runs()] == ["GPU: d", "GPU: b", "CPU: a"]
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_disk_before_the_first_run_is_a_disk_full_warning_too(small_disk):
    project = minimal_bot(small_disk / "bot")
    filler = fill(small_disk)
    db = project.state_dir / history.DB_FILE

    assert_disk_full_warning(record_with_warnings(project), db)
    assert not (project.state_dir / f"{history.DB_FILE}-journal").exists()

    filler.unlink()
    assert record_with_warnings(project, device="CPU: a") == []
    assert "*" in (project.state_dir / ".gitignore").read_text()  # not an empty one left from the full disk
    with history.History.of(project) as store:
        assert [r.device for r in store.runs()] == ["CPU: a"]


# ---- without a real full disk ---------------------------------------------------------------------------------------


def test_sqlites_disk_full_error_is_never_called_corrupt(tmp_path):
    store = history.History(tmp_path / history.DB_FILE)
    error = store._error(sqlite3.OperationalError("database or disk is full"))
    assert isinstance(error, history.HistoryDiskFull) and isinstance(error, history.HistoryError)
    assert error.message.startswith("the disk is full (database or disk is full)")
    assert not any(words in error.message for words in CORRUPT_WORDS)
    # A real corrupt file is still called one.
    assert "move it aside" in store._error(sqlite3.DatabaseError("file is not a database")).message


def test_an_io_error_on_a_disk_without_space_is_disk_full(tmp_path, monkeypatch):
    store = history.History(tmp_path / history.DB_FILE)
    full = os.statvfs_result((4096, 4096, 100, 0, 0, 10, 0, 0, 0, 255))
    monkeypatch.setattr(history.os, "statvfs", lambda path: full)
    assert isinstance(store._error(sqlite3.OperationalError("disk I/O error")), history.HistoryDiskFull)


def test_no_space_for_the_state_folder_is_disk_full(tmp_path, monkeypatch):
    project = minimal_bot(tmp_path / "bot")

    def no_space(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(BotProject, "make_owned_dirs", no_space)
    assert_disk_full_warning(record_with_warnings(project), project.state_dir / history.DB_FILE)
