"""What a spec writes into a Dockerfile as it is (after FROM, into RUN lines), checked: image references, package
index URLs and the index's login, which reaches pip through a build argument that Docker keeps out of the image; and
the CA certificates given with --ca-cert."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

from ..errors import SettingsError
from ..redact import redact
from ..settings import check_image_name, check_registry

#: The build argument that brings the package index's login (the USER:PASSWORD of --pip-index-url) to pip. Docker
#: keeps its predefined proxy arguments out of an image's history, so that a proxy's login is never published, as long
#: as the Dockerfile declares no ARG for them; every other build argument a RUN sees is written into the history. pip
#: never uses an FTP proxy, so this one is free to carry the index's login the same way: it is in the environment of
#: each RUN while it runs, and in no layer, no history line and no cache key.
INDEX_LOGIN_ARG = "FTP_PROXY"

#: An image reference (github.com/distribution/reference): [HOST[:PORT]/]PATH[:TAG][@DIGEST]. The host and the path
#: follow the rules of check_registry and check_image_name.
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
IMAGE_FORM = "NAME[:TAG] or HOST[:PORT]/NAME[:TAG], e.g. python:3.10-slim or registry.example.com/team/base:1"
INDEX_FORM = "https://HOST/PATH, e.g. https://pypi.example.com/simple (a login goes in it: https://USER:PASSWORD@HOST/PATH)"


def check_dockerfile_values(
    base_image: str, pip_index_url: str | None, *, base_origin: str = "base_image"
) -> None:
    """The values that a spec writes into its Dockerfile as they are (after FROM, into RUN lines): a one-line
    SettingsError unless each is what it claims to be. resolve checks them first, naming where they were set."""
    check_image_reference(base_image, base_origin)
    if pip_index_url is not None:
        check_index_url(pip_index_url)


def check_image_reference(value: str, subject: str = "base_image") -> str:
    """An image reference for FROM: no space, no line break, nothing Docker's grammar does not allow (a newline would
    start a Dockerfile instruction of its own)."""
    text = str(value)
    name, at, digest = text.partition("@")
    path, colon, tag = name, "", ""
    if name.rfind(":") > name.rfind("/"):
        path, colon, tag = name.rpartition(":")
    first, slash, rest = path.partition("/")
    has_host = bool(slash) and ("." in first or ":" in first or first == "localhost")
    valid = (
        not _has_space(text)
        and (not colon or _TAG.match(tag) is not None)
        and (not at or _DIGEST.match(digest) is not None)
        and (not has_host or _passes(check_registry, first))
        and _passes(check_image_name, rest if has_host else path)
    )
    if not valid:
        raise SettingsError(f"{subject} {text!r} is not an image reference; use {IMAGE_FORM}")
    return text


def check_index_url(value: str, subject: str = "pip_index_url") -> str:
    """A package index URL for pip's --index-url: http or https, a host, no space or line break (it goes into RUN
    lines, quoted for the shell; its login goes through INDEX_LOGIN_ARG instead)."""
    text = str(value)
    scheme = text.partition("://")[0]
    host = _split_login(text)[1].partition("://")[2]
    if _has_space(text):
        problem = "holds a space or a line break"  # the URL is not shown: a password may be on either side
    elif scheme.lower() not in ("http", "https"):
        problem = "does not start with https:// or http://"
    elif not host or host[0] in "/?#":
        problem = "names no host"
    else:
        return text
    shown = "" if _has_space(text) else f" {redact(text)!r}"
    raise SettingsError(f"{subject}{shown} is not a package index URL: it {problem}; use {INDEX_FORM}")


def _has_space(text: str) -> bool:
    return not text or any(c.isspace() or not c.isprintable() for c in text)


def _passes(check: Callable[[str], str], value: str) -> bool:
    try:
        check(value)
    except SettingsError:
        return False
    return True


def _split_login(url: str) -> tuple[str | None, str]:
    """(USER:PASSWORD, the URL without it) of scheme://USER:PASSWORD@HOST/PATH; (None, url) without a login."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    login, at, host = rest[:end].rpartition("@")
    if not sep or not at:
        return None, url
    return login or None, f"{scheme}{sep}{host}{rest[end:]}"


def index_secret_args(url: str | None) -> dict[str, str]:
    """The build arguments that bring the index's login to pip: {INDEX_LOGIN_ARG: "USER:PASSWORD"}, or none."""
    login = _split_login(url)[0] if url else None
    return {INDEX_LOGIN_ARG: login} if login else {}


def pip_index(url: str | None) -> str:
    """pip's --index-url for the RUN lines, quoted for the shell (with a trailing space), or nothing. The login is not
    in it: the RUN's shell puts it back from INDEX_LOGIN_ARG, so the Dockerfile, the image's history and its tag hold
    the index's host and path only (a new host is a new image; a new password is not)."""
    if not url:
        return ""
    login, bare = _split_login(url)
    if login is None:
        return f"--index-url {shlex.quote(url)} "
    scheme, _, rest = bare.partition("://")
    return f'--index-url {scheme}://"${INDEX_LOGIN_ARG}"@{shlex.quote(rest)} '


def index_note(url: str | None) -> str:
    """A comment line for the Dockerfile's header when the index needs a login (nothing otherwise)."""
    if not index_secret_args(url):
        return ""
    return (
        f"\n# pip's index needs a login: it comes from the build argument {INDEX_LOGIN_ARG} (build with --build-arg "
        f"{INDEX_LOGIN_ARG}=USER:PASSWORD), which Docker keeps out of the image's history."
    )


def read_ca_certs(paths: list[str]) -> tuple[bytes, ...]:
    certs = []
    for path in paths:
        file = Path(path).expanduser()
        if not file.is_file():
            raise SettingsError(f"--ca-cert {path}: no such file; pass a PEM file with the CA certificate(s)")
        data = file.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise SettingsError(f"--ca-cert {path}: not a PEM certificate (no BEGIN CERTIFICATE block)")
        certs.append(data)
    return tuple(certs)
