"""A bot's pyproject.toml: PEP 621 dependencies and extras, poetry's dependencies and groups, as requirement lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RequirementsError
from .sets import ACTIONS_GROUP, PYPROJECT, RASA_PACKAGES, canonical


@dataclass(frozen=True)
class _Pyproject:
    main: list[tuple[str, str]] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)


def read_pyproject(root: Path, *, rasa_only: bool = False) -> _Pyproject:
    """pyproject.toml's requirement lines, each with where it is: the main dependencies ([project] dependencies,
    [tool.poetry.dependencies] but python; only Rasa's own with `rasa_only`) and the action server's (the `actions`
    extra or poetry group)."""
    path = root / PYPROJECT
    if not path.is_file():
        return _Pyproject()
    from ..settings import read_toml

    data = read_toml(path)
    project = _table(data, "project")
    poetry = _table(data, "tool", "poetry")
    main = _strings(project.get("dependencies"), "[project] dependencies")
    dependencies = _table(poetry, "dependencies")
    if rasa_only:
        main = [(where, line) for where, line in main if _name_of(line) in RASA_PACKAGES]
        dependencies = {name: v for name, v in dependencies.items() if canonical(name) in RASA_PACKAGES}
    actions = _strings(
        _table(project, "optional-dependencies").get(ACTIONS_GROUP),
        f"[project.optional-dependencies] {ACTIONS_GROUP}",
    )
    main += _poetry(dependencies, "[tool.poetry.dependencies]", root)
    actions += _poetry(
        _table(poetry, "group", ACTIONS_GROUP, "dependencies"),
        f"[tool.poetry.group.{ACTIONS_GROUP}.dependencies]",
        root,
    )
    return _Pyproject(main, actions)


def _name_of(line: str) -> str:
    """The canonical name a requirement line starts with ("" when it starts with none)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return canonical(found.group(1)) if found else ""


def _table(data: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequirementsError(f"{PYPROJECT} {where} must be a list of strings (PEP 508 requirements)")
    return [(f"{PYPROJECT} {where}", v) for v in value]


def _poetry(dependencies: dict[str, Any], table: str, root: Path) -> list[tuple[str, str]]:
    """Poetry's dependencies as PEP 508 lines: a version string (^1.2, ~1.2, 1.2.3, *, >=1,<2) or a table with
    version, extras, markers, optional (left out, as poetry leaves it out), url or path."""
    lines = []
    for name, value in dependencies.items():
        where = f"{PYPROJECT} {table} {name}"
        if name.lower() == "python":
            continue
        spec = value if isinstance(value, dict) else {"version": value}
        if not isinstance(spec.get("version", "*"), str):
            raise RequirementsError(f"{where}: a list of constraints is not supported here; give one version")
        unknown = sorted(set(spec) - {"version", "extras", "markers", "optional", "url", "path"})
        if unknown:
            raise RequirementsError(
                f"{where}: '{unknown[0]}' is not supported in an image build; give a version, extras, markers, a url, "
                "or the path of a wheel or sdist in the bot folder"
            )
        if spec.get("optional"):
            continue
        extras = spec.get("extras") or []
        if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
            raise RequirementsError(f"{where}: extras must be a list of strings")
        head = f"{name}[{','.join(extras)}]" if extras else name
        if "path" in spec:
            head = str(spec["path"])
            if not head.startswith(("./", "../")):
                head = f"./{head}"
        elif "url" in spec:
            head = f"{head} @ {spec['url']}"
        else:
            head += _poetry_to_pep440(str(spec.get("version", "*")))
        markers = spec.get("markers")
        lines.append((where, f"{head} ; {markers}" if isinstance(markers, str) and markers else head))
    return lines


_POETRY_CARET = re.compile(r"^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_POETRY_TILDE = re.compile(r"^~(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _poetry_to_pep440(spec: str) -> str:
    from ..compat import is_exact_version

    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    if m := _POETRY_CARET.match(spec):
        major, minor, patch = (int(x) if x else 0 for x in m.groups())
        upper = f"{major + 1}.0.0" if major else f"0.{minor + 1}.0"
        return f">={major}.{minor}.{patch},<{upper}"
    if m := _POETRY_TILDE.match(spec):
        major, minor, patch = (int(x) if x else 0 for x in m.groups())
        return (
            f">={major}.{minor}.{patch},<{major}.{minor + 1}.0" if m.group(2) else f">={major},<{major + 1}"
        )
    if is_exact_version(spec):
        return f"=={spec}"
    return spec
