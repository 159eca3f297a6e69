"""Pure parts of services, VS Code tasks and watch: rendering, merging, path rules, batching. No engine needed."""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
from pathlib import Path

import json5
import pytest
import yaml
from support import EXAMPLE_BOT, copy_bot, free_ports

from rasa_gpu import services, vscode, watch
from rasa_gpu.compat import load_matrix
from rasa_gpu.errors import ServicesError, SettingsError
from rasa_gpu.gpu import GpuRequest
from rasa_gpu.images import ActionsImageSpec, default_actions_base
from rasa_gpu.project import BotProject


def plan(**changes) -> services.ServicePlan:
    values = dict(
        project_name="rasa-gpu-bot-abc123",
        user="1000:1000",
        rasa_image="rasa-gpu/rasa:3.6.21-tf2.12.0-gpu-x",
        actions_image="rasa-gpu/actions:3.6.21-y",
        notebook_image="rasa-gpu/notebook:3.6.21-z",
    )
    values.update(changes)
    return services.ServicePlan(**values)


def compose_data(text: str) -> dict:
    return yaml.safe_load(text)["services"]


def test_compose_binds_localhost_and_runs_as_the_bot_owner():
    data = compose_data(services.render_compose(plan()))
    assert data["rasa"]["ports"] == ["127.0.0.1:5005:5005"]
    assert data["actions"]["ports"] == ["127.0.0.1:5055:5055"]
    assert data["rasa"]["user"] == data["actions"]["user"] == "1000:1000"
    assert data["actions"]["volumes"] == ["./:/bot", "./actions:/bot/actions:ro"]
    assert "/health" in " ".join(data["actions"]["healthcheck"]["test"])
    assert "/status" in " ".join(data["rasa"]["healthcheck"]["test"])
    assert data["tensorboard"]["profiles"] == ["tensorboard"] and data["jupyter"]["profiles"] == ["jupyter"]


def test_the_action_server_runs_in_the_bot_folder_with_its_code_read_only_in_both_layouts():
    """As `rasa run actions` in the bot folder: relative paths of an action land in the bot; the code (an actions/
    package, or Rasa 2's root actions.py) is mounted read-only on top, at the path the module `actions` is found."""
    for layout in ("actions", "actions.py"):
        actions = compose_data(services.render_compose(plan(actions_path=layout)))["actions"]
        assert actions["working_dir"] == "/bot" and actions["user"] == "1000:1000"
        assert actions["volumes"] == ["./:/bot", f"./{layout}:/bot/{layout}:ro"]
        assert "env_file" not in actions  # the Rasa server's token is not the action server's business
    release = load_matrix().get("3.6.21")
    dockerfile = ActionsImageSpec(release=release, base_image=default_actions_base(release)).dockerfile()
    assert "\nWORKDIR /bot\n" in dockerfile and '"--actions", "actions"' in dockerfile


def test_duckling_is_a_service_that_rasa_is_pointed_at_without_touching_config_yml():
    without = compose_data(services.render_compose(plan()))
    assert "duckling" not in without and services.DUCKLING_URL_ENV not in without["rasa"]["environment"]
    text = services.render_compose(plan(duckling_image="rasa/duckling:0.2.0.2-r3"))
    data = compose_data(text)
    assert data["duckling"] == {
        "image": "rasa/duckling:0.2.0.2-r3",
        "init": True,
    }  # no host port, no bot folder
    for name in ("rasa", "jupyter"):
        assert data[name]["environment"]["RASA_DUCKLING_HTTP_URL"] == "http://duckling:8000"
    assert "RASA_DUCKLING_HTTP_URL" not in json.dumps(data["actions"])
    assert data["rasa"]["depends_on"] == ["actions"]  # Rasa starts whether or not a Duckling runs
    assert "#   duckling " in text and services.DUCKLING_IMAGE.startswith("rasa/duckling:")
    assert ":" in services.DUCKLING_IMAGE.split("/")[-1] and not services.DUCKLING_IMAGE.endswith(":latest")
    rasa_port, actions_port = free_ports(2)  # a user's (or a parallel test's) services may hold the defaults
    ports = {**services.DEFAULT_PORTS, "rasa": rasa_port, "actions": actions_port}
    services.check_ports(
        plan(duckling_image="d", ports=ports), ["actions", "duckling", "rasa"], []
    )  # not published: no port


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        (
            [
                {"name": "WhitespaceTokenizer"},
                {"name": "DucklingEntityExtractor", "url": "http://localhost:8000"},
            ],
            True,
        ),
        ([{"name": "rasa.nlu.extractors.duckling_entity_extractor.DucklingEntityExtractor"}], True),
        ([{"name": "DucklingHTTPExtractor"}], True),  # Rasa 1.x's name
        ([{"name": "DIETClassifier"}, "DucklingEntityExtractor"], False),  # not an entry Rasa reads
        (None, False),
    ],
)
def test_which_pipelines_ask_for_duckling(pipeline, expected):
    assert services.uses_duckling({"pipeline": pipeline}) is expected


