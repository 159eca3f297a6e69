"""Project settings: ``rasa-gpu.toml`` or ``[tool.rasa-gpu]`` in the bot's pyproject.toml, and which Rasa release.

Command-line options win over settings; settings win over what the bot's requirements say; the newest supported
Rasa release is the last resort.
"""

from __future__ import annotations

import re
import sys
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compat import Matrix, RasaRelease, is_exact_version
from .errors import SettingsError, VersionError

if TYPE_CHECKING:
    from .gpu import GpuRequest
    from .requirements import BotRequirements
    from .runners import Where

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

SETTINGS_FILE = "rasa-gpu.toml"
PYPROJECT_TABLE = "pyproject.toml [tool.rasa-gpu]"
GPU_MODES = ("auto", "on", "off")
#: Where a training image's CUDA libraries come from: auto (base when the base is TensorFlow's GPU image, else NVIDIA's
#: wheels from PyPI), the base image itself, the wheels, or none (a CPU-only image).
CUDA_SOURCES = ("auto", "base", "wheels", "none")
#: Settings whose command-line option is not simply --<key>.
_OPTION_NAMES = {
    "image_name": "--name",
    "ca_certs": "--ca-cert",
    **{f"slurm_{key}": f"--{key}" for key in ("partition", "account")},
    **{f"resources_{key}": f"--{key}" for key in ("time", "gpus", "cpus", "memory")},
    "resources_gpus": "--gpu-count",
    "ci_fail_on": "--fail-on",
    "ci_baseline": "--baseline",
}
#: The tables of rasa-gpu.toml: `partition` under [slurm] is the setting slurm_partition.
TABLES = ("slurm", "kubernetes", "resources", "ci")
#: What a queued training asks for, shared by every queue: [resources]. Read from [slurm] too (where they were
#: before Kubernetes used them), with a notice.
RESOURCES = ("gpus", "cpus", "memory", "time")


# ---- what each setting's value must be -----------------------------------------------------------------------------

