"""A bot's requirements, read the way pip reads them and split the way the images need them: the one owner of this
rule (the training image, the action server's image, the Rasa pin and the spaCy model check all ask here).

What is read:

- the training image's packages: ``requirements.txt`` when the bot has one, else ``pyproject.toml``'s main
  dependencies (``[project] dependencies`` or ``[tool.poetry.dependencies]``);
- the action server's packages: every file of ACTIONS_FILES that exists (RasaHQ's demos and Rasa's docs keep them
  in ``actions/requirements-actions.txt``), plus pyproject's ``actions`` extra (``[project.optional-dependencies]``)
  or poetry group (``[tool.poetry.group.actions.dependencies]``); other groups (dev, test, docs) are not installed.

A requirements file may hold what pip reads in one: requirement lines (names, versions, extras, environment markers,
URLs, a path to a wheel or an sdist in the bot folder), ``-r``/``--requirement`` and ``-c``/``--constraint``
includes (relative to the including file, inside the bot folder, no cycles), ``-i``/``--index-url`` and
``--extra-index-url``, comments and line continuations. ``-r`` of an action server's file (as ``-r
actions/requirements-actions.txt`` in the demos' requirements.txt) is that server's, not the training image's.
Everything else is refused in one line that names the file, the line and what to do. Rasa's own line picks the
release (settings.resolve_rasa) and its extras (``rasa[spacy]``) are installed from the release's own metadata;
``rasa-sdk`` lines pin the action server's rasa-sdk; ``tensorflow`` is the matrix's. Nothing here prints.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .errors import RequirementsError
from .redact import redact

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
#: pip's own default index: naming it is the same as naming none (so it does not change the shared Rasa stage).
_PYPI = ("https://pypi.org/simple", "https://pypi.python.org/simple")
_VCS = ("git+", "hg+", "svn+", "bzr+")
#: pip's comment rule (pip/_internal/req/req_file.py): a '#' at the start or after white space starts a comment.
_COMMENT = re.compile(r"(^|\s+)#.*$")
#: pip expands ${NAME} from the environment of the pip that reads the file.
_ENV_VAR = re.compile(r"\$\{[A-Z0-9_]+\}")

#: The options pip reads in a requirements file that an image build cannot honour, and what to do instead.
_REFUSED = {
    (
        "-e",
        "--editable",
    ): "name a wheel or an sdist in the bot folder instead (`pip wheel PATH -w wheels/` builds "
    "one), or the package's name on your index",
    ("-f", "--find-links"): "name each archive itself (./wheels/NAME-VERSION-….whl) or give an index with -i",
    (
        "--no-index",
    ): "remove it: packages come from the index (-i or --pip-index-url) and from the archives the file names",
    ("--pre",): "pin the pre-release itself (name==1.0rc1): pip then takes it",
    ("--trusted-host",): "use the index over https (a private CA goes in with --ca-cert)",
    (
        "--no-binary",
        "--only-binary",
        "--prefer-binary",
    ): "remove it: the image's pip takes wheels where they exist",
    (
        "--hash",
        "--require-hashes",
    ): "remove the hashes: a bot's packages are held to its Rasa release's locked set "
    "(installed with hashes) instead",
    ("--global-option", "--config-settings", "--use-feature"): "remove it",
}
_LOGIN_ADVICE = "put the login in --pip-index-url or RASA_GPU_PIP_INDEX_URL (kept out of images) and name the package plainly"


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


def read(root: Path) -> BotRequirements:
    """Everything the bot's requirements say, checked; a one-line RequirementsError naming the file and the line
    otherwise."""
    reader = _Reader(root)
    training_file = root / TRAINING_FILE
    has_file = training_file.is_file() or training_file.is_symlink()
    pyproject = _pyproject(root, rasa_only=has_file)  # with a requirements.txt, pyproject's Rasa line only
    if has_file:
        reader.read_file(training_file, "training", constraint=False)
        source = TRAINING_FILE
    else:
        reader.add_lines(pyproject.main, "training")
        source = PYPROJECT
    for name in ACTIONS_FILES:
        path = root / name
        if path.is_file() or path.is_symlink():
            reader.read_file(path, "actions", constraint=False)
    reader.add_lines(pyproject.actions, "actions")
    rasa = reader.rasa
    if rasa is None and source == TRAINING_FILE:
        rasa = _Reader(root).add_lines(pyproject.main, "training").rasa  # the Rasa pin: pyproject's next
    return BotRequirements(
        training=reader.set("training"),
        actions=reader.set("actions"),
        rasa=rasa,
        rasa_sdk=tuple(reader.rasa_sdk),
        index_url=reader.index_url,
        index_where=reader.index_where,
        extra_index_urls=tuple(dict.fromkeys(reader.extra_index_urls)),
        training_source=source,
    )


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


# ---- reading files ---------------------------------------------------------------------------------------------------


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each line pip reads: a line ending in a backslash joined with the next (not
    after a comment), comments and blank lines dropped (pip's join_lines and ignore_comments)."""
    joined: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.endswith("\\") or _COMMENT.match(line):
            if _COMMENT.match(line):
                line = " " + line  # a comment line ends a continuation and stays a comment
            if parts:
                joined.append((first, "".join(parts) + line))
                parts = []
            else:
                joined.append((number, line))
        else:
            if not parts:
                first = number
            parts.append(line.strip("\\"))
    if parts:
        joined.append((first, "".join(parts)))
    return [(n, stripped) for n, line in joined if (stripped := _COMMENT.sub("", line).strip())]


