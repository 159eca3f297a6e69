"""The spaCy models a bot's pipeline loads (SpacyNLP): each must come from one of the bot's requirements, which is
known before anything is built. A model is a Python package that no Rasa release installs, and spaCy's own models
are not on PyPI: a wheel or an sdist in the bot folder, a URL, or a private index provides it. The image built with
it loads it before it is tagged (images.spacy_check). Nothing here prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ProjectError
from .project import CONFIG_NAME

if TYPE_CHECKING:
    from .compat import RasaRelease
    from .project import BotProject
    from .requirements import BotRequirements

COMPONENT = "SpacyNLP"


def needed(
    project: BotProject, overrides: list[str], release: RasaRelease, requirements: BotRequirements
) -> tuple[str, ...]:
    """The spaCy models that config.yml's SpacyNLP entries load (with the --set overrides of SpacyNLP applied), each
    provided by a requirement of the training image; a one-line ProjectError when one is not, or when Rasa 3 would
    refuse a SpacyNLP without a model. A model given as a path (a folder in the bot) needs no requirement."""
    models = []
    for model in _models(project, overrides):
        if model is None:
            if int(release.version.split(".")[0]) < 3:
                continue  # Rasa 2 falls back to the language's model by itself
            raise ProjectError(
                f"{CONFIG_NAME}: {COMPONENT} names no model, and {release.name} loads none by itself (it stops with "
                f"'Missing model configuration for SpacyNLP'); add `model: en_core_web_md` (or the model you use) "
                f"under `- name: {COMPONENT}`, and a requirement that provides it"
            )
        if "/" in model or model.startswith("."):
            continue
        from .requirements import canonical

        if canonical(model) not in requirements.training.names():
            source = requirements.training_source
            raise ProjectError(
                f"{CONFIG_NAME}: {COMPONENT} needs the spaCy model {model}, and no requirement provides it; add to "
                f"{source} a wheel or archive in the bot folder (./{model}-….whl), its URL ({model} @ https://…) or "
                f"its name on your index ({canonical(model)}==…)"
            )
        models.append(model)
    return tuple(dict.fromkeys(models))


def _models(project: BotProject, overrides: list[str]) -> list[str | None]:
    """The `model` of each SpacyNLP entry of the pipeline (None where it names none)."""
    from .overrides import apply_overrides, matches, parse_overrides

    mine = [
        item for item in overrides if item.partition("=")[0].strip().rpartition(".")[0].endswith(COMPONENT)
    ]
    config = apply_overrides(project.config_data(), parse_overrides(mine))
    pipeline = config.get("pipeline") if isinstance(config, dict) else None
    found: list[str | None] = []
    for entry in pipeline if isinstance(pipeline, list) else []:
        if not isinstance(entry, dict) or not matches(entry.get("name"), COMPONENT):
            continue
        model: Any = entry.get("model")
        if model is not None and not isinstance(model, str):
            raise ProjectError(
                f"{CONFIG_NAME}: {COMPONENT}'s model must be the name of a spaCy model, e.g. en_core_web_md, not "
                f"{model!r}"
            )
        found.append(model.strip() if model and model.strip() else None)
    return found
