"""The compose file: rendered as plain data from a ServicePlan, kept in the bot folder with the runtime files its
services read (endpoints, credentials, the env file with the secrets)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import yaml

from .. import __version__, license_key
from ..overrides import component_entries, matches
from ..project import BotProject
from ..runners import BOT_MOUNT, rasa_environment
from .plan import (
    COMPOSE_FILE,
    CONTAINER_PORTS,
    CREDENTIALS_FILE,
    DEFAULT_PORTS,
    DIGEST_PREFIX,
    DUCKLING_URL_ENV,
    ENDPOINTS_FILE,
    ENV_FILE,
    OVERRIDE_FILE,
    PROPOSED_FILE,
    TENSORBOARD_COMPONENTS,
    TENSORBOARD_DIR,
    ServicePlan,
)


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
    entries = component_entries(config)
    return [
        f"{name}.tensorboard_log_directory={TENSORBOARD_DIR}/{name}"
        for name in TENSORBOARD_COMPONENTS
        if any(matches(e.get("name"), name) for e in entries)
    ]


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
