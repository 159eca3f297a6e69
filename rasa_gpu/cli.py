"""The command line: the only place that prints, prompts or picks an exit code."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__, history, progress, services, signals, vscode
from . import benchmark as benchmark_mod
from . import doctor as doctor_mod
from . import watch as watch_mod
from .base_image import DEFAULT_SUITE, SUITE_PYTHON, build_base_image, default_mirror, default_name
from .compat import load_matrix
from .engine import Compose, Engine
from .errors import Interrupted, ProjectError, RasaGpuError, SettingsError
from .gpu import parse_gpu_request
from .images import (
    DEFAULT_IMAGE_NAME,
    ActionsImageSpec,
    ImageSpec,
    default_actions_base,
    ensure_image,
    read_ca_certs,
)
from .overrides import parse_overrides
from .project import BotProject
from .push import push_image
from .settings import GPU_MODES, Settings, extra_requirements, load_settings, resolve_rasa
from .train import BuildOutput, Notice, TrainingStarted, TrainOptions, TrainResult, train

T = TypeVar("T")
# Piped output gets whole table rows rather than Rich's default of 80 columns.
# emoji=False: Rasa's "io.py:100:" must not become an emoji. Rich drops colours itself when output is not a terminal.
out = Console(highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)


def verbatim(line: str, style: str = "dim") -> Text:
    """A line that Rasa, pip or Docker printed, shown as it was: no markup or emoji codes, its colour codes
    turned into colours on a terminal and dropped elsewhere."""
    return Text.from_ansi(line, style=style)


# ---- shared options ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageOptions:
    """The image options shared by build and train, as given on the command line (None: not given)."""

    rasa_version: str | None
    base_image: str | None
    variant: str
    pip_index_url: str | None
    ca_certs: tuple[str, ...]
    registry: str | None
    rebuild: bool

    def settings(self) -> dict[str, Any]:
        return {
            "rasa_version": self.rasa_version,
            "base_image": self.base_image,
            "pip_index_url": self.pip_index_url,
            "ca_certs": self.ca_certs,
            "registry": self.registry,
        }


def image_options(func: Any = None, *, builds: bool = True) -> Any:
    """Add the image options to a command; it receives them as one ImageOptions argument named `image`.
    `builds=False` (doctor) leaves out the options that only matter when an image is built or pulled."""
    if func is None:
        return functools.partial(image_options, builds=builds)

    @functools.wraps(func)
    def packed(*args: Any, **kwargs: Any) -> Any:
        names = [f.name for f in fields(ImageOptions)]
        image = ImageOptions(**{name: kwargs.pop(name, None) for name in names})
        return func(*args, image=image, **kwargs)

    options = [
        click.option(
            "--rasa-version",
            metavar="X.Y.Z",
            help="Rasa release to use (default: settings, then the "
            "bot's requirements, then the newest supported).",
        ),
        click.option(
            "--base-image",
            envvar="RASA_GPU_BASE_IMAGE",
            metavar="IMAGE",
            help="Base image (any registry or local image) instead of tensorflow/tensorflow:<tf>-gpu. "
            "[env: RASA_GPU_BASE_IMAGE]",
        ),
        click.option(
            "--variant",
            type=click.Choice(["gpu", "cpu"]),
            default="gpu",
            show_default=True,
            help="Which default base image: TensorFlow's GPU image or its smaller CPU-only image.",
        ),
        click.option(
            "--pip-index-url",
            envvar="RASA_GPU_PIP_INDEX_URL",
            metavar="URL",
            help="Python package index used inside the image. [env: RASA_GPU_PIP_INDEX_URL]",
        ),
        click.option(
            "--ca-cert",
            "ca_certs",
            multiple=True,
            envvar="RASA_GPU_CA_CERT",
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help="Extra CA certificate (PEM) trusted inside the image, for TLS-intercepting networks. "
            "Repeatable. [env: RASA_GPU_CA_CERT, space-separated]",
        ),
    ]
    building = [
        click.option(
            "--registry",
            envvar="RASA_GPU_REGISTRY",
            metavar="HOST[:PORT][/PATH]",
            help="Registry of published images (`rasa-gpu push`): a missing image is pulled from there "
            "before it is built. Login: `docker login`. [env: RASA_GPU_REGISTRY]",
        ),
        click.option("--rebuild", is_flag=True, help="Build the image again even if it exists."),
    ]
    if builds:
        options += building
    for option in reversed(options):
        packed = option(packed)
    return packed


def _load(bot: str, image: ImageOptions, **cli_values: Any) -> tuple[BotProject, Settings, ImageSpec, str]:
    """The bot, its settings with the command line on top, and its image spec with the reason for its Rasa."""
    project = BotProject.load(bot)
    settings = load_settings(project.root).merged(**image.settings(), **cli_values)
    spec, why = _image_spec(project, settings, image.variant)
    return project, settings, spec, why


def _image_spec(project: BotProject, settings: Settings, variant: str) -> tuple[ImageSpec, str]:
    matrix = load_matrix()
    release, why = resolve_rasa(matrix, project.root, settings)
    default_base = release.gpu_base_image if variant == "gpu" else release.cpu_base_image
    spec = ImageSpec(
        release=release,
        base_image=settings.base_image or default_base,
        variant=variant,
        pip_index_url=settings.pip_index_url,
        ca_certs=read_ca_certs(settings.ca_certs),
        extra_requirements=tuple(extra_requirements(project.root)),
        registry=settings.registry,
        image_name=settings.image_name or DEFAULT_IMAGE_NAME,
    )
    return spec, why


def _actions_spec(project: BotProject, settings: Settings, spec: ImageSpec) -> ActionsImageSpec | None:
    if not services.has_actions(project):
        return None
    return ActionsImageSpec(
        release=spec.release,
        base_image=settings.actions_base_image or settings.base_image or default_actions_base(spec.release),
        requirements=services.actions_requirements(project),
        pip_index_url=spec.pip_index_url,
        ca_certs=spec.ca_certs,
    )


# ---- commands ------------------------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rasa-gpu")
def cli() -> None:
    """Train Rasa bots on an NVIDIA GPU in Docker: no CUDA, drivers or Python to set up on the host.

    \b
    Example:
      rasa-gpu train example_bot            # build the image once, train, model lands in models/
    """


@cli.command("train", context_settings={"ignore_unknown_options": True})
@click.argument("bot", default=".", type=click.Path(file_okay=True))
@click.argument("rasa_args", nargs=-1, type=click.UNPROCESSED)
@image_options
@click.option(
    "--gpu",
    type=click.Choice(GPU_MODES),
    help="auto: use GPUs when the engine has them (default); on: fail without a GPU; off: train on the CPU.",
)
@click.option("--gpus", metavar="IDS", help="GPU device ids to use, e.g. 0,1 (default: all).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COMPONENT.KEY=VALUE",
    help="Change a setting of config.yml for this training only, e.g. DIETClassifier.epochs=20. Repeatable.",
)
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Write TensorBoard logs (DIETClassifier, TEDPolicy, ResponseSelector) to .rasa-gpu/tensorboard; "
    "view them with `rasa-gpu up --profile tensorboard`.",
)
@click.option("--force", is_flag=True, help="Train even if nothing changed since the newest model.")
@click.option("--no-wait", is_flag=True, help="Fail instead of waiting when this bot is already training.")
@click.option("-v", "--verbose", is_flag=True, help="Show Rasa's raw output.")
def train_cmd(
    bot: str,
    rasa_args: Sequence[str],
    image: ImageOptions,
    gpu: str | None,
    gpus: str | None,
    overrides: Sequence[str],
    tensorboard: bool,
    force: bool,
    no_wait: bool,
    verbose: bool,
) -> None:
    """Train BOT (default: the current folder) in a container; the model lands in BOT/models/.

    Arguments after -- go to `rasa train`.

    \b
    Examples:
      rasa-gpu train example_bot
      rasa-gpu train example_bot --gpu off --set DIETClassifier.epochs=20
      rasa-gpu train . -- --augmentation 0
    """
    if bot.startswith("-"):  # `rasa-gpu train -- --flag`: everything was meant for rasa train
        rasa_args, bot = (bot, *rasa_args), "."
    project, settings, spec, why = _load(bot, image, gpu=gpu, gpus=gpus, set=overrides)
    override_lines = list(settings.set)
    if tensorboard:
        override_lines += services.tensorboard_overrides(project.config_data())
    options = TrainOptions(
        gpu=parse_gpu_request(settings.gpu, settings.gpus),
        overrides=parse_overrides(override_lines),
        rasa_args=list(rasa_args),
        force=force,
        wait=not no_wait,
        rebuild=image.rebuild,
    )
    err.print(
        f"[bold]rasa-gpu[/] training [cyan]{escape(str(project.root))}[/] with Rasa {spec.release.version} "
        f"({why}), TensorFlow {spec.release.tensorflow}"
    )
    with TrainView(verbose) as view:
        result = train(project, spec, options, view.handle)
    _print_summary(result)


@cli.command()
@click.argument("bot", default=".", type=click.Path())
@image_options
@click.option(
    "--gpu", type=click.Choice(GPU_MODES), help="GPUs for the Rasa server: auto (default), on, off."
)
@click.option("--gpus", metavar="IDS", help="GPU device ids for the Rasa server, e.g. 0,1 (default: all).")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Choice(services.PROFILES),
    help="Also start TensorBoard or a Jupyter notebook server. Repeatable.",
)
@click.option("--bind", metavar="ADDRESS", help="Address the ports are published on (default 127.0.0.1).")
@click.option("--rasa-port", type=int, help="Host port of the Rasa server (default 5005).")
@click.option("--actions-port", type=int, help="Host port of the action server (default 5055).")
@click.option("--tensorboard-port", type=int, help="Host port of TensorBoard (default 6006).")
@click.option("--jupyter-port", type=int, help="Host port of Jupyter (default 8888).")
@click.option(
    "--actions-base-image",
    metavar="IMAGE",
    envvar="RASA_GPU_ACTIONS_BASE_IMAGE",
    help="Base image of the action server (default: --base-image if given, else python:3.X-slim). "
    "[env: RASA_GPU_ACTIONS_BASE_IMAGE]",
)
@click.option(
    "--timeout", default=300, show_default=True, help="Seconds to wait for the services to become healthy."
)
@click.option("--regenerate", is_flag=True, help=f"Rewrite {services.COMPOSE_FILE} even if you edited it.")
def up(
    bot: str,
    image: ImageOptions,
    gpu: str | None,
    gpus: str | None,
    profiles: tuple[str, ...],
    bind: str | None,
    rasa_port: int | None,
    actions_port: int | None,
    tensorboard_port: int | None,
    jupyter_port: int | None,
    actions_base_image: str | None,
    timeout: int,
    regenerate: bool,
) -> None:
    """Start BOT's action server and a Rasa server with its newest model (docker compose), and wait until they
    are healthy. The compose file is kept in BOT/rasa-gpu.compose.yml.

    \b
    Examples:
      rasa-gpu up example_bot
      rasa-gpu up example_bot --profile tensorboard --rasa-port 5006
    """
    project, settings, spec, _ = _load(
        bot,
        image,
        gpu=gpu,
        gpus=gpus,
        bind=bind,
        rasa_port=rasa_port,
        actions_port=actions_port,
        tensorboard_port=tensorboard_port,
        jupyter_port=jupyter_port,
        actions_base_image=actions_base_image,
    )
    engine, compose = Engine.connect(), Compose.find()
    options = services.UpOptions(
        gpu=parse_gpu_request(settings.gpu, settings.gpus),
        profiles=profiles,
        timeout=timeout,
        regenerate=regenerate,
        rebuild=image.rebuild,
    )
    with TrainView(verbose=False) as view:
        result = services.up(
            engine,
            compose,
            project,
            spec,
            _actions_spec(project, settings, spec),
            settings,
            options,
            view.handle,
        )
    plan = result.plan
    out.print(
        f"[bold green]Services of {escape(project.name)} are up[/] ({escape(str(result.compose_file))})"
    )
    for state in result.services:
        out.print(f"  {state.service:<12} {plan.url(state.service):<24} {state.health or state.status}")
    out.print(f"  model        {escape(project.relative(result.model))}")
    out.print(
        f"Talk to it:  curl -s {plan.url('rasa')}/webhooks/rest/webhook -d "
        '\'{"sender": "me", "message": "hi"}\'',
        markup=False,
    )
    out.print(f"HTTP API token: RASA_AUTH_TOKEN in {escape(str(project.root / services.ENV_FILE))}")


@cli.command()
@click.argument("bot", default=".", type=click.Path())
def down(bot: str) -> None:
    """Stop and remove BOT's services (every profile included).

    \b
    Example:
      rasa-gpu down example_bot
    """
    project = BotProject.load(bot)
    removed = services.down(Engine.connect(), Compose.find(), project)
    out.print(f"stopped and removed {removed} container(s) of {project.name}", markup=False)


@cli.command()
@click.argument("bot", default=".", type=click.Path())
def ps(bot: str) -> None:
    """List BOT's services with their state, health and ports.

    \b
    Example:
      rasa-gpu ps example_bot
    """
    project = BotProject.load(bot)
    states = Engine.connect().project_containers(services.project_name(project))
    if not states:
        out.print(f"no services of {project.name} are running; start them with `rasa-gpu up`", markup=False)
        return
    table = Table("service", "status", "health", "ports", "container", box=None, padding=(0, 2))
    for state in states:
        ports = ", ".join(f"{host}->{inner}" for inner, host in state.ports.items())
        table.add_row(state.service, state.status, state.health or "-", ports or "-", state.container)
    out.print(table)


@cli.command()
@click.argument("bot", default=".", type=click.Path())
@click.argument("service_names", nargs=-1, metavar="[SERVICE]...")
@click.option("-f", "--follow", is_flag=True, help="Keep following new lines (Ctrl+C stops).")
@click.option("--tail", default="100", show_default=True, help="Lines to show from the end of each log.")
def logs(bot: str, service_names: tuple[str, ...], follow: bool, tail: str) -> None:
    """Show the logs of BOT's services (all, or the ones named).

    \b
    Examples:
      rasa-gpu logs example_bot
      rasa-gpu logs example_bot rasa -f
    """
    project = BotProject.load(bot)
    Engine.connect()
    args = ["logs", "--tail", tail, *(["-f"] if follow else []), *service_names]
    Compose.find().run(
        services.project_name(project),
        services.compose_files(project),
        args,
        profiles=services.PROFILES,
        stream=True,
    )


@cli.command()
@click.argument("bot", default=".", type=click.Path())
@click.argument("service_names", nargs=-1, metavar="[SERVICE]...")
@click.option(
    "--timeout", default=300, show_default=True, help="Seconds to wait until they are healthy again."
)
def restart(bot: str, service_names: tuple[str, ...], timeout: int) -> None:
    """Restart BOT's running services (all, or the ones named) and wait until they are healthy, e.g. after an
    edit under actions/.

    \b
    Example:
      rasa-gpu restart example_bot actions
    """
    project = BotProject.load(bot)
    with TrainView(verbose=False) as view:
        states = services.restart(
            Engine.connect(), Compose.find(), project, list(service_names), timeout, view.handle
        )
    out.print(f"restarted {', '.join(s.service for s in states)}", markup=False)


@cli.command()
@click.argument("bot", default=".", type=click.Path())
@image_options
@click.option(
    "--print", "print_only", is_flag=True, help="Print the rendered Dockerfile and tag; build nothing."
)
def build(
    bot: str,
    image: ImageOptions,
    print_only: bool,
) -> None:
    """Build (or find) the training image for BOT.

    \b
    Examples:
      rasa-gpu build example_bot
      rasa-gpu build example_bot --print
      rasa-gpu build . --base-image rasa-gpu/base:bullseye --ca-cert corp-root.pem
    """
    _, _, spec, why = _load(bot, image)
    if print_only:
        click.echo(f"# image: {spec.tag()}  (Rasa {spec.release.version}, {why})")
        click.echo(spec.dockerfile(), nl=False)
        return
    started = time.monotonic()
    result = ensure_image(
        Engine.connect(), spec, lambda line: err.print(verbatim(line)), rebuild=image.rebuild
    )
    if result.pulled_from:
        verb = f"pulled from the registry as {result.pulled_from} (nothing built)"
    else:
        verb = "built" if result.built else "found (cached, nothing built)"
    click.echo(f"{result.tag} {verb} in {time.monotonic() - started:.2f} s")


@cli.command("base-image")
@click.option(
    "--suite",
    type=click.Choice(sorted(SUITE_PYTHON)),
    default=DEFAULT_SUITE,
    show_default=True,
    help="Debian release: bullseye has Python 3.9 (Rasa 3.1 and later), buster Python 3.7 (Rasa 2.x, 3.0).",
)
@click.option(
    "--name", help=f"Name:tag of the image to create (default: {default_name('<suite>')}, one per suite)."
)
@click.option(
    "--mirror",
    metavar="URL",
    help=f"Debian mirror (default: debootstrap's; for buster {default_mirror('buster')}, as it left deb.debian.org).",
)
@click.option(
    "--if-needed",
    is_flag=True,
    help="Do nothing if the image exists or the default GPU base image can be pulled.",
)
def base_image_cmd(suite: str, name: str | None, mirror: str | None, if_needed: bool) -> None:
    """Build a Python base image from a Debian mirror (debootstrap + docker import), for hosts where no container
    registry answers. Use it with --base-image or `base_image` in rasa-gpu.toml.

    \b
    Examples:
      sudo rasa-gpu base-image && rasa-gpu train example_bot --base-image rasa-gpu/base:bullseye
      sudo rasa-gpu base-image --suite buster    # rasa-gpu/base:buster, Python 3.7, for Rasa 2.x
    """
    name = name or default_name(suite)
    engine = Engine.connect()
    if if_needed:
        default = load_matrix().get(load_matrix().default).gpu_base_image
        if engine.image_id(name) is not None:
            out.print(f"{name} exists; nothing to do", markup=False)
            return
        if engine.image_id(default) is not None or engine.can_pull(default):
            out.print(f"{default} is available; no registry-less base needed", markup=False)
            return
    started = time.monotonic()
    build_base_image(engine, lambda line: err.print(verbatim(line)), suite=suite, name=name, mirror=mirror)
    out.print(
        f"{name} built in {time.monotonic() - started:.0f} s; use it with --base-image {name}", markup=False
    )


@cli.command()
@click.argument("bot", default=".", type=click.Path())
@image_options
@click.option("--gpu", type=click.Choice(GPU_MODES), help="As for train: auto (default), on, off.")
@click.option("--gpus", metavar="IDS", help="GPU device ids to train on, e.g. 0,1 (default: all).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COMPONENT.KEY=VALUE",
    help="Change a setting of config.yml for these trainings only. Repeatable.",
)
@click.option(
    "--quiet-period",
    default=watch_mod.QUIET_SECONDS,
    show_default=True,
    help="Seconds without further changes before a batch of changes is acted on.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show Rasa's raw output.")
def watch(
    bot: str,
    image: ImageOptions,
    gpu: str | None,
    gpus: str | None,
    overrides: Sequence[str],
    quiet_period: float,
    verbose: bool,
) -> None:
    """Retrain BOT when its data, domain or config change, and load each new model into the running Rasa server
    (`rasa-gpu up`) without restarting it; restart the action server when actions/ changes. Ctrl+C stops.

    \b
    Examples:
      rasa-gpu watch example_bot
      rasa-gpu watch example_bot --set DIETClassifier.epochs=20
    """
    project, settings, spec, why = _load(bot, image, gpu=gpu, gpus=gpus, set=overrides)
    options = watch_mod.WatchOptions(
        train=TrainOptions(
            gpu=parse_gpu_request(settings.gpu, settings.gpus),
            overrides=parse_overrides(list(settings.set)),
            rebuild=image.rebuild,
        ),
        quiet=quiet_period,
    )
    err.print(
        f"rasa-gpu watch: {escape(str(project.root))} with Rasa {spec.release.version} ({why}); data, domain, "
        "config → retrain; actions/ → restart the action server. Ctrl+C stops.",
        markup=False,
    )
    view = WatchView(verbose)
    try:
        watch_mod.watch(project, spec, options, view.handle)
    except KeyboardInterrupt as exc:
        view.close()
        what = exc.message if isinstance(exc, Interrupted) else "no training was running"
        err.print(f"interrupted: rasa-gpu watch stopped; {what}", markup=False)
        sys.exit(Interrupted.exit_code)


@cli.command("benchmark")
@click.argument("bot", default=".", type=click.Path())
@image_options
@click.option(
    "--repeat",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    envvar="RASA_GPU_BENCHMARK_REPEAT",
    help="Measured runs per device. [env: RASA_GPU_BENCHMARK_REPEAT]",
)
@click.option(
    "--warmup/--no-warmup",
    default=True,
    show_default=True,
    envvar="RASA_GPU_BENCHMARK_WARMUP",
    help="One uncounted run per device first. [env: RASA_GPU_BENCHMARK_WARMUP]",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COMPONENT.KEY=VALUE",
    help="Change config.yml for these runs (stated in the report), e.g. DIETClassifier.epochs=5. Repeatable.",
)
@click.option("--gpus", metavar="IDS", help="GPU device ids for the GPU runs, e.g. 0 (default: all).")
@click.option("--cpus", type=float, help="Limit each run to this many CPUs, to mimic an instance (e.g. 2).")
@click.option("--memory", metavar="SIZE", help="Limit each run's memory, e.g. 8g.")
@click.option(
    "--cpu-price", type=float, default=0.186, show_default=True, help="CPU instance price, $ per hour."
)
@click.option(
    "--gpu-price", type=float, default=0.526, show_default=True, help="GPU instance price, $ per hour."
)
@click.option(
    "--cpu-instance", default="z1d.large", show_default=True, help="Name of the CPU instance priced."
)
@click.option(
    "--gpu-instance", default="g4dn.xlarge", show_default=True, help="Name of the GPU instance priced."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Folder for report.md/json and chart.png."
)
def benchmark_cmd(
    bot: str,
    image: ImageOptions,
    repeat: int,
    warmup: bool,
    overrides: Sequence[str],
    gpus: str | None,
    cpus: float | None,
    memory: str | None,
    cpu_price: float,
    gpu_price: float,
    cpu_instance: str,
    gpu_instance: str,
    as_json: bool,
    out_dir: str | None,
) -> None:
    """Train BOT on the CPU and on the GPU with the same image and a fresh Rasa cache per run; report medians per
    component and in total, the speedup and the cost per training. Without a GPU only the CPU is measured and the
    report says why. Models are thrown away: models/ is not touched.

    \b
    Examples:
      rasa-gpu benchmark example_bot
      rasa-gpu benchmark example_bot --repeat 1 --set DIETClassifier.epochs=5 --cpus 2 --json
    """
    project, settings, spec, why = _load(bot, image, gpus=gpus, set=overrides)
    gpu_request = parse_gpu_request("on", settings.gpus)  # the GPU runs use the GPUs train would use
    options = benchmark_mod.BenchmarkOptions(
        repeat=repeat,
        warmup=warmup,
        overrides=parse_overrides(list(settings.set)),
        gpus=gpu_request.device_ids,
        cpus=cpus,
        memory=memory,
        prices={
            "cpu": benchmark_mod.Price(cpu_instance, cpu_price),
            "gpu": benchmark_mod.Price(gpu_instance, gpu_price),
        },
    )
    err.print(
        f"rasa-gpu benchmark of {escape(str(project.root))}: Rasa {spec.release.version} ({why}), "
        f"{repeat} run(s) per device{' after a warm-up' if warmup else ''}"
    )
    engine = Engine.connect()
    with TrainView(verbose=False) as view:
        report = benchmark_mod.run_benchmark(engine, project, spec, options, view.handle)
    folder = benchmark_mod.write_report(engine, project, report, Path(out_dir) if out_dir else None)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_benchmark(report)
    err.print(f"report: {escape(str(folder / 'report.md'))} (+ report.json, chart.png)")


def _print_benchmark(report: benchmark_mod.BenchmarkReport) -> None:
    cpu, gpu = report.devices["cpu"], report.devices["gpu"]
    table = Table("", "CPU", "GPU", title="training time (s), measured in this run")
    table.add_row(
        "device",
        escape(cpu.device or "-"),
        escape(gpu.device) if gpu.available else "[yellow]not measured[/]",
    )
    for label, pick in (("median", "median"), ("min", "min"), ("max", "max")):
        table.add_row(label, *(f"{getattr(d.total(), pick):.1f}" if d.total() else "-" for d in (cpu, gpu)))
    table.add_row(
        "cost / training",
        *(
            f"${d.cost_per_training():.4f} ({d.price.instance})" if d.cost_per_training() is not None else "-"
            for d in (cpu, gpu)
        ),
    )
    names = list(cpu.components()) + [n for n in gpu.components() if n not in cpu.components()]
    for name in names:
        table.add_row(
            f"  {name}",
            *(f"{d.components()[name].median:.1f}" if name in d.components() else "-" for d in (cpu, gpu)),
        )
    out.print(table)
    speedup = report.speedup()
    if speedup:
        out.print(f"GPU speedup: {speedup:.2f}x")
    if not gpu.available:
        out.print(f"[yellow]GPU not measured:[/] {escape(gpu.reason or '')}")
    if report.overrides:
        out.print("with overrides: " + ", ".join(report.overrides), markup=False)


@cli.command()
@click.argument("bot", required=False, type=click.Path())
@image_options(builds=False)
@click.option(
    "--gpu",
    type=click.Choice(GPU_MODES),
    help="auto (default): GPU problems are warnings, as train falls back to the CPU; on: they are blocking "
    "failures; off: skip the GPU checks.",
)
@click.option(
    "--gpus", metavar="IDS", help="GPU device ids to check, e.g. 0,1 (default: settings, then all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
def doctor(bot: str | None, image: ImageOptions, gpu: str | None, gpus: str | None, as_json: bool) -> None:
    """Check that this machine and BOT (default: the current folder, if it is a bot) are ready: the Docker engine,
    compose, the NVIDIA runtime, a GPU smoke test in the training image, the driver against the CUDA the bot's
    TensorFlow needs, disk space, the inotify limit for watch, and the bot itself. Each check says ok, warn, fail
    or skip, with the fix. Exits 1 when a check that stops training fails.

    \b
    Examples:
      rasa-gpu doctor example_bot
      rasa-gpu doctor example_bot --gpu on --json
    """
    context, bot_check = _doctor_context(bot, image, gpu, gpus)
    checks: list[doctor_mod.Check] = []
    marks = {
        "ok": "[green]ok  [/]",
        "warn": "[yellow]warn[/]",
        "fail": "[bold red]FAIL[/]",
        "skip": "[dim]skip[/]",
    }
    for check in doctor_mod.run(context, bot_check):
        checks.append(check)
        if not as_json:
            out.print(f"{marks[check.status]}  [bold]{escape(check.name)}[/]: {escape(check.detail)}")
            if check.fix and check.status in ("warn", "fail"):
                out.print(f"      [dim]fix:[/] {escape(check.fix)}")
    blocking = doctor_mod.blocking_failures(checks)
    if as_json:
        click.echo(json.dumps({"ready": not blocking, "checks": [c.to_json() for c in checks]}, indent=2))
    if blocking:
        err.print(
            f"[bold red]error:[/] {len(blocking)} blocking problem(s): "
            + escape(", ".join(c.name for c in blocking))
            + "; fix them as shown and run doctor again"
        )
        sys.exit(1)
    if not as_json:
        warnings = sum(c.status in ("warn", "fail") for c in checks)
        out.print(f"ready to train{f' ({warnings} warning(s) above)' if warnings else ''}")


def _doctor_context(
    bot: str | None, image: ImageOptions, gpu: str | None, gpus: str | None
) -> tuple[doctor_mod.Context, doctor_mod.Check]:
    """The bot doctor looks at and the check of the bot itself. A broken bot is a failed check, not an error."""
    asked = parse_gpu_request(gpu, gpus)  # without a bot (or its settings): what the command line asked for
    try:
        project, settings, spec, why = _load(bot or ".", image, gpu=gpu, gpus=gpus)
    except ProjectError as exc:
        if bot is not None:
            return doctor_mod.Context(asked), doctor_mod.bot_failed(exc)
        matrix = load_matrix()
        release = matrix.get(matrix.default)
        return doctor_mod.Context(asked, release=release), doctor_mod.no_bot(str(Path.cwd()))
    except RasaGpuError as exc:
        return doctor_mod.Context(asked), doctor_mod.bot_failed(exc)
    context = doctor_mod.Context(parse_gpu_request(settings.gpu, settings.gpus), project, spec, spec.release)
    return context, doctor_mod.bot_ok(project, spec.release, why)


class _RunsGroup(click.Group):
    """`runs [BOT]` lists; `runs show ID [BOT]` and `runs compare A B [BOT]` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@cli.group("runs", cls=_RunsGroup)
