"""The docs name only what exists, and document what does.

README.md and the pages under docs/ are read as a user reads them: every `rasa-gpu COMMAND [SUBCOMMAND]` and every
option they show is one of the click group's (rasa_gpu.cli); every setting named in docs/settings.md's tables, in a
TOML example or in a `key = value` span is one of rasa_gpu/settings.py's, and every setting is in those tables with
its type; docs/exit-codes.md matches rasa_gpu/errors.py; every RASA_GPU_* variable named is read somewhere; every
relative link and anchor resolves. Pure: nothing is started but `mkdocs build --strict` at the end.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

import rasa_gpu
from rasa_gpu import errors, evaluation, requirements, settings
from rasa_gpu.cli import COMMANDS, cli

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]

#: Options the docs name that are not rasa-gpu's: whose they are, and the file of this repository that defines them
#: (None: another program's, e.g. Rasa's or Slurm's).
FOREIGN_OPTIONS = {
    "--domain": None,  # rasa train's: rasa-gpu passes a domain/ folder with it
    "--gres": None,  # sbatch's
    "--python": "tools/gen_locks.py",
    "--cuda-only": "tools/gen_locks.py",
    "--keep": "tools/matrix_check.py",
}
#: snake_case names in code spans that are not settings: whose they are.
OTHER_NAMES = {
    "tensorboard_log_directory": "Rasa's component option",
    "assistant_id": "Rasa's config key",
    "actions_requirements": "a requirements file's name (actions_requirements.txt)",
}


# ---- reading the pages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A piece of code on a page: a line of a code block (`block` is its language, "indented" or "") or an inline span
    (`block` None)."""

    page: Path
    text: str
    block: str | None


def code(page: Path) -> Iterator[Code]:
    """The code of a page: lines of fenced and indented blocks (a console block's `$ ` lines only, without the
    prompt), and the inline spans of the prose between them (a span may go on over a line break, as in Markdown)."""
    fence: str | None = None
    indented = False
    previous_blank = True
    prose: list[str] = []

    def spans() -> Iterator[Code]:
        text = " ".join(line.strip() for line in prose)
        prose.clear()
        for span in re.findall(r"`([^`]+)`", text):
            yield Code(page, span, None)

    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            yield from spans()
            fence = None if fence is not None else line.strip().removeprefix("```")
            continue
        if fence is not None:
            if fence == "console":
                if line.startswith("$ "):
                    yield Code(page, line[2:], fence)
            else:
                yield Code(page, line, fence)
            continue
        indented = line.startswith("    ") and (previous_blank or indented) or (indented and not line.strip())
        previous_blank = not line.strip()
        if indented:
            yield from spans()
            yield Code(page, line, "indented")
        elif line.strip():
            prose.append(line)
        else:
            yield from spans()
    yield from spans()


def all_code() -> list[Code]:
    return [c for page in PAGES for c in code(page)]


def _where(c: Code) -> str:
    return f"{c.page.relative_to(REPO)}: {c.text.strip()}"


# ---- commands and options ------------------------------------------------------------------------------------------

CONTEXT = click.Context(cli)


def _command(name: str) -> click.Command | None:
    return cli.get_command(CONTEXT, name) if name in COMMANDS else None


