"""Training images: the Dockerfile rendered from the templates in docker/, its build context, and tags derived from
a hash of everything that goes into them, so that an image that exists is found with one cheap lookup."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import shlex
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from string import Template
from typing import Any, Protocol

from . import __version__, locks, templates
from .base_image import SUITE_PYTHON, default_name
from .compat import CudaWheels, RasaRelease, accepts_python
from .errors import BuildError, PullError, SettingsError, VersionError
from .redact import redact
from .settings import check_image_name, check_registry

IMAGE_REPO = "rasa-gpu/rasa"
#: Where a new image waits for its checks: no image under its own name has not trained (images.checked_build).
CANDIDATE_REPO = "rasa-gpu/candidate"
BOT_IMAGE_REPO = "rasa-gpu/bot"
#: Prints Rasa Pro's nlu extra from its metadata, in the build (docker/rasa-gpu-pro-nlu.py).
PRO_NLU_SCRIPT = "rasa-gpu-pro-nlu.py"
ACTIONS_IMAGE_REPO = "rasa-gpu/actions"
NOTEBOOK_IMAGE_REPO = "rasa-gpu/notebook"
NOTEBOOK_REQUIREMENT = "notebook==7.2.2"
#: Repository name of published images under the registry (`rasa-gpu push --name`, `image_name` setting).
DEFAULT_IMAGE_NAME = "rasa-gpu"
PIP_VERSION = "24.0"  # the last pip that still runs on every Python Rasa 2.x/3.x supports
CA_BUNDLE = "/usr/local/share/rasa-gpu/ca-bundle.pem"
#: The build argument that brings the package index's login (the USER:PASSWORD of --pip-index-url) to pip. Docker
#: keeps its predefined proxy arguments out of an image's history, so that a proxy's login is never published, as long
#: as the Dockerfile declares no ARG for them; every other build argument a RUN sees is written into the history. pip
#: never uses an FTP proxy, so this one is free to carry the index's login the same way: it is in the environment of
#: each RUN while it runs, and in no layer, no history line and no cache key.
INDEX_LOGIN_ARG = "FTP_PROXY"


class _Tmpl(Template):
    delimiter = "@"


@dataclass(frozen=True)
class ImageSpec:
    """What a training image is made of. Pure data: rendering and hashing need no engine."""

    release: RasaRelease
    base_image: str
    variant: str = "gpu"  # gpu | cpu: which of the matrix's base images is the default
    #: Where CUDA comes from: "base" (the base image has it), "wheels" (NVIDIA's wheels from PyPI, `cuda_wheels`),
    #: "none" (a CPU-only image). Any but "none" is checked after the build (see gpu_check).
    cuda: str = "base"
    #: The matrix's wheels for this TensorFlow: installed only when cuda is "wheels"; their sonames are what the
    #: check after a build asks for either way (a base image with CUDA must have the same ones).
    cuda_wheels: CudaWheels | None = None
    pip_index_url: str | None = None
    ca_certs: tuple[bytes, ...] = ()
    #: The bot stage's requirement lines (requirements.BotRequirements.training_lines): none, no bot stage.
    extra_requirements: tuple[str, ...] = ()
    #: The bot's own constraints (-c files), held with the Rasa stage's locked set.
    extra_constraints: tuple[str, ...] = ()
    #: The wheels and sdists the requirements name in the bot folder: (path there, content), copied into the build.
    bot_files: tuple[tuple[str, bytes], ...] = ()
    #: The spaCy models the bot's pipeline loads (SpacyNLP): loaded in the new image before it is tagged. Not part of
    #: the tag: they are what the requirements install, which is.
    spacy_models: tuple[str, ...] = ()
    # Where a published copy may be pulled from instead of building (`--registry`); not part of the tag.
    registry: str | None = None
    image_name: str = DEFAULT_IMAGE_NAME
    #: The base image was named (--base-image, RASA_GPU_BASE_IMAGE, base_image): False when it is the matrix's
    #: default, which a registry-less base of the right Python may stand in for (settle_base). Not part of the tag.
    base_named: bool = True
    #: What --cuda / the cuda setting asked for ("auto" unless set): how a stand-in base gets its CUDA.
    cuda_asked: str = "auto"

    def __post_init__(self) -> None:
        check_dockerfile_values(self.base_image, self.pip_index_url)

    def secret_args(self) -> dict[str, str]:
        """The build arguments that bring the index's login to pip (none without one)."""
        return index_secret_args(self.pip_index_url)

    # ---- rendering ----------------------------------------------------------------------------------------------

    def dockerfile(self) -> str:
        """What `rasa-gpu build --print` shows: the Rasa stage's Dockerfile, then the bot stage's when the bot has
        requirements of its own."""
        text = self._render()
        return f"{text}\n{self.bot_dockerfile()}" if self.extra_requirements else text

    @property
    def wants_gpu(self) -> bool:
        """Built to use a GPU: it is tagged gpu if the check after the build agrees, else cpu."""
        return self.cuda != "none"

    def _render(self) -> str:
        """The Rasa stage's Dockerfile (docker/Dockerfile.tmpl)."""
        pip_index = _pip_index(self.pip_index_url)
        packages = [
            f'"{self.release.package}=={self.release.version}"',
            f'"tensorflow=={self.release.tensorflow}"',
        ]
        if self.release.tensorflow_text:
            packages.append(f'"tensorflow-text=={self.release.tensorflow_text}"')
        pro_nlu_copy = pro_nlu_install = pro_env = ""
        if self.release.pro:
            # Its nlu extra (TensorFlow's friends), read from rasa-pro's own metadata during the build.
            pro_nlu_copy = f"COPY {PRO_NLU_SCRIPT} /tmp/rasa-gpu/"
            pro_nlu_install = (
                f" \\\n && python3 /tmp/rasa-gpu/{PRO_NLU_SCRIPT} > /tmp/rasa-gpu/nlu.txt"
                f" \\\n && python3 -m pip install {pip_index}-r /tmp/rasa-gpu/nlu.txt {' '.join(packages)}"
            )
            # LiteLLM (a Rasa Pro dependency) fetches a price list from GitHub at every start: an offline host
            # waited 10 s for that to fail.
            pro_env = "ENV LITELLM_LOCAL_MODEL_COST_MAP=True"
        plain_install = f"python3 -m pip install {pip_index}{' '.join(packages)}{pro_nlu_install}"
        lock_copy, rasa_install = "", plain_install
        lock_pythons = locks.pythons(self.release)
        if lock_pythons:
            lock_copy = f"COPY {locks.CONTEXT_FOLDER} /tmp/rasa-gpu/{locks.CONTEXT_FOLDER}"
            rasa_install = _locked_install(pip_index, plain_install, self.release.name, lock_pythons)
        ca_block = _ca_block(self.ca_certs)
        text = _Tmpl(templates.read_text("docker", "Dockerfile.tmpl")).substitute(
            tool_version=__version__,
            index_note=_index_note(self.pip_index_url),
            rasa_name=self.release.name,
            tensorflow=self.release.tensorflow,
            cuda_line=self.cuda_line(),
            cuda_block=(
                _cuda_block(self.cuda_wheels, pip_index, locked=bool(self._cuda_files()))
                if self.cuda == "wheels"
                else ""
            ),
            base_image=self.base_image,
            ca_block=ca_block,
            pip_index=pip_index,
            pip_version=PIP_VERSION,
            pro_nlu_copy=pro_nlu_copy,
            lock_copy=lock_copy,
            rasa_install=rasa_install,
            pro_env=pro_env,
        )
        return _tidy(text)

    def bot_dockerfile(self, rasa_stage: str | None = None) -> str:
        """The bot stage's Dockerfile (docker/Dockerfile.bot.tmpl): FROM the Rasa stage's image, by the name it has
        (rasa_tag, or its cpu twin when it failed the CUDA check)."""
        return _tidy(
            _Tmpl(templates.read_text("docker", "Dockerfile.bot.tmpl")).substitute(
                rasa_stage=rasa_stage or self.rasa_tag(),
                pip_index=_pip_index(self.pip_index_url),
                lock_folder=locks.CONTEXT_FOLDER,
                bot_files=_files_copy(self.bot_files),
            )
        )

    def cuda_line(self) -> str:
        """Where this image's CUDA comes from, in words."""
        if self.cuda == "wheels" and self.cuda_wheels is not None:
            w = self.cuda_wheels
            return f"CUDA {w.cuda} and cuDNN {w.cudnn} from NVIDIA's wheels on PyPI"
        if self.cuda == "none":
            return "no CUDA: a CPU-only image"
        return f"CUDA from the base image (TensorFlow was built with CUDA {self.release.cuda}, cuDNN {self.release.cudnn})"

    def _cuda_files(self) -> dict[str, bytes]:
        """The CUDA wheels' lock and its installer, for an image that gets CUDA from them (else none)."""
        if self.cuda != "wheels" or self.cuda_wheels is None:
            return {}
        return locks.cuda_context_files(self.cuda_wheels.tensorflow)

    def context_files(self) -> dict[str, bytes]:
        """The Rasa stage's build context."""
        files = {
            "Dockerfile": self._render().encode(),
            "rasa-gpu-entry.py": templates.read_bytes("docker", "rasa-gpu-entry.py"),
        }
        files.update(_ca_files(self.ca_certs))
        files.update(self._cuda_files())
        files.update(locks.context_files(self.release))
        if self.release.pro:
            files[PRO_NLU_SCRIPT] = templates.read_bytes("docker", PRO_NLU_SCRIPT)
        return files

    def bot_context_files(self, rasa_stage: str | None = None) -> dict[str, bytes]:
        """The bot stage's build context: its Dockerfile, the bot's requirements and constraints, its archives."""
        constraints = [
            *self.extra_constraints,
            f"{self.release.package}=={self.release.version}",
            f"tensorflow=={self.release.tensorflow}",
        ]
        return {
            "Dockerfile": self.bot_dockerfile(rasa_stage).encode(),
            "bot-requirements.txt": ("\n".join(self.extra_requirements) + "\n").encode(),
            "bot-constraints.txt": ("\n".join(constraints) + "\n").encode(),
            **_bot_files(self.bot_files),
        }

    # ---- tags -----------------------------------------------------------------------------------------------------

    def rasa_tag(self) -> str:
        """Tag of the shared Rasa stage: changes when anything it is built from changes."""
        # The Rasa stage depends on its own Dockerfile, the entry script, the CA file and the locks, not on the bot.
        files = self.context_files()
        names = [
            n for n in ("Dockerfile", "rasa-gpu-entry.py", "rasa-gpu-ca.pem", PRO_NLU_SCRIPT) if n in files
        ] + sorted(n for n in files if n.startswith((f"{locks.CONTEXT_FOLDER}/", f"{locks.CUDA_FOLDER}/")))
        kind = "gpu" if self.wants_gpu else "cpu"
        return (
            f"{IMAGE_REPO}:{self.release.version}-tf{self.release.tensorflow}-{kind}-{_digest(names, files)}"
        )

    def tag(self) -> str:
        """Tag of the image that trains this bot: the Rasa stage itself when the bot needs nothing extra. It says
        gpu when the image is built to use one; an image that fails the check after its build is tagged as its
        cpu_twin instead."""
        if not self.extra_requirements:
            return self.rasa_tag()
        files = self.bot_context_files()  # its Dockerfile names the Rasa stage's tag
        kind = "gpu" if self.wants_gpu else "cpu"
        return f"{BOT_IMAGE_REPO}:{self.release.version}-{kind}-{_digest(sorted(files), files, self._archive_digests)}"

    @cached_property
    def _archive_digests(self) -> dict[str, bytes]:
        """The sha256 of each archive of the bot, worked out once per spec (a spaCy model may be hundreds of MB)."""
        return {name: hashlib.sha256(data).digest() for name, data in _bot_files(self.bot_files).items()}

    def context_tar(self) -> bytes:
        return _tar(self.context_files())

    def bot_context_tar(self, rasa_stage: str) -> bytes:
        return _tar(self.bot_context_files(rasa_stage))


