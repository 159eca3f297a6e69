"""`rasa-gpu up/down/ps/logs/restart`: the bot's action server and Rasa server (plus Duckling when the pipeline asks
for it, and optional TensorBoard and Jupyter) as a compose project.

The compose file is plain data rendered by `render_compose` and kept in the bot folder, where users can read and
extend it. Secrets live in the bot's env file, never in the compose file or an image. Nothing here prints.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import __version__, build_log, license_key
from .engine import Compose, Engine, ServiceState
from .errors import PullError, ServicesError, SettingsError
from .events import BuildOutput, EventSink, Notice
from .gpu import GpuRequest, for_image, granted, request_works
from .images import (
    ActionsImageSpec,
    ImageResult,
    ImageSpec,
    NotebookImageSpec,
    check_image_reference,
    ensure_image,
    ensure_service_image,
)
from .license_key import License
from .project import BotProject
from .runners import BOT_MOUNT, Runner, rasa_environment
from .training import sweep

COMPOSE_FILE = "rasa-gpu.compose.yml"
OVERRIDE_FILE = "rasa-gpu.compose.override.yml"
ENV_FILE = ".rasa-gpu/services.env"
ENDPOINTS_FILE = ".rasa-gpu/endpoints.services.yml"
CREDENTIALS_FILE = ".rasa-gpu/credentials.services.yml"
PROPOSED_FILE = ".rasa-gpu/compose.proposed.yml"
TENSORBOARD_DIR = ".rasa-gpu/tensorboard"
PROFILES = ("tensorboard", "jupyter")
DIGEST_PREFIX = "# rasa-gpu-digest: "
#: Components that write TensorBoard logs when `tensorboard_log_directory` is set.
TENSORBOARD_COMPONENTS = ("DIETClassifier", "TEDPolicy", "ResponseSelector")
DEFAULT_PORTS = {"rasa": 5005, "actions": 5055, "tensorboard": 6006, "jupyter": 8888}
#: The port each service listens on inside its container (Duckling's is not published: only Rasa asks it).
CONTAINER_PORTS = {**DEFAULT_PORTS, "duckling": 8000}
#: The Duckling server that DucklingEntityExtractor asks (`duckling_image` in rasa-gpu.toml names another).
DUCKLING_IMAGE = "rasa/duckling:0.2.0.2-r3"
#: The component's names: Rasa 2+ and Rasa 1.x's.
DUCKLING_COMPONENTS = ("DucklingEntityExtractor", "DucklingHTTPExtractor")
#: Rasa's extractor takes its server's URL from this variable before the `url:` of config.yml.
DUCKLING_URL_ENV = "RASA_DUCKLING_HTTP_URL"


@dataclass(frozen=True)
class ServicePlan:
    """Everything the compose file says, as data."""

    project_name: str
    user: str  # uid:gid of the bot folder's owner
    rasa_image: str
    actions_image: str | None  # None: the bot has no custom actions
    notebook_image: str
    actions_path: str = (
        "actions"  # the bot's actions/ folder or its root-level actions.py, relative to the bot
    )
    bind: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    gpu: GpuRequest | None = None  # None: no GPU reservation
    #: Rasa Pro: the compose file names RASA_PRO_LICENSE (no value); compose takes the value from its own environment.
    license: bool = False
    #: The Duckling server's image when the pipeline has DucklingEntityExtractor and the engine has the image.
    duckling_image: str | None = None

    def url(self, service: str) -> str:
        """Where the service answers: its published port here, or (Duckling) its name on the services' network."""
        if service not in self.ports:
            return f"http://{service}:{CONTAINER_PORTS[service]}"
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        return f"http://{host}:{self.ports[service]}"


def project_name(project: BotProject) -> str:
    """A compose project name per bot folder: readable, and unique for two bots of the same name."""
    return f"rasa-gpu-{project.name}-{hashlib.sha256(str(project.root).encode()).hexdigest()[:6]}"


def has_actions(project: BotProject) -> bool:
    return project.actions is not None


