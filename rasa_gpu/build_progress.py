"""Turn an image build's raw lines (Docker's legacy builder, pip, uv; debootstrap for a base image) into the few
events a person can follow: which image, which stage, how far the downloads are, how long each stage took.

Parsing only: the lines come from engine.build (or base_image) through build_log.recording, which also keeps them
all in a file; the CLI draws the events. A line that no rule knows is kept in the log and shown with -v, nothing
more, so a new step in a Dockerfile shows as "step N/M" instead of breaking anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .events import BuildNote, BuildProgress, BuildStage, BuildStageDone, BuildStarted, Event
from .images import CANDIDATE_REPO

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: The line images and base_image say before each build: "building NAME (what it is)".
_HEADER = re.compile(r"^building (\S+) \((.+)\)$")

# ---- Docker's legacy builder ----------------------------------------------------------------------------------------
_STEP = re.compile(r"^Step (\d+)/(\d+) : (\w+)\s*(.*)$")
_RUNNING = " ---> Running in "
_LAYER = re.compile(r"^ ---> [0-9a-f]{12}$")
_TAGGED = re.compile(r"^Successfully tagged (\S+)$")
#: What a pull or push says per layer ("0a1b2c3d4e5f: Pull complete") and about its bytes ("pulled 12 MB of ...").
_LAYER_PROGRESS = re.compile(r"^(?:[0-9a-f]{12}: |(?:pulled|pushed) [\d,]+ MB of )")
#: The sentence the smoke check ends with (images.checked_build): what follows its colon is how it went.
_SMOKE = "training a tiny bot in the new image"
CHECK_TITLE = "checking the new image: training a tiny bot in it"
_TOOK = re.compile(r"(?: in|,)? \(?\d+ s\)?$")

# ---- pip and uv -----------------------------------------------------------------------------------------------------
_PIP_COLLECTING = re.compile(r"^Collecting (\S+)")
_PIP_DOWNLOADING = re.compile(r"^\s*Downloading (\S+) \(([\d.]+) (kB|MB|GB)\)")
_PIP_INSTALLING = re.compile(r"^Installing collected packages: (.*)$")
_PIP_INSTALLED = re.compile(r"^Successfully installed (.*)$")
_UV_RESOLVED = re.compile(r"^Resolved (\d+) packages? in ")
_UV_DOWNLOADING = re.compile(r"^\s*Downloading (\S+) \(([\d.]+)(KiB|MiB|GiB)\)")
_UV_DOWNLOADED = re.compile(r"^\s*Downloaded (\S+)$")
_UV_PREPARED = re.compile(r"^Prepared (\d+) packages? in ")
_UV_INSTALLED = re.compile(r"^Installed (\d+) packages? in ")
_UV_COMPILED = re.compile(r"^Bytecode compiled (\d+) files? in ")
_UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
#: A wheel's or sdist's file name: its project and version ("uv-0.13.9-py3-none-manylinux….whl" → "uv 0.13.9").
_DIST_FILE = re.compile(r"^([A-Za-z0-9_.]+?)-(\d[^-]*?)(?:-|\.tar\.gz$|\.zip$)")


class LineParser(Protocol):
    def feed(self, line: str) -> list[Event]: ...

    def close(self) -> list[Event]: ...


def _size(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def _dist(file_or_url: str) -> str:
    name = file_or_url.rsplit("/", 1)[-1]
    m = _DIST_FILE.match(name)
    return f"{m.group(1)} {m.group(2)}" if m else name


@dataclass
class Installs:
    """What pip and uv said in one step: packages resolved, downloads announced and done, packages installed."""

    tool: str = ""
    resolved: int | None = None
    collected: int = 0
    installed: int | None = None
    downloads: dict[str, float] = field(default_factory=dict)  # name → bytes, as announced
    downloaded: set[str] = field(default_factory=set)
    doing: str = ""

    def feed(self, line: str) -> bool:
        """Take a line; whether it told anything new."""
        if m := _UV_RESOLVED.match(line):  # uv takes over (pip installed uv itself): its count is the step's
            self.tool, self.resolved, self.installed, self.doing = "uv", int(m.group(1)), None, "resolved"
        elif m := _UV_DOWNLOADING.match(line):
            self.tool = "uv"
            self.downloads[m.group(1)] = float(m.group(2)) * _UNITS[m.group(3)]
            self.doing = f"downloading {m.group(1)} ({m.group(2)} {m.group(3)})"
        elif m := _UV_DOWNLOADED.match(line):
            self.downloaded.add(m.group(1))
            self.doing = f"downloaded {m.group(1)}"
        elif m := _UV_PREPARED.match(line):
            self.doing = f"unpacked {m.group(1)} packages"
        elif m := _UV_INSTALLED.match(line):
            self.installed, self.doing = int(m.group(1)), "compiling the bytecode"
        elif m := _UV_COMPILED.match(line):
            self.doing = f"compiled {m.group(1)} files"
        elif m := _PIP_COLLECTING.match(line):
            self.tool = self.tool or "pip"
            self.collected += 1
            self.doing = f"collecting {m.group(1)}"
        elif m := _PIP_DOWNLOADING.match(line):
            self.tool = self.tool or "pip"
            name = _dist(m.group(1))
            self.downloads[name] = float(m.group(2)) * _UNITS[m.group(3)]
            self.downloaded.add(name)  # pip says it as it starts, and says nothing when done
            self.doing = f"downloading {name} ({m.group(2)} {m.group(3)})"
        elif m := _PIP_INSTALLING.match(line):
            count = len([p for p in m.group(1).split(",") if p.strip()])
            self.doing = f"installing {count} package{'s' * (count != 1)}"
        elif m := _PIP_INSTALLED.match(line):
            if self.tool == "pip":  # uv's own install (pip installs uv first) does not count as the step's
                self.installed = len(m.group(1).split())
        else:
            return False
        return True

    @property
    def packages(self) -> int | None:
        return self.installed if self.installed is not None else self.resolved

    def _bytes(self) -> tuple[float, float]:
        done = sum(size for name, size in self.downloads.items() if name in self.downloaded)
        return done, sum(self.downloads.values())

    def detail(self) -> str:
        """For the live line: "uv: 161 packages · downloading tensorflow (560.2 MiB) · 12/40 downloads, 1.1 of 1.6
        GB"."""
        parts = []
        if self.tool:
            count = self.packages or (self.collected if self.tool == "pip" else None)
            parts.append(f"{self.tool}: {count} package{'s' * (count != 1)}" if count else self.tool)
        if self.doing:
            parts.append(self.doing)
        if self.tool == "uv" and self.downloads:
            done, total = self._bytes()
            parts.append(
                f"{len(self.downloaded & set(self.downloads))}/{len(self.downloads)} downloads, "
                f"{_size(done)} of {_size(total)}"
            )
        return " · ".join(parts)

    def summary(self) -> str:
        """For the stage's last line: "uv, 161 packages, 1.6 GB downloaded" (uv names only its larger files)."""
        parts = [self.tool] if self.tool else []
        if self.packages is not None:
            parts.append(f"{self.packages} package{'s' * (self.packages != 1)}")
        total = self._bytes()[1]
        if total:
            parts.append(f"{_size(total)} downloaded")
        return ", ".join(parts)


