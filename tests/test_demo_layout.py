"""A bot laid out like RasaHQ's demos (financial-demo, helpdesk-assistant, rasa-demo), for real: requirements.txt
with `-r actions/requirements-actions.txt`, `rasa[spacy]==3.6.21` and a rasa-sdk pin, a constraint file, an include,
environment markers and a spaCy model as a wheel in the bot folder; SpacyNLP in the pipeline; the action server's
package in actions/requirements-actions.txt. `train` builds one image (checked: spaCy loads the model before it is
tagged) and trains in it; every requirements form is then checked in that image, and `up` answers through a custom
action that imports the action server's package. Refused input stops in one line before anything is built.

GitHub is not reachable here, so the spaCy model is made in a throw-away container of the Rasa image: a blank English
pipeline with a few word vectors, packaged by `spacy package --build wheel` (about 45 s, once per module)."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import docker.errors
import pytest
from support import (
    BOT_UID,
    CliResult,
    assert_one_line_error,
    copy_bot,
    free_ports,
    remove_containers_under,
    run_cli,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MODEL = "en_core_web_sm"
WHEEL = f"{MODEL}-3.4.0-py3-none-any.whl"
#: Fast trainings: this module is about what gets installed, not about the model's quality.
FAST = ("--set", "DIETClassifier.epochs=2")

DEMO: dict[str, str] = {
    "requirements.txt": (
        "# as in RasaHQ's demos: one file for a local `pip install -r requirements.txt`\n"
        "-r actions/requirements-actions.txt\n"
        "-c constraints.txt\n"
        "rasa[spacy]==3.6.21\n"
        "rasa-sdk==3.6.1  # the action server's, older than the range Rasa 3.6.21 asks for\n"
        "-r components/requirements.txt\n"
        'text-unidecode==1.3 ; python_version >= "3.8"\n'
        'tomlkit==0.12.0 ; python_version < "3.0"\n'
        f"./models-spacy/{WHEEL}\n"
    ),
    "constraints.txt": "inflection==0.4.0\n",
    "components/requirements.txt": "inflection\n",
    "actions/requirements-actions.txt": "humanize==4.9.0\n",
    "actions/__init__.py": "",
    "actions/actions.py": (
        "import humanize\n"
        "from rasa_sdk import Action\n\n\n"
        "class ActionBigNumber(Action):\n"
        "    def name(self):\n"
        '        return "action_big_number"\n\n'
        "    def run(self, dispatcher, tracker, domain):\n"
        '        dispatcher.utter_message(text=f"The big number is {humanize.intcomma(1234567)}.")\n'
        "        return []\n"
    ),
    "config.yml": (
        "recipe: default.v1\n"
        "assistant_id: demo-layout\n"
        "language: en\n"
        "pipeline:\n"
        "  - name: SpacyNLP\n"
        f"    model: {MODEL}\n"
        "  - name: SpacyTokenizer\n"
        "  - name: SpacyFeaturizer\n"
        "  - name: CountVectorsFeaturizer\n"
        "  - name: DIETClassifier\n"
        "    epochs: 10\n"
        "policies:\n"
        "  - name: RulePolicy\n"
    ),
    "domain.yml": (
        'version: "3.1"\n'
        "intents: [greet, ask_number]\n"
        "actions: [action_big_number]\n"
        "responses:\n"
        '  utter_greet: [{text: "Hello!"}]\n'
    ),
    "data/nlu.yml": (
        'version: "3.1"\n'
        "nlu:\n"
        "- intent: greet\n"
        "  examples: |\n    - hello\n    - hi\n    - good morning\n    - hey there\n"
        "- intent: ask_number\n"
        "  examples: |\n    - tell me the big number\n    - what is the number\n    - number please\n"
        "    - which number\n"
    ),
    "data/rules.yml": (
        'version: "3.1"\n'
        "rules:\n"
        "- rule: greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
        "- rule: number\n  steps:\n  - intent: ask_number\n  - action: action_big_number\n"
    ),
}

#: Makes the model wheel: a blank English pipeline with a few 8-dimensional vectors (SpacyFeaturizer reads them).
MAKE_MODEL = f"""
set -e
python3 -m pip install -q "spacy>=3.4,<3.5" wheel 2>&1 | grep -v "Running pip as the 'root' user" || true
python3 - <<'EOF'
import numpy, spacy
nlp = spacy.blank("en")
for i, word in enumerate(["hello", "hi", "morning", "number", "big", "tell", "which", "what"]):
    nlp.vocab.set_vector(word, numpy.full(8, i + 1, dtype="float32"))