def uses_duckling(config: dict[str, Any]) -> bool:
    """Whether the pipeline has Duckling's extractor (by its name, or a module path that ends in it)."""
    return any(
        isinstance(entry, dict) and str(entry.get("name", "")).rsplit(".", 1)[-1] in DUCKLING_COMPONENTS
        for entry in (config.get("pipeline") or [])
    )


def duckling_image(project: BotProject, settings: Any) -> str | None:
    """The Duckling server's image when the bot's pipeline asks a Duckling (`duckling_image` or DUCKLING_IMAGE), else
    None. A `duckling_image` that is no image reference is a one-line SettingsError, pipeline or not."""
    image = DUCKLING_IMAGE
    if settings.duckling_image:
        image = check_image_reference(settings.duckling_image, settings.subject("duckling_image"))
    return image if uses_duckling(project.config_data()) else None


def service_ports(settings: Any) -> tuple[str, dict[str, int]]:
    """Bind address and host ports from the settings (rasa-gpu.toml or the command line)."""
    ports = {name: getattr(settings, f"{name}_port") or default for name, default in DEFAULT_PORTS.items()}
    clashes = {port for port in ports.values() if list(ports.values()).count(port) > 1}
    if clashes:
        raise SettingsError(f"two services are set to the same port {min(clashes)}; give each its own port")
    return settings.bind or "127.0.0.1", ports


# ---- rendering -----------------------------------------------------------------------------------------------------


def _healthcheck(url: str, start_period: str) -> dict[str, Any]:
    probe = f"import os, urllib.request; urllib.request.urlopen({url}, timeout=4)"
    return {
        "test": ["CMD", "python3", "-c", probe],
        "interval": "3s",
        "timeout": "5s",
        "retries": 3,
        "start_period": start_period,
    }


