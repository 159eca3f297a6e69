"""What `rasa-gpu ci` tests on, held fixed: the bot's own NLU test files and test stories under tests/ where it has
them, else a held-out split of its NLU data, with a training copy of the bot that lacks those examples.

The split is per example, not per run: an example is held out when the sha256 of its intent and text falls in one
fifth of the range, so adding or removing other examples never moves it between the two sets (an intent whose every
example would be held out keeps one for training). Nothing here runs a container.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ProjectError
from ..project import BotProject

#: One example in HELD_OUT_SHARE is held out (20 %).
HELD_OUT_SHARE = 5
#: The training copy of the bot (config, domain, data without the held-out examples), inside its state folder.
TRAINING_COPY = "ci/training-copy"
#: The held-out examples, as an NLU file `rasa test` reads.
HELD_OUT_FILE = "ci/held-out-nlu.yml"
TESTS_DIR = "tests"


@dataclass(frozen=True)
class TestSet:
    """What is tested, said in the report: where the NLU test data and the test stories come from."""

    source: str  # "tests/" (the bot's own files) or "held-out split"
    nlu_file: Path | None  # the NLU data `rasa test` gets (--nlu); None: no NLU test
    stories: Path | None  # the test stories (--stories); None: no Core test
    nlu_examples: int = 0
    intents: int = 0
    stories_count: int = 0
    #: Per intent: examples the model trained on (the report's example counts).
    training_counts: dict[str, int] = field(default_factory=dict)
    #: Per intent: examples tested.
    test_counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        if self.nlu_file is not None:
            what = (
                f"a held-out split of the NLU data (1 in {HELD_OUT_SHARE} examples by hash, not trained on)"
                if self.source == "held-out split"
                else "the bot's NLU test files in tests/"
            )
            parts.append(f"{self.nlu_examples} NLU examples of {self.intents} intents: {what}")
        if self.stories is not None:
            parts.append(f"{self.stories_count} test stories in tests/")
        return "; ".join(parts) or "nothing (no NLU data and no test stories)"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "nlu_examples": self.nlu_examples,
            "intents": self.intents,
            "stories": self.stories_count,
            "training_examples": self.training_counts,
            "test_examples": self.test_counts,
            "described": self.describe(),
        }


def is_held_out(intent: str, text: str) -> bool:
    """Whether the split holds this example out (stable: it depends on the example alone)."""
    digest = hashlib.sha256(f"{intent}\n{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HELD_OUT_SHARE == 0


def examples_of(item: dict[str, Any]) -> list[str]:
    """An NLU item's examples as Rasa reads them: the `- ` lines of its block, or the `text` of each mapping."""
    examples = item.get("examples")
    if isinstance(examples, str):
        return [line.strip()[2:].strip() for line in examples.splitlines() if line.strip().startswith("- ")]
    if isinstance(examples, list):
        return [str(e["text"]) for e in examples if isinstance(e, dict) and "text" in e]
    return []


