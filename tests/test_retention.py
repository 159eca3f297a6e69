"""keep_models: the newest N stay, and the served and pinned ones always."""

from __future__ import annotations

from pathlib import Path

from rasa_gpu.retention import ModelFile, newest_first, to_remove


def _models(n: int, **flags: set[int]) -> list[ModelFile]:
    return [
        ModelFile(
            Path(f"models/m{i}.tar.gz"),
            size=1000,
            modified=1000.0 + i,
            served=i in flags.get("served", set()),
            pinned=i in flags.get("pinned", set()),
        )
        for i in range(n)
    ]


def _names(models: list[ModelFile]) -> list[str]:
    return [m.path.name for m in models]


def test_five_models_keep_three_the_newest():
    assert _names(to_remove(_models(5), 3)) == ["m1.tar.gz", "m0.tar.gz"]


def test_the_served_and_the_pinned_model_stay_beyond_the_count():
    assert _names(to_remove(_models(5, served={0}, pinned={1}), 3)) == []
    assert _names(to_remove(_models(6, served={0}), 2)) == ["m3.tar.gz", "m2.tar.gz", "m1.tar.gz"]


def test_the_newest_always_stays_and_order_is_by_time_not_name():
    assert _names(to_remove(_models(3), 0)) == ["m1.tar.gz", "m0.tar.gz"]
    late = ModelFile(Path("models/a.tar.gz"), 1, modified=5000.0)
    assert _names(newest_first([*_models(2), late]))[0] == "a.tar.gz"


def test_scan_reads_runs_and_pins_from_the_history_and_tidy_removes_the_rest(tmp_path):
    import os

    from support import EXAMPLE_BOT, copy_bot

    from rasa_gpu import history, retention
    from rasa_gpu.project import BotProject

    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    (bot / "models").mkdir()
    project = BotProject.load(bot)
    for i in range(5):
        path = bot / "models" / f"m{i}.tar.gz"
        path.write_bytes(b"x" * (i + 1))
        os.utime(path, (1000 + i, 1000 + i))
        history.record(project, history.Run(kind="train", model_path=f"models/m{i}.tar.gz"))
    with history.History.of(project) as store:
        store.pin("1")  # m0
    found = retention.scan(project, served="m1.tar.gz")
    assert [(m.path.name, m.run_id, m.pinned, m.served) for m in found][-2:] == [
        ("m1.tar.gz", 2, False, True),
        ("m0.tar.gz", 1, True, False),
    ]
    removed = retention.tidy(project, 2, served="m1.tar.gz")
    assert [p.name for p in removed] == ["m2.tar.gz"]
    assert sorted(p.name for p in (bot / "models").iterdir()) == [
        "m0.tar.gz",
        "m1.tar.gz",
        "m3.tar.gz",
        "m4.tar.gz",
    ]
