"""The engine package's seams without an engine: the one mapping of docker-py's errors into rasa-gpu's, the probe
containers' spec, what the image checks make of a probe's output, and the names callers import from the packages.
The same probes against real engines are in test_engine_probes.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from docker.errors import APIError, ImageNotFound, NotFound
from requests import Response

import rasa_gpu
import rasa_gpu.engine
import rasa_gpu.images
from rasa_gpu.base_image import PYTHON_LABEL, python_bases
from rasa_gpu.engine import CHECK_LABEL, LABEL, probe_spec
from rasa_gpu.engine.connection import engine_identity
from rasa_gpu.engine.sdk import explain, mapped
from rasa_gpu.errors import BuildError, GpuUnavailable, RasaGpuError
from rasa_gpu.gpu import GpuRequest
from rasa_gpu.images import cuda_check, image_python, run_check


def api_error(cls: type[APIError], status: int, explanation: str | None) -> APIError:
    response = Response()
    response.status_code = status
    return cls(f"{status} Client Error", response=response, explanation=explanation)


# ---- the one error mapping --------------------------------------------------------------------------------------


def test_an_engine_error_becomes_one_line_with_the_engines_own_words():
    with pytest.raises(RasaGpuError) as raised, mapped("Docker could not tag a as b"):
        raise api_error(APIError, 500, "invalid reference format")
    assert type(raised.value) is RasaGpuError
    assert raised.value.message == "Docker could not tag a as b: invalid reference format"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no docker-py traceback


def test_without_an_explanation_docker_pys_message_is_used():
    error = APIError("the registry said no")
    assert explain(error) == "the registry said no"
    with pytest.raises(RasaGpuError, match="^pull failed: the registry said no$"), mapped("pull failed"):
        raise error


def test_a_function_makes_the_error_of_its_own_kind_from_the_explanation():
    def problem(explanation: str) -> RasaGpuError:
        return BuildError(f"image build failed: {explanation.upper()}")

    with pytest.raises(BuildError, match="^image build failed: NO SPACE LEFT$"), mapped(problem):
        raise api_error(APIError, 500, "no space left")


def test_missing_ok_ends_the_block_quietly_on_not_found_only():
    reached = []
    for error in (api_error(NotFound, 404, "no such volume"), api_error(ImageNotFound, 404, "no such image")):
        with mapped("Docker could not remove x", missing_ok=True):
            raise error
        reached.append(type(error).__name__)
    with mapped("Docker could not remove x", missing_ok=True):
        raise api_error(APIError, 404, "gone")  # a 404 docker-py did not classify
    assert reached == ["NotFound", "ImageNotFound"]
    in_use = pytest.raises(RasaGpuError, match="^Docker could not remove x: conflict: in use$")
    with in_use, mapped("Docker could not remove x", missing_ok=True):
        raise api_error(APIError, 409, "conflict: in use")
    missing = pytest.raises(RasaGpuError, match="^Docker could not inspect y: no such image$")
    with missing, mapped("Docker could not inspect y"):  # not missing_ok: an error like any other
        raise api_error(ImageNotFound, 404, "no such image")


def test_other_errors_pass_through_untouched():
    with pytest.raises(GpuUnavailable), mapped("anything"):
        raise GpuUnavailable("no GPU")
    with pytest.raises(KeyError), mapped("anything"):
        raise KeyError("x")


def test_the_packages_have_no_hand_written_mapping_left():
    """Every reading of an engine's explanation is in engine/sdk.py (`explain`)."""
    package = Path(rasa_gpu.__file__).parent
    readers = [str(p.relative_to(package)) for p in package.rglob("*.py") if ".explanation" in p.read_text()]
    assert readers == ["engine/sdk.py"]


# ---- probes: the engine runs them, their owners read them -------------------------------------------------------


