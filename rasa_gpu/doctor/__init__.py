"""`rasa-gpu doctor`: is this machine and this bot ready to train on a GPU? Each check says ok, warn, fail or skip,
what it found, and how to fix it. A failing check is blocking when it stops a training; the GPU checks block only
when a GPU is required (`--gpu on`), because `--gpu auto` trains on the CPU instead.

Checks are data; the CLI draws them. Pure verdicts (driver versus CUDA, the inotify limit) take plain values so a
table of cases can test them. ``checks.py``: what a check is; ``gpu_checks.py``: the GPU checks.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ..compat import RasaRelease
from ..engine import START_HINT, Compose, ContainerSpec, Engine, EngineAbout, labels_for
from ..errors import RasaGpuError
from ..images import cpu_twin, settle_base
from ..project import BotProject
from ..runners import Runner
from ..settings import Settings
from .checks import STATUSES, Check, Context, LocalImages, gpu_problem
from .gpu_checks import (
    SmokeResult,
    driver_check,
    host_driver_version,
    parse_smoke_output,
    runtime_check,
    smoke_test,
)

__all__ = [
    "STATUSES",
    "Check",
    "Context",
    "LocalImages",
    "SmokeResult",
    "driver_check",
    "host_driver_version",
    "parse_smoke_output",
    "runtime_check",
]

#: Free space the first build needs: TensorFlow's GPU base image (about 7 GB unpacked) plus Rasa (about 3 GB).
FIRST_BUILD_BYTES = 12 * 10**9
#: Free space below which training itself is at risk (Rasa's cache and the model archive).
TRAINING_BYTES = 2 * 10**9
#: What editors and tools comfortably share; VS Code's own guidance asks for 524288.
INOTIFY_COMFORTABLE = 65536
INOTIFY_FIX = (
    "raise it: `echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-inotify.conf "
    "&& sudo sysctl --system`"
)
_GB = 10**9


def run(context: Context, bot_check: Check, runner: Runner) -> Iterator[Check]:
    """All checks in order, one at a time (the GPU smoke test takes a few seconds). The engine and the GPU are the
    runner's (this machine's, or one reached over SSH); the bot's disk and inotify are this machine's."""
    yield bot_check
    try:
        engine = runner.engine
        about = engine.about()
    except RasaGpuError as exc:
        if runner.capabilities.shares_host_machine:  # the hint: start it here
            yield Check("engine", "fail", exc.message.split("; ")[0], START_HINT, blocking=True)
        else:  # the line from ssh: unreachable, host key, login, no docker or no engine there
            yield Check("engine", "fail", exc.message, None, blocking=True)
        yield compose_check()
        for name in ("training image", "NVIDIA runtime", "GPU smoke test"):
            yield Check(name, "skip", "no Docker engine to ask")
        yield driver_check(host_driver_version(), context.release, context.gpu_mode)
        yield Check("disk (images)", "skip", "no Docker engine to ask")
        yield from _host_checks(context)
        return
    where = (
        ""
        if runner.capabilities.shares_host_machine
        else f" on {about.name or 'the far host'} ({runner.name}, over SSH or TCP)"
    )
    yield Check("engine", "ok", f"Docker {about.version} (API {about.api_version}) at {about.host}{where}")
    if context.project is not None:
        yield leftovers_check(runner, context.project)
    yield compose_check()
    stand_in: list[str] = []
    if context.spec is not None:  # the base train would build on (a registry-less stand-in for the matrix's)
        context = replace(context, spec=settle_base(engine, context.spec, stand_in.append))
    images = LocalImages.of(engine, context.spec)
    yield _image_check(engine, context, images, stand_in[0] if stand_in else "")
    runtime = runtime_check(engine, about, context, images)
    yield runtime
    smoke, driver_in_container = smoke_test(engine, context, runtime, images)
    yield smoke
    host_driver = (
        host_driver_version() if runner.capabilities.shares_host_driver else None
    )  # the far host's driver shows in the smoke test
    yield driver_check(host_driver or driver_in_container, context.release, context.gpu_mode)
    yield _docker_disk_check(engine, about, images, runner.capabilities.shares_host_machine)
    yield from _host_checks(context)


def leftovers_check(runner: Runner, project: BotProject) -> Check:
    """Containers that a killed rasa-gpu on this host left for this bot are removed, as every bot command does."""
    removed = runner.sweep(project)
    if removed:
        return Check("leftovers", "ok", f"removed {removed} container(s) that a killed rasa-gpu left behind")
    return Check("leftovers", "ok", "no container of a killed rasa-gpu on this host")


def _host_checks(context: Context) -> Iterator[Check]:
    if context.project is not None:
        yield disk_check(
            "disk (bot)",
            shutil.disk_usage(context.project.root).free,
            TRAINING_BYTES,
            str(context.project.root),
        )
    yield inotify_check(_read_int("/proc/sys/fs/inotify/max_user_watches"), _folder_count(context.project))


# ---- the bot ----------------------------------------------------------------------------------------------------


def bot_ok(project: BotProject, release: RasaRelease, why: str) -> Check:
    files = len(list(project.yaml_files()))
    return Check(
        "bot",
        "ok",
        f"{project.root}: config, domain and data present, {files} YAML files parse; Rasa {release.version} "
        f"({why}), TensorFlow {release.tensorflow}, CUDA {release.cuda}",
    )


def bot_failed(error: RasaGpuError) -> Check:
    return Check("bot", "fail", error.message, "fix the bot as the message says, then run doctor again", True)


def no_bot(path: str) -> Check:
    return Check("bot", "skip", f"{path} is not a Rasa project; pass a bot folder to check it too")


def context_for(bot: str | None, given: Settings, variant: str) -> tuple[Context, Check]:
    """The bot doctor looks at (BOT, else the current folder if it is a bot) and the check of the bot itself; the
    settings the command line gives (`gpu` and `gpus` among them) go over the bot's settings, as for train.
    A broken bot is a failed check, not an error."""
    from ..compat import load_matrix
    from ..errors import ProjectError
    from ..resolve import resolve

    # Without a bot (or its settings): what the command line asked for.
    asked, where = given.gpu_request(), given.where()
    try:
        resolved = resolve(bot or ".", given, variant)
    except ProjectError as exc:
        if bot is not None:
            return Context(asked, where=where), bot_failed(exc)
        matrix = load_matrix()
        return Context(asked, release=matrix.get(matrix.default), where=where), no_bot(str(Path.cwd()))
    except RasaGpuError as exc:
        return Context(asked, where=where), bot_failed(exc)
    settings, spec = resolved.settings, resolved.spec
    context = Context(
        settings.gpu_request(),
        resolved.project,
        spec,
        spec.release,
        settings.where(),
    )
    return context, bot_ok(resolved.project, spec.release, resolved.why)


# ---- engine and compose -------------------------------------------------------------------------------------------


def compose_check() -> Check:
    try:
        compose = Compose.find()
    except RasaGpuError:
        return Check(
            "compose",
            "warn",
            "neither `docker compose` (v2) nor `docker-compose` (v1) is installed; only `rasa-gpu up` needs it",
            "install the compose plugin (https://docs.docker.com/compose/install/linux/)",
        )
    if compose.flavour == "v1":
        return Check(
            "compose",
            "warn",
            f"docker-compose {compose.version} (v1, no longer maintained); `rasa-gpu up` works with it",
            "install compose v2, the `docker compose` plugin (https://docs.docker.com/compose/install/linux/)",
        )
    return Check("compose", "ok", f"docker compose {compose.version} (v2)")


def _image_check(engine: Engine, context: Context, images: LocalImages, stand_in: str = "") -> Check:
    spec = context.spec
    if spec is None:
        return Check("training image", "skip", "no bot, so no image to look for")
    check = _built_check(engine, context, images)
    return replace(check, detail=f"{check.detail} ({stand_in})") if stand_in else check


def _built_check(engine: Engine, context: Context, images: LocalImages) -> Check:
    spec = context.spec
    assert spec is not None
    tag = spec.tag()
    if images.built == cpu_twin(tag) and images.built != tag:
        return gpu_problem(
            "training image",
            f"{images.built} is built but CPU-only: it failed the CUDA check after its build ({spec.cuda_line()})",
            "rebuild with `rasa-gpu build --rebuild` to see the check's reason, or use --cuda wheels",
            context.gpu_mode,
        )
    if images.built:
        size = engine.image_size(tag) / _GB
        return Check("training image", "ok", f"{tag} is built ({size:.1f} GB); {spec.cuda_line()}")
    if images.base:
        return Check(
            "training image",
            "ok",
            f"not built yet; the first train builds {tag} on {spec.base_image}; {spec.cuda_line()}",
        )
    if engine.can_pull(spec.base_image):
        return Check(
            "training image",
            "ok",
            f"not built yet; the first train pulls {spec.base_image} and builds it; {spec.cuda_line()}",
        )
    return Check(
        "training image",
        "fail",
        f"not built, and its base image {spec.base_image} is not here and cannot be pulled",
        "pass --base-image with a local image, or build a registry-less one with `rasa-gpu base-image`",
        blocking=True,
    )


# ---- disk and inotify ----------------------------------------------------------------------------------------------


def disk_check(name: str, free: int, needed: int, where: str) -> Check:
    text = f"{free / _GB:.1f} GB free on {where}"
    if free < min(needed, TRAINING_BYTES):
        return Check(
            name, "fail", f"{text}; training needs at least {TRAINING_BYTES / _GB:.0f} GB", _FREE, True
        )
    if free < needed:
        return Check(name, "warn", f"{text}; about {needed / _GB:.0f} GB are needed", _FREE)
    return Check(name, "ok", text)


_FREE = "free some space (`docker system prune` removes stopped containers and unused images)"


def _docker_disk_check(engine: Engine, about: EngineAbout, images: LocalImages, root_here: bool) -> Check:
    """Free space where the engine keeps images and volumes: looked at here (`root_here`: its data root is a folder
    of this machine), or from a probe container there."""
    name = "disk (images)"
    built = images.built is not None
    if root_here:
        try:
            free = shutil.disk_usage(about.root_dir).free
        except OSError as exc:
            return Check(name, "skip", f"cannot look at {about.root_dir}: {exc.strerror}")
    else:
        if images.probe is None:
            return Check(name, "skip", "no image on that engine to start a probe container from yet")
        spec = ContainerSpec(
            image=images.probe,
            command=[],
            entrypoint=["df", "-Pk", "/engine"],
            name=f"rasa-gpu-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            labels=labels_for("probe", Path("/")),
            binds={about.root_dir: "/engine"},  # a path on that host: bind mounts name the engine's own disk
        )
        code, lines = engine.run_to_completion(spec)
        fields = lines[-1].split() if code == 0 and lines else []
        if len(fields) < 4 or not fields[3].isdigit():
            return Check(name, "skip", f"could not read the free space of {about.root_dir} on that host")
        free = int(fields[3]) * 1024
    return disk_check(name, free, TRAINING_BYTES if built else FIRST_BUILD_BYTES, about.root_dir)


def inotify_check(max_watches: int | None, folders: int) -> Check:
    """watch needs one inotify watch per folder of the bot; editors and other tools share the same per-user limit."""
    name = "inotify limit"
    if max_watches is None:
        return Check(name, "skip", "no inotify on this system; watch uses the platform's own file events")
    text = f"fs.inotify.max_user_watches is {max_watches}; watching this bot takes {folders}"
    if max_watches < folders * 2:
        return Check(name, "fail", f"{text}: `rasa-gpu watch` will not start", INOTIFY_FIX)
    if max_watches < INOTIFY_COMFORTABLE:
        return Check(name, "warn", f"{text}; editors share the limit and may run out", INOTIFY_FIX)
    return Check(name, "ok", text)


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _folder_count(project: BotProject | None) -> int:
    if project is None:
        return 0
    return 1 + sum(len(dirnames) for _, dirnames, _ in os.walk(project.root))


def blocking_failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "fail" and c.blocking]