def _options(command: click.Command) -> set[str]:
    found = {"-h", "--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            found.update(param.opts + param.secondary_opts)
    return found


def _option_tokens(words: list[str]) -> list[str]:
    """The options among a command's words, up to the `--` after which everything is Rasa's."""
    found = []
    for word in words:
        word = word.strip("[](),")
        if word == "--":
            break
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", word):
            found.append(word.partition("=")[0])
    return found


@dataclass(frozen=True)
class Usage:
    """One `rasa-gpu ...` the docs show: its command (and subcommand) and the options given to it."""

    where: str
    words: tuple[str, ...]
    command: click.Command | None
    problem: str | None


def usages(c: Code) -> list[Usage]:
    """Every `rasa-gpu COMMAND ...` in a piece of code (a usage line may hold several, split by ·); a line's
    description after two spaces or a `#` comment is not part of it."""
    text = re.split(r"\s{2,}| # ", c.text.strip())[0]
    found = []
    for segment in re.split(r"(?:^|(?<=[\s(]))rasa-gpu (?=\S)", text)[1:]:
        words = segment.split("·")[0].split()
        if not words:
            continue
        name = words[0].rstrip(",.;:)")
        command = _command(name)
        problem = None if command else f"no command {name!r}"
        if isinstance(command, click.Group):
            following = words[1].strip("[]") if len(words) > 1 else ""
            sub = command.get_command(CONTEXT, following)
            if sub is None and re.fullmatch(r"[a-z]+", following):
                problem = f"no command {name} {following}"
            command = sub or command.get_command(CONTEXT, "list")
        found.append(Usage(_where(c), tuple(words), command, problem))
    return found


def test_every_command_the_docs_show_exists_and_takes_the_options_shown():
    wrong = []
    for c in all_code():
        for usage in usages(c):
            if usage.problem or usage.command is None:
                wrong.append(f"{usage.where}: {usage.problem}")
                continue
            unknown = [o for o in _option_tokens(list(usage.words[1:])) if o not in _options(usage.command)]
            if unknown:
                wrong.append(f"{usage.where}: rasa-gpu {usage.words[0]} has no {', '.join(unknown)}")
    assert not wrong, "\n".join(wrong)


def test_every_option_line_of_a_usage_block_belongs_to_its_command():
    """In a usage block, an indented `--option ...` line describes the block's last `rasa-gpu COMMAND` line."""
    wrong = []
    for page in PAGES:
        current: click.Command | None = None
        for c in code(page):
            if c.block is None:
                continue
            found = usages(c)
            if found:
                current = found[0].command
            elif c.text.strip().startswith("-") and current is not None:
                words = re.split(r"\s{2,}", c.text.strip())[0].replace(",", " ").split()
                unknown = [o for o in _option_tokens(words) if o not in _options(current)]
                if unknown:
                    wrong.append(f"{_where(c)}: rasa-gpu {current.name} has no {', '.join(unknown)}")
    assert not wrong, "\n".join(wrong)


def test_every_option_named_on_its_own_exists():
    """A span such as `--gpu on` or `--no-wait` names an option of some rasa-gpu command, a requirements-file option
    that rasa_gpu/requirements.py reads or refuses, or one listed in FOREIGN_OPTIONS (checked in the file defining
    it)."""
    ours = {o for name in COMMANDS for o in _options(_command(name) or cli)}
    for group in (_command("runs"), _command("jobs")):
        assert isinstance(group, click.Group)
        ours |= {o for sub in group.commands.values() for o in _options(sub)}
    pip_file = requirements.known_options()
    wrong = []
    for c in all_code():
        if c.block is not None or not c.text.startswith("-"):
            continue
        for option in _option_tokens(c.text.replace("/", " ").split()[:1]):
            if option in ours or option in pip_file:
                continue
            owner = FOREIGN_OPTIONS.get(option, "missing")
            if owner == "missing" or (owner and option not in (REPO / owner).read_text(encoding="utf-8")):
                wrong.append(f"{_where(c)}: {option} is no option of rasa-gpu (nor of {owner})")
    assert not wrong, "\n".join(wrong)


def test_every_command_and_subcommand_is_in_the_docs():
    shown = {(u.words[0], u.command.name) for c in all_code() for u in usages(c) if u.command is not None}
    named = {name for name, _ in shown} | {sub for _, sub in shown}
    missing = [name for name in COMMANDS if name not in named]
    for group in ("runs", "jobs"):
        command = _command(group)
        assert isinstance(command, click.Group)
        missing += [f"{group} {sub}" for sub in command.commands if (group, sub) not in shown]
    assert not missing, f"commands no page shows: {missing}"


# ---- settings ------------------------------------------------------------------------------------------------------

#: How docs/settings.md's Type column words each kind of value (rasa_gpu/settings.py's Kind classes).
TYPE_WORDS = {
    settings.Line: "string",
    settings.Lines: "list of strings",
    settings.Number: "whole number",
    settings.Devices: "GPU devices",
    settings.StringTable: "table of strings",
    settings.TableList: "list of tables",
}


def settings_tables() -> dict[str, str]:
    """docs/settings.md's table rows: the setting's name in Settings (slurm_partition for [slurm]'s partition) and
    its Type cell."""
    rows: dict[str, str] = {}
    table = ""
    for line in (DOCS / "settings.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            found = re.search(r"`\[(\w+)\]`", line)
            table = f"{found.group(1)}_" if found else ""
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            key = cells[0].strip("`")
            assert f"{table}{key}" not in rows, f"settings.md lists {table}{key} twice"
            rows[f"{table}{key}"] = cells[1]
    return rows


def test_every_setting_is_documented_and_every_documented_setting_exists():
    documented = settings_tables()
    real = {f.name for f in settings.setting_fields()}
    assert sorted(documented.keys() - real) == [], "settings.md names settings that do not exist"
    assert sorted(real - documented.keys()) == [], "settings that settings.md does not document"


@pytest.mark.parametrize("field", settings.setting_fields(), ids=lambda f: f.name)
def test_the_documented_type_is_the_settings_kind(field):
    documented = settings_tables().get(field.name, "")
    kind = field.metadata["kind"]
    assert TYPE_WORDS[type(kind)] in documented, (field.name, documented)
    for choice in getattr(kind, "choices", ()):
        assert f"`{choice}`" in documented, (field.name, choice, documented)
    if isinstance(kind, settings.Number):
        bound = f"≥ {kind.low}" if kind.high is None else f"{kind.low}–{kind.high}"
        assert bound in documented, (field.name, bound, documented)


def toml_examples() -> list[tuple[str, str]]:
    """Every TOML example: a ```toml block, or a code span that reads as `key = value`."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"^```toml\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
            found.append((page.name, block))
    for c in all_code():
        if c.block is None and re.fullmatch(r"[a-z_-]+ = \S.*", c.text):
            value = c.text.partition(" = ")[2]
            if value not in ("…", "...", "N"):
                found.append((c.page.name, c.text))
    return found


@pytest.mark.parametrize("page,example", toml_examples())
def test_every_toml_example_is_read_by_the_settings_loader(page, example, tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text(example + "\n", encoding="utf-8")
    loaded = settings.load_settings(tmp_path)  # unknown keys and wrong types raise SettingsError
    assert loaded.source == "rasa-gpu.toml"


def test_every_snake_case_name_in_a_code_span_is_a_setting_or_a_module():
    """`keep_models` is a setting (`partition` of [slurm] too), `build_log` a module of rasa_gpu, `example_bot` a
    folder of this repository, `intent_f1` a figure; anything else is in OTHER_NAMES."""
    keys = {f.name for f in settings.setting_fields()}
    keys |= {name.partition("_")[2] for name in keys if name.split("_")[0] in settings.TABLES}

    def known(name: str) -> bool:
        return (
            name in keys
            or name in OTHER_NAMES
            or name in evaluation.FIGURES  # the figures of `rasa test` (rasa-gpu ci's rules)
            or (REPO / "rasa_gpu" / f"{name}.py").is_file()
            or (REPO / name).exists()
        )

    wrong = [
        _where(c)
        for c in all_code()
        if c.block is None and re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", c.text) and not known(c.text)
    ]
    assert not wrong, "\n".join(wrong)


def test_every_table_named_is_one_of_rasa_gpu_toml():
    named = {m for c in all_code() for m in re.findall(r"^\[([a-z]+)\]$", c.text.strip())}
    assert named <= set(settings.TABLES), named - set(settings.TABLES)


def test_every_rasa_gpu_variable_named_is_read_somewhere():
    sources = "".join(
        path.read_text(encoding="utf-8", errors="replace")
        for folder in ("rasa_gpu", "docker", "scripts")
        for path in (REPO / folder).rglob("*")
        if path.is_file() and path.suffix in (".py", ".sh", "")
    ) + "".join((REPO / "tests" / name).read_text(encoding="utf-8") for name in ("conftest.py", "support.py"))
    named = {v for page in PAGES for v in re.findall(r"\bRASA_GPU_[A-Z_]*[A-Z]\b", page.read_text("utf-8"))}
    assert named, "the docs name no RASA_GPU_ variable"
    assert sorted(v for v in named if v not in sources) == []


# ---- exit codes ----------------------------------------------------------------------------------------------------


def _error_classes() -> list[type[BaseException]]:
    """Every error class of rasa_gpu with an exit code: RasaGpuError and its subclasses in every module (each module
    imported, so that the answer does not depend on what other tests imported), and Interrupted."""
    for module in pkgutil.walk_packages(rasa_gpu.__path__, "rasa_gpu."):
        if not module.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(module.name)
    found: list[type[BaseException]] = [errors.RasaGpuError, errors.Interrupted]
    pending = [errors.RasaGpuError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def test_the_exit_codes_page_matches_errors_py():
    """Each class the page names exits with its row's code; every class of errors.py, and every error class elsewhere
    with a code of its own (not 1), is named; the page lists exactly the codes they exit with, 0 and click's 2."""
    classes = {c.__name__: c for c in _error_classes()}
    rows: dict[int, list[str]] = {}
    for line in (DOCS / "exit-codes.md").read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| (\d+) \|", line)
        if found:
            rows[int(found.group(1))] = re.findall(r"`([A-Z]\w+)`", line.split("|")[3])
    for code_, names in rows.items():
        for name in names:
            cls = classes.get(name) or getattr(click.exceptions, name, None)
            assert cls is not None, f"exit-codes.md: {name} is in neither rasa_gpu nor click"
            assert cls.exit_code == code_, f"exit-codes.md: {name} exits {cls.exit_code}, not {code_}"
    listed = {name for names in rows.values() for name in names}
    must = [
        name
        for name, c in classes.items()
        if c.__module__ == errors.__name__ or c.exit_code != 1  # type: ignore[attr-defined]
    ]
    assert sorted(name for name in must if name not in listed) == []
    assert set(rows) == {0, 2} | {c.exit_code for c in classes.values()}  # type: ignore[attr-defined]


# ---- links ---------------------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor of a heading, as Python-Markdown's toc extension makes it (mkdocs' default)."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def test_the_slug_is_markdowns():
    assert slug("Fine-tune: `--finetune`") == "fine-tune-finetune"
    assert (
        slug("Keep models tidy: `keep_models`, `rasa-gpu models`")
        == "keep-models-tidy-keep_models-rasa-gpu-models"
    )


def test_every_relative_link_and_anchor_resolves():
    wrong = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                wrong.append(f"{page.relative_to(REPO)}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                wrong.append(f"{page.relative_to(REPO)}: {target}: no such heading")
    assert not wrong, "\n".join(wrong)


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert sorted(p.name for p in DOCS.glob("*.md") if f" {p.name}" not in nav) == []


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (the docs extra)"
)
def test_the_site_builds_in_strict_mode(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml")]
        + ["--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "settings" / "index.html").is_file()
