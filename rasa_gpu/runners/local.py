"""The engine on this machine: the bot folder is bind-mounted, nothing is copied."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from ..errors import RasaGpuError
from .base import BOT_MOUNT, HERE, Runner, Workspace, foreign_files

if TYPE_CHECKING:
    from ..engine import Engine
    from ..project import BotProject


class BindWorkspace(Workspace):
    """The bot folder itself at /bot: Rasa reads the inputs and writes into run_dir in place; its cache is the bot's
    .rasa/cache (Rasa's default), or a fresh one in run_dir; language models are cached in .rasa/huggingface."""

    def __init__(self, project: BotProject, run_id: str, *, fresh_cache: bool) -> None:
        super().__init__(project, run_id)
        project.make_language_model_cache()
        self._environment: dict[str, str] = {}
        if fresh_cache:
            project.make_owned_dirs(self.run_dir / "cache")
            self._environment["RASA_CACHE_DIRECTORY"] = self.inside(self.run_dir / "cache")

    @property
    def mounts(self) -> list[tuple[str, str, str]]:
        return [("bind", str(self.project.root), BOT_MOUNT)]

    @property
    def environment(self) -> dict[str, str]:
        return dict(self._environment)


class LocalRunner(Runner):
    capabilities = HERE

    def __init__(self, base_url: str | None = None) -> None:
        self._base_url = base_url
        self._engine: Engine | None = None

    @property
    def name(self) -> str:
        return self._base_url or "this machine"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from ..engine import Engine

            # DOCKER_HOST's or the default socket without an address
            self._engine = Engine.connect(self._base_url) if self._base_url else Engine.connect()
        return self._engine

    def workspace_for(
        self, project: BotProject, run_id: str, image: str, *, fresh_cache: bool = False
    ) -> Workspace:
        return BindWorkspace(project, run_id, fresh_cache=fresh_cache)

    def machine(self) -> str:
        import platform

        return platform.node()

    def give_back(self, project: BotProject, image: str) -> None:
        """Give everything under models/, .rasa/ and .rasa-gpu/ back to the bot's owner (earlier root runs leave
        root-owned files there). As root: chown directly. Otherwise only root can do it: a short-lived root container
        with the bot mounted."""
        foreign = foreign_files(project)
        if not foreign:
            return
        if os.geteuid() == 0:
            project.give_to_owner(*foreign)
            return
        from ..engine import ContainerSpec, labels_for

        uid, gid = project.owner
        targets = [f"{BOT_MOUNT}/{project.relative(p)}" for p in foreign]
        spec = ContainerSpec(
            image=image,
            command=["-R", f"{uid}:{gid}", *targets],
            entrypoint=["chown"],
            name=f"rasa-gpu-chown-{project.name}-{uuid.uuid4().hex[:8]}",
            labels=labels_for("chown", project.root),
            user="0:0",
            binds={str(project.root): BOT_MOUNT},
        )
        code, lines = self.engine.run_to_completion(spec)
        if code != 0:
            raise RasaGpuError(
                f"could not give {len(foreign)} file(s) back to uid {uid}: {' '.join(lines[-2:])}"
            )