def render_compose(plan: ServicePlan) -> str:
    """The compose file: readable YAML with a header that says how to use and extend it."""
    published = {name: f"{plan.bind}:{plan.ports[name]}:{CONTAINER_PORTS[name]}" for name in DEFAULT_PORTS}
    environment: dict[str, str | None] = {**rasa_environment(), "RASA_TELEMETRY_ENABLED": "false"}
    if plan.duckling_image:  # overrides the `url:` of config.yml, which is left as the user wrote it
        environment[DUCKLING_URL_ENV] = plan.url("duckling")
    if plan.license:  # the name only: compose passes the value on from the environment rasa-gpu runs it with
        environment[license_key.ENV] = None
    common: dict[str, Any] = {
        "user": plan.user,
        "env_file": [ENV_FILE],
        "environment": environment,
    }
    gpu: dict[str, Any] = {}
    if plan.gpu is not None:
        gpu = {"deploy": {"resources": {"reservations": {"devices": plan.gpu.compose_devices()}}}}
    # The image's entry script adds --auth-token from RASA_AUTH_TOKEN (the env file) inside its own process: a token
    # on a command line would be readable by every local user through `ps`.
    rasa_command = ["run", "--enable-api", "--model", "models", "--endpoints", ENDPOINTS_FILE]
    rasa_command += ["--credentials", CREDENTIALS_FILE, "--port", str(CONTAINER_PORTS["rasa"])]
    services: dict[str, Any] = {}
    if plan.actions_image:
        services["actions"] = {
            "image": plan.actions_image,
            "user": plan.user,
            # As `rasa run actions` runs in the bot folder: an action's relative paths (sqlite:///profile.db, a
            # cache) land in the bot, as its owner's files, and outlive the container. The code is mounted read-only
            # on top, not copied: a change needs a restart, not a rebuild. Either layout is the module `actions` in
            # the working folder, which is what rasa_sdk --actions actions imports.
            "working_dir": BOT_MOUNT,
            "volumes": [f"./:{BOT_MOUNT}", f"./{plan.actions_path}:{BOT_MOUNT}/{plan.actions_path}:ro"],
            "ports": [published["actions"]],
            "healthcheck": _healthcheck(f"'http://localhost:{CONTAINER_PORTS['actions']}/health'", "60s"),
        }
    services["rasa"] = {
        "image": plan.rasa_image,
        **common,
        "working_dir": BOT_MOUNT,
        "volumes": [f"./:{BOT_MOUNT}"],
        "command": rasa_command,
        "init": True,  # forwards `docker stop`'s SIGTERM to Rasa
        "ports": [published["rasa"]],
        **({"depends_on": ["actions"]} if plan.actions_image else {}),
        "healthcheck": _healthcheck(
            f"'http://localhost:{CONTAINER_PORTS['rasa']}/status?token=' + os.environ['RASA_AUTH_TOKEN']",
            "600s",
        ),
        **gpu,
    }
    if plan.duckling_image:
        # Only Rasa asks it, on the services' network: no port on the host, where the user may run a Duckling of
        # their own on 8000. The image runs as it was made; it sees nothing of the bot.
        services["duckling"] = {"image": plan.duckling_image, "init": True}
    services["tensorboard"] = {
        "image": plan.rasa_image,
        "profiles": ["tensorboard"],
        "user": plan.user,
        "entrypoint": ["tensorboard", "--logdir", f"{BOT_MOUNT}/{TENSORBOARD_DIR}", "--bind_all"],
        "command": ["--port", str(CONTAINER_PORTS["tensorboard"])],
        "environment": {"HOME": "/tmp"},
        "volumes": [f"./{TENSORBOARD_DIR}:{BOT_MOUNT}/{TENSORBOARD_DIR}:ro"],
        "ports": [published["tensorboard"]],
        "healthcheck": _healthcheck(f"'http://localhost:{CONTAINER_PORTS['tensorboard']}/'", "120s"),
    }
    services["jupyter"] = {
        "image": plan.notebook_image,
        "profiles": ["jupyter"],
        **common,
        "working_dir": BOT_MOUNT,
        "volumes": [f"./:{BOT_MOUNT}"],
        "command": [
            "jupyter",
            "notebook",
            "--ip=0.0.0.0",
            f"--port={CONTAINER_PORTS['jupyter']}",
            "--no-browser",
            f"--notebook-dir={BOT_MOUNT}",
            "--allow-root",  # only matters when the bot folder belongs to root
        ],
        "ports": [published["jupyter"]],
        "healthcheck": _healthcheck(f"'http://localhost:{CONTAINER_PORTS['jupyter']}/api'", "120s"),
        **gpu,
    }
    body = yaml.dump({"services": services}, Dumper=_Dumper, sort_keys=False, width=120)
    duckling = (
        f"#   duckling     the Duckling server of DucklingEntityExtractor ({DUCKLING_URL_ENV} points Rasa at it)\n"
        if plan.duckling_image
        else ""
    )
    header = (
        f"# Services of this bot, generated by rasa-gpu {__version__}. Start them with `rasa-gpu up`, stop them\n"
        "# with `rasa-gpu down` (or by hand: "
        f"docker compose -p {plan.project_name} -f {COMPOSE_FILE} up -d).\n"
        "#   actions      the action server (rasa-sdk), in the bot folder as `rasa run actions` would be; the\n"
        "#                action code is mounted read-only, so a change needs only `rasa-gpu restart . actions`\n"
        "#                (rasa-gpu watch does that for you)\n"
        "#   rasa         `rasa run --enable-api` on the newest model in models/; the auth token is in\n"
        f"#                {ENV_FILE}\n"
        f"{duckling}"
        "#   tensorboard  profile: logs of trainings run with `rasa-gpu train --tensorboard`\n"
        "#   jupyter      profile: a notebook server in the Rasa image (token in the env file)\n"
        "# rasa-gpu rewrites this file when images or settings change. If you edit it, rasa-gpu keeps your version\n"
        f"# and says so; to extend it without that, put your changes in {OVERRIDE_FILE}.\n"
    )
    return header + DIGEST_PREFIX + _digest(body) + "\n" + body


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no anchors/aliases, and short lists of scalars on one line."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_none(self, data: None) -> yaml.ScalarNode:
        """`NAME:` with nothing after it: compose's way to take a variable's value from its own environment."""
        return self.represent_scalar("tag:yaml.org,2002:null", "")


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    short = all(isinstance(v, (str, int)) for v in data) and sum(len(str(v)) for v in data) < 60
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=short)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(type(None), _Dumper.represent_none)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def is_user_edited(text: str) -> bool:
    """Whether a compose file differs from what rasa-gpu wrote (its recorded digest no longer matches)."""
    header, sep, body = text.partition(DIGEST_PREFIX)
    if not sep:
        return True
    recorded, _, body = body.partition("\n")
    return recorded.strip() != _digest(body)