def test_a_probe_container_says_what_it_checks_and_lives_only_as_long_as_this_process():
    spec = probe_spec("img:1", ["true"], "gpu-request", gpu=GpuRequest("on"))
    assert spec.labels[CHECK_LABEL] == "gpu-request" and spec.labels[f"{LABEL}.role"] == "probe"
    assert spec.labels[f"{LABEL}.pid"] == str(os.getpid()) and spec.name.startswith(
        f"rasa-gpu-probe-{os.getpid()}-"
    )
    assert spec.entrypoint == ["true"] and spec.command == [] and spec.gpu == GpuRequest("on")
    kwargs = spec.create_kwargs()
    assert kwargs["auto_remove"] is True and kwargs["init"] is True and kwargs["device_requests"]
    assert probe_spec("img:1", ["true"], "x").name != spec.name


class Prints:
    """An engine whose probe containers print `lines` and exit with `code`; it keeps the specs it was given."""

    def __init__(self, code: int, lines: list[str], labels: dict[str, str] | None = None) -> None:
        self.code, self.lines, self.labels, self.specs = code, lines, labels or {}, []

    def run_to_completion(self, spec):
        self.specs.append(spec)
        return self.code, self.lines

    def image_labels(self, ref):
        return self.labels


def test_a_check_reads_the_last_json_report_its_script_printed():
    engine = Prints(0, ['{"ok": false}', "noise", '{"ok": true, "seconds": 3}', "2026 WARNING tf: slow"])
    assert run_check(engine, "img:1", "print(1)", ["a"], {"X": "1"}, check="smoke") == (
        {"ok": True, "seconds": 3},
        "",
    )
    [spec] = engine.specs
    assert spec.entrypoint == ["python3", "-c", "print(1)"] and spec.command == ["a"]
    assert spec.environment == {"TF_CPP_MIN_LOG_LEVEL": "3", "X": "1"} and spec.labels[CHECK_LABEL] == "smoke"


def test_a_check_without_a_report_gives_its_last_line_or_its_exit_code():
    assert run_check(Prints(1, ["Traceback ...", "ImportError: no tf", "  "]), "i", "s", [], check="c") == (
        None,
        "ImportError: no tf",
    )
    assert run_check(Prints(137, []), "i", "s", [], check="c") == (None, "exit code 137")
    report = cuda_check(Prints(2, ["{not json"]), "i", "s", ["libcudart.so.11.0"])
    assert report == {"ready": False, "problems": ["the check did not run ({not json)"]}


def test_cuda_check_hands_the_libraries_to_its_script():
    engine = Prints(0, [json.dumps({"ready": True})])
    assert cuda_check(engine, "img:1", "script", ["libcudnn.so.8"]) == {"ready": True}
    assert engine.specs[0].command == ['["libcudnn.so.8"]'] and engine.specs[0].labels[CHECK_LABEL] == "cuda"


def test_image_python_trusts_the_label_and_else_asks_python3():
    labelled = Prints(0, [], {PYTHON_LABEL: " 3.9 "})
    assert image_python(labelled, "rasa-gpu/base:bullseye") == "3.9" and labelled.specs == []
    asked = Prints(0, ["some banner", "3.10"])
    assert (
        image_python(asked, "python:3.10-slim") == "3.10" and asked.specs[0].labels[CHECK_LABEL] == "python"
    )
    assert image_python(Prints(0, ["Python 3.10.2"]), "x") is None  # not X.Y
    assert image_python(Prints(1, ["3.10"]), "x") is None  # it failed


def test_a_missing_python3_is_no_answer_not_an_error():
    class NoPython(Prints):
        def run_to_completion(self, spec):
            raise RasaGpuError("Docker could not start the container: exec: python3: not found")

    assert image_python(NoPython(0, []), "busybox") is None


def test_the_registry_less_bases_are_the_labelled_images_under_their_own_name():
    class Lists:
        def labelled_images(self, label):
            assert label == PYTHON_LABEL
            return [
                (["rasa-gpu/base:bookworm", "mirror.example/base:1"], {PYTHON_LABEL: "3.11"}),
                (["rasa-gpu/base:bullseye"], {PYTHON_LABEL: "3.9"}),
                (["rasa-gpu/base:empty"], {PYTHON_LABEL: " "}),
                ([], {PYTHON_LABEL: "3.12"}),  # untagged
            ]

    assert python_bases(Lists()) == [("rasa-gpu/base:bookworm", "3.11"), ("rasa-gpu/base:bullseye", "3.9")]


