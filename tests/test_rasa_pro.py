"""Rasa Pro (issue 11): the matrix's second line of releases, version resolution from a bot's requirements, and the
license: read from RASA_PRO_LICENSE or a file, handed to the container in its environment and shown nowhere else."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from support import (
    EXAMPLE_BOT,
    CliResult,
    assert_one_line_error,
    copy_bot,
    leftover_containers,
    run_cli,
    start_cli,
)

from rasa_gpu import license_key
from rasa_gpu.compat import PRO, load_matrix
from rasa_gpu.errors import SettingsError
from rasa_gpu.gpu import GpuRequest
from rasa_gpu.project import BotProject
from rasa_gpu.runners.local import BindWorkspace
from rasa_gpu.settings import Settings, resolve_rasa
from rasa_gpu.training import TrainOptions, training_container

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
    from rasa_gpu.images import PRO_NLU_SCRIPT, ImageSpec

    newest = load_matrix().get(load_matrix().pro_default or "")
    spec = ImageSpec(newest, "rasa-gpu/base:bookworm", cuda="none")
    text = spec.dockerfile()
    pins = f'"rasa-pro=={newest.version}" "tensorflow=={newest.tensorflow}"'
    assert f"pip install {pins}" in text  # Rasa Pro first, then its nlu extra read from its own metadata
    assert (
        "rasa-gpu-pro-nlu.py > /tmp/rasa-gpu/nlu.txt" in text and f"-r /tmp/rasa-gpu/nlu.txt {pins}" in text
    )
    assert PRO_NLU_SCRIPT in spec.context_files()
    assert DUMMY not in text and license_key.ENV not in text  # no license in an image
    oss = ImageSpec(load_matrix().get("3.6.21"), "rasa-gpu/base:bullseye", cuda="none")
    assert PRO_NLU_SCRIPT not in oss.dockerfile() and PRO_NLU_SCRIPT not in oss.context_files()


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


def test_the_compose_file_names_the_license_and_never_holds_it(tmp_path):
    from rasa_gpu import services

    plan = services.ServicePlan(
        project_name="rasa-gpu-bot-0",
        user="1000:1000",
        rasa_image="rasa-gpu/bot:x",
        actions_image=None,
        notebook_image="rasa-gpu/notebook:x",
        license=True,
    )
    text = services.render_compose(plan)
    data = yaml.safe_load(text)
    for name in ("rasa", "jupyter"):  # the two that run Rasa; compose fills the value in from its environment
        assert name in data["services"] and data["services"][name]["environment"][license_key.ENV] is None
    assert (
        f"{license_key.ENV}:\n" in text
    )  # `NAME:` with no value, which compose reads as "from my environment"
    without = yaml.safe_load(services.render_compose(replace(plan, license=False)))
    assert license_key.ENV not in without["services"]["rasa"]["environment"]


@pytest.mark.docker
def test_compose_hands_the_license_to_the_container_from_its_environment_only(
    docker_client, tmp_path, monkeypatch
):
    """The real compose, the real engine: the value reaches the Rasa container although the file holds only the
    name, and compose's command line does not have it either."""
    from rasa_gpu import services
    from rasa_gpu.engine import Compose

    base = os.environ.get("RASA_GPU_BASE_IMAGE") or "rasa-gpu/base:bullseye"
    try:
        docker_client.images.get(base)
    except Exception:  # noqa: BLE001 - any lookup failure: no such image here
        pytest.skip(f"no base image {base} here (scripts/setup.sh builds it)")
    monkeypatch.delenv(license_key.ENV, raising=False)
    bot = _pro_bot(tmp_path, "rasa-pro")
    project = BotProject.load(bot)
    plan = services.ServicePlan(
        project_name=services.project_name(project),
        user="{}:{}".format(*project.owner),
        rasa_image=base,
        actions_image=None,
        notebook_image=base,
        license=True,
    )
    compose_file, _ = services.write_compose(project, services.render_compose(plan))
    services.write_runtime_files(project, None)
    compose = Compose.find()
    lines = compose.run(
        plan.project_name,
        services.compose_files(project),
        ["run", "--rm", "--no-deps", "--entrypoint", "printenv", "rasa", license_key.ENV],
        secrets={license_key.ENV: DUMMY},
    )
    assert DUMMY in lines  # printenv inside the container printed it
    assert DUMMY not in compose_file.read_text()
    for path in bot.rglob("*"):
        assert not path.is_file() or DUMMY not in path.read_text(errors="replace"), path
    assert not docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={plan.project_name}"}
    )


