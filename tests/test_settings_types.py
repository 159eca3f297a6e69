"""Every setting, given a value of the wrong type or a line break, in a bot's rasa-gpu.toml: the real CLI says so in
one line that names the file, the key and what it must be, and stops (never "internal error", never a traceback).

The keys come from the code's own table (settings.setting_fields and the Kind each field declares), so a setting
added later is covered without touching this file; a new Kind fails here until it has its wrong values below.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import settings
from rasa_gpu.errors import SettingsError

#: Values that each Kind must refuse: a wrong type first, then a line break where the Kind holds text.
WRONG: dict[type[settings.Kind], list[Any]] = {
    settings.Line: [7, 3.6, True, ["a"], "gpu\nrm -rf ~"],
    settings.Lines: [5, [1], {"a": "b"}, ["ok.pem", "x\r\ny.pem"]],
    settings.Number: ["x", 1.5, True],
    settings.Devices: [1.5, True, [], "0\n1"],
    settings.StringTable: [5, {"a": 1}, {"a": "b\nc"}],
    settings.TableList: [5, ["x"]],
}


def kind(field: Any) -> settings.Kind:
    return field.metadata["kind"]


def toml(value: Any) -> str:
    """A Python value as a TOML value (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def setting_line(name: str, value: Any) -> tuple[str, str]:
    """The TOML text that sets `name` to `value`, and the key as the message must name it."""
    table = next((t for t in settings.TABLES if name.startswith(f"{t}_")), None)
    if table is None:
        return f"{name} = {toml(value)}\n", name
    key = name[len(table) + 1 :]
    return f"[{table}]\n{key} = {toml(value)}\n", f"[{table}] {key}"


#: Every wrong value for every key: read by load_settings, as every command does.
CASES = [
    pytest.param(field.name, kind(field), value, id=f"{field.name}={value!r}")
    for field in settings.setting_fields()
    for value in WRONG[type(kind(field))]
]
#: A wrong type for every key, through the real CLI.
CLI_CASES = [
    pytest.param(field.name, kind(field), WRONG[type(kind(field))][0], id=field.name)
    for field in settings.setting_fields()
]


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    return copy_bot(EXAMPLE_BOT, tmp_path_factory.mktemp("types") / "bot", owner=None)


def test_every_setting_declares_its_kind():
    names = {f.name for f in settings.setting_fields()}
    assert names >= {"rasa_version", "ca_certs", "base_image", "slurm_partition", "kubernetes_tolerations"}
    for field in settings.setting_fields():
        assert isinstance(field.metadata.get("kind"), settings.Kind), field.name


def submit_dry_run(bot):
    """A command that reads the settings and needs no engine and no cluster."""
    return run_cli("submit", str(bot), "--dry-run", timeout=120)


def expected_words(rule: settings.Kind, value: Any) -> str:
    line_break = any("\n" in s or "\r" in s for s in _strings(value))
    return "holds a line break" if line_break else f"must be {rule.expected}"


@pytest.mark.parametrize("name, rule, value", CLI_CASES)
def test_a_wrong_type_is_one_line_naming_file_key_and_type(bot, name, rule, value):
    text, key = setting_line(name, value)
    (bot / "rasa-gpu.toml").write_text(text, encoding="utf-8")
    result = submit_dry_run(bot)
    line = assert_one_line_error(result, 1, f"rasa-gpu.toml: {key} {expected_words(rule, value)}")
    assert result.stderr.strip() == line and "internal error" not in result.output


@pytest.mark.parametrize("name, rule, value", CASES)
def test_every_wrong_value_is_refused_in_one_line(tmp_path, name, rule, value):
    text, key = setting_line(name, value)
    (tmp_path / "rasa-gpu.toml").write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as refused:
        settings.load_settings(tmp_path)
    message = str(refused.value)
    assert message.startswith(f"rasa-gpu.toml: {key} {expected_words(rule, value)}") and "\n" not in message


def _strings(value: Any) -> list[str]:
    """The strings in a value, at any depth."""
    if isinstance(value, str):
        return [value]
    values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for v in values for s in _strings(v)]


def test_the_known_failures_of_the_issue(bot):
    """The values that ended in "internal error" or were taken without a word."""
    for text, needle in (
        (
            "rasa_version = 3.6\n",
            "rasa-gpu.toml: rasa_version must be a string (in quotes), not the number 3.6",
        ),
        ("ca_certs = 5\n", "rasa-gpu.toml: ca_certs must be a string or a list of strings"),
        ("base_image = 7\n", "rasa-gpu.toml: base_image must be a string (in quotes), not the number 7"),
        ("[slurm]\npartition = 5\n", "rasa-gpu.toml: [slurm] partition must be a string (in quotes)"),
        ('[slurm]\npartition = "gpu\\nrm -rf ~"\n', "rasa-gpu.toml: [slurm] partition holds a line break"),
        ("slurm = 5\n", "rasa-gpu.toml: slurm must be a table"),
        ('"a\\nb" = 1\n', "rasa-gpu.toml: unknown setting(s) 'a\\nb'"),
    ):
        (bot / "rasa-gpu.toml").write_text(text, encoding="utf-8")
        result = submit_dry_run(bot)
        assert result.stderr.strip() == assert_one_line_error(result, 1, needle)


