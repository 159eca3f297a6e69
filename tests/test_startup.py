"""Start-up stays light: the help loads no heavy library, and a command parses each YAML file of the bot once.

Timings are in benchmarks/startup.py; these tests check what makes them, without a clock.
"""

from __future__ import annotations

import subprocess
import sys

from support import EXAMPLE_BOT, copy_bot

from rasa_gpu import yamlfile
from rasa_gpu.project import BotProject

HEAVY = ("docker", "requests", "rich", "yaml", "json5", "watchdog", "packaging", "sqlite3", "filelock")


def _run_in_process(*args: str) -> tuple[str, set[str]]:
    """What `rasa-gpu ARGS` prints (stdout and stderr) and the modules it loaded, in a fresh interpreter."""
    code = (
        "import sys\n"
        "from rasa_gpu.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('modules:', *sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *printed, modules = proc.stdout.splitlines()
    return "\n".join(printed) + proc.stderr, set(modules.split()[1:])


def _modules_after(*args: str) -> set[str]:
    return _run_in_process(*args)[1]


def test_help_loads_no_heavy_library():
    # A command's help shows choices that the settings own (GPU modes): those load packaging, nothing else.
    for args, allowed in ((["--help"], ()), (["train", "--help"], ("packaging",)), (["runs", "--help"], ())):
        loaded = {name.split(".")[0] for name in _modules_after(*args)}
        heavy = loaded & set(HEAVY) - set(allowed)
        assert not heavy, (args, sorted(heavy))


def test_each_yaml_file_is_parsed_once_for_load_and_the_change_check(tmp_path, monkeypatch):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    parsed: list[str] = []
    real = yamlfile.load
    monkeypatch.setattr(yamlfile, "load", lambda text: parsed.append(text) or real(text))
    project = BotProject.load(bot)
    first = project.inputs_digest()
    assert len(parsed) == len(list(project.yaml_files()))
    assert project.inputs_digest() == first and len(parsed) == len(list(project.yaml_files()))
    (bot / "data" / "nlu.yml").write_text((bot / "data" / "nlu.yml").read_text() + "\n# edited\n")
    assert project.inputs_digest() == first  # a comment: parsed again, same content
    assert len(parsed) == len(list(project.yaml_files())) + 1


def test_a_no_change_skip_and_a_cache_hit_build_load_neither_docker_py_nor_rich(bot_copy, built_image):
    # Real engine, real bot: the build asks the engine over its socket with the standard library (is the image
    # there), the skip does not contact it at all. docker-py with requests and rich are most of what both would cost.
    for args, said in (
        (["build", str(bot_copy)], f"{built_image} found (cached, nothing built)"),
        (["train", str(bot_copy), "--gpu", "off"], "Nothing changed since the newest model; not training"),
    ):
        output, modules = _run_in_process(*args)
        assert said in output, output
        loaded = {name.split(".")[0] for name in modules}
        assert not loaded & {"docker", "requests", "urllib3", "rich"}, (args, sorted(loaded & set(HEAVY)))
