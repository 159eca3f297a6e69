"""Measured trainings (benchmarks): several trainings under one hold of the bot's lock, each with a fresh Rasa cache
and its model thrown away, through the same run path as any training (train_in)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import gpu as gpu_rules
from ..events import EventSink
from ..images import ImageSpec
from ..project import BotProject
from ..runners import Runner
from .image import ImagePlan
from .options import NO_LIMITS, Limits, TimedRun, TrainOptions
from .plan import timed_plan
from .run import bot_lock, remove_stale_folders, report_leftovers, train_in

if TYPE_CHECKING:
    from ..license_key import License
    from ..overrides import Override


@contextmanager
def bot_session(
    project: BotProject, runner: Runner, on_event: EventSink, *, wait: bool = True
) -> Iterator[None]:
    """Hold the bot's training lock and clear what a killed run left behind, for work made of several trainings."""
    with bot_lock(project, wait, on_event):
        stale = remove_stale_folders(project)
        report_leftovers(runner.sweep(project), stale, on_event)
        yield


def timed_training(
    runner: Runner,
    project: BotProject,
    spec: ImageSpec,
    image: str,
    overrides: list[Override],
    gpu: gpu_rules.GpuRequest,
    on_event: EventSink,
    limits: Limits = NO_LIMITS,
    license: License | None = None,
) -> TimedRun:
    """One training in `image` (built for `spec`, there on the runner's engine) with a fresh Rasa cache whose model
    is thrown away: nothing in models/ or .rasa/ changes. Call it inside bot_session()."""
    options = TrainOptions(gpu=gpu, overrides=overrides, force=True, license=license)
    found = ImagePlan(image, "use", spec, None)
    plan = timed_plan(project, found, options, runner, limits)
    ran = train_in(plan, runner, image, plan.gpu, on_event)
    return TimedRun(
        device=ran.outcome.device,
        gpu=ran.outcome.device.startswith("GPU"),
        wall_seconds=ran.seconds,
        components=ran.outcome.components,
    )
