"""What a bot command works on: the bot, its settings (rasa-gpu.toml or pyproject, the command line on top), the
training image's spec, and why that Rasa release. Every command that builds, trains or serves resolves it here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .compat import RasaRelease, load_matrix
from .errors import RequirementsError, SettingsError
from .images import (
    DEFAULT_IMAGE_NAME,
    ActionsImageSpec,
    ImageSpec,
    check_image_reference,
    check_index_url,
    cuda_for,
    default_actions_base,
    read_ca_certs,
)
from .project import BotProject
from .redact import redact
from .requirements import BotRequirements
from .settings import Settings, load_settings, resolve_rasa

if TYPE_CHECKING:
    from .events import EventSink
    from .license_key import License
    from .runners import Runner


@dataclass(frozen=True)
class Resolved:
    project: BotProject
    settings: Settings
    spec: ImageSpec
    #: Why this Rasa release (the command line, the settings, the bot's requirements, or the newest).
    why: str
    #: The bot's requirements (requirements.read), for the action server's image.
    requirements: BotRequirements = BotRequirements()
    #: What the user should know about these decisions (the CLI shows each as a warning).
    notes: tuple[str, ...] = ()

    def actions_spec(self) -> ActionsImageSpec | None:
        """The action server's image, or None when the bot has no custom actions."""
        from . import services

        if not services.has_actions(self.project):
            return None
        if self.settings.actions_base_image:
            check_image_reference(
                self.settings.actions_base_image, self.settings.subject("actions_base_image")
            )
        actions = self.requirements.actions
        return ActionsImageSpec(
            release=self.spec.release,
            base_image=self.settings.actions_base_image
            or self.settings.base_image
            or default_actions_base(self.spec.release),
            requirements=self.requirements.actions_lines(),
            pip_index_url=self.spec.pip_index_url,
            ca_certs=self.spec.ca_certs,
            constraints=actions.constraint_lines(),
            files=_archives(self.project, actions.archives()),
            rasa_sdk=tuple(r.line for r in self.requirements.rasa_sdk),
        )

    def license(self) -> License | None:
        """Rasa Pro's license (None for Rasa Open Source), or a one-line SettingsError that says where to put it."""
        from . import license_key

        license_file = self.settings.license_file
        if license_file and self.spec.release.pro and not license_key.from_environment():
            license_file = str(bot_settings_path(self.settings, "license_file", license_file, self.project))
        return license_key.find(self.spec.release, license_file, self.project.root)

    def runner(self, on_event: EventSink) -> Runner:
        """Where this bot's containers run, from the settings (not contacted until first used); on_event hears once
        what the user should know about the way to that engine (a tcp:// without TLS)."""
        from .runners import connect

        return connect(self.settings.where(), on_event)


def resolve(bot: str, given: Settings, variant: str) -> Resolved:
    """Load the bot (every YAML file parsed), merge the settings the command line gives (None: not given) over its
    own, and pick the image: the default base image of `variant` ("gpu" or "cpu") unless the settings name one."""
    from . import requirements as bot_requirements

    project = BotProject.load(bot)
    settings = load_settings(project.root).merged(given)
    found = bot_requirements.read(project.root)
    spec, why = image_spec(project, settings, variant, found)
    return Resolved(project, settings, spec, why, found, _index_notes(settings, found))


def cuda_source(
    settings: Settings, release: RasaRelease, base_image: str, variant: str, has_wheels: bool
) -> str:
    """Where the image's CUDA comes from ("base", "wheels" or "none"): images.cuda_for what the settings ask, after
    refusing wheels that NVIDIA does not publish for this TensorFlow."""
    asked = settings.cuda or "auto"
    if asked == "wheels" and not has_wheels:
        raise SettingsError(
            f"{settings.origin('cuda')}: NVIDIA publishes no CUDA wheels that serve TensorFlow {release.tensorflow} "
            f"(built with CUDA {release.cuda}, cuDNN {release.cudnn}); use its GPU base image "
            f"{release.gpu_base_image} (--cuda base) or train on the CPU (--cuda none)"
        )
    return cuda_for(asked, release, base_image, variant, has_wheels)


