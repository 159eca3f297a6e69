"""One grammar for every command: rasa-gpu's options before or after BOT, Rasa's arguments after `--`; every option
that several commands take means one thing (one declaration, one help); the GPU request and its refusal memory have
one owner each. Pure parsing of the real command line (click's make_context): no engine."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click
import pytest
from support import EXAMPLE_BOT, REPO, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import gpu as gpu_rules
from rasa_gpu.cli import COMMANDS, cli
from rasa_gpu.cli._common import PassesToRasa, Renamed
from rasa_gpu.errors import GpuUnavailable, SettingsError
from rasa_gpu.events import Notice
from rasa_gpu.settings import Settings, load_settings

#: The commands whose callback gets Rasa's arguments.
PASSING_TO_RASA = {"rasa", "shell", "submit", "test", "train"}
#: Options that two commands spell alike for different things, and why that is right (an exception needs a reason).
SAME_NAME_OTHER_MEANING = {
    ("runs list", "--rasa-version"): "a filter over the run history: only runs that used this Rasa release",
}


def leaf_commands(group: click.Group = cli, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every command and subcommand of the CLI, by its full name (`jobs cancel`)."""
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        full = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found += leaf_commands(command, full)
        else:
            found.append((full, command))
    return found


COMMANDS_BY_NAME = dict(leaf_commands())


def options_of(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.is_eager]


def sample(option: click.Option, ctx: click.Context) -> list[str]:
    """The option as a user writes it, with a value that differs from its default."""
    if option.is_flag and option.is_bool_flag:
        return [option.secondary_opts[0]] if option.default is True else [option.opts[0]]
    choices = getattr(option.type, "choices", None)
    candidates = [str(c) for c in choices] if choices else ["3", "2", "0.5", "some-value"]
    for raw in candidates:
        try:
            value = option.type.convert(raw, option, ctx)
        except click.BadParameter:
            continue
        if value != option.default:
            return [option.opts[0], raw]
    raise AssertionError(f"no sample value for {option.opts}")


def positionals(command: click.Command, bot: str) -> list[str]:
    """The words a command needs around its options: BOT, and a value for each required argument (JOB_ID, ID, A,
    B)."""
    words = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.name != "rasa_args":
            if param.name == "bot":
                words.append(bot)
            elif param.required:
                words.append("7")
    return words


@pytest.fixture
def bot(tmp_path, monkeypatch) -> str:
    for name in list(os.environ):
        if name.startswith("RASA_GPU_"):
            monkeypatch.delenv(name)  # no option's value may come from the environment here
    folder = tmp_path / "a bot"
    folder.mkdir()
    (folder / "config.yml").write_text("recipe: default.v1\n")
    return str(folder)


def parse(command: click.Command, args: list[str]) -> dict[str, object]:
    return dict(command.make_context("rasa-gpu", list(args)).params)


def test_the_walk_finds_every_command_and_subcommand():
    top = {name.split(" ")[0] for name in COMMANDS_BY_NAME}
    assert top == set(COMMANDS)
    assert {
        "jobs list",
        "jobs cancel",
        "jobs logs",
        "runs list",
        "runs show",
        "runs pin",
        "runs compare",
    } <= set(COMMANDS_BY_NAME)


CASES = [
    pytest.param(name, opts[-1], id=f"{name}:{opts[-1]}")
    for name, command in COMMANDS_BY_NAME.items()
    for opts in (sorted(o.opts, key=len) for o in options_of(command))
]


