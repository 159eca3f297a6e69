"""Specs as data: Dockerfile, tags, container spec, overrides, GPU requests and the progress parser."""

import io
import json
import subprocess
import tarfile

import pytest
import yaml

from rasa_gpu import progress
from rasa_gpu.compat import load_matrix
from rasa_gpu.engine import CHECK_LABEL, ContainerSpec
from rasa_gpu.errors import BuildError, SettingsError
from rasa_gpu.gpu import GpuRequest, is_missing_gpu_driver, parse_devices_line, parse_gpu_request
from rasa_gpu.images import (
    INDEX_LOGIN_ARG,
    ActionsImageSpec,
    ImageSpec,
    NotebookImageSpec,
    candidate,
    cpu_twin,
    ensure_image,
)
from rasa_gpu.overrides import apply_overrides, parse_overrides
from rasa_gpu.redact import redact

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def spec(**kw):
    return ImageSpec(release=load_matrix().get("3.6.21"), base_image="tensorflow/tensorflow:2.12.0-gpu", **kw)


def spec_on(base_image, **kw):
    return ImageSpec(release=load_matrix().get("3.6.21"), base_image=base_image, **kw)


def test_dockerfile_pins_rasa_and_tensorflow_and_has_two_stages():
    text = spec(extra_requirements=("nltk==3.8",)).dockerfile()
    assert "FROM tensorflow/tensorflow:2.12.0-gpu AS rasa" in text
    assert '"rasa==3.6.21" "tensorflow==2.12.0"' in text
    # The bot stage is built FROM the Rasa stage's tagged image (not its steps again from the layer cache, which a
    # pulled or loaded image does not have), by the name that image has.
    rasa_tag = spec().rasa_tag()
    assert f"FROM {rasa_tag} AS bot" in text
    with_reqs = spec(extra_requirements=("nltk==3.8",))
    twin = cpu_twin(rasa_tag)
    assert f"FROM {twin} AS bot" in with_reqs.bot_context_files(twin)["Dockerfile"].decode()
    assert "@" not in text.replace("io.rasa-gpu", "")  # every placeholder was filled


def test_ca_certs_and_index_reach_pip():
    text = spec(ca_certs=(CERT,), pip_index_url="https://pypi.corp/simple").dockerfile()
    assert "PIP_CERT=" in text and "--index-url https://pypi.corp/simple" in text
    assert "rasa-gpu-ca.pem" in spec(ca_certs=(CERT,)).context_files()


def test_tags_are_stable_and_change_with_inputs():
    assert spec().tag() == spec().tag()
    assert spec().tag().startswith("rasa-gpu/rasa:3.6.21-tf2.12.0-gpu-")
    assert spec(ca_certs=(CERT,)).tag() != spec().tag()
    with_reqs = spec(extra_requirements=("nltk==3.8",))
    # The shared Rasa stage does not depend on the bot's requirements; the bot image does.
    assert with_reqs.rasa_tag() == spec().rasa_tag()
    assert with_reqs.tag() != spec(extra_requirements=("nltk==3.9",)).tag()


# ---- what goes into a Dockerfile: logins stay out, values are checked --------------------------------------------

PASSWORD = "s3cr3t-PASS"
LOGIN_URL = f"https://deploy:{PASSWORD}@pypi.corp:8443/simple"


