"""A registry-less Python base image, built from a Debian mirror with debootstrap and `docker import`.

For air-gapped GPU hosts (and machines where no container registry answers): the rest of rasa-gpu then uses it
through --base-image or `base_image` in rasa-gpu.toml. bullseye ships Python 3.9 (Rasa 3.x); buster ships
Python 3.7 (Rasa 2.x).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from .engine import Engine
from .errors import RasaGpuError

DEFAULT_NAME = "rasa-gpu/base:bullseye"
SUITE_PYTHON = {"buster": "3.7", "bullseye": "3.9", "bookworm": "3.11"}
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"


def debootstrap_command(suite: str, rootfs: Path, mirror: str | None) -> list[str]:
    command = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", suite, str(rootfs)]
    return command + [mirror] if mirror else command


def build_base_image(
    engine: Engine,
    on_line: Callable[[str], None],
    *,
    suite: str = "bullseye",
    name: str = DEFAULT_NAME,
    mirror: str | None = None,
) -> str:
    """Build the base image and return its id."""
    if suite not in SUITE_PYTHON:
        raise RasaGpuError(f"unknown Debian suite '{suite}'; use one of {', '.join(SUITE_PYTHON)}")
    if shutil.which("debootstrap") is None:
        raise RasaGpuError("debootstrap is not installed; on Debian/Ubuntu: sudo apt-get install debootstrap")
    if os.geteuid() != 0:
        raise RasaGpuError("building a base image with debootstrap needs root; run it with sudo")
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(debootstrap_command(suite, rootfs, mirror), on_line)
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
        return engine.import_rootfs(
            tar_path,
            name,
            changes=[
                "ENV LANG=C.UTF-8",
                "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
                'CMD ["python3"]',
            ],
        )


def _run(command: list[str], on_line: Callable[[str], None]) -> None:
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-10:]
            on_line(line.rstrip())
    if proc.returncode != 0:
        raise RasaGpuError(f"{command[0]} failed with exit code {proc.returncode}", details=tail)