def tensorboard_overrides(config: dict[str, Any]) -> list[str]:
    """--set lines that make every component able to log to TensorBoard write into the bot's tensorboard folder."""
    present = {
        str(entry.get("name", "")).rsplit(".", 1)[-1]
        for section in ("pipeline", "policies")
        for entry in (config.get(section) or [])
        if isinstance(entry, dict)
    }
    return [
        f"{name}.tensorboard_log_directory={TENSORBOARD_DIR}/{name}"
        for name in TENSORBOARD_COMPONENTS
        if name in present
    ]


# ---- files in the bot folder ---------------------------------------------------------------------------------------


def write_compose(project: BotProject, text: str, *, regenerate: bool = False) -> tuple[Path, str]:
    """Write the compose file unless the user edited it. Returns the file to use and what happened:
    "written", "unchanged" or "kept" (the user's edits win; the new version goes to PROPOSED_FILE)."""
    path = project.root / COMPOSE_FILE
    if path.is_file():
        current = path.read_text(encoding="utf-8")
        if current == text:
            return path, "unchanged"
        if is_user_edited(current) and not regenerate:
            project.write_owned(project.root / PROPOSED_FILE, text)
            return path, "kept"
        if is_user_edited(current):
            project.write_owned(path.with_name(path.name + ".bak"), current)
    project.write_owned(path, text)
    return path, "written"


def write_runtime_files(project: BotProject, actions_url: str | None) -> None:
    """The env file with the tokens (made once, private), and endpoints/credentials for the services."""
    env = read_env(project)
    changed = False
    for key in ("RASA_AUTH_TOKEN", "JUPYTER_TOKEN"):
        if not env.get(key):
            env[key] = secrets.token_hex(24)
            changed = True
    if changed:
        text = "# Secrets of the rasa-gpu services of this bot. Keep this file private.\n"
        text += "".join(f"{key}={value}\n" for key, value in env.items())
        project.write_owned(project.root / ENV_FILE, text, mode=0o600)
    endpoints = _read_yaml(project.root / "endpoints.yml")
    if actions_url:
        endpoints["action_endpoint"] = {**(endpoints.get("action_endpoint") or {}), "url": actions_url}
    project.write_owned(
        project.root / ENDPOINTS_FILE,
        "# Generated by rasa-gpu from endpoints.yml: the action server is reached by its service name.\n"
        + yaml.safe_dump(endpoints, sort_keys=False),
    )
    credentials = _read_yaml(project.root / "credentials.yml") or {"rest": None}
    credentials.setdefault("rest", None)
    project.write_owned(
        project.root / CREDENTIALS_FILE,
        "# Generated by rasa-gpu from credentials.yml, with the REST channel switched on.\n"
        + yaml.safe_dump(credentials, sort_keys=False),
    )


def read_env(project: BotProject) -> dict[str, str]:
    path = project.root / ENV_FILE
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def compose_files(project: BotProject) -> list[Path]:
    files = [project.root / COMPOSE_FILE]
    if (project.root / OVERRIDE_FILE).is_file():
        files.append(project.root / OVERRIDE_FILE)
    return files


# ---- checks --------------------------------------------------------------------------------------------------------