def published_ref(spec: ImageSpec, registry: str, name: str = DEFAULT_IMAGE_NAME) -> str:
    """The image's name in a registry: `<registry>/<name>:<rasa>-tf<tf>-<variant>-<hash>`, with the hash of its local
    tag (the shared Rasa stage's, or the bot stage's when the bot has requirements of its own). Same inputs, same
    name: a teammate or a CI machine finds it without building."""
    registry = check_registry(registry)
    name = check_image_name(name)
    digest = spec.tag().rsplit("-", 1)[1]
    release = spec.release
    kind = "gpu" if spec.wants_gpu else "cpu"
    return f"{registry}/{name}:{release.version}-tf{release.tensorflow}-{kind}-{digest}"


def cpu_twin(tag: str) -> str:
    """The name a gpu-tagged image gets when the check after its build finds that it cannot use a GPU."""
    repo, _, name = tag.rpartition(":")
    return f"{repo}:{name.replace('-gpu-', '-cpu-', 1)}"


@dataclass(frozen=True)
class ActionsImageSpec:
    """The action server's image: a plain Python with the rasa-sdk that goes with the bot's Rasa release, plus the
    packages of actions/requirements.txt. The action code itself is mounted, so editing it needs no rebuild."""

    release: RasaRelease
    base_image: str
    requirements: tuple[str, ...] = ()
    pip_index_url: str | None = None
    ca_certs: tuple[bytes, ...] = ()
    #: The bot's own constraints for these requirements (-c in its action server's files).
    constraints: tuple[str, ...] = ()
    #: Wheels and sdists in the bot folder that the requirements name: (path there, content).
    files: tuple[tuple[str, bytes], ...] = ()
    #: The bot's rasa-sdk lines (any of its requirements files): installed instead of the range Rasa asks for.
    rasa_sdk: tuple[str, ...] = ()
    target = "actions"

    def __post_init__(self) -> None:
        check_dockerfile_values(self.base_image, self.pip_index_url, base_origin="actions_base_image")

    def secret_args(self) -> dict[str, str]:
        return index_secret_args(self.pip_index_url)

    def dockerfile(self) -> str:
        pip_index = _pip_index(self.pip_index_url)
        extra = ""
        if self.requirements:
            share = "/usr/local/share/rasa-gpu"
            names = "actions-requirements.txt" + (" actions-constraints.txt" if self.constraints else "")
            constrained = f" -c {share}/actions-constraints.txt" if self.constraints else ""
            extra = (
                "# The action server's requirements (actions/requirements-actions.txt and the like)\n"
                f"COPY {names} {share}/\n"
                f"{_files_copy(self.files)}\n"
                f"RUN python3 -m pip install {pip_index}-r {share}/actions-requirements.txt{constrained}"
            )
        rasa_sdk = f'"rasa-sdk{self.release.rasa_sdk}"'
        if self.rasa_sdk:  # the bot's own pin, quoted for the shell (a marker holds quotes)
            rasa_sdk = " ".join(shlex.quote(line) for line in self.rasa_sdk)
        text = _Tmpl(templates.read_text("docker", "Dockerfile.actions.tmpl")).substitute(
            tool_version=__version__,
            index_note=_index_note(self.pip_index_url),
            rasa_version=self.release.version,
            base_image=self.base_image,
            ca_block=_ca_block(self.ca_certs),
            pip_index=pip_index,
            pip_version=PIP_VERSION,
            rasa_sdk=rasa_sdk,
            rasa_sdk_spec=self.release.rasa_sdk,
            requirements=extra,
        )
        return _tidy(text)

    def context_files(self) -> dict[str, bytes]:
        files = {"Dockerfile": self.dockerfile().encode(), **_ca_files(self.ca_certs)}
        if self.requirements:
            files["actions-requirements.txt"] = ("\n".join(self.requirements) + "\n").encode()
            if self.constraints:
                files["actions-constraints.txt"] = ("\n".join(self.constraints) + "\n").encode()
            files.update(_bot_files(self.files))
        return files

    def tag(self) -> str:
        files = self.context_files()
        return f"{ACTIONS_IMAGE_REPO}:{self.release.version}-{_digest(sorted(files), files)}"

    def context_tar(self) -> bytes:
        return _tar(self.context_files())


