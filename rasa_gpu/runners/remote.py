"""An engine on another machine (ssh://, tcp://, a Docker context): nothing of this machine's disk reaches it.

The bot's training inputs travel to the engine in a tar archive into a volume made for the run (only config, domain,
data and custom component code: not models/, .git or the cache), Rasa's cache lives in a volume per bot that stays
on that engine between runs, and the model comes back as a tar archive into run_dir/out, where train verifies it and
moves it into models/ like a local one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .. import safefs
from ..errors import RasaGpuError
from .base import BOT_MOUNT, ELSEWHERE, Runner, Workspace
from .ssh import SshTarget, SshTunnel, check

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..engine import Engine
    from ..project import BotProject

CACHE_MOUNT = "/cache"


def cache_volume(project: BotProject) -> str:
    """The per-bot cache volume: one per bot folder on this host, so two machines sharing the engine keep theirs."""
    key = hashlib.sha256(f"{socket.gethostname()}:{project.root}".encode()).hexdigest()[:12]
    return f"rasa-gpu-cache-{project.name}-{key}"


class VolumeWorkspace(Workspace):
    def __init__(
        self, engine: Engine, project: BotProject, run_id: str, image: str, *, fresh_cache: bool
    ) -> None:
        from ..engine import ContainerSpec, labels_for

        super().__init__(project, run_id)
        self.engine = engine
        self.volume = f"rasa-gpu-run-{project.name}-{run_id}"
        self.cache = cache_volume(project)
        self.fresh_cache = fresh_cache
        self._holder: AbstractContextManager[str] | None = None
        self._volume_made = False
        try:
            engine.create_volume(self.volume, labels_for("run", project.root, run=run_id))
            self._volume_made = True
            if not fresh_cache:
                engine.create_volume(self.cache, labels_for("cache", project.root))
            # A container that never starts: the door for files into and out of the volumes.
            spec = ContainerSpec(
                image=image,
                command=[],
                entrypoint=["true"],
                name=f"rasa-gpu-transfer-{project.name}-{run_id}",
                labels=labels_for("transfer", project.root, run=run_id),
                user="0:0",
                volumes=self._volumes(),
            )
            self._holder = engine.holder(spec)
            self._holder_id = self._holder.__enter__()
        except BaseException:
            self.close()
            raise

    def _volumes(self) -> dict[str, str]:
        volumes = {self.volume: BOT_MOUNT}
        if not self.fresh_cache:
            volumes[self.cache] = CACHE_MOUNT
        return volumes

    @property
    def mounts(self) -> list[tuple[str, str, str]]:
        return [("volume", name, target) for name, target in self._volumes().items()]

    @property
    def environment(self) -> dict[str, str]:
        cache = self.inside(self.run_dir / "cache") if self.fresh_cache else CACHE_MOUNT
        return {"RASA_CACHE_DIRECTORY": cache}

    def send(self) -> int:
        with tempfile.TemporaryFile() as archive:
            self._pack(archive)
            size = archive.tell()
            archive.seek(0)
            self.engine.put_files(self._holder_id, "/", archive.read())
        return size

    def _pack(self, archive: IO[bytes]) -> None:
        """bot/ with the training inputs and this run's folder, and cache/, all owned by the bot's owner (the
        container runs as that uid); the mount points' own entries give the volumes' roots to that uid too."""
        project = self.project
        uid, gid = project.owner
        files = [*project.training_inputs(), *(p for p in sorted(self.run_dir.rglob("*")) if p.is_file())]
        folders = {Path(BOT_MOUNT[1:])}
        if not self.fresh_cache:
            folders.add(Path(CACHE_MOUNT[1:]))
        for path in files:
            inside = Path(BOT_MOUNT[1:]) / project.relative(path)
            folders.update(inside.parents)
        folders.add(Path(BOT_MOUNT[1:]) / project.relative(self.run_dir / "out"))
        if self.fresh_cache:
            folders.add(Path(BOT_MOUNT[1:]) / project.relative(self.run_dir / "cache"))
        folders.discard(Path("."))
        now = time.time()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for folder in sorted(folders, key=lambda p: len(p.parts)):
                info = tarfile.TarInfo(str(folder))
                info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, now
                tar.addfile(info)
            for path in files:
                with path.open(
                    "rb"
                ) as content:  # a link (inside the bot: training_inputs) travels as its file
                    st = os.fstat(content.fileno())
                    info = tarfile.TarInfo(str(Path(BOT_MOUNT[1:]) / project.relative(path)))
                    info.size, info.mode, info.mtime = st.st_size, st.st_mode & 0o777, st.st_mtime
                    info.uid, info.gid = uid, gid
                    tar.addfile(info, content)

    def fetch(self) -> int:
        """The files of the run's out/ folder, back into run_dir/out (the archive's own paths are not trusted: only
        its plain files' names are used, each created afresh without following links). A stream that breaks off, a
        file shorter than announced, or two files of one name: "the model came back incomplete", and nothing of it
        stays."""
        out = self.project.checked(self.run_dir / "out")
        received = 0
        written: list[Path] = []
        try:
            with tempfile.TemporaryFile() as archive:
                for chunk in self.engine.get_files(self._holder_id, self.inside(out)):
                    archive.write(chunk)
                    received += len(chunk)
                archive.seek(0)
                with tarfile.open(fileobj=archive, mode="r|") as tar:
                    for member in tar:
                        name = Path(member.name).name
                        if not member.isfile() or not name or name.startswith("."):
                            continue
                        if out / name in written:
                            raise _incomplete(self.engine, f"it holds two files named {name}")
                        source = tar.extractfile(member)
                        if source is None:
                            continue
                        written.append(out / name)
                        size = 0
                        with (
                            source,
                            open(safefs.create_exclusive(self.project.root, out / name), "wb") as target,
                        ):
                            while chunk := source.read(1024 * 1024):
                                target.write(chunk)
                                size += len(chunk)
                        if size != member.size:
                            raise _incomplete(self.engine, f"{name} has {size} of {member.size} bytes")
                        self.project.give_to_owner(out / name)
        except (tarfile.TarError, EOFError) as exc:
            self._discard(written)
            raise _incomplete(self.engine, str(exc) or type(exc).__name__) from None
        except BaseException:
            self._discard(written)
            raise
        return received

    def _discard(self, written: list[Path]) -> None:
        for path in written:
            safefs.remove(self.project.root, path)

    def close(self) -> None:
        """Remove the transfer container and the run's volume (not the cache); a second Ctrl+C waits for it."""
        from .. import signals

        with signals.deferred():
            if self._holder is not None:
                holder, self._holder = self._holder, None
                holder.__exit__(None, None, None)
            if self._volume_made:
                self._volume_made = False
                self.engine.remove_volume(self.volume)
        super().close()


