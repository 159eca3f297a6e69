"""`up`, `down`, `restart`: building the services' images, starting them healthy, stopping them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import build_log, license_key
from ..engine import Compose, Engine, ServiceState
from ..errors import PullError, ServicesError
from ..events import BuildOutput, EventSink, Notice
from ..gpu import GpuRequest, for_image, granted, request_works
from ..images import (
    ActionsImageSpec,
    ImageResult,
    ImageSpec,
    NotebookImageSpec,
    ensure_image,
    ensure_service_image,
)
from ..license_key import License
from ..project import BotProject
from ..runners import Runner
from ..training import sweep
from .compose_file import compose_files, render_compose, write_compose, write_runtime_files
from .plan import (
    COMPOSE_FILE,
    CONTAINER_PORTS,
    PROFILES,
    PROPOSED_FILE,
    TENSORBOARD_DIR,
    ServicePlan,
    duckling_image,
    project_name,
    service_ports,
)
from .server import check_ports, wait_healthy


@dataclass(frozen=True)
class UpOptions:
    gpu: GpuRequest
    profiles: tuple[str, ...] = ()
    timeout: float = 300
    regenerate: bool = False
    rebuild: bool = False
    #: Rasa Pro's license, for the Rasa server (and the notebook): in compose's environment, never in a file.
    license: License | None = field(default=None, repr=False)


@dataclass(frozen=True)
class UpResult:
    plan: ServicePlan
    services: list[ServiceState]
    model: Path
    compose_file: Path
    compose_status: str  # written | unchanged | kept


def require_local(runner: Runner) -> Engine:
    """Services run on this machine's engine only; returns it. On an engine elsewhere their ports would be
    published on that machine, and the bot folder (models/, actions/) that they mount is not there."""
    return runner.engine_for(
        f"the services run on this machine's Docker engine only, not on {runner.name}: train there with "
        "`rasa-gpu train --host …`, then run `rasa-gpu up` without --host (the model is in models/ here); "
        "or run rasa-gpu on that machine itself",
        mounts_bot_folder=True,
        serves_here=True,
    )


def up(
    runner: Runner,
    compose: Compose,
    project: BotProject,
    spec: ImageSpec,
    actions_spec: ActionsImageSpec | None,
    settings: Any,
    options: UpOptions,
    on_event: EventSink,
) -> UpResult:
    """Build or find the images, write the compose file, start the services and wait until they are healthy."""
    duckling = duckling_image(project, settings)
    engine = require_local(runner)
    sweep(runner, project, on_event)
    model = project.newest_model()
    if model is None:
        raise ServicesError(
            f"no trained model in {project.relative(project.models_dir)}/ yet; train first with "
            f"`rasa-gpu train {project.root}`, then run `rasa-gpu up` again"
        )

    with build_log.recording(build_log.of_bot(project), on_event) as build_line:
        built = ensure_image(engine, spec, build_line, rebuild=options.rebuild)
        rasa_image = built.tag
        actions_image = None
        if actions_spec is not None:
            actions_image = ensure_service_image(
                engine, actions_spec, build_line, rebuild=options.rebuild
            ).tag
        notebook = NotebookImageSpec(rasa_image, spec.release.version, spec.pip_index_url)
        if "jupyter" in options.profiles:
            ensure_service_image(engine, notebook, build_line, rebuild=options.rebuild)
    bind, ports = service_ports(settings)
    if duckling is not None:
        duckling = _available_duckling(engine, duckling, on_event)
    plan = ServicePlan(
        project_name=project_name(project),
        user="{}:{}".format(*project.owner),
        rasa_image=rasa_image,
        actions_image=actions_image,
        actions_path=project.relative(project.actions) if project.actions else "actions",
        notebook_image=notebook.tag(),
        bind=bind,
        ports=ports,
        gpu=_gpu_for_services(engine, built, options.gpu, on_event),
        license=options.license is not None,
        duckling_image=duckling,
    )
    compose_file, status = write_compose(project, render_compose(plan), regenerate=options.regenerate)
    if status == "kept":
        on_event(
            Notice(
                f"{COMPOSE_FILE} has edits of yours, so rasa-gpu did not rewrite it; its new version is in "
                f"{PROPOSED_FILE} (compare them, or pass --regenerate to replace yours, which is kept as .bak)",
                "warn",
            )
        )
    write_runtime_files(
        project, f"http://actions:{CONTAINER_PORTS['actions']}/webhook" if actions_image else None
    )
    started = (["actions"] if actions_image else []) + (["duckling"] if duckling else [])
    started += ["rasa", *options.profiles]
    if "tensorboard" in options.profiles:
        project.make_owned_dirs(project.root / TENSORBOARD_DIR)
    project.make_language_model_cache()
    check_ports(plan, started, engine.project_containers(plan.project_name))
    on_event(
        Notice(
            f"starting {', '.join(started)} with {compose.flavour} ({' '.join(compose.command)} {compose.version})"
        )
    )
    try:
        compose.run(
            plan.project_name,
            compose_files(project),
            ["up", "-d", "--remove-orphans", *started],
            profiles=options.profiles,
            secrets=license_key.environment(options.license),
        )
        states = wait_healthy(engine, plan.project_name, started, options.timeout, on_event)
    except BaseException:  # a half-started set of services is worse than none: take them down again
        down(engine, compose, project)
        raise
    return UpResult(plan=plan, services=states, model=model, compose_file=compose_file, compose_status=status)


def _available_duckling(engine: Engine, image: str, on_event: EventSink) -> str | None:
    """The Duckling server's image when the engine has it or pulls it; else None, and a warning that says what goes
    missing and what to do: the other services start without it."""
    if engine.image_id(image) is not None:
        return image
    reason = "no registry answers for it"
    if engine.can_pull(image):
        try:
            if engine.pull_published(image, lambda line: on_event(BuildOutput(line))) is not None:
                return image
            reason = "its registry does not have it"
        except PullError as exc:
            reason = f"it cannot be pulled ({exc})"
    on_event(
        Notice(
            f"the duckling service is not started: {image} is not on this engine and {reason}; entities from "
            "DucklingEntityExtractor will be missing (the other services start without it); pull it on a machine "
            "with a registry and bring it here (`docker save` there, `docker load` here), or set duckling_image in "
            "rasa-gpu.toml to an image this engine has",
            "warn",
        )
    )
    return None


def _gpu_for_services(
    engine: Engine, built: ImageResult, gpu: GpuRequest, on_event: EventSink
) -> GpuRequest | None:
    """The train rule: auto uses GPUs when the image can and the engine grants them, on fails without, off never
    asks."""
    image = built.tag
    gpu, warning = for_image(gpu, image, built.gpu_ready, built.cuda_note, "run the Rasa server")
    if warning:
        on_event(Notice(warning, "warn"))
    if not gpu.wanted:
        return None
    wanted = gpu
    works = granted(
        engine.engine_id(),
        wanted,
        "run the Rasa server",
        on_event,
        lambda: request_works(engine, image, wanted),
    )
    return wanted if works else None


def down(engine: Engine, compose: Compose, project: BotProject) -> int:
    """Stop and remove every service of the bot (profiles included); returns how many containers were removed."""
    name = project_name(project)
    before = len(engine.project_containers(name))
    if (project.root / COMPOSE_FILE).is_file():
        compose.run(name, compose_files(project), ["down", "--remove-orphans"], profiles=PROFILES)
    engine.remove_leftovers({"com.docker.compose.project": name})
    return before


def restart(
    engine: Engine,
    compose: Compose,
    project: BotProject,
    services: list[str],
    timeout: float,
    on_event: EventSink,
) -> list[ServiceState]:
    """Restart running services (all when none are named) and wait until they are healthy again."""
    name = project_name(project)
    running = {s.service for s in engine.project_containers(name) if s.status == "running"}
    wanted = services or sorted(running)
    missing = [s for s in wanted if s not in running]
    if missing or not wanted:
        raise ServicesError(
            f"{', '.join(missing) or 'no service'} of this bot is not running; start the services with `rasa-gpu up`"
        )
    compose.run(name, compose_files(project), ["restart", *wanted], profiles=PROFILES)
    return wait_healthy(engine, name, wanted, timeout, on_event)
