"""The command line: the only place that prints, prompts or picks an exit code."""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__, progress
from .base_image import DEFAULT_NAME as DEFAULT_BASE_NAME
from .base_image import SUITE_PYTHON, build_base_image
from .compat import load_matrix
from .engine import Engine
from .errors import Interrupted, RasaGpuError
from .gpu import parse_gpu_request
from .images import ImageSpec, ensure_image, read_ca_certs
from .overrides import parse_overrides
from .project import BotProject
from .settings import GPU_MODES, Settings, extra_requirements, load_settings, resolve_rasa
from .train import BuildOutput, Notice, TrainingStarted, TrainOptions, TrainResult, train

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# ---- shared options ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageOptions:
    """The image options shared by build and train, as given on the command line (None: not given)."""

    rasa_version: str | None
    base_image: str | None
    variant: str
    pip_index_url: str | None
    ca_certs: tuple[str, ...]
    rebuild: bool

    def settings(self) -> dict[str, Any]:
        return {
            "rasa_version": self.rasa_version,
            "base_image": self.base_image,
            "pip_index_url": self.pip_index_url,
            "ca_certs": self.ca_certs,
        }


def image_options(func: Any) -> Any:
    """Add the image options to a command; it receives them as one ImageOptions argument named `image`."""

    @functools.wraps(func)
    def packed(*args: Any, **kwargs: Any) -> Any:
        names = [f.name for f in fields(ImageOptions)]
        image = ImageOptions(**{name: kwargs.pop(name) for name in names})
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
        click.option("--rebuild", is_flag=True, help="Build the image again even if it exists."),
    ]
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
    )
    return spec, why


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
    options = TrainOptions(
        gpu=parse_gpu_request(settings.gpu, settings.gpus),
        overrides=parse_overrides(settings.set),
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
        Engine.connect(), spec, lambda line: err.print(f"[dim]{escape(line)}[/]"), rebuild=image.rebuild
    )
    verb = "built" if result.built else "found (cached, nothing built)"
    click.echo(f"{result.tag} {verb} in {time.monotonic() - started:.2f} s")


@cli.command("base-image")
@click.option(
    "--suite",
    type=click.Choice(sorted(SUITE_PYTHON)),
    default="bullseye",
    show_default=True,
    help="Debian release: bullseye has Python 3.9 (Rasa 3.x), buster Python 3.7 (Rasa 2.x).",
)
@click.option("--name", default=DEFAULT_BASE_NAME, show_default=True, help="Name:tag of the image to create.")
@click.option("--mirror", metavar="URL", help="Debian mirror (default: debootstrap's).")
@click.option(
    "--if-needed",
    is_flag=True,
    help="Do nothing if the image exists or the default GPU base image can be pulled.",
)
def base_image_cmd(suite: str, name: str, mirror: str | None, if_needed: bool) -> None:
    """Build a Python base image from a Debian mirror (debootstrap + docker import), for hosts where no container
    registry answers. Use it with --base-image or `base_image` in rasa-gpu.toml.

    \b
    Example:
      sudo rasa-gpu base-image && rasa-gpu train example_bot --base-image rasa-gpu/base:bullseye
    """
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
    build_base_image(
        engine, lambda line: err.print(f"[dim]{escape(line)}[/]"), suite=suite, name=name, mirror=mirror
    )
    out.print(
        f"{name} built in {time.monotonic() - started:.0f} s; use it with --base-image {name}", markup=False
    )


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
            self.bars.console.print(f"[dim]{escape(event.text)}[/]")
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
            self.bars.console.print(escape(event.text), style="dim")

    def _drop_bar(self) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None


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
    )
    if result.components or result.restored:
        table = Table("component", "seconds", box=None, padding=(0, 2))
        for name, seconds in result.components.items():
            table.add_row(name, f"{seconds:.1f}")
        for name in result.restored:
            table.add_row(name, "cached")
        out.print(table)


# ---- entry point ---------------------------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: expected errors become one line and an exit code, never a traceback."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="rasa-gpu", standalone_mode=False)
    except RasaGpuError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}")
        for line in exc.details:
            err.print(f"  [dim]│[/] {escape(line)}")
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        err.print(
            "[bold red]interrupted:[/] stopped and removed the training container; no model was written"
        )
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
