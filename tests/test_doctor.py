"""`rasa-gpu doctor`: the driver-versus-CUDA verdict on a table of cases, the other pure verdicts, and the whole
doctor against real engines: the plain one (no NVIDIA runtime), the one with a stand-in nvidia-container-runtime-hook
(GPU requests granted, but no GPU arrives), none at all, and a broken bot."""

from __future__ import annotations

import json

import pytest
from support import EXAMPLE_BOT, copy_bot, run_cli

import docker
from rasa_gpu import doctor
from rasa_gpu.compat import load_matrix

MATRIX = load_matrix()


# Rasa 3.6.21: TensorFlow 2.12.0, CUDA 11.8, driver 520.61.05 (450.80.02 with minor-version compatibility).
# Rasa 3.0.0: TensorFlow 2.6.x, CUDA 11.2, driver 460.27.03 (450.80.02). Rasa 2.1.3: TensorFlow 2.3.4, CUDA 10.1,
# driver 418.39, and CUDA 10 has no minor-version compatibility.
@pytest.mark.parametrize(
    ("rasa", "driver", "mode", "status", "blocking"),
    [
        ("3.6.21", "535.104.05", "auto", "ok", False),
        ("3.6.21", "520.61.05", "auto", "ok", False),  # exactly the minimum
        ("3.6.21", "520.56.06", "auto", "warn", False),  # below it, within minor-version compatibility
        ("3.6.21", "470.82.01", "on", "warn", False),
        ("3.6.21", "450.80.02", "auto", "warn", False),
        ("3.6.21", "450.51.06", "auto", "fail", False),  # too old: a failure, blocking only with --gpu on
        ("3.6.21", "450.51.06", "on", "fail", True),
        ("3.6.21", "390.157", "on", "fail", True),
        ("3.0.0", "470.82.01", "on", "ok", False),
        ("3.0.0", "460.27.02", "auto", "warn", False),
        ("2.1.3", "418.39", "on", "ok", False),
        ("2.1.3", "455.23.05", "on", "ok", False),
        ("2.1.3", "410.129", "on", "fail", True),  # CUDA 10.1: no compatibility range to fall back on
        ("3.6.21", None, "on", "skip", False),  # no driver on this host
        ("3.6.21", "535.104.05", "off", "skip", False),
        ("3.6.21", "not-a-version", "auto", "warn", False),
    ],
)
def test_driver_against_cuda(rasa, driver, mode, status, blocking):
    release = MATRIX.get(rasa)
    check = doctor.driver_check(driver, release, mode)
    assert (check.status, check.blocking) == (status, blocking), check
    if status in ("ok", "warn", "fail") and driver != "not-a-version":
        assert release.min_driver in check.detail and f"CUDA {release.cuda}" in check.detail
    if status == "fail":
        assert check.fix and "upgrade the NVIDIA driver" in check.fix


def test_driver_version_is_read_from_the_kernel_module(tmp_path):
    proc = tmp_path / "version"
    proc.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    assert doctor.host_driver_version(str(proc)) == "535.104.05"
    proc.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build\n")
    assert doctor.host_driver_version(str(proc)) == "550.54.14"


@pytest.mark.parametrize(
    ("limit", "folders", "status"),
    [(None, 10, "skip"), (524288, 40, "ok"), (8192, 40, "warn"), (100, 80, "fail"), (65536, 40000, "fail")],
)
def test_inotify_limit(limit, folders, status):
    check = doctor.inotify_check(limit, folders)
    assert check.status == status and not check.blocking
    if status in ("warn", "fail"):
        assert "max_user_watches" in check.fix


@pytest.mark.parametrize(
    ("free_gb", "needed_gb", "status", "blocking"),
    [
        (50, 12, "ok", False),
        (8, 12, "warn", False),
        (1, 12, "fail", True),
        (1.5, 2, "fail", True),
        (3, 2, "ok", False),
    ],
)
def test_disk_space(free_gb, needed_gb, status, blocking):
    check = doctor.disk_check("disk", int(free_gb * 1e9), int(needed_gb * 1e9), "/var/lib/docker")
    assert (check.status, check.blocking) == (status, blocking)


def test_smoke_output_is_parsed():
    seen = doctor.parse_smoke_output(
        ["SMI Tesla T4, 535.104.05", "2026-11-22 I tensorflow noise", 'TF_GPUS ["/physical_device:GPU:0"]']
    )
    assert seen.gpus == [("Tesla T4", "535.104.05")] and seen.tf_gpus == ["/physical_device:GPU:0"]
    missing = doctor.parse_smoke_output(["SMI sh: 2: nvidia-smi: not found", "TF_GPUS []"])
    assert missing.gpus == [] and "not found" in (missing.smi_error or "") and missing.tf_gpus == []


# ---- against real engines ------------------------------------------------------------------------------------------


def checks_of(result) -> dict[str, dict]:
    data = json.loads(result.stdout)
    checks = {c["name"]: c for c in data["checks"]}
    assert data["ready"] is (result.returncode == 0)
    return checks