def test_an_index_login_is_in_no_dockerfile_context_or_tag_but_reaches_the_build_as_an_argument():
    s = spec(pip_index_url=LOGIN_URL, extra_requirements=("nltk==3.8",))
    context = (
        b"".join(s.context_files().values()) + s.context_tar() + s.tag().encode() + s.rasa_tag().encode()
    )
    assert PASSWORD.encode() not in context and b"deploy" not in context
    # pip gets the URL back from the build argument, which Docker keeps out of the history; the host stays in the text
    assert s.secret_args() == {INDEX_LOGIN_ARG: f"deploy:{PASSWORD}"}
    assert f'--index-url https://"${INDEX_LOGIN_ARG}"@pypi.corp:8443/simple -r' in s.dockerfile()
    assert f"ARG {INDEX_LOGIN_ARG}" not in s.dockerfile()  # declaring it would write it into the history
    # A new password is the same image; a new host is a new one.
    assert (
        s.tag()
        == spec(pip_index_url=LOGIN_URL.replace(PASSWORD, "other"), extra_requirements=("nltk==3.8",)).tag()
    )
    assert (
        s.tag()
        != spec(
            pip_index_url=LOGIN_URL.replace("pypi.corp", "pypi2.corp"), extra_requirements=("nltk==3.8",)
        ).tag()
    )
    # Without a login nothing changes: the same Dockerfile as before, no build argument.
    assert spec(pip_index_url="https://pypi.corp/simple").secret_args() == {}
    assert INDEX_LOGIN_ARG not in spec(pip_index_url="https://pypi.corp/simple").dockerfile()


def test_services_images_keep_the_login_out_too():
    release = load_matrix().get("3.6.21")
    actions = ActionsImageSpec(release, "python:3.10-slim", ("requests",), pip_index_url=LOGIN_URL)
    notebook = NotebookImageSpec("rasa-gpu/rasa:3.6.21-tf2.12.0-gpu-0123456789ab", "3.6.21", LOGIN_URL)
    for image in (actions, notebook):
        assert PASSWORD.encode() not in image.context_tar() + image.tag().encode()
        assert image.secret_args() == {INDEX_LOGIN_ARG: f"deploy:{PASSWORD}"}


def test_both_builds_of_a_bot_image_get_the_login():
    s = spec(pip_index_url=LOGIN_URL, extra_requirements=("nltk==3.8",))
    engine = CountingEngine({s.base_image})
    ensure_image(engine, s, print)
    assert engine.builds == ["rasa", "bot"]
    assert engine.secret_args == [s.secret_args()] * 2


def test_an_index_url_is_quoted_for_the_shell():
    url = "https://pypi.corp/simple?x=$(touch${IFS}PWNED)&y='`touch${IFS}PWNED`'"
    line = next(line for line in spec(pip_index_url=url).dockerfile().splitlines() if '"pip==' in line)
    shell_words = line.removeprefix("RUN python3 -m pip install --index-url ").removesuffix(' "pip==24.0"')
    echoed = subprocess.run(
        ["bash", "-c", f"printf %s {shell_words}"], capture_output=True, text=True, check=True
    )
    assert echoed.stdout == url


@pytest.mark.parametrize(
    "base_image",
    [
        "python:3.10-slim\nRUN touch /PWNED",
        "python:3.10 slim",
        "Python:3.10",
        "python:",
        "",
        "python@sha256:12",
        "x y:1",
    ],
)
def test_a_base_image_that_is_no_image_reference_is_refused(base_image):
    with pytest.raises(SettingsError) as raised:
        spec_on(base_image)
    assert "is not an image reference" in raised.value.message and "\n" not in raised.value.message


@pytest.mark.parametrize(
    "base_image",
    [
        "python:3.10-slim",
        "rasa-gpu/base:bullseye",
        "localhost:5000/team/base:1",
        "registry.example.com/a/b",
        "nvcr.io/nvidia/tensorflow:23.03-tf2-py3",
        "python@sha256:" + "a" * 64,
    ],
)
def test_image_references_are_taken(base_image):
    assert f"FROM {base_image} AS rasa" in spec_on(base_image).dockerfile()


def test_the_services_base_images_are_checked_too():
    release = load_matrix().get("3.6.21")
    with pytest.raises(
        SettingsError, match="actions_base_image 'python:3.10 slim' is not an image reference"
    ):
        ActionsImageSpec(release, "python:3.10 slim")
    with pytest.raises(SettingsError) as raised:
        NotebookImageSpec("a\nRUN id", "3.6.21")
    assert raised.value.message.startswith("the training image 'a\\nRUN id' is not an image reference")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"https://deploy:{PASSWORD}@pypi.corp/simple\nRUN touch /PWNED", "holds a space or a line break"),
        (f"https://deploy:{PASSWORD} @pypi.corp/simple", "holds a space or a line break"),
        (f"ftp://deploy:{PASSWORD}@pypi.corp/simple", "does not start with https:// or http://"),
        ("pypi.corp/simple", "does not start with https:// or http://"),
        (f"https://deploy:{PASSWORD}@/simple", "names no host"),
    ],
)
def test_an_index_url_that_is_no_url_is_refused_without_showing_the_password(url, problem):
    with pytest.raises(SettingsError) as raised:
        spec(pip_index_url=url)
    message = raised.value.message
    assert "pip_index_url" in message and problem in message and "https://USER:PASSWORD@HOST/PATH" in message
    assert PASSWORD not in message and "\n" not in message


