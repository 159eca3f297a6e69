"""One requirement line: a name with versions, extras and marker, a URL, or an archive in the bot folder."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from ..errors import RequirementsError
from ..redact import redact
from .sets import ARCHIVE_SUFFIXES, IMAGE_FOLDER, Requirement, canonical

_VCS = ("git+", "hg+", "svn+", "bzr+")
_LOGIN_ADVICE = "put the login in --pip-index-url or RASA_GPU_PIP_INDEX_URL (kept out of images) and name the package plainly"


def parse(
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