def test_a_settings_file_that_is_not_utf8(bot):
    (bot / "rasa-gpu.toml").write_bytes(b'base_image = "caf\xe9"\n')  # Latin-1
    result = submit_dry_run(bot)
    line = assert_one_line_error(result, 1, "rasa-gpu.toml is not UTF-8 text", "save it as UTF-8")
    assert result.stderr.strip() == line and "internal error" not in result.output
    (bot / "rasa-gpu.toml").unlink()
    (bot / "pyproject.toml").write_bytes(b'[tool.rasa-gpu]\nbase_image = "caf\xe9"\n')
    try:
        assert_one_line_error(submit_dry_run(bot), 1, "pyproject.toml is not UTF-8 text")
    finally:
        (bot / "pyproject.toml").unlink()


def test_pyproject_tool_table_is_checked_the_same(bot):
    (bot / "pyproject.toml").write_text(
        '[tool.rasa-gpu]\nbase-image = 7\n[tool.rasa-gpu.slurm]\npartition = "a"\n'
    )
    try:
        assert_one_line_error(
            submit_dry_run(bot), 1, "pyproject.toml [tool.rasa-gpu]: base_image must be a string"
        )
        (bot / "pyproject.toml").write_text("[tool]\nrasa-gpu = 5\n")
        assert_one_line_error(submit_dry_run(bot), 1, "pyproject.toml [tool.rasa-gpu] must be a table")
    finally:
        (bot / "pyproject.toml").unlink()


def test_a_line_break_in_an_option_names_the_option(bot):
    (bot / "rasa-gpu.toml").unlink(missing_ok=True)
    result = run_cli("submit", str(bot), "--dry-run", "--partition", "gpu\n#SBATCH --uid=0", timeout=120)
    assert_one_line_error(result, 1, "--partition holds a line break")
    result = run_cli(
        "submit", str(bot), "--dry-run", env={"RASA_GPU_BASE_IMAGE": "base\nRUN id"}, timeout=120
    )
    assert_one_line_error(result, 1, "--base-image holds a line break")


def test_right_values_are_taken_as_given(tmp_path):
    """The other side: every Kind takes what the README's settings look like, in the form the code uses."""
    (tmp_path / "rasa-gpu.toml").write_text(
        'rasa_version = "3.6.21"\nca_certs = "corp.pem"\ngpus = [0, 1]\nset = ["epochs=5"]\nkeep_models = 3\n'
        'gpu = "on"\nregistry = "localhost:5000"\n[slurm]\npartition = "gpu"\ngpus = 2\n'
        '[kubernetes]\nnode_selector = { "nvidia.com/gpu.present" = "true" }\n'
        'tolerations = [{ key = "nvidia.com/gpu", operator = "Exists" }]\n'
    )
    s = settings.load_settings(tmp_path)
    assert (s.rasa_version, s.ca_certs, s.gpus, s.set, s.keep_models) == (
        "3.6.21",
        ["corp.pem"],
        "0,1",
        ["epochs=5"],
        3,
    )
    assert (s.slurm_partition, s.slurm_gpus, s.registry) == ("gpu", 2, "localhost:5000")
    assert s.kubernetes_node_selector == {"nvidia.com/gpu.present": "true"}
    assert s.merged(settings.Settings(ca_certs=("a.pem", "b.pem"), resources_gpus=0)).ca_certs == [
        "a.pem",
        "b.pem",
    ]
    with pytest.raises(SettingsError, match="^--ca-cert holds a line break"):
        s.merged(settings.Settings(ca_certs=("a.pem\n",)))


@pytest.mark.parametrize(
    "toleration, words",
    [
        (
            '{ key = "nvidia.com/gpu", operater = "Exists" }',
            "table 1 has no field 'operater' (its fields: key, ",
        ),
        ('{ key = "a" }, { operator = "Sometimes" }', "table 2, operator must be one of Exists, Equal, not"),
        ('{ effect = "NoSchedule\\nx" }', "table 1, effect holds a line break"),
        ("{ key = 5 }", "table 1, key must be a string (in quotes), not the number 5"),
        (
            '{ tolerationSeconds = "60" }',
            "table 1, tolerationSeconds must be a whole number of seconds, not '60'",
        ),
    ],
)
def test_each_toleration_is_checked_field_by_field(tmp_path, toleration, words):
    """A toleration with a misspelt field or a wrong value is refused where it is read, not by the cluster later."""
    (tmp_path / "rasa-gpu.toml").write_text(f"[kubernetes]\ntolerations = [{toleration}]\n")
    with pytest.raises(SettingsError) as refused:
        settings.load_settings(tmp_path)
    message = str(refused.value)
    assert message.startswith(f"rasa-gpu.toml: [kubernetes] tolerations, {words}"), message
    assert "\n" not in message


def test_a_full_toleration_is_taken_as_given(tmp_path):
    line = '{ key = "gpu", operator = "Equal", value = "a100", effect = "NoExecute", tolerationSeconds = 60 }'
    (tmp_path / "rasa-gpu.toml").write_text(f"[kubernetes]\ntolerations = [{line}]\n")
    assert settings.load_settings(tmp_path).kubernetes_tolerations == [
        {"key": "gpu", "operator": "Equal", "value": "a100", "effect": "NoExecute", "tolerationSeconds": 60}
    ]