#: What no single-line setting may hold: a line break (or a character that hides one) would start a new line in the
#: sbatch scripts, Dockerfiles and YAML that settings go into.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _shown(value: Any) -> str:
    """A wrong value as the user wrote it (TOML's words for its types), for 'must be X, not Y'."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value) if _CONTROL.search(value) else f"'{value}'"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a table" if isinstance(value, dict) else f"a {type(value).__name__}"


@dataclass(frozen=True)
class Kind:
    """What a setting's value must be: the one rule for it, whether it comes from a file, an environment variable or
    an option. `read` returns the value as Settings holds it, or raises a one-line SettingsError that starts with
    `subject` (the file and the key, or the option)."""

    expected: str  # for messages: "must be <expected>"

    def read(self, value: Any, subject: str) -> Any:
        raise NotImplementedError

    def wrong(self, value: Any, subject: str) -> SettingsError:
        return SettingsError(f"{subject} must be {self.expected}, not {_shown(value)}")


def _one_line(value: str, subject: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise SettingsError(
            f"{subject} holds a line break or another control character ({found.group()!r}); write it on one line"
        )
    return value


@dataclass(frozen=True)
class Line(Kind):
    """A string on one line (image names, URLs, paths, Slurm's partition...), optionally one of `choices`."""

    expected: str = "a string (in quotes)"
    choices: tuple[str, ...] = ()

    def read(self, value: Any, subject: str) -> Any:
        if not isinstance(value, str):
            raise self.wrong(value, subject)
        _one_line(value, subject)
        if self.choices and value not in self.choices:
            raise SettingsError(f"{subject} must be one of {', '.join(self.choices)}, not {_shown(value)}")
        return value


@dataclass(frozen=True)
class Lines(Kind):
    """A list of one-line strings; a single string is a list of one."""

    expected: str = 'a string or a list of strings, e.g. ["a", "b"]'

    def read(self, value: Any, subject: str) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
            raise self.wrong(value, subject)
        return [_one_line(item, subject) for item in items]


@dataclass(frozen=True)
class Number(Kind):
    """A whole number from `low` to `high` (no upper bound when None)."""

    low: int = 0
    high: int | None = None

    def read(self, value: Any, subject: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(value, subject)
        if value < self.low or (self.high is not None and value > self.high):
            raise self.wrong(value, subject)
        return value


@dataclass(frozen=True)
class Devices(Kind):
    """GPU devices: "0,1", a single number, or a list of numbers or UUIDs; held as the comma-separated string."""

    expected: str = 'device numbers, e.g. "0,1" or [0, 1]'

    def read(self, value: Any, subject: str) -> Any:
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items):
            raise self.wrong(value, subject)
        return _one_line(",".join(str(i) for i in items), subject)


@dataclass(frozen=True)
class StringTable(Kind):
    """A table whose values are one-line strings."""

    def read(self, value: Any, subject: str) -> Any:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.wrong(value, subject)
        return {_one_line(str(k), subject): _one_line(v, subject) for k, v in value.items()}


@dataclass(frozen=True)
class TableList(Kind):
    """A list of tables whose keys are among `fields`, each value read by that field's Kind."""

    fields: tuple[tuple[str, Kind], ...] = ()

    def read(self, value: Any, subject: str) -> Any:
        if not isinstance(value, (list, tuple)) or not all(isinstance(t, dict) for t in value):
            raise self.wrong(value, subject)
        kinds = dict(self.fields)
        tables = []
        for number, table in enumerate(value, 1):
            where = f"{subject}, table {number}"
            unknown = [key for key in table if key not in kinds]
            if unknown:
                raise SettingsError(
                    f"{where} has no field {_shown(str(unknown[0]))} (its fields: {', '.join(kinds)})"
                )
            tables.append({key: kinds[key].read(item, f"{where}, {key}") for key, item in table.items()})
        return tables


LINE = Line()
PORT = Number("a port number (1-65535)", low=1, high=65535)
#: The fields of a Kubernetes toleration (core/v1 Toleration), as a Job's pod takes them.
TOLERATION: tuple[tuple[str, Kind], ...] = (
    ("key", LINE),
    ("operator", Line(choices=("Exists", "Equal"))),
    ("value", LINE),
    ("effect", Line(choices=("NoSchedule", "PreferNoSchedule", "NoExecute"))),
    ("tolerationSeconds", Number("a whole number of seconds")),
)


def _setting(kind: Kind, default: Any = None) -> Any:
    """A field of Settings and the rule its value follows (every setting has one: see Settings.merged)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=type(default), metadata={"kind": kind})
    return field(default=default, metadata={"kind": kind})


@dataclass
class Settings:
    """Everything a user may set per bot. ``None`` means "not set here"."""

    rasa_version: str | None = _setting(LINE)
    base_image: str | None = _setting(LINE)
    cuda: str | None = _setting(Line(choices=CUDA_SOURCES))
    license_file: str | None = _setting(LINE)  # Rasa Pro: a file with the license (RASA_PRO_LICENSE wins)
    pip_index_url: str | None = _setting(LINE)
    ca_certs: list[str] = _setting(Lines(), [])
    gpu: str | None = _setting(Line(choices=GPU_MODES))
    gpus: str | None = _setting(Devices())
    set: list[str] = _setting(Lines(), [])
    #: How many models a training leaves in models/ (the served and the pinned ones are kept on top); None: all.
    keep_models: int | None = _setting(Number("a whole number of models, at least 1", low=1))
    # ---- services (rasa-gpu up) ----
    actions_base_image: str | None = _setting(LINE)
    bind: str | None = _setting(LINE)
    rasa_port: int | None = _setting(PORT)
    actions_port: int | None = _setting(PORT)
    tensorboard_port: int | None = _setting(PORT)
    jupyter_port: int | None = _setting(PORT)
    #: The Duckling server's image, for a pipeline with DucklingEntityExtractor (default services.DUCKLING_IMAGE).
    duckling_image: str | None = _setting(LINE)
    # ---- published images (rasa-gpu push, and pulling them back instead of building) ----
    registry: str | None = _setting(LINE)
    image_name: str | None = _setting(LINE)
    # ---- where containers run (runners.Where) ----
    host: str | None = _setting(LINE)
    context: str | None = _setting(LINE)
    # ---- what a queued training asks for (rasa-gpu submit, every queue); the [resources] table ----
    resources_time: str | None = _setting(LINE)
    resources_gpus: int | None = _setting(Number("a whole number of GPUs, 0 or more", low=0))
    resources_cpus: int | None = _setting(Number("a whole number of CPUs, at least 1", low=1))
    resources_memory: str | None = _setting(LINE)
    # ---- queued trainings on Slurm (rasa-gpu submit --to slurm); the [slurm] table of rasa-gpu.toml ----
    slurm_partition: str | None = _setting(LINE)
    slurm_account: str | None = _setting(LINE)
    # ---- Kubernetes Jobs (rasa-gpu submit --to kubernetes); the [kubernetes] table of rasa-gpu.toml ----
    kubernetes_namespace: str | None = _setting(LINE)
    kubernetes_node_selector: dict[str, str] = _setting(
        StringTable('a table of strings, e.g. node_selector = { "nvidia.com/gpu.present" = "true" }'), {}
    )
    kubernetes_tolerations: list[dict[str, Any]] = _setting(
        TableList(
            'a list of tables, e.g. tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", '
            'effect = "NoSchedule" }]',
            fields=TOLERATION,
        ),
        [],
    )
    kubernetes_storage: str | None = _setting(LINE)  # the claim's size, e.g. 10Gi
    kubernetes_storage_class: str | None = _setting(LINE)
    #: A Secret with the key RASA_PRO_LICENSE (Rasa Pro).
    kubernetes_license_secret: str | None = _setting(LINE)
    # ---- rasa-gpu ci; the [ci] table of rasa-gpu.toml ----
    #: Rules on the figures' change from the baseline, e.g. "intent_f1 < -0.02" (ci.rules).
    ci_fail_on: list[str] = _setting(Lines(), [])
    #: What the report is compared with: a report .json, a model .tar.gz, a run id, or pinned (ci.baseline).
    ci_baseline: str | None = _setting(LINE)
    #: Where the settings came from, for messages.
    source: str = "defaults"
    #: Settings given on the command line (they name the option in messages).
    from_cli: frozenset[str] = frozenset()
    #: [resources] settings that the file gives under [slurm] (the older place; they name it in messages).
    under_slurm: frozenset[str] = frozenset()

    # The names of [resources] settings from when only Slurm had them.
    @property
    def slurm_time(self) -> str | None:
        return self.resources_time

    @property
    def slurm_gpus(self) -> int | None:
        return self.resources_gpus

    @property
    def slurm_cpus(self) -> int | None:
        return self.resources_cpus

    @property
    def slurm_memory(self) -> str | None:
        return self.resources_memory

    def origin(self, key: str) -> str:
        option = _OPTION_NAMES.get(key, f"--{key.replace('_', '-')}")
        return option if key in self.from_cli or self.source == "defaults" else self.source

    def subject(self, key: str) -> str:
        """Where a setting's value was given, as a message starts: the option, or the file and the key as written
        there ("rasa-gpu.toml: [slurm] partition")."""
        origin = self.origin(key)
        if origin.startswith("--"):
            return origin
        table = next((t for t in TABLES if key.startswith(f"{t}_")), None)
        if table == "resources" and key in self.under_slurm:
            table = "slurm"
        return f"{origin}: [{table}] {key.split('_', 1)[1]}" if table else f"{origin}: {key}"

    def renamed_tables(self) -> str | None:
        """The one-line notice for [resources] settings still under [slurm], or None."""
        if not self.under_slurm:
            return None
        keys = ", ".join(k.split("_", 1)[1] for k in sorted(self.under_slurm))
        return (
            f"{self.source}: [slurm] {keys} are read from [resources] now (shared by Slurm and Kubernetes); "
            "move them under a [resources] table (partition and account stay in [slurm])"
        )

    def where(self) -> Where:
        """The engine these settings name (runners.connect turns it into a runner)."""
        from .runners import Where

        return Where(host=self.host, context=self.context)

    def gpu_request(self) -> GpuRequest:
        """What these settings ask of the engine (gpu.parse_gpu_request, the one rule), naming where each value was
        set in a message. `--gpu off` on the command line trains on the CPU whatever devices the file names."""
        from .gpu import parse_gpu_request

        gpus = self.gpus
        if self.gpu == "off" and "gpu" in self.from_cli and "gpus" not in self.from_cli:
            gpus = None
        return parse_gpu_request(self.gpu, gpus, self.subject("gpus"), self.subject("gpu"))

    def merged(self, given: Settings | None = None) -> Settings:
        """These settings with every value that `given` (the command line) gives (not None, not empty) on top, each
        value read by the Kind its field declares (a wrong one is a one-line SettingsError)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        cli = {f.name: getattr(given, f.name) for f in setting_fields()} if given is not None else {}
        given_names = {k for k, v in cli.items() if v not in (None, (), [], {})}
        values.update({k: cli[k] for k in given_names})
        values["from_cli"] = self.from_cli | given_names
        merged = Settings(**values)
        for f in setting_fields():
            value = getattr(merged, f.name)
            if value is not None:
                setattr(merged, f.name, f.metadata["kind"].read(value, merged.subject(f.name)))
        if merged.registry is not None:
            merged.registry = check_registry(merged.registry, merged.origin("registry"))
        if merged.image_name is not None:
            merged.image_name = check_image_name(merged.image_name, merged.origin("image_name"))
        return merged


def setting_fields() -> list[Field[Any]]:
    """The fields of Settings that a user sets (not where they came from), each with its Kind in metadata["kind"]."""
    return [f for f in fields(Settings) if f.name not in ("source", "from_cli", "under_slurm")]


#: The settings' names from when only Slurm had them (`merged(slurm_gpus=2)` still works).
_RENAMED = {f"slurm_{key}": f"resources_{key}" for key in RESOURCES}


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


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file of the bot, or a one-line SettingsError naming it (unreadable, not UTF-8, not TOML)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{path.name} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path.name} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path.name}: invalid TOML: {exc}") from None


