"""What a bot's requirements come to: the requirement lines and sets per image, the Rasa pin, and the options pip
reads in a requirements file that an image build refuses."""

from __future__ import annotations

from dataclasses import dataclass

#: The training image's requirements file.
TRAINING_FILE = "requirements.txt"
PYPROJECT = "pyproject.toml"
#: The action server's requirements files, by their path in the bot folder: Rasa's docs and RasaHQ's demos name the
#: first; rasa init's layout the second; the Rasa 2 layout (a root actions.py) the others. Each one that exists is read.
ACTIONS_FILES = (
    "actions/requirements-actions.txt",
    "actions/requirements.txt",
    "requirements-actions.txt",
    "actions-requirements.txt",
    "actions_requirements.txt",
)
#: pyproject's extra (PEP 621) or poetry group that holds the action server's packages.
ACTIONS_GROUP = "actions"
#: The PyPI names of Rasa: Rasa Open Source and Rasa Pro.
RASA_PACKAGES = ("rasa", "rasa-pro")
#: Extras that the Rasa stage installs itself: Rasa Pro's nlu (images.py; MITIE left out on purpose, as it needs a
#: compiler and minutes: a bot that uses it names `mitie`).
STAGE_EXTRAS = {"rasa-pro": ("nlu",)}
#: What pip installs from a local path.
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
#: Where the archives a bot names go in an image's build context, and where they are in the image.
CONTEXT_FOLDER = "bot-files"
IMAGE_FOLDER = "/tmp/rasa-gpu/bot-files"


@dataclass(frozen=True)
class Requirement:
    """One requirement (or constraint) as pip reads it in the image, and where the bot says it."""

    line: str  # as pip gets it: a path to an archive is the archive's place in the image
    where: str  # "requirements.txt:3" or "pyproject.toml [project] dependencies"
    name: str  # canonical (PEP 503)
    #: A wheel or sdist in the bot folder (its path there), copied into the build context.
    archive: str | None = None


@dataclass(frozen=True)
class RequirementSet:
    """What one image installs: its requirements and its constraints."""

    requirements: tuple[Requirement, ...] = ()
    constraints: tuple[Requirement, ...] = ()

    def lines(self) -> tuple[str, ...]:
        return tuple(r.line for r in self.requirements)

    def constraint_lines(self) -> tuple[str, ...]:
        return tuple(r.line for r in self.constraints)

    def archives(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.archive for r in self.requirements if r.archive))

    def names(self) -> set[str]:
        return {r.name for r in self.requirements}


@dataclass(frozen=True)
class RasaPin:
    """The bot's own Rasa line: which package, which versions, its extras and marker, and where it was found."""

    package: str  # rasa or rasa-pro
    specifier: str  # PEP 440, "" when not pinned
    where: str  # the file, for messages ("requirements.txt", "pyproject.toml [tool.poetry]")
    extras: tuple[str, ...] = ()
    marker: str | None = None

    def extras_line(self, package: str, version: str) -> str | None:
        """`package[extras]==version` (with the marker) for the image that has that release; None without extras."""
        extras = [e for e in self.extras if e not in STAGE_EXTRAS.get(package, ())]
        if not extras:
            return None
        line = f"{package}[{','.join(extras)}]=={version}"
        return f"{line} ; {self.marker}" if self.marker else line


@dataclass(frozen=True)
class BotRequirements:
    training: RequirementSet = RequirementSet()
    actions: RequirementSet = RequirementSet()
    rasa: RasaPin | None = None
    #: The bot's rasa-sdk lines (any file): the action server installs them instead of the matrix's range.
    rasa_sdk: tuple[Requirement, ...] = ()
    #: -i/--index-url (pip's default PyPI left out) and where it was given.
    index_url: str | None = None
    index_where: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    #: The file that lists the training image's packages, for messages ("requirements.txt", "pyproject.toml").
    training_source: str = TRAINING_FILE

    def training_lines(self, package: str, version: str) -> tuple[str, ...]:
        """The lines of the training image's bot stage: Rasa's extras for the release `package`==`version` (pip then
        installs only what they add), then the bot's own requirements; --extra-index-url lines first."""
        extras = self.rasa.extras_line(package, version) if self.rasa else None
        lines = ((extras,) if extras else ()) + self.training.lines()
        return self._with_indexes(lines)

    def actions_lines(self) -> tuple[str, ...]:
        return self._with_indexes(self.actions.lines())

    def _with_indexes(self, lines: tuple[str, ...]) -> tuple[str, ...]:
        if not lines:
            return ()
        return tuple(f"--extra-index-url {url}" for url in self.extra_index_urls) + lines


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))
