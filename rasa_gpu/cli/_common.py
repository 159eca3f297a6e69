"""What every command module shares: the two consoles, verbatim lines, the image options and the lazy option values.

Nothing heavy is imported here: `rasa-gpu --help` loads every command module, and a command imports what it needs
(rich, docker-py, the core modules) inside its function. The consoles are made on first use.
"""

from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from ..events import Event
    from ..resolve import Resolved

    #: stdout: results. Made on first use (see __getattr__).
    out: Console
    #: stderr: progress, warnings and errors.
    err: Console


def __getattr__(name: str) -> Any:
    """`out` and `err`, made on first use: rich loads only when a command prints."""
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    # Piped output gets whole table rows rather than Rich's default of 80 columns.
    # emoji=False: Rasa's "io.py:100:" must not become an emoji. Rich drops colours itself when output is not a
    # terminal.
    if name == "out":
        console = Console(
            highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160
        )
    else:
        console = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)
    globals()[name] = console
    return console


def say(*parts: str | tuple[str, dict[str, Any]], err: bool = True) -> None:
    """One line made of plain text and (text, click.style arguments) pieces, without loading rich: for the lines of
    a command that must start fast (the first line of `train`, a no-change skip). Colours only on a terminal."""
    click.echo("".join(p if isinstance(p, str) else click.style(p[0], **p[1]) for p in parts), err=err)


def show_notice(event: Event) -> None:
    """An EventSink for what a command hears before its own view exists (runners.connect's warning about the way to
    the engine): a Notice as one line on stderr, without loading rich."""
    from ..events import Notice

    if isinstance(event, Notice) and event.level == "warn":
        say((f"warning: {event.text}", {"fg": "yellow", "bold": True}))
    elif isinstance(event, Notice):
        say(event.text)


def verbatim(line: str, style: str = "dim") -> Text:
    """A line that Rasa, pip or Docker printed, shown as it was: no markup or emoji codes, its colour codes
    turned into colours on a terminal and dropped elsewhere."""
    from rich.text import Text

    return Text.from_ansi(line, style=style)


# ---- option values that live in core modules -----------------------------------------------------------------------


class LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A click.Choice whose values are a constant of a core module, read when the option is shown or parsed: listing
    the commands (`rasa-gpu --help`) then loads no core module."""

    def __init__(self, module: str, name: str, *, sort: bool = False) -> None:
        # No super().__init__: it would read the choices now.
        self.case_sensitive = True
        self._source, self._sort = (module, name), sort

    def __getattr__(self, name: str) -> Any:
        if name != "choices":
            raise AttributeError(name)
        module, constant = self._source
        values = getattr(importlib.import_module(module), constant)
        self.choices = tuple(sorted(values) if self._sort else values)
        return self.choices


class Deferred:
    """A value from a core module, read when an option is shown (help) or parsed: a constant, or what a function
    of the module returns for `args`."""

    def __init__(self, module: str, name: str, *args: Any) -> None:
        self.module, self.name, self.args = module, name, args

    def __call__(self) -> Any:  # click calls a callable default when it needs the value
        value = getattr(importlib.import_module(self.module), self.name)
        return value(*self.args) if self.args else value

    def __str__(self) -> str:  # what `[default: ...]` shows
        return str(self())


class DeferredHelp(click.Option):
    """An option whose help names constants of core modules: `help` is a str.format template, filled in with the
    `help_values` when the help is shown."""

    def __init__(self, *args: Any, help_values: tuple[Deferred, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._template, self._values = self.help, help_values

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self._template is not None:
            self.help = self._template.format(*(value() for value in self._values))
        return super().get_help_record(ctx)


GPU_MODES = LazyChoice("rasa_gpu.settings", "GPU_MODES")


# ---- shared options ------------------------------------------------------------------------------------------------


#: The image options that may hold a login, and the variable each is also read from: a training elsewhere (a
#: Slurm job) gets them in its environment, so they are in no script and no command line.
SECRET_ENVVARS = {"pip_index_url": "RASA_GPU_PIP_INDEX_URL"}


@dataclass(frozen=True)
class ImageOptions:
    """The image options shared by build and train, as given on the command line (None: not given)."""

    rasa_version: str | None
    base_image: str | None
    variant: str
    cuda: str | None
    pip_index_url: str | None
    ca_certs: tuple[str, ...]
    registry: str | None
    rebuild: bool
    host: str | None
    context: str | None

    def settings(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "context": self.context,
            "rasa_version": self.rasa_version,
            "base_image": self.base_image,
            "cuda": self.cuda,
            "pip_index_url": self.pip_index_url,
            "ca_certs": self.ca_certs,
            "registry": self.registry,
        }

    def train_args(self) -> tuple[str, ...]:
        """The image options given here, as `rasa-gpu train` on another machine takes them (not --host/--context:
        that machine's engine is its own; not the ones that may hold a login: train_environment)."""
        args: list[str] = []
        for name in ("rasa_version", "base_image", "cuda", "registry"):
            value = getattr(self, name)
            if value:
                args += [f"--{name.replace('_', '-')}", str(value)]
        for cert in self.ca_certs:
            args += ["--ca-cert", cert]
        if self.variant and self.variant != "gpu":
            args += ["--variant", self.variant]
        if self.rebuild:
            args.append("--rebuild")
        return tuple(args)

    def train_environment(self) -> dict[str, str]:
        """The options given here that may hold a login (an index URL with user:password), as the environment
        variables `rasa-gpu train` on another machine reads them: for its environment, never its command line."""
        values = {name: getattr(self, name) for name in SECRET_ENVVARS}
        return {SECRET_ENVVARS[name]: str(value) for name, value in values.items() if value}


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
            "--cuda",
            type=LazyChoice("rasa_gpu.settings", "CUDA_SOURCES"),
            envvar="RASA_GPU_CUDA",
            help="Where the image's CUDA comes from: auto (default: the base image's when it is TensorFlow's GPU "
            "image, else NVIDIA's wheels from PyPI), base, wheels, or none (a CPU-only image). [env: RASA_GPU_CUDA]",
        ),
        click.option(
            "--pip-index-url",
            envvar=SECRET_ENVVARS["pip_index_url"],
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
    options += where_options()
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


def where_options() -> list[Any]:
    """--host and --context: the Docker engine that runs the containers (runners.Where)."""
    return [
        click.option(
            "--host",
            "-H",
            envvar="RASA_GPU_HOST",
            metavar="URL",
            help="Docker engine to run on: ssh://[user@]host[:port] (your own ssh config, keys and agent), "
            "tcp://host:port or unix:///path (default: `host` in rasa-gpu.toml, then DOCKER_HOST, then this "
            "machine's engine). [env: RASA_GPU_HOST]",
        ),
        click.option(
            "--context",
            metavar="NAME",
            help="Docker context whose engine to run on (see `docker context ls`).",
        ),
    ]


def load(bot: str, image: ImageOptions, **cli_values: Any) -> Resolved:
    """The bot, its settings with the command line on top, and its image spec with the reason for its Rasa."""
    from ..events import Notice
    from ..resolve import resolve

    resolved = resolve(bot, {**image.settings(), **cli_values}, image.variant)
    for note in resolved.notes:
        show_notice(Notice(note, "warn"))
    return resolved
