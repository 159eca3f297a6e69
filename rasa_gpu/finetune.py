"""When a retraining may continue from the newest model (`rasa train --finetune`) instead of starting over.

Rasa fine-tunes a model only when nothing that sizes its layers changed: the domain's labels (intents, entities with
their roles and groups, slots, actions, forms, responses), the regex and lookup features, and the config apart from
the epochs (Rasa itself refuses otherwise). rasa-gpu keeps the bot's *shape* beside each model it trains and
compares it with the bot now: a change of training examples (NLU examples, stories, rules) fine-tunes, anything
else trains from scratch, and the first difference found is the reason given.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .project import BotProject
    from .training.inputs import BotInputs

#: The share of each model's epochs a fine-tune trains (rasa train --epoch-fraction), unless told otherwise.
DEFAULT_EPOCH_FRACTION = 0.2
#: A fine-tune of at most this many DIET training steps runs DIET eagerly (the image's entry script): tracing DIET's
#: graph twice (loading the model fits one example; the training traces again) took 70 s of a fine-tune of example_bot
#: on 2 CPU cores, while an eager step cost 0.3 s more than a traced one; past about 200 steps tracing pays.
EAGER_DIET_MAX_STEPS = 200
#: Rasa's defaults for DIETClassifier, where the config does not say.
_DIET_EPOCHS, _DIET_BATCH = 300, 64
#: The label kinds a model's layers depend on, in the order a reason names them.
LABELS = ("intents", "entities", "slots", "actions", "forms", "responses", "regexes", "lookups")
#: Config keys that do not change what a model is (epochs are what a fine-tune sets itself).
_NOT_SHAPE_KEYS = frozenset({"epochs", "assistant_id"})
#: An annotated entity in an NLU example: [text](entity), [text](entity:value), [text]{"entity": ..., "role": ...}.
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]*)\](?:\((?P<short>[^)]*)\)|(?P<json>\{[^}]*\}))")


@dataclass(frozen=True)
class Shape:
    """What a trained model's architecture depends on."""

    labels: dict[str, list[str]] = field(default_factory=dict)
    config: str = ""  # config.yml without epochs, canonical JSON
    code: str = ""  # digest of the bot's custom component code

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Shape | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                labels={k: list(v) for k, v in dict(data.get("labels", {})).items()},
                config=str(data.get("config", "")),
                code=str(data.get("code", "")),
            )
        except (TypeError, ValueError):
            return None


def shape_of(project: BotProject, config: dict[str, Any] | None = None) -> Shape:
    """The bot's shape now, from its domain, its NLU data, its config (`config`: the one a training uses, e.g. with
    --set overrides; default config.yml) and its code."""
    return _read(project, config).shape()


def shape_from(
    domain: Iterable[dict[str, Any]], data: Iterable[dict[str, Any]], config: dict[str, Any], code: str
) -> Shape:
    """The shape of a bot whose domain and data files hold these contents (parsed YAML), trained with `config`, and
    whose custom component code has the digest `code`."""
    labels: dict[str, set[str]] = {kind: set() for kind in LABELS}
    for content in domain:
        _domain_labels(content, labels)
    for content in data:
        _data_labels(content, labels)
    return Shape(
        labels={kind: sorted(values) for kind, values in labels.items()},
        config=json.dumps(_without_epochs(config), sort_keys=True, default=str),
        code=code,
    )


def why_not(before: Shape | None, now: Shape) -> str | None:
    """None when a model of shape `before` can be fine-tuned into one of shape `now`; else why not, in a few words."""
    if before is None:
        return "the newest model was not trained by this rasa-gpu (its shape is unknown)"
    if before.config != now.config:
        return "config.yml changed in more than the epochs"
    for kind in LABELS:
        old, new = set(before.labels.get(kind, [])), set(now.labels.get(kind, []))
        if old != new:
            return _difference(kind, old, new)
    if before.code != now.code:
        return "the custom component code changed"
    return None


def _difference(kind: str, old: set[str], new: set[str]) -> str:
    singular = {"entities": "entity", "regexes": "regex", "lookups": "lookup table"}.get(kind, kind[:-1])
    added, removed = sorted(new - old), sorted(old - new)
    parts = []
    if added:
        parts.append(f"new {singular if len(added) == 1 else kind} {', '.join(added[:3])}")
    if removed:
        parts.append(f"{singular if len(removed) == 1 else kind} {', '.join(removed[:3])} removed")
    return " and ".join(parts)


def diet_steps(config: dict[str, Any] | None, examples: int, fraction: float) -> int | None:
    """About how many batches DIETClassifier trains in a fine-tune (its epochs × `fraction`, each epoch the NLU
    examples in batches of its smallest batch size); None when the pipeline has no DIETClassifier."""
    pipeline = (config or {}).get("pipeline")
    for item in pipeline if isinstance(pipeline, list) else []:
        if isinstance(item, dict) and str(item.get("name", "")).rsplit(".", 1)[-1] == "DIETClassifier":
            try:
                epochs = int(item.get("epochs", _DIET_EPOCHS))
                batch = item.get("batch_size", _DIET_BATCH)
                batch = int(min(batch) if isinstance(batch, list) else batch)
            except (TypeError, ValueError):
                return None
            return max(1, math.ceil(epochs * fraction)) * max(1, math.ceil(examples / max(batch, 1)))
    return None


