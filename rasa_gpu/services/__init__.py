"""`rasa-gpu up/down/ps/logs/restart`: the bot's action server and Rasa server (plus Duckling when the pipeline asks
for it, and optional TensorBoard and Jupyter) as a compose project.

The compose file is plain data rendered by `render_compose` and kept in the bot folder, where users can read and
extend it. Secrets live in the bot's env file, never in the compose file or an image. Nothing here prints.

plan.py: what the services are; compose_file.py: the compose file and the runtime files in the bot folder;
server.py: ports, health and the Rasa server's HTTP API; lifecycle.py: up, down, restart.
"""

from __future__ import annotations

from .compose_file import (
    compose_files,
    is_user_edited,
    read_env,
    render_compose,
    tensorboard_overrides,
    write_compose,
    write_runtime_files,
)
from .lifecycle import (
    UpOptions,
    UpResult,
    down,
    require_local,
    restart,
    up,
)
from .plan import (
    COMPOSE_FILE,
    CONTAINER_PORTS,
    CREDENTIALS_FILE,
    DEFAULT_PORTS,
    DIGEST_PREFIX,
    DUCKLING_COMPONENTS,
    DUCKLING_IMAGE,
    DUCKLING_URL_ENV,
    ENDPOINTS_FILE,
    ENV_FILE,
    OVERRIDE_FILE,
    PROFILES,
    PROPOSED_FILE,
    TENSORBOARD_COMPONENTS,
    TENSORBOARD_DIR,
    ServicePlan,
    duckling_image,
    has_actions,
    project_name,
    service_ports,
    uses_duckling,
)
from .server import (
    check_ports,
    load_model,
    rasa_request,
    running_rasa_url,
    served_model,
    wait_healthy,
)

__all__ = [
    "COMPOSE_FILE",
    "CONTAINER_PORTS",
    "CREDENTIALS_FILE",
    "DEFAULT_PORTS",
    "DIGEST_PREFIX",
    "DUCKLING_COMPONENTS",
    "DUCKLING_IMAGE",
    "DUCKLING_URL_ENV",
    "ENDPOINTS_FILE",
    "ENV_FILE",
    "OVERRIDE_FILE",
    "PROFILES",
    "PROPOSED_FILE",
    "ServicePlan",
    "TENSORBOARD_COMPONENTS",
    "TENSORBOARD_DIR",
    "UpOptions",
    "UpResult",
    "check_ports",
    "compose_files",
    "down",
    "duckling_image",
    "has_actions",
    "is_user_edited",
    "load_model",
    "project_name",
    "rasa_request",
    "read_env",
    "render_compose",
    "require_local",
    "restart",
    "running_rasa_url",
    "served_model",
    "service_ports",
    "tensorboard_overrides",
    "up",
    "uses_duckling",
    "wait_healthy",
    "write_compose",
    "write_runtime_files",
]
