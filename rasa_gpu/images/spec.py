"""What an image is made of, as data: the training image (ImageSpec, the shared Rasa stage and the bot stage), the
services' images, and the names they get from a hash of everything that goes into them, so that an image that
exists is found with one cheap lookup."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from functools import cached_property

from .. import __version__, locks, templates
from ..compat import CudaWheels, RasaRelease, accepts_python
from ..settings import check_image_name, check_registry
from . import rendering, values
from .rendering import Tmpl
from .values import check_dockerfile_values, index_secret_args

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
        pip_index = values.pip_index(self.pip_index_url)
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
            rasa_install = rendering.locked_install(pip_index, plain_install, self.release.name, lock_pythons)
        ca_block = rendering.ca_block(self.ca_certs)
        text = Tmpl(templates.read_text("docker", "Dockerfile.tmpl")).substitute(
            tool_version=__version__,
            index_note=values.index_note(self.pip_index_url),
            rasa_name=self.release.name,
            tensorflow=self.release.tensorflow,
            cuda_line=self.cuda_line(),
            cuda_block=(
                rendering.cuda_block(self.cuda_wheels, pip_index, locked=bool(self._cuda_files()))
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
        return rendering.tidy(text)

    def bot_dockerfile(self, rasa_stage: str | None = None) -> str:
        """The bot stage's Dockerfile (docker/Dockerfile.bot.tmpl): FROM the Rasa stage's image, by the name it has
        (rasa_tag, or its cpu twin when it failed the CUDA check)."""
        return rendering.tidy(
            Tmpl(templates.read_text("docker", "Dockerfile.bot.tmpl")).substitute(
                rasa_stage=rasa_stage or self.rasa_tag(),
                pip_index=values.pip_index(self.pip_index_url),
                lock_folder=locks.CONTEXT_FOLDER,
                bot_files=rendering.files_copy(self.bot_files),
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
        files.update(rendering.ca_files(self.ca_certs))
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
            **rendering.bot_files(self.bot_files),
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
        return f"{IMAGE_REPO}:{self.release.version}-tf{self.release.tensorflow}-{kind}-{rendering.digest(names, files)}"

    def tag(self) -> str:
        """Tag of the image that trains this bot: the Rasa stage itself when the bot needs nothing extra. It says
        gpu when the image is built to use one; an image that fails the check after its build is tagged as its
        cpu_twin instead."""
        if not self.extra_requirements:
            return self.rasa_tag()
        files = self.bot_context_files()  # its Dockerfile names the Rasa stage's tag
        kind = "gpu" if self.wants_gpu else "cpu"
        return f"{BOT_IMAGE_REPO}:{self.release.version}-{kind}-{rendering.digest(sorted(files), files, self._archive_digests)}"

    @cached_property
    def _archive_digests(self) -> dict[str, bytes]:
        """The sha256 of each archive of the bot, worked out once per spec (a spaCy model may be hundreds of MB)."""
        return {
            name: hashlib.sha256(data).digest() for name, data in rendering.bot_files(self.bot_files).items()
        }

    def context_tar(self) -> bytes:
        return rendering.tar(self.context_files())

    def bot_context_tar(self, rasa_stage: str) -> bytes:
        return rendering.tar(self.bot_context_files(rasa_stage))


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


def candidate(tag: str, build_id: str = "") -> str:
    """The name a new image is built under until it has passed its checks: rasa-gpu/candidate:<repo>-<name>-<build>.
    The build's own id keeps two builds of one tag at once (two users, two terminals) off each other's candidate."""
    repo, _, name = tag.rpartition(":")
    return f"{CANDIDATE_REPO}:{repo.rpartition('/')[2]}-{name}" + (f"-{build_id}" if build_id else "")


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
        pip_index = values.pip_index(self.pip_index_url)
        extra = ""
        if self.requirements:
            share = "/usr/local/share/rasa-gpu"
            names = "actions-requirements.txt" + (" actions-constraints.txt" if self.constraints else "")
            constrained = f" -c {share}/actions-constraints.txt" if self.constraints else ""
            extra = (
                "# The action server's requirements (actions/requirements-actions.txt and the like)\n"
                f"COPY {names} {share}/\n"
                f"{rendering.files_copy(self.files)}\n"
                f"RUN python3 -m pip install {pip_index}-r {share}/actions-requirements.txt{constrained}"
            )
        rasa_sdk = f'"rasa-sdk{self.release.rasa_sdk}"'
        if self.rasa_sdk:  # the bot's own pin, quoted for the shell (a marker holds quotes)
            rasa_sdk = " ".join(shlex.quote(line) for line in self.rasa_sdk)
        text = Tmpl(templates.read_text("docker", "Dockerfile.actions.tmpl")).substitute(
            tool_version=__version__,
            index_note=values.index_note(self.pip_index_url),
            rasa_version=self.release.version,
            base_image=self.base_image,
            ca_block=rendering.ca_block(self.ca_certs),
            pip_index=pip_index,
            pip_version=PIP_VERSION,
            rasa_sdk=rasa_sdk,
            rasa_sdk_spec=self.release.rasa_sdk,
            requirements=extra,
        )
        return rendering.tidy(text)

    def context_files(self) -> dict[str, bytes]:
        files = {"Dockerfile": self.dockerfile().encode(), **rendering.ca_files(self.ca_certs)}
        if self.requirements:
            files["actions-requirements.txt"] = ("\n".join(self.requirements) + "\n").encode()
            if self.constraints:
                files["actions-constraints.txt"] = ("\n".join(self.constraints) + "\n").encode()
            files.update(rendering.bot_files(self.files))
        return files

    def tag(self) -> str:
        files = self.context_files()
        return f"{ACTIONS_IMAGE_REPO}:{self.release.version}-{rendering.digest(sorted(files), files)}"

    def context_tar(self) -> bytes:
        return rendering.tar(self.context_files())


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
        pip_index = values.pip_index(self.pip_index_url)
        return (
            f"# Rendered by rasa-gpu {__version__}: the training image plus a Jupyter notebook server."
            f"{values.index_note(self.pip_index_url)}\n"
            f"FROM {self.training_image} AS notebook\n"
            f'RUN python3 -m pip install {pip_index}"{NOTEBOOK_REQUIREMENT}"\n'
            "ENTRYPOINT []\n"
        )

    def tag(self) -> str:
        files = {"Dockerfile": self.dockerfile().encode()}
        return f"{NOTEBOOK_IMAGE_REPO}:{self.rasa_version}-{rendering.digest(['Dockerfile'], files)}"

    def context_tar(self) -> bytes:
        return rendering.tar({"Dockerfile": self.dockerfile().encode()})


def default_actions_base(release: RasaRelease) -> str:
    """python:3.X-slim with the newest Python (3.8 to 3.10) that the Rasa release accepts."""
    newest = next((v for v in ("3.10", "3.9", "3.8", "3.7") if accepts_python(release.python, v)), "3.8")
    return f"python:{newest}-slim"
