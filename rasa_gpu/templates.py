"""Files shipped with rasa-gpu (docker/ and vscode/ templates), read the same way from a wheel or a checkout."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


def _path(folder: str, name: str) -> Path:
    packaged = resources.files("rasa_gpu").joinpath(folder, name)
    if packaged.is_file():
        return Path(str(packaged))
    # A source checkout or editable install: the folders sit beside the package.
    checkout = Path(__file__).resolve().parent.parent / folder / name
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(f"rasa-gpu is installed without its {folder}/{name} template; reinstall it")


@cache  # templates never change while rasa-gpu runs; tags are computed several times
def read_text(folder: str, name: str) -> str:
    return _path(folder, name).read_text(encoding="utf-8")


@cache
def read_bytes(folder: str, name: str) -> bytes:
    return _path(folder, name).read_bytes()