def intent_examples(docs: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(intent, example) of every intent item in these parsed NLU files (path: content)."""
    for content in docs.values():
        for item in _nlu_items(content):
            if "intent" in item:
                for text in examples_of(item):
                    yield str(item["intent"]), text


def held_out_examples(docs: dict[str, Any]) -> set[tuple[str, str]]:
    """The (intent, example) pairs the split holds out of these NLU files; an intent keeps at least one example."""
    by_intent: dict[str, list[str]] = {}
    for intent, text in intent_examples(docs):
        by_intent.setdefault(intent, []).append(text)
    held: set[tuple[str, str]] = set()
    for intent, texts in by_intent.items():
        chosen = {t for t in texts if is_held_out(intent, t)}
        if chosen and chosen >= set(texts):
            chosen.discard(min(chosen))  # the intent keeps one example to be trained on
        held |= {(intent, t) for t in chosen}
    return held


def own_test_files(project: BotProject) -> tuple[list[Path], list[Path]]:
    """The bot's own NLU test files and test story files under tests/ (YAML with `nlu:` or `stories:`)."""
    tests = project.root / TESTS_DIR
    nlu: list[Path] = []
    stories: list[Path] = []
    if not tests.is_dir() or tests.is_symlink():
        return nlu, stories
    for path in sorted(tests.rglob("*")):
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        project.followed(path)  # a link out of the bot is refused
        content = _load(path)
        if isinstance(content, dict):
            if content.get("nlu"):
                nlu.append(path)
            if content.get("stories"):
                stories.append(path)
    return nlu, stories


def count_stories(paths: list[Path]) -> int:
    return sum(len(_load(p).get("stories") or []) for p in paths)


def nlu_documents(project: BotProject) -> dict[str, Any]:
    """The bot's NLU training files under data/ (relative path: parsed content), those with an `nlu:` list."""
    docs = {}
    for path in project.training_inputs():
        relative = project.relative(path)
        if not relative.startswith("data/"):
            continue
        if path.suffix == ".md":
            raise ProjectError(
                f"{relative} is Markdown training data (Rasa 2): `rasa-gpu ci` splits YAML NLU data only; convert it "
                "with `rasa data convert nlu`, or put NLU test files under tests/"
            )
        if path.suffix in (".yml", ".yaml"):
            content = _load(path)
            if _nlu_items(content):
                docs[relative] = content
    return docs


def training_copy_files(
    project: BotProject, docs: dict[str, Any], held: set[tuple[str, str]]
) -> dict[str, bytes]:
    """The training copy's files (path in the copy: bytes): every training input of the bot, its NLU files (`docs`,
    as nlu_documents parsed them) without the held-out examples."""
    files = {}
    for path in project.training_inputs():
        relative = project.relative(path)
        files[relative] = (
            dump(_without(docs[relative], held)).encode() if relative in docs else path.read_bytes()
        )
    return files


def held_out_file(docs: dict[str, Any], held: set[tuple[str, str]]) -> str:
    """The held-out examples as one NLU file, in the order the bot's files have them."""
    version = next((str(d["version"]) for d in docs.values() if "version" in d), None)
    items: dict[str, list[str]] = {}
    for intent, text in intent_examples(docs):
        if (intent, text) in held and text not in items.get(intent, []):
            items.setdefault(intent, []).append(text)
    nlu = [{"intent": i, "examples": "".join(f"- {t}\n" for t in texts)} for i, texts in items.items()]
    content: dict[str, Any] = {"version": version} if version else {}
    content["nlu"] = nlu
    return "# Written by rasa-gpu ci: the held-out split of the bot's NLU data (never trained on).\n" + dump(
        content
    )


def prepare(project: BotProject) -> tuple[TestSet, BotProject]:
    """The test set, and the bot that the model for the report is trained from: the bot itself when it has NLU test
    files of its own, else its training copy in .rasa-gpu/ci/training-copy/ (written here, the held-out examples
    taken out; files the bot no longer has are removed from it), next to the held-out NLU file."""
    own_nlu, stories = own_test_files(project)
    story_count = count_stories(stories)
    stories_dir = project.root / TESTS_DIR if stories else None
    docs = nlu_documents(project)
    if own_nlu:
        test_docs = {project.relative(p): _load(p) for p in own_nlu}
        tested = list(intent_examples(test_docs))
        nlu_file = own_nlu[0] if len(own_nlu) == 1 else project.root / TESTS_DIR
        return (
            TestSet(
                source="tests/",
                nlu_file=nlu_file,
                stories=stories_dir,
                nlu_examples=len(tested),
                intents=len(counts(tested)),
                stories_count=story_count,
                training_counts=counts(list(intent_examples(docs))),
                test_counts=counts(tested),
            ),
            project,
        )
    held = held_out_examples(docs)
    copy = write_training_copy(project, training_copy_files(project, docs, held))
    test_file = project.state_dir / HELD_OUT_FILE
    project.write_owned(test_file, held_out_file(docs, held))
    trained = [pair for pair in intent_examples(docs) if pair not in held]
    return (
        TestSet(
            source="held-out split",
            nlu_file=test_file if held else None,
            stories=stories_dir,
            nlu_examples=len(held),
            intents=len(counts(list(held))),
            stories_count=story_count,
            training_counts=counts(trained),
            test_counts=counts(sorted(held)),
        ),
        copy,
    )


def write_training_copy(project: BotProject, files: dict[str, bytes]) -> BotProject:
    """The training copy as a bot of its own: `files` written (no link followed), any other input it had removed."""
    from .. import safefs

    root = project.make_owned_dirs(project.state_dir / TRAINING_COPY)
    owner = project.owner if os.geteuid() == 0 else None
    if (root / "config.yml").is_file():
        for stale in BotProject.load(root).training_inputs():
            relative = stale.relative_to(root).as_posix()
            if relative not in files:
                safefs.remove(project.root, stale)
    for relative, data in files.items():
        safefs.write_file(project.root, root / relative, data, owner=owner)
    return BotProject.load(root)


def counts(pairs: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for intent, _text in pairs:
        found[intent] = found.get(intent, 0) + 1
    return dict(sorted(found.items()))


def dump(content: Any) -> str:
    """YAML as Rasa's files look: blocks of examples as literal `|` blocks, keys in their order."""
    return yaml.dump(content, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)


class _Dumper(yaml.SafeDumper):
    pass


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _literal)


def _without(content: dict[str, Any], held: set[tuple[str, str]]) -> dict[str, Any]:
    items = []
    for item in _nlu_items(content):
        if "intent" in item:
            intent = str(item["intent"])
            examples = item.get("examples")
            if isinstance(examples, str):
                kept = [
                    line
                    for line in examples.splitlines()
                    if not (line.strip().startswith("- ") and (intent, line.strip()[2:].strip()) in held)
                ]
                item = {**item, "examples": "\n".join(kept) + "\n"}
            elif isinstance(examples, list):
                item = {
                    **item,
                    "examples": [
                        e
                        for e in examples
                        if not (isinstance(e, dict) and (intent, str(e.get("text"))) in held)
                    ],
                }
        items.append(item)
    return {**content, "nlu": items}


def _nlu_items(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, dict) or not isinstance(content.get("nlu"), list):
        return []
    return [item for item in content["nlu"] if isinstance(item, dict)]


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
