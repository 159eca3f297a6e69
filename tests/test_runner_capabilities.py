"""Commands ask a runner what it can do, never where its engine is (pure: nothing is contacted)."""

from __future__ import annotations

import re

import pytest
from support import REPO

from rasa_gpu.errors import RemoteUnsupported
from rasa_gpu.runners import ELSEWHERE, HERE, LocalRunner, RemoteRunner, Where, connect


def test_this_machines_engine_can_do_everything_an_engine_elsewhere_nothing_of_it():
    assert LocalRunner().capabilities == HERE
    assert RemoteRunner("ssh://me@gpu-box.invalid").capabilities == ELSEWHERE
    assert all(vars(HERE).values()) and not any(vars(ELSEWHERE).values())


def test_work_that_needs_the_bot_folder_is_refused_elsewhere_before_the_engine_is_reached():
    runner = connect(Where(host="ssh://me@gpu-box.invalid:2222"), lambda event: None)
    for needs in ({"mounts_bot_folder": True}, {"serves_here": True}):
        with pytest.raises(RemoteUnsupported, match="^run it here$"):
            runner.engine_for("run it here", **needs)
    assert runner._engine is None  # type: ignore[attr-defined]  # no ssh was started


def test_no_command_asks_where_the_engine_is():
    """No `runner.local` or `local_engine` outside runners/ (runners have no `local` left at all)."""
    pattern = re.compile(r"\.local\b(?!/)|local_engine")
    found = []
    for path in sorted((REPO / "rasa_gpu").rglob("*.py")):
        relative = path.relative_to(REPO / "rasa_gpu").as_posix()
        if relative.startswith("runners/"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and '".local"' not in line:
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_up_is_refused_on_an_engine_elsewhere_before_it_is_reached():
    from rasa_gpu import services

    runner = connect(Where(host="ssh://me@gpu-box.invalid:2222"), lambda event: None)
    with pytest.raises(RemoteUnsupported, match="^the services run on this machine's Docker engine only"):
        services.require_local(runner)
    assert runner._engine is None  # type: ignore[attr-defined]
