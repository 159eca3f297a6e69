"""Project settings: ``rasa-gpu.toml`` or ``[tool.rasa-gpu]`` in the bot's pyproject.toml, and the bot's requirements.

Command-line options win over settings; settings win over what the bot's requirements say; the newest supported
Rasa release is the last resort.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compat import Matrix, RasaRelease, is_exact_version
from .errors import SettingsError, VersionError
from .project import read_requirements

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from .runners import Where

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

SETTINGS_FILE = "rasa-gpu.toml"
GPU_MODES = ("auto", "on", "off")
#: Where a training image's CUDA libraries come from: auto (base when the base is TensorFlow's GPU image, else NVIDIA's
#: wheels from PyPI), the base image itself, the wheels, or none (a CPU-only image).
CUDA_SOURCES = ("auto", "base", "wheels", "none")
PORT_SETTINGS = ("rasa_port", "actions_port", "tensorboard_port", "jupyter_port")
#: Settings whose command-line option is not simply --<key>.
_OPTION_NAMES = {
    "image_name": "--name",
    **{f"slurm_{key}": f"--{key}" for key in ("partition", "account", "time", "gpus", "cpus", "memory")},
}


@dataclass
class Settings:
    """Everything a user may set per bot. ``None`` means "not set here"."""

    rasa_version: str | None = None
    base_image: str | None = None
    cuda: str | None = None
    license_file: str | None = None  # Rasa Pro: a file with the license (RASA_PRO_LICENSE wins)
    pip_index_url: str | None = None
    ca_certs: list[str] = field(default_factory=list)
    gpu: str | None = None
    gpus: str | None = None
    set: list[str] = field(default_factory=list)
    #: How many models a training leaves in models/ (the served and the pinned ones are kept on top); None: all.
    keep_models: int | None = None
    # ---- services (rasa-gpu up) ----
    actions_base_image: str | None = None
    bind: str | None = None
    rasa_port: int | None = None
    actions_port: int | None = None
    tensorboard_port: int | None = None
    jupyter_port: int | None = None
    # ---- published images (rasa-gpu push, and pulling them back instead of building) ----
    registry: str | None = None
    image_name: str | None = None
    # ---- where containers run (runners.Where) ----
    host: str | None = None
    context: str | None = None
    # ---- queued trainings (rasa-gpu submit --to slurm); the [slurm] table of rasa-gpu.toml ----
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_time: str | None = None
    slurm_gpus: int | None = None
    slurm_cpus: int | None = None
    slurm_memory: str | None = None
    # ---- Kubernetes Jobs (rasa-gpu submit --to kubernetes); the [kubernetes] table of rasa-gpu.toml ----
    kubernetes_namespace: str | None = None
    kubernetes_node_selector: dict[str, str] = field(default_factory=dict)
    kubernetes_tolerations: list[dict[str, Any]] = field(default_factory=list)
    kubernetes_storage: str | None = None  # the claim's size, e.g. 10Gi
    kubernetes_storage_class: str | None = None
    kubernetes_license_secret: str | None = None  # a Secret with the key RASA_PRO_LICENSE (Rasa Pro)
    #: Where the settings came from, for messages.
    source: str = "defaults"
    #: Settings given on the command line (they name the option in messages).
    from_cli: frozenset[str] = frozenset()

    def origin(self, key: str) -> str:
        option = _OPTION_NAMES.get(key, f"--{key.replace('_', '-')}")
        return option if key in self.from_cli or self.source == "defaults" else self.source

    def where(self) -> Where:
        """The engine these settings name (runners.connect turns it into a runner)."""
        from .runners import Where

        return Where(host=self.host, context=self.context)

    def merged(self, **cli: Any) -> Settings:
        """These settings with every command-line value that was given (not None, not empty) on top."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        given = {k: v for k, v in cli.items() if v not in (None, (), [])}
        for key, value in given.items():
            values[key] = list(value) if isinstance(value, (tuple, list)) else value
        values["from_cli"] = self.from_cli | set(given)
        merged = Settings(**values)
        if merged.gpu is not None and merged.gpu not in GPU_MODES:
            raise SettingsError(
                f"{merged.origin('gpu')}: gpu must be one of {', '.join(GPU_MODES)}, not '{merged.gpu}'"
            )
        if merged.cuda is not None and merged.cuda not in CUDA_SOURCES:
            raise SettingsError(
                f"{merged.origin('cuda')}: cuda must be one of {', '.join(CUDA_SOURCES)}, not '{merged.cuda}'"
            )
        for key in PORT_SETTINGS:
            value = getattr(merged, key)
            if value is not None and (not isinstance(value, int) or not 1 <= value <= 65535):
                raise SettingsError(
                    f"{merged.origin(key)}: {key} must be a port number (1-65535), not '{value}'"
                )
        keep = merged.keep_models
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise SettingsError(
                f"{merged.origin('keep_models')}: keep_models must be a whole number of models, at least 1, "
                f"not '{keep}'"
            )
        if merged.registry is not None:
            merged.registry = check_registry(merged.registry, merged.origin("registry"))
        if merged.image_name is not None:
            merged.image_name = check_image_name(merged.image_name, merged.origin("image_name"))
        selector = merged.kubernetes_node_selector
        if not isinstance(selector, dict) or not all(isinstance(v, str) for v in selector.values()):
            raise SettingsError(
                f"{merged.source}: [kubernetes] node_selector must be a table of strings, e.g. "
                'node_selector = { "nvidia.com/gpu.present" = "true" }'
            )
        tolerations = merged.kubernetes_tolerations
        if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
            raise SettingsError(
                f"{merged.source}: [kubernetes] tolerations must be a list of tables, e.g. "
                'tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]'
            )
        return merged


