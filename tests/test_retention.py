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