def _incomplete(engine: Engine, why: str) -> RasaGpuError:
    return RasaGpuError(
        f"the model came back incomplete from {engine.shown_as or 'the engine'} ({why}); nothing of it was kept: "
        "train again"
    )


class RemoteRunner(Runner):
    capabilities = ELSEWHERE

    def __init__(self, url: str, *, shown_as: str | None = None, tls: object = None) -> None:
        self._url = url
        self._shown_as = shown_as or url
        self._tls = tls
        self._ssh = SshTarget.parse(url) if url.startswith("ssh://") else None
        self._tunnel: SshTunnel | None = None
        self._engine: Engine | None = None

    @property
    def name(self) -> str:
        return self._shown_as

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from ..engine import Engine

            if self._ssh is not None:
                check(self._ssh)
                self._tunnel = SshTunnel(self._ssh)
                # through docker-py at once: each new connection to the tunnel is a new ssh process
                self._engine = Engine.connect(self._tunnel.url, shown_as=self._shown_as, quick=False)
            else:
                self._engine = Engine.connect(self._url, shown_as=self._shown_as, tls=self._tls)
        return self._engine

    def workspace_for(
        self, project: BotProject, run_id: str, image: str, *, fresh_cache: bool = False
    ) -> Workspace:
        return VolumeWorkspace(self.engine, project, run_id, image, fresh_cache=fresh_cache)

    def machine(self) -> str:
        return f"{self.engine.about().name} ({self.name})"

    def sweep(self, project: BotProject) -> int:
        return super().sweep(project) + self.engine.remove_orphan_volumes(project.root)

    def close(self) -> None:
        if self._tunnel is not None:
            tunnel, self._tunnel = self._tunnel, None
            tunnel.close()
