"""The services of a bot, with docker compose: `rasa-gpu up`, `down`, `ps`, `logs` and `restart`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import (
    Deferred,
    DeferredHelp,
    ImageOptions,
    LazyChoice,
    bot_argument,
    follow_option,
    gpu_option,
    gpus_option,
    image_options,
    load,
    show_notice,
    timeout_option,
    verbose_option,
)

if TYPE_CHECKING:
    from ..engine import Engine
    from ..project import BotProject


@click.command()
@bot_argument
@image_options
@gpu_option
@gpus_option
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=LazyChoice("rasa_gpu.services", "PROFILES"),
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
@timeout_option
@click.option(
    "--regenerate",
    is_flag=True,
    cls=DeferredHelp,
    help="Rewrite {} even if you edited it.",
    help_values=(Deferred("rasa_gpu.services", "COMPOSE_FILE"),),
)
@verbose_option
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
    verbose: bool,
) -> None:
    """Start BOT's action server and a Rasa server with its newest model (docker compose), and wait until they
    are healthy. The compose file is kept in BOT/rasa-gpu.compose.yml.

    \b
    Examples:
      rasa-gpu up example_bot
      rasa-gpu up example_bot --profile tensorboard --rasa-port 5006
    """
    from rich.markup import escape

    from .. import services
    from ..engine import Compose
    from ..settings import Settings
    from ._common import out
    from .views import TrainView

    given = Settings(
        gpu=gpu,
        gpus=gpus,
        bind=bind,
        rasa_port=rasa_port,
        actions_port=actions_port,
        tensorboard_port=tensorboard_port,
        jupyter_port=jupyter_port,
        actions_base_image=actions_base_image,
    )
    resolved = load(bot, image, given)
    project, settings, spec = resolved.project, resolved.settings, resolved.spec
    runner, compose = resolved.runner(show_notice), Compose.find()
    options = services.UpOptions(
        gpu=settings.gpu_request(),
        profiles=profiles,
        timeout=timeout,
        regenerate=regenerate,
        rebuild=image.rebuild,
        license=resolved.license(),
    )
    with TrainView(verbose) as view:
        result = services.up(
            runner,
            compose,
            project,
            spec,
            resolved.actions_spec(),
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


@click.command()
@bot_argument
def down(bot: str) -> None:
    """Stop and remove BOT's services (every profile included).

    \b
    Example:
      rasa-gpu down example_bot
    """
    from .. import services
    from ..engine import Compose
    from ..project import BotProject
    from ._common import out

    project = BotProject.load(bot)
    removed = services.down(_engine_here(project), Compose.find(), project)
    out.print(f"stopped and removed {removed} container(s) of {project.name}", markup=False)


@click.command()
@bot_argument
def ps(bot: str) -> None:
    """List BOT's services with their state, health and ports.

    \b
    Example:
      rasa-gpu ps example_bot
    """
    from rich.table import Table

    from .. import services
    from ..project import BotProject
    from ._common import out

    project = BotProject.load(bot)
    states = _engine_here(project).project_containers(services.project_name(project))
    if not states:
        out.print(f"no services of {project.name} are running; start them with `rasa-gpu up`", markup=False)
        return
    table = Table("service", "status", "health", "ports", "container", box=None, padding=(0, 2))
    for state in states:
        ports = ", ".join(f"{host}->{inner}" for inner, host in state.ports.items())
        table.add_row(state.service, state.status, state.health or "-", ports or "-", state.container)
    out.print(table)


@click.command()
@bot_argument
@click.argument("service_names", nargs=-1, metavar="[SERVICE]...")
@follow_option
@click.option("--tail", default="100", show_default=True, help="Lines to show from the end of each log.")
def logs(bot: str, service_names: tuple[str, ...], follow: bool, tail: str) -> None:
    """Show the logs of BOT's services (all, or the ones named).

    \b
    Examples:
      rasa-gpu logs example_bot
      rasa-gpu logs example_bot rasa -f
    """
    from .. import services
    from ..engine import Compose
    from ..project import BotProject

    project = BotProject.load(bot)
    _engine_here(project)
    args = ["logs", "--tail", tail, *(["-f"] if follow else []), *service_names]
    Compose.find().run(
        services.project_name(project),
        services.compose_files(project),
        args,
        profiles=services.PROFILES,
        stream=True,
    )


@click.command()
@bot_argument
@click.argument("service_names", nargs=-1, metavar="[SERVICE]...")
@timeout_option
def restart(bot: str, service_names: tuple[str, ...], timeout: int) -> None:
    """Restart BOT's running services (all, or the ones named) and wait until they are healthy, e.g. after an
    edit under actions/.

    \b
    Example:
      rasa-gpu restart example_bot actions
    """
    from .. import services
    from ..engine import Compose
    from ..project import BotProject
    from ._common import out
    from .views import TrainView

    project = BotProject.load(bot)
    with TrainView(verbose=False) as view:
        states = services.restart(
            _engine_here(project), Compose.find(), project, list(service_names), timeout, view.handle
        )
    out.print(f"restarted {', '.join(s.service for s in states)}", markup=False)


def _engine_here(project: BotProject) -> Engine:
    """The engine the bot's services run on: this machine's (an engine elsewhere is one clear line)."""
    from .. import services
    from ..runners import connect
    from ..settings import load_settings

    return services.require_local(connect(load_settings(project.root).where(), show_notice))
