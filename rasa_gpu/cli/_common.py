"""What every command module shares: the two consoles, verbatim lines, the lazy option values, and every option that
more than one command takes, declared once here with one help text (a command only picks them), plus the grammar of
the commands that hand arguments to Rasa.

Nothing heavy is imported here: `rasa-gpu --help` loads every command module, and a command imports what it needs
(rich, docker-py, the core modules) inside its function. The consoles are made on first use.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from ..events import Event
    from ..resolve import Resolved
    from ..settings import Settings

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

    def settings(self, given: Settings | None = None) -> Settings:
        """The settings these options give, over `given` (what the command's other options give)."""
        from ..settings import Settings

        return replace(
            given or Settings(),
            host=self.host,
            context=self.context,
            rasa_version=self.rasa_version,
            base_image=self.base_image,
            cuda=self.cuda,
            pip_index_url=self.pip_index_url,
            ca_certs=list(self.ca_certs),
            registry=self.registry,
        )

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


def image_options(func: Callable[..., Any] | None = None, *, builds: bool = True) -> Callable[..., Any]:
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


#: BOT, the bot folder (default: the current folder).
bot_argument = click.argument("bot", default=".", type=click.Path())

gpu_option = click.option(
    "--gpu",
    type=GPU_MODES,
    help="auto: use the GPUs when the engine has them, else the CPU (default); on: fail without a GPU; off: use "
    "the CPU only.",
)
gpus_option = click.option(
    "--gpus",
    metavar="IDS",
    help="GPU device ids to use, e.g. 0,1 or a GPU-<uuid> (default: the gpus setting, then all).",
)
gpu_count_option = click.option(
    "--gpu-count",
    type=click.IntRange(0),
    metavar="N",
    help="How many GPUs the queued job asks for (default 1; 0: the CPU only). The queue picks the devices.",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="COMPONENT.KEY=VALUE",
    help="Change a setting of config.yml for this run only (a benchmark's report states it), e.g. "
    "DIETClassifier.epochs=20. Repeatable.",
)
force_option = click.option(
    "--force", is_flag=True, help="Train even if nothing changed since the newest model."
)
verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show the raw output of what runs: Rasa's, and an image build's (Docker, pip, uv, debootstrap).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be done and do nothing (train: the plan, exit 0 when there is nothing to train and 10 "
    "when it would train; submit: the sbatch script or the Kubernetes manifests).",
)
timeout_option = click.option(
    "--timeout", default=300, show_default=True, help="Seconds to wait until the services are healthy."
)
follow_option = click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new lines until it ends (Ctrl+C stops following)."
)
cpus_option = click.option(
    "--cpus",
    type=click.FloatRange(0, min_open=True),
    metavar="N",
    help="CPUs each training gets, e.g. 2 (benchmark: a limit per run, to mimic an instance; submit: the job's "
    "CPUs, a whole number).",
)
memory_option = click.option(
    "--memory",
    metavar="SIZE",
    help="Memory each training gets, e.g. 16G (benchmark: a limit per run; submit: the job's).",
)


def finetune_option(default: bool) -> Callable[[Any], Any]:
    """--finetune/--no-finetune, with the command's default (train: off; watch: on)."""
    return click.option(
        "--finetune/--no-finetune",
        default=default,
        show_default=True,
        help="Fine-tune the newest model (rasa train --finetune) when only training examples changed; any other "
        "change trains from scratch and says why.",
    )


class Renamed(click.Option):
    """An option's old spelling, kept working: hidden from the help, and a one-line notice names the new spelling
    when it is used. The command receives its value under the old name and prefers the new option's."""

    def __init__(self, param_decls: Any, *, renamed_to: str, why: str, **attrs: Any) -> None:
        super().__init__(param_decls, hidden=True, callback=self._notice, **attrs)
        self.renamed_to, self.why = renamed_to, why

    def _notice(self, ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            say(
                (
                    f"warning: {self.opts[0]} is now {self.renamed_to} ({self.why})",
                    {"fg": "yellow", "bold": True},
                )
            )
        return value


def renamed_option(old: str, new: str, why: str, **attrs: Any) -> Callable[[Any], Any]:
    """The old spelling `old` of the option `new` (see Renamed)."""
    return click.option(old, cls=Renamed, renamed_to=new, why=why, **attrs)


# ---- the grammar of commands that hand arguments to Rasa -------------------------------------------------------------


class PassesToRasa(click.Command):
    """`rasa-gpu CMD [OPTIONS] [BOT] [OPTIONS] [-- RASA_ARGS]`: a command whose callback gets `rasa_args`.

    What follows the first `--` is Rasa's, as written. Before it, an option of rasa-gpu is rasa-gpu's wherever it
    stands (before or after BOT), and the first word is BOT. Words after BOT and options that rasa-gpu does not have
    are Rasa's too, ahead of what follows `--`, so that `rasa-gpu rasa BOT data validate` and `rasa-gpu train BOT
    --augmentation 0` keep working; a Rasa option that rasa-gpu has too (--force, -v, ...) must follow `--`.
    `bot_or_word` (`rasa-gpu rasa`): a first word that is no bot folder (no config.yml in it, no / in its name) is
    Rasa's, and the bot is the current folder (`rasa-gpu rasa data validate` in a bot folder)."""

    def __init__(self, *args: Any, bot_or_word: bool = False, **kwargs: Any) -> None:
        kwargs["context_settings"] = {
            **(kwargs.get("context_settings") or {}),
            "ignore_unknown_options": True,
        }
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Argument(["rasa_args"], nargs=-1, type=click.UNPROCESSED, metavar="[-- RASA_ARGS...]")
        )
        self.bot_or_word = bot_or_word

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        rest = super().parse_args(ctx, args[:cut])
        words = list(ctx.params["rasa_args"])
        positional = [p for p in self.params if isinstance(p, click.Argument) and p.name != "rasa_args"]
        values = [ctx.params.get(p.name or "") for p in positional]
        # An option of Rasa's where a word of rasa-gpu's was expected: it and what follows it are Rasa's.
        first = next((i for i, v in enumerate(values) if isinstance(v, str) and v.startswith("-")), None)
        if first is not None:
            words = [v for v in values[first:] if v is not None] + words
            for param in positional[first:]:
                ctx.params[param.name or ""] = param.default if param.name == "bot" else None
        if self.bot_or_word:
            ctx.params["bot"], words = split_bot(ctx.params["bot"], words)
        ctx.params["rasa_args"] = (*words, *args[cut + 1 :])
        return rest


def split_bot(bot: str, args: Sequence[str]) -> tuple[str, list[str]]:
    """`rasa-gpu rasa [BOT] ARGS`: BOT is the bot when it names one (the current folder, a folder that holds
    config.yml, or a path: a / in it, which no Rasa command has); otherwise it is Rasa's first word and the bot is
    the current folder. ARGS is what follows BOT, all of it Rasa's (a `--` among it is dropped)."""
    rest = list(args)
    if "--" in rest:
        rest.remove("--")
    if bot == "--":
        return ".", rest
    if bot != "." and "/" not in bot and not (Path(bot) / "config.yml").is_file():
        return ".", [bot, *rest]
    return bot, rest


def load(bot: str, image: ImageOptions, given: Settings | None = None) -> Resolved:
    """The bot, its settings with the command line on top (the image options and `given`, the settings the command's
    other options give: None or empty where not given), and its image spec with the reason for its Rasa."""
    from ..events import Notice
    from ..resolve import resolve

    resolved = resolve(bot, image.settings(given), image.variant)
    for note in resolved.notes:
        show_notice(Notice(note, "warn"))
    return resolved