# ---- where published images live ---------------------------------------------------------------------------------

# The grammar of Docker image references (github.com/distribution/reference): a registry host with an optional port,
# then lowercase path components separated by "/".
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9A-Fa-f:]+\])(?::(\d{{1,5}}))?$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
REGISTRY_FORM = "HOST[:PORT][/PATH], e.g. localhost:5000 or registry.example.com/team"


def check_registry(value: str, origin: str = "--registry") -> str:
    """A registry as Docker reads it in an image name (host, optional port, optional path); trailing / dropped."""
    text = str(value).strip().rstrip("/")
    if "://" in text:
        raise SettingsError(
            f"{origin}: '{value}' has a scheme; write the registry without it: {REGISTRY_FORM} "
            "(plain HTTP is a Docker engine setting: insecure-registries in /etc/docker/daemon.json)"
        )
    host, _, path = text.partition("/")
    match = _HOST.match(host)
    if not text or match is None or (path and not all(_PATH_COMPONENT.match(p) for p in path.split("/"))):
        raise SettingsError(f"{origin}: '{value}' is not a registry; use {REGISTRY_FORM}")
    if match.group(1) is not None and not 1 <= int(match.group(1)) <= 65535:
        raise SettingsError(f"{origin}: '{value}' has no valid port (1-65535); use {REGISTRY_FORM}")
    if not ("." in host or ":" in host or host == "localhost"):
        # Docker reads a first part without '.' or ':' as a Docker Hub account, not as a host.
        raise SettingsError(
            f"{origin}: '{value}' does not name a registry host (Docker would read it as a Docker Hub account); "
            f"use {REGISTRY_FORM}, or docker.io/ACCOUNT for Docker Hub"
        )
    return text


def check_image_name(value: str, origin: str = "--name") -> str:
    """The repository name under the registry: lowercase letters, digits, '.', '_', '-', components split by '/'."""
    text = str(value).strip()
    if not text or not all(_PATH_COMPONENT.match(p) for p in text.split("/")):
        raise SettingsError(
            f"{origin}: '{value}' is not an image name; use lowercase letters, digits, '.', '_', '-' and '/' "
            "between parts, e.g. rasa-gpu or team/support-bot"
        )
    return text


