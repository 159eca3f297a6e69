"""The version matrix and how the Rasa version of a bot is chosen (pure: no engine)."""

from pathlib import Path

import pytest

from rasa_gpu.compat import load_matrix
from rasa_gpu.errors import SettingsError, VersionError
from rasa_gpu.settings import Settings, load_settings, resolve_rasa


def test_known_points_of_the_matrix():
    matrix = load_matrix()
    assert matrix.get("3.6.21").tensorflow == "2.12.0"
    assert matrix.get("3.6.21").cuda == "11.8"
    assert matrix.get("2.1.3").tensorflow.startswith("2.3.")
    assert matrix.get("2.1.3").cuda == "10.1"
    assert matrix.default == "3.6.21"


def test_matrix_covers_2_0_to_3_6_and_never_names_a_missing_tag():
    matrix = load_matrix()
    versions = [str(v) for v in matrix.versions("rasa")]
    assert versions[0] == "2.0.0"
    assert versions[-1].startswith("3.6.")
    assert all(not r.gpu_base_image.endswith(":2.6.2-gpu") for r in matrix.releases.values())


def test_unknown_version_lists_what_is_supported():
    with pytest.raises(VersionError) as info:
        load_matrix().get("9.9.9")
    assert "3.6.21" in str(info.value) and "2.0.0" in str(info.value)


def _bot(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_version_order_cli_then_settings_then_requirements_then_newest(tmp_path):
    matrix = load_matrix()
    bot = _bot(tmp_path, **{"requirements.txt": "rasa==3.5.10\nspacy>=3\n"})
    assert resolve_rasa(matrix, bot, load_settings(bot))[0].version == "3.5.10"
    (bot / "rasa-gpu.toml").write_text('rasa_version = "3.4.0"\n')
    assert resolve_rasa(matrix, bot, load_settings(bot))[0].version == "3.4.0"
    assert (
        resolve_rasa(matrix, bot, load_settings(bot).merged(Settings(rasa_version="3.6.0")))[0].version
        == "3.6.0"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_rasa(matrix, empty, Settings())[0].version == "3.6.21"


def test_ranges_and_pyproject_pins(tmp_path):
    matrix = load_matrix()
    bot = _bot(tmp_path, **{"pyproject.toml": '[project]\nname="b"\ndependencies=["rasa>=3.5,<3.6"]\n'})
    assert resolve_rasa(matrix, bot, Settings())[0].version.startswith("3.5.")
    poetry = tmp_path / "poetry"
    poetry.mkdir()
    (poetry / "pyproject.toml").write_text('[tool.poetry.dependencies]\nrasa = "~3.4"\n')
    assert resolve_rasa(matrix, poetry, Settings())[0].version.startswith("3.4.")


def test_tool_table_in_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.rasa-gpu]\nbase-image = "local/base:1"\ngpus = [0, 1]\n')
    settings = load_settings(tmp_path)
    assert settings.base_image == "local/base:1" and settings.gpus == "0,1"


def test_unsupported_requirement_is_an_error(tmp_path):
    bot = _bot(tmp_path, **{"requirements.txt": "rasa==1.10.2\n"})
    with pytest.raises(VersionError, match="supported"):
        resolve_rasa(load_matrix(), bot, Settings())


def test_bad_settings_are_explained(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text('colour = "blue"\n')
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(tmp_path)
    (tmp_path / "rasa-gpu.toml").write_text('gpu = "maybe"\n')
    with pytest.raises(SettingsError, match="gpu must be one of"):
        load_settings(tmp_path)


def test_training_inputs_skip_models_caches_actions_and_venvs(tmp_path):
    from rasa_gpu.project import BotProject

    for name in ("config.yml", "domain.yml", "components.py"):
        (tmp_path / name).write_text("{}\n")
    for folder in ("data", "actions", "venv/lib", ".rasa/cache", "custom"):
        (tmp_path / folder).mkdir(parents=True)
    for path in ("actions/actions.py", "venv/lib/x.py", ".rasa/cache/y.py", "custom/comp.py", "data/nlu.yml"):
        (tmp_path / path).write_text("# x\n")
    names = {p.relative_to(tmp_path).as_posix() for p in BotProject.load(tmp_path).training_inputs()}
    assert names == {"config.yml", "domain.yml", "components.py", "custom/comp.py", "data/nlu.yml"}
