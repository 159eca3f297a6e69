"""The training container: its recipe (the bot at /bot, the bot owner's user, labels, the GPU request and the
environment contract of the image's entry script), starting it (or sending the training to the warm trainer), and
following Rasa's output into events and an outcome or an error."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import gpu as gpu_rules
from .. import progress
from ..entry_contract import EAGER_DIET_ENV, KEEP_POLICIES_ENV, MODE_ENV, NO_GPU_EXIT
from ..errors import DiskFull, GpuUnavailable, Interrupted, TrainingFailed
from ..events import EventSink, Notice, TrainingStarted
from ..runners import BOT_MOUNT, Workspace, rasa_environment
from .options import NO_LIMITS, Limits

if TYPE_CHECKING:
    from ..engine import ContainerSpec, Engine, RunningContainer
    from ..warm import WarmTrainer
    from .plan import TrainingPlan


def switches(plan: TrainingPlan) -> dict[str, str]:
    """What a fine-tune's container is told besides Rasa's arguments, from the plan's typed switches: the dialogue
    policies keep their configured epochs, DIET runs without graph tracing."""
    environment = {}
    if plan.keep_policies:
        environment[KEEP_POLICIES_ENV] = "1"
    if plan.eager_diet:
        environment[EAGER_DIET_ENV] = "1"
    return environment


@dataclass
class Outcome:
    device: str
    components: dict[str, float]
    restored: list[str]


def run_training(
    engine: Engine,
    workspace: Workspace,
    image: str,
    command: list[str],
    gpu: gpu_rules.GpuRequest,
    on_event: EventSink,
    limits: Limits = NO_LIMITS,
    *,
    secrets: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    warm: WarmTrainer | None = None,
) -> Outcome:
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
) -> Outcome:
    """One training in the warm trainer's serving container: what belongs to this training (its cache folder, the
    fine-tune switches, secrets) travels with the request, not in the container's environment."""
    from ..entry_contract import SERVE_ENV

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
    limits: Limits = NO_LIMITS,
    secrets: dict[str, str] | None = None,
    extra_environment: dict[str, str] | None = None,
) -> ContainerSpec:
    """The training container: the bot at /bot (bind-mounted, or a volume on an engine elsewhere), run as the bot's
    owner with a writable HOME, labelled so a later run can find it, and with a GPU request (plus the entry script's
    TensorFlow check) when GPUs are wanted."""
    from ..engine import ContainerSpec, labels_for

    project = workspace.project
    uid, gid = project.owner
    environment = rasa_environment()
    if gpu.wanted:
        environment[MODE_ENV] = gpu.mode
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
) -> Outcome:
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
    if code == NO_GPU_EXIT:
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
    return Outcome(device=device, components=components, restored=restored)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"
