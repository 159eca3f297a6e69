"""Local images: what the engine has (ids, labels, sizes), names given and removed, builds from an in-memory context
with their output as whole lines (and the reason a failed step gives), and imports of a root filesystem."""

from __future__ import annotations

import io
import itertools
import re
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import BuildError, RasaGpuError
from ..redact import redact
from .connection import Connection, ask_socket
from .sdk import LineSink, mapped


class Images(Connection):
    """The images of an engine."""

    def image_id(self, ref: str) -> str | None:
        """The local image id for a name, or None. One cheap API call, no builder."""
        if self._client is None and self._socket is not None:
            with suppress(OSError):
                status, answer = ask_socket(self._socket, f"/images/{quote(ref, safe='/:')}/json")
                if status == 404:
                    return None
                if status == 200 and isinstance(answer, dict) and answer.get("Id"):
                    return str(answer["Id"])
        with mapped(f"Docker could not inspect image {ref}", missing_ok=True):
            return str(self.api.inspect_image(ref)["Id"])
        return None

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of a local image (none: {})."""
        with mapped(f"Docker could not inspect image {ref}"):
            config = self.api.inspect_image(ref).get("Config") or {}
        return {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}

    def labelled_images(self, label: str) -> list[tuple[list[str], dict[str, str]]]:
        """(names, labels) of each local image that carries this label."""
        with mapped("Docker could not list images"):
            images = self.api.images(filters={"label": label})
        return [
            (
                [str(name) for name in image.get("RepoTags") or []],
                {str(k): str(v) for k, v in (image.get("Labels") or {}).items()},
            )
            for image in images
        ]

    def image_size(self, ref: str) -> int:
        """The image's size in bytes as the engine reports it (uncompressed, all layers)."""
        with mapped(f"Docker could not inspect image {ref}"):
            return int(self.api.inspect_image(ref).get("Size", 0))

    def tag(self, image: str, ref: str) -> None:
        """Give an image (name or id) a further name, e.g. its name in a registry."""
        repository, tag = split_ref(ref)
        with mapped(f"Docker could not tag {image} as {ref}"):
            self.api.tag(image, repository, tag, force=True)

    def remove_image(self, ref: str) -> None:
        """Remove a name; the image itself goes only when no other name refers to it. A missing name is fine."""
        with mapped(f"Docker could not remove {ref}", missing_ok=True):
            self.api.remove_image(ref, noprune=True)

    def build(
        self,
        context: bytes,
        *,
        tag: str,
        target: str,
        labels: dict[str, str],
        on_line: LineSink,
        secret_args: dict[str, str] | None = None,
        nocache: bool = False,
    ) -> str:
        """Build from an in-memory tar context, streaming each output line; returns the image id. `nocache`: every
        step again, nothing from the layer cache (a cold build, for benchmarks). `secret_args`: build arguments that
        hold a login (images.INDEX_LOGIN_ARG: Docker keeps it out of the image's history); their values, and the
        login of any URL, are masked in every line and message that leaves here."""
        secrets = list((secret_args or {}).values())

        def shown(text: str) -> str:
            return redact(text, secrets)

        tail: deque[str] = deque(maxlen=200)  # pip's reason may come long before its last line
        step = ""
        whole = WholeLines(shown)

        def emit(found: list[str]) -> None:
            nonlocal step
            for line in found:
                if line.startswith("Step "):
                    instruction = line.split(" : ", 1)[-1]
                    if len(instruction) > 70:
                        instruction = instruction[:69] + "…"
                    step = line.split(" : ", 1)[0].replace("Step ", "step ") + f" ({instruction})"
                tail.append(line)
                on_line(line)

        def failed(explanation: str) -> RasaGpuError:
            return BuildError(f"image build failed: {shown(explanation)}", details=list(tail))

        with mapped(failed):
            stream = self.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                target=target,
                labels=labels,
                buildargs=dict(secret_args or {}),
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=False,
                decode=True,
            )
            for event in stream:
                message = event_error(event)
                if message is not None:
                    emit(whole.rest())
                    last = shown(message.strip().splitlines()[-1])
                    cause = build_cause(list(tail))
                    if cause and "returned a non-zero code" in last:
                        last = f"{cause} (exit code {last.rsplit(': ', 1)[-1]})"
                    raise BuildError(
                        f"image build failed at {step or 'the first step'}: {last}", details=list(tail)[-20:]
                    )
                emit(whole.feed(str(event.get("stream", ""))))
            emit(whole.rest())
        image_id = self.image_id(tag)
        if image_id is None:
            raise BuildError(f"image build finished but {tag} is missing", details=list(tail))
        return image_id

    def import_rootfs(self, tar_path: Path, ref: str, changes: list[str]) -> str:
        repository, tag = split_ref(ref)
        with mapped(f"docker import of {ref} failed"):
            self.api.import_image_from_file(str(tar_path), repository=repository, tag=tag, changes=changes)
        image_id = self.image_id(ref)
        if image_id is None:
            raise RasaGpuError(f"docker import of {ref} finished but the image is missing")
        return image_id


