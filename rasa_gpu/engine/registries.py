"""Registries: pulling base images and published images, pushing, their progress as a few lines, and why a registry
did not take or give an image, in words that say what to do."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import PullError, PushError, RasaGpuError, RegistryUnreachable
from .images import Images, event_error, split_ref
from .sdk import LineSink, explain, mapped

if TYPE_CHECKING:
    import docker.errors

    import docker
else:
    from .sdk import docker


class Registries(Images):
    """What an engine pulls from and pushes to registries (into and out of its images)."""

    def can_pull(self, ref: str) -> bool:
        """Whether a registry answers for this image, asked without downloading it."""
        try:
            self.client.images.get_registry_data(ref)
        except docker.errors.APIError:
            return False
        return True

    def pull(self, ref: str, on_line: LineSink) -> None:
        """Pull a base image; a registry that cannot give it is RegistryUnreachable, with the way around it."""
        where = f"the engine at {self.shown_as}" if self.shown_as else "this machine"

        def unreachable(explanation: str) -> RasaGpuError:
            reason = explanation.strip().splitlines()[0]
            return RegistryUnreachable(
                f"base image {ref} is not on {where} and cannot be pulled ({reason}); the registry is "
                "unreachable or the name is wrong: pass --base-image with an image that engine has, or build a "
                "registry-less base with `rasa-gpu base-image`"
            )

        with mapped(unreachable):
            self._pull_stream(ref, on_line)

    def push(self, ref: str, on_line: LineSink) -> str:
        """Push an image that carries its registry's name; returns the manifest digest. The login comes from the
        Docker config (DOCKER_CONFIG or ~/.docker/config.json, as written by `docker login`)."""
        repository, tag = split_ref(ref)
        layers = _LayerProgress("pushed", on_line)
        digest = ""
        with mapped(lambda explanation: PushError(_registry_problem("push", ref, explanation))):
            for event in self.api.push(repository, tag=tag, stream=True, decode=True):
                message = event_error(event)
                if message is not None:
                    raise PushError(_registry_problem("push", ref, message))
                aux = event.get("aux") or {}
                if aux.get("Digest"):
                    digest = str(aux["Digest"])
                layers.feed(event)
        if not digest:
            raise PushError(f"the push of {ref} ended without a digest from the registry; run it again")
        return digest

    def pull_published(self, ref: str, on_line: LineSink) -> str | None:
        """Pull an image by its registry name; returns its id, or None when the registry answers but does not have
        it. A registry that does not answer or refuses (no login) raises PullError."""
        try:
            self._pull_stream(ref, on_line)
        except docker.errors.APIError as exc:
            message = explain(exc)
            if _is_not_found(message) and not _is_auth_problem(message):
                return None
            raise PullError(_registry_problem("pull", ref, message)) from None
        return self.image_id(ref)

    def _pull_stream(self, ref: str, on_line: LineSink) -> None:
        """Pull, reporting progress a few lines at a time; an error event becomes an APIError."""
        repository, tag = split_ref(ref)
        layers = _LayerProgress("pulled", on_line)
        for event in self.api.pull(repository, tag=tag, stream=True, decode=True):
            message = event_error(event)
            if message is not None:
                raise docker.errors.APIError(message)
            layers.feed(event)


def _registry_of(ref: str) -> str:
    first = ref.split("/", 1)[0]
    return first if "/" in ref and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _is_auth_problem(message: str) -> bool:
    lowered = message.lower()
    return any(
        needle in lowered
        for needle in (
            "unauthorized",
            "authentication required",
            "no basic auth credentials",
            "denied",
            "docker login",
            "incorrect username or password",
        )
    )


def _is_not_found(message: str) -> bool:
    lowered = message.lower()
    return "manifest unknown" in lowered or "not found" in lowered or "name unknown" in lowered


def _registry_problem(action: str, ref: str, message: str) -> str:
    """One line saying why a registry did not take (or give) an image, and what to do about it."""
    registry = _registry_of(ref)
    lowered = message.lower()
    reason = message.strip().splitlines()[0] if message.strip() else "no reason given"
    if _is_auth_problem(message):
        return f"registry {registry} refused the {action} (not logged in): run `docker login {registry}`"
    if "server gave http response to https client" in lowered:
        return (
            f'registry {registry} speaks plain HTTP but the Docker engine expects HTTPS: add "{registry}" to '
            "insecure-registries in /etc/docker/daemon.json and restart dockerd, or serve the registry with TLS"
        )
    if any(n in lowered for n in ("connection refused", "no such host", "i/o timeout", "no route to host")):
        return (
            f"no registry answers at {registry} ({reason}); check the address and port, "
            "and that the registry is running"
        )
    if "x509" in lowered or "certificate" in lowered:
        return (
            f"the Docker engine does not trust the TLS certificate of {registry} ({reason}); put its CA in "
            f"/etc/docker/certs.d/{registry}/ca.crt"
        )
    return f"the {action} of {ref} failed: {reason}"


class _LayerProgress:
    """Turns the per-layer events of a push or pull into a few lines: what the engine says about the whole image,
    one line per finished layer and, at most every `every` seconds, how many bytes have moved."""

    DONE = ("Pushed", "Layer already exists", "Pull complete", "Already exists")
    MOVING = ("Pushing", "Downloading")

    def __init__(self, verb: str, on_line: LineSink, every: float = 10.0) -> None:
        self.verb, self.on_line, self.every = verb, on_line, every
        self.layers: dict[str, tuple[int, int]] = {}
        self.last = time.monotonic()

    def feed(self, event: dict[str, Any]) -> None:
        status = str(event.get("status", ""))
        layer = event.get("id")
        # About the whole image ("Pulling from" names the tag as its id).
        if not layer or status.startswith("Pulling from"):
            if status:
                self.on_line(status)
            return
        detail = event.get("progressDetail") or {}
        if status in self.MOVING and detail.get("total"):
            self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
            if time.monotonic() - self.last >= self.every:
                self.last = time.monotonic()
                moved = sum(current for current, _ in self.layers.values())
                total = sum(total for _, total in self.layers.values())
                self.on_line(
                    f"{self.verb} {moved / 1e6:,.0f} MB of {total / 1e6:,.0f} MB ({100 * moved // total}%) so far"
                )
        elif status in self.DONE or status.startswith("Mounted from"):
            self.on_line(f"{layer}: {status}")
