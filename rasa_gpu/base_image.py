"""A registry-less Python base image, built from a Debian mirror with debootstrap and `docker import`.

For air-gapped GPU hosts (and machines where no container registry answers): the rest of rasa-gpu then uses it
through --base-image or `base_image` in rasa-gpu.toml. Each suite has its own image, `rasa-gpu/base:<suite>`:
bullseye ships Python 3.9 (Rasa 3.1 and later), buster Python 3.7 (Rasa 2.x and 3.0, which need Python < 3.9).
The image carries the label io.rasa-gpu.python=<X.Y>, so a build checks the Rasa release against it before it starts.

buster has left deb.debian.org (http://deb.debian.org/debian/dists/buster/Release answers 404), so `--suite buster`
fetches from Debian's archive, http://archive.debian.org/debian, unless --mirror names another mirror that still
carries buster: the host must reach archive.debian.org (or that mirror). The archive's signature is checked with the
host's current Debian keys plus its removed ones, where debian-archive-keyring keeps buster's keys since bookworm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RasaGpuError

if TYPE_CHECKING:  # docker-py loads when an image is built, not when the CLI's help reads this module
    from .engine import Engine

DEFAULT_SUITE = "bullseye"
IMAGE_REPO = "rasa-gpu/base"
SUITE_PYTHON = {"buster": "3.7", "bullseye": "3.9", "bookworm": "3.11"}
#: Suites that have left deb.debian.org, and where debootstrap finds them instead.
ARCHIVED_SUITES = {"buster": "http://archive.debian.org/debian"}
KEYRINGS = Path("/usr/share/keyrings")
#: debian-archive-keyring moves the keys of releases it no longer supports here; archived suites need them.
ARCHIVE_KEYRINGS = ("debian-archive-keyring.gpg", "debian-archive-removed-keys.gpg")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"


def default_name(suite: str) -> str:
    """The image a suite is built as unless --name says otherwise: rasa-gpu/base:<suite>."""
    return f"{IMAGE_REPO}:{suite}"


DEFAULT_NAME = default_name(DEFAULT_SUITE)


def default_mirror(suite: str) -> str | None:
    """The mirror a suite is fetched from without --mirror: None (debootstrap's own, deb.debian.org) for the suites
    Debian still carries, archive.debian.org for the ones that have left it."""
    return ARCHIVED_SUITES.get(suite)


def debootstrap_command(
    suite: str, rootfs: Path, mirror: str | None, keyring: Path | None = None
) -> list[str]:
    command = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}"]
    if keyring is not None:
        command.append(f"--keyring={keyring}")
    command += [suite, str(rootfs)]
    return command + [mirror] if mirror else command


def archive_keyring(suite: str, folder: Path, keyrings: Path = KEYRINGS) -> Path | None:
    """For an archived suite: one keyring with the host's current and removed Debian keys (debootstrap takes only
    one), written into folder. None for other suites, or when the host has no removed keys (debootstrap's default)."""
    if suite not in ARCHIVED_SUITES:
        return None
    parts = [keyrings / name for name in ARCHIVE_KEYRINGS if (keyrings / name).is_file()]
    if len(parts) < len(ARCHIVE_KEYRINGS):
        return None
    combined = folder / "debian-archive-keys.gpg"
    combined.write_bytes(b"".join(part.read_bytes() for part in parts))
    return combined


def build_base_image(
    engine: Engine,
    on_line: Callable[[str], None],
    *,
    suite: str = DEFAULT_SUITE,
    name: str | None = None,
    mirror: str | None = None,
) -> str:
    """Build the base image (named rasa-gpu/base:<suite> unless name is given) and return its id."""
    if suite not in SUITE_PYTHON:
        raise RasaGpuError(f"unknown Debian suite '{suite}'; use one of {', '.join(SUITE_PYTHON)}")
    if shutil.which("debootstrap") is None:
        raise RasaGpuError("debootstrap is not installed; on Debian/Ubuntu: sudo apt-get install debootstrap")
    if os.geteuid() != 0:
        raise RasaGpuError("building a base image with debootstrap needs root; run it with sudo")
    name = name or default_name(suite)
    mirror = mirror or default_mirror(suite)
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        if mirror:
            on_line(f"fetching Debian {suite} from {mirror}")
        _run(debootstrap_command(suite, rootfs, mirror, archive_keyring(suite, Path(tmp))), on_line)
        if HOST_CA_BUNDLE.is_file():
            # The image trusts what this host trusts, so pip works behind a TLS-intercepting proxy too.
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar_path = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(rootfs), "-c", "-f", str(tar_path), "."], on_line)
        on_line(f"importing {name}")
        return engine.import_rootfs(tar_path, name, changes=image_changes(suite))


def image_changes(suite: str) -> list[str]:
    """The Dockerfile instructions `docker import` applies: environment, command, and the Python label."""
    from .engine import PYTHON_LABEL

    return [
        "ENV LANG=C.UTF-8",
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
        f"LABEL {PYTHON_LABEL}={SUITE_PYTHON[suite]}",
        'CMD ["python3"]',
    ]


def _run(command: list[str], on_line: Callable[[str], None]) -> None:
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-10:]
            on_line(line.rstrip())
    if proc.returncode != 0:
        raise RasaGpuError(f"{command[0]} failed with exit code {proc.returncode}", details=tail)