def dialogue_digest(project: BotProject, config: dict[str, Any] | None = None) -> str | None:
    """A digest of what the dialogue policies learn from: the domain, the stories and rules, and the config's policies
    (`config` as for shape_of). None when a story or rule has end-to-end user text, since the policies then also learn
    from the NLU data. While it stays the same, a fine-tune leaves the policies' epochs as configured, so that Rasa's
    cache gives back their last training instead of fine-tuning them on the same data."""
    return _read(project, config).dialogue()


def dialogue_digest_from(
    domain: Iterable[dict[str, Any]], data: Iterable[dict[str, Any]], config: dict[str, Any]
) -> str | None:
    """dialogue_digest of these contents (as for shape_from)."""
    parts: list[Any] = [config.get("policies")]
    parts.extend(domain)
    for content in data:
        dialogue = {key: content.get(key) for key in ("stories", "rules") if content.get(key)}
        if any("user" in step for step in _steps(dialogue)):
            return None
        parts.append(dialogue)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _steps(dialogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for items in dialogue.values():
        for item in items if isinstance(items, list) else []:
            steps = item.get("steps") if isinstance(item, dict) else None
            yield from (step for step in steps or [] if isinstance(step, dict))


def nlu_examples(project: BotProject) -> int:
    """How many NLU training examples the bot has (the `- ` lines of its intents' examples)."""
    return _read(project, None).nlu_examples()


def nlu_examples_in(data: Iterable[dict[str, Any]]) -> int:
    """How many NLU training examples these data files' contents hold."""
    return sum(
        _example_count(item.get("examples"))
        for content in data
        for item in content.get("nlu") or []
        if isinstance(item, dict) and "intent" in item
    )


def _example_count(examples: Any) -> int:
    if isinstance(examples, list):
        return len(examples)
    return sum(1 for line in str(examples or "").splitlines() if line.strip().startswith("- "))


# ---- reading the bot -----------------------------------------------------------------------------------------------


def _read(project: BotProject, config: dict[str, Any] | None) -> BotInputs:
    from .training.inputs import BotInputs  # the one reading of the bot's files (it uses the rules above)

    return BotInputs.read(project, config)


def _names(value: Any) -> Iterator[str]:
    """The names in a domain list or mapping: `- greet`, `- greet: {use_entities: []}`, `{greet: ...}`."""
    if isinstance(value, dict):
        yield from (str(k) for k in value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from (str(k) for k in item)
            elif item is not None:
                yield str(item)


def _domain_labels(content: dict[str, Any], labels: dict[str, set[str]]) -> None:
    labels["intents"].update(_names(content.get("intents")))
    for entity in content.get("entities") or []:
        if isinstance(entity, dict):
            for name, spec in entity.items():
                labels["entities"].add(str(name))
                if isinstance(spec, dict):
                    labels["entities"].update(f"{name}#role={r}" for r in spec.get("roles") or [])
                    labels["entities"].update(f"{name}#group={g}" for g in spec.get("groups") or [])
        elif entity is not None:
            labels["entities"].add(str(entity))
    labels["slots"].update(_names(content.get("slots")))
    labels["actions"].update(_names(content.get("actions")))
    labels["forms"].update(_names(content.get("forms")))
    labels["responses"].update(_names(content.get("responses")))


def _data_labels(content: dict[str, Any], labels: dict[str, set[str]]) -> None:
    for item in content.get("nlu") or []:
        if not isinstance(item, dict):
            continue
        if "intent" in item:
            labels["intents"].add(str(item["intent"]))
            labels["entities"].update(_annotated_entities(item.get("examples")))
        elif "regex" in item:
            labels["regexes"].add(f"{item['regex']}={_digest(item.get('examples'))}")
        elif "lookup" in item:
            labels["lookups"].add(f"{item['lookup']}={_digest(item.get('examples'))}")


def _annotated_entities(examples: Any) -> Iterator[str]:
    """The entity labels of annotated NLU examples (a block string, or a list of {text: ...} items)."""
    if isinstance(examples, list):
        text = "\n".join(str(e.get("text", "")) if isinstance(e, dict) else str(e) for e in examples)
    else:
        text = str(examples or "")
    for match in _ANNOTATION.finditer(text):
        if match.group("short") is not None:
            yield match.group("short").split(":", 1)[0].strip()
            continue
        try:
            spec = json.loads(match.group("json"))
        except ValueError:
            continue
        if isinstance(spec, dict) and "entity" in spec:
            name = str(spec["entity"])
            yield name
            if "role" in spec:
                yield f"{name}#role={spec['role']}"
            if "group" in spec:
                yield f"{name}#group={spec['group']}"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _without_epochs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_epochs(v) for k, v in value.items() if k not in _NOT_SHAPE_KEYS}
    if isinstance(value, list):
        return [_without_epochs(v) for v in value]
    return value
