"""Run history: the schema migrates with its rows intact, queries filter, a locked or corrupt database is a clear
error that never blocks a training, and real trainings record what they did."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support import BOT_UID, EXAMPLE_BOT, copy_bot, models, run_cli

from rasa_gpu import comparison, history
from rasa_gpu.errors import SettingsError, TrainingFailed
from rasa_gpu.project import BotProject


@pytest.fixture
def project(tmp_path) -> BotProject:
    return BotProject.load(copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None))


def db_path(project: BotProject) -> Path:
    return project.state_dir / history.DB_FILE


# ---- schema -----------------------------------------------------------------------------------------------------


def test_a_version_1_database_is_migrated_with_its_runs_intact(project):
    project.state_dir.mkdir(exist_ok=True)
    conn = sqlite3.connect(db_path(project), isolation_level=None)
    history.migrate(conn, upto=1)
    conn.execute(
        "INSERT INTO runs (kind, started_at, ended_at, status, device, wall_seconds, components, overrides) "
        "VALUES ('train', '2026-01-01T10:00:00Z', '2026-01-01T10:01:30Z', 'ok', 'CPU: x (2 cores)', 90.0, "
        "'{\"DIETClassifier\": 40.5}', '[\"DIETClassifier.epochs=5\"]')"
    )
    conn.close()

    with history.History.of(project) as store:
        old = store.get("1")
        version = store._db().execute("PRAGMA user_version").fetchone()[0]
        new_id = store.add(history.Run(kind="benchmark", phase="cpu run 1/1", memory_limit="8g"))
    assert version == history.SCHEMA_VERSION == 4
    assert (old.kind, old.status, old.wall_seconds) == ("train", "ok", 90.0)
    assert old.components == {"DIETClassifier": 40.5} and old.overrides == ["DIETClassifier.epochs=5"]
    assert old.phase is None and old.rasa_args == []  # columns of step 2 exist, empty for the old row
    assert old.job is None and old.queued_seconds is None  # and those of step 3
    assert old.metrics == {} and old.finetuned_from is None and old.pinned is False  # and of step 4
    with history.History.of(project) as store:
        assert store.get(str(new_id)).memory_limit == "8g" and len(store.runs()) == 2


def test_a_database_from_a_newer_rasa_gpu_is_refused(project):
    project.state_dir.mkdir(exist_ok=True)
    conn = sqlite3.connect(db_path(project))
    conn.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(history.HistoryError, match="newer rasa-gpu"), history.History.of(project):
        pass


def test_a_corrupt_database_is_a_clear_error_and_is_left_as_it_was(project):
    project.state_dir.mkdir(exist_ok=True)
    garbage = b"this is not an SQLite database\n" * 200
    db_path(project).write_bytes(garbage)
    with pytest.raises(history.HistoryError, match=r"cannot be read .*mv .*history.sqlite.broken"):
        history.record(project, history.Run(kind="train"))
    assert db_path(project).read_bytes() == garbage


def test_a_locked_database_gives_up_after_the_busy_timeout(project):
    history.record(project, history.Run(kind="train"))
    holder = sqlite3.connect(db_path(project), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(history.HistoryError, match="locked"):
            history.record(project, history.Run(kind="train"))
        assert time.monotonic() - started < history.BUSY_TIMEOUT + 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_recording_turns_history_failures_into_warnings_and_keeps_the_run_going(project):
    project.state_dir.mkdir(exist_ok=True)
    db_path(project).write_bytes(b"garbage" * 100)
    warnings: list[str] = []
    with history.recording(project, history.Run(kind="train"), warnings.append) as run:
        run.wall_seconds = 1.0
    assert len(warnings) == 1 and "not added to the run history" in warnings[0]


def test_recording_keeps_the_exception_and_records_how_the_run_ended(project):
    with pytest.raises(KeyboardInterrupt), history.recording(project, history.Run(kind="train"), print):
        raise KeyboardInterrupt
    failure = TrainingFailed("rasa train failed inside the container (exit code 2)", exit_code=2)
    with pytest.raises(TrainingFailed), history.recording(project, history.Run(kind="train"), print):
        raise failure
    with history.History.of(project) as store:
        failed, interrupted = store.runs()
    assert (interrupted.status, failed.status, failed.exit_code) == ("interrupted", "failed", 2)
    assert failed.error == failure.message and failed.ended_at >= failed.started_at


# ---- queries and comparisons --------------------------------------------------------------------------------------


def test_queries_filter_by_kind_status_device_rasa_and_time(project):
    rows = [
        history.Run(kind="train", started_at="2026-11-01T10:00:00Z", device="CPU: x", rasa_version="3.6.21"),
        history.Run(kind="train", started_at="2026-11-20T10:00:00Z", device="GPU: Tesla T4", status="failed"),
        history.Run(kind="benchmark", started_at="2026-11-21T10:00:00Z", device="GPU: Tesla T4"),
    ]
    project.state_dir.mkdir()
    with history.History.of(project) as store:
        for run in rows:
            store.add(run)

        def ids(**query):
            return [r.id for r in store.runs(history.RunQuery(**query))]

        assert ids() == [3, 2, 1]
        assert ids(kind="train") == [2, 1]
        assert ids(status="failed") == [2]
        assert ids(device="gpu") == [3, 2] and ids(device="cpu") == [1]
        assert ids(rasa_version="3.6.21") == [1]
        assert ids(since="2026-11-20T00:00:00Z") == [3, 2]
        assert ids(limit=1) == [3]
        assert store.get("last").id == 3
        with pytest.raises(SettingsError, match="no run 9"):
            store.get("9")
        with pytest.raises(SettingsError, match="not a run id"):
            store.get("abc")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", "2026-11-15T12:00:00Z"),
        ("12h", "2026-11-22T00:00:00Z"),
        ("30m", "2026-11-22T11:30:00Z"),
        ("2w", "2026-11-08T12:00:00Z"),
        ("2026-11-20", "2026-11-20T00:00:00Z"),
        ("2026-11-20T08:30", "2026-11-20T08:30:00Z"),
        ("2026-11-20T08:30:00+02:00", "2026-11-20T06:30:00Z"),
    ],
)
def test_since_takes_ages_and_dates(text, expected):
    reference = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    assert history.parse_since(text, reference=reference) == expected


def test_since_rejects_other_text():
    with pytest.raises(SettingsError, match="--since yesterday: give a date"):
        history.parse_since("yesterday")


def test_compare_lists_what_differs_and_the_time_ratios():
    a = history.Run(
        kind="train", device="CPU: x", wall_seconds=90.0, components={"DIETClassifier": 40.0}, id=1
    )
    b = history.Run(
        kind="train",
        device="GPU: T4",
        wall_seconds=30.0,
        components={"DIETClassifier": 10.0, "TEDPolicy": 5.0},
        id=2,
        started_at=a.started_at,
    )
    c = comparison.compare(a, b)
    assert [d[0] for d in c.differences] == ["device"]
    assert "kind" in c.same and "rasa_version" in c.same
    assert [(t.name, t.ratio) for t in c.times] == [
        ("total", 3.0),
        ("DIETClassifier", 4.0),
        ("TEDPolicy", None),
    ]
    assert c.to_json()["times"][0] == {"name": "total", "a": 90.0, "b": 30.0, "a_over_b": 3.0}


# ---- with real trainings -------------------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_a_real_training_is_recorded(trained_bot, tmp_path, docker_client):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    result = run_cli("runs", str(bot), "--json")
    assert result.returncode == 0, result.output
    [row] = json.loads(result.stdout)
    [model] = models(bot)
    assert row["kind"] == "train" and row["status"] == "ok" and row["exit_code"] is None
    assert row["model_path"] == f"models/{model.name}" and row["model_sha256"] == history.file_sha256(model)
    assert (row["rasa_version"], row["tensorflow"]) == ("3.6.21", "2.12.0")
    assert row["image_id"] == docker_client.images.get(row["image"]).id
    assert row["device"].startswith("CPU: ") and row["cpu_limit"] is None
    assert row["bot_fingerprint"] == BotProject.load(bot).inputs_digest()
    assert {"DIETClassifier", "TEDPolicy"} <= set(row["components"])
    assert 0 < sum(row["components"].values()) < row["wall_seconds"]
    assert row["started_at"] < row["ended_at"]
    if os.geteuid() == 0:  # written by root, yet the bot owner's
        assert (bot / ".rasa-gpu" / "history.sqlite").stat().st_uid == BOT_UID

    shown = run_cli("runs", "show", "last", str(bot))
    assert shown.returncode == 0 and model.name in shown.stdout and "DIETClassifier" in shown.stdout
    listed = run_cli("runs", "list", str(bot), "--device", "gpu", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_corrupt_or_locked_history_never_blocks_a_training(trained_bot, tmp_path):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    db = bot / ".rasa-gpu" / "history.sqlite"
    db.rename(bot / ".rasa-gpu" / "history.good")
    garbage = b"not a database\n" * 100
    db.write_bytes(garbage)
    before = models(bot)

    result = run_cli("train", str(bot), "--force", "--gpu", "off")
    assert result.returncode == 0, result.output
    assert "this run was not added to the run history" in result.stderr and "cannot be read" in result.stderr
    assert len(models(bot)) == len(before) + 1 and db.read_bytes() == garbage
    listed = run_cli("runs", str(bot))
    assert listed.returncode == 1 and "Traceback" not in listed.output
    [line] = [x for x in listed.stderr.splitlines() if x.startswith("error:")]
    assert "cannot be read" in line and "mv " in line

    (bot / ".rasa-gpu" / "history.good").replace(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run_cli("train", str(bot), "--force", "--gpu", "off")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 0, result.output
    assert "not added to the run history" in result.stderr and "locked" in result.stderr
    assert len(models(bot)) == len(before) + 2
    with history.History(db) as store:
        assert len(store.runs()) == 1  # the fixture's training; neither of these two could be added


def test_test_runs_keep_their_figures_and_compare_shows_the_difference(project):
    a = history.Run(kind="test", metrics={"intent_f1": 0.80, "entity_f1": 0.5})
    b = history.Run(kind="test", metrics={"intent_f1": 0.86, "story_accuracy": 1.0})
    project.state_dir.mkdir(exist_ok=True)
    with history.History.of(project) as store:
        store.add(a), store.add(b)
        read_a, read_b = store.get(str(a.id)), store.get(str(b.id))
    assert read_a.metrics == {"intent_f1": 0.80, "entity_f1": 0.5}
    figures = {row["name"]: row for row in comparison.compare(read_a, read_b).to_json()["figures"]}
    assert figures["intent_f1"]["b_minus_a"] == pytest.approx(0.06)
    assert figures["entity_f1"]["b"] is None and figures["story_accuracy"]["a"] is None


def test_a_pinned_run_stays_pinned(project):
    history.record(project, history.Run(kind="train", model_path="models/a.tar.gz"))
    with history.History.of(project) as store:
        assert store.pin("last").pinned is True
    with history.History.of(project) as store:
        assert store.get("last").pinned is True
        store.pin("1", pinned=False)
        assert store.get("1").pinned is False