def image_spec(
    project: BotProject, settings: Settings, variant: str, requirements: BotRequirements | None = None
) -> tuple[ImageSpec, str]:
    """The training image of the bot with these settings (and its requirements, read here unless given), and why its
    Rasa release. A spaCy model that the pipeline loads and no requirement provides stops it here, before a build."""
    from . import requirements as bot_requirements
    from . import spacy_models

    if requirements is None:
        requirements = bot_requirements.read(project.root)
    matrix = load_matrix()
    release, why = resolve_rasa(matrix, project.root, settings, requirements)
    models = spacy_models.needed(project, settings.set, release, requirements)
    default_base = release.gpu_base_image if variant == "gpu" else release.cpu_base_image
    base_image = settings.base_image or default_base
    # What goes into the Dockerfile as it is, checked here to name where it was set (the spec checks it again).
    if settings.base_image:
        check_image_reference(settings.base_image, settings.subject("base_image"))
    if settings.pip_index_url:
        check_index_url(settings.pip_index_url, settings.subject("pip_index_url"))
    wheels = matrix.wheels_for(release.tensorflow)
    cuda = cuda_source(settings, release, base_image, variant, wheels is not None)
    spec = ImageSpec(
        release=release,
        base_image=base_image,
        variant=variant,
        cuda=cuda,
        cuda_wheels=wheels,
        pip_index_url=settings.pip_index_url or requirements.index_url,
        ca_certs=read_ca_certs(
            [str(bot_settings_path(settings, "ca_certs", c, project)) for c in settings.ca_certs]
        ),
        extra_requirements=requirements.training_lines(release.package, release.version),
        extra_constraints=requirements.training.constraint_lines(),
        bot_files=_archives(project, requirements.training.archives()),
        spacy_models=models,
        registry=settings.registry,
        image_name=settings.image_name or DEFAULT_IMAGE_NAME,
        base_named=bool(settings.base_image),
        cuda_asked=settings.cuda or "auto",
    )
    return spec, why


def _archives(project: BotProject, paths: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """The wheels and sdists that requirements name (paths in the bot, checked by requirements.read), read."""
    archives = []
    for path in paths:
        try:
            archives.append((path, (project.root / path).read_bytes()))
        except OSError as exc:
            raise RequirementsError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return tuple(archives)


def _index_notes(settings: Settings, requirements: BotRequirements) -> tuple[str, ...]:
    """One line when the bot's requirements name an index and the command line or the settings name another: theirs
    is used (the command line and the settings win over what the bot's files say)."""
    given, named = settings.pip_index_url, requirements.index_url
    if not given or not named or _without_login(given) == _without_login(named):
        return ()
    return (
        f"{requirements.index_where} names the index {redact(named)}, but {settings.subject('pip_index_url')} "
        f"names {redact(given)}: building from {redact(given)} (the command line and the settings win over the "
        "bot's requirements)",
    )


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")


def bot_settings_path(settings: Settings, key: str, value: str, project: BotProject) -> Path:
    """A file that a setting names, for reading into an image or a container: one given on the command line may be
    anywhere (the user's own choice); one that the bot's settings name must stay inside the bot folder (links
    followed), so that a cloned bot cannot make rasa-gpu read ~/.ssh/id_ed25519 as a license or bake it into an
    image."""
    path = Path(value).expanduser()
    if key in settings.from_cli:
        return path
    real = Path(os.path.realpath(project.root / path))
    if real != project.root and project.root not in real.parents:
        raise SettingsError(
            f"{settings.origin(key)}: {key} {value} is outside the bot folder; a bot's settings may only name files "
            f"inside it: move the file into the bot{_OWN_WAY.get(key, '')}"
        )
    return real


#: How the user gives such a file of their own instead.
_OWN_WAY = {
    "license_file": ", or set RASA_PRO_LICENSE in your environment",
    "ca_certs": ", or pass --ca-cert on the command line",
}