def test_requirement_lines_go_into_a_copied_file_never_into_the_dockerfile():
    """pip reads them from a file in the context: no requirement line is a Dockerfile line or a shell word."""
    hostile = "nltk==3.8 ; python_version >= '3' and '$(touch /PWNED)' != ''"
    s = spec(extra_requirements=(hostile,))
    assert s.dockerfile() == spec(extra_requirements=("nltk==3.8",)).dockerfile()
    assert s.bot_context_files()["bot-requirements.txt"] == (hostile + "\n").encode()
    release = load_matrix().get("3.6.21")
    actions = ActionsImageSpec(release, "python:3.10-slim", (hostile,))
    assert actions.dockerfile() == ActionsImageSpec(release, "python:3.10-slim", ("requests",)).dockerfile()
    assert actions.context_files()["actions-requirements.txt"] == (hostile + "\n").encode()


def test_redact_masks_url_logins_and_known_secrets():
    line = f"Looking in indexes: https://deploy:{PASSWORD}@pypi.corp/simple, http://tok3n@h/x (deploy:{PASSWORD})"
    assert redact(line, [f"deploy:{PASSWORD}"]) == (
        "Looking in indexes: https://****@pypi.corp/simple, http://****@h/x (****)"
    )
    assert redact("docker.io/library/python@sha256:ab git+https://github.com/a/b@v1") == (
        "docker.io/library/python@sha256:ab git+https://github.com/a/b@v1"
    )


class CountingEngine:
    """Stands in for the engine only to count calls; the real build is tested in test_docker_train.py."""

    def __init__(self, present, *, cuda_problem=None, smoke=None):
        self.present, self.builds, self.checked, self.smoked = set(present), [], [], []
        self.cuda_problem = cuda_problem
        self.smoke = smoke or {"ok": True, "seconds": 12.0}
        self.secret_args, self.dockerfiles = [], []

    def image_id(self, ref):
        return "sha256:x" if ref in self.present else None

    def pull(self, ref, on_line):
        self.present.add(ref)

    def build(self, context, *, tag, target, labels, on_line, secret_args):
        self.builds.append(target)
        self.secret_args.append(secret_args)
        with tarfile.open(fileobj=io.BytesIO(context)) as tar:
            self.dockerfiles.append(tar.extractfile("Dockerfile").read().decode())
        self.present.add(tag)
        return "sha256:y"

    def image_labels(self, ref):
        return {}  # no Python label

    def run_to_completion(self, spec):
        """What the checks' throw-away containers print: the CUDA check's report, the tiny bot's (and the spaCy
        check's); no Python version (the check lets the build go on)."""
        check, ref = spec.labels[CHECK_LABEL], spec.image
        if check == "cuda":
            self.checked.append(ref)
            problems = [self.cuda_problem] if self.cuda_problem else []
            report = {
                "ready": not problems,
                "cuda": "11.8",
                "cudnn": "8",
                "loaded": json.loads(spec.command[0]),
                "problems": problems,
            }
            return 0, [json.dumps(report)]
        if check in ("smoke", "spacy"):
            self.smoked.append(ref)
            return 0, [json.dumps(self.smoke)]
        return 1, []

    def tag(self, image, ref):
        assert image in self.present
        self.present.add(ref)

    def remove_image(self, ref):
        self.present.discard(ref)