@dataclass
class _Reader:
    root: Path
    #: Requirements and constraints per image ("training", "actions") and kind (True: constraints).
    found: dict[tuple[str, bool], list[Requirement]] = field(default_factory=dict)
    rasa: RasaPin | None = None
    rasa_sdk: list[Requirement] = field(default_factory=list)
    index_url: str | None = None
    index_where: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    #: The files being read, outermost first (an include of one of them is a cycle).
    _stack: list[Path] = field(default_factory=list)

    def set(self, kind: str) -> RequirementSet:
        return RequirementSet(
            tuple(_unique(self.found.get((kind, False), []))),
            tuple(_unique(self.found.get((kind, True), []))),
        )

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def read_file(
        self, path: Path, kind: str, *, constraint: bool, where: str = "", written: str = ""
    ) -> None:
        """Read a requirements file of the bot; `where` and `written` say which line included it and how."""
        shown = self.relative(path)
        real = self._inside(path, where, written or shown)
        if real in self._stack:
            chain = " → ".join([*(self.relative(p) for p in self._stack), self.relative(real)])
            raise RequirementsError(
                f"{where}: {written} includes a file that is already being read ({chain}); remove one of the includes"
            )
        try:  # utf-8-sig: a byte order mark (Windows editors) is no part of the first line
            text = real.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RequirementsError(
                f"{shown} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset {exc.start}); "
                "save it as UTF-8"
            ) from None
        except OSError as exc:
            raise RequirementsError(f"{shown} cannot be read: {exc.strerror or exc}") from None
        self._stack.append(real)
        try:
            for number, line in logical_lines(text):
                self._line(line, f"{shown}:{number}", path, kind, constraint)
        finally:
            self._stack.pop()

    def add_lines(self, lines: list[tuple[str, str]], kind: str) -> _Reader:
        """pyproject's dependencies: (where, PEP 508 line) pairs, requirement lines only."""
        for where, line in lines:
            if line.lstrip().startswith("-"):
                raise RequirementsError(
                    f"{where}: '{redact(line)}' is not a requirement; write a PEP 508 requirement"
                )
            self._requirement(line.strip(), where, kind, constraint=False)
        return self

    def _line(self, line: str, where: str, path: Path, kind: str, constraint: bool) -> None:
        shown = redact(line)
        if _ENV_VAR.search(line):
            raise RequirementsError(
                f"{where}: '{shown}' uses an environment variable, which the image build does not have; write the "
                "value itself (an index's login goes in --pip-index-url or RASA_GPU_PIP_INDEX_URL, which rasa-gpu "
                "keeps out of images)"
            )
        args, options = _split_options(line)
        if args and options:
            option = options.split()[0].split("=")[0]
            raise RequirementsError(
                f"{where}: '{option}' on '{shown}' is not supported in an image build; {_advice(option)}"
            )
        if args:
            self._requirement(args, where, kind, constraint=constraint)
            return
        try:
            tokens = shlex.split(options)
        except ValueError:
            raise RequirementsError(f"{where}: cannot read the line '{shown}' (unbalanced quotes)") from None
        while tokens:
            option, value = _take_option(tokens, where, shown)
            if option in ("-r", "--requirement", "-c", "--constraint"):
                self._include(option, value, where, path, kind)
            elif option in ("-i", "--index-url"):
                self._index(value, where)
            else:  # --extra-index-url
                self._extra_index(value, where)

    def _include(self, option: str, value: str, where: str, including: Path, kind: str) -> None:
        written = f"{option} {value}"
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
            raise RequirementsError(
                f"{where}: '{redact(written)}' includes a URL; copy the file into the bot folder and include it by "
                "its path"
            )
        target = Path(
            os.path.normpath(including.parent / value)
        )  # relative to the including file, as pip reads it
        if kind == "training" and self.relative(self._inside(target, where, written)) in ACTIONS_FILES:
            return  # the action server's own file: read for its image (see read)
        self.read_file(
            target, kind, constraint=option in ("-c", "--constraint"), where=where, written=written
        )

    def _inside(self, path: Path, where: str, written: str) -> Path:
        """The real file at `path`, which must be a file inside the bot folder (a link out of it is refused);
        `where` is the line that names it (none for the bot's own files), `written` how it names it."""
        prefix = f"{where}: " if where else ""
        real = Path(os.path.realpath(path))
        if real != self.root and self.root not in real.parents:
            if (
                self.root in path.parents
            ):  # inside by its name: a link (the file or a folder on the way) leads out
                link = os.readlink(path) if path.is_symlink() else str(real)
                raise RequirementsError(
                    f"{prefix}{self.relative(path)} is a link to {link}, outside the bot folder; rasa-gpu builds only "
                    "from files inside the bot: copy the file into the bot instead of linking it"
                )
            raise RequirementsError(
                f"{prefix}{written} is outside the bot folder; rasa-gpu builds only from files inside the bot: copy "
                "the file into the bot"
            )
        if not real.is_file():
            problem = "is not a file" if real.exists() else "does not exist"
            subject = f"{where}: {written}: {self.relative(path)}" if where else self.relative(path)
            raise RequirementsError(f"{subject} {problem}; fix the path")
        return real

    def _index(self, value: str, where: str) -> None:
        url = _index_url(value, f"{where}: --index-url")
        if url.rstrip("/") in _PYPI:
            return
        if self.index_url is not None and self.index_url != url:
            raise RequirementsError(
                f"{where}: names the index {redact(url)}, but {self.index_where} names {redact(self.index_url)}; a "
                "bot builds from one index: keep one -i (other indexes go in --extra-index-url)"
            )
        if self.index_url is None:
            self.index_url, self.index_where = url, where

    def _extra_index(self, value: str, where: str) -> None:
        from .images import index_secret_args

        url = _index_url(value, f"{where}: --extra-index-url")
        if index_secret_args(url):
            raise RequirementsError(
                f"{where}: the extra index {redact(url)} carries a login, which would be in the image for anyone who "
                "pulls it; give that index with its login through --pip-index-url or RASA_GPU_PIP_INDEX_URL "
                "(kept out of images)"
            )
        self.extra_index_urls.append(url)

    def _requirement(self, text: str, where: str, kind: str, *, constraint: bool) -> None:
        found = _parse(text, where, self.root, constraint=constraint)
        if found is None:
            return
        requirement, extras, specifier, marker = found
        name = requirement.name
        if name in RASA_PACKAGES and not constraint:
            if kind == "training" and self.rasa is None:
                self.rasa = RasaPin(name, specifier, _file_of(where), extras, marker)
            if kind == "training":
                return
        if name == "rasa-sdk" and not constraint:
            self.rasa_sdk.append(requirement)
            return
        if name == "tensorflow" and kind == "training" and not constraint:
            return  # the matrix's TensorFlow, which the Rasa release pins
        self.found.setdefault((kind, constraint), []).append(requirement)