# ---- the names callers import ------------------------------------------------------------------------------------


def test_the_names_callers_import_are_where_they_were():
    engine_names = (
        "Engine ContainerSpec RunningContainer Compose ServiceState EngineAbout labels_for LABEL TIED_ENV "
        "START_HINT DEFAULT_SOCKET ORPHAN_ROLES LineSink WholeLines build_cause"
    )
    image_names = (
        "ensure_image ensure_service_image settle_base stand_ins checked_build smoke_check spacy_check check_cuda "
        "check_base_python python_mismatch cuda_for candidate cpu_twin published_ref default_actions_base "
        "read_ca_certs index_secret_args check_image_reference check_index_url check_dockerfile_values ImageSpec "
        "ActionsImageSpec NotebookImageSpec ImageResult ImageEngine ServiceImage INDEX_LOGIN_ARG IMAGE_FORM "
        "INDEX_FORM IMAGE_REPO CANDIDATE_REPO BOT_IMAGE_REPO ACTIONS_IMAGE_REPO NOTEBOOK_IMAGE_REPO "
        "NOTEBOOK_REQUIREMENT DEFAULT_IMAGE_NAME PIP_VERSION PRO_NLU_SCRIPT CA_BUNDLE"
    )
    missing = [n for n in engine_names.split() if not hasattr(rasa_gpu.engine, n)]
    missing += [n for n in image_names.split() if not hasattr(rasa_gpu.images, n)]
    assert missing == []
    engine = rasa_gpu.engine.Engine
    for probe in ("cuda_check", "run_check", "image_python", "python_bases", "gpu_request_works"):
        assert not hasattr(engine, probe), f"{probe} belongs to its owner, not to the engine"


# ---- leftovers: whose process is gone -------------------------------------------------------------------------------


def test_a_leftover_whose_pid_now_names_another_process_is_an_orphan(tmp_path):
    """Pids wrap around (at 32768 on many hosts): a killed rasa-gpu's pid may be another process's by the time the
    next run sweeps. The start time in the labels tells them apart."""
    import subprocess
    import sys

    from rasa_gpu.engine import labels_for
    from rasa_gpu.engine.containers import alive, process_start

    mine = labels_for("train", tmp_path)
    assert mine[f"{LABEL}.started"] == process_start(os.getpid()) and alive(mine)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reused = {**mine, f"{LABEL}.pid": str(other.pid)}  # this pid, another process's start time
        assert process_start(other.pid) not in (None, mine[f"{LABEL}.started"])
        assert not alive(reused)
        assert alive({f"{LABEL}.pid": str(other.pid)})  # labelled by an older rasa-gpu: the pid alone
    finally:
        other.kill()
        other.wait()
    assert not alive({f"{LABEL}.pid": str(other.pid)}) and process_start(other.pid) is None
    assert not alive({f"{LABEL}.pid": "not a pid"}) and not alive({})


def test_an_engines_identity_tells_apart_engines_that_share_an_id():
    shared = "HBLZ:JFJV:PXYD"
    one = engine_identity({"ID": shared, "Name": "box", "DockerRootDir": "/var/lib/docker"})
    other = engine_identity({"ID": shared, "Name": "box", "DockerRootDir": "/var/lib/rasa-gpu-stub"})
    clone = engine_identity({"ID": shared, "Name": "box2", "DockerRootDir": "/var/lib/docker"})
    assert len({one, other, clone}) == 3
    assert one == engine_identity(
        {"ID": shared, "Name": "box", "DockerRootDir": "/var/lib/docker", "Images": 3}
    )
    assert engine_identity({"Name": "box"}) == ""