@dataclass(frozen=True)
class NotebookImageSpec:
    """The jupyter service's image: the bot's training image plus the notebook server."""

    training_image: str
    rasa_version: str
    pip_index_url: str | None = None
    target = "notebook"

    def __post_init__(self) -> None:
        check_dockerfile_values(self.training_image, self.pip_index_url, base_origin="the training image")

    @property
    def base_image(self) -> str:
        return self.training_image

    def secret_args(self) -> dict[str, str]:
        return index_secret_args(self.pip_index_url)

    def dockerfile(self) -> str:
        pip_index = _pip_index(self.pip_index_url)
        return (
            f"# Rendered by rasa-gpu {__version__}: the training image plus a Jupyter notebook server."
            f"{_index_note(self.pip_index_url)}\n"
            f"FROM {self.training_image} AS notebook\n"
            f'RUN python3 -m pip install {pip_index}"{NOTEBOOK_REQUIREMENT}"\n'
            "ENTRYPOINT []\n"
        )

    def tag(self) -> str:
        files = {"Dockerfile": self.dockerfile().encode()}
        return f"{NOTEBOOK_IMAGE_REPO}:{self.rasa_version}-{_digest(['Dockerfile'], files)}"

    def context_tar(self) -> bytes:
        return _tar({"Dockerfile": self.dockerfile().encode()})