@pytest.mark.parametrize(("name", "flag"), CASES)
def test_every_option_works_before_and_after_bot(name, flag, bot):
    command = COMMANDS_BY_NAME[name]
    [option] = [o for o in options_of(command) if flag in o.opts]
    written = sample(option, click.Context(command))
    words = positionals(command, bot)
    plain = parse(command, words)
    before = parse(command, [*written, *words])
    after = parse(command, [*words, *written])
    assert before == after, f"rasa-gpu {name}: {written} means something else after BOT"
    assert after[option.name] != plain[option.name], f"rasa-gpu {name} ignored {written}"
    if "bot" in after:
        assert after["bot"] == bot
    if "rasa_args" in after:
        assert after["rasa_args"] == (), f"rasa-gpu {name} handed {written} to Rasa"
        # After `--`, the same words are Rasa's and rasa-gpu's option keeps its default.
        handed = parse(command, [*words, "--", *written])
        assert handed == {**plain, "rasa_args": tuple(written)}


def test_the_commands_that_pass_arguments_to_rasa_share_one_grammar():
    passing = {
        name
        for name, command in COMMANDS_BY_NAME.items()
        if any(p.name == "rasa_args" for p in command.params)
    }
    assert passing == PASSING_TO_RASA
    assert all(isinstance(COMMANDS_BY_NAME[name], PassesToRasa) for name in passing)


def test_an_option_means_one_thing_in_every_command():
    seen: dict[str, tuple[str, tuple[object, ...]]] = {}
    for name, command in COMMANDS_BY_NAME.items():
        for option in options_of(command):
            if isinstance(option, Renamed):  # an old spelling, hidden: its own test below
                continue
            shape = (
                option.help,
                option.metavar,
                option.envvar,
                type(option.type).__name__,
                tuple(getattr(option.type, "choices", ())),
                option.is_flag,
                option.multiple,
            )
            for spelling in option.opts:
                if (name, spelling) in SAME_NAME_OTHER_MEANING:
                    continue
                first = seen.setdefault(spelling, (name, shape))
                assert first[1] == shape, f"{spelling} of `rasa-gpu {name}` differs from that of `{first[0]}`"
    assert {"--gpu", "--gpus", "--set", "-v", "--json", "--host", "--base-image"} <= set(seen)


def test_gpus_names_devices_everywhere_and_a_queued_job_counts_its_gpus_with_gpu_count():
    declared = [o for c in COMMANDS_BY_NAME.values() for o in options_of(c) if "--gpus" in o.opts]
    helps = {o.help for o in declared if not isinstance(o, Renamed)}
    assert len(helps) == 1 and "device ids" in helps.pop()
    [old] = [o for o in options_of(COMMANDS_BY_NAME["submit"]) if "--gpus" in o.opts]
    assert isinstance(old, Renamed) and old.hidden and old.renamed_to == "--gpu-count"
    assert any("--gpu-count" in o.opts for o in options_of(COMMANDS_BY_NAME["submit"]))


# ---- the `--` split and the forms without it -------------------------------------------------------------------


def test_rasa_takes_its_options_after_bot_and_rasas_command_after_dashes(bot):
    params = parse(COMMANDS_BY_NAME["rasa"], [bot, "--base-image", "my/base:1", "--", "data", "validate"])
    assert params["base_image"] == "my/base:1"  # it was Rasa's before: the default base image was used
    assert (params["bot"], params["rasa_args"]) == (bot, ("data", "validate"))


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        (
            "rasa",
            ["{bot}", "data", "validate", "--fail-on-warnings"],
            ("data", "validate", "--fail-on-warnings"),
        ),
        ("rasa", ["{bot}", "data", "--gpu", "off", "validate"], ("data", "validate")),
        ("rasa", ["--", "interactive"], ("interactive",)),
        ("train", ["{bot}", "--augmentation", "0"], ("--augmentation", "0")),
        ("train", ["--augmentation", "0"], ("--augmentation", "0")),
        ("train", ["{bot}", "--force", "--", "--force"], ("--force",)),
        ("test", ["{bot}", "core", "--", "--stories", "tests"], ("--stories", "tests")),
        ("test", ["{bot}", "--fail-on-prediction-errors"], ("--fail-on-prediction-errors",)),
        ("shell", ["{bot}", "--debug", "--gpu", "off"], ("--debug",)),
        ("submit", ["{bot}", "--force", "--", "--augmentation", "0"], ("--augmentation", "0")),
    ],
)
def test_what_reaches_rasa(name, args, expected, bot):
    params = parse(COMMANDS_BY_NAME[name], [a.format(bot=bot) for a in args])
    assert params["rasa_args"] == expected
    assert params["bot"] == (bot if "{bot}" in args else ".")


