"""The bot's training inputs, read once: their digests (the no-change skip), and the parsed domain, data and config
that the fine-tune decisions look at (shape, dialogue digest, NLU examples). One read of each file gives all of them,
so they agree with each other even when an editor saves in between."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .. import finetune
from ..project import BotProject, combined_digest


@dataclass(frozen=True)
class BotInputs:
    #: The digest of all training inputs (BotProject.inputs_digest), and each one's by its path in the bot.
    digest: str
    files: Mapping[str, str]
    #: The parsed YAML of the domain's files and of the data files (mappings only), in the bot's order.
    domain: tuple[dict[str, Any], ...]
    data: tuple[dict[str, Any], ...]
    #: The config a training uses: config.yml, or the one --set overrides made of it.
    config: dict[str, Any]
    #: The digest of the bot's custom component code (its Python training inputs).
    code: str

    @classmethod
    def read(cls, project: BotProject, config: dict[str, Any] | None = None) -> BotInputs:
        """Read every training input once (`config`: the config a training uses, when not config.yml's)."""
        contents = {path: path.read_bytes() for path in project.training_inputs()}
        digests = project.input_digests(contents)
        domain: list[dict[str, Any]] = []
        data: list[dict[str, Any]] = []
        code = hashlib.sha256()
        for path, raw in contents.items():
            relative = PurePosixPath(project.relative(path))
            if path.suffix == ".py":
                code.update(str(relative).encode() + b"\0" + raw + b"\0")
            elif path.suffix in (".yml", ".yaml") and (parsed := _mapping(project, path, raw)) is not None:
                if _is_domain(project, path):
                    domain.append(parsed)
                elif relative.parts[0] == "data":
                    data.append(parsed)
        if config is None:
            config_raw = contents.get(project.config)
            parsed = _mapping(project, project.config, config_raw) if config_raw is not None else None
            config = dict(parsed) if parsed is not None else {}
        return cls(
            digest=combined_digest(digests),
            files=digests,
            domain=tuple(domain),
            data=tuple(data),
            config=config,
            code=code.hexdigest(),
        )

    def shape(self) -> finetune.Shape:
        return finetune.shape_from(self.domain, self.data, self.config, self.code)

    def dialogue(self) -> str | None:
        return finetune.dialogue_digest_from(self.domain, self.data, self.config)

    def nlu_examples(self) -> int:
        return finetune.nlu_examples_in(self.data)


def _is_domain(project: BotProject, path: Path) -> bool:
    return path == project.domain or project.domain in path.parents


def _mapping(project: BotProject, path: Path, raw: bytes) -> dict[str, Any] | None:
    try:
        content = project._parse(path, raw)  # parsed once per version of the file (BotProject's cache)
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # BotProject.load reported it already; the digest hashes its bytes
    return content if isinstance(content, dict) else None
