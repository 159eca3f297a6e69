"""A registry-less Python base image, built from a Debian (or Ubuntu) mirror with debootstrap and `docker import`.

For air-gapped GPU hosts (and machines where no container registry answers): the rest of rasa-gpu then uses it
through --base-image or `base_image` in rasa-gpu.toml. Each suite has its own image, `rasa-gpu/base:<suite>`:
bullseye ships Python 3.9 (Rasa 3.1 and later), buster Python 3.7 (Rasa 2.x and 3.0, which need Python < 3.9),
bookworm Python 3.11 (the newest Rasa Pro), and Ubuntu's noble Python 3.12, the only Python that Rasa Pro 3.14 to
3.19 accept, which no Debian release ships.

noble comes from http://archive.ubuntu.com/ubuntu (main and universe, where python3-pip is), checked against
Ubuntu's archive keys: the host's ubuntu-archive-keyring.gpg where it has one, else the keyring Ubuntu publishes
at archive.ubuntu.com/ubuntu/project/, taken only when its sha256 is the one pinned here (it holds the 2018
archive key F6EC B376 2474 EDA9 D21B 7022 8719 20D1 991B C93C). A debootstrap too old to know noble runs it with
its script for every Ubuntu release since gutsy.
The image carries the label io.rasa-gpu.python=<X.Y>, so a build checks the Rasa release against it before it starts.

buster has left deb.debian.org (http://deb.debian.org/debian/dists/buster/Release answers 404), so `--suite buster`
fetches from Debian's archive, http://archive.debian.org/debian, unless --mirror names another mirror that still
carries buster: the host must reach archive.debian.org (or that mirror). The archive's signature is checked with the
host's current Debian keys plus its removed ones, where debian-archive-keyring keeps buster's keys since bookworm.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .engine.containers import LABEL
from .errors import RasaGpuError

if TYPE_CHECKING:  # docker-py loads when an image is built, not when the CLI's help reads this module
    from .engine import Engine

DEFAULT_SUITE = "bullseye"
IMAGE_REPO = "rasa-gpu/base"
#: The Python (X.Y) of a base image, set here when it is imported; read by images.checks.image_python.
PYTHON_LABEL = f"{LABEL}.python"
SUITE_PYTHON = {"buster": "3.7", "bullseye": "3.9", "bookworm": "3.11", "noble": "3.12"}
#: Suites that have left deb.debian.org, and where debootstrap finds them instead.
ARCHIVED_SUITES = {"buster": "http://archive.debian.org/debian"}
#: Ubuntu's suites: fetched from Ubuntu's archive, with its keys and its universe component.
UBUNTU_SUITES = {"noble"}
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
UBUNTU_KEYRING = "ubuntu-archive-keyring.gpg"
UBUNTU_KEYRING_URL = f"{UBUNTU_MIRROR}/project/{UBUNTU_KEYRING}"
UBUNTU_KEYRING_SHA256 = "80a36b0a6de2f69f49d2df75ef473ccde121e9e190b9ea01d20a4f63778d5c31"
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
KEYRINGS = Path("/usr/share/keyrings")
#: debian-archive-keyring moves the keys of releases it no longer supports here; archived suites need them.
ARCHIVE_KEYRINGS = ("debian-archive-keyring.gpg", "debian-archive-removed-keys.gpg")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"


class LabelledImages(Protocol):
    """What python_bases asks of an engine (the real one is rasa_gpu.engine.Engine)."""

    def labelled_images(self, label: str) -> list[tuple[list[str], dict[str, str]]]: ...


def python_bases(engine: LabelledImages) -> list[tuple[str, str]]:
    """(name, Python X.Y) of each local image named in rasa-gpu/base that carries the Python label: the
    registry-less bases this module made."""
    found = []
    for names, labels in engine.labelled_images(PYTHON_LABEL):
        python = labels.get(PYTHON_LABEL, "").strip()
        found += [(name, python) for name in names if python and name.startswith(f"{IMAGE_REPO}:")]
    return sorted(found)


def default_name(suite: str) -> str:
    """The image a suite is built as unless --name says otherwise: rasa-gpu/base:<suite>."""
    return f"{IMAGE_REPO}:{suite}"


DEFAULT_NAME = default_name(DEFAULT_SUITE)


def default_mirror(suite: str) -> str | None:
    """The mirror a suite is fetched from without --mirror: None (debootstrap's own, deb.debian.org) for the suites
    Debian still carries, archive.debian.org for the ones that have left it, Ubuntu's archive for Ubuntu's."""
    return UBUNTU_MIRROR if suite in UBUNTU_SUITES else ARCHIVED_SUITES.get(suite)


def debootstrap_command(
    suite: str,
    rootfs: Path,
    mirror: str | None,
    keyring: Path | None = None,
    scripts: Path = DEBOOTSTRAP_SCRIPTS,
) -> list[str]:
    command = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}"]
    if suite in UBUNTU_SUITES:
        command.append("--components=main,universe")
    if keyring is not None:
        command.append(f"--keyring={keyring}")
    command += [suite, str(rootfs)]
    if not mirror:
        return command
    command.append(mirror)
    if suite in UBUNTU_SUITES and not (scripts / suite).exists():
        command.append(str(scripts / "gutsy"))  # every Ubuntu release's script links to it
    return command


def ubuntu_keyring(folder: Path, keyrings: Path = KEYRINGS, url: str = UBUNTU_KEYRING_URL) -> Path:
    """Ubuntu's archive keys: the host's keyring, else the one Ubuntu publishes, written into folder only when its
    sha256 is the pinned one."""
    if (keyrings / UBUNTU_KEYRING).is_file():
        return keyrings / UBUNTU_KEYRING
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            data = answer.read(1 << 20)
    except OSError as exc:
        raise RasaGpuError(
            f"cannot fetch Ubuntu's archive keys from {url} ({exc}); install ubuntu-keyring on this host "
            f"(it provides {keyrings / UBUNTU_KEYRING}) and run it again"
        ) from exc
    if hashlib.sha256(data).hexdigest() != UBUNTU_KEYRING_SHA256:
        raise RasaGpuError(
            f"the Ubuntu keyring at {url} is not the one rasa-gpu knows (sha256 differs): not trusting it; install "
            f"ubuntu-keyring on this host (it provides {keyrings / UBUNTU_KEYRING}) and run it again"
        )
    path = folder / UBUNTU_KEYRING
    path.write_bytes(data)
    return path


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
        raise RasaGpuError(f"unknown suite '{suite}'; use one of {', '.join(SUITE_PYTHON)}")
    if shutil.which("debootstrap") is None:
        raise RasaGpuError("debootstrap is not installed; on Debian/Ubuntu: sudo apt-get install debootstrap")
    if os.geteuid() != 0:
        raise RasaGpuError("building a base image with debootstrap needs root; run it with sudo")
    name = name or default_name(suite)
    mirror = mirror or default_mirror(suite)
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        ubuntu = suite in UBUNTU_SUITES
        system = f"{'Ubuntu' if ubuntu else 'Debian'} {suite}"
        on_line(
            f"building {name} ({system} with Python {SUITE_PYTHON[suite]}: debootstrap, then docker import)"
        )
        if mirror:
            on_line(f"fetching {system} from {mirror}")
        keyring = ubuntu_keyring(Path(tmp)) if ubuntu else archive_keyring(suite, Path(tmp))
        _run(debootstrap_command(suite, rootfs, mirror, keyring), on_line)
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