def default_actions_base(release: RasaRelease) -> str:
    """python:3.X-slim with the newest Python (3.8 to 3.10) that the Rasa release accepts."""
    newest = next((v for v in ("3.10", "3.9", "3.8", "3.7") if accepts_python(release.python, v)), "3.8")
    return f"python:{newest}-slim"


# ---- what goes into a Dockerfile ------------------------------------------------------------------------------------

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


def _pip_index(url: str | None) -> str:
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


def _index_note(url: str | None) -> str:
    """A comment line for the Dockerfile's header when the index needs a login (nothing otherwise)."""
    if not index_secret_args(url):
        return ""
    return (
        f"\n# pip's index needs a login: it comes from the build argument {INDEX_LOGIN_ARG} (build with --build-arg "
        f"{INDEX_LOGIN_ARG}=USER:PASSWORD), which Docker keeps out of the image's history."
    )


# ---- shared pieces -------------------------------------------------------------------------------------------------


def _uv_install(pip_index: str, installer: str, lock: str, indent: str = "      ") -> str:
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


def _locked_install(pip_index: str, plain_install: str, rasa_name: str, pythons: list[str]) -> str:
    """The RUN that installs the locked set of the base image's Python (see _uv_install), or, for a Python without
    a lock, the plain install that lets pip resolve today's versions, saying so."""
    folder = f"/tmp/rasa-gpu/{locks.CONTEXT_FOLDER}"
    return (
        'py="$(python3 -c \'import sys; print("%d.%d" % sys.version_info[:2])\')" \\\n'
        f' && lock="{folder}/py$py.txt" \\\n'
        ' && if [ -f "$lock" ]; then \\\n'
        f'      echo "rasa-gpu: installing the locked set of {rasa_name} for Python $py (hashes required)" \\\n'
        f"      && {_uv_install(pip_index, f'{folder}/{locks.INSTALLER}', '$lock')}; \\\n"
        "    else \\\n"
        f'      echo "rasa-gpu: no locked set of {rasa_name} for Python $py (locked: {", ".join(pythons)}): pip '
        "resolves today's versions, not reproducible\" \\\n"
        f"      && {plain_install}; \\\n"
        "    fi"
    )


