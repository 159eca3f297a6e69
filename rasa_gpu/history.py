"""Run history: every training and benchmark run, kept in an SQLite database in the bot's state folder.

The schema is versioned (SQLite's `user_version`) and migrated forward one step at a time, each step in its own
transaction. Recording never blocks a training: a locked, unreadable or too-new database, or a full disk, raises
HistoryError, which `recording()` turns into a warning. Nothing here prints.

A full disk is not a broken history: SQLite rolls the failed write back (its rollback journal holds the old pages), the
connection is closed so that the journal is removed, and the message says the disk is full, never "move it aside".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import RasaGpuError, SettingsError, TrainingFailed
from .project import BotProject

DB_FILE = "history.sqlite"
#: How long to wait for another process's write before giving up (the training goes on regardless).
BUSY_TIMEOUT = 2.0
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: Schema steps. Step N brings a database from user_version N-1 to N. Append, never edit a released step.
MIGRATIONS: tuple[str, ...] = (
    # 1: one row per run, with the fields of the run-history issue.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,                 -- train | benchmark
        started_at TEXT NOT NULL,           -- UTC, ISO 8601
        ended_at TEXT NOT NULL,
        status TEXT NOT NULL,               -- ok | failed | interrupted | error
        exit_code INTEGER,                  -- rasa train's exit code inside the container
        bot_fingerprint TEXT,               -- hash of the training inputs (config, domain, data, components)
        rasa_version TEXT,
        tensorflow TEXT,
        image TEXT,
        image_id TEXT,
        device TEXT,                        -- "GPU: <names>" or "CPU: <model> (<n> cores)"
        cpu_limit REAL,
        wall_seconds REAL,
        components TEXT NOT NULL DEFAULT '{}',  -- JSON: component -> seconds
        model_path TEXT,
        model_sha256 TEXT,
        overrides TEXT NOT NULL DEFAULT '[]'    -- JSON list of --set values
    );
    CREATE INDEX runs_started_at ON runs (started_at);
    """,
    # 2: what a run's row needs to be understood later: its benchmark and phase, the memory limit, the error,
    #    the extra rasa train arguments, and which host and rasa-gpu made it.
    """
    ALTER TABLE runs ADD COLUMN memory_limit TEXT;
    ALTER TABLE runs ADD COLUMN benchmark TEXT;
    ALTER TABLE runs ADD COLUMN phase TEXT;
    ALTER TABLE runs ADD COLUMN error TEXT;
    ALTER TABLE runs ADD COLUMN rasa_args TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN tool_version TEXT;
    """,
    # 3: a training that ran as a queued job: the job (scheduler:id) and how long it waited in the queue.
    """
    ALTER TABLE runs ADD COLUMN job TEXT;
    ALTER TABLE runs ADD COLUMN queued_seconds REAL;
    """,
    # 4: the rest of a developer's day: a test run's figures (kind test), a fine-tuned model's base, pinned runs.
    """
    ALTER TABLE runs ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE runs ADD COLUMN finetuned_from TEXT;
    ALTER TABLE runs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
STATUSES = ("ok", "failed", "interrupted", "error")
KINDS = ("train", "benchmark", "test", "ci")
_JSON_FIELDS = ("components", "overrides", "rasa_args", "metrics")


class HistoryError(RasaGpuError):
    """The run history cannot be read or written (locked, corrupt, from a newer rasa-gpu, or the disk is full)."""


class HistoryDiskFull(HistoryError):
    """No space left to write the run history; the file is as it was before the write."""


#: SQLite's primary result codes (the low byte of an extended code).
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def disk_full(path: Path, reason: str) -> HistoryDiskFull:
    return HistoryDiskFull(
        f"the disk is full ({reason}); the run history {path} was not changed, "
        "and later runs are recorded again once there is free space"
    )


def now() -> str:
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


@dataclass
class Run:
    kind: str
    started_at: str = field(default_factory=now)
    ended_at: str = ""
    status: str = "ok"
    exit_code: int | None = None
    bot_fingerprint: str | None = None
    rasa_version: str | None = None
    tensorflow: str | None = None
    image: str | None = None
    image_id: str | None = None
    device: str | None = None
    cpu_limit: float | None = None
    memory_limit: str | None = None
    wall_seconds: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    model_path: str | None = None
    model_sha256: str | None = None
    overrides: list[str] = field(default_factory=list)
    rasa_args: list[str] = field(default_factory=list)
    benchmark: str | None = None
    phase: str | None = None
    error: str | None = None
    host: str | None = field(default_factory=platform.node)
    tool_version: str | None = __version__
    job: str | None = None  # e.g. slurm:42 when a scheduler ran it
    queued_seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # a test run's figures (evaluation.read_results)
    finetuned_from: str | None = None  # the model a fine-tuned training continued from
    pinned: bool = False  # its model is never removed by keep_models
    id: int | None = None

    def measured(self, device: str, wall_seconds: float, components: dict[str, float]) -> None:
        """What the training container showed: where it trained, how long, and each component's time."""
        self.device, self.wall_seconds, self.components = device, wall_seconds, components

    def finish(self, exc: BaseException | None = None) -> None:
        """Set the end time and, from the exception that ended the run (if any), its status."""
        self.ended_at = now()
        if exc is None:
            self.status = "ok"
        elif isinstance(exc, KeyboardInterrupt):
            self.status, self.error = "interrupted", "interrupted (Ctrl+C or SIGTERM)"
        elif isinstance(exc, TrainingFailed):
            self.status, self.exit_code, self.error = "failed", exc.container_exit_code, exc.message
        elif isinstance(exc, RasaGpuError):
            self.status, self.error = "error", exc.message
        else:
            self.status, self.error = "error", f"{type(exc).__name__}: {exc}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- the database ---------------------------------------------------------------------------------------------------