def runs_cmd() -> None:
    """The run history of a bot: every training and benchmark run, kept in BOT/.rasa-gpu/history.sqlite.

    \b
    Examples:
      rasa-gpu runs example_bot                   # the newest 20 runs
      rasa-gpu runs example_bot --device gpu --since 7d --json
      rasa-gpu runs show last example_bot
      rasa-gpu runs compare 3 7 example_bot
    """


@runs_cmd.command("list")
@click.argument("bot", default=".", type=click.Path())
@click.option("--kind", type=click.Choice(history.KINDS), help="Only trainings or only benchmark runs.")
@click.option("--status", type=click.Choice(history.STATUSES), help="Only runs that ended this way.")
@click.option("--device", type=click.Choice(["gpu", "cpu"]), help="Only runs on the GPU or on the CPU.")
@click.option("--rasa-version", metavar="X.Y.Z", help="Only runs with this Rasa release.")
@click.option("--since", metavar="WHEN", help="Only runs started since: 30m, 12h, 7d, 2w, or a date (UTC).")
@click.option("-n", "--limit", type=click.IntRange(0), default=20, show_default=True, help="0: all.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON on stdout.")
def runs_list(
    bot: str,
    kind: str | None,
    status: str | None,
    device: str | None,
    rasa_version: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List BOT's runs, newest first.

    \b
    Example:
      rasa-gpu runs list example_bot --kind train --status ok
    """
    query = history.RunQuery(
        kind=kind,
        status=status,
        device=device,
        rasa_version=rasa_version,
        since=history.parse_since(since) if since else None,
        limit=limit or None,
    )
    no_runs: list[history.Run] = []
    found = _history_read(bot, lambda h: h.runs(query), when_missing=no_runs)
    if as_json:
        click.echo(json.dumps([run.to_json() for run in found], indent=2))
        return
    if not found:
        out.print(
            "no runs recorded yet" if query == history.RunQuery(limit=query.limit) else "no matching runs"
        )
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("id", "started (UTC)", "kind", "status", "device", "seconds", "rasa"):
        table.add_column(name, no_wrap=True)
    table.add_column("model / benchmark phase", no_wrap=True)
    for run in found:
        table.add_row(
            str(run.id),
            run.started_at.replace("T", " ")[:16],
            run.kind,
            _status_text(run.status),
            escape(_short_device(run.device)),
            f"{run.wall_seconds:.1f}" if run.wall_seconds is not None else "-",
            run.rasa_version or "-",
            escape(Path(run.model_path).name if run.model_path else run.phase or "-"),
        )
    out.print(table)


@runs_cmd.command("show")
@click.argument("run_id", metavar="ID")
@click.argument("bot", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON on stdout.")
def runs_show(run_id: str, bot: str, as_json: bool) -> None:
    """Show everything recorded about run ID (a number from `rasa-gpu runs`, or last).

    \b
    Example:
      rasa-gpu runs show last example_bot
    """
    run = _history_read(bot, lambda h: h.get(run_id))
    if as_json:
        click.echo(json.dumps(run.to_json(), indent=2))
        return
    table = Table(box=None, show_header=False, padding=(0, 2))
    for name, value in run.to_json().items():
        if name in ("components", "id") or value in (None, [], ""):
            continue
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        table.add_row(name.replace("_", " "), _status_text(shown) if name == "status" else escape(shown))
    out.print(f"[bold]run {run.id}[/]")
    out.print(table)
    if run.components:
        parts = Table("component", "seconds", box=None, padding=(0, 2))
        for name, seconds in run.components.items():
            parts.add_row(name, f"{seconds:.1f}")
        out.print(parts)


@runs_cmd.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.argument("bot", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
def runs_compare(a: str, b: str, bot: str, as_json: bool) -> None:
    """Compare runs A and B: what differed between them, and their times side by side (A/B > 1: B was faster).

    \b
    Example:
      rasa-gpu runs compare 3 last example_bot
    """
    run_a, run_b = _history_read(bot, lambda h: (h.get(a), h.get(b)))
    comparison = history.compare(run_a, run_b)
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=2))
        return
    times = Table("seconds", f"run {run_a.id}", f"run {run_b.id}", f"{run_a.id}/{run_b.id}")
    for row in comparison.times:
        times.add_row(
            row.name,
            f"{row.a:.1f}" if row.a is not None else "-",
            f"{row.b:.1f}" if row.b is not None else "-",
            f"{row.ratio:.2f}x" if row.ratio is not None else "-",
        )
    out.print(times)
    if comparison.differences:
        diff = Table("differs", f"run {run_a.id}", f"run {run_b.id}")
        for name, va, vb in comparison.differences:
            diff.add_row(name.replace("_", " "), escape(_value_text(va)), escape(_value_text(vb)))
        out.print(diff)
    out.print("same: " + ", ".join(n.replace("_", " ") for n in comparison.same), markup=False)


def _history_read(bot: str, read: Callable[[history.History], T], when_missing: T | None = None) -> T:
    """Open BOT's history (migrating an older schema) and read from it. Without one yet: `when_missing`, or an
    error that says how the first run gets recorded."""
    project = BotProject.load(bot)
    store = history.History.of(project)
    if not store.path.exists():
        if when_missing is not None:
            return when_missing
        raise history.HistoryError(
            f"no runs recorded for {project.root} yet; `rasa-gpu train {bot}` records the first one"
        )
    with store:
        return read(store)


def _status_text(status: str) -> str:
    colour = {"ok": "green", "failed": "red", "error": "red", "interrupted": "yellow"}.get(status)
    return f"[{colour}]{status}[/]" if colour else status


def _short_device(device: str | None) -> str:
    if not device:
        return "-"
    kind, _, name = device.partition(": ")
    return kind if kind == "CPU" else f"{kind} {name[:20]}"


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return "-" if value is None else str(value)


@cli.command("vscode")
@click.argument("bot", default=".", type=click.Path())
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    help="The folder opened in VS Code (default: BOT); its .vscode/tasks.json is written.",
)
@click.option(
    "--command",
    "command",
    default="rasa-gpu",
    show_default=True,
    help="How the tasks start rasa-gpu: a name on PATH or a full path (e.g. .venv/bin/rasa-gpu).",
)
def vscode_cmd(bot: str, workspace: str | None, command: str) -> None:
    """Write VS Code tasks for BOT into .vscode/tasks.json: Train bot (GPU) as the default build task, Train bot
    (CPU), Start/Stop services, Watch and retrain, Benchmark CPU vs GPU. An existing tasks.json is merged: your
    tasks and comments stay, rasa-gpu's tasks are updated in place.

    \b
    Examples:
      rasa-gpu vscode example_bot
      rasa-gpu vscode example_bot --workspace . --command .venv/bin/rasa-gpu
    """
    project = BotProject.load(bot)
    root = Path(workspace).resolve() if workspace else project.root
    if not root.is_dir():
        raise SettingsError(f"--workspace {workspace}: no such folder")
    try:
        relative = project.root.relative_to(root).as_posix() or "."
    except ValueError:
        raise SettingsError(
            f"the bot folder {project.root} is outside the workspace {root}; open a folder that contains it"
        ) from None
    path, status = vscode.write_tasks(root, vscode.TaskTemplate(bot=relative, command=command))
    extra = " (the previous version is in tasks.json.bak)" if status == "updated" else ""
    out.print(f"{path}: {status}{extra}", markup=False)


@cli.command()
@click.argument("bot", default=".", type=click.Path())
@image_options
@click.option(
    "--name",
    "image_name",
    envvar="RASA_GPU_IMAGE_NAME",
    metavar="NAME",
    help=f"Repository name under the registry (default: image_name setting, else {DEFAULT_IMAGE_NAME}). "
    "[env: RASA_GPU_IMAGE_NAME]",
)
@click.option("--json", "as_json", is_flag=True, help="Print ref, digest, image id and size as JSON.")
def push(bot: str, image: ImageOptions, image_name: str | None, as_json: bool) -> None:
    """Push BOT's training image (built first if missing) to a registry as
    REGISTRY/NAME:<rasa>-tf<tf>-<gpu|cpu>-<hash>, so that teammates and CI pull it with `--registry` instead of
    building. Uses the login of `docker login REGISTRY`. Prints "REF DIGEST" on stdout.

    \b
    Examples:
      rasa-gpu push example_bot --registry localhost:5000
      rasa-gpu push example_bot --registry registry.example.com/team --name support-bot
      rasa-gpu build example_bot --registry registry.example.com/team   # elsewhere: pulls, builds nothing
    """
    _, settings, spec, why = _load(bot, image, image_name=image_name)
    if not settings.registry:
        raise SettingsError(
            "push needs a registry: --registry HOST[:PORT][/PATH] or registry = ... in rasa-gpu.toml"
        )
    err.print(
        f"rasa-gpu push: {escape(spec.tag())} (Rasa {spec.release.version}, {why}) to {escape(settings.registry)}"
    )
    started = time.monotonic()
    result = push_image(
        Engine.connect(),
        spec,
        settings.registry,
        settings.image_name or DEFAULT_IMAGE_NAME,
        lambda line: err.print(verbatim(line)),
        rebuild=image.rebuild,
    )
    seconds = time.monotonic() - started
    err.print(
        f"pushed the {result.size / 1e9:.2f} GB image in {seconds:.1f} s; elsewhere, "
        f"`rasa-gpu build {bot} --registry {settings.registry}` pulls it instead of building",
        markup=False,
    )
    if as_json:
        click.echo(json.dumps({**result.to_json(), "seconds": round(seconds, 2)}, indent=2))
    else:
        click.echo(f"{result.ref} {result.digest}")


@cli.command()
def versions() -> None:
    """List the supported Rasa releases with their TensorFlow, CUDA and base image.

    \b
    Example:
      rasa-gpu versions
    """
    matrix = load_matrix()
    table = Table("Rasa", "TensorFlow", "Python", "CUDA", "cuDNN", "min. driver", "GPU base image")
    for version in matrix.versions():
        r = matrix.releases[str(version)]
        table.add_row(r.version, r.tensorflow, r.python, r.cuda, r.cudnn, r.min_driver, r.gpu_base_image)
    out.print(table)


# ---- training view -------------------------------------------------------------------------------------------------


class TrainView:
    """Live view of a training: one bar per training component with epoch and metrics, instead of tqdm noise."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.bars = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=err,
            transient=True,
        )
        self.task: Any | None = None
        self.started: dict[str, float] = {}

    def __enter__(self) -> TrainView:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def handle(self, event: Any) -> None:
        if isinstance(event, Notice):
            style = "bold yellow" if event.level == "warn" else "cyan"
            label = "warning: " if event.level == "warn" else ""
            self.bars.console.print(f"[{style}]{label}{escape(event.text)}[/]")
        elif isinstance(event, BuildOutput):
            self.bars.console.print(verbatim(event.text))
        elif isinstance(event, TrainingStarted):
            where = "on the CPU" if event.gpu == "none" else f"with {event.gpu}"
            self.bars.console.print(f"training in {escape(event.image)} {where}")
        elif isinstance(event, progress.ComponentStarted):
            self.started[event.name] = time.monotonic()
            self.bars.console.print(f"  [bold]▶[/] {event.name}")
        elif isinstance(event, progress.ComponentFinished):
            self._drop_bar()
            took = time.monotonic() - self.started.pop(event.name, time.monotonic())
            self.bars.console.print(f"  [green]✓[/] {event.name} [dim]{took:.1f} s[/]")
        elif isinstance(event, progress.ComponentRestored):
            self.bars.console.print(f"  [green]↺[/] {event.name} [dim]restored from cache[/]")
        elif isinstance(event, progress.EpochProgress):
            metrics = " ".join(f"{k}={v:g}" for k, v in event.metrics.items())
            if self.task is None:
                self.task = self.bars.add_task(
                    f"{event.component or 'training'} epochs", total=event.total, metrics=metrics
                )
            self.bars.update(self.task, completed=event.epoch, total=event.total, metrics=metrics)
        elif isinstance(event, progress.LogLine) and self.verbose:
            self.bars.console.print(verbatim(event.text))

    def _drop_bar(self) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None