def _table(data: Any, *keys: str) -> dict[str, Any]:
    """data[keys[0]][keys[1]]..., or {} where a level is missing or not a table."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def load_settings(root: Path) -> Settings:
    """Read rasa-gpu.toml, else [tool.rasa-gpu] of pyproject.toml, else defaults."""
    for path, source in ((root / SETTINGS_FILE, SETTINGS_FILE), (root / "pyproject.toml", PYPROJECT_TABLE)):
        if not path.is_file():
            continue
        data: Any = read_toml(path)
        if source == PYPROJECT_TABLE:
            data = _table(data, "tool").get("rasa-gpu", {})
            if not isinstance(data, dict):
                raise SettingsError(f"{source} must be a table of settings")
        if not data:
            continue
        known = {f.name for f in setting_fields()}
        values = {k.replace("-", "_"): v for k, v in data.items()}
        for name in TABLES:  # [slurm] partition = ... is slurm_partition
            if name in values and not isinstance(values[name], dict):
                raise SettingsError(f"{source}: {name} must be a table ([{name}] with its settings under it)")
            values.update({f"{name}_{k.replace('-', '_')}": v for k, v in values.pop(name, {}).items()})
        under_slurm = frozenset(_RENAMED[k] for k in _RENAMED if k in values)
        for old in (k for k in _RENAMED if k in values):
            if _RENAMED[old] in values:
                key = old.split("_", 1)[1]
                raise SettingsError(
                    f"{source}: {key} is under both [slurm] and [resources]; keep the one under [resources]"
                )
            values[_RENAMED[old]] = values.pop(old)
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(
                f"{source}: unknown setting(s) {', '.join(repr(k) if _CONTROL.search(k) else k for k in unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return Settings(**values, source=source, under_slurm=under_slurm).merged()
    return Settings()


# ---- which Rasa --------------------------------------------------------------------------------------------------


def resolve_rasa(
    matrix: Matrix, root: Path, settings: Settings, requirements: BotRequirements | None = None
) -> tuple[RasaRelease, str]:
    """The Rasa release to use and a phrase saying why; the bot's requirements (requirements.read) when the caller
    has them already."""
    if settings.rasa_version:
        origin = settings.origin("rasa_version")
        version = settings.rasa_version.lstrip("=")
        if not is_exact_version(version):
            raise VersionError(
                f"{origin}: '{settings.rasa_version}' is not a version; supported: {matrix.supported_summary()}"
            )
        return matrix.get(version), f"from {origin}"
    if requirements is None:
        from .requirements import read

        requirements = read(root)
    pin = requirements.rasa
    if pin is not None:
        package, spec, where = pin.package, pin.specifier, pin.where
        if not spec:
            if package == "rasa-pro" and matrix.pro_default:
                return matrix.get(matrix.pro_default), f"newest Rasa Pro ({where} does not pin it)"
            return matrix.get(matrix.default), f"newest supported ({where} does not pin Rasa)"
        return matrix.newest_matching(spec, source=where, package=package), f"from {where} ({package}{spec})"
    return matrix.get(matrix.default), "newest supported"
