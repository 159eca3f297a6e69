"""`rasa-gpu vscode`: VS Code tasks for a bot, from the template in vscode/tasks.json.

A new tasks.json is the template itself (comments included). An existing one (JSON with comments and trailing
commas) is merged by editing its text: rasa-gpu's own tasks, found by label, are replaced where they differ, missing
ones are appended to the tasks list, and every other byte (the user's tasks, comments, formatting) stays as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
from json5.loader import ModelLoader
from json5.model import JSONArray, JSONObject

from . import safefs, templates
from .errors import RasaGpuError

TASKS_FILE = Path(".vscode") / "tasks.json"


class TasksFileError(RasaGpuError):
    """The existing tasks.json cannot be read or has a shape rasa-gpu cannot merge into."""


@dataclass(frozen=True)
class TaskTemplate:
    bot: str  # the bot folder, relative to the workspace folder ("." when they are the same)
    command: str  # how VS Code starts rasa-gpu

    def text(self) -> str:
        """The template with the placeholders filled in, as JSON string content."""
        text = templates.read_text("vscode", "tasks.json")
        if "${" in self.bot:  # VS Code substitutes ${...} in a task's args (${command:...} runs a command)
            raise TasksFileError(
                f"the bot folder's path {self.bot!r} holds '${{', which VS Code would read as a variable in the "
                "tasks; rename the folder"
            )
        for placeholder, value in (("@BOT@", self.bot), ("@RASA_GPU@", self.command)):
            text = text.replace(placeholder, json.dumps(value)[1:-1])
        return text

    def tasks(self) -> list[dict[str, Any]]:
        return list(json5.loads(self.text())["tasks"])


def merge(existing: str, template: TaskTemplate, *, name: str = str(TASKS_FILE)) -> str:
    """The existing tasks.json text with rasa-gpu's tasks updated in place or appended."""
    try:
        model = json5.loads(existing, loader=ModelLoader())
        value = json5.loads(existing)
    except Exception as exc:  # json5 raises its own error types with the position in the message
        raise TasksFileError(
            f"{name} cannot be parsed ({_first_line(exc)}); rasa-gpu did not touch it: fix it, or move it away to "
            "get a new one"
        ) from None
    root = model.value
    if not isinstance(root, JSONObject) or not isinstance(value, dict):
        raise TasksFileError(f"{name} is not a JSON object; rasa-gpu did not touch it")
    twice = _duplicate_key(root)
    if twice is not None:
        raise TasksFileError(
            f'{name} has two "{twice}" keys in one object; rasa-gpu did not touch it: keep one of them and run again'
        )
    ours = template.tasks()
    index = _Offsets(existing)
    tasks_model = next((kv.value for kv in root.key_value_pairs if _key(kv.key) == "tasks"), None)
    if tasks_model is None:
        brace = index.start(root) + 1
        body = ",\n".join(_render(task, 4) for task in ours)
        comma = "," if root.key_value_pairs else ""
        return existing[:brace] + f'\n  "tasks": [\n{body}\n  ]{comma}' + existing[brace:]
    if not isinstance(tasks_model, JSONArray) or not isinstance(value.get("tasks"), list):
        raise TasksFileError(f'{name}: "tasks" is not a list; rasa-gpu did not touch it')
    present = [task.get("label") if isinstance(task, dict) else None for task in value["tasks"]]
    edits: list[tuple[int, int, str]] = []
    appended = []
    for task in ours:
        if task["label"] not in present:
            appended.append(task)
            continue
        i = present.index(task["label"])
        if value["tasks"][i] == task:
            continue  # already what rasa-gpu would write: leave its formatting alone
        element = tasks_model.values[i]
        edits.append(
            (
                index.start(element),
                index.end(element),
                _render(task, _col(element), first_line_indented=False),
            )
        )
    if appended:
        elements = tasks_model.values
        if elements:
            last = elements[-1]
            indent = _col(last)
            if tasks_model.trailing_comma is not None:
                at = index.start(tasks_model.trailing_comma) + 1
                text = "".join(f"\n{_render(task, indent)}," for task in appended)
            else:
                at = index.end(last)
                text = "".join(f",\n{_render(task, indent)}" for task in appended)
        else:
            at = index.start(tasks_model) + 1
            indent = _col(tasks_model) + 2
            text = (
                ",".join(f"\n{_render(task, indent)}" for task in appended) + "\n" + " " * _col(tasks_model)
            )
        edits.append((at, at, text))
    result = existing
    for start, end, text in sorted(edits, reverse=True):
        result = result[:start] + text + result[end:]
    return result


