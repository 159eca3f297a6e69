"""Trainings that fail, for real: the one-line error names Rasa's cause as Rasa printed it (verbatim: no emoji, no
markup, no colour codes when not a terminal), a full disk says "disk full" and keeps the old model and the history,
and a `models` file is found before a training starts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support import BOT_UID, EXAMPLE_BOT, assert_one_line_error, copy_bot, models, run_cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: A component name full of what Rich would turn into an emoji (":100:") or into style ("[bold]").
ODD_NAME = "Custom:100:[bold]Thing[/bold]"


def set_config(bot: Path, old: str, new: str) -> None:
    config = bot / "config.yml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))


def test_an_unknown_component_is_named_verbatim_in_the_first_line(bot_copy):
    set_config(bot_copy, "  - name: EntitySynonymMapper", f'  - name: "{ODD_NAME}"')
    before = models(bot_copy)
    result = run_cli("train", str(bot_copy), "--gpu", "off")
    line = assert_one_line_error(result, 1, "rasa train failed inside the container: ", ODD_NAME)
    assert "InvalidConfigException" in line
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.output
    assert "\x1b[" not in result.output  # Rasa colours its errors; not on a pipe
    assert models(bot_copy) == before


def test_a_bad_value_in_config_names_the_exception(bot_copy):
    set_config(bot_copy, "epochs: 50", "epochs: abc")
    result = run_cli("train", str(bot_copy), "--gpu", "off")
    line = assert_one_line_error(result, 1, "rasa train failed inside the container: ")
    cause = line.split("rasa train failed inside the container: ", 1)[1]
    assert re.match(r"[\w.]*(Error|Exception)\b.*: ", cause), (
        line
    )  # the exception's own line, not only a code


def test_models_as_a_file_is_found_before_training(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    (bot / "models").write_text("not a folder\n")
    result = run_cli("train", str(bot), "--gpu", "off")
    assert_one_line_error(result, 1, "models is a file", "rename or remove")
    assert "training in" not in result.output  # nothing was trained first
    assert (bot / "models").read_text() == "not a folder\n"


# ---- a full disk ---------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 160 MiB (root only), unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the filesystem until `leave` bytes are free."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free - leave
    with filler.open("wb") as out:
        chunk = b"\0" * (1 << 20)
        while free > 0:
            out.write(chunk[: min(len(chunk), free)])
            free -= len(chunk)
    return filler


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_disk_full_during_the_cache_write_says_so_and_keeps_model_and_history(trained_bot, small_disk):
    bot = copy_bot(trained_bot[0], small_disk / "bot")
    os.chown(small_disk, BOT_UID, BOT_UID)
    [model] = models(bot)
    model_sha = sha256(model)
    runs_before = run_cli("runs", str(bot), "--json")
    assert runs_before.returncode == 0, runs_before.output
    filler = fill(small_disk, leave=512 * 1024)
    cache_before = {p.name for p in (bot / ".rasa" / "cache").iterdir()}
    # A changed DIETClassifier misses the cache: Rasa trains it and writes its output into .rasa/cache, which fails.
    result = run_cli("train", str(bot), "--gpu", "off", "--set", "DIETClassifier.epochs=2")
    line = assert_one_line_error(result, None, "disk full")
    assert "corrupt" not in result.output and "move it aside" not in result.output
    assert models(bot) == [model] and sha256(model) == model_sha
    assert not list((bot / ".rasa-gpu" / "tmp").glob("*"))  # this run's temporary output is gone
    new_in_cache = {p.name for p in (bot / ".rasa" / "cache").iterdir()} - cache_before
    assert not [name for name in new_in_cache if (bot / ".rasa" / "cache" / name).is_dir()], line
    filler.unlink()
    runs_after = run_cli("runs", str(bot), "--json")
    assert runs_after.returncode == 0, runs_after.output
    earlier = {(run["id"], run["started_at"], run["status"]) for run in json.loads(runs_before.stdout)}
    assert earlier and earlier <= {
        (run["id"], run["started_at"], run["status"]) for run in json.loads(runs_after.stdout)
    }


# ---- one GPU policy --------------------------------------------------------------------------------------------------


def test_up_gpu_on_without_a_runtime_says_what_up_can_do(bot_copy):
    result = run_cli("up", str(bot_copy), "--gpu", "on")
    line = assert_one_line_error(
        result, 4, "no NVIDIA runtime", "run the Rasa server on the CPU with --gpu off"
    )
    assert "train on the CPU" not in line


def test_doctor_checks_the_gpus_from_the_settings(tmp_path):
    from rasa_gpu import doctor
    from rasa_gpu.settings import Settings

    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    (bot / "rasa-gpu.toml").write_text('gpus = "1"\n')
    context, check = doctor.context_for(str(bot), Settings(), "gpu")
    assert check.status == "ok", check
    assert context.probe_request.device_ids == ("1",)
    context, _ = doctor.context_for(str(bot), Settings(gpu="on", gpus="0,2"), "gpu")  # the command line wins
    assert context.gpu_mode == "on" and context.probe_request.device_ids == ("0", "2")
