"""The training image: `rasa-gpu build` (build or find it), `push` (publish it) and `base-image` (a Python base image
from a Debian mirror, for hosts where no registry answers)."""

from __future__ import annotations

import time

import click

from ._common import (
    Deferred,
    DeferredHelp,
    ImageOptions,
    LazyChoice,
    bot_argument,
    image_options,
    json_option,
    load,
    renamed_option,
    show_notice,
    verbose_option,
)


@click.command()
@bot_argument
@image_options
@click.option(
    "--print", "print_only", is_flag=True, help="Print the rendered Dockerfile and tag; build nothing."
)
@verbose_option
def build(
    bot: str,
    image: ImageOptions,
    print_only: bool,
    verbose: bool,
) -> None:
    """Build (or find) the training image for BOT.

    \b
    Examples:
      rasa-gpu build example_bot
      rasa-gpu build example_bot --print
      rasa-gpu build . --base-image rasa-gpu/base:bullseye --ca-cert corp-root.pem
    """
    from .. import build_log
    from ..images import ensure_image
    from .views import BuildView

    resolved = load(bot, image)
    spec, why = resolved.spec, resolved.why
    if print_only:
        click.echo(f"# image: {spec.tag()}  (Rasa {spec.release.version}, {why})")
        click.echo(spec.dockerfile(), nl=False)
        return
    started = time.monotonic()
    # rich loads with the first line of a build: a cache hit prints none
    logs = build_log.of_bot(resolved.project)
    with (
        resolved.runner(show_notice) as runner,
        BuildView(verbose) as view,
        build_log.recording(logs, view.handle) as on_line,
    ):
        result = ensure_image(runner.engine, spec, on_line, rebuild=image.rebuild)
    if result.pulled_from:
        verb = f"pulled from the registry as {result.pulled_from} (nothing built)"
    else:
        verb = "built" if result.built else "found (cached, nothing built)"
    click.echo(f"{result.tag} {verb} in {time.monotonic() - started:.2f} s")


@click.command("base-image")
@click.option(
    "--suite",
    type=LazyChoice("rasa_gpu.base_image", "SUITE_PYTHON", sort=True),
    default=Deferred("rasa_gpu.base_image", "DEFAULT_SUITE"),
    show_default=True,
    help="Debian or Ubuntu release: bullseye has Python 3.9 (Rasa 3.1 and later), buster Python 3.7 (Rasa 2.x, "
    "3.0), bookworm Python 3.11 (the newest Rasa Pro), noble (Ubuntu 24.04) Python 3.12 (Rasa Pro 3.14-3.19).",
)
@click.option(
    "--tag",
    metavar="NAME:TAG",
    cls=DeferredHelp,
    help="Name and tag of the image to create (default: {}, one per suite).",
    help_values=(Deferred("rasa_gpu.base_image", "default_name", "<suite>"),),
)
@renamed_option("--name", "--tag", "--name names the repository that push publishes to")
@click.option(
    "--mirror",
    metavar="URL",
    cls=DeferredHelp,
    help="Debian or Ubuntu mirror (default: debootstrap's; for buster {}, as it left deb.debian.org; for noble "
    "Ubuntu's archive).",
    help_values=(Deferred("rasa_gpu.base_image", "default_mirror", "buster"),),
)
@click.option(
    "--if-needed",
    is_flag=True,
    help="Do nothing if the image exists or the default GPU base image can be pulled.",
)
@verbose_option
def base_image_cmd(
    suite: str, tag: str | None, name: str | None, mirror: str | None, if_needed: bool, verbose: bool
) -> None:
    """Build a Python base image from a Debian or Ubuntu mirror (debootstrap + docker import), for hosts where no
    container registry answers. Use it with --base-image or `base_image` in rasa-gpu.toml.

    \b
    Examples:
      sudo rasa-gpu base-image && rasa-gpu train example_bot --base-image rasa-gpu/base:bullseye
      sudo rasa-gpu base-image --suite buster    # rasa-gpu/base:buster, Python 3.7, for Rasa 2.x
      sudo rasa-gpu base-image --suite noble     # rasa-gpu/base:noble, Python 3.12, for Rasa Pro 3.14-3.19
    """
    from .. import build_log
    from ..base_image import build_base_image, default_name
    from ..build_progress import DebootstrapParser
    from ..compat import load_matrix
    from ..runners import Where, connect
    from ._common import out
    from .views import BuildView

    name = tag or name or default_name(suite)
    with connect(Where(), show_notice) as runner:  # DOCKER_HOST, DOCKER_CONTEXT or this machine's engine
        engine = runner.engine
        if if_needed:
            default = load_matrix().get(load_matrix().default).gpu_base_image
            if engine.image_id(name) is not None:
                out.print(f"{name} exists; nothing to do", markup=False)
                return
            if engine.image_id(default) is not None or engine.can_pull(default):
                out.print(f"{default} is available; no registry-less base needed", markup=False)
                return
        started = time.monotonic()
        logs = build_log.of_user()
        parser = DebootstrapParser()
        with (
            BuildView(verbose) as view,
            build_log.recording(logs, view.handle, parser, kind="base-image") as on_line,
        ):
            build_base_image(engine, on_line, suite=suite, name=name, mirror=mirror)
    out.print(
        f"{name} built in {time.monotonic() - started:.0f} s; use it with --base-image {name}", markup=False
    )


@click.command()
@bot_argument
@image_options
@click.option(
    "--name",
    "image_name",
    envvar="RASA_GPU_IMAGE_NAME",
    metavar="NAME",
    cls=DeferredHelp,
    help="Repository name under the registry (default: image_name setting, else {}). [env: RASA_GPU_IMAGE_NAME]",
    help_values=(Deferred("rasa_gpu.images", "DEFAULT_IMAGE_NAME"),),
)
@json_option
@verbose_option
def push(bot: str, image: ImageOptions, image_name: str | None, as_json: bool, verbose: bool) -> None:
    """Push BOT's training image (built first if missing) to a registry as
    REGISTRY/NAME:<rasa>-tf<tf>-<gpu|cpu>-<hash>, so that teammates and CI pull it with `--registry` instead of
    building. Uses the login of `docker login REGISTRY` here; with --host that engine pushes, the login going to it
    with the request. Prints "REF DIGEST" on stdout.

    \b
    Examples:
      rasa-gpu push example_bot --registry localhost:5000
      rasa-gpu push example_bot --registry registry.example.com/team --name support-bot
      rasa-gpu build example_bot --registry registry.example.com/team   # elsewhere: pulls, builds nothing
    """
    import json

    from rich.markup import escape

    from .. import build_log
    from ..errors import SettingsError
    from ..images import DEFAULT_IMAGE_NAME
    from ..push import push_image
    from ..settings import Settings
    from ._common import err
    from .views import BuildView

    resolved = load(bot, image, Settings(image_name=image_name))
    settings, spec, why = resolved.settings, resolved.spec, resolved.why
    if not settings.registry:
        raise SettingsError(
            "push needs a registry: --registry HOST[:PORT][/PATH] or registry = ... in rasa-gpu.toml"
        )
    err.print(
        f"rasa-gpu push: {escape(spec.tag())} (Rasa {spec.release.version}, {why}) to {escape(settings.registry)}"
    )
    started = time.monotonic()
    with (
        resolved.runner(show_notice) as runner,
        BuildView(verbose) as view,
        build_log.recording(build_log.of_bot(resolved.project), view.handle) as on_line,
    ):
        result = push_image(
            runner.engine,
            spec,
            settings.registry,
            settings.image_name or DEFAULT_IMAGE_NAME,
            on_line,
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
