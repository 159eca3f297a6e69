"""docker-py, loaded on first use, and its errors turned into rasa-gpu's: the one place that reads what an engine
said went wrong.

docker-py (with requests and urllib3, about 0.2 s to import) loads on the first call that needs it: an except clause
that is reached, a client being made. The modules of this package import `docker` from here outside type checking.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Union

from ..errors import RasaGpuError

if TYPE_CHECKING:
    import docker.errors

    import docker
else:

    class _OnFirstUse:
        """`docker` for this package, imported when an attribute is first read."""

        def __getattr__(self, name: str) -> Any:
            module = importlib.import_module("docker")
            importlib.import_module("docker.errors")
            value = getattr(module, name)
            setattr(self, name, value)  # read once: later reads find it here
            return value

    docker = _OnFirstUse()

LineSink = Callable[[str], None]
#: What failed, as the start of a message ("Docker could not tag X as Y"), or a function that makes the whole error
#: from the engine's explanation (a registry's refusal, a GPU the engine cannot give).
Problem = Union[str, Callable[[str], RasaGpuError]]


def explain(exc: docker.errors.APIError) -> str:
    """The engine's own words for an error (its explanation, else docker-py's message)."""
    return str(exc.explanation or exc)


def is_missing(exc: docker.errors.APIError) -> bool:
    """The engine answered "no such thing" (404)."""
    return isinstance(exc, docker.errors.NotFound) or exc.status_code == 404


@contextmanager
def mapped(problem: Problem, *, missing_ok: bool = False) -> Iterator[None]:
    """An engine's error inside the block becomes one rasa-gpu error: "<problem>: <the engine's explanation>", or
    what `problem` makes of the explanation. With missing_ok, an answer of "no such thing" ends the block quietly
    (the code after the block says what that means)."""
    try:
        yield
    except docker.errors.APIError as exc:
        if missing_ok and is_missing(exc):
            return
        explanation = explain(exc)
        raise (
            RasaGpuError(f"{problem}: {explanation}") if isinstance(problem, str) else problem(explanation)
        ) from None


def last_meaningful(lines: list[str]) -> str:
    """The last line that says something, or "no output"."""
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return "no output"
