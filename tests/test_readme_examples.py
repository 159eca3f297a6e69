"""The examples of the README and the docs/ pages, run as written in a newcomer's next shell.

After the README's first command (`bash scripts/train-example.sh`, CI's first step), a new shell with no rasa-gpu
variable set and `.venv/bin` on PATH (as the README says: `. .venv/bin/activate`) runs the documented `rasa-gpu ...`
lines from the checkout: the training finds the model unchanged, `doctor` finds the image, and each other example
works. They run on a copy of the checkout's example_bot with its models, cache and history (so the examples that
write, `rasa ... data split nlu`, leave the checkout as it was). Every example line of the README and of docs/ is
either run here or named below with the test that runs it; a new example must be put on one side.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support import EXAMPLE_BOT, REPO, models

README = REPO / "README.md"
#: The pages whose examples are run: the README and the reference under docs/.
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

#: Examples not run here, and why (where they are run instead).
ELSEWHERE = {
    "rasa-gpu test example_bot nlu": "test_day.py::test_test_nlu_writes_the_reports_and_its_figures_in_the_history",
    "rasa-gpu test example_bot nlu --cross-validation --folds 5": "test_day.py::test_cross_validation_with_two_folds_runs",
    "rasa-gpu test example_bot core -- --stories tests": "test_day.py::test_test_core_on_the_bots_test_stories",
    "rasa-gpu shell example_bot": "test_day.py::test_shell_answers_hi_through_a_pseudo_terminal (needs a terminal)",
    "rasa-gpu runs compare 7 9 example_bot": "run ids of someone's history; test_history.py compares real runs",
    "rasa-gpu runs compare 3 7 example_bot": "run ids of someone's history; test_history.py compares real runs",
    "rasa-gpu up example_bot": "test_services.py (starts services on free ports, not the README's 5005/5055)",
    "rasa-gpu ci example_bot": "test_ci.py::test_ci_reports_an_intents_drop_fails_the_rule_and_holds_with_a_loose_one "
    "(three ci runs of example_bot, the first without a baseline: one more here trained the held-out copy again)",
}
#: Examples that need a machine this one is not (an SSH host, a registry with a login): their tests use stand-ins.
NOT_HERE = ("--host ssh://me@gpu-box", "--registry registry.example.com")


def readme_examples(text: str) -> list[str]:
    """Every `rasa-gpu ...` line of the README's console and bash blocks that names example_bot or nothing to fill
    in, without its comment and its `$ ` prompt: usage lines with placeholders ([BOT], ID|last, ...) are not
    examples."""
    found: list[str] = []
    block = ""
    for line in text.splitlines():
        if line.startswith("```"):
            block = "" if block else line.strip().removeprefix("```")
            continue
        if block == "console" and not line.startswith("$ "):
            continue  # a console block's output
        if block not in {"bash", "console"}:
            continue
        # Two spaces end the command: a comment or a usage line's description follows.
        command = re.split(r"\s{2,}| # ", line.removeprefix("$ "))[0].strip()
        if not command.startswith("rasa-gpu ") or re.search(r"[\[\]|<>·]|\.\.\.|…", command):
            continue
        found.append(command)
    return list(dict.fromkeys(found))


def documented_examples() -> list[str]:
    """The examples of every page (readme_examples of each), each once, in the pages' order."""
    found = [e for page in PAGES for e in readme_examples(page.read_text(encoding="utf-8"))]
    return list(dict.fromkeys(found))


def test_the_readme_examples_are_found_and_each_is_run_here_or_named_elsewhere():
    examples = documented_examples()
    assert "rasa-gpu train example_bot" in examples and "rasa-gpu doctor example_bot" in examples
    assert "rasa-gpu versions" in examples  # a usage line without anything to fill in
    assert not any("[BOT]" in e for e in examples)
    stale = [e for e in ELSEWHERE if e not in examples]
    assert not stale, f"named here but no longer in the README: {stale}"


def _new_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`command` in a new bash with only what a login gives (HOME, a PATH with .venv/bin first): no RASA_GPU_*."""
    env = {
        "HOME": os.environ.get("HOME", "/root"),
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_readme_examples_run_as_written_in_a_new_shell(docker_client, tmp_path):
    if not models(EXAMPLE_BOT):
        pytest.skip(
            "example_bot has no model: run the README's first command (bash scripts/train-example.sh)"
        )
    if shutil.which("rasa-gpu", path=str(REPO / ".venv" / "bin")) is None:
        pytest.skip("no .venv/bin/rasa-gpu: the README's first command installs it there")
    # The checkout's example_bot with everything the first command left in it, under the same name.
    shutil.copytree(EXAMPLE_BOT, tmp_path / "example_bot", symlinks=True)
    examples = documented_examples()
    run_here = [e for e in examples if e not in ELSEWHERE and not any(n in e for n in NOT_HERE)]
    assert len(run_here) >= 8, run_here
    outputs: dict[str, str] = {}
    for example in run_here:
        done = _new_shell(example, tmp_path)
        said = done.stdout + done.stderr
        assert done.returncode == 0, f"{example}: exit code {done.returncode}\n{said[-3000:]}"
        assert "Traceback" not in said, f"{example}\n{said[-3000:]}"
        outputs[example] = said
    trained = outputs["rasa-gpu train example_bot"]
    assert "Nothing changed since the newest model" in trained, trained
    assert "not on this machine" not in trained and "cannot be pulled" not in trained, trained
    doctor = outputs["rasa-gpu doctor example_bot"]
    assert re.search(r"^ok\s+training image: rasa-gpu/rasa:\S+ is built", doctor, re.MULTILINE), doctor
    assert (
        tmp_path / "example_bot" / "train_test_split"
    ).is_dir()  # `rasa ... data split nlu` wrote its files
    assert re.search(r"^\s*\d+\s", outputs["rasa-gpu runs example_bot"], re.MULTILINE), outputs[
        "rasa-gpu runs example_bot"
    ]  # the first command's training is in the history
    # Only the copy changed: the checkout's example_bot has no split.
    assert not (EXAMPLE_BOT / "train_test_split").exists()
