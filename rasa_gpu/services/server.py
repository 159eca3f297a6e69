"""The running services: ports free before they start, health after, and the Rasa server's HTTP API (which model it
serves, loading another)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..engine import Engine, ServiceState
from ..errors import ServicesError
from ..events import EventSink, Notice
from ..project import BotProject
from ..runners import BOT_MOUNT
from .compose_file import read_env
from .plan import CONTAINER_PORTS, ServicePlan, project_name


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
