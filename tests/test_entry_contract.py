"""rasa-gpu and the images' entry script agree on every name and code between them: rasa_gpu/entry_contract.py on one
side, docker/rasa-gpu-entry.py (which runs in images without rasa-gpu, so it keeps its own copy) on the other."""

from __future__ import annotations

import ast
import re

from support import REPO

from rasa_gpu import entry_contract

ENTRY = (REPO / "docker" / "rasa-gpu-entry.py").read_text(encoding="utf-8")


def _contract() -> dict[str, object]:
    return {name: value for name, value in vars(entry_contract).items() if name.isupper()}


def test_every_value_of_the_contract_is_the_entry_scripts():
    codes = {
        node.targets[0].id: node.value.value
        for node in ast.parse(ENTRY).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, int)
    }
    contract = _contract()
    assert contract, "the contract names nothing"
    for name, value in contract.items():
        if isinstance(value, int):
            assert codes.get(name) == value, (
                f"{name}: rasa-gpu says {value}, the entry script {codes.get(name)}"
            )
        else:
            assert f'"{value}' in ENTRY, f"{name}: the entry script never says {value!r}"


def test_every_rasa_gpu_name_the_entry_script_reads_or_prints_is_in_the_contract():
    said = set(re.findall(r"\b(RASA_GPU_[A-Z_]+|RASA_AUTH_TOKEN)\b", ENTRY))
    assert said, "the entry script names no variable"
    known = {str(value).strip() for value in _contract().values() if isinstance(value, str)}
    assert said <= known, (
        f"the entry script uses {sorted(said - known)}, which rasa_gpu/entry_contract.py lacks"
    )