class WatchView:
    """What watch shows: one line per cycle (the VS Code task's begin/end patterns match them), trainings as in
    train, and errors in the `error: file:line:col: message` form of the problem matcher."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.training: TrainView | None = None

    def close(self) -> None:
        if self.training is not None:
            self.training.__exit__()
            self.training = None

    def handle(self, event: Any) -> None:
        if isinstance(event, watch_mod.Watching):
            self.close()
            err.print("rasa-gpu watch: watching for changes", markup=False)
        elif isinstance(event, watch_mod.Changed):
            what = " and ".join(
                part
                for part, on in (("retraining", event.train), ("restarting the action server", event.actions))
                if on
            )
            shown = ", ".join(event.paths[:3]) + (
                f" (+{len(event.paths) - 3} more)" if len(event.paths) > 3 else ""
            )
            err.print(f"rasa-gpu watch: change in {shown}: {what}", markup=False)
        elif isinstance(event, watch_mod.Invalid):
            err.print(f"error: {event.error.message}", markup=False)
            err.print(
                "rasa-gpu watch: not training until this is fixed; the previous model keeps serving",
                markup=False,
            )
        elif isinstance(event, watch_mod.TrainFailed):
            self.close()
            err.print(f"error: {event.error.message}", markup=False)
            for line in event.error.details[-10:]:
                err.print(Text("  │ ") + verbatim(line, style=""))
            err.print("rasa-gpu watch: training failed; the previous model keeps serving", markup=False)
        elif isinstance(event, watch_mod.Trained):
            self.close()
            result = event.result
            if result.skipped:
                err.print(f"rasa-gpu watch: model is up to date ({result.model.name})", markup=False)
            else:
                err.print(
                    f"rasa-gpu watch: model ready {result.model.name} ({result.wall_seconds:.1f} s)",
                    markup=False,
                )
            if event.loaded_into:
                err.print(
                    f"rasa-gpu watch: the Rasa server at {event.loaded_into} serves {result.model.name}",
                    markup=False,
                )
        elif isinstance(event, watch_mod.ActionsRestarted):
            err.print("rasa-gpu watch: action server restarted", markup=False)
        else:
            if self.training is None:
                self.training = TrainView(self.verbose).__enter__()
            self.training.handle(event)


def _print_summary(result: TrainResult) -> None:
    size_mb = result.size / 1_000_000
    if result.skipped:
        out.print(
            f"Nothing changed since the newest model; not training (use --force to train anyway).\n"
            f"model: {result.model} ({size_mb:.1f} MB, trained on {result.device})",
            markup=False,
        )
        return
    out.print(f"[bold green]Model ready:[/] {escape(str(result.model))} ({size_mb:.1f} MB)")
    out.print(
        f"wall time {result.wall_seconds:.1f} s · device {escape(result.device)} · Rasa {result.rasa_version}"
        + (f" · run {result.run_id} (`rasa-gpu runs show {result.run_id}`)" if result.run_id else "")
    )
    if result.components or result.restored:
        table = Table("component", "seconds", box=None, padding=(0, 2))
        for name, seconds in result.components.items():
            table.add_row(name, f"{seconds:.1f}")
        for name in result.restored:
            table.add_row(name, "cached")
        out.print(table)


# ---- entry point ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: expected errors become one line and an exit code, never a traceback."""
    signals.install()  # again: main() is also called on its own (tests, python -m rasa_gpu.cli)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="rasa-gpu", standalone_mode=False)
    except RasaGpuError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}")
        for line in exc.details:
            err.print(Text("  │ ", style="dim") + verbatim(line, style=""))
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort) as exc:
        # Interrupted says what the command did about it; a bare KeyboardInterrupt came before anything was started
        # or from a command that has nothing to undo.
        cause = exc.__cause__ if isinstance(exc, click.Abort) else exc  # click wraps Ctrl+C in Abort
        message = cause.message if isinstance(cause, Interrupted) else "stopped before finishing"
        err.print(f"[bold red]interrupted:[/] {escape(message)}")
        sys.exit(Interrupted.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except Exception as exc:  # a bug in rasa-gpu: one line, and the traceback only on request
        if os.environ.get("RASA_GPU_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(set RASA_GPU_DEBUG=1 for the traceback and report it)"
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
