"""Any Rasa command in the bot's training image (`rasa-gpu rasa`, `shell`, `validate`, `test`): the bot at /bot, run
as the bot folder's owner, on the GPU by the same rules as a training, with the action server of `rasa-gpu up`
reachable when it runs, and a terminal when rasa-gpu has one. The container ends with the command.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import evaluation
from . import gpu as gpu_rules
from .entry_contract import MODE_ENV
from .errors import SettingsError, TrainingFailed
from .events import EventSink, Notice
from .project import BotProject
from .runners import BOT_MOUNT, Runner, rasa_environment
from .scratch import Scratch

if TYPE_CHECKING:
    from .engine import ContainerSpec, Engine, RunningContainer
    from .history import Run

#: Test kinds and the `rasa test` subcommand of each ("" tests NLU and Core together).
TEST_KINDS = {"all": [], "nlu": ["nlu"], "core": ["core"], "e2e": ["e2e"]}
RESULTS = "results"


@dataclass(frozen=True)
class RasaOptions:
    gpu: gpu_rules.GpuRequest
    terminal: bool = False
    #: Rasa Pro's license and any other value for the container's environment only (never a command line).
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


def rasa_container(
    project: BotProject,
    image: str,
    args: list[str],
    gpu: gpu_rules.GpuRequest,
    *,
    terminal: bool,
    network: str | None,
    secrets: dict[str, str],
    run_id: str,
) -> ContainerSpec:
    """A container that runs `rasa ARGS` in /bot as the bot's owner (the image's entry point checks the GPU)."""
    from .engine import ContainerSpec, labels_for

    uid, gid = project.owner
    environment = rasa_environment()
    if gpu.wanted:
        environment[MODE_ENV] = gpu.mode
    environment.update(secrets)
    return ContainerSpec(
        image=image,
        command=list(args),
        name=f"rasa-gpu-rasa-{project.name}-{run_id}",
        labels=labels_for("rasa", project.root, run=run_id),
        user=f"{uid}:{gid}",
        environment=environment,
        working_dir=BOT_MOUNT,
        binds={str(project.root): BOT_MOUNT},
        gpu=gpu if gpu.wanted else None,
        tied=not terminal,
        terminal=terminal,
        network=network,
        stop_timeout=8,
    )


def with_services(project: BotProject, engine: Engine, args: list[str]) -> tuple[str | None, list[str]]:
    """The network of the bot's running services (`rasa-gpu up`) and the args with their endpoints, so custom actions
    answer; (None, args) when no services run or the args name their own endpoints."""
    from . import services

    network = f"{services.project_name(project)}_default"
    endpoints = project.state_dir / "endpoints.services.yml"
    if not engine.network_exists(network) or not endpoints.is_file():
        return None, args
    if args[:1] in (["shell"], ["run"], ["interactive"], ["test"]) and "--endpoints" not in args:
        return network, [*args, "--endpoints", f"{BOT_MOUNT}/{project.relative(endpoints)}"]
    return network, args


#: Why Rasa's commands (rasa, test, shell, validate) refuse an engine elsewhere.
LOCAL_ONLY = (
    "rasa-gpu's Rasa commands (rasa, test, shell, validate) run on this machine's Docker engine only (the bot folder "
    "is mounted); drop --host/--context, or train there and test here"
)


def run(
    project: BotProject,
    image: str,
    args: list[str],
    options: RasaOptions,
    runner: Runner,
    on_event: EventSink,
    on_output: Callable[[bytes], None],
    pump: Callable[[RunningContainer], None] | None = None,
    on_frame: Callable[[int, bytes], None] | None = None,
) -> int:
    """Run `rasa ARGS`; its output goes to on_output as it comes (with a terminal, `pump` moves the keyboard's bytes
    in and the screen's out instead), and each piece to on_frame with its stream (1 stdout, 2 stderr) for a caller
    that reads Rasa's words. Returns Rasa's exit code."""
    engine = runner.engine_for(LOCAL_ONLY, mounts_bot_folder=True)
    project.make_language_model_cache()
    network, args = with_services(project, engine, args)
    if network:
        on_event(Notice(f"the action server of `rasa-gpu up` is reachable (network {network})"))
    run_id = uuid.uuid4().hex[:12]

    def build(gpu: gpu_rules.GpuRequest) -> ContainerSpec:
        return rasa_container(
            project,
            image,
            args,
            gpu,
            terminal=options.terminal,
            network=network,
            secrets=options.secrets,
            run_id=run_id,
        )

    with gpu_rules.started(engine, build, options.gpu, "run rasa", on_event) as (running, _granted):
        if options.terminal and pump is not None:
            pump(running)
        else:
            for stream, chunk in running.frames():
                on_output(chunk)
                if on_frame is not None:
                    on_frame(stream, chunk)
        return running.wait()


# ---- rasa test ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RasaTestOptions:
    kind: str = "all"  # all | nlu | core | e2e
    model: Path | None = None  # default: the newest in models/
    folds: int | None = None  # NLU cross-validation
    extra: list[str] = field(default_factory=list)
    nlu: Path | None = None  # the NLU test data (default: the bot's data/)
    stories: Path | None = None  # the test stories (default: Rasa's, tests/)
    results: str = RESULTS  # where in the bot the reports end


@dataclass
class RasaTestResult:
    model: Path | None
    results: Path
    figures: dict[str, float]
    exit_code: int
    run_id: int | None = None


def rasa_test_args(project: BotProject, options: RasaTestOptions, model: Path | None, out: str) -> list[str]:
    """`rasa test …` for these options: the model (none for cross-validation, which trains per fold), the bot's own
    config, domain and data paths, and the results folder."""
    if options.folds is not None and options.kind != "nlu":
        raise SettingsError("--cross-validation is for NLU: use `rasa-gpu test BOT nlu --cross-validation`")
    args = ["test", *TEST_KINDS[options.kind]]
    if options.folds is not None:
        args += ["--cross-validation", "--folds", str(options.folds), "--config", f"{BOT_MOUNT}/config.yml"]
    elif model is not None:
        args += ["--model", f"{BOT_MOUNT}/{project.relative(model)}"]
    if options.kind in ("nlu", "all"):
        args += ["--nlu", f"{BOT_MOUNT}/{project.relative(options.nlu or project.data)}"]
    if options.kind in ("core", "all") and options.stories is not None:
        args += ["--stories", f"{BOT_MOUNT}/{project.relative(options.stories)}"]
    if options.kind != "core":
        args += ["--domain", f"{BOT_MOUNT}/{project.relative(project.domain)}"]
    return [*args, "--out", out, *options.extra]


def run_tests(
    project: BotProject,
    image: str,
    options: RasaTestOptions,
    rasa_options: RasaOptions,
    runner: Runner,
    on_event: EventSink,
    on_output: Callable[[bytes], None],
    record: Run,
) -> RasaTestResult:
    """rasa test into a fresh folder of the run, whose reports then replace those in BOT/results/; the figures are
    read from the fresh reports only, so a report an earlier run left behind never counts."""
    model = options.model or project.newest_model()
    if model is None and options.folds is None:
        raise SettingsError(f"no model in {project.models_dir}; `rasa-gpu train {project.root}` makes one")
    if model is not None and not model.is_file():
        raise SettingsError(f"model {model} does not exist; `rasa-gpu models {project.root}` lists them")
    claim = Scratch(project, f"test-{uuid.uuid4().hex[:12]}")  # claimed: a train of this bot leaves it alone
    fresh = claim.path
    try:
        args = rasa_test_args(project, options, model, f"{BOT_MOUNT}/{project.relative(fresh)}")
        record.model_path = project.relative(model) if model is not None else None
        record.rasa_args = args[1:]
        output: list[tuple[int, bytes]] = []

        inside = f"{BOT_MOUNT}/{project.relative(fresh)}".encode()
        shown = f"{BOT_MOUNT}/{options.results}".encode()

        def show(chunk: bytes) -> None:
            on_output(
                chunk.replace(inside, shown)
            )  # Rasa names the run's folder; the reports end in results/

        code = run(
            project,
            image,
            args,
            rasa_options,
            runner,
            on_event,
            show,
            on_frame=lambda stream, chunk: output.append((stream, chunk)),
        )
        if code != 0:
            raise TrainingFailed(f"rasa test failed inside the container: {_cause(output)}", exit_code=code)
        figures = evaluation.read_results(fresh)
        results = project.make_owned_dirs(project.root / options.results)
        for path in sorted(fresh.rglob("*")):
            target = results / path.relative_to(fresh)
            if path.is_symlink():
                continue  # Rasa writes none; one made in the container is not followed here
            if path.is_dir():
                project.make_owned_dirs(target)
            else:
                os.replace(path, project.checked(target))  # the same filesystem: .rasa-gpu/ is in the bot
        record.metrics = figures
        return RasaTestResult(model, results, figures, code)
    finally:
        claim.release()


def _cause(frames: list[tuple[int, bytes]]) -> str:
    """Rasa's own words for the failure (as for a training): its exception line, else the last line it printed
    (stdout and stderr split into lines each on its own)."""
    from .progress import ProgressParser, split_stream_lines

    parser = ProgressParser()
    lines = [line for line in split_stream_lines(frames) if not isinstance(parser.feed(line), type(None))]
    if parser.cause:
        return parser.cause
    return (list(parser.tail) or lines or ["no output"])[-1][:300]