nlp.to_disk("/tmp/model")
EOF
mkdir -p /tmp/package
python3 -m spacy package /tmp/model /tmp/package --name core_web_sm --version 3.4.0 --build wheel >/dev/null
cp /tmp/package/{MODEL}-3.4.0/dist/{WHEEL} /out/
"""


def cli(*args: str) -> CliResult:
    return run_cli(*args, env={"RASA_GPU_BASE_IMAGE": "rasa-gpu/base:bullseye"})


def write_bot(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def model_wheel(docker_client, built_image, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spacy-model")
    out.chmod(0o777)
    docker_client.containers.run(
        built_image,
        ["-c", MAKE_MODEL],
        entrypoint=["sh"],
        volumes={str(out): {"bind": "/out", "mode": "rw"}},
        labels={"io.rasa-gpu.test": "spacy-model"},
        remove=True,
    )
    return out / WHEEL


def demo_bot(source: Path, destination: Path, model_wheel: Path, **changed: str) -> Path:
    """The demo bot (with files changed or, for "", left out), owned by the test's bot owner."""
    files = {name: text for name, text in {**DEMO, **changed}.items() if text}
    write_bot(source, files)
    (source / "models-spacy").mkdir(exist_ok=True)
    (source / "models-spacy" / WHEEL).write_bytes(model_wheel.read_bytes())
    return copy_bot(source, destination)


@pytest.fixture(scope="module")
def demo(model_wheel, tmp_path_factory) -> tuple[Path, CliResult]:
    """The demo bot, trained once: `train` builds its image (the Rasa stage is the run's)."""
    base = tmp_path_factory.mktemp("demo")
    bot = demo_bot(base / "source", base / "demo", model_wheel)
    result = cli("train", str(bot), *FAST)
    assert result.returncode == 0, result.output
    return bot, result


@pytest.fixture(scope="module")
def demo_image(demo) -> str:
    """The demo's training image, found by its tag: an unchanged bot builds nothing."""
    result = cli("build", str(demo[0]))
    assert result.returncode == 0, result.output
    assert "found (cached, nothing built)" in result.output
    return result.stdout.split()[0]


@pytest.fixture(scope="module")
def installed(docker_client, demo_image) -> dict[str, str]:
    """The distributions in the demo's training image, by canonical name."""
    script = (
        "import importlib.metadata as m, json, re\n"
        "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
        "for d in m.distributions()}))"
    )
    output = docker_client.containers.run(
        demo_image,
        ["-c", script],
        entrypoint=["python3"],
        remove=True,
        labels={"io.rasa-gpu.test": "installed"},
    )
    return dict(json.loads(output.decode().strip().splitlines()[-1]))


# ---- the image and the training ---------------------------------------------------------------------------------------


def test_the_demo_trains_with_spacy_after_the_image_loaded_its_model(demo):
    bot, result = demo
    assert f"spaCy 3.4.4 loads {MODEL} 3.4.0 in the new image" in result.output
    assert "training a tiny bot in the new image before it is tagged: trained and loaded" in result.output
    [model] = sorted((bot / "models").glob("*.tar.gz"))
    with tarfile.open(model) as archive:
        metadata = json.load(archive.extractfile("metadata.json"))  # type: ignore[arg-type]
    components = {node["uses"] for node in metadata["train_schema"]["nodes"].values()}
    assert {"SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer"} <= {c.rsplit(".", 1)[-1] for c in components}
    assert model.stat().st_uid == BOT_UID


def test_an_include_is_installed_and_the_action_servers_file_is_not(installed):
    assert "inflection" in installed  # from components/requirements.txt, through -r
    assert "humanize" not in installed  # actions/requirements-actions.txt is the action server's


def test_a_constraint_file_holds_the_version(installed):
    assert installed["inflection"] == "0.4.0"  # the newest is 0.5.1


def test_an_extra_of_rasa_installs_its_packages_and_keeps_the_release(installed):
    assert installed["spacy"].startswith("3.4.")  # rasa 3.6.21's spacy extra: spacy>=3.1,<3.5
    assert installed["rasa"] == "3.6.21"


def test_markers_are_evaluated_in_the_image(installed):
    assert installed["text-unidecode"] == "1.3"
    assert "tomlkit" not in installed


def test_the_spacy_model_comes_from_the_wheel_and_rasa_sdk_stays_the_locked_one(installed):
    assert installed["en-core-web-sm"] == "3.4.0"
    assert installed["rasa-sdk"] == "3.6.2"  # the training image never gets the bot's rasa-sdk pin


