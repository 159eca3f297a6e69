"""last-train.json: what the last training of this bot by rasa-gpu made, read once by the plan and written by the run
after the model is in models/."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..finetune import Shape
from ..project import BotProject

STATE_FILE = "last-train.json"


@dataclass(frozen=True)
class TrainState:
    """The record of the last training (each field None or empty where the file does not say)."""

    #: What decided its model (training inputs, Rasa release, image, rasa args, overrides): the no-change skip.
    fingerprint: str | None = None
    #: Its model, relative to the bot.
    model: str | None = None
    #: What the model was made with besides the bot's files (a fine-tune needs the same).
    basis: str | None = None
    #: The bot's shape then (a later fine-tune compares it with the bot now).
    shape: Shape | None = None
    #: The dialogue digest when the policies trained with their configured epochs, else None.
    dialogue: str | None = None
    #: Each training input's digest then, by path (says which inputs changed since; empty for older records).
    inputs: Mapping[str, str] = field(default_factory=dict)
    device: str = "unknown"
    image: str = ""
    rasa: str = ""
    host: str = ""

    @classmethod
    def read(cls, project: BotProject) -> TrainState | None:
        """The bot's record, or None when there is none (or it cannot be read: then the bot trains)."""
        try:
            data = json.loads((project.state_dir / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls.from_json(data) if isinstance(data, dict) else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainState:
        inputs = data.get("inputs")

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        return cls(
            fingerprint=text("fingerprint"),
            model=text("model"),
            basis=text("basis"),
            shape=Shape.from_json(data.get("shape")),
            dialogue=text("dialogue"),
            inputs={str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {},
            device=text("device") or "unknown",
            image=text("image") or "",
            rasa=text("rasa") or "",
            host=text("host") or "",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": self.shape.to_json() if self.shape is not None else None,
            "dialogue": self.dialogue,
            "basis": self.basis,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "device": self.device,
            "image": self.image,
            "rasa": self.rasa,
            "host": self.host,
            "inputs": dict(self.inputs),
        }

    def write(self, project: BotProject) -> None:
        project.write_owned(project.state_dir / STATE_FILE, json.dumps(self.to_json(), indent=2))