def step_title(instruction: str, arguments: str, step: str) -> str:
    """A RUN step in words, from what it runs (the Dockerfiles of images.py); another step as Docker numbers it."""
    text = arguments
    if "rasa-gpu-cuda.conf" in text:
        return "installing NVIDIA's CUDA and cuDNN wheels"
    if m := re.search(r"installing the locked set of (.+?) for Python", text):
        return f"installing the locked set of {m.group(1)}"
    if "bot-requirements.txt" in text and "pip install" in text:
        return "installing the bot's requirements"
    if "bot-constraints.txt" in text:
        return "holding the locked set fixed for the bot's requirements"
    if "actions-requirements.txt" in text and "pip install" in text:
        return "installing the action server's requirements"
    if m := re.search(r'"(rasa(?:-pro)?)==([\w.]+)"', text):
        return f"installing {m.group(1)} {m.group(2)} (pip resolves today's versions)"
    if m := re.search(r"rasa[-_]sdk[^\s\"']*", text):
        return f"installing {m.group(0).replace('_', '-')}"
    if "extra-ca.pem" in text:
        return "trusting the extra CA certificates"
    if m := re.search(r'"pip==([\w.]+)"', text):
        return f"installing pip {m.group(1)}"
    if m := re.search(r'"(notebook|jupyterlab)==([\w.]+)"', text):
        return f"installing {m.group(1)} {m.group(2)}"
    shown = " ".join(arguments.split())
    return f"{step} ({instruction} {shown[:48] + '…' if len(shown) > 49 else shown})"


