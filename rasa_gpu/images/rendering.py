"""Rendering: the pieces of a Dockerfile that specs share (installs from a lock, NVIDIA's CUDA wheels, extra CA
certificates, the bot's archives) and of its build context: a tar of named files, and the short hash that names an
image after them. Pure text: nothing here needs an engine."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Sequence
from string import Template

from .. import locks
from ..compat import CudaWheels

CA_BUNDLE = "/usr/local/share/rasa-gpu/ca-bundle.pem"


class Tmpl(Template):
    """docker/'s templates: @name, as $ is the shell's."""

    delimiter = "@"


def uv_install(pip_index: str, installer: str, lock: str, indent: str = "      ") -> str:
    """Shell lines that install a lock with hashes required: uv (itself pinned with hashes into a folder of its
    own) downloads and unpacks in parallel, compiles the bytecode (a container runs as the bot's owner and cannot
    write it, so each start would compile Rasa's modules again), and is removed after."""
    return f" \\\n{indent}&& ".join(
        (
            f"python3 -m pip install {pip_index}--require-hashes --no-deps --target /tmp/rasa-gpu/uv -r {installer}",
            f"UV_SYSTEM_CERTS=1 UV_NO_CACHE=1 /tmp/rasa-gpu/uv/bin/uv pip install {pip_index}--python python3 "
            f'--system --break-system-packages --no-deps --require-hashes --compile-bytecode -r "{lock}"',
            "rm -rf /tmp/rasa-gpu/uv",
        )
    )


def locked_install(pip_index: str, plain_install: str, rasa_name: str, pythons: list[str]) -> str:
    """The RUN that installs the locked set of the base image's Python (see uv_install), or, for a Python without
    a lock, the plain install that lets pip resolve today's versions, saying so."""
    folder = f"/tmp/rasa-gpu/{locks.CONTEXT_FOLDER}"
    return (
        'py="$(python3 -c \'import sys; print("%d.%d" % sys.version_info[:2])\')" \\\n'
        f' && lock="{folder}/py$py.txt" \\\n'
        ' && if [ -f "$lock" ]; then \\\n'
        f'      echo "rasa-gpu: installing the locked set of {rasa_name} for Python $py (hashes required)" \\\n'
        f"      && {uv_install(pip_index, f'{folder}/{locks.INSTALLER}', '$lock')}; \\\n"
        "    else \\\n"
        f'      echo "rasa-gpu: no locked set of {rasa_name} for Python $py (locked: {", ".join(pythons)}): pip '
        "resolves today's versions, not reproducible\" \\\n"
        f"      && {plain_install}; \\\n"
        "    fi"
    )


def cuda_block(wheels: CudaWheels | None, pip_index: str, locked: bool) -> str:
    """NVIDIA's CUDA and cuDNN wheels, before Rasa: a Rasa or bot change reuses this layer (gigabytes). From their
    lock (locks.cuda_lock: hashes required, installed by uv) where one is shipped, else pinned for pip. --no-deps:
    the pins are the whole set (cuDNN's own dependency on cuBLAS is unpinned). Their lib/ folders go into the
    dynamic linker's cache, where TensorFlow's dlopen finds them."""
    assert wheels is not None
    folder = f"/tmp/rasa-gpu/{locks.CUDA_FOLDER}"
    if locked:
        copy = f"COPY {locks.CUDA_FOLDER} {folder}\n"
        lock = f"{folder}/{locks.CUDA_LOCK}"
        install = f"{uv_install(pip_index, f'{folder}/{locks.INSTALLER}', lock, indent=' ')} \\\n && rm -rf {folder}"
    else:
        copy = ""
        pins = " ".join(f'"{r}"' for r in wheels.requirements())
        install = f"python3 -m pip install {pip_index}--no-deps {pins}"
    find_libs = (
        "import glob, os, nvidia; "
        "print(chr(10).join(sorted(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, '*', 'lib')))))"
    )
    return (
        f"# CUDA {wheels.cuda} and cuDNN {wheels.cudnn} for TensorFlow {wheels.tensorflow}: {wheels.source}\n"
        f"{copy}RUN {install} \\\n"
        f' && python3 -c "{find_libs}" > /etc/ld.so.conf.d/rasa-gpu-cuda.conf \\\n'
        " && ldconfig"
    )


def ca_block(certs: tuple[bytes, ...]) -> str:
    if not certs:
        return ""
    return (
        "# Extra CA certificates (--ca-cert), added to the system bundle for pip and for Rasa at run time\n"
        "COPY rasa-gpu-ca.pem /usr/local/share/rasa-gpu/extra-ca.pem\n"
        "RUN { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; "
        f"cat /usr/local/share/rasa-gpu/extra-ca.pem; }} > {CA_BUNDLE}\n"
        f"ENV PIP_CERT={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE} SSL_CERT_FILE={CA_BUNDLE}"
    )


def ca_files(certs: tuple[bytes, ...]) -> dict[str, bytes]:
    if not certs:
        return {}
    return {"rasa-gpu-ca.pem": b"\n".join(cert.strip() for cert in certs) + b"\n"}


def files_copy(files: tuple[tuple[str, bytes], ...]) -> str:
    """The COPY of the bot's archives into the place their requirement lines name (nothing without any)."""
    from ..requirements import CONTEXT_FOLDER, IMAGE_FOLDER

    return f"COPY {CONTEXT_FOLDER} {IMAGE_FOLDER}" if files else ""


def bot_files(files: tuple[tuple[str, bytes], ...]) -> dict[str, bytes]:
    from ..requirements import CONTEXT_FOLDER

    return {f"{CONTEXT_FOLDER}/{name}": data for name, data in files}


def tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()).replace("\n\n\n", "\n\n").strip() + "\n"


def digest(names: Sequence[str], files: dict[str, bytes], known: dict[str, bytes] | None = None) -> str:
    """A short hash of the named files (names and contents); `known` holds the sha256 of some of them already."""
    hashed = hashlib.sha256()
    for name in names:
        found = (known or {}).get(name) or hashlib.sha256(files[name]).digest()
        hashed.update(name.encode() + b"\0" + found)
    return hashed.hexdigest()[:12]


def tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
