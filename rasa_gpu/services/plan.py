"""What a bot's services are: their names, images, ports and the settings that pick them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import SettingsError
from ..gpu import GpuRequest
from ..images import (
    check_image_reference,
)
from ..project import BotProject

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
