"""Reading YAML: the one loader for every YAML text rasa-gpu reads.

PyYAML's C loader (libyaml) when this PyYAML has it, else its pure-Python safe loader: the same documents, several
times faster. PyYAML itself is imported on first use, so that commands which read no YAML (`--help`) never load it.
"""

from __future__ import annotations

from typing import Any


def load(text: str | bytes) -> Any:
    """Parse one YAML document safely (no Python objects); raises yaml.YAMLError (yaml.MarkedYAMLError with the
    line and column where the parser has them)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