def check_ports(plan: ServicePlan, services: list[str], running: list[ServiceState]) -> None:
    """A port another program holds is an error naming the port and the setting to change."""
    ours = {port for state in running for port in state.ports.values()}
    for service in services:
        if service not in plan.ports:  # not published (Duckling)
            continue
        port = plan.ports[service]
        if port in ours:
            continue
        with socket.socket(
            socket.AF_INET6 if ":" in plan.bind else socket.AF_INET, socket.SOCK_STREAM
        ) as sock:
            try:
                sock.bind((plan.bind, port))
            except OSError as exc:
                raise ServicesError(
                    f"port {port} on {plan.bind} (the {service} service) is busy: {exc.strerror}; stop what uses it, "
                    f"or set {service}_port in rasa-gpu.toml (or pass --{service}-port)"
                ) from None


def wait_healthy(
    engine: Engine, compose_project: str, services: list[str], timeout: float, on_event: EventSink
) -> list[ServiceState]:
    """Wait until every started service is healthy; on timeout name the one that is not, with its last lines."""
    deadline = time.monotonic() + timeout
    reported: set[str] = set()
    while True:
        states = {s.service: s for s in engine.project_containers(compose_project)}
        pending = []
        for service in services:
            state = states.get(service)
            if state is None or state.status != "running" or state.health not in ("healthy", ""):
                pending.append(service)
                if state is not None and state.status in ("exited", "dead"):
                    raise ServicesError(
                        f"the {service} service stopped (status {state.status}) instead of starting; "
                        "its last lines are below",
                        details=engine.logs_tail(state.id),
                    )
            elif service not in reported:
                reported.add(service)
                on_event(Notice(f"{service} is {'healthy' if state.health else 'running'}"))
        if not pending:
            return [states[s] for s in services]
        if time.monotonic() > deadline:
            service = pending[0]
            state = states.get(service)
            health = f"health {state.health or 'unknown'}, status {state.status}" if state else "no container"
            raise ServicesError(
                f"the {service} service is not healthy after {timeout:.0f} s ({health}); its last lines are below; "
                "raise --timeout if it is only slow",
                details=engine.logs_tail(state.id) if state else [],
            )
        time.sleep(1)


# ---- the Rasa server's HTTP API ------------------------------------------------------------------------------------


def rasa_request(
    base_url: str, token: str, method: str, path: str, body: Any = None, timeout: float = 300
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base_url}{path}{'&' if '?' in path else '?'}token={token}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        raise ServicesError(f"the Rasa server answered {method} {path} with {exc.code}: {detail}") from None
    except OSError as exc:
        raise ServicesError(f"the Rasa server at {base_url} cannot be reached: {exc}") from None
    return json.loads(payload) if payload.strip() else None


def running_rasa_url(engine: Engine, project: BotProject) -> str | None:
    """The Rasa server's URL if this bot's rasa service is up (healthy), else None."""
    for state in engine.project_containers(project_name(project)):
        if state.service == "rasa" and state.status == "running" and state.health == "healthy":
            port = state.ports.get(str(CONTAINER_PORTS["rasa"]))
            if port:
                return f"http://127.0.0.1:{port}"
    return None


def served_model(engine: Engine, project: BotProject) -> str | None:
    """The file name of the model this bot's running Rasa server has loaded, or None when none runs."""
    url = running_rasa_url(engine, project)
    if url is None:
        return None
    status = (
        rasa_request(url, read_env(project).get("RASA_AUTH_TOKEN", ""), "GET", "/status", timeout=30) or {}
    )
    return Path(str(status.get("model_file", ""))).name or None


def load_model(engine: Engine, project: BotProject, model: Path, on_event: EventSink) -> str | None:
    """Load a model into the running Rasa server (PUT /model) without restarting it, unless it serves that model
    already. Returns the server URL, or None when no Rasa server of this bot is running."""
    url = running_rasa_url(engine, project)
    if url is None:
        return None
    token = read_env(project).get("RASA_AUTH_TOKEN", "")
    status = rasa_request(url, token, "GET", "/status", timeout=30) or {}
    if Path(str(status.get("model_file", ""))).name == model.name:
        return url
    on_event(Notice(f"loading {model.name} into the Rasa server at {url}"))
    rasa_request(url, token, "PUT", "/model", {"model_file": f"{BOT_MOUNT}/models/{model.name}"})
    return url


# ---- up, down, restart ---------------------------------------------------------------------------------------------


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