def _cuda_block(wheels: CudaWheels | None, pip_index: str, locked: bool) -> str:
    """NVIDIA's CUDA and cuDNN wheels, before Rasa: a Rasa or bot change reuses this layer (gigabytes). From their
    lock (locks.cuda_lock: hashes required, installed by uv) where one is shipped, else pinned for pip. --no-deps:
    the pins are the whole set (cuDNN's own dependency on cuBLAS is unpinned). Their lib/ folders go into the
    dynamic linker's cache, where TensorFlow's dlopen finds them."""
    assert wheels is not None
    folder = f"/tmp/rasa-gpu/{locks.CUDA_FOLDER}"
    if locked:
        copy = f"COPY {locks.CUDA_FOLDER} {folder}\n"
        lock = f"{folder}/{locks.CUDA_LOCK}"
        install = f"{_uv_install(pip_index, f'{folder}/{locks.INSTALLER}', lock, indent=' ')} \\\n && rm -rf {folder}"
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


def _ca_block(certs: tuple[bytes, ...]) -> str:
    if not certs:
        return ""
    return (
        "# Extra CA certificates (--ca-cert), added to the system bundle for pip and for Rasa at run time\n"
        "COPY rasa-gpu-ca.pem /usr/local/share/rasa-gpu/extra-ca.pem\n"
        "RUN { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; "
        f"cat /usr/local/share/rasa-gpu/extra-ca.pem; }} > {CA_BUNDLE}\n"
        f"ENV PIP_CERT={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE} SSL_CERT_FILE={CA_BUNDLE}"
    )


def _ca_files(certs: tuple[bytes, ...]) -> dict[str, bytes]:
    if not certs:
        return {}
    return {"rasa-gpu-ca.pem": b"\n".join(cert.strip() for cert in certs) + b"\n"}


def _files_copy(files: tuple[tuple[str, bytes], ...]) -> str:
    """The COPY of the bot's archives into the place their requirement lines name (nothing without any)."""
    from .requirements import CONTEXT_FOLDER, IMAGE_FOLDER

    return f"COPY {CONTEXT_FOLDER} {IMAGE_FOLDER}" if files else ""


def _bot_files(files: tuple[tuple[str, bytes], ...]) -> dict[str, bytes]:
    from .requirements import CONTEXT_FOLDER

    return {f"{CONTEXT_FOLDER}/{name}": data for name, data in files}


def _tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()).replace("\n\n\n", "\n\n").strip() + "\n"


def _digest(names: Sequence[str], files: dict[str, bytes], known: dict[str, bytes] | None = None) -> str:
    """A short hash of the named files (names and contents); `known` holds the sha256 of some of them already."""
    digest = hashlib.sha256()
    for name in names:
        found = (known or {}).get(name) or hashlib.sha256(files[name]).digest()
        digest.update(name.encode() + b"\0" + found)
    return digest.hexdigest()[:12]


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


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


@dataclass(frozen=True)
class ImageResult:
    tag: str
    image_id: str
    built: bool  # False: found (or pulled), no builder was called
    pulled_from: str | None = None  # the published name it was pulled as, when it came from the registry
    #: The image can use a GPU: built with CUDA and every CUDA library TensorFlow opens loads (checked after the
    #: build; a found image says so by its tag). A training image only; services' images leave it False.
    gpu_ready: bool = False
    #: Why not, when it was built to use one (the check's problems), or where its CUDA comes from.
    cuda_note: str = ""
    #: The spec the image was found or built for: the one asked for, or the same on a stand-in base (settle_base).
    spec: ImageSpec | None = None


class ImageEngine(Protocol):
    """The subset of the engine that image resolution needs (the real one is rasa_gpu.engine.Engine)."""

    def image_id(self, ref: str) -> str | None: ...

    def image_python(self, ref: str) -> str | None: ...

    def pull(self, ref: str, on_line: Callable[[str], None]) -> None: ...

    def build(
        self,
        context: bytes,
        *,
        tag: str,
        target: str,
        labels: dict[str, str],
        on_line: Callable[[str], None],
        secret_args: dict[str, str],
    ) -> str: ...

    def pull_published(self, ref: str, on_line: Callable[[str], None]) -> str | None: ...

    def tag(self, image: str, ref: str) -> None: ...

    def remove_image(self, ref: str) -> None: ...

    def cuda_check(self, ref: str, script: str, libraries: list[str]) -> dict[str, Any]: ...

    def run_check(
        self, ref: str, script: str, args: list[str], environment: dict[str, str] | None = None
    ) -> tuple[dict[str, Any] | None, str]: ...

    def can_pull(self, ref: str) -> bool: ...

    def python_bases(self) -> list[tuple[str, str]]: ...


def cuda_for(asked: str, release: RasaRelease, base_image: str, variant: str, has_wheels: bool) -> str:
    """Where an image's CUDA comes from ("base", "wheels" or "none") for what --cuda asked. auto: none for the CPU
    variant; the base image's own when it is TensorFlow's GPU image (it has CUDA); else NVIDIA's wheels when they
    serve this TensorFlow (a registry-less base, python:3.X-slim, a corporate base), else whatever the base has (the
    check after the build tells)."""
    if asked != "auto":
        return asked
    if variant == "cpu":
        return "none"
    if base_image == release.gpu_base_image or not has_wheels:
        return "base"
    return "wheels"