def _index_url(value: str, subject: str) -> str:
    """An index URL that pip gets in the image (images.check_index_url's rule), or a RequirementsError."""
    from .errors import SettingsError
    from .images import check_index_url

    try:
        return check_index_url(value, subject)
    except SettingsError as exc:
        raise RequirementsError(exc.message) from None


def _file_of(where: str) -> str:
    """The file of a place, as the Rasa pin's messages name it: "requirements.txt", "pyproject.toml [tool.poetry]"."""
    if where.startswith(PYPROJECT):
        return f"{PYPROJECT} [tool.poetry]" if "[tool.poetry" in where else PYPROJECT
    return where.rsplit(":", 1)[0]


def _unique(requirements: list[Requirement]) -> list[Requirement]:
    """The first of each line (a file included twice adds nothing)."""
    seen: dict[str, Requirement] = {}
    for requirement in requirements:
        seen.setdefault(requirement.line, requirement)
    return list(seen.values())


def _split_options(line: str) -> tuple[str, str]:
    """pip's break_args_options: the requirement before the first word that starts with '-', the options after."""
    words = line.split(" ")
    for i, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:i]).strip(), " ".join(words[i:])
    return line, ""


_VALUE_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url")


def _take_option(tokens: list[str], where: str, shown: str) -> tuple[str, str]:
    """The first option of `tokens` and its value (removed from tokens), or a RequirementsError for one an image
    build does not honour."""
    token = tokens.pop(0)
    option, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
    if not option.startswith("--") and len(option) > 2:  # -rFILE
        option, value, eq = option[:2], option[2:], "="
    if option not in _VALUE_OPTIONS:
        raise RequirementsError(f"{where}: '{shown}' is not supported in an image build; {_advice(option)}")
    if not eq:
        if not tokens:
            what = "URL" if option in ("-i", "--index-url", "--extra-index-url") else "FILE"
            raise RequirementsError(f"{where}: '{shown}' gives {option} no value; write {option} {what}")
        value = tokens.pop(0)
    return option, value


