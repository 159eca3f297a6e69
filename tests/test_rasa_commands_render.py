"""The containers and arguments of Rasa commands in the bot's image, as data (no engine)."""

from __future__ import annotations

import pytest
from support import EXAMPLE_BOT, copy_bot

from rasa_gpu.cli._common import split_bot as _split_bot
from rasa_gpu.errors import SettingsError
from rasa_gpu.gpu import GpuRequest
from rasa_gpu.project import BotProject
from rasa_gpu.rasa_commands import RasaTestOptions, rasa_container, rasa_test_args


@pytest.fixture
def project(tmp_path) -> BotProject:
    return BotProject.load(copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None))


def test_nlu_core_and_cross_validation_arguments(project):
    model = project.root / "models" / "m.tar.gz"
    nlu = rasa_test_args(project, RasaTestOptions(kind="nlu"), model, "/bot/out")
    assert nlu == [
        "test", "nlu", "--model", "/bot/models/m.tar.gz", "--nlu", "/bot/data", "--domain", "/bot/domain.yml",
        "--out", "/bot/out",
    ]  # fmt: skip
    core = rasa_test_args(
        project, RasaTestOptions(kind="core", extra=["--fail-on-prediction-errors"]), model, "/bot/o"
    )
    assert core == [
        "test",
        "core",
        "--model",
        "/bot/models/m.tar.gz",
        "--out",
        "/bot/o",
        "--fail-on-prediction-errors",
    ]
    folds = rasa_test_args(project, RasaTestOptions(kind="nlu", folds=2), None, "/bot/o")
    assert folds[:7] == ["test", "nlu", "--cross-validation", "--folds", "2", "--config", "/bot/config.yml"]
    assert "--model" not in folds
    with pytest.raises(SettingsError, match="--cross-validation is for NLU"):
        rasa_test_args(project, RasaTestOptions(kind="core", folds=2), model, "/bot/o")


def test_the_container_runs_as_the_owner_with_the_bot_and_no_license_in_its_command(project):
    spec = rasa_container(
        project,
        "img",
        ["shell"],
        GpuRequest("auto"),
        terminal=True,
        network="rasa-gpu-bot_default",
        secrets={"RASA_PRO_LICENSE": "secret"},
        run_id="r1",
    )
    kwargs = spec.create_kwargs()
    assert kwargs["tty"] is True and kwargs["stdin_open"] is True and kwargs["detach"] is False
    assert kwargs["network"] == "rasa-gpu-bot_default" and kwargs["working_dir"] == "/bot"
    assert kwargs["user"] == f"{project.owner[0]}:{project.owner[1]}"
    assert (
        "secret" not in " ".join(kwargs["command"]) and kwargs["environment"]["RASA_PRO_LICENSE"] == "secret"
    )
    assert kwargs["labels"]["io.rasa-gpu.role"] == "rasa" and "device_requests" in kwargs
    batch = rasa_container(
        project,
        "img",
        ["data", "validate"],
        GpuRequest("off"),
        terminal=False,
        network=None,
        secrets={},
        run_id="r2",
    ).create_kwargs()
    assert batch["tty"] is False and batch["environment"]["RASA_GPU_TIED"] == "1" and "network" not in batch


def test_a_first_word_that_is_no_bot_folder_goes_to_rasa(tmp_path, monkeypatch):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    assert _split_bot(str(bot), ("data", "validate")) == (str(bot), ["data", "validate"])
    assert _split_bot(str(bot), ("--", "data", "validate")) == (str(bot), ["data", "validate"])
    monkeypatch.chdir(bot)
    assert _split_bot("data", ("validate",)) == (".", ["data", "validate"])  # data/ is no bot: Rasa's word
