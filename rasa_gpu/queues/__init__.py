"""Queues of trainings: a training handed to a scheduler that runs it when it has room.

- ``base.py``: what every queue provides (prepare, submit, states, cancel, logs, fetch), the request, the
  shared [resources] a job asks for.
- ``slurm.py``: a Slurm job that runs `rasa-gpu train` on a node (the bot folder on the shared filesystem).
- ``kubernetes.py``: the manifests of a Kubernetes Job (the user applies them with kubectl).

``rasa-gpu submit`` and ``rasa-gpu jobs`` use only the Queue interface (``jobs.py`` keeps the records). A new queue
is one more module with a Queue subclass and one more entry in QUEUES.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import ENDED, JobState, Prepared, Queue, QueueError, QueueUnsupported, Request, Resources

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "ENDED",
    "NAMES",
    "JobState",
    "Prepared",
    "Queue",
    "QueueError",
    "QueueUnsupported",
    "Request",
    "Resources",
    "named",
]

#: Each queue's module and class (imported on first use).
QUEUES = {"slurm": ("slurm", "SlurmQueue"), "kubernetes": ("kubernetes", "KubernetesQueue")}
NAMES = tuple(QUEUES)


def named(name: str, settings: Settings | None = None) -> Queue[Any]:
    """The queue called `name`, configured from the bot's settings (their own table and [resources]; without
    settings: only to ask about jobs already submitted)."""
    if name not in QUEUES:
        from ..errors import SettingsError

        raise SettingsError(f"there is no queue named {name!r}; use one of {', '.join(NAMES)}")
    module, cls = QUEUES[name]
    queue_type = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return queue_type() if settings is None else queue_type.from_settings(settings)  # type: ignore[no-any-return]