def _advice(option: str) -> str:
    for options, advice in _REFUSED.items():
        if option in options:
            return advice
    return "remove it (rasa-gpu reads -r, -c, -i and --extra-index-url in a requirements file)"


# ---- one requirement ----------------------------------------------------------------------------------------------


def _parse(
    text: str, where: str, root: Path, *, constraint: bool
) -> tuple[Requirement, tuple[str, ...], str, str | None] | None:
    """A requirement line as (Requirement, extras, specifier, marker), or a RequirementsError saying what to write."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as Pep508

    shown = redact(text)
    head, _, marker_text = text.partition(";")
    head = head.strip()
    if head.startswith(_VCS) or re.match(r"^[A-Za-z0-9._-]+\s*@\s*(git|hg|svn|bzr)\+", text):
        raise RequirementsError(
            f"{where}: '{shown}' is installed from version control, which needs git in the image; build a wheel "
            "(`pip wheel URL -w wheels/`) and name it (./wheels/NAME-VERSION-….whl), or publish it on your index"
        )
    if head.lower().startswith(("http://", "https://")):
        return _bare_url(text, head, marker_text, where, constraint), (), "", None
    if head.lower().startswith("file:") or re.match(r"^[A-Za-z0-9._-]+\s*@\s*file:", text):
        raise RequirementsError(
            f"{where}: '{shown}' names a file: URL, which pip does not read relative to the bot; write the archive's "
            "path itself, relative to the bot folder (./wheels/NAME-VERSION-….whl)"
        )
    if (head.endswith(ARCHIVE_SUFFIXES) and "@" not in head) or head.startswith(("./", "../", "/", "~")):
        return _archive(head, marker_text, where, root, constraint), (), "", None
    try:
        parsed = Pep508(text)
    except InvalidRequirement as exc:
        raise RequirementsError(
            f"{where}: cannot read '{shown}' ({str(exc).splitlines()[0]}); write a PEP 508 requirement "
            "(name, versions, [extras], ; markers), a URL, or the path of a wheel or sdist in the bot folder"
        ) from None
    name = canonical(parsed.name)
    if parsed.url:
        scheme = urlsplit(parsed.url).scheme.lower()
        if scheme not in ("http", "https"):
            raise RequirementsError(
                f"{where}: '{shown}' has a URL pip cannot fetch in the build; use an https:// URL"
            )
        if "@" in urlsplit(parsed.url).netloc:
            raise RequirementsError(
                f"{where}: the URL of {parsed.name} carries a login, which would be in the image for anyone who pulls "
                f"it; {_LOGIN_ADVICE}"
            )
    if constraint and (parsed.extras or parsed.url):
        raise RequirementsError(
            f"{where}: the constraint '{shown}' names {'extras' if parsed.extras else 'a URL'}; a constraint names a "
            "package and its versions only (pip refuses more)"
        )
    marker = str(parsed.marker) if parsed.marker else None
    requirement = Requirement(text.strip(), where, name)
    return requirement, tuple(sorted(parsed.extras)), str(parsed.specifier), marker


def _bare_url(text: str, head: str, marker: str, where: str, constraint: bool) -> Requirement:
    """`https://host/pkg-1.0-py3-none-any.whl` or `https://host/archive.tar.gz#egg=pkg`: kept as written."""
    shown = redact(text)
    parts = urlsplit(head)
    if "@" in parts.netloc:
        raise RequirementsError(
            f"{where}: the URL '{shown}' carries a login, which would be in the image for anyone who pulls it; "
            f"{_LOGIN_ADVICE}"
        )
    if constraint:
        raise RequirementsError(f"{where}: the constraint '{shown}' is a URL; a constraint names a package and its "
                                "versions only")  # fmt: skip
    egg = re.search(r"(?:^|&)egg=([A-Za-z0-9._-]+)", parts.fragment)
    name = egg.group(1) if egg else _archive_name(unquote(PurePosixPath(parts.path).name))
    if name is None:
        raise RequirementsError(
            f"{where}: cannot tell the package of '{shown}' from its file name; add #egg=NAME to the URL, or write "
            "NAME @ URL"
        )
    return Requirement(text.strip(), where, canonical(name))


def _archive(path_text: str, marker: str, where: str, root: Path, constraint: bool) -> Requirement:
    """A wheel or sdist in the bot folder, named by its path relative to the bot (as pip reads it when run there):
    the line pip gets names its place in the image."""
    if constraint:
        raise RequirementsError(f"{where}: the constraint '{path_text}' is a file; a constraint names a package and "
                                "its versions only")  # fmt: skip
    if path_text.startswith(("/", "~")):
        raise RequirementsError(
            f"{where}: '{path_text}' is not relative to the bot folder; put the archive in the bot and write its path "
            "from there (./wheels/NAME-VERSION-….whl)"
        )
    path = root / path_text
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        link = f" (a link to {os.readlink(path)})" if path.is_symlink() else ""
        raise RequirementsError(
            f"{where}: {path_text}{link} is outside the bot folder; rasa-gpu builds only from files inside the bot: "
            "copy the archive into the bot"
        )
    if not real.is_file():
        raise RequirementsError(
            f"{where}: {path_text} {'is not a file' if real.exists() else 'does not exist'} in the bot folder; the path "
            "of an archive is relative to the bot folder (as pip reads it when run there)"
        )
    relative = real.relative_to(root).as_posix()
    name = _archive_name(real.name)
    if name is None or not real.name.endswith(ARCHIVE_SUFFIXES):
        raise RequirementsError(
            f"{where}: cannot tell the package of {path_text} from its file name; pip installs a wheel "
            "(NAME-VERSION-TAGS.whl) or an sdist (NAME-VERSION.tar.gz) from a path"
        )
    line = f"{canonical(name)} @ file://{IMAGE_FOLDER}/{quote(relative)}"
    if marker.strip():
        line += f" ; {marker.strip()}"
    return Requirement(line, where, canonical(name), archive=relative)


def _archive_name(filename: str) -> str | None:
    """The project name of a wheel or sdist file name, or None."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        for suffix in (".tar.bz2", ".tgz"):
            if filename.endswith(suffix):
                filename = filename[: -len(suffix)] + ".tar.gz"
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


