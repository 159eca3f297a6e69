"""Volumes and files: the workspace of an engine elsewhere. Named volumes, files copied into and out of a holder
container's volumes (a bind mount of a local path would reach nothing there), and the volumes of runs whose
rasa-gpu process is gone."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RasaGpuError
from .connection import Connection
from .containers import LABEL, alive
from .sdk import mapped

if TYPE_CHECKING:
    import docker.errors

    import docker
else:
    from .sdk import docker


class Volumes(Connection):
    """The named volumes of an engine and the files in them."""

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """Create a named volume (an existing one of that name is reused as it is)."""
        with mapped(f"Docker could not create volume {name}"):
            self.api.create_volume(name, labels=labels)

    def remove_volume(self, name: str) -> None:
        with mapped(f"Docker could not remove volume {name}", missing_ok=True):
            self.api.remove_volume(name, force=True)

    def volume_exists(self, name: str) -> bool:
        with mapped(f"Docker could not inspect volume {name}", missing_ok=True):
            self.api.inspect_volume(name)
            return True
        return False

    def put_files(self, container_id: str, folder: str, tar_bytes: bytes) -> None:
        """Unpack a tar archive into a (created) container's folder; volumes mounted there receive the files."""
        with mapped(f"Docker could not copy files into {folder}"):
            self.api.put_archive(container_id, folder, tar_bytes)

    def get_files(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar archive of a path in a (created) container, as it streams in."""
        with mapped(f"Docker could not copy {path} back"):
            try:
                stream, _stat = self.api.get_archive(container_id, path)
            except docker.errors.NotFound:
                raise RasaGpuError(
                    f"{path} is missing in the run's volume; the training wrote nothing there"
                ) from None
        yield from stream

    def remove_orphan_volumes(self, bot_root: Path) -> int:
        """Volumes of single runs (role run) that rasa-gpu on this host made for this bot, whose process is gone."""
        filters = {
            "label": [f"{LABEL}.bot={bot_root}", f"{LABEL}.host={socket.gethostname()}", f"{LABEL}.role=run"]
        }
        removed = 0
        try:
            volumes = self.api.volumes(filters=filters).get("Volumes") or []
        except docker.errors.APIError:
            return 0
        for volume in volumes:
            if not alive(volume.get("Labels") or {}):
                self.remove_volume(volume["Name"])
                removed += 1
        return removed