def test_a_changed_included_file_is_a_new_image(demo, demo_image):
    bot = demo[0]
    included = bot / "components" / "requirements.txt"
    included.write_text("inflection  # a comment changes nothing pip reads\n")
    assert cli("build", str(bot), "--print").stdout.splitlines()[0].startswith(f"# image: {demo_image} ")
    included.write_text("inflection\nsix\n")
    try:
        changed = cli("build", str(bot), "--print").stdout.splitlines()[0]
        assert changed.startswith("# image: rasa-gpu/bot:") and demo_image not in changed
    finally:
        included.write_text(DEMO["components/requirements.txt"])


# ---- the action server ----------------------------------------------------------------------------------------------


def test_up_answers_through_a_custom_action_that_imports_the_action_servers_package(demo, docker_client):
    import urllib.request

    bot = demo[0]
    rasa_port, actions_port = free_ports(2)
    try:
        up = cli("up", str(bot), "--rasa-port", str(rasa_port), "--actions-port", str(actions_port))
        assert up.returncode == 0, up.output
        request = urllib.request.Request(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            data=json.dumps({"sender": "demo", "message": "/ask_number"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            replies = [m.get("text") for m in json.loads(response.read())]
        assert replies == ["The big number is 1,234,567."]
        [actions] = [
            c
            for c in docker_client.containers.list(filters={"label": "com.docker.compose.service=actions"})
            if c.labels.get("com.docker.compose.project.working_dir") == str(bot)
        ]
        code, output = actions.exec_run(["python3", "-c", "import rasa_sdk; print(rasa_sdk.__version__)"])
        assert (code, output.decode().strip()) == (0, "3.6.1")  # the bot's pin, not Rasa's range
    finally:
        cli("down", str(bot))
        assert remove_containers_under(docker_client, bot) == []


# ---- refused input: one line, nothing built ---------------------------------------------------------------------------


def assert_nothing_started(result: CliResult, line: str) -> None:
    """The error line is all the command printed: it stopped before a build, a training or a container."""
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [line]


def test_a_refused_option_is_one_line_and_nothing_is_built(model_wheel, tmp_path):
    requirements = DEMO["requirements.txt"] + "-e ./components\n"
    bot = demo_bot(tmp_path / "source", tmp_path / "bot", model_wheel, **{"requirements.txt": requirements})
    result = cli("train", str(bot), *FAST)
    line = assert_one_line_error(result, 1, "requirements.txt:10: '-e ./components' is not supported")
    assert_nothing_started(result, line)


def test_a_spacy_model_nothing_provides_stops_before_training(model_wheel, tmp_path):
    requirements = DEMO["requirements.txt"].replace(f"./models-spacy/{WHEEL}\n", "")
    bot = demo_bot(tmp_path / "source", tmp_path / "bot", model_wheel, **{"requirements.txt": requirements})
    result = cli("train", str(bot), *FAST)
    line = assert_one_line_error(
        result,
        1,
        f"config.yml: SpacyNLP needs the spaCy model {MODEL}, and no requirement provides it; add to requirements.txt "
        f"a wheel or archive in the bot folder (./{MODEL}-….whl), its URL ({MODEL} @ https://…) or its name on your "
        f"index (en-core-web-sm==…)",
    )
    assert_nothing_started(result, line)
    assert not (bot / "models").exists()


def fake_model_wheel(path: Path) -> None:
    """A wheel named like the model that holds no spaCy model (an empty package), made without any tool."""
    info = f"{MODEL}-3.4.0.dist-info"
    files = {
        f"{MODEL}/__init__.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {MODEL}\nVersion: 3.4.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: rasa-gpu-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)


def test_a_model_that_spacy_cannot_load_is_named_and_nothing_is_tagged(model_wheel, tmp_path, docker_client):
    """A wheel of the model's name without spaCy (no rasa[spacy]): the bot stage builds, the check after it names
    the model and spaCy's reason, and the new image gets no name."""
    bot = demo_bot(
        tmp_path / "source",
        tmp_path / "bot",
        model_wheel,
        **{"requirements.txt": f"./models-spacy/{WHEEL}\n"},
    )
    fake_model_wheel(bot / "models-spacy" / WHEEL)
    tag = cli("build", str(bot), "--print").stdout.split()[2]
    result = cli("build", str(bot))
    assert_one_line_error(
        result,
        1,
        f"the new image of Rasa 3.6.21 cannot load the spaCy model {MODEL}: spaCy does not import "
        "(ModuleNotFoundError: No module named 'spacy'); nothing was tagged",
    )
    for name in (tag, tag.replace("-gpu-", "-cpu-")):
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(name)