# ---- pyproject.toml -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pyproject:
    main: list[tuple[str, str]] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)


def _pyproject(root: Path, *, rasa_only: bool = False) -> _Pyproject:
    """pyproject.toml's requirement lines, each with where it is: the main dependencies ([project] dependencies,
    [tool.poetry.dependencies] but python; only Rasa's own with `rasa_only`) and the action server's (the `actions`
    extra or poetry group)."""
    path = root / PYPROJECT
    if not path.is_file():
        return _Pyproject()
    from .settings import read_toml

    data = read_toml(path)
    project = _table(data, "project")
    poetry = _table(data, "tool", "poetry")
    main = _strings(project.get("dependencies"), "[project] dependencies")
    dependencies = _table(poetry, "dependencies")
    if rasa_only:
        main = [(where, line) for where, line in main if _name_of(line) in RASA_PACKAGES]
        dependencies = {name: v for name, v in dependencies.items() if canonical(name) in RASA_PACKAGES}
    actions = _strings(
        _table(project, "optional-dependencies").get(ACTIONS_GROUP),
        f"[project.optional-dependencies] {ACTIONS_GROUP}",
    )
    main += _poetry(dependencies, "[tool.poetry.dependencies]", root)
    actions += _poetry(
        _table(poetry, "group", ACTIONS_GROUP, "dependencies"),
        f"[tool.poetry.group.{ACTIONS_GROUP}.dependencies]",
        root,
    )
    return _Pyproject(main, actions)