def split_ref(ref: str) -> tuple[str, str]:
    """repository and tag of `host:port/name:tag` (the last ':' after the last '/' starts the tag)."""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = ref.rpartition(":")
        return repository, tag
    return ref, "latest"


def event_error(event: dict[str, Any]) -> str | None:
    """The error message of a build, pull or push stream event, or None."""
    if "error" not in event and "errorDetail" not in event:
        return None
    return str(event.get("error") or (event.get("errorDetail") or {}).get("message", ""))


class WholeLines:
    """A build's stream as whole lines, each passed through `shown` (the masking of logins): Docker hands on a
    tool's output in the pieces it was written in (uv writes one line in several), and a login split across two
    pieces would be masked in neither."""

    def __init__(self, shown: Callable[[str], str] = lambda text: text) -> None:
        self.shown, self.pending = shown, ""

    def feed(self, text: str) -> list[str]:
        parts = re.split(r"\r\n|\r|\n", self.pending + text)
        self.pending = parts.pop()
        return [self.shown(part) for part in parts if part.strip()]

    def rest(self) -> list[str]:
        """What is left at the end of the stream (a last line without its newline)."""
        rest, self.pending = self.pending, ""
        return [self.shown(rest)] if rest.strip() else []


_ANSI = re.compile(r"\x1b\[[0-9;]*m|\[(?:0|9[0-9])m")
#: pip's and uv's lines that say why an install failed, best first.
_PIP_REASONS = (
    "No matching distribution found for",
    "ResolutionImpossible",
    "THESE PACKAGES DO NOT MATCH THE HASHES",
    "Could not find a version that satisfies",
    "Cannot install",
    "Hashes are required",
)


def build_cause(lines: list[str]) -> str | None:
    """The reason a build step failed, from its output: pip's own line (with the package whose build needed it,
    when a build dependency was missing), uv's error with its last cause, or the last line of a Python traceback;
    None when the output says nothing that looks like one."""
    text = [_ANSI.sub("", line).strip() for line in lines]
    text = [line for line in text if line]
    if "The conflict is caused by:" in text:  # pip's resolver names each side on a line of its own
        sides = list(itertools.takewhile(_a_side, text[text.index("The conflict is caused by:") + 1 :]))
        if sides:
            return "conflicting requirements: " + "; ".join(sides)
    for reason in _PIP_REASONS:
        found = next((line for line in text if reason in line), None)
        if found is not None:
            found = found.removeprefix("ERROR: ").removeprefix("error: ")
            if any("install build dependencies did not run successfully" in line for line in text):
                building = [
                    ln.split()[1] for ln in text if ln.startswith("Collecting ") and len(ln.split()) > 1
                ]
                if building:
                    found += f" (needed to build {building[-1]})"
            return found
    uv_error = next(
        (i for i, ln in enumerate(text) if ln.startswith("error: ") and "subprocess-exited" not in ln), None
    )
    if uv_error is not None:
        causes = [ln.removeprefix("cause: ") for ln in text[uv_error + 1 :] if ln.startswith("cause: ")]
        first = text[uv_error].removeprefix("error: ")
        return f"{first}: {causes[-1]}" if causes else first
    exception = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|NotFound)\b.*:")
    found = next((line for line in reversed(text) if exception.match(line)), None)
    return found


def _a_side(line: str) -> bool:
    return line.startswith("The user requested") or " depends on " in line