@dataclass
class _Stage:
    title: str
    started: float
    installs: Installs = field(default_factory=Installs)
    summary: str = ""


class DockerBuildParser:
    """Docker's legacy builder's stream (its "Step N/M :" lines, pip's and uv's output inside each step) and the
    sentences rasa-gpu says between builds. RUN steps that run are stages; cached ones and the quick ENV, COPY,
    LABEL steps are not. After a training image is built as a candidate, its check is a stage too."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.in_build = False
        self.step: tuple[str, str, str] | None = None  # ("step 7/17", instruction, arguments)
        self.stage: _Stage | None = None
        self.checking: _Stage | None = None
        self.docker_stage = ""

    def feed(self, line: str) -> list[Event]:
        plain = _ANSI.sub("", line).rstrip()
        if m := _STEP.match(plain):
            events = self._close()
            self.in_build = True
            self.step = (f"step {m.group(1)}/{m.group(2)}", m.group(3).upper(), m.group(4))
            if self.step[1] == "FROM" and (stage := re.search(r"\s[Aa][Ss]\s+(\S+)$", m.group(4))):
                self.docker_stage = stage.group(1)
            return events
        if not self.in_build:
            return self._between(plain)
        if plain.startswith(_RUNNING) and self.step is not None and self.step[1] == "RUN":
            step, instruction, arguments = self.step
            title = step_title(instruction, arguments, step)
            self.stage = _Stage(title, self.clock())
            return [BuildStage(title, f"{step}, stage {self.docker_stage}" if self.docker_stage else step)]
        # A step went well when Docker names the layer it made (after "Removing intermediate container", which a
        # failed step prints too).
        if _LAYER.match(plain) or plain.startswith("Successfully built "):
            return self._close()
        if m := _TAGGED.match(plain):
            events = self._close()
            self.in_build, self.step, self.docker_stage = False, None, ""
            if m.group(1).startswith(f"{CANDIDATE_REPO}:"):  # a training image: images.checked_build tries it
                self.checking = _Stage(CHECK_TITLE, self.clock())
                events.append(BuildStage(CHECK_TITLE))
            return events
        if self.stage is None:
            return []
        if plain.startswith("rasa-gpu: "):  # the Dockerfile's own echo: news unless the title says it already
            said = plain.removeprefix("rasa-gpu: ")
            return [] if said.startswith(self.stage.title) else [BuildNote(said)]
        if self.stage.installs.feed(plain):
            return [BuildProgress(self.stage.installs.detail())]
        return []

    def _between(self, plain: str) -> list[Event]:
        """Outside Docker's stream: a build's header, how the check went, a pull's progress, other sentences."""
        events: list[Event] = []
        if self.checking is not None:
            check, self.checking = self.checking, None
            if plain.startswith(_SMOKE) and ": " in plain:
                said = _TOOK.sub("", plain.split(": ", 1)[1])  # the stage's own time is shown
                return [BuildStageDone(CHECK_TITLE, said, self.clock() - check.started)]
            events.append(BuildStageDone(CHECK_TITLE, "", self.clock() - check.started))
        if m := _HEADER.match(plain):
            return [*events, BuildStarted(m.group(1), m.group(2))]
        if _LAYER_PROGRESS.match(plain):
            return [*events, BuildProgress(plain)]
        return [*events, BuildNote(plain)] if plain.strip() else events

    def _close(self) -> list[Event]:
        stage, self.stage = self.stage, None
        if stage is None:
            return []
        return [BuildStageDone(stage.title, stage.installs.summary(), self.clock() - stage.started)]

    def close(self) -> list[Event]:
        """The build ended well: the stages still open are done."""
        events = self._close()
        if self.checking is not None:
            events.append(BuildStageDone(CHECK_TITLE, "", self.clock() - self.checking.started))
            self.checking = None
        return events


