"""Rasa Pro (issue 11): the matrix's second line of releases, version resolution from a bot's requirements, and the
license: read from RASA_PRO_LICENSE or a file, handed to the container in its environment and shown nowhere else."""

from __future__ import annotations

import pytest
from conftest import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import license_key
from rasa_gpu.compat import PRO, load_matrix
from rasa_gpu.errors import SettingsError
from rasa_gpu.gpu import GpuRequest
from rasa_gpu.project import BotProject
from rasa_gpu.runners.local import BindWorkspace
from rasa_gpu.settings import Settings, resolve_rasa
from rasa_gpu.train import TrainOptions, training_container

DUMMY = "rasa-gpu-dummy-license-0123456789abcdef"


def _pro_bot(tmp_path, requirement: str):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    (bot / "requirements.txt").write_text(requirement + "\n")
    return bot


def test_the_matrix_has_both_lines_and_rasa_pro_resolves_from_requirements(tmp_path):
    matrix = load_matrix()
    assert matrix.pro_default is not None, "compat.json has no Rasa Pro releases"
    newest = matrix.get(matrix.pro_default)
    assert newest.package == PRO and newest.pro and newest.name == f"Rasa Pro {newest.version}"
    assert matrix.get(matrix.default).package == "rasa"  # a bot that pins nothing keeps Rasa Open Source
    assert str(matrix.versions(PRO)[-1]) == matrix.pro_default

    bot = _pro_bot(tmp_path, f"rasa-pro=={newest.version}")
    release, why = resolve_rasa(matrix, bot, Settings())
    assert release is newest and "rasa-pro==" in why
    (bot / "requirements.txt").write_text("rasa_pro\n")  # any spelling pip accepts, unpinned: the newest Pro
    assert resolve_rasa(matrix, bot, Settings())[0] is newest
    # --rasa-version picks a Pro release by its number: the two lines never share one
    assert resolve_rasa(matrix, bot, Settings(rasa_version=newest.version))[0] is newest


def test_a_pro_image_installs_rasa_pro_with_its_nlu_extra_and_tensorflow():
    from rasa_gpu.images import ImageSpec

    newest = load_matrix().get(load_matrix().pro_default or "")
    text = ImageSpec(newest, "rasa-gpu/base:bookworm", cuda="none").dockerfile()
    assert f'"rasa-pro[nlu]=={newest.version}"' in text and f'"tensorflow=={newest.tensorflow}"' in text
    assert DUMMY not in text and license_key.ENV not in text  # no license in an image


def test_the_license_comes_from_the_environment_or_a_file_and_is_never_shown(tmp_path, monkeypatch):
    newest = load_matrix().get(load_matrix().pro_default or "")
    monkeypatch.delenv(license_key.ENV, raising=False)
    with pytest.raises(SettingsError, match=license_key.ENV):
        license_key.find(newest, None, tmp_path)
    assert license_key.find(load_matrix().get("3.6.21"), None, tmp_path) is None  # Open Source needs none

    (tmp_path / "rasa-pro.license").write_text(DUMMY + "\n")
    found = license_key.find(newest, "rasa-pro.license", tmp_path)
    assert found is not None and found.value == DUMMY and DUMMY not in repr(found) + str(found)
    with pytest.raises(SettingsError, match="license_file missing.license: cannot read it"):
        license_key.find(newest, "missing.license", tmp_path)
    monkeypatch.setenv(license_key.ENV, "from-the-environment")
    assert license_key.find(newest, "rasa-pro.license", tmp_path).value == "from-the-environment"

    # Into the container's environment, nowhere else: not its command line, not a repr that a log could show.
    bot = _pro_bot(tmp_path, f"rasa-pro=={newest.version}")
    options = TrainOptions(gpu=GpuRequest("off"), license=found)
    assert DUMMY not in repr(options)
    workspace = BindWorkspace(BotProject.load(bot), "run1", fresh_cache=False)
    spec = training_container(workspace, "img", ["train"], GpuRequest("off"), secrets=options.secrets())
    assert spec.environment[license_key.ENV] == DUMMY
    assert DUMMY not in " ".join(spec.command) and DUMMY not in repr(spec)
    assert DUMMY not in str(spec.create_kwargs()["command"])


def test_train_on_a_pro_bot_without_a_license_stops_in_one_line_before_any_engine_work(tmp_path):
    newest = load_matrix().pro_default or ""
    bot = _pro_bot(tmp_path, f"rasa-pro=={newest}")
    result = run_cli("train", str(bot), env={license_key.ENV: "", "DOCKER_HOST": "unix:///nonexistent.sock"})
    line = assert_one_line_error(result, 1, license_key.ENV, f"Rasa Pro {newest} needs a license")
    assert "license_file" in line
