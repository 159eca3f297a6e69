"""A bot's requirements, read the way pip reads them and split the way the images need them: the one owner of this
rule (the training image, the action server's image, the Rasa pin and the spaCy model check all ask here).

What is read:

- the training image's packages: ``requirements.txt`` when the bot has one, else ``pyproject.toml``'s main
  dependencies (``[project] dependencies`` or ``[tool.poetry.dependencies]``);
- the action server's packages: every file of ACTIONS_FILES that exists (RasaHQ's demos and Rasa's docs keep them
  in ``actions/requirements-actions.txt``), plus pyproject's ``actions`` extra (``[project.optional-dependencies]``)
  or poetry group (``[tool.poetry.group.actions.dependencies]``); other groups (dev, test, docs) are not installed.

A requirements file may hold what pip reads in one: requirement lines (names, versions, extras, environment markers,
URLs, a path to a wheel or an sdist in the bot folder), ``-r``/``--requirement`` and ``-c``/``--constraint``
includes (relative to the including file, inside the bot folder, no cycles), ``-i``/``--index-url`` and
``--extra-index-url``, comments and line continuations. ``-r`` of an action server's file (as ``-r
actions/requirements-actions.txt`` in the demos' requirements.txt) is that server's, not the training image's.
Everything else is refused in one line that names the file, the line and what to do. Rasa's own line picks the
release (settings.resolve_rasa) and its extras (``rasa[spacy]``) are installed from the release's own metadata;
``rasa-sdk`` lines pin the action server's rasa-sdk; ``tensorflow`` is the matrix's. Nothing here prints.
"""

from __future__ import annotations

from pathlib import Path

from .files import Reader, known_options, logical_lines
from .pyproject import read_pyproject
from .sets import (
    ACTIONS_FILES,
    ACTIONS_GROUP,
    ARCHIVE_SUFFIXES,
    CONTEXT_FOLDER,
    IMAGE_FOLDER,
    PYPROJECT,
    RASA_PACKAGES,
    STAGE_EXTRAS,
    TRAINING_FILE,
    BotRequirements,
    RasaPin,
    Requirement,
    RequirementSet,
    canonical,
)

__all__ = [
    "ACTIONS_FILES",
    "ACTIONS_GROUP",
    "ARCHIVE_SUFFIXES",
    "CONTEXT_FOLDER",
    "IMAGE_FOLDER",
    "PYPROJECT",
    "RASA_PACKAGES",
    "STAGE_EXTRAS",
    "TRAINING_FILE",
    "BotRequirements",
    "RasaPin",
    "Requirement",
    "RequirementSet",
    "canonical",
    "known_options",
    "logical_lines",
    "read",
]


def read(root: Path) -> BotRequirements:
    """Everything the bot's requirements say, checked; a one-line RequirementsError naming the file and the line
    otherwise."""
    reader = Reader(root)
    training_file = root / TRAINING_FILE
    has_file = training_file.is_file() or training_file.is_symlink()
    pyproject = read_pyproject(
        root, rasa_only=has_file
    )  # with a requirements.txt, pyproject's Rasa line only
    if has_file:
        reader.read_file(training_file, "training", constraint=False)
        source = TRAINING_FILE
    else:
        reader.add_lines(pyproject.main, "training")
        source = PYPROJECT
    for name in ACTIONS_FILES:
        path = root / name
        if path.is_file() or path.is_symlink():
            reader.read_file(path, "actions", constraint=False)
    reader.add_lines(pyproject.actions, "actions")
    rasa = reader.rasa
    if rasa is None and source == TRAINING_FILE:
        rasa = Reader(root).add_lines(pyproject.main, "training").rasa  # the Rasa pin: pyproject's next
    return BotRequirements(
        training=reader.set("training"),
        actions=reader.set("actions"),
        rasa=rasa,
        rasa_sdk=tuple(reader.rasa_sdk),
        index_url=reader.index_url,
        index_where=reader.index_where,
        extra_index_urls=tuple(dict.fromkeys(reader.extra_index_urls)),
        training_source=source,
    )