def write_tasks(workspace: Path, template: TaskTemplate) -> tuple[Path, str]:
    """Create or merge WORKSPACE/.vscode/tasks.json. Returns the path and "created", "updated" or "unchanged".
    An updated file's previous text is kept as tasks.json.bak."""
    workspace = workspace.resolve()
    path = safefs.check(workspace, workspace / TASKS_FILE)  # a .vscode/ or tasks.json linked out is refused
    if not path.exists():
        _write(workspace, path, template.text())
        return path, "created"
    try:
        existing = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TasksFileError(f"{path} cannot be read ({exc}); rasa-gpu did not touch it") from None
    merged = merge(existing, template, name=str(path))
    if merged == existing:
        return path, "unchanged"
    _write(workspace, path.with_name(path.name + ".bak"), existing)
    _write(workspace, path, merged)
    return path, "updated"


def _write(workspace: Path, path: Path, text: str) -> None:
    """Atomic write that follows no link out of the workspace (safefs), owned by the workspace's owner when rasa-gpu
    runs as root."""
    owner = None
    if os.geteuid() == 0:
        st = workspace.stat()
        owner = (st.st_uid, st.st_gid)
    safefs.write_file(workspace, path, text.encode("utf-8"), owner=owner)


def _render(task: dict[str, Any], indent: int, *, first_line_indented: bool = True) -> str:
    """A task in the template's style: one key per line, short lists and small objects on one line."""
    text = _json(task, indent)
    return (" " * indent + text) if first_line_indented else text


def _json(value: Any, indent: int) -> str:
    if isinstance(value, list) and all(not isinstance(v, (list, dict)) for v in value):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if (
        isinstance(value, dict)
        and len(value) <= 3
        and all(not isinstance(v, (list, dict)) for v in value.values())
    ):
        return (
            "{ " + json.dumps(value, ensure_ascii=False, separators=(", ", ": "))[1:-1] + " }"
            if value
            else "{}"
        )
    if isinstance(value, dict):
        pad = " " * (indent + 2)
        items = [f"{pad}{json.dumps(k)}: {_json(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        pad = " " * (indent + 2)
        return "[\n" + ",\n".join(pad + _json(v, indent + 2) for v in value) + "\n" + " " * indent + "]"
    return json.dumps(value, ensure_ascii=False)


def _duplicate_key(node: Any) -> str | None:
    """The first key that an object anywhere in the parsed file has twice. A JSON parser keeps one of the two values
    without a word, and the merge edits the text by what it parsed: the other one (a user's task list) would be lost."""
    if isinstance(node, JSONObject):
        keys = [str(_key(kv.key)) for kv in node.key_value_pairs]
        twice = next((key for i, key in enumerate(keys) if key in keys[:i]), None)
        children = [kv.value for kv in node.key_value_pairs]
    elif isinstance(node, JSONArray):
        twice, children = None, list(node.values)
    else:
        return None
    if twice is not None:
        return twice
    return next((key for key in map(_duplicate_key, children) if key is not None), None)


def _key(node: Any) -> Any:
    return getattr(node, "characters", getattr(node, "name", None))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class _Offsets:
    """Text offsets from the parser's 1-based lines and 0-based columns."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        for i, char in enumerate(text):
            if char == "\n":
                self.starts.append(i + 1)

    def start(self, node: Any) -> int:
        return int(self.starts[node.lineno - 1] + node.col_offset)

    def end(self, node: Any) -> int:
        return int(self.starts[node.end_lineno - 1] + node.end_col_offset)


def _col(node: Any) -> int:
    return int(node.col_offset)
