"""Where a training image's CUDA comes from (issue 11), against the real engine and without a GPU.

The registry-less image gets CUDA and cuDNN from NVIDIA's wheels on PyPI and is checked after its build: TensorFlow is
built with CUDA and every CUDA library it opens loads. An image without CUDA is named cpu, and `--gpu on` with it
stops before a container is created.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support import EXAMPLE_BOT, assert_one_line_error, run_cli

from rasa_gpu import templates
from rasa_gpu.compat import load_matrix
from rasa_gpu.engine import Engine
from rasa_gpu.images import cuda_check
from rasa_gpu.resolve import resolve
from rasa_gpu.settings import Settings

pytestmark = [pytest.mark.docker]


def _in_image(client, image: str, code: str) -> str:
    """What `python3 -c code` prints in a throw-away container of the image (no GPU asked for)."""
    output = client.containers.run(image, ["-c", code], entrypoint=["python3"], remove=True, stderr=False)
    return output.decode().strip()


def _containers_created(client, bot: Path, since: datetime) -> list[str]:
    """Training containers for this bot that the engine created since `since` (its own event log)."""
    events = client.events(
        since=since,
        until=datetime.now(timezone.utc),
        decode=True,
        filters={
            "type": "container",
            "event": "create",
            "label": ["io.rasa-gpu.role=train", f"io.rasa-gpu.bot={bot}"],
        },
    )
    return [event["Actor"]["Attributes"].get("name", "?") for event in events]


def test_the_registry_less_image_gets_cuda_from_wheels_and_is_gpu_ready(built_image, docker_client):
    spec = resolve(str(EXAMPLE_BOT), Settings(base_image=os.environ.get("RASA_GPU_BASE_IMAGE")), "gpu").spec
    if spec.base_image == spec.release.gpu_base_image:
        pytest.skip(
            "the base image is TensorFlow's GPU image: its CUDA is the base's (RASA_GPU_BASE_IMAGE unset)"
        )
    wheels = load_matrix().wheels_for(spec.release.tensorflow)
    assert (
        spec.cuda == "wheels"
        and wheels is not None
        and wheels.cuda == "11.8"
        and wheels.cudnn.startswith("8.")
    )
    assert "-gpu-" in built_image, "the default image is built to use a GPU and passed its check"

    # rasa-gpu's own check, run again here: TensorFlow built with CUDA 11.8 / cuDNN 8, every library loads.
    script = templates.read_text("docker", "rasa-gpu-cuda-check.py")
    report = cuda_check(Engine.connect(), built_image, script, list(wheels.libraries))
    assert report["ready"] is True, report
    assert (report["cuda"], str(report["cudnn"])) == ("11.8", "8"), report
    assert sorted(report["loaded"]) == sorted(wheels.libraries) and len(report["loaded"]) >= 8
    assert not any(name.startswith("libcuda.so") for name in report["loaded"])  # the driver is the host's

    # And without rasa-gpu's script: the linker finds each library in the wheels, TensorFlow says what it was built
    # with, and cuDNN's own sub-libraries (which libcudnn.so.8 opens later) are there too.
    found = _in_image(
        docker_client,
        built_image,
        "import ctypes, subprocess, tensorflow as tf\n"
        "cache = subprocess.run(['ldconfig', '-p'], capture_output=True, text=True).stdout\n"
        f"for name in {list(wheels.libraries)!r}:\n"
        "    ctypes.CDLL(name)\n"
        "    assert '/nvidia/' in next(l for l in cache.splitlines() if l.strip().startswith(name)), name\n"
        "ctypes.CDLL('libcudnn_ops_infer.so.8')\n"
        "info = tf.sysconfig.get_build_info()\n"
        "print(info['cuda_version'], info['cudnn_version'], tf.test.is_built_with_cuda())",
    )
    assert found.splitlines()[-1] == "11.8 8 True", found

    # The wheels come from their lock (hashes required) and before Rasa: a Rasa (or bot) change rebuilds neither
    # their download nor their layer.
    history = [layer["CreatedBy"] for layer in docker_client.api.history(built_image)][::-1]  # oldest first
    cuda_layer = next(i for i, step in enumerate(history) if "/tmp/rasa-gpu/cuda/lock.txt" in step)
    assert "--require-hashes" in history[cuda_layer]
    rasa_layer = next(i for i, step in enumerate(history) if '"rasa==3.6.21"' in step)
    assert cuda_layer < rasa_layer


def test_an_image_without_cuda_is_named_cpu_and_gpu_on_stops_before_a_container(bot_copy, docker_client):
    # --cuda base on the registry-less base: it has no CUDA, so the check after the build names the image cpu.
    built = run_cli(
        "build", str(bot_copy), "--cuda", "base", "--rebuild"
    )  # a build (from the layer cache) and its check
    assert built.returncode == 0, built.output
    tag = built.stdout.split()[0]
    assert "-cpu-" in tag and "CPU-only" in built.stderr and "does not load" in built.stderr, built.output
    assert docker_client.images.get(tag)
    assert not docker_client.images.list(name=tag.replace("-cpu-", "-gpu-")), "no gpu name is left on it"

    since = datetime.now(timezone.utc)
    refused = run_cli("train", str(bot_copy), "--cuda", "base", "--gpu", "on", "--force")
    assert_one_line_error(refused, 4, "--gpu on", tag, "cannot use a GPU")
    assert _containers_created(docker_client, bot_copy, since) == []

    # --cuda none: named cpu by construction, not checked; auto trains on the CPU without asking for a GPU.
    none = run_cli("build", str(bot_copy), "--cuda", "none")
    assert none.returncode == 0 and "-cpu-" in none.stdout.split()[0], none.output
    assert "CUDA check" not in none.stderr


def test_gpu_auto_with_a_cpu_image_trains_on_the_cpu_and_says_why(bot_copy):
    result = run_cli("train", str(bot_copy), "--cuda", "none", "--force")
    assert result.returncode == 0, result.output
    assert "cannot use a GPU (CPU-only: built without CUDA)" in result.stderr, result.output
    assert "device CPU" in result.stdout, result.output