class History:
    """The run history of one bot. Use as a context manager; every method may raise HistoryError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    @classmethod
    def of(cls, project: BotProject) -> History:
        """The bot's history; refused in one line when its database or journal is a link (SQLite follows links)."""
        for name in (DB_FILE, f"{DB_FILE}-journal", f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
            project.checked(project.state_dir / name)
        return cls(project.state_dir / DB_FILE)

    def __enter__(self) -> History:
        try:
            self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            migrate(self.conn)
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc) from None
        except HistoryError:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _error(self, exc: sqlite3.Error) -> HistoryError:
        text = str(exc)
        if self._disk_is_full(exc):
            return disk_full(self.path, text)
        if "locked" in text or "busy" in text:
            return HistoryError(
                f"the run history {self.path} is locked by another rasa-gpu process (waited {BUSY_TIMEOUT:.0f} s); "
                "try again when it has finished"
            )
        return HistoryError(
            f"the run history {self.path} cannot be read ({text}); move it aside "
            f"(mv {self.path} {self.path}.broken) and rasa-gpu starts a new one"
        )

    def _disk_is_full(self, exc: sqlite3.Error) -> bool:
        """SQLITE_FULL (how SQLite reports ENOSPC), or an I/O error while the disk has no space left."""
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary == _SQLITE_FULL or "database or disk is full" in text:
            return True
        if primary == _SQLITE_IOERR or "disk I/O error" in text:
            try:
                stat = os.statvfs(self.path.parent)
            except OSError:
                return False
            return stat.f_bavail * stat.f_frsize < 64 * 1024
        return False

    def _rollback(self) -> None:
        """End a transaction a failed statement left open, so that SQLite restores the file and drops its journal."""
        if self.conn is not None and self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def _db(self) -> sqlite3.Connection:
        assert self.conn is not None, "use History as a context manager"
        return self.conn

    # ---- writing and reading ------------------------------------------------------------------------------------

    def add(self, run: Run) -> int:
        values = run.to_json()
        values.pop("id")
        for name in _JSON_FIELDS:
            values[name] = json.dumps(values[name])
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        try:
            cursor = self._db().execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", values)
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error(exc) from None
        run.id = int(cursor.lastrowid or 0)
        return run.id

    def pin(self, ref: str, pinned: bool = True) -> Run:
        """Mark a run's model as kept whatever keep_models says (or no longer); returns the run."""
        run = self.get(ref)
        try:
            self._db().execute("UPDATE runs SET pinned = ? WHERE id = ?", (int(pinned), run.id))
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error(exc) from None
        run.pinned = pinned
        return run

    def runs(self, query: RunQuery | None = None) -> list[Run]:
        """Runs matching the query, newest first."""
        query = query or RunQuery()
        where, params = query.where()
        sql = f"SELECT * FROM runs {where} ORDER BY id DESC"
        if query.limit:
            sql += f" LIMIT {int(query.limit)}"
        try:
            rows = self._db().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return [_run_from_row(row) for row in rows]

    def get(self, ref: str) -> Run:
        """One run by id, or `last` for the newest."""
        try:
            if ref == "last":
                row = self._db().execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            elif ref.isdigit():
                row = self._db().execute("SELECT * FROM runs WHERE id = ?", (int(ref),)).fetchone()
            else:
                raise SettingsError(f"'{ref}' is not a run id; give a number from `rasa-gpu runs`, or last")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if row is None:
            raise SettingsError(f"no run {ref} in {self.path}; `rasa-gpu runs` lists the ids")
        return _run_from_row(row)


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version `upto`, one transaction per step. Returns the version found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise HistoryError(
            f"the run history was written by a newer rasa-gpu (schema {found}; this one knows up to "
            f"{SCHEMA_VERSION}); upgrade rasa-gpu to read it"
        )
    for version in range(found + 1, upto + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Another process may have migrated while we waited for the write lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= version:
                conn.execute("COMMIT")
                continue
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
    return found


def _statements(script: str) -> list[str]:
    without_comments = re.sub(r"--[^\n]*", "", script)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def _run_from_row(row: sqlite3.Row) -> Run:
    names = {f.name for f in fields(Run)}
    values = {key: row[key] for key in row.keys() if key in names}  # noqa: SIM118 - a Row iterates values
    for name in _JSON_FIELDS:
        values[name] = json.loads(values.get(name) or ("{}" if name in ("components", "metrics") else "[]"))
    if "pinned" in values:
        values["pinned"] = bool(values["pinned"])
    return Run(**values)


# ---- queries --------------------------------------------------------------------------------------------------------


_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class RunQuery:
    kind: str | None = None
    status: str | None = None
    device: str | None = None  # gpu | cpu
    rasa_version: str | None = None
    since: str | None = None  # a time in TIME_FORMAT
    limit: int | None = 20

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("kind", self.kind),
            ("status", self.status),
            ("rasa_version", self.rasa_version),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.device:
            clauses.append("device LIKE ?")
            params.append(f"{self.device.upper()}:%")
        if self.since:
            clauses.append("started_at >= ?")
            params.append(self.since)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def parse_since(text: str, *, reference: datetime | None = None) -> str:
    """`7d`, `12h`, `30m`, `2w` (ago), or a date/time such as 2026-11-20 or 2026-11-20T08:00 (UTC)."""
    reference = reference or datetime.now(timezone.utc)
    match = _RELATIVE.match(text.strip())
    if match:
        moment = reference - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return moment.strftime(TIME_FORMAT)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(
            f"--since {text}: give a date (2026-11-20), a time (2026-11-20T08:00) or an age (30m, 12h, 7d, 2w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


# ---- recording --------------------------------------------------------------------------------------------------------


def record(project: BotProject, run: Run) -> int:
    """Add one finished run to the bot's history (created on first use, owned by the bot's owner)."""
    history = History.of(project)
    created = not project.state_dir.exists()
    try:
        project.make_owned_dirs(project.state_dir)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            if created:  # no half-made state folder (an empty .gitignore) that the next run would keep
                _remove_empty(project.state_dir / ".gitignore", project.state_dir)
            raise disk_full(history.path, exc.strerror or str(exc)) from None
        raise
    with history:
        run_id = history.add(run)
    project.give_to_owner(history.path)
    return run_id


def _remove_empty(file: Path, folder: Path) -> None:
    with contextlib.suppress(OSError):
        if file.stat().st_size == 0:
            file.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when nothing else is in it


@contextlib.contextmanager
def recording(project: BotProject, run: Run, warn: Callable[[str], None]) -> Iterator[Run]:
    """Record `run` when the block ends, however it ends. The block fills in what it learns; a history that cannot
    be written costs a warning, never the training."""
    try:
        yield run
    except BaseException as exc:
        run.finish(exc)
        _record_or_warn(project, run, warn)
        raise
    run.finish()
    _record_or_warn(project, run, warn)


def _record_or_warn(project: BotProject, run: Run, warn: Callable[[str], None]) -> None:
    try:
        record(project, run)
    except HistoryError as exc:
        warn(f"this run was not added to the run history: {exc.message}")
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            full = disk_full(History.of(project).path, exc.strerror or str(exc))
            warn(f"this run was not added to the run history: {full.message}")
        else:
            warn(f"this run was not added to the run history: {exc.strerror or exc}")
