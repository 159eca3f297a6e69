"""The probes against real engines, asked through their owners (gpu.request_works, images.image_python,
base_image.python_bases), and the engine's error mapping as users meet it: the plain engine (no NVIDIA runtime) and
the one with a stand-in nvidia-container-runtime-hook. Each probe's container is gone when it has answered."""

from __future__ import annotations

import os
import uuid

import pytest

from rasa_gpu.base_image import PYTHON_LABEL, python_bases
from rasa_gpu.engine import CHECK_LABEL, LABEL, Engine
from rasa_gpu.errors import RasaGpuError
from rasa_gpu.gpu import GpuRequest, request_works
from rasa_gpu.images import image_python
from rasa_gpu.images.rendering import tar

pytestmark = [pytest.mark.docker]


def _probes_left(client, check: str) -> list[str]:
    filters = {"label": [f"{CHECK_LABEL}={check}", f"{LABEL}.pid={os.getpid()}"]}
    return [c.name for c in client.containers.list(all=True, filters=filters)]


def test_the_plain_engine_refuses_a_gpu_request_and_the_probe_leaves_nothing(docker_client, built_image):
    assert request_works(Engine.connect(), built_image, GpuRequest("on")) is False
    assert request_works(Engine.connect(), built_image, GpuRequest("auto", ("0",))) is False
    assert _probes_left(docker_client, "gpu-request") == []


def test_a_probe_of_a_missing_image_is_an_error_not_a_refusal(docker_client):
    missing = f"rasa-gpu/no-such-image:{uuid.uuid4().hex[:8]}"
    with pytest.raises(RasaGpuError, match=f"^image {missing} is missing; run `rasa-gpu build` first$"):
        request_works(Engine.connect(), missing, GpuRequest("on"))


def test_the_engine_with_the_stand_in_hook_grants_it(stub_engine, built_image):
    assert request_works(Engine.connect(stub_engine), built_image, GpuRequest("on")) is True
    assert request_works(Engine.connect(stub_engine), built_image, GpuRequest("on", ("0",))) is True


def test_two_engines_on_one_machine_are_two_engines_to_the_refusal_memory(stub_engine, docker_client):
    """dockerd 20.10 takes its ID from /etc/docker/key.json, which the stand-in engine shares with the plain one: a
    refusal by the plain engine must not make the one with the hook look refused."""
    plain, hooked = Engine.connect().engine_id(), Engine.connect(stub_engine).engine_id()
    assert plain and hooked and plain != hooked
    assert plain == Engine.connect().about().engine_id


@pytest.fixture
def tiny_images(docker_client, built_image):
    """Images made FROM the training image with only a Python label of our choosing; removed afterwards."""
    engine, made = Engine.connect(), []

    def make(name: str, python: str) -> str:
        context = tar({"Dockerfile": f"FROM {built_image} AS probe\n".encode()})
        made.append(name)
        engine.build(context, tag=name, target="probe", labels={PYTHON_LABEL: python}, on_line=lambda _: None)
        return name

    yield make
    for name in made:
        engine.remove_image(name)


def test_image_python_reads_the_label_else_asks_python3_in_the_image(docker_client, tiny_images):
    suffix = uuid.uuid4().hex[:8]
    unlabelled = tiny_images(f"rasa-gpu/probe-test:{suffix}", "")
    said = docker_client.containers.run(
        unlabelled, entrypoint=["python3", "--version"], command=[], remove=True, stderr=True
    ).decode()
    asked = image_python(Engine.connect(), unlabelled)
    assert asked is not None and said.startswith(f"Python {asked}."), (asked, said)
    assert _probes_left(docker_client, "python") == []

    labelled = tiny_images(f"rasa-gpu/base:probe-test-{suffix}", "3.7")
    assert image_python(Engine.connect(), labelled) == "3.7"  # the label, though python3 says otherwise
    bases = python_bases(Engine.connect())
    assert (labelled, "3.7") in bases
    assert not any(name == unlabelled for name, _ in bases)  # an empty label and another repository


def test_engine_errors_reach_the_user_in_the_engines_words_and_missing_things_are_fine(docker_client):
    engine, name = Engine.connect(), f"rasa-gpu/no-such-image:{uuid.uuid4().hex[:8]}"
    with pytest.raises(RasaGpuError) as raised:
        engine.tag(name, "rasa-gpu/elsewhere:1")
    assert raised.value.message.startswith(f"Docker could not tag {name} as rasa-gpu/elsewhere:1: ")
    assert "no such image" in raised.value.message.lower() and "\n" not in raised.value.message
    with pytest.raises(RasaGpuError, match=f"^Docker could not inspect image {name}: "):
        engine.image_size(name)
    volume = f"rasa-gpu-test-{uuid.uuid4().hex[:8]}"
    assert engine.image_id(name) is None and engine.volume_exists(volume) is False
    engine.remove_image(name)  # nothing to remove: quiet
    engine.remove_volume(volume)