def stand_ins(spec: ImageSpec) -> list[ImageSpec]:
    """The specs a registry-less base under its default name (rasa-gpu/base:<suite>, a Python the release accepts)
    would give, when the base was not named: what settle_base may pick, known without an engine."""
    if spec.base_named:
        return []
    names = [
        default_name(suite)
        for suite, python in SUITE_PYTHON.items()
        if accepts_python(spec.release.python, python)
    ]
    return [_on_base(spec, name) for name in names]


def _on_base(spec: ImageSpec, base_image: str) -> ImageSpec:
    cuda = cuda_for(spec.cuda_asked, spec.release, base_image, spec.variant, spec.cuda_wheels is not None)
    return replace(spec, base_image=base_image, cuda=cuda)


def settle_base(engine: ImageEngine, spec: ImageSpec, on_line: Callable[[str], None]) -> ImageSpec:
    """The spec to build: as asked, unless its base is the matrix's default and this engine neither has it nor can
    pull it while a registry-less base (`rasa-gpu base-image`, found by its Python label) of a Python the release
    accepts is here; then the same spec on that base (the newest such Python), said in one line."""
    if spec.base_named or engine.image_id(spec.base_image) is not None:
        return spec
    # Under its default name (rasa-gpu/base:<suite>, newest Python first) it is found with cheap lookups; under
    # another name, by its label.
    named = [other.base_image for other in reversed(stand_ins(spec))]
    found = next((name for name in named if engine.image_id(name) is not None), None)
    if found is None:
        from packaging.version import Version

        fitting = [
            (Version(py), name)
            for name, py in engine.python_bases()
            if accepts_python(spec.release.python, py)
        ]
        found = max(fitting)[1] if fitting else None
    if found is None:
        return spec
    stand_in = _on_base(spec, found)
    # An image already built on the stand-in is used as it is, silently: asking a registry (docker-py) or printing
    # (rich) would cost every cache hit; `doctor` says which base it is on.
    if any(engine.image_id(name) is not None for name in (stand_in.tag(), cpu_twin(stand_in.tag()))):
        return stand_in
    if engine.can_pull(spec.base_image):
        return spec
    on_line(
        f"{spec.base_image} is not here and cannot be pulled: using the registry-less base {found} that "
        "`rasa-gpu base-image` made"
    )
    return stand_in


def ensure_image(
    engine: ImageEngine, spec: ImageSpec, on_line: Callable[[str], None], *, rebuild: bool = False
) -> ImageResult:
    """Find the training image by its tag, else pull its published copy when a registry is set, else build it (the
    Rasa stage first, so other bots can share it). Each image built to use a GPU is checked right after its build
    and keeps its gpu name only if it passes; otherwise it is named as its cpu_twin. The matrix's base image may
    have a registry-less stand-in (settle_base): the result's spec says which base it is built on."""
    spec = settle_base(engine, spec, on_line)
    return replace(_ensure_image(engine, spec, on_line, rebuild=rebuild), spec=spec)


def _ensure_image(
    engine: ImageEngine, spec: ImageSpec, on_line: Callable[[str], None], *, rebuild: bool
) -> ImageResult:
    tag = spec.tag()
    if not rebuild:
        found = _find(engine, spec, tag)
        if found is not None:
            return found
        if spec.registry:
            pulled = _pull_published(engine, spec, spec.registry, on_line)
            if pulled is not None:
                return pulled
    if engine.image_id(spec.base_image) is None:
        engine.pull(spec.base_image, on_line)
    check_base_python(engine, spec)
    labels = {"io.rasa-gpu.rasa": spec.release.version, "io.rasa-gpu.tensorflow": spec.release.tensorflow}
    secret_args = spec.secret_args()
    rasa_tag, build_id = spec.rasa_tag(), secrets.token_hex(4)
    stage = None if rebuild else _find(engine, spec, rasa_tag)
    if stage is None:
        built = candidate(rasa_tag, build_id)
        on_line(f"building {rasa_tag} ({spec.release.name} on {spec.base_image}, shared by every bot on it)")
        image_id = engine.build(
            spec.context_tar(),
            tag=built,
            target="rasa",
            labels=labels,
            on_line=on_line,
            secret_args=secret_args,
        )
        stage = checked_build(engine, spec, rasa_tag, image_id, on_line, built)
    if tag == rasa_tag:
        return stage
    built = candidate(tag, build_id)
    on_line(f"building {tag} (the bot's requirements on the {spec.release.name} stage)")
    image_id = engine.build(
        spec.bot_context_tar(stage.tag),
        tag=built,
        target="bot",
        labels=labels,
        on_line=on_line,
        secret_args=secret_args,
    )
    return checked_build(engine, spec, tag, image_id, on_line, built)