def test_the_duckling_image_comes_from_the_settings_and_is_checked(tmp_path):
    from rasa_gpu.settings import Settings

    bot = BotProject.load(_copy_example(tmp_path))
    assert services.duckling_image(bot, Settings()) is None  # example_bot asks no Duckling
    config = bot.root / "config.yml"
    config.write_text(
        config.read_text().replace(
            "  - name: DIETClassifier", "  - name: DucklingEntityExtractor\n  - name: DIETClassifier"
        )
    )
    bot = BotProject.load(bot.root)
    assert services.duckling_image(bot, Settings()) == services.DUCKLING_IMAGE
    own = Settings(duckling_image="registry.example.com/nlp/duckling:1", source="rasa-gpu.toml")
    assert services.duckling_image(bot, own) == "registry.example.com/nlp/duckling:1"
    with pytest.raises(
        SettingsError, match=r"^rasa-gpu.toml: duckling_image 'duck ling' is not an image reference"
    ):
        services.duckling_image(bot, Settings(duckling_image="duck ling", source="rasa-gpu.toml"))


def test_compose_ports_and_bind_are_configurable():
    ports = {"rasa": 6005, "actions": 6055, "tensorboard": 7006, "jupyter": 9888}
    data = compose_data(services.render_compose(plan(bind="0.0.0.0", ports=ports)))
    assert data["rasa"]["ports"] == ["0.0.0.0:6005:5005"]
    assert data["jupyter"]["ports"] == ["0.0.0.0:9888:8888"]