def test_existing_image_is_found_without_the_builder():
    s = spec()
    engine = CountingEngine({s.tag()})
    assert ensure_image(engine, s, print).built is False
    assert engine.builds == []


def test_bot_stage_reuses_an_existing_rasa_stage():
    s = spec(extra_requirements=("nltk==3.8",))
    engine = CountingEngine({s.rasa_tag(), s.base_image})
    assert ensure_image(engine, s, print).built is True
    assert engine.builds == ["bot"]
    [bot_stage] = engine.dockerfiles
    assert f"FROM {s.rasa_tag()} AS bot" in bot_stage and "AS rasa" not in bot_stage


def test_a_bot_stage_is_built_from_the_rasa_stage_under_the_name_its_check_gave_it():
    s = spec(extra_requirements=("nltk==3.8",))
    engine = CountingEngine({s.base_image}, cuda_problem="libcudnn.so.8 does not load")
    built = ensure_image(engine, s, print)
    assert engine.builds == ["rasa", "bot"] and built.tag == cpu_twin(s.tag())
    assert f"FROM {cpu_twin(s.rasa_tag())} AS bot" in engine.dockerfiles[1]


def test_an_image_that_fails_the_cuda_check_is_named_cpu_and_found_as_such():
    s = spec()
    engine = CountingEngine({s.base_image}, cuda_problem="libcudnn.so.8 does not load")
    built = ensure_image(engine, s, print)
    assert (built.gpu_ready, built.tag) == (False, cpu_twin(s.tag())) and "libcudnn.so.8" in built.cuda_note
    [checked] = engine.checked
    assert s.tag() not in engine.present and checked.startswith(candidate(s.tag()) + "-")
    again = ensure_image(engine, s, print)  # found under the twin's name: no second build, no second check
    assert (again.built, again.gpu_ready, again.tag) == (False, False, cpu_twin(s.tag()))
    assert engine.builds == ["rasa"] and engine.checked == [checked]
    assert not any(name.startswith(candidate(s.tag())) for name in engine.present)


def test_an_image_that_passes_the_cuda_check_keeps_its_gpu_name():
    s = spec()
    engine = CountingEngine({s.base_image})
    built = ensure_image(engine, s, print)
    assert (built.gpu_ready, built.tag) == (True, s.tag()) and "GPU-ready" in built.cuda_note
    assert ensure_image(engine, s, print).gpu_ready is True


def test_a_cpu_image_is_named_cpu_and_not_checked():
    s = spec(cuda="none")
    assert "-cpu-" in s.tag()
    engine = CountingEngine({s.base_image})
    assert ensure_image(engine, s, print).gpu_ready is False and engine.checked == []
    [smoked] = engine.smoked
    assert (
        smoked.startswith(candidate(s.tag()) + "-") and s.tag() in engine.present
    )  # trained before it was named


def test_an_image_whose_tiny_bot_does_not_train_gets_no_name_and_the_line_names_the_package():
    s = spec(cuda="none")
    broken = {
        "ok": False,
        "error": "ImportError: cannot import name 'CLOSED' from 'websockets.connection'",
        "package": "sanic 21.12.2",
        "seconds": 9.0,
    }
    engine, lines = CountingEngine({s.base_image}, smoke=broken), []
    with pytest.raises(BuildError) as caught:
        ensure_image(engine, s, lines.append)
    message = caught.value.message
    assert "did not train a tiny bot: ImportError: cannot import name 'CLOSED'" in message
    assert "(raised in sanic 21.12.2)" in message and "nothing was tagged" in message
    assert "tools/gen_locks.py 3.6.21" in message  # how to fix the lock
    assert engine.present == {s.base_image}  # neither its name nor the candidate's


def test_a_bot_stage_that_breaks_rasa_is_blamed_on_the_bots_requirements():
    s = spec(cuda="none", extra_requirements=("websockets==15.0",))
    engine = CountingEngine({s.base_image, s.rasa_tag()}, smoke={"ok": False, "error": "ImportError: x"})
    with pytest.raises(BuildError, match="The bot's own requirements break it"):
        ensure_image(engine, s, print)
    assert s.tag() not in engine.present and engine.builds == ["bot"]


