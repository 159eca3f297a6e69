"""Every failure rasa-gpu knows how to explain. The CLI turns these into a one-line message and an exit code."""

from __future__ import annotations

from collections.abc import Sequence


class RasaGpuError(Exception):
    """Root of all expected errors: a message that says what happened and what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        #: Extra lines shown under the message (for example the last lines of a failed build).
        self.details = list(details)

    def __str__(self) -> str:
        return self.message


class ProjectError(RasaGpuError):
    """The bot folder is missing or is not a Rasa project."""


class YamlError(RasaGpuError):
    """A YAML file of the bot cannot be parsed. Carries file and line so editors can point at it."""

    def __init__(self, path: str, line: int, column: int, problem: str) -> None:
        super().__init__(f"{path}:{line}:{column}: invalid YAML: {problem}")
        self.path, self.line, self.column, self.problem = path, line, column, problem


class RequirementsError(RasaGpuError):
    """A requirements file (or pyproject's dependencies) says something an image build cannot do."""


class VersionError(RasaGpuError):
    """The requested Rasa version is unknown or not supported."""


class SettingsError(RasaGpuError):
    """rasa-gpu.toml, [tool.rasa-gpu] or a command-line option is wrong."""


class EngineUnavailable(RasaGpuError):
    """No Docker engine answers."""

    exit_code = 3


class RegistryUnreachable(RasaGpuError):
    """The base image is not local and cannot be pulled."""


class BuildError(RasaGpuError):
    """docker build failed; details hold the failing step and its last lines."""


class GpuUnavailable(RasaGpuError):
    """A GPU was required (--gpu on) but the engine or TensorFlow cannot provide one."""

    exit_code = 4


class TrainingFailed(RasaGpuError):
    """rasa train exited non-zero inside the container; details hold Rasa's last lines."""

    def __init__(self, message: str, *, exit_code: int, details: Sequence[str] = ()) -> None:
        super().__init__(message, details=details)
        self.container_exit_code = exit_code


class DiskFull(RasaGpuError):
    """No space left while writing the model; existing models are untouched."""


class BusyError(RasaGpuError):
    """Another training of the same bot holds the lock and --no-wait was given."""

    exit_code = 75


class ComposeError(RasaGpuError):
    """docker compose is missing or one of its commands failed; details hold its last lines."""


class ServicesError(RasaGpuError):
    """The services cannot start or did not become healthy (a busy port, no model, an unhealthy service)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl+C, SIGTERM or SIGHUP, with what the command did about it (the message says what really happened).

    A KeyboardInterrupt, not a RasaGpuError: code that carries on after an error (watch) must not carry on after this.
    """

    exit_code = 130

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)
        self.message = message


class PushError(RasaGpuError):
    """A registry refused an image or did not answer: not logged in, nothing listening, TLS expected."""


class PullError(RasaGpuError):
    """A published image could not be pulled back (the registry did not answer or refused); the caller builds."""


class RemoteUnsupported(RasaGpuError):
    """A command that needs this machine's engine was pointed at an engine elsewhere."""