def _find(engine: ImageEngine, spec: ImageSpec, tag: str) -> ImageResult | None:
    """The image under its own name (GPU-ready when it says gpu: only a passed check leaves that name on it) or
    under its cpu twin's."""
    for name in dict.fromkeys([tag, cpu_twin(tag)]):
        image_id = engine.image_id(name)
        if image_id is not None:
            ready = spec.wants_gpu and name == tag
            if not spec.wants_gpu:
                note = "CPU-only: built without CUDA"
            else:
                note = "" if ready else "CPU-only: it failed the CUDA check after its build"
            return ImageResult(tag=name, image_id=image_id, built=False, gpu_ready=ready, cuda_note=note)
    return None


def candidate(tag: str, build_id: str = "") -> str:
    """The name a new image is built under until it has passed its checks: rasa-gpu/candidate:<repo>-<name>-<build>.
    The build's own id keeps two builds of one tag at once (two users, two terminals) off each other's candidate."""
    repo, _, name = tag.rpartition(":")
    return f"{CANDIDATE_REPO}:{repo.rpartition('/')[2]}-{name}" + (f"-{build_id}" if build_id else "")


def checked_build(
    engine: ImageEngine,
    spec: ImageSpec,
    tag: str,
    image_id: str,
    on_line: Callable[[str], None],
    built: str,
) -> ImageResult:
    """A freshly built image (under its candidate name `built`) gets its own name only after a tiny bot trained in
    it and its model loaded (else a BuildError naming the cause, and no name but the removed candidate's); one built
    to use a GPU keeps the gpu name only if it passes the CUDA check, else it is named as its cpu twin."""
    bot_stage = tag != spec.rasa_tag()
    try:
        if bot_stage and spec.spacy_models:
            on_line(spacy_check(engine, spec, built))
        on_line(
            "training a tiny bot in the new image before it is tagged: "
            f"{smoke_check(engine, spec, built, bot_stage=bot_stage)}"
        )
        if not spec.wants_gpu:
            ready, note, name = False, "CPU-only: built without CUDA", tag
        else:
            ready, note = check_cuda(engine, spec, built)
            on_line(f"CUDA check of {tag}: {note}")
            name = tag if ready else cpu_twin(tag)
        engine.tag(built, name)
    finally:
        engine.remove_image(built)  # only the name: the image stays under its own one, or goes
    return ImageResult(tag=name, image_id=image_id, built=True, gpu_ready=ready, cuda_note=note)


def smoke_check(engine: ImageEngine, spec: ImageSpec, ref: str, *, bot_stage: bool = False) -> str:
    """Train docker/rasa-gpu-smoke.py's tiny bot in the image on the CPU and load its model: a phrase that says how
    it went, or a BuildError with the exception and, where the traceback tells, the package that raised it."""
    script = templates.read_text("docker", "rasa-gpu-smoke.py")
    report, last = engine.run_check(ref, script, [], {"CUDA_VISIBLE_DEVICES": ""})
    if report is None:
        raise BuildError(
            f"the new image of {spec.release.name} did not train a tiny bot: {last}; nothing was tagged"
        )
    seconds = f"{float(report.get('seconds', 0)):.0f} s"
    if not report.get("ok"):
        package = str(report.get("package") or "")
        where = f" (raised in {package})" if package else ""
        raise BuildError(
            f"the new image of {spec.release.name} did not train a tiny bot: {report.get('error')}{where}; nothing "
            f"was tagged. {_lock_advice(spec, bot_stage=bot_stage)}"
        )
    if report.get("licensed") is False:
        return f"{report.get('note')} ({seconds})"
    return f"trained and loaded in {seconds}"


def spacy_check(engine: ImageEngine, spec: ImageSpec, ref: str) -> str:
    """Load the bot's spaCy models in the new image as Rasa's SpacyNLP does (docker/rasa-gpu-spacy-check.py): a
    phrase that says what loaded, or a BuildError naming the model and why."""
    script = templates.read_text("docker", "rasa-gpu-spacy-check.py")
    report, last = engine.run_check(ref, script, list(spec.spacy_models), {"CUDA_VISIBLE_DEVICES": ""})
    if report is None or not report.get("ok"):
        model = (report or {}).get("model") or ", ".join(spec.spacy_models)
        error = (report or {}).get("error") or last
        raise BuildError(
            f"the new image of {spec.release.name} cannot load the spaCy model {model}: {error}; nothing was "
            "tagged. Check the requirement that provides it: a model package made for the spaCy that the image "
            f"installs ({spec.release.package}[spacy] or your spacy line)"
        )
    models = report.get("models") or {}
    loaded = ", ".join(f"{name} {version}".strip() for name, version in models.items())
    return f"spaCy {report.get('spacy')} loads {loaded} in the new image"