def test_gpu_requests():
    assert GpuRequest("auto").device_request()["Count"] == -1
    assert parse_gpu_request("on", "0,1").device_request()["DeviceIDs"] == ["0", "1"]
    with pytest.raises(SettingsError):
        parse_gpu_request("off", "0")
    with pytest.raises(SettingsError):
        parse_gpu_request("auto", "first")
    assert is_missing_gpu_driver('could not select device driver "" with capabilities: [[gpu]]')
    assert parse_devices_line('RASA_GPU_DEVICES ["Tesla T4"]') == ["Tesla T4"]
    assert parse_devices_line("RASA_GPU_DEVICES []") == []
    assert parse_devices_line("other") is None


def test_container_spec_runs_with_init_labels_and_gpus():
    kwargs = ContainerSpec(
        image="i",
        command=["train"],
        name="n",
        labels={"a": "b"},
        user="1000:1000",
        gpu=GpuRequest("auto"),
        binds={"/host/bot": "/bot"},
    ).create_kwargs()
    assert kwargs["init"] is True and kwargs["user"] == "1000:1000" and kwargs["labels"] == {"a": "b"}
    assert kwargs["device_requests"][0]["Count"] == -1
    assert kwargs["mounts"][0]["Target"] == "/bot"
    off = ContainerSpec(image="i", command=[], name="n", labels={}, gpu=GpuRequest("off")).create_kwargs()
    assert "device_requests" not in off


CONFIG = yaml.safe_load("""
recipe: default.v1
pipeline:
  - name: WhitespaceTokenizer
  - name: DIETClassifier
    epochs: 100
policies:
  - name: TEDPolicy
    epochs: 100
  - name: custom.components.MyPolicy
""")


def test_overrides_change_a_copy_only():
    result = apply_overrides(
        CONFIG,
        parse_overrides(
            ["DIETClassifier.epochs=5", "MyPolicy.alpha=0.5", "TEDPolicy.constrain_similarities=true"]
        ),
    )
    assert result["pipeline"][1]["epochs"] == 5
    assert result["policies"][1]["alpha"] == 0.5
    assert result["policies"][0]["constrain_similarities"] is True
    assert CONFIG["pipeline"][1]["epochs"] == 100


def test_bad_overrides_are_explained():
    with pytest.raises(SettingsError, match="Component.key=value"):
        parse_overrides(["epochs=5"])
    with pytest.raises(SettingsError, match="components there: DIETClassifier"):
        apply_overrides(CONFIG, parse_overrides(["Nope.epochs=1"]))


def test_progress_parser_reads_rasa_output():
    raw = (
        b"2026-11-21 22:43:04 INFO     rasa.engine.training.hooks  - Starting to train component 'TEDPolicy'.\n"
        b"Epochs:   0%|          | 0/100 [00:00<?, ?it/s]\rEpochs:   1%|          | 1/100 [00:07<12:54,  7.82s/it, "
        b"t_loss=5.3, loss=5.16, acc=0]\rProcessed trackers: 100%|##| 3/3 [00:00<00:00, 3228.04it/s, # action=12]\n"
        b"2026-11-21 22:43:35 INFO     rasa.engine.training.hooks  - Finished training component 'TEDPolicy'.\n"
        b"2026-11-21 22:43:36 INFO     rasa.engine.training.hooks  - Restored component 'DIETClassifier' from cache.\n"
    )
    parser = progress.ProgressParser()
    events = [parser.feed(line) for line in progress.split_lines([raw[:50], raw[50:]])]
    assert events[0] == progress.ComponentStarted("TEDPolicy")
    epochs = [e for e in events if isinstance(e, progress.EpochProgress)]
    assert epochs[-1] == progress.EpochProgress(
        "TEDPolicy", 1, 100, {"t_loss": 5.3, "loss": 5.16, "acc": 0.0}
    )
    assert progress.ComponentFinished("TEDPolicy") in events
    assert progress.ComponentRestored("DIETClassifier") in events
    assert not any("Processed trackers" in line for line in parser.error_lines())


