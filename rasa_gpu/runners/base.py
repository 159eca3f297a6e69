"""What every place that runs rasa-gpu's containers provides: an engine, a workspace for one run, and a sweep."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..project import LANGUAGE_MODEL_CACHE
from ..scratch import Scratch

if TYPE_CHECKING:
    from ..engine import Engine
    from ..project import BotProject

#: Where the bot is inside a training container, whatever the runner.
BOT_MOUNT = "/bot"


def rasa_environment() -> dict[str, str]:
    """The environment that every container running Rasa on the bot at BOT_MOUNT shares: a training (one-off or the
    warm trainer's), `rasa-gpu rasa/test/shell/validate`, and the rasa and jupyter services of `up`. A writable HOME
    (the bot's owner has none in the image) with matplotlib's config in it, TensorFlow taking GPU memory as it needs
    it, and Hugging Face's cache in the bot (HF_HOME, read by transformers 4 and later and huggingface_hub), so a
    language model downloaded once serves every later container. On this machine the folder is made beforehand
    (BotProject.make_language_model_cache); in a volume elsewhere, the container makes it."""
    return {
        "HOME": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "HF_HOME": f"{BOT_MOUNT}/{LANGUAGE_MODEL_CACHE}",
    }


@dataclass(frozen=True)
class Capabilities:
    """What a runner can do. Commands ask this, never where the engine is."""

    #: Its containers see the bot folder itself (a bind mount): what they write (Rasa's cache, a partial cache entry,
    #: a model) is in the bot folder on this machine, and the newest model there can be a fine-tune's base.
    mounts_bot_folder: bool
    #: Ports its containers publish are reachable on this machine (services, a shell, watch's server).
    serves_here: bool
    #: It can keep a warm trainer's container between trainings (watch).
    keeps_warm_trainer: bool
    #: The GPU driver its engine uses is this machine's, so `nvidia-smi` here tells about it (doctor).
    shares_host_driver: bool
    #: Its engine runs on this machine: the engine's data root is a folder here, this machine's CPUs run its
    #: containers, and a stopped engine is started here (doctor's disk check and hint, benchmark and train's
    #: "where" line).
    shares_host_machine: bool


#: The engine on this machine.
HERE = Capabilities(
    mounts_bot_folder=True,
    serves_here=True,
    keeps_warm_trainer=True,
    shares_host_driver=True,
    shares_host_machine=True,
)
#: An engine elsewhere (SSH, TCP, a context): the bot travels in a volume, and nothing it serves is reachable here.
ELSEWHERE = Capabilities(
    mounts_bot_folder=False,
    serves_here=False,
    keeps_warm_trainer=False,
    shares_host_driver=False,
    shares_host_machine=False,
)


class Workspace(ABC):
    """The bot as one run's container sees it, at /bot. `run_dir` is a local folder for this run
    (.rasa-gpu/tmp/<id>): an overridden config is written there before `send`, and the model is in `run_dir/out`
    after `fetch`. Paths inside the container are the bot's own relative paths under /bot."""

    def __init__(self, project: BotProject, run_id: str) -> None:
        self.project = project
        self.run_id = run_id
        self._scratch = Scratch(project, run_id)  # claimed: a tidy by another rasa-gpu leaves it alone
        self.run_dir = self._scratch.path
        project.make_owned_dirs(self.run_dir / "out")

    def inside(self, path: Path) -> str:
        return f"{BOT_MOUNT}/{self.project.relative(path)}"

    @property
    @abstractmethod
    def mounts(self) -> list[tuple[str, str, str]]:
        """(type, source, target) for the container: bind mounts of local folders or the engine's volumes."""

    @property
    def environment(self) -> dict[str, str]:
        """Extra environment for the container (where Rasa's cache is)."""
        return {}

    def send(self) -> int:
        """Before the start: give the engine the bot's training inputs and this run's folder; returns bytes sent."""
        return 0

    def fetch(self) -> int:
        """After a successful run: bring the run's out/ folder back into run_dir/out; returns bytes received."""
        return 0

    def close(self) -> None:
        self._scratch.release()


class Runner(ABC):
    """Where containers run. Chosen once from the settings (runners.connect) and handed to every command; no command
    decides by itself whether the engine is on this machine."""

    #: What it can do (see Capabilities).
    capabilities: Capabilities = HERE

    @property
    @abstractmethod
    def name(self) -> str:
        """How the user named the place: "this machine", "ssh://me@gpu-box", a context name…"""

    @property
    @abstractmethod
    def engine(self) -> Engine:
        """The engine, connected on first use (a no-change skip never connects)."""

    @abstractmethod
    def workspace_for(
        self, project: BotProject, run_id: str, image: str, *, fresh_cache: bool = False
    ) -> Workspace:
        """A workspace for one run of `image`; `fresh_cache` gives Rasa an empty cache (benchmarks)."""

    @contextmanager
    def workspace(
        self, project: BotProject, run_id: str, image: str, *, fresh_cache: bool = False
    ) -> Iterator[Workspace]:
        workspace = self.workspace_for(project, run_id, image, fresh_cache=fresh_cache)
        try:
            yield workspace
        finally:
            workspace.close()

    def engine_for(
        self, refusal: str, *, mounts_bot_folder: bool = False, serves_here: bool = False
    ) -> Engine:
        """The engine, for work that needs what is asked here: the bot folder itself in its containers (`rasa-gpu
        rasa`, services), ports reachable here (services). A runner that cannot: `refusal` as the one line, before
        the engine is contacted."""
        can = self.capabilities
        if (mounts_bot_folder and not can.mounts_bot_folder) or (serves_here and not can.serves_here):
            from ..errors import RemoteUnsupported

            raise RemoteUnsupported(refusal)
        return self.engine

    def sweep(self, project: BotProject) -> int:
        """Remove what a killed rasa-gpu on this host left on the engine for this bot; returns how many things."""
        return self.engine.remove_orphans(project.root)

    def give_back(self, project: BotProject, image: str) -> None:
        """Give everything under models/, .rasa/ and .rasa-gpu/ to the bot's owner. Here: directly, which only root
        can do for files of another user (and only root makes such files: rasa-gpu itself writes as its user)."""
        project.give_to_owner(*foreign_files(project))

    def machine(self) -> str:
        """The name of the machine whose engine runs the containers (for the run history)."""
        return self.engine.about().name

    def close(self) -> None:  # noqa: B027 - most runners hold nothing to let go of
        """Let go of connections (tunnels); the runner is not used afterwards."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def foreign_files(project: BotProject) -> list[Path]:
    """Files under models/, .rasa/ and .rasa-gpu/ that do not belong to the bot's owner."""
    uid, gid = project.owner
    found = []
    for top in (project.models_dir, project.root / ".rasa", project.state_dir):
        top = project.checked(top)  # never a walk through a link out of the bot
        if not top.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                st = os.lstat(name)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    found.append(Path(name))
    return found