def _lock_advice(spec: ImageSpec, *, bot_stage: bool) -> str:
    release = spec.release
    if bot_stage:
        return (
            "The bot's own requirements break it (the Rasa stage alone trained): pin the package the line names "
            "to a version that works with its Rasa"
        )
    if locks.pythons(release):
        return (
            f"Its locked set breaks it: pin the package in tools/data/lock_fixes.toml and regenerate with "
            f"`python tools/gen_locks.py {release.version}`"
        )
    return (
        f"{release.name} has no locked set, so pip installed today's versions: lock it with "
        f"`python tools/gen_locks.py {release.version}` (a fix in tools/data/lock_fixes.toml where needed)"
    )


def check_cuda(engine: ImageEngine, spec: ImageSpec, tag: str) -> tuple[bool, str]:
    """Whether the built image can use a GPU, and a phrase that says what was found (the problems when not)."""
    libraries = list(spec.cuda_wheels.libraries) if spec.cuda_wheels is not None else []
    report = engine.cuda_check(tag, templates.read_text("docker", "rasa-gpu-cuda-check.py"), libraries)
    if report.get("ready"):
        where = "NVIDIA's wheels" if spec.cuda == "wheels" else "the base image"
        found = f"CUDA {report.get('cuda')}, cuDNN {report.get('cudnn')}"
        return (
            True,
            f"GPU-ready: TensorFlow built with {found}; {len(report.get('loaded', []))} CUDA libraries from {where} load",
        )
    problems = [str(p) for p in report.get("problems", [])] or ["no reason given"]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return False, f"CPU-only: {problems[0]}{more}"


def check_base_python(engine: ImageEngine, spec: ImageSpec) -> None:
    """Before a build: a VersionError when the base image's Python is outside the Rasa release's range (pip would
    fail only minutes into the build). The matrix's TensorFlow images are asked too: a TensorFlow image has one
    Python, and a Rasa Pro release may need another (TensorFlow 2.19's image has 3.11, Rasa Pro 3.13 wants 3.12)."""
    python = engine.image_python(spec.base_image)
    if python is None or accepts_python(spec.release.python, python):
        return
    raise VersionError(python_mismatch(spec, python))


def python_mismatch(spec: ImageSpec, python: str) -> str:
    """One line: what does not fit, and the base images that would."""
    release = spec.release
    default = release.gpu_base_image if spec.variant == "gpu" else release.cpu_base_image
    ways = [
        f"`sudo rasa-gpu base-image --suite {suite}` (Python {version}, no registry needed), "
        f"then --base-image {default_name(suite)}"
        for suite, version in SUITE_PYTHON.items()
        if accepts_python(release.python, version)
    ]
    slim = next(
        (f"3.{minor}" for minor in range(8, 15) if accepts_python(release.python, f"3.{minor}")), None
    )
    if slim:
        ways.append(f"--base-image python:{slim}-slim (CUDA then comes from PyPI: --cuda wheels)")
    if default != spec.base_image:
        ways.append(f"the matrix's {default} (drop --base-image and base_image; needs a registry)")
    return (
        f"{release.name} needs Python {release.python} but the base image {spec.base_image} has Python "
        f"{python}; nothing was built. Use a base image with a matching Python: {', or '.join(ways)}"
    )


def _pull_published(
    engine: ImageEngine, spec: ImageSpec, registry: str, on_line: Callable[[str], None]
) -> ImageResult | None:
    """The published copy of the image, pulled and tagged as the local tag; None (and a line why) to build."""
    tag, ref = spec.tag(), published_ref(spec, registry, spec.image_name)
    on_line(f"{tag} is not on this engine; looking for {ref} in the registry")
    try:
        image_id = engine.pull_published(ref, on_line)
    except PullError as exc:
        on_line(f"not pulled, building instead: {exc.message}")
        return None
    if image_id is None:
        on_line(f"{ref} is not in the registry (publish it with `rasa-gpu push`); building instead")
        return None
    engine.tag(ref, tag)
    on_line(f"pulled {ref} from the registry as {tag}; nothing built")
    return ImageResult(tag=tag, image_id=image_id, built=False, pulled_from=ref)


class ServiceImage(Protocol):
    """A single-stage image of a service (ActionsImageSpec, NotebookImageSpec)."""

    target: str

    @property
    def base_image(self) -> str: ...

    def tag(self) -> str: ...

    def context_tar(self) -> bytes: ...

    def secret_args(self) -> dict[str, str]: ...


def ensure_service_image(
    engine: ImageEngine, spec: ServiceImage, on_line: Callable[[str], None], *, rebuild: bool = False
) -> ImageResult:
    """Find a service image by its tag, or pull its base and build it."""
    tag = spec.tag()
    image_id = None if rebuild else engine.image_id(tag)
    if image_id is not None:
        return ImageResult(tag=tag, image_id=image_id, built=False)
    if engine.image_id(spec.base_image) is None:
        engine.pull(spec.base_image, on_line)
    on_line(f"building {tag} (the {spec.target} service's image)")
    image_id = engine.build(
        spec.context_tar(),
        tag=tag,
        target=spec.target,
        labels={"io.rasa-gpu.service": spec.target},
        on_line=on_line,
        secret_args=spec.secret_args(),
    )
    return ImageResult(tag=tag, image_id=image_id, built=True)