def test_training_container_runs_as_the_bot_owner_with_labels(tmp_path):
    from rasa_gpu.project import BotProject
    from rasa_gpu.runners.local import BindWorkspace
    from rasa_gpu.training import training_container

    for name in ("config.yml", "domain.yml"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "data").mkdir()
    project = BotProject.load(tmp_path)
    st = tmp_path.stat()
    workspace = BindWorkspace(project, "abc", fresh_cache=False)
    gpu_spec = training_container(workspace, "img", ["train"], GpuRequest("auto"))
    assert gpu_spec.user == f"{st.st_uid}:{st.st_gid}"
    assert gpu_spec.environment["RASA_GPU_MODE"] == "auto" and gpu_spec.environment["HOME"] == "/tmp"
    assert (
        gpu_spec.labels["io.rasa-gpu.bot"] == str(project.root)
        and gpu_spec.labels["io.rasa-gpu.role"] == "train"
    )
    assert gpu_spec.binds == {str(project.root): "/bot"} and gpu_spec.volumes == {}
    assert gpu_spec.name.endswith("-abc") and gpu_spec.labels["io.rasa-gpu.run"] == "abc"
    cpu_spec = training_container(workspace, "img", ["train"], GpuRequest("off"))
    assert cpu_spec.gpu is None and "RASA_GPU_MODE" not in cpu_spec.environment


def test_every_container_that_runs_rasa_shares_one_environment_with_the_language_model_cache(tmp_path):
    """Training, `rasa-gpu rasa/test/shell` and the rasa and jupyter services of `up` take their common environment
    from one place (runners.rasa_environment): HF_HOME is the bot's .rasa/huggingface in each, and a local
    workspace makes that folder before its container starts."""
    import yaml

    from rasa_gpu import services
    from rasa_gpu.project import BotProject
    from rasa_gpu.rasa_commands import rasa_container
    from rasa_gpu.runners import rasa_environment
    from rasa_gpu.runners.local import BindWorkspace
    from rasa_gpu.training import training_container

    for name in ("config.yml", "domain.yml"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "data").mkdir()
    project = BotProject.load(tmp_path)
    assert not (tmp_path / ".rasa").exists()
    shared = rasa_environment()
    assert shared["HF_HOME"] == "/bot/.rasa/huggingface" and shared["HOME"] == "/tmp"
    workspace = BindWorkspace(project, "abc", fresh_cache=True)
    assert (tmp_path / ".rasa" / "huggingface").is_dir()
    training = training_container(workspace, "img", ["train"], GpuRequest("off")).environment
    rasa = rasa_container(
        project, "img", ["shell"], GpuRequest("off"), terminal=False, network=None, secrets={}, run_id="r"
    ).environment
    plan = services.ServicePlan(
        project_name="p", user="1:1", rasa_image="r", actions_image="a", notebook_image="n"
    )
    compose = yaml.safe_load(services.render_compose(plan))["services"]
    for environment in (training, rasa, compose["rasa"]["environment"], compose["jupyter"]["environment"]):
        assert {k: environment[k] for k in shared} == shared
    # what a workspace adds stays its own: the benchmark's fresh Rasa cache
    assert training["RASA_CACHE_DIRECTORY"].startswith("/bot/.rasa-gpu/tmp/")
    for service in ("actions", "tensorboard"):  # they run no Rasa
        assert "HF_HOME" not in str(compose[service])