def test_rasa_gpus_own_options_stay_its_own_wherever_they_stand(bot):
    params = parse(COMMANDS_BY_NAME["train"], [bot, "--force", "--", "--force"])
    assert params["force"] is True and params["rasa_args"] == ("--force",)
    params = parse(COMMANDS_BY_NAME["test"], [bot, "core", "-v", "--", "-v"])
    assert (params["kind"], params["verbose"], params["rasa_args"]) == ("core", True, ("-v",))


def test_the_first_word_of_rasa_is_rasas_unless_it_names_a_bot(bot, tmp_path, monkeypatch):
    monkeypatch.chdir(bot)
    (Path(bot) / "data").mkdir()
    rasa = COMMANDS_BY_NAME["rasa"]
    assert parse(rasa, ["data", "validate"])["bot"] == "."  # the bot's data/ folder holds no config.yml
    missing = parse(rasa, ["./no-such-bot", "--", "data", "validate"])
    assert (missing["bot"], missing["rasa_args"]) == ("./no-such-bot", ("data", "validate"))


def test_test_refuses_a_kind_it_does_not_know(bot):
    result = run_cli("test", bot, "nlx")
    assert result.returncode == 2 and "'nlx' is not one of nlu, core, e2e, all" in result.stderr
    assert "Traceback" not in result.output


# ---- renamed options ---------------------------------------------------------------------------------------------


