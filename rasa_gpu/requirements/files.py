"""Reading a requirements file the way pip does: continuations, comments, includes (-r, -c) and index options."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RequirementsError
from ..redact import redact
from .line import parse
from .sets import ACTIONS_FILES, PYPROJECT, RASA_PACKAGES, RasaPin, Requirement, RequirementSet

#: pip's own default index: naming it is the same as naming none (so it does not change the shared Rasa stage).
_PYPI = ("https://pypi.org/simple", "https://pypi.python.org/simple")
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
class Reader:
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

    def add_lines(self, lines: list[tuple[str, str]], kind: str) -> Reader:
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
        from ..images import index_secret_args

        url = _index_url(value, f"{where}: --extra-index-url")
        if index_secret_args(url):
            raise RequirementsError(
                f"{where}: the extra index {redact(url)} carries a login, which would be in the image for anyone who "
                "pulls it; give that index with its login through --pip-index-url or RASA_GPU_PIP_INDEX_URL "
                "(kept out of images)"
            )
        self.extra_index_urls.append(url)

    def _requirement(self, text: str, where: str, kind: str, *, constraint: bool) -> None:
        found = parse(text, where, self.root, constraint=constraint)
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
    from ..errors import SettingsError
    from ..images import check_index_url

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


def known_options() -> frozenset[str]:
    """Every option of a requirements file that reading one knows: those it reads and those it refuses."""
    return frozenset(_VALUE_OPTIONS) | {option for names in _REFUSED for option in names}