# ---- the newest Rasa Pro, built and run for real ---------------------------------------------------------------------

BOOKWORM = "rasa-gpu/base:bookworm"  # Python 3.11: the newest Rasa Pro needs 3.11 or 3.12


@pytest.fixture(scope="module")
def pro_image(docker_client, tmp_path_factory) -> tuple[str, Path]:
    """The newest Rasa Pro's image, built by the tool on the registry-less bookworm base (without the CUDA wheels:
    tests/test_cuda_images.py checks those; this saves 1.7 GB and minutes), and a bot that asks for it."""
    try:
        docker_client.images.get(BOOKWORM)
    except Exception:  # noqa: BLE001 - not there: build it as a user would (about a minute)
        result = run_cli("base-image", "--suite", "bookworm")
        assert result.returncode == 0, result.output
    newest = load_matrix().pro_default or ""
    bot = _pro_bot(tmp_path_factory.mktemp("pro"), f"rasa-pro=={newest}")
    result = run_cli("build", str(bot), "--base-image", BOOKWORM, "--cuda", "none", timeout=1800)
    assert result.returncode == 0, result.output
    tag = result.stdout.split()[0]
    assert tag.startswith(f"rasa-gpu/rasa:{newest}-tf") and "-cpu-" in tag, tag
    return tag, bot


@pytest.mark.docker
@pytest.mark.slow
def test_a_dummy_license_reaches_rasa_pro_and_is_shown_nowhere(pro_image, docker_client):
    """No real license here: Rasa Pro rejects the dummy, and rasa-gpu's one line says what Rasa said. The value is in
    no command line (`ps`, sampled all through the run), no image layer, no output and no file of the bot."""
    tag, bot = pro_image
    proc = start_cli(
        "train",
        str(bot),
        "--base-image",
        BOOKWORM,
        "--cuda",
        "none",
        "--gpu",
        "off",
        env={license_key.ENV: DUMMY},
    )
    seen: list[str] = []
    while proc.poll() is None:
        listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
        seen += [line for line in listing.splitlines() if DUMMY in line and "ps -eo" not in line]
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    result = CliResult(proc.returncode, stdout, stderr)
    assert_one_line_error(
        result,
        1,
        "rasa train failed inside the container: Failed to validate Rasa license",
        "LicenseEncodingException",
    )
    assert seen == [], seen
    assert DUMMY not in result.output
    image = docker_client.images.get(tag)
    assert DUMMY not in json.dumps(image.attrs) and DUMMY not in json.dumps(image.history())
    for path in bot.rglob("*"):  # the run history, rasa-gpu's state, Rasa's cache
        assert not path.is_file() or DUMMY.encode() not in path.read_bytes(), path
    assert leftover_containers(docker_client, bot) == []


@pytest.mark.docker
@pytest.mark.slow
def test_the_newest_rasa_pro_image_holds_rasa_pro_and_its_tensorflow(pro_image, docker_client):
    """The image holds the newest Rasa Pro and its TensorFlow (what DIET, TED and ResponseSelector train with)."""
    tag, _ = pro_image
    newest = load_matrix().get(load_matrix().pro_default or "")
    probe = "import rasa, tensorflow, tf_keras; print(rasa.__version__, tensorflow.__version__)"
    out = docker_client.containers.run(tag, entrypoint=["python3", "-c", probe], remove=True).decode()
    assert out.split()[-2:] == [newest.version, newest.tensorflow], out
