"""`rasa data validate`'s findings as problem lines (`warning: domain.yml:12:5: …`) for editors.

Rasa reports most findings without a place: Python warnings (`…/rasa/validator.py:76: UserWarning: The intent
'x' is not used in any story or rule.`, a "More info at" line after some) and log lines (`… WARNING rasa.validator
- …`). Each finding names what it is about in quotes; rasa-gpu finds where that name is written in the bot's files
(the domain for what the domain lists, the stories and rules for what they use, the NLU data for examples) and
points there. A schema error names its own file and line (`in domain.yml:12:`), which is used as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .project import BotProject

_PY_WARNING = re.compile(r"^(?P<source>\S+\.py):\d+: (?P<category>\w*Warning): (?P<message>.*)$")
_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?P<level>WARNING|ERROR)\s+\S+\s+- (?P<message>.*)$")
_SCHEMA_PLACE = re.compile(r"^\s*in (?P<file>[^\s:][^:]*):(?P<line>\d+):\s*$")
_QUOTED = re.compile(r"'([^'\s]+)'")
_NOT_A_FINDING = ("More info at", "Story structure validation", "No story structure conflicts")


@dataclass(frozen=True)
class Problem:
    severity: str  # error | warning
    file: str  # relative to the bot folder
    line: int
    column: int
    message: str

    def line_text(self) -> str:
        return f"{self.severity}: {self.file}:{self.line}:{self.column}: {self.message}"


def validate_args(project: BotProject) -> list[str]:
    """`rasa data validate` of the bot's own domain, data and config, as paths in its container."""
    return [
        "data",
        "validate",
        "--domain",
        f"/bot/{project.relative(project.domain)}",
        "--data",
        f"/bot/{project.relative(project.data)}",
        "--config",
        f"/bot/{project.relative(project.config)}",
    ]


def problems(output: str, project: BotProject) -> list[Problem]:
    """The findings in Rasa's output, each placed in the bot's files as well as its words allow."""
    from .progress import ANSI

    found: list[Problem] = []
    for severity, message, place in _findings(ANSI.sub("", output).splitlines()):
        if place is not None:
            file, line = place
            found.append(Problem(severity, _relative(file), line, 1, message))
        else:
            found.append(_placed(severity, message, project))
    return found


def _findings(lines: list[str]) -> Iterator[tuple[str, str, tuple[str, int] | None]]:
    i = 0
    while i < len(lines):
        text = lines[i].rstrip()
        i += 1
        if (m := _SCHEMA_PLACE.match(text)) and i < len(lines):
            detail = lines[i].strip()
            i += 1
            yield "error", detail, (m.group("file"), int(m.group("line")))
            continue
        if m := _PY_WARNING.match(text):
            if m.group("category") != "UserWarning" or "/rasa/" not in m.group("source"):
                continue  # a library's deprecation notice (SQLAlchemy, pkg_resources, jax): not about the bot
            severity, message = "warning", m.group("message").strip()
        elif m := _LOG.match(text):
            severity, message = m.group("level").lower(), m.group("message").strip()
        else:
            continue
        if not message or message.startswith(_NOT_A_FINDING):
            continue
        yield severity, message, None


def _placed(severity: str, message: str, project: BotProject) -> Problem:
    names = _QUOTED.findall(message)
    for path in _candidates(message, project):
        for name in names:
            where = _find(path, name)
            if where is not None:
                return Problem(severity, project.relative(path), where[0], where[1], message)
    fallback = next(iter(_candidates(message, project)), project.domain)
    return Problem(severity, project.relative(fallback), 1, 1, message)


def _candidates(message: str, project: BotProject) -> list[Path]:
    """The files a finding most likely points into, most likely first."""
    domain = [project.domain] if project.domain.is_file() else _yaml(project.domain)
    data = _yaml(project.data)
    stories = [p for p in data if _mentions(p, ("stories:", "rules:"))]
    nlu = [p for p in data if _mentions(p, ("nlu:", "responses:"))]
    lowered = message.lower()
    if "not used in" in lowered:  # something the domain lists and nothing uses
        order = domain + nlu + stories
    elif "used in" in lowered and ("stor" in lowered or "rule" in lowered or "block" in lowered):
        order = stories + domain + nlu
    elif "training data" in lowered or "example" in lowered:
        order = nlu + domain + stories
    else:
        order = domain + stories + nlu
    return list(dict.fromkeys(order))


def _yaml(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _mentions(path: Path, keys: Iterable[str]) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(re.search(rf"^{re.escape(k)}", text, re.MULTILINE) for k in keys)


def _find(path: Path, name: str) -> tuple[int, int] | None:
    """The first line and column where `name` is written as a whole word (not inside a comment line)."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            continue
        if m := pattern.search(line):
            return number, m.start() + 1
    return None


def _relative(file: str) -> str:
    return file[len("/bot/") :] if file.startswith("/bot/") else file.lstrip("./") or file