def test_the_language_model_cache_follows_the_bot_folder_rules(tmp_path):
    """Made with the rules of every folder rasa-gpu makes in a bot (no link out of it followed); a bot folder this
    process may not write into is no error (`rasa-gpu validate` on someone else's checkout needs no cache)."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from support import EXAMPLE_BOT, copy_bot

    from rasa_gpu.errors import ProjectError
    from rasa_gpu.project import BotProject

    bot = copy_bot(
        EXAMPLE_BOT, tmp_path / "bot", owner=None
    )  # its sources: no models or caches of the checkout
    outside = tmp_path / "outside"
    outside.mkdir()
    (bot / ".rasa").mkdir()
    (bot / ".rasa" / "huggingface").symlink_to(outside)
    with pytest.raises(ProjectError, match=r"^.rasa/huggingface is a link to .*outside the bot folder"):
        BotProject.load(bot).make_language_model_cache()
    if os.geteuid() != 0:
        pytest.skip("the part that may not write acts as another user for a moment, which needs root")
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        copy_bot(EXAMPLE_BOT, folder / "bot", owner=None)  # root's, 0755: not writable for nobody
        project = BotProject.load(folder / "bot")
        os.seteuid(65534)  # the saved uid stays root's: given back below
        try:
            project.make_language_model_cache()
        finally:
            os.seteuid(0)
        assert not (folder / "bot" / ".rasa").exists()
    finally:
        shutil.rmtree(folder)


def test_a_tqdm_bar_is_passed_on_without_waiting_for_the_next_update():
    def chunks():
        yield b"x  - Starting to train component 'DIETClassifier'.\n\rEpochs:   0%|          | 0/50 [00:00<?, ?it/s]"
        raise AssertionError("the bar should have been yielded before more output was read")

    lines = progress.split_lines(chunks())
    assert "Starting to train" in next(lines)
    assert next(lines).startswith("Epochs:   0%")


def test_stdout_and_stderr_are_split_into_lines_each_on_its_own():
    """Seen with Rasa Pro 3.13: a warning on stderr written in two parts around a stdout write came out as one
    spliced line, and the cause line began with the warning's source line."""
    frames = [
        (2, b"/x/licensing.py:295: FutureWarning: RASA_PRO_LICENSE is deprecated\n  raise_deprecation_"),
        (
            1,
            b"2026-12-03 12:30:01 [error    ] license.validation.error error=LicenseEncodingException('no JWT')\n",
        ),
        (
            2,
            b"warning(\nFailed to validate Rasa license which was read from environment variable RASA_PRO_LICENSE.",
        ),
    ]
    lines = list(progress.split_stream_lines(frames))
    assert "  raise_deprecation_warning(" in lines
    assert (
        lines[-1]
        == "Failed to validate Rasa license which was read from environment variable RASA_PRO_LICENSE."
    )
    parser = progress.ProgressParser()
    for line in lines:
        parser.feed(line)
    assert parser.cause == (
        "Failed to validate Rasa license which was read from environment variable RASA_PRO_LICENSE. "
        "(license.validation.error error=LicenseEncodingException('no JWT'))"
    )


def test_the_last_sentence_is_the_cause_only_when_it_reads_as_one():
    said = progress.ProgressParser()
    for line in [
        "/usr/lib/python3/dist-packages/google/rpc/__init__.py:20: DeprecationWarning: Deprecated call",
        "  pkg_resources.declare_namespace(__name__)",
        "Failed to validate Rasa Pro license which was read from environmental variable `RASA_PRO_LICENSE`.",
    ]:
        said.feed(line)
    assert said.cause is None  # no exception line, no logged error (Rasa Pro 3.8 raises SystemExit with it)
    assert said.last_words == (
        "Failed to validate Rasa Pro license which was read from environmental variable `RASA_PRO_LICENSE`."
    )
    for last in [
        "/x/y.py:3: UserWarning: something",
        "  warnings.warn(message)",
        "2026-12-03 12:30:01 INFO     rasa.engine.training.hooks  - Starting to train component 'TEDPolicy'.",
        "2026-12-03 12:30:01 [info     ] model.loaded",
    ]:
        other = progress.ProgressParser()
        other.feed(last)
        assert other.last_words is None, last


def test_rasa_tests_cause_reads_each_stream_on_its_own():
    from rasa_gpu.rasa_commands import _cause

    frames = [
        (2, b'Traceback (most recent call last):\n  File "x.py", line 1\nValueErr'),
        (1, b"2026-12-03 13:00:00 INFO     rasa.cli.test  - Running NLU tests\n"),
        (2, b"or: no NLU test data in /bot/tests\n"),
    ]
    assert _cause(frames) == "ValueError: no NLU test data in /bot/tests"
