"""The Rasa Pro license: where rasa-gpu finds it, and how it reaches a container without being seen.

Rasa Pro reads its license from the environment variable RASA_PRO_LICENSE at run time. rasa-gpu reads it from that
variable on this machine, or else from the file named by `license_file` in rasa-gpu.toml, and hands it to the training
container in its environment (the engine's API, never a command line), to the services through the environment of
the compose process (the compose file names the variable, never the value). It is never written into an image, a
file, the run history or a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .compat import RasaRelease
from .errors import SettingsError

ENV = "RASA_PRO_LICENSE"
FREE_EDITION = "https://rasa.com/rasa-pro-developer-edition-license-key-request"


@dataclass(frozen=True)
class License:
    """A license value; its repr and str never show it."""

    value: str = field(repr=False)
    source: str  # where it came from, for messages: "RASA_PRO_LICENSE" or the file's path

    def __str__(self) -> str:
        return f"the Rasa Pro license from {self.source}"

    def environment(self) -> dict[str, str]:
        return {ENV: self.value}


def environment(license: License | None) -> dict[str, str]:
    """What a container (or compose) gets in its environment for this license: nothing without one."""
    return license.environment() if license is not None else {}


def from_environment() -> bool:
    """Whether this machine's environment gives the license (it wins over a license_file)."""
    return bool(os.environ.get(ENV, "").strip())


def find(release: RasaRelease, license_file: str | None, root: Path) -> License | None:
    """The license a Rasa Pro release needs (None for Rasa Open Source), or a SettingsError in one line that says
    where to put it."""
    if not release.pro:
        return None
    value = os.environ.get(ENV, "").strip()
    if value:
        return License(value, ENV)
    if license_file:
        path = Path(license_file).expanduser()
        path = path if path.is_absolute() else root / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"license_file {license_file}: cannot read it ({exc.strerror}); put the Rasa Pro license there, or "
                f"set {ENV}"
            ) from None
        if not value:
            raise SettingsError(
                f"license_file {license_file} is empty; put the Rasa Pro license in it, or set {ENV}"
            )
        return License(value, str(path))
    raise SettingsError(
        f"{release.name} needs a license: set {ENV} (e.g. `export {ENV}=...` before rasa-gpu) or name a file "
        f"with license_file = ... in rasa-gpu.toml; a free developer edition: {FREE_EDITION}"
    )