def test_submit_gpus_still_counts_with_a_notice_and_gpu_count_is_its_name(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    new = run_cli("submit", str(bot), "--dry-run", "--gpu-count", "2")
    old = run_cli("submit", str(bot), "--dry-run", "--gpus", "2")
    assert new.returncode == 0 and old.returncode == 0, new.output + old.output
    assert "#SBATCH --gres=gpu:2" in new.stdout and new.stdout == old.stdout
    assert "warning" not in new.stderr
    [notice] = [line for line in old.stderr.splitlines() if line.startswith("warning:")]
    assert "--gpus is now --gpu-count" in notice
    cpu_job = run_cli("submit", str(bot), "--dry-run", "--gpu-count", "0")
    assert "--gres" not in cpu_job.stdout


def test_a_queued_job_gets_whole_cpus(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    assert_one_line_error(
        run_cli("submit", str(bot), "--dry-run", "--cpus", "1.5"), 1, "--cpus", "whole CPUs"
    )
    assert "#SBATCH --cpus-per-task=3" in run_cli("submit", str(bot), "--dry-run", "--cpus", "3").stdout


def test_base_image_name_is_now_tag(capsys):
    command = COMMANDS_BY_NAME["base-image"]
    params = parse(command, ["--name", "my/base:1"])
    assert (params["tag"], params["name"]) == (None, "my/base:1")
    assert "--name is now --tag" in capsys.readouterr().err
    assert parse(command, ["--tag", "my/base:1"])["tag"] == "my/base:1"
    assert "--name" not in capsys.readouterr().err


# ---- typed options into the settings, and the GPU request parsed once -------------------------------------------


def test_the_command_line_goes_over_the_file_and_is_named_in_messages(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text('gpus = "1"\nbind = "0.0.0.0"\n')
    merged = load_settings(tmp_path).merged(Settings(gpus="0,2", rasa_port=5006))
    assert (merged.gpus, merged.bind, merged.rasa_port) == ("0,2", "0.0.0.0", 5006)
    assert merged.from_cli == {"gpus", "rasa_port"}
    assert merged.gpu_request() == gpu_rules.GpuRequest("auto", ("0", "2"))
    with pytest.raises(SettingsError, match="^--rasa-port must be a port number"):
        load_settings(tmp_path).merged(Settings(rasa_port=0))


def test_gpu_off_on_the_command_line_wins_over_the_devices_of_the_file(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text('gpus = "1"\n')
    assert load_settings(tmp_path).merged(Settings(gpu="off")).gpu_request() == gpu_rules.CPU
    assert load_settings(tmp_path).gpu_request().device_ids == ("1",)
    (tmp_path / "rasa-gpu.toml").write_text('gpus = "1"\ngpu = "off"\n')
    with pytest.raises(SettingsError, match=r"^rasa-gpu.toml: gpus picks devices .* rasa-gpu.toml: gpu off"):
        load_settings(tmp_path).gpu_request()
    with pytest.raises(SettingsError, match="^--gpus picks devices to train on, but --gpu off"):
        Settings().merged(Settings(gpu="off", gpus="0")).gpu_request()
    (tmp_path / "rasa-gpu.toml").write_text('gpus = "first"\n')
    with pytest.raises(SettingsError, match="^rasa-gpu.toml: gpus takes device numbers"):
        load_settings(tmp_path).gpu_request()


def _calls(source: str, name: str) -> int:
    return len(re.findall(rf"\b{name}\(", source))


def test_one_owner_for_the_gpu_request_and_the_refusal_memory():
    sources = {p.relative_to(REPO).as_posix(): p.read_text() for p in (REPO / "rasa_gpu").rglob("*.py")}
    parsing = {path for path, text in sources.items() if _calls(text, "parse_gpu_request")}
    assert parsing == {"rasa_gpu/gpu.py", "rasa_gpu/settings.py"}, parsing
    asking = {path for path, text in sources.items() if _calls(text, "refused_recently")}
    assert asking == {"rasa_gpu/gpu.py"}, asking  # services asks gpu.granted, as gpu.started does
    mode_words = {path for path, text in sources.items() if re.search(r"GpuRequest\(\s*(mode=)?[\"\w]", text)}
    assert mode_words <= {
        "rasa_gpu/gpu.py",
        "rasa_gpu/watch.py",
        "rasa_gpu/benchmark.py",
        "rasa_gpu/doctor/checks.py",
    }
    assert not any("**cli_values" in text for text in sources.values())


# ---- the refusal memory: ask an engine that refused at most once an hour ----------------------------------------


def test_the_refusal_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    notices: list[Notice] = []
    asked: list[str] = []

    def ask(answer: bool):
        def asking() -> bool:
            asked.append("asked")
            return answer

        return asking

    auto = gpu_rules.GpuRequest("auto")
    assert gpu_rules.granted("engine-1", auto, "train", notices.append, ask(False)) is False
    assert len(asked) == 1 and "no NVIDIA runtime" in notices[-1].text and notices[-1].level == "warn"
    assert json.loads((tmp_path / "rasa-gpu" / "gpu-refusals.json").read_text()).keys() == {"engine-1"}
    # Within the hour auto does not ask again, and says so; another engine is asked.
    assert gpu_rules.granted("engine-1", auto, "run the Rasa server", notices.append, ask(True)) is False
    assert (
        len(asked) == 1
        and "within the last hour" in notices[-1].text
        and "run the Rasa server" in notices[-1].text
    )
    assert gpu_rules.granted("engine-2", auto, "train", notices.append, ask(True)) is True and len(asked) == 2
    # on always asks; a refusal is an error, a grant forgets the old refusal.
    on = gpu_rules.GpuRequest("on")
    with pytest.raises(GpuUnavailable, match="NVIDIA Container Toolkit"):
        gpu_rules.granted("engine-1", on, "train", notices.append, ask(False))
    assert gpu_rules.granted("engine-1", on, "train", notices.append, ask(True)) is True
    assert not gpu_rules.refused_recently("engine-1") and len(asked) == 4
    # off never asks.
    assert gpu_rules.granted("engine-1", gpu_rules.CPU, "train", notices.append, ask(True)) is False
    assert len(asked) == 4