def test_compose_gpu_reservation_only_when_granted():
    without = compose_data(services.render_compose(plan()))
    assert "deploy" not in without["rasa"]
    with_all = compose_data(services.render_compose(plan(gpu=GpuRequest("auto"))))
    assert with_all["rasa"]["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "count": "all"}
    ]
    assert "deploy" not in with_all["actions"] and "deploy" not in with_all["tensorboard"]
    some = compose_data(services.render_compose(plan(gpu=GpuRequest("on", ("1",)))))
    assert some["jupyter"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["1"]


def test_compose_without_actions_folder_has_no_action_server():
    data = compose_data(services.render_compose(plan(actions_image=None)))
    assert "actions" not in data and "depends_on" not in data["rasa"]


def test_token_is_read_from_the_env_file_not_written_into_the_compose_file(tmp_path):
    bot = BotProject.load(_copy_example(tmp_path))
    services.write_runtime_files(bot, "http://actions:5055/webhook")
    env = services.read_env(bot)
    assert len(env["RASA_AUTH_TOKEN"]) == 48 and env["JUPYTER_TOKEN"] != env["RASA_AUTH_TOKEN"]
    assert (bot.root / services.ENV_FILE).stat().st_mode & 0o777 == 0o600
    text = services.render_compose(plan())
    assert env["RASA_AUTH_TOKEN"] not in text
    # Not on any command line either: the entry script adds it to Rasa's arguments inside its own process.
    rasa = compose_data(text)["rasa"]
    assert "--auth-token" not in json.dumps(rasa) and "RASA_AUTH_TOKEN" not in json.dumps(rasa.get("command"))
    assert "entrypoint" not in rasa and rasa["env_file"] == [services.ENV_FILE]
    services.write_runtime_files(bot, "http://actions:5055/webhook")
    assert services.read_env(bot) == env  # kept, not regenerated
    endpoints = yaml.safe_load((bot.root / services.ENDPOINTS_FILE).read_text())
    assert endpoints["action_endpoint"]["url"] == "http://actions:5055/webhook"
    assert "rest" in yaml.safe_load((bot.root / services.CREDENTIALS_FILE).read_text())


def test_user_edits_of_the_compose_file_are_kept_and_said(tmp_path):
    bot = BotProject.load(_copy_example(tmp_path))
    first = services.render_compose(plan())
    assert services.write_compose(bot, first)[1] == "written"
    assert services.write_compose(bot, first)[1] == "unchanged"
    second = services.render_compose(plan(rasa_image="rasa-gpu/rasa:new"))
    assert services.write_compose(bot, second)[1] == "written"  # not edited: regenerated
    path = bot.root / services.COMPOSE_FILE
    edited = path.read_text().replace("interval: 3s", "interval: 10s")
    path.write_text(edited)
    assert services.is_user_edited(edited)
    third = services.render_compose(plan(rasa_image="rasa-gpu/rasa:newer"))
    assert services.write_compose(bot, third)[1] == "kept"
    assert path.read_text() == edited
    assert (bot.root / services.PROPOSED_FILE).read_text() == third
    assert services.write_compose(bot, third, regenerate=True)[1] == "written"
    assert path.read_text() == third and path.with_name(path.name + ".bak").read_text() == edited


def test_busy_port_names_the_port_and_the_setting():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = plan(ports={"rasa": port, "actions": 5055, "tensorboard": 6006, "jupyter": 8888})
        with pytest.raises(ServicesError, match=rf"port {port} on 127.0.0.1 .*rasa_port.*--rasa-port"):
            services.check_ports(busy, ["rasa"], [])


def test_tensorboard_overrides_only_for_components_in_the_config():
    config = {
        "pipeline": [{"name": "DIETClassifier"}],
        "policies": [{"name": "TEDPolicy"}, {"name": "RulePolicy"}],
    }
    assert services.tensorboard_overrides(config) == [
        "DIETClassifier.tensorboard_log_directory=.rasa-gpu/tensorboard/DIETClassifier",
        "TEDPolicy.tensorboard_log_directory=.rasa-gpu/tensorboard/TEDPolicy",
    ]


def test_actions_image_pins_the_matching_rasa_sdk():
    release = load_matrix().get("3.6.21")
    spec = ActionsImageSpec(
        release=release, base_image=default_actions_base(release), requirements=("requests",)
    )
    text = spec.dockerfile()
    assert 'pip install "rasa-sdk>=3.6.2,<3.7.0"' in text
    assert text.startswith("# Rendered by rasa-gpu") and "FROM python:3.10-slim AS actions" in text
    assert "actions-requirements.txt" in text and spec.tag().startswith("rasa-gpu/actions:3.6.21-")
    assert ActionsImageSpec(release=release, base_image="x").tag() != spec.tag()
    assert default_actions_base(load_matrix().get("2.1.3")) == "python:3.8-slim"


# ---- VS Code tasks ------------------------------------------------------------------------------------------------

USER_TASKS = """// My own notes about these tasks
{
  "version": "2.0.0",
  /* a block comment */
  "tasks": [
    // lint first
    {
      "label": "lint",
      "type": "shell",
      "command": "ruff check .", // trailing comment
    },
    {"label": "Train bot (GPU)", "type": "shell", "command": "old command"},
  ],
}
"""


def template() -> vscode.TaskTemplate:
    return vscode.TaskTemplate(bot="example_bot", command="rasa-gpu")


def test_template_has_the_eight_tasks_with_train_gpu_as_default_build():
    tasks = {t["label"]: t for t in template().tasks()}
    assert list(tasks) == [
        "Train bot (GPU)",
        "Train bot (CPU)",
        "Start services",
        "Stop services",
        "Watch and retrain",
        "Benchmark CPU vs GPU",
        "Test bot",
        "Validate data",
    ]
    assert tasks["Train bot (GPU)"]["group"] == {"kind": "build", "isDefault": True}
    assert tasks["Watch and retrain"]["isBackground"] is True
    assert all(t["args"][1] == "example_bot" for t in tasks.values())


def test_merge_keeps_user_tasks_and_comments_and_updates_ours_in_place():
    merged = vscode.merge(USER_TASKS, template())
    for kept in ("// My own notes", "/* a block comment */", "// lint first", "// trailing comment"):
        assert kept in merged
    data = json5.loads(merged)
    labels = [t["label"] for t in data["tasks"]]
    assert labels[0] == "lint" and labels[1] == "Train bot (GPU)"  # updated where it was
    assert labels.count("Train bot (GPU)") == 1 and len(labels) == 9
    assert data["tasks"][1] == template().tasks()[0]
    assert "old command" not in merged
    assert vscode.merge(merged, template()) == merged  # twice: no change


def test_merge_into_files_without_tasks_or_with_an_empty_list():
    for text in ('{"version": "2.0.0"}', '{"version": "2.0.0", "tasks": []}', "{}"):
        merged = vscode.merge(text, template())
        assert [t["label"] for t in json5.loads(merged)["tasks"]] == [t["label"] for t in template().tasks()]
        assert vscode.merge(merged, template()) == merged


@pytest.mark.parametrize(
    "text,reason",
    [('{"tasks": [', "cannot be parsed"), ("[1, 2]", "not a JSON object"), ('{"tasks": {}}', "not a list")],
)
def test_unmergeable_tasks_json_is_refused(text, reason):
    with pytest.raises(vscode.TasksFileError, match=reason):
        vscode.merge(text, template())


def test_write_tasks_creates_merges_and_keeps_a_backup(tmp_path):
    path, status = vscode.write_tasks(tmp_path, template())
    assert status == "created" and "// VS Code tasks for a Rasa bot" in path.read_text()
    assert vscode.write_tasks(tmp_path, template())[1] == "unchanged"
    path.write_text(USER_TASKS)
    assert vscode.write_tasks(tmp_path, template())[1] == "updated"
    assert path.with_name("tasks.json.bak").read_text() == USER_TASKS


def test_problem_matcher_reads_rasa_gpu_error_lines():
    matcher = template().tasks()[0]["problemMatcher"]
    pattern = matcher["pattern"]
    line = "error: data/nlu.yml:7:3: invalid YAML: could not find expected ':'"
    match = re.match(pattern["regexp"], line)
    assert match is not None
    assert match.group(pattern["file"]) == "data/nlu.yml"
    assert (match.group(pattern["line"]), match.group(pattern["column"])) == ("7", "3")
    assert match.group(pattern["message"]) == "invalid YAML: could not find expected ':'"
    assert re.match(pattern["regexp"], "error: cannot reach a Docker engine at x") is None


# ---- watch --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,kind",
    [
        ("data/nlu.yml", "train"),
        ("data/sub/rules.yaml", "train"),
        ("domain.yml", "train"),
        ("domain/intents.yml", "train"),
        ("config.yml", "train"),
        ("components/my_featurizer.py", "train"),
        ("actions/actions.py", "actions"),
        ("actions/requirements.txt", "actions"),
        ("actions/__pycache__/actions.cpython-39.pyc", None),
        ("data/sedAb12Cd", None),  # sed -i's temp file
        ("data/.nlu.yml.swp", None),
        ("data/nlu.yml~", None),
        ("data/4913", None),
        ("data/.#nlu.yml", None),
        ("data/nlu.yml___jb_tmp___", None),
        ("models/20260101-model.tar.gz", None),
        (".rasa/cache/cache.db", None),
        (".rasa-gpu/last-train.json", None),
        (".git/index", None),
        ("tests/test_stories.yml", None),
        ("endpoints.yml", None),
        ("README.md", None),
    ],
)
def test_watch_classifies_paths(path, kind):
    root = Path("/bots/shop")
    assert watch.classify(root, str(root / path)) == kind


def test_a_burst_becomes_one_batch_and_a_pause_starts_a_new_one():
    changes: queue.Queue = queue.Queue()

    def burst(n: int) -> None:
        for i in range(n):
            changes.put(("train", f"data/nlu.yml#{i}"))
            time.sleep(0.001)

    threading.Thread(target=burst, args=(100,)).start()
    started = time.monotonic()
    batch = watch._next_batch(changes, quiet=0.3)
    assert len(batch) == 100
    assert time.monotonic() - started >= 0.3
    timer = threading.Timer(0.5, burst, args=(3,))
    timer.start()
    assert len(watch._next_batch(changes, quiet=0.3)) == 3
    assert changes.empty()


def _copy_example(tmp_path: Path) -> Path:
    return copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)  # its sources only, not the user's models


def test_vscode_template_file_is_valid_jsonc():
    text = (Path(__file__).parent.parent / "vscode" / "tasks.json").read_text()
    data = json5.loads(text)
    assert data["version"] == "2.0.0"
    assert json.loads(json.dumps(data))  # plain JSON values only
