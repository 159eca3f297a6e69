"""`rasa-gpu watch`: retrain when the bot's data, domain or config change; restart the action server when actions/
changes.

Filesystem events (watchdog) go into a queue. The loop takes the first one, then waits for a quiet period (no new
event for `quiet` seconds) so that an editor's save or a burst of edits becomes one batch. Events that arrive while
a training runs stay in the queue and make exactly one batch afterwards. A batch whose training inputs hash the same
as the last training's (Rasa rewriting config.yml comments, a save without a change) is dropped. Nothing here
prints: events go to a callback.
"""

from __future__ import annotations

import errno
import fnmatch
import queue
import time
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import retention, services
from .engine import Compose, Engine
from .errors import RasaGpuError
from .events import ActionsRestarted, Changed, EventSink, Invalid, Notice, Trained, TrainFailed, Watching
from .gpu import CPU
from .images import ImageSpec
from .project import BotProject, is_training_input
from .requirements import ACTIONS_FILES
from .runners import Runner
from .training import TrainOptions, sweep, train
from .warm import WarmTrainer

QUIET_SECONDS = 0.5
#: Editor temp and swap files (vim, emacs, JetBrains, gedit, and the like).
IGNORED_NAMES = (
    "4913",
    "*~",
    "*.swp",
    "*.swx",
    "*.swo",
    ".#*",
    "#*#",
    "*___jb_tmp___",
    "*___jb_old___",
    "*.tmp",
    ".goutputstream-*",
)

#: Files of the action server: code, its requirements, data files it reads.
ACTIONS_SUFFIXES = (".py", ".txt", ".yml", ".yaml", ".json", ".toml", ".cfg", ".ini")

# ---- what a path means ---------------------------------------------------------------------------------------------


def classify(root: Path, path: str) -> str | None:
    """ "train", "actions" or None (ignored) for a changed path."""
    try:
        relative = PurePosixPath(Path(path).relative_to(root).as_posix())
    except ValueError:
        return None
    if not relative.parts or any(fnmatch.fnmatch(relative.name, pattern) for pattern in IGNORED_NAMES):
        return None
    if relative.parts[0] == "actions":
        return (
            "actions" if relative.suffix in ACTIONS_SUFFIXES and "__pycache__" not in relative.parts else None
        )
    if is_training_input(relative):  # the same rule as the no-change skip's
        return "train"
    if len(relative.parts) == 1 and (relative.name == "actions.py" or relative.name in ACTIONS_FILES):
        return "actions"  # Rasa 2's actions layout
    return None


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, changes: queue.Queue[tuple[str, str]]) -> None:
        self.root = root
        self.changes = changes

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                kind = classify(self.root, str(path))
                if kind:
                    self.changes.put((kind, str(path)))


# ---- the loop ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchOptions:
    train: TrainOptions
    quiet: float = QUIET_SECONDS
    initial_train: bool = True
    restart_timeout: float = 120
    keep_models: int = retention.WATCH_DEFAULT
    #: Train in one serving container for the whole watch (warm.py; this machine's engine only).
    warm: bool = True


def watch(
    project: BotProject,
    spec: ImageSpec,
    options: WatchOptions,
    on_event: EventSink,
    *,
    runner: Runner,
    compose: Compose | None = None,
    max_cycles: int | None = None,
) -> None:
    """Watch until interrupted (KeyboardInterrupt ends it; train() cleans up its container on the way out)."""
    sweep(runner, project, on_event)
    changes: queue.Queue[tuple[str, str]] = queue.Queue()
    observer = Observer()
    observer.schedule(_Handler(project.root, changes), str(project.root), recursive=True)
    try:
        observer.start()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RasaGpuError(
                "the inotify watch limit is reached, so the bot folder cannot be watched; raise it with "
                "`sudo sysctl fs.inotify.max_user_watches=524288`"
            ) from None
        raise
    last_digest: str | None = None
    cycles = 0
    warm = WarmTrainer() if options.warm and runner.capabilities.keeps_warm_trainer else None
    try:
        if options.initial_train:
            digest = _digest_or_none(project)
            trained, options = _retrain(project, spec, options, runner, on_event, warm)
            last_digest = digest if trained else None
        while max_cycles is None or cycles < max_cycles:
            on_event(Watching(project.root))
            batch = _next_batch(changes, options.quiet)
            cycles += 1
            kinds = {kind for kind, _ in batch}
            paths = sorted({project.relative(Path(path)) for _, path in batch})
            digest = _digest_or_none(project) if "train" in kinds else None
            wants_training = "train" in kinds and digest != last_digest
            if not wants_training and "actions" not in kinds:
                continue
            on_event(Changed(paths=paths, train=wants_training, actions="actions" in kinds))
            if "actions" in kinds:
                _restart_actions(project, paths, options, runner.engine, compose, on_event)
            if wants_training:
                trained, options = _retrain(project, spec, options, runner, on_event, warm)
                last_digest = digest if trained else last_digest
    finally:
        try:
            if warm is not None:
                warm.close()
        finally:
            observer.stop()
            observer.join(timeout=5)