# ---- debootstrap (rasa-gpu base-image) -------------------------------------------------------------------------------

_DEB_LISTS = re.compile(
    r"^I: (?:Retrieving (?:InRelease|Release|Packages)\b|Checking Release|Valid Release|Resolving dependencies|"
    r"Checking component|Target architecture)"
)
_DEB_RETRIEVING = re.compile(r"^I: Retrieving (\S+)")
_DEB_EXTRACTING = re.compile(r"^I: Extracting (\S+?)\.\.\.$")
_DEB_PHASE = re.compile(r"^I: ((?:Unpacking|Configuring) (?:required packages|the base system))\.\.\.$")
_DEB_PACKAGE = re.compile(r"^I: (Unpacking|Configuring) (\S+?)\.\.\.$")
_DEB_DONE = "I: Base system installed successfully."
_DEB_IMPORTING = re.compile(r"^importing (\S+)$")


class DebootstrapParser:
    """debootstrap's "I:" lines as stages: the package lists, downloading N packages, extracting, unpacking and
    configuring them; then packing the tree (tar) and `docker import`. debootstrap never says how many packages it
    will fetch, so the downloads count up; the later stages count against what was downloaded."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.stage: _Stage | None = None
        self.count = 0
        self.downloaded = 0

    def _begin(self, title: str) -> list[Event]:
        if self.stage is not None and self.stage.title == title:
            return []
        events = self._close()
        self.stage, self.count = _Stage(title, self.clock()), 0
        return [*events, BuildStage(title)]

    def _counted(self, title: str, name: str, total: int | None = None) -> list[Event]:
        events = self._begin(title)
        self.count += 1
        assert self.stage is not None
        self.stage.summary = f"{self.count} packages"
        of = f" of {total}" if total and total >= self.count else ""
        return [*events, BuildProgress(f"{self.count}{of} packages ({name})")]

    def feed(self, line: str) -> list[Event]:
        plain = _ANSI.sub("", line).rstrip()
        if m := _HEADER.match(plain):
            return [*self._close(), BuildStarted(m.group(1), m.group(2))]
        if _DEB_LISTS.match(plain):
            return self._begin("fetching the package lists")
        if m := _DEB_RETRIEVING.match(plain):
            self.downloaded += 1
            return self._counted("downloading packages", m.group(1))
        if m := _DEB_EXTRACTING.match(plain):
            return self._counted("extracting the required packages", m.group(1), self.downloaded)
        if m := _DEB_PHASE.match(plain):
            return self._begin(m.group(1)[0].lower() + m.group(1)[1:])
        if m := _DEB_PACKAGE.match(plain):
            title = self.stage.title if self.stage is not None else f"{m.group(1).lower()} packages"
            return self._counted(title, m.group(2), self.downloaded)
        if plain == _DEB_DONE:
            return self._begin("packing the root filesystem (tar)")
        if m := _DEB_IMPORTING.match(plain):
            return self._begin(f"importing it into Docker as {m.group(1)}")
        if plain.startswith(("E: ", "W: ")) or (not plain.startswith("I: ") and plain.strip()):
            return [BuildNote(plain)]
        return []

    def _close(self) -> list[Event]:
        stage, self.stage = self.stage, None
        if stage is None:
            return []
        return [BuildStageDone(stage.title, stage.summary, self.clock() - stage.started)]

    def close(self) -> list[Event]:
        return self._close()
