"""Compose: the docker compose (v2) or docker-compose (v1) that is installed, running one command of a project, and
the containers it made for a project as the engine sees them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ComposeError
from .connection import Connection
from .sdk import last_meaningful


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    status: str  # running, exited, ...
    health: str  # healthy, unhealthy, starting, or "" without a health check
    ports: dict[str, int]  # container port -> host port
    id: str


class ComposeProjects(Connection):
    """The containers of compose projects on an engine."""

    def project_containers(self, project: str) -> list[ServiceState]:
        """The containers compose made for a project, running or not."""
        filters = {"label": [f"com.docker.compose.project={project}"]}
        states = []
        for container in self.client.containers.list(all=True, filters=filters, ignore_removed=True):
            attrs = container.attrs
            state = attrs.get("State", {})
            ports = {
                key.split("/")[0]: int(binding[0]["HostPort"])
                for key, binding in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items()
                if binding
            }
            states.append(
                ServiceState(
                    service=container.labels.get("com.docker.compose.service", container.name),
                    container=container.name,
                    status=str(state.get("Status", "")),
                    health=str((state.get("Health") or {}).get("Status", "")),
                    ports=ports,
                    id=str(container.id),
                )
            )
        return sorted(states, key=lambda s: s.service)


class Compose:
    """docker compose (v2, the CLI plugin) or docker-compose (v1), whichever is installed. RASA_GPU_COMPOSE picks one
    ("docker compose" or "docker-compose"). Runs against the same engine as the rest (DOCKER_HOST)."""

    CANDIDATES = (("docker", "compose"), ("docker-compose",))

    def __init__(self, command: tuple[str, ...], version: str) -> None:
        self.command = command
        self.version = version

    @property
    def flavour(self) -> str:
        return "v2" if self.command == ("docker", "compose") else "v1"

    @classmethod
    def find(cls) -> Compose:
        wanted = os.environ.get("RASA_GPU_COMPOSE")
        candidates = [tuple(wanted.split())] if wanted else list(cls.CANDIDATES)
        for command in candidates:
            if not shutil.which(command[0]):
                continue
            try:
                proc = subprocess.run(
                    [*command, "version", "--short"], capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if proc.returncode == 0 and proc.stdout.strip():
                return cls(command, proc.stdout.strip())
        which = (
            f"'{wanted}' (RASA_GPU_COMPOSE)" if wanted else "neither `docker compose` nor `docker-compose`"
        )
        raise ComposeError(
            f"{which} is installed; install Docker Compose (https://docs.docker.com/compose/install/, "
            "Debian/Ubuntu: `sudo apt-get install docker-compose`)"
        )

    def run(
        self,
        project: str,
        files: list[Path],
        args: list[str],
        *,
        profiles: tuple[str, ...] = (),
        stream: bool = False,
        secrets: dict[str, str] | None = None,
    ) -> list[str]:
        """Run one compose command for the project; returns its output lines, or raises ComposeError with its tail.
        With stream=True the output goes straight to this process's terminal (logs -f) and nothing is returned.
        `secrets` reach compose in its environment only (the compose file names them without a value)."""
        command = [*self.command, "-p", project, "--project-directory", str(files[0].parent)]
        for file in files:
            command += ["-f", str(file)]
        for profile in profiles:
            command += ["--profile", profile]
        command += args
        env = {**os.environ, **secrets} if secrets else None
        if stream:
            subprocess.run(command, check=False, env=env)
            return []
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines = proc.stdout.splitlines()
        if proc.returncode != 0:
            raise ComposeError(
                f"`{' '.join(self.command)} {' '.join(args)}` failed (exit {proc.returncode}): "
                f"{last_meaningful(lines)}",
                details=lines[-20:],
            )
        return lines