def load_settings(root: Path) -> Settings:
    """Read rasa-gpu.toml, else [tool.rasa-gpu] of pyproject.toml, else defaults."""
    for path, table in ((root / SETTINGS_FILE, None), (root / "pyproject.toml", ("tool", "rasa-gpu"))):
        if not path.is_file():
            continue
        try:
            data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path.name}: invalid TOML: {exc}") from None
        for key in table or ():
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if not data:
            continue
        known = {f.name for f in fields(Settings)} - {"source", "from_cli"}
        values = {k.replace("-", "_"): v for k, v in data.items()}
        for name in ("slurm", "kubernetes"):  # [slurm] partition = ... is slurm_partition
            if isinstance(values.get(name), dict):
                values.update({f"{name}_{k.replace('-', '_')}": v for k, v in values.pop(name).items()})
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(
                f"{path.name}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        for key in ("ca_certs", "set"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        if "gpus" in values:
            values["gpus"] = (
                ",".join(str(g) for g in values["gpus"])
                if isinstance(values["gpus"], list)
                else str(values["gpus"])
            )
        settings = Settings(**values, source=path.name if table is None else f"{path.name} [tool.rasa-gpu]")
        return settings.merged()
    return Settings()


# ---- which Rasa --------------------------------------------------------------------------------------------------

_POETRY_CARET = re.compile(r"^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_POETRY_TILDE = re.compile(r"^~(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _poetry_to_pep440(spec: str) -> str:
    spec = spec.strip()
    if m := _POETRY_CARET.match(spec):
        major, minor, patch = (int(x) if x else 0 for x in m.groups())
        upper = f"{major + 1}.0.0" if major else f"0.{minor + 1}.0"
        return f">={major}.{minor}.{patch},<{upper}"
    if m := _POETRY_TILDE.match(spec):
        major, minor, patch = (int(x) if x else 0 for x in m.groups())
        return (
            f">={major}.{minor}.{patch},<{major}.{minor + 1}.0" if m.group(2) else f">={major},<{major + 1}"
        )
    if is_exact_version(spec):
        return f"=={spec}"
    return spec


#: The PyPI names of Rasa: Rasa Open Source and Rasa Pro.
RASA_PACKAGES = ("rasa", "rasa-pro")


def rasa_requirement(root: Path) -> tuple[str, str, str] | None:
    """The bot's own Rasa pin as (package: rasa or rasa-pro, PEP 440 specifier, where it was found), from
    requirements.txt or pyproject.toml."""
    req_file = root / "requirements.txt"
    if req_file.is_file():
        for line in read_requirements(req_file):
            req = _parse_requirement(line)
            if req is not None and _rasa_name(req.name) is not None:
                return _rasa_name(req.name) or "rasa", str(req.specifier), "requirements.txt"
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"pyproject.toml: invalid TOML: {exc}") from None
        for line in data.get("project", {}).get("dependencies", []):
            req = _parse_requirement(line)
            if req is not None and _rasa_name(req.name) is not None:
                return _rasa_name(req.name) or "rasa", str(req.specifier), "pyproject.toml"
        dependencies = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
        for name, poetry in dependencies.items():
            package = _rasa_name(name)
            if package is None:
                continue
            if isinstance(poetry, dict):
                poetry = poetry.get("version")
            if isinstance(poetry, str):
                return package, _poetry_to_pep440(poetry), "pyproject.toml [tool.poetry]"
    return None


def _rasa_name(name: str) -> str | None:
    """rasa or rasa-pro for a requirement's name (any spelling PyPI treats as the same), else None."""
    canonical = re.sub(r"[-_.]+", "-", name).lower()
    return canonical if canonical in RASA_PACKAGES else None


def extra_requirements(root: Path) -> list[str]:
    """Lines of the bot's requirements.txt other than Rasa itself: what custom components need."""
    req_file = root / "requirements.txt"
    if not req_file.is_file():
        return []
    lines = []
    for line in read_requirements(req_file):
        if line.startswith("-"):
            raise SettingsError(
                f"requirements.txt: option lines such as '{line}' are not supported in the image build; "
                "use plain requirement lines (and --pip-index-url for another index)"
            )
        req = _parse_requirement(line)
        if req is None:
            raise SettingsError(f"requirements.txt: cannot read the line '{line}'; use a PEP 508 requirement")
        if _rasa_name(req.name) is None and req.name.lower() not in ("rasa-sdk", "rasa_sdk", "tensorflow"):
            lines.append(line)
    return lines


def _parse_requirement(line: str) -> Requirement | None:
    """A PEP 508 requirement from a line that read_requirements gave (or one of pyproject's dependencies)."""
    line = line.strip()
    if not line or line.startswith(("#", "-")):
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def resolve_rasa(matrix: Matrix, root: Path, settings: Settings) -> tuple[RasaRelease, str]:
    """The Rasa release to use and a phrase saying why."""
    if settings.rasa_version:
        origin = settings.origin("rasa_version")
        version = settings.rasa_version.lstrip("=")
        if not is_exact_version(version):
            raise VersionError(
                f"{origin}: '{settings.rasa_version}' is not a version; supported: {matrix.supported_summary()}"
            )
        return matrix.get(version), f"from {origin}"
    found = rasa_requirement(root)
    if found is not None:
        package, spec, where = found
        if not spec:
            if package == "rasa-pro" and matrix.pro_default:
                return matrix.get(matrix.pro_default), f"newest Rasa Pro ({where} does not pin it)"
            return matrix.get(matrix.default), f"newest supported ({where} does not pin Rasa)"
        return matrix.newest_matching(spec, source=where, package=package), f"from {where} ({package}{spec})"
    return matrix.get(matrix.default), "newest supported"