def no_doctor_containers(client, result) -> bool:
    """Whether the doctor run that gave `result` left none of its containers (its smoke test's and probes')."""
    return not [
        container
        for role in ("doctor", "probe")
        for container in client.containers.list(
            all=True, filters={"label": [f"io.rasa-gpu.role={role}", f"io.rasa-gpu.pid={result.pid}"]}
        )
    ]


@pytest.mark.docker
def test_doctor_on_the_plain_engine(built_image, docker_client):
    result = run_cli("doctor", str(EXAMPLE_BOT), "--json")
    assert result.returncode == 0, result.output
    checks = checks_of(result)
    assert checks["bot"]["status"] == "ok" and "Rasa 3.6.21" in checks["bot"]["detail"]
    assert checks["engine"]["status"] == "ok" and "Docker " in checks["engine"]["detail"]
    assert checks["compose"]["status"] == "ok" and "(v2)" in checks["compose"]["detail"]
    assert checks["training image"]["status"] == "ok" and built_image in checks["training image"]["detail"]
    runtime = checks["NVIDIA runtime"]
    assert runtime["status"] == "warn" and "refuses GPU requests" in runtime["detail"]
    assert "NVIDIA Container Toolkit" in runtime["fix"]
    assert checks["GPU smoke test"]["status"] == "skip"
    assert {checks[n]["status"] for n in ("disk (images)", "disk (bot)", "inotify limit")} <= {"ok", "warn"}
    assert no_doctor_containers(docker_client, result)

    required = run_cli("doctor", str(EXAMPLE_BOT), "--gpu", "on")
    assert required.returncode == 1 and "Traceback" not in required.output
    assert "FAIL  NVIDIA runtime" in required.stdout
    [line] = [x for x in required.stderr.splitlines() if x.startswith("error:")]
    assert "1 blocking problem(s): NVIDIA runtime" in line

    # A base image that is neither here nor pullable (no registry answers) would stop the first build.
    unbuildable = run_cli(
        "doctor", str(EXAMPLE_BOT), "--base-image", "nonexistent/base:1", "--gpu", "off", "--json"
    )
    assert unbuildable.returncode == 1
    checks = checks_of(unbuildable)
    image = checks["training image"]
    assert image["status"] == "fail" and image["blocking"] and "nonexistent/base:1" in image["detail"]
    assert "rasa-gpu base-image" in image["fix"] and checks["NVIDIA runtime"]["status"] == "skip"


@pytest.mark.docker
@pytest.mark.slow
def test_doctor_on_the_engine_with_a_stand_in_nvidia_hook(stub_engine, docker_client):
    env = {"DOCKER_HOST": stub_engine}
    result = run_cli("doctor", str(EXAMPLE_BOT), "--json", env=env)
    assert result.returncode == 0, result.output
    checks = checks_of(result)
    assert checks["engine"]["status"] == "ok" and stub_engine in checks["engine"]["detail"]
    assert (
        checks["NVIDIA runtime"]["status"] == "ok"
        and "grants GPU requests" in checks["NVIDIA runtime"]["detail"]
    )
    smoke = checks["GPU smoke test"]
    # The stand-in hook lets the request through but gives the container no GPU: nvidia-smi is missing and
    # TensorFlow, which really ran in the training image, lists no GPU.
    assert (
        smoke["status"] == "warn"
        and "nvidia-smi failed" in smoke["detail"]
        and "TensorFlow sees none" in smoke["detail"]
    )
    assert "stub" in checks["disk (images)"]["detail"]

    required = run_cli("doctor", str(EXAMPLE_BOT), "--gpu", "on", "--json", env=env)
    assert required.returncode == 1
    checks = checks_of(required)
    assert checks["NVIDIA runtime"]["status"] == "ok"
    assert checks["GPU smoke test"]["status"] == "fail" and checks["GPU smoke test"]["blocking"] is True
    stub_client = docker.DockerClient(base_url=stub_engine)
    assert no_doctor_containers(stub_client, result) and no_doctor_containers(stub_client, required)


def test_doctor_without_an_engine_fails_but_still_checks_the_bot():
    result = run_cli("doctor", str(EXAMPLE_BOT), "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 1
    checks = checks_of(result)
    assert checks["engine"]["status"] == "fail" and checks["engine"]["blocking"] is True
    assert "start one" in checks["engine"]["fix"]
    assert checks["bot"]["status"] == "ok" and checks["NVIDIA runtime"]["status"] == "skip"


def test_doctor_reports_a_broken_bot_as_a_blocking_failure(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    (bot / "data" / "nlu.yml").write_text("version: '3.1'\nnlu:\n  - intent: greet\n   examples: |\n")
    result = run_cli("doctor", str(bot), "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 1 and "Traceback" not in result.output
    bot_check = checks_of(result)["bot"]
    assert (
        bot_check["status"] == "fail" and bot_check["blocking"] and "data/nlu.yml:4:" in bot_check["detail"]
    )


def test_doctor_outside_a_bot_skips_the_bot_checks():
    result = run_cli("doctor", "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    checks = checks_of(result)
    assert checks["bot"]["status"] == "skip" and "not a Rasa project" in checks["bot"]["detail"]