def _next_batch(changes: queue.Queue[tuple[str, str]], quiet: float) -> list[tuple[str, str]]:
    """Block until a change comes, then collect until nothing new arrived for `quiet` seconds."""
    while True:
        try:
            batch = [changes.get(timeout=0.2)]  # a timeout keeps Ctrl+C responsive
            break
        except queue.Empty:
            continue
    deadline = time.monotonic() + quiet
    while True:
        try:
            batch.append(changes.get(timeout=max(0.0, deadline - time.monotonic())))
            deadline = time.monotonic() + quiet
        except queue.Empty:
            return batch


def _digest_or_none(project: BotProject) -> str | None:
    try:
        return project.inputs_digest()
    except OSError:
        return None


def _retrain(
    project: BotProject,
    spec: ImageSpec,
    options: WatchOptions,
    runner: Runner,
    on_event: EventSink,
    warm: WarmTrainer | None = None,
) -> tuple[bool, WatchOptions]:
    """Validate, train, and make the running Rasa server (if any) serve the model. Returns whether a training was
    attempted (False: the bot did not validate) and the options for the next training."""
    try:
        project = BotProject.load(project.root)  # parses every YAML file: errors come with file:line
    except RasaGpuError as exc:
        on_event(Invalid(exc))
        return False, options
    try:
        result = train(project, spec, replace(options.train, force=False), on_event, runner=runner, warm=warm)
    except RasaGpuError as exc:
        on_event(TrainFailed(exc))
        return True, options
    if not result.skipped and options.train.gpu.mode == "auto" and result.device.startswith("CPU"):
        # Said once, above; asking the engine again before every training would only add latency.
        on_event(
            Notice("no usable GPU: this watch trains on the CPU from now on (restart it after fixing that)")
        )
        options = replace(options, train=replace(options.train, gpu=CPU))
    loaded = None
    try:
        # Services (rasa-gpu up) run only where they serve here; a no-op if the server serves it already.
        if runner.capabilities.serves_here:
            loaded = services.load_model(runner.engine, project, result.model, on_event)
    except RasaGpuError as exc:
        on_event(Notice(f"the new model could not be loaded into the Rasa server: {exc.message}", "warn"))
    on_event(Trained(result, loaded))
    if not result.skipped:
        _tidy(project, options.keep_models, runner, on_event)
    return True, options


def _tidy(project: BotProject, keep: int, runner: Runner, on_event: EventSink) -> None:
    """keep_models after a training: the served model (asked from the server, which serves the new one by now)
    and pinned ones stay."""
    try:
        served = services.served_model(runner.engine, project) if runner.capabilities.serves_here else None
        removed = retention.tidy(project, keep, served)
    except RasaGpuError as exc:
        on_event(Notice(f"no older model was removed ({exc.message})", "warn"))
        return
    if removed:
        on_event(Notice(f"removed {len(removed)} older model(s) (keep_models = {keep})"))


def _restart_actions(
    project: BotProject,
    paths: list[str],
    options: WatchOptions,
    engine: Engine,
    compose: Compose | None,
    on_event: EventSink,
) -> None:
    running = {
        s.service for s in engine.project_containers(services.project_name(project)) if s.status == "running"
    }
    changed_requirements = [p for p in paths if p in ACTIONS_FILES]
    if changed_requirements:
        on_event(
            Notice(
                f"{changed_requirements[0]} changed: run `rasa-gpu up` to rebuild the action server's image",
                "warn",
            )
        )
    if "actions" not in running:
        on_event(
            Notice("actions/ changed; no action server of this bot is running (start one with `rasa-gpu up`)")
        )
        return
    try:
        services.restart(
            engine, compose or Compose.find(), project, ["actions"], options.restart_timeout, on_event
        )
    except RasaGpuError as exc:
        on_event(TrainFailed(exc))
        return
    on_event(ActionsRestarted())
