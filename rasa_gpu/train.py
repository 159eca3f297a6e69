"""`rasa-gpu train`: one training of one bot in a container, from lock to a verified model in models/.

Events go to a callback (the CLI draws them); the result or a RasaGpuError comes back. Nothing here prints.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from . import gpu as gpu_rules
from . import license_key, progress, safefs, scratch
from .errors import (
    BusyError,
    DiskFull,
    GpuUnavailable,
    Interrupted,
    RasaGpuError,
    SettingsError,
    TrainingFailed,
)
from .events import EventSink, Notice, TrainingStarted
from .finetune import (
    EAGER_DIET_MAX_STEPS,
    Shape,
    dialogue_digest,
    diet_steps,
    nlu_examples,
    shape_of,
    why_not,
)
from .images import ImageSpec, stand_ins
from .project import BotProject
from .runners import BOT_MOUNT, Runner, Workspace, rasa_environment

if TYPE_CHECKING:
    # The engine (docker-py), the history, the image builder and the progress parser load only when a container is
    # needed: a no-change skip never does.
    from .engine import ContainerSpec, Engine, RunningContainer
    from .license_key import License
    from .overrides import Override
    from .warm import WarmTrainer

STATE_FILE = "last-train.json"
#: rasa train options that rasa-gpu itself sets.
_OWNED_ARGS = ("--out",)


@dataclass(frozen=True)
class TrainOptions:
    gpu: gpu_rules.GpuRequest
    overrides: list[Override] = field(default_factory=list)
    rasa_args: list[str] = field(default_factory=list)
    force: bool = False
    wait: bool = True
    rebuild: bool = False
    #: Rasa Pro's license, handed to the container in its environment (never a command line, image or log).
    license: License | None = field(default=None, repr=False)
    #: The queued job this training runs in (e.g. slurm:42) and how long it waited, for the history.
    job: str | None = None
    queued_seconds: float | None = None
    #: Continue from the newest model when only training examples changed (`rasa train --finetune`); anything else
    #: trains from scratch and says why.
    finetune: bool = False
    epoch_fraction: float = 0.2

    def secrets(self) -> dict[str, str]:
        return license_key.environment(self.license)


@dataclass(frozen=True)
class Limits:
    """What a training container may use: extra environment, CPU and memory caps (benchmarks set these)."""

    environment: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: str | None = None


@dataclass
class TrainResult:
    model: Path
    size: int
    skipped: bool
    wall_seconds: float
    device: str
    image: str
    rasa_version: str
    components: dict[str, float] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)
    host: str = ""  # the machine that trained
    sent_bytes: int = 0  # sent to an engine elsewhere (the bot's inputs); 0 for this machine's engine
    received_bytes: int = 0  # the model archive as it came back from an engine elsewhere
    run_id: int | None = (
        None  # its row in the run history (None: skipped, or the history could not be written)
    )
    finetuned_from: Path | None = None  # the model a fine-tune continued from


def train(
    project: BotProject,
    spec: ImageSpec,
    options: TrainOptions,
    on_event: EventSink,
    *,
    runner: Runner,
    warm: WarmTrainer | None = None,
) -> TrainResult:
    """Train once on the runner's engine (no container at all when nothing changed since the newest model). With
    `warm` (rasa-gpu watch, this machine's engine) Rasa trains in its serving container."""
    started = time.monotonic()
    for arg in options.rasa_args:
        if arg.split("=", 1)[0] in _OWNED_ARGS:
            raise SettingsError(
                f"rasa train {arg} is managed by rasa-gpu (models always land in models/); drop it"
            )
    project.check_output_folders()
    config_text = _config_with_overrides(project, options.overrides)
    published: list[Path] = []  # the model, once it is in models/
    try:
        return _train_locked(project, spec, options, on_event, runner, config_text, started, published, warm)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        if published:
            raise Interrupted(f"the model was already written: {published[0]}") from None
        raise Interrupted("stopped before the training container started; no model was written") from None


def _train_locked(
    project: BotProject,
    spec: ImageSpec,
    options: TrainOptions,
    on_event: EventSink,
    runner: Runner,
    config_text: str | None,
    started: float,
    published: list[Path],
    warm: WarmTrainer | None,
) -> TrainResult:
    with _bot_lock(project, options.wait, on_event):
        stale = _remove_stale_folders(project)
        inputs = project.inputs_digest()
        fingerprint = _fingerprint(inputs, spec, options)
        # Known without an engine: the model of a training on a registry-less base standing in for the matrix's.
        stand_in_prints = [_fingerprint(inputs, other, options) for other in stand_ins(spec)]
        if (
            not options.force
            and (previous := _unchanged_model(project, [fingerprint, *stand_in_prints])) is not None
        ):
            _report_leftovers(0, stale, on_event)  # the engine's leftovers wait for the next training
            return TrainResult(  # decided before the engine is even contacted
                model=previous["model_path"],
                size=previous["model_path"].stat().st_size,
                skipped=True,
                wall_seconds=time.monotonic() - started,
                device=previous.get("device", "unknown"),
                image=spec.tag(),
                rasa_version=spec.release.version,
                host=previous.get("host", ""),
            )
        from . import build_log, history
        from .images import ensure_image

        _report_leftovers(runner.sweep(project), stale, on_event)
        engine = runner.engine
        record = history.Run(
            kind="train",
            bot_fingerprint=inputs,
            rasa_version=spec.release.version,
            tensorflow=spec.release.tensorflow,
            image=spec.tag(),
            overrides=[o.text for o in options.overrides],
            rasa_args=list(options.rasa_args),
            host=runner.machine(),
            job=options.job,
            queued_seconds=options.queued_seconds,
        )
        with history.recording(project, record, lambda text: on_event(Notice(text, "warn"))):
            with build_log.recording(build_log.of_bot(project), on_event) as build_line:
                image = ensure_image(engine, spec, build_line, rebuild=options.rebuild)
            record.image_id = image.image_id
            if image.spec is not None and image.spec != spec:  # built on a stand-in base (settle_base)
                spec = image.spec
                fingerprint, record.image = _fingerprint(inputs, spec, options), spec.tag()
            gpu, warning = gpu_rules.for_image(
                options.gpu, image.tag, image.gpu_ready, image.cuda_note, "train"
            )
            if warning:
                on_event(Notice(warning, "warn"))
            config = _training_config(config_text)
            shape, dialogue = shape_of(project, config), dialogue_digest(project, config)
            base = _finetune_base(project, spec, options, shape, runner, on_event)
            environment = (
                _finetune_environment(project, config, options.epoch_fraction, dialogue, on_event)
                if base is not None
                else {}
            )
            with runner.workspace(project, uuid.uuid4().hex[:12], image.tag) as workspace:
                command = _train_command(project, workspace, config_text) + options.rasa_args
                if base is not None:
                    command += [
                        "--finetune",
                        workspace.inside(base),
                        "--epoch-fraction",
                        f"{options.epoch_fraction:g}",
                    ]
                    record.finetuned_from = project.relative(base)
                cache_before = _cache_entries(project) if runner.local else None
                sent = workspace.send()
                try:
                    outcome = _run_training(
                        engine,
                        workspace,
                        image.tag,
                        command,
                        gpu,
                        on_event,
                        secrets=options.secrets(),
                        environment=environment,
                        warm=warm if runner.local else None,
                    )
                except DiskFull as exc:
                    removed = _remove_partial_cache(project, cache_before) if cache_before is not None else 0
                    cleaned = f"; removed {removed} partial cache folder(s) it wrote" if removed else ""
                    raise DiskFull(
                        exc.message.replace("; free", f"{cleaned}; free", 1), details=exc.details
                    ) from None
                received = workspace.fetch()
                model = _publish_model(workspace.run_dir / "out", project)
                published.append(model)
            runner.give_back(project, image.tag)
            result = TrainResult(
                model=model,
                size=model.stat().st_size,
                skipped=False,
                wall_seconds=time.monotonic() - started,
                device=outcome.device,
                image=image.tag,
                rasa_version=spec.release.version,
                components=outcome.components,
                restored=outcome.restored,
                host=record.host or "",
                sent_bytes=sent,
                received_bytes=received,
                finetuned_from=base,
            )
            record.measured(result.device, result.wall_seconds, result.components)
            record.model_path, record.model_sha256 = project.relative(model), history.file_sha256(model)
            # the policies' configured epochs are in this machine's Rasa cache after a full training here or a
            # fine-tune that kept them
            kept = runner.local and (base is None or "RASA_GPU_KEEP_POLICIES" in environment)
            _save_state(
                project, fingerprint, result, shape, dialogue if kept else None, _basis(spec, options)
            )
        result.run_id = record.id
        return result


# ---- measured trainings (benchmarks) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimedRun:
    device: str
    gpu: bool  # trained with a GPU granted and seen by TensorFlow
    wall_seconds: float
    components: dict[str, float]


@contextmanager
def bot_session(
    project: BotProject, runner: Runner, on_event: EventSink, *, wait: bool = True
) -> Iterator[None]:
    """Hold the bot's training lock and clear what a killed run left behind, for work made of several trainings."""
    with _bot_lock(project, wait, on_event):
        stale = _remove_stale_folders(project)
        _report_leftovers(runner.sweep(project), stale, on_event)
        yield


def timed_training(
    runner: Runner,
    project: BotProject,
    image: str,
    overrides: list[Override],
    gpu: gpu_rules.GpuRequest,
    on_event: EventSink,
    limits: Limits = Limits(),
    secrets: dict[str, str] | None = None,
) -> TimedRun:
    """One training with a fresh Rasa cache whose model is thrown away: nothing in models/ or .rasa/ changes.
    Call it inside bot_session()."""
    config_text = _config_with_overrides(project, overrides)
    with runner.workspace(project, uuid.uuid4().hex[:12], image, fresh_cache=True) as workspace:
        command = _train_command(project, workspace, config_text)
        workspace.send()
        started = time.monotonic()
        outcome = _run_training(
            runner.engine, workspace, image, command, gpu, on_event, limits, secrets=secrets
        )
        wall = time.monotonic() - started
    return TimedRun(
        device=outcome.device,
        gpu=outcome.device.startswith("GPU"),
        wall_seconds=wall,
        components=outcome.components,
    )


def _train_command(project: BotProject, workspace: Workspace, config_text: str | None) -> list[str]:
    """`rasa train` writing into the run's out/, with the bot's config (or the overridden one, written into the run's
    folder), domain and data named explicitly: Rasa's defaults know only domain.yml, not a domain/ folder."""
    config = project.config
    if config_text is not None:
        config = workspace.run_dir / "config.yml"
        project.write_owned(config, config_text)
        project.give_to_owner(config)
    return [
        "train",
        "--out",
        workspace.inside(workspace.run_dir / "out"),
        "--config",
        workspace.inside(config),
        "--domain",
        workspace.inside(project.domain),
        "--data",
        workspace.inside(project.data),
    ]


# ---- before training ---------------------------------------------------------------------------------------------


def _config_with_overrides(project: BotProject, overrides: list[Override]) -> str | None:
    if not overrides:
        return None
    from .overrides import apply_overrides, render_config

    config = project.config_data()
    return render_config(apply_overrides(config, overrides, config_name=project.relative(project.config)))


@contextmanager
def _bot_lock(project: BotProject, wait: bool, on_event: EventSink) -> Iterator[None]:
    project.make_owned_dirs(project.state_dir)
    lock_path = project.checked(project.state_dir / "train.lock")  # FileLock opens it following links
    project.checked(project.state_dir / "train.pid")
    lock = FileLock(str(lock_path))
    holder_file = project.state_dir / "train.pid"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = holder_file.read_text().strip() if holder_file.exists() else "unknown"
        if not wait:
            raise BusyError(
                f"another training of {project.root} is running (pid {holder}); wait for it or drop --no-wait"
            ) from None
        on_event(Notice(f"another training of this bot is running (pid {holder}); waiting for it to finish"))
        lock.acquire()
    try:
        project.write_owned(holder_file, str(os.getpid()))
        project.give_to_owner(lock_path)
        yield
    finally:
        lock.release()


def sweep(runner: Runner, project: BotProject, on_event: EventSink) -> None:
    """Remove the containers that a killed rasa-gpu on this host left for this bot (every bot command does this;
    train also clears their temporary folders, under the bot's lock)."""
    removed = runner.sweep(project)
    if removed:
        on_event(Notice(f"removed {removed} container(s) that a killed rasa-gpu left behind for this bot"))


def _remove_stale_folders(project: BotProject) -> int:
    """What killed runs (SIGKILL, power loss) left before they could clean up: their folders in .rasa-gpu/tmp (those of
    live runs, such as a `test` of this bot, stay: scratch.tidy) and their partial copies in models/ (holding the
    bot's lock means no training that writes there is alive)."""
    removed = scratch.tidy(project)
    for entry in safefs.real_entries(project.root, project.models_dir):
        if entry.name.startswith(".") and entry.name.endswith(".partial"):
            safefs.remove(project.root, project.models_dir / entry.name)
            removed += 1
    return removed


def _report_leftovers(removed: int, stale: int, on_event: EventSink) -> None:
    if removed or stale:
        on_event(
            Notice(
                f"removed what an interrupted training left behind: {removed} container(s), "
                f"{stale} temporary folder(s) or partial model(s)"
            )
        )


def _fingerprint(inputs: str, spec: ImageSpec, options: TrainOptions) -> str:
    """What decides the model: the training inputs' digest, the Rasa release, the image, rasa args, overrides."""
    parts = {
        "inputs": inputs,
        "rasa": spec.release.version,
        "image": spec.tag(),
        "args": options.rasa_args,
        "overrides": [o.text for o in options.overrides],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _basis(spec: ImageSpec, options: TrainOptions) -> str:
    """What a model is made with besides the bot's files: a fine-tune needs the same (epochs aside, which the
    config's shape already ignores)."""
    parts = {"rasa": spec.release.version, "image": spec.tag(), "args": options.rasa_args}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _training_config(config_text: str | None) -> dict | None:
    """The config a training uses when --set overrides rewrote config.yml (parsed once); None: config.yml itself."""
    from . import yamlfile

    config = yamlfile.load(config_text) if config_text is not None else None
    return config if isinstance(config, dict) else None


def _finetune_base(
    project: BotProject,
    spec: ImageSpec,
    options: TrainOptions,
    shape: Shape,
    runner: Runner,
    on_event: EventSink,
) -> Path | None:
    """The model to fine-tune when options.finetune and only training examples changed; else None, and the
    reason is said."""
    if not options.finetune:
        return None
    newest = project.newest_model()
    if newest is None:
        return None  # a first training: nothing to fine-tune, nothing to say
    reason: str | None
    if not runner.local:
        reason = "fine-tuning runs on this machine's engine only"
    else:
        state = _read_state(project)
        if state.get("model") != project.relative(newest):
            reason = f"the newest model {newest.name} was not trained by rasa-gpu here"
        elif state.get("basis") != _basis(spec, options):
            reason = "the Rasa release, image or rasa train arguments changed"
        else:
            reason = why_not(Shape.from_json(state.get("shape")), shape)
    if reason is not None:
        on_event(Notice(f"training from scratch, not fine-tuning: {reason}", "info"))
        return None
    on_event(Notice(f"fine-tuning {newest.name} (only training examples changed)", "info"))
    return newest


def _finetune_environment(
    project: BotProject, config: dict | None, fraction: float, dialogue: str | None, on_event: EventSink
) -> dict[str, str]:
    """What a fine-tune's container is told besides Rasa's arguments, for the image's entry script:
    RASA_GPU_KEEP_POLICIES=1 when the dialogue policies' data did not change since the newest model (their epochs stay
    as configured, so Rasa's cache gives back their last training: fine-tuning them would retrain them on the same
    data), RASA_GPU_EAGER_DIET=1 when the fine-tune is short enough that tracing DIET's graph would cost more than its
    steps (finetune.EAGER_DIET_MAX_STEPS)."""
    environment = {}
    if dialogue is not None and _read_state(project).get("dialogue") == dialogue:
        on_event(
            Notice(
                "no story, rule or domain changed: the dialogue policies keep their last training (Rasa's cache)",
                "info",
            )
        )
        environment["RASA_GPU_KEEP_POLICIES"] = "1"
    steps = diet_steps(project.config_data() if config is None else config, nlu_examples(project), fraction)
    if steps is not None and steps <= EAGER_DIET_MAX_STEPS:
        on_event(Notice(f"DIET fine-tunes without graph tracing (about {steps} steps)", "info"))
        environment["RASA_GPU_EAGER_DIET"] = "1"
    return environment


def _read_state(project: BotProject) -> dict[str, Any]:
    try:
        state = json.loads((project.state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _unchanged_model(project: BotProject, fingerprints: list[str]) -> dict[str, Any] | None:
    """The previous training's record if nothing that affects training changed (its fingerprint is one of these)
    and its model is still the newest."""
    state = _read_state(project)
    if not state or state.get("fingerprint") not in fingerprints:
        return None
    model = project.root / state.get("model", "")
    if not model.is_file() or project.newest_model() != model:
        return None
    return {**state, "model_path": model}


# ---- the container -----------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    device: str
    components: dict[str, float]
    restored: list[str]


def _run_training(
    engine: Engine,
    workspace: Workspace,
    image: str,
    command: list[str],
    gpu: gpu_rules.GpuRequest,
    on_event: EventSink,
    limits: Limits = Limits(),
    *,
    secrets: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    warm: WarmTrainer | None = None,
) -> _Outcome:
    running: RunningContainer | None = None
    try:
        if warm is not None:
            return _run_warm(
                engine, workspace, image, command, gpu, on_event, limits, secrets, environment, warm
            )

        def build(request: gpu_rules.GpuRequest) -> ContainerSpec:
            return training_container(workspace, image, command, request, limits, secrets, environment)

        with gpu_rules.started(engine, build, gpu, "train", on_event) as (running, granted):
            on_event(TrainingStarted(image=image, gpu=gpu.describe() if granted else "none"))
            return _follow(
                progress.split_stream_lines(running.frames()), running.wait, gpu, granted, on_event
            )
    except KeyboardInterrupt:  # any container is stopped and removed by now (engine.running, _run_warm)
        if running is None and warm is None:
            raise Interrupted(
                "stopped while the training container was starting; none is left; no model was written"
            ) from None
        raise Interrupted("stopped and removed the training container; no model was written") from None


def _run_warm(
    engine: Engine,
    workspace: Workspace,
    image: str,
    command: list[str],
    gpu: gpu_rules.GpuRequest,
    on_event: EventSink,
    limits: Limits,
    secrets: dict[str, str] | None,
    environment: dict[str, str] | None,
    warm: WarmTrainer,
) -> _Outcome:
    """One training in the warm trainer's serving container: what belongs to this training (its cache folder, the
    fine-tune switches, secrets) travels with the request, not in the container's environment."""
    from .warm import SERVE_ENV

    def build(request: gpu_rules.GpuRequest) -> ContainerSpec:
        spec = training_container(workspace, image, [], request, limits)
        shared = {k: v for k, v in spec.environment.items() if k not in workspace.environment}
        return replace(
            spec,
            environment={**shared, SERVE_ENV: "1"},
            name=f"rasa-gpu-warm-{workspace.project.name}-{workspace.run_id}",
        )

    request_environment = {**workspace.environment, **(environment or {}), **(secrets or {})}
    try:
        lines, wait, granted, reused = warm.run(
            engine, (image, limits), build, gpu, command, request_environment, on_event
        )
        if reused:
            on_event(Notice("warm trainer: TensorFlow and Rasa are already loaded in its container", "info"))
        on_event(TrainingStarted(image=image, gpu=gpu.describe() if granted else "none"))
        return _follow(lines, wait, gpu, granted, on_event)
    except (
        BaseException
    ):  # whatever is left of this training in the container is not trusted with the next one
        warm.close()
        raise


def training_container(
    workspace: Workspace,
    image: str,
    command: list[str],
    gpu: gpu_rules.GpuRequest,
    limits: Limits = Limits(),
    secrets: dict[str, str] | None = None,
    extra_environment: dict[str, str] | None = None,
) -> ContainerSpec:
    """The training container: the bot at /bot (bind-mounted, or a volume on an engine elsewhere), run as the bot's
    owner with a writable HOME, labelled so a later run can find it, and with a GPU request (plus the entry script's
    TensorFlow check) when GPUs are wanted."""
    from .engine import ContainerSpec, labels_for

    project = workspace.project
    uid, gid = project.owner
    environment = rasa_environment()
    if gpu.wanted:
        environment["RASA_GPU_MODE"] = gpu.mode
    environment.update(workspace.environment)
    environment.update(limits.environment)
    environment.update(extra_environment or {})
    environment.update(secrets or {})
    return ContainerSpec(
        image=image,
        command=command,
        name=f"rasa-gpu-train-{project.name}-{workspace.run_id}",
        labels=labels_for("train", project.root, run=workspace.run_id),
        user=f"{uid}:{gid}",
        environment=environment,
        working_dir=BOT_MOUNT,
        binds={source: target for kind, source, target in workspace.mounts if kind == "bind"},
        volumes={source: target for kind, source, target in workspace.mounts if kind == "volume"},
        gpu=gpu if gpu.wanted else None,
        cpus=limits.cpus,
        memory=limits.memory,
        tied=True,
        stop_timeout=8,
    )


def _follow(
    lines: Iterable[str],
    wait: Callable[[], int],
    gpu: gpu_rules.GpuRequest,
    granted: bool,
    on_event: EventSink,
) -> _Outcome:
    """Rasa's output lines as events, then its exit status (from `wait`) as the outcome or an error."""
    parser = progress.ProgressParser()
    gpus_seen: list[str] | None = None
    started: dict[str, float] = {}
    components: dict[str, float] = {}
    restored: list[str] = []
    for line in lines:
        devices = gpu_rules.parse_devices_line(line)
        if devices is not None:
            gpus_seen = devices
            if not devices and gpu.mode == "auto":
                on_event(
                    Notice(
                        "GPU REQUESTED BUT TENSORFLOW SEES NONE: the container was given GPUs, yet TensorFlow found no "
                        "usable GPU (driver too old for this CUDA, or missing CUDA libraries in the base image). "
                        "Training continues ON THE CPU; run with --gpu on to make this an error.",
                        "warn",
                    )
                )
            continue
        event = parser.feed(line)
        now = time.monotonic()
        if isinstance(event, progress.ComponentStarted):
            started[event.name] = now
        elif isinstance(event, progress.ComponentFinished) and event.name in started:
            components[event.name] = components.get(event.name, 0.0) + now - started.pop(event.name)
        elif isinstance(event, progress.ComponentRestored):
            restored.append(event.name)
        on_event(event)
    code = wait()
    if code == gpu_rules.EXIT_NO_GPU_IN_TF:
        raise GpuUnavailable(
            "GPU requested with --gpu on, but TensorFlow inside the container sees no GPU (the driver may be too "
            "old for this TensorFlow's CUDA, see `rasa-gpu doctor`); nothing was trained"
        )
    if code != 0:
        tail = parser.error_lines()
        if parser.disk_full:
            raise DiskFull(
                f"disk full while Rasa was training ({parser.disk_full}); free some space "
                "and train again (existing models are untouched)",
                details=tail,
            )
        if (
            code in (137, 143) and not parser.cause
        ):  # SIGKILL / SIGTERM: the OOM killer, `docker stop`, `docker kill`
            raise TrainingFailed(
                f"the training container was killed from outside (exit code {code}; out of memory?)",
                exit_code=code,
                details=tail,
            )
        said = parser.cause or (parser.last_words if code == 1 else None)
        cause = f": {said}" if said else ""
        raise TrainingFailed(
            f"rasa train failed inside the container{cause} (exit code {code})", exit_code=code, details=tail
        )
    device = f"GPU: {', '.join(gpus_seen)}" if granted and gpus_seen else f"CPU: {_cpu_name()}"
    return _Outcome(device=device, components=components, restored=restored)


def _cache_entries(project: BotProject) -> set[str]:
    try:
        return {entry.name for entry in project.cache_dir.iterdir()}
    except OSError:
        return set()


def _remove_partial_cache(project: BotProject, before: set[str]) -> int:
    """After a disk-full training: remove the cache folders this run added that Rasa's cache database does not
    list (Rasa adds the row only after the folder is complete, so these are partial copies). Returns how many."""
    new = _cache_entries(project) - before
    if not new:
        return 0
    listed: set[str] = set()
    database = project.cache_dir / "cache.db"
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT result_location FROM cached_results").fetchall()
        listed = {Path(str(location)).name for (location,) in rows if location}
    except sqlite3.Error:
        pass  # no database yet, or not Rasa 3's layout: nothing new is complete
    removed = 0
    for name in sorted(new - listed - {database.name, f"{database.name}-journal"}):
        path = project.cache_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


# ---- after training ----------------------------------------------------------------------------------------------


def _publish_model(out_dir: Path, project: BotProject) -> Path:
    """Verify the archive Rasa wrote, then move it into models/ in one step: models/ never holds a partial file."""
    archives = sorted(out_dir.glob("*.tar.gz"))
    if len(archives) != 1:
        raise TrainingFailed(
            f"rasa train finished but wrote {len(archives)} model archives instead of one", exit_code=0
        )
    archive = archives[0]
    _verify_archive(archive)
    models_dir = project.make_owned_dirs(project.models_dir)
    target = project.checked(models_dir / archive.name)
    try:
        os.replace(archive, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise _disk_error(exc, target) from None
        # models/ is on another filesystem: copy beside the target, then rename within models/. A copy cut short by
        # SIGKILL is removed by the next training of this bot (_remove_stale_folders).
        partial = models_dir / f".{archive.name}.partial"
        safefs.remove(project.root, partial)
        try:
            with archive.open("rb") as src, open(safefs.create_exclusive(project.root, partial), "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(partial, target)
        except OSError as copy_exc:
            partial.unlink(missing_ok=True)
            raise _disk_error(copy_exc, target) from None
        except BaseException:  # Ctrl+C during the copy: no partial file stays in models/
            partial.unlink(missing_ok=True)
            raise
    return target


def _disk_error(exc: OSError, target: Path) -> RasaGpuError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"disk full while writing {target}; free some space on {target.parent} and train again "
            "(existing models are untouched)"
        )
    return RasaGpuError(f"could not write {target}: {exc.strerror}")


def _verify_archive(archive: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = {member.name.lstrip("./").lstrip("/") for member in tar}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TrainingFailed(f"the model Rasa wrote is not a readable archive ({exc})", exit_code=0) from None
    if "metadata.json" not in names:
        raise TrainingFailed("the model Rasa wrote has no metadata.json; it would not load", exit_code=0)


def _save_state(
    project: BotProject, fingerprint: str, result: TrainResult, shape: Shape, dialogue: str | None, basis: str
) -> None:
    path = project.state_dir / STATE_FILE
    state = {
        "shape": shape.to_json(),  # what a later fine-tune compares the bot with
        # the dialogue digest when the policies were trained with their configured epochs, else None: whether a later
        # fine-tune leaves them to Rasa's cache
        "dialogue": dialogue,
        "basis": basis,
        "fingerprint": fingerprint,
        "model": project.relative(result.model),
        "device": result.device,
        "image": result.image,
        "rasa": result.rasa_version,
        "host": result.host,
    }
    project.write_owned(path, json.dumps(state, indent=2))
