"""Carrying out a training plan: the bot's lock and the sweep of what killed runs left, the image, the workspace on the
runner, the container, the model into models/ and last-train.json. One path for `rasa-gpu train` (and a queued job's
training on its node, which is that command), watch's warm trainer and the benchmarks' measured trainings.

Events go to a callback (the CLI draws them); the result or a RasaGpuError comes back. Nothing here prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from .. import gpu as gpu_rules
from .. import safefs, scratch
from ..errors import BusyError, DiskFull, Interrupted
from ..events import EventSink, Notice
from ..images import ImageSpec
from ..project import BotProject
from ..runners import Runner
from .container import Outcome, run_training, switches
from .options import TrainOptions, TrainResult
from .plan import TrainingPlan, basis, check_request, make_plan
from .publish import cache_entries, publish_model, remove_partial_cache
from .state import TrainState

if TYPE_CHECKING:
    from ..warm import WarmTrainer


def train(
    project: BotProject,
    spec: ImageSpec,
    options: TrainOptions,
    on_event: EventSink,
    *,
    runner: Runner,
    warm: WarmTrainer | None = None,
) -> TrainResult:
    """Train once on the runner's engine (no container at all when nothing changed since the newest model): the plan
    is made under the bot's lock, then carried out. With `warm` (rasa-gpu watch, a runner that keeps a warm trainer)
    Rasa trains in its serving container."""
    check_request(project, options)
    try:
        with bot_lock(project, options.wait, on_event):
            stale = remove_stale_folders(project)
            plan = make_plan(project, spec, options, runner)
            # the engine's leftovers of this bot wait for the next training: a skip never contacts the engine
            report_leftovers(runner.sweep(project) if plan.train else 0, stale, on_event)
            return execute(plan, runner, on_event, warm=warm)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted("stopped before the training container started; no model was written") from None


def execute(
    plan: TrainingPlan, runner: Runner, on_event: EventSink, *, warm: WarmTrainer | None = None
) -> TrainResult:
    """Carry out a plan made by make_plan (under the bot's lock): nothing to do, or one training whose model lands in
    models/, recorded in the run history and in last-train.json."""
    started = time.monotonic()
    if not plan.train:
        model, state = plan.previous_model, plan.state or TrainState()
        assert model is not None  # a plan that does not train names the model that is up to date
        return TrainResult(
            model=model,
            size=model.stat().st_size,
            skipped=True,
            wall_seconds=time.monotonic() - started,
            device=state.device,
            image=plan.spec.tag(),
            rasa_version=plan.spec.release.version,
            host=state.host,
        )
    published: list[Path] = []  # the model, once it is in models/
    try:
        return _train(plan, runner, on_event, warm, published, started)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        if published:
            raise Interrupted(f"the model was already written: {published[0]}") from None
        raise


def _train(
    plan: TrainingPlan,
    runner: Runner,
    on_event: EventSink,
    warm: WarmTrainer | None,
    published: list[Path],
    started: float,
) -> TrainResult:
    from .. import build_log, history
    from ..images import ensure_image

    project, options, spec = plan.project, plan.options, plan.spec
    record = history.Run(
        kind="train",
        bot_fingerprint=plan.inputs.digest,
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
            image = ensure_image(runner.engine, spec, build_line, rebuild=options.rebuild)
        record.image_id = image.image_id
        if image.spec is not None and image.spec != spec:  # built on a stand-in base (settle_base)
            spec = image.spec
            record.image = spec.tag()
        # The plan knew the image's GPU readiness only if it was there; a build's CUDA check tells it now.
        gpu, warning = gpu_rules.for_image(options.gpu, image.tag, image.gpu_ready, image.cuda_note, "train")
        if warning:
            on_event(Notice(warning, "warn"))
        _say_finetune(plan, on_event)
        if plan.finetune_base is not None:
            record.finetuned_from = project.relative(plan.finetune_base)
        ran = train_in(plan, runner, image.tag, gpu, on_event, warm=warm, published=published)
        assert ran.model is not None
        runner.give_back(project, image.tag)
        result = TrainResult(
            model=ran.model,
            size=ran.model.stat().st_size,
            skipped=False,
            wall_seconds=time.monotonic() - started,
            device=ran.outcome.device,
            image=image.tag,
            rasa_version=spec.release.version,
            components=ran.outcome.components,
            restored=ran.outcome.restored,
            host=record.host or "",
            sent_bytes=ran.sent,
            received_bytes=ran.received,
            finetuned_from=plan.finetune_base,
        )
        record.measured(result.device, result.wall_seconds, result.components)
        record.model_path, record.model_sha256 = project.relative(ran.model), history.file_sha256(ran.model)
        _state_after(plan, spec, result).write(project)
    result.run_id = record.id
    return result


def _state_after(plan: TrainingPlan, spec: ImageSpec, result: TrainResult) -> TrainState:
    """last-train.json after the plan's training in an image of `spec`. The dialogue digest is kept when the policies'
    configured epochs are in this machine's Rasa cache: after a full training here, or a fine-tune that kept them."""
    kept = plan.capabilities.mounts_bot_folder and (plan.finetune_base is None or plan.keep_policies)
    return TrainState(
        fingerprint=plan.fingerprint_for(spec),
        model=plan.project.relative(result.model),
        basis=basis(spec, plan.options),
        shape=plan.shape,
        dialogue=plan.dialogue if kept else None,
        inputs=plan.inputs.files,
        device=result.device,
        image=result.image,
        rasa=result.rasa_version,
        host=result.host,
    )


def _say_finetune(plan: TrainingPlan, on_event: EventSink) -> None:
    if plan.finetune_reason is not None:
        on_event(Notice(f"training from scratch, not fine-tuning: {plan.finetune_reason}", "info"))
    if plan.finetune_base is None:
        return
    on_event(Notice(f"fine-tuning {plan.finetune_base.name} (only training examples changed)", "info"))
    if plan.keep_policies:
        on_event(
            Notice(
                "no story, rule or domain changed: the dialogue policies keep their last training (Rasa's cache)",
                "info",
            )
        )
    if plan.eager_diet:
        on_event(Notice(f"DIET fine-tunes without graph tracing (about {plan.diet_steps} steps)", "info"))


@dataclass(frozen=True)
class Ran:
    """What one training container gave: its outcome, the model (None for a measured training), the bytes sent to
    and received from an engine elsewhere, and the seconds from its start to its end."""

    outcome: Outcome
    model: Path | None
    sent: int
    received: int
    seconds: float


def train_in(
    plan: TrainingPlan,
    runner: Runner,
    image: str,
    gpu: gpu_rules.GpuRequest,
    on_event: EventSink,
    *,
    warm: WarmTrainer | None = None,
    published: list[Path] | None = None,
) -> Ran:
    """The plan's container in `image` on the runner: its workspace (the overridden config written into it), the
    bot's inputs sent, Rasa followed, the model fetched and published (a measured training throws it away)."""
    project = plan.project
    with runner.workspace(project, plan.run_id, image, fresh_cache=plan.measured) as workspace:
        if plan.config_text is not None:
            project.write_owned(plan.config_file, plan.config_text)
            project.give_to_owner(plan.config_file)
        here = plan.capabilities.mounts_bot_folder and not plan.measured
        cache_before = cache_entries(project) if here else None
        sent = workspace.send()
        started = time.monotonic()
        try:
            outcome = run_training(
                runner.engine,
                workspace,
                image,
                plan.command(),
                gpu,
                on_event,
                plan.limits,
                secrets=plan.options.secrets(),
                environment=switches(plan),
                warm=warm if plan.capabilities.keeps_warm_trainer else None,
            )
        except DiskFull as exc:
            removed = remove_partial_cache(project, cache_before) if cache_before is not None else 0
            cleaned = f"; removed {removed} partial cache folder(s) it wrote" if removed else ""
            raise DiskFull(
                exc.message.replace("; free", f"{cleaned}; free", 1), details=exc.details
            ) from None
        seconds = time.monotonic() - started
        if plan.measured:
            return Ran(outcome, None, sent, 0, seconds)
        received = workspace.fetch()
        model = publish_model(workspace.run_dir / "out", project)
        if published is not None:
            published.append(model)
    return Ran(outcome, model, sent, received, seconds)


# ---- the bot's lock and what killed runs left ----------------------------------------------------------------------


@contextmanager
def bot_lock(project: BotProject, wait: bool, on_event: EventSink) -> Iterator[None]:
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


def remove_stale_folders(project: BotProject) -> int:
    """What killed runs (SIGKILL, power loss) left before they could clean up: their folders in .rasa-gpu/tmp (those of
    live runs, such as a `test` of this bot, stay: scratch.tidy) and their partial copies in models/ (holding the
    bot's lock means no training that writes there is alive)."""
    removed = scratch.tidy(project)
    for entry in safefs.real_entries(project.root, project.models_dir):
        if entry.name.startswith(".") and entry.name.endswith(".partial"):
            safefs.remove(project.root, project.models_dir / entry.name)
            removed += 1
    return removed


def report_leftovers(removed: int, stale: int, on_event: EventSink) -> None:
    if removed or stale:
        on_event(
            Notice(
                f"removed what an interrupted training left behind: {removed} container(s), "
                f"{stale} temporary folder(s) or partial model(s)"
            )
        )