def _name_of(line: str) -> str:
    """The canonical name a requirement line starts with ("" when it starts with none)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return canonical(found.group(1)) if found else ""


def _table(data: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequirementsError(f"{PYPROJECT} {where} must be a list of strings (PEP 508 requirements)")
    return [(f"{PYPROJECT} {where}", v) for v in value]


def _poetry(dependencies: dict[str, Any], table: str, root: Path) -> list[tuple[str, str]]:
    """Poetry's dependencies as PEP 508 lines: a version string (^1.2, ~1.2, 1.2.3, *, >=1,<2) or a table with
    version, extras, markers, optional (left out, as poetry leaves it out), url or path."""
    lines = []
    for name, value in dependencies.items():
        where = f"{PYPROJECT} {table} {name}"
        if name.lower() == "python":
            continue
        spec = value if isinstance(value, dict) else {"version": value}
        if not isinstance(spec.get("version", "*"), str):
            raise RequirementsError(f"{where}: a list of constraints is not supported here; give one version")
        unknown = sorted(set(spec) - {"version", "extras", "markers", "optional", "url", "path"})
        if unknown:
            raise RequirementsError(
                f"{where}: '{unknown[0]}' is not supported in an image build; give a version, extras, markers, a url, "
                "or the path of a wheel or sdist in the bot folder"
            )
        if spec.get("optional"):
            continue
        extras = spec.get("extras") or []
        if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
            raise RequirementsError(f"{where}: extras must be a list of strings")
        head = f"{name}[{','.join(extras)}]" if extras else name
        if "path" in spec:
            head = str(spec["path"])
            if not head.startswith(("./", "../")):
                head = f"./{head}"
        elif "url" in spec:
            head = f"{head} @ {spec['url']}"
        else:
            head += _poetry_to_pep440(str(spec.get("version", "*")))
        markers = spec.get("markers")
        lines.append((where, f"{head} ; {markers}" if isinstance(markers, str) and markers else head))
    return lines


_POETRY_CARET = re.compile(r"^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_POETRY_TILDE = re.compile(r"^~(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _poetry_to_pep440(spec: str) -> str:
    from .compat import is_exact_version

    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    if m := _POETRY_CARET.match(spec):
        major, minor, patch = (int(x) if x else 0 for x in m.groups())
        upper = f"{major + 1}.0.0" if major else f"0.{minor + 1}.0"
        return f">={major}.{minor}.{patch},<{upper}"
    if m := _POETRY_TILDE.match(spec):
        major, minor, patch = (int(x) if x else 0 for x in m.groups())
        return (
            f">={major}.{minor}.{patch},<{major}.{minor + 1}.0" if m.group(2) else f">={major},<{major + 1}"
        )
    if is_exact_version(spec):
        return f"=={spec}"
    return spec
