"""A Rasa bot folder: what it contains, whether its YAML parses, who owns it, and what its training depends on."""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import safefs, yamlfile
from .errors import ProjectError, YamlError

STATE_DIR = safefs.STATE_DIR
#: Folders that never hold training inputs: outputs, caches, tests, environments, the action server's code (hidden
#: folders, such as .git, .rasa and .rasa-gpu, neither).
NOT_INPUT_DIRS = frozenset(
    {"models", "actions", "tests", "results", "__pycache__", "node_modules", "venv", "env", "site-packages"}
)
#: Training data formats (YAML; Markdown and JSON in Rasa 2.x). Anything else under data/ is a temp file or notes.
DATA_SUFFIXES = (".yml", ".yaml", ".md", ".json")
#: The names Rasa's layout gives the config and the domain (a file, or a folder of files).
CONFIG_NAME = "config.yml"
DOMAIN_NAMES = ("domain.yml", "domain.yaml", "domain")
#: config.yml keys that do not change what a model does. Rasa 3.5+ writes an `assistant_id` into a config that has
#: none during the first training; counting it would make the next `train` retrain an unchanged bot.
_CONFIG_KEYS_NOT_TRAINED = ("assistant_id",)
#: Hugging Face's cache (HF_HOME: the language models of LanguageModelFeaturizer), relative to the bot: beside Rasa's
#: training cache, not in it (Rasa counts everything in its cache folder against RASA_MAX_CACHE_SIZE and would drop
#: its own entries to make room for a language model).
LANGUAGE_MODEL_CACHE = ".rasa/huggingface"
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class BotProject:
    root: Path
    config: Path
    domain: Path
    data: Path
    #: Each YAML file's bytes and content as last parsed: a command parses a file once (load validates it, the
    #: no-change check hashes it), and a file that changed since is parsed again.
    _parsed: dict[Path, tuple[bytes, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BotProject:
        """Find the bot's files and parse every YAML input, or raise a ProjectError/YamlError that says what to fix."""
        root = Path(path).expanduser()
        if not root.exists():
            raise ProjectError(f"bot folder '{path}' does not exist; pass the folder that holds config.yml")
        if not root.is_dir():
            raise ProjectError(f"'{path}' is not a folder; pass the bot folder that holds config.yml")
        root = root.resolve()
        config = root / "config.yml"
        domain = next(
            (p for p in (root / "domain.yml", root / "domain.yaml", root / "domain") if p.exists()), None
        )
        data = root / "data"
        missing = [
            name
            for name, present in (
                ("config.yml", config.is_file()),
                ("domain.yml", domain),
                ("data/", data.is_dir()),
            )
            if not present
        ]
        if missing:
            raise ProjectError(
                f"'{root}' is not a Rasa project: {', '.join(missing)} missing; "
                "run rasa-gpu in the folder made by `rasa init`"
            )
        assert domain is not None
        project = cls(root=root, config=config, domain=domain, data=data)
        project.validate_yaml()
        return project

    # ---- files -----------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return _SLUG.sub("-", self.root.name.lower()).strip("-") or "bot"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def yaml_files(self) -> Iterator[Path]:
        """The YAML files rasa-gpu parses: config, domain and data among the training inputs (so a link out of the bot
        is refused before anything is read), then endpoints.yml and credentials.yml."""
        inputs = self.training_inputs()
        yield self.config
        for path in inputs:
            if path != self.config and path.suffix in (".yml", ".yaml"):
                yield path
        for extra in ("endpoints.yml", "credentials.yml"):
            path = self.root / extra
            if path.is_file():
                yield self.followed(path)

    def validate_yaml(self) -> None:
        import yaml

        for path in self.yaml_files():
            try:
                self._parse(path, path.read_bytes())
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                raise YamlError(self.relative(path), line, col, exc.problem or str(exc)) from None
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise YamlError(self.relative(path), 1, 1, str(exc).splitlines()[0]) from None

    def _parse(self, path: Path, data: bytes) -> Any:
        """The content of a YAML file whose bytes are `data`, parsed once per version of the file (UTF-8, as Rasa
        reads it)."""
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == data:
            return cached[1]
        content = yamlfile.load(data.decode("utf-8"))
        self._parsed[path] = (data, content)
        return content

    def config_data(self) -> dict[str, Any]:
        """config.yml's content, the caller's own copy to change."""
        data = self._parse(self.config, self.config.read_bytes())
        return copy.deepcopy(data) if isinstance(data, dict) else {}

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def training_inputs(self) -> list[Path]:
        """Files whose content changes a trained model (see is_training_input): what the no-change skip hashes, what
        goes to an engine elsewhere, and what watch retrains for. The one rule for links among them, the same for
        every runner: a link that stays inside the bot folder is followed (files and folders); one that leads out
        of it, or to nothing, is refused in one line naming it."""
        files: list[Path] = []
        walked: set[str] = set()  # real folders already walked: a link back up is walked once
        # Walk with pruning: models/, .rasa/, a venv/ inside the bot are never entered (this runs on every train).
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in walked:
                dirnames[:] = []
                continue
            walked.add(real)
            folder = PurePosixPath(Path(dirpath).relative_to(self.root).as_posix())
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in NOT_INPUT_DIRS]
            for name in dirnames:
                self.followed(Path(dirpath, name))
            for name in filenames:
                if is_training_input(folder / name):
                    files.append(self.followed(Path(dirpath, name)))
        return sorted(files)

    def followed(self, path: Path) -> Path:
        """`path` itself when it is no link; for a link, `path` after checking that it leads to something inside the
        bot folder (else a ProjectError naming it)."""
        if not path.is_symlink():
            return path
        target = Path(os.path.realpath(path))
        if target != self.root and self.root not in target.parents:
            raise ProjectError(
                f"{self.relative(path)} is a link to {os.readlink(path)}, outside the bot folder; rasa-gpu trains only "
                "on files inside the bot (the same on every engine): copy the file into the bot instead of linking it"
            )
        if not target.exists():
            raise ProjectError(
                f"{self.relative(path)} is a link to {os.readlink(path)}, which does not exist; fix or remove the link"
            )
        return path

    def inputs_archive(self) -> bytes:
        """The training inputs as a gzipped tar, by their paths in the bot folder (for a Kubernetes Job's ConfigMap).
        Entries carry no owner and no time, so the same inputs give the same bytes."""
        import gzip
        import io
        import tarfile

        buffer = io.BytesIO()
        with (
            gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in self.training_inputs():
                data = path.read_bytes()
                info = tarfile.TarInfo(self.relative(path))
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def input_digests(self, contents: Mapping[Path, bytes] | None = None) -> dict[str, str]:
        """Each training input's digest by its path in the bot, in training_inputs' order (`contents`: their bytes as
        already read, else they are read here). YAML is hashed by content, not bytes: Rasa rewrites the comments of
        config.yml while training (its auto-configuration) and adds an assistant_id, which must not count as a
        change."""
        import yaml

        if contents is None:
            contents = {path: path.read_bytes() for path in self.training_inputs()}
        digests = {}
        for path, data in contents.items():
            if path.suffix in (".yml", ".yaml"):
                with contextlib.suppress(yaml.YAMLError, UnicodeDecodeError):  # then hashed as bytes
                    content = self._parse(path, data)
                    if path == self.config and isinstance(content, dict):
                        content = {k: v for k, v in content.items() if k not in _CONFIG_KEYS_NOT_TRAINED}
                    data = json.dumps(content, sort_keys=True, default=str).encode()
            digests[self.relative(path)] = hashlib.sha256(data).hexdigest()
        return digests

    def inputs_digest(self, contents: Mapping[Path, bytes] | None = None) -> str:
        """Hash of the training inputs (input_digests, combined)."""
        return combined_digest(self.input_digests(contents))

    # ---- custom actions --------------------------------------------------------------------------------------

    @property
    def actions(self) -> Path | None:
        """The custom actions: an actions/ package (Rasa 3's layout) or a single actions.py at the root (Rasa 2's,
        still common); None when the bot has neither."""
        package = self.root / "actions"
        if package.is_dir() and any(package.glob("*.py")):
            return package
        module = self.root / "actions.py"
        return module if module.is_file() else None

    @property
    def cache_dir(self) -> Path:
        """Rasa's training cache (RASA_CACHE_DIRECTORY's default, relative to the bot)."""
        return self.root / ".rasa" / "cache"

    @property
    def language_model_cache(self) -> Path:
        """Hugging Face's cache of the language models (LanguageModelFeaturizer): a model downloaded by one container
        is there for every later one (runners.rasa_environment points HF_HOME at it)."""
        return self.root / LANGUAGE_MODEL_CACHE

    def make_language_model_cache(self) -> None:
        """Make the language models' folder before a container that mounts the bot starts: the bot owner's, no link
        followed out of the bot (safefs), so the container (running as that owner) can write into it. A bot folder
        that this process may not write into (read-only, another user's) is no error: `rasa-gpu validate` and
        friends need no cache, and the container makes the folder itself when it can."""
        try:
            self.make_owned_dirs(self.language_model_cache)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise

    def check_output_folders(self) -> None:
        """models/, .rasa/ and .rasa-gpu/ must be folders or absent, and no link rasa-gpu must not follow
        (safefs): found before a training, not after it."""
        for path in (self.models_dir, self.cache_dir, self.state_dir / "tmp"):
            self.checked(path)
        for path in (self.models_dir, self.root / ".rasa", self.state_dir):
            if path.exists() and not path.is_dir():
                raise ProjectError(
                    f"{path} is a file, but training writes into a folder of that name; "
                    "rename or remove the file, then train again"
                )

    def newest_model(self) -> Path | None:
        """The newest model archive in models/ (by modification time), or None."""
        if not self.models_dir.is_dir():
            return None
        return max(self.models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime, default=None)

    # ---- ownership: rasa-gpu may run as root, yet everything it writes into the bot stays the user's ----------

    @property
    def owner(self) -> tuple[int, int]:
        """uid and gid that own the bot folder; containers run as them so every file they write is the user's."""
        st = self.root.stat()
        return st.st_uid, st.st_gid

    def give_to_owner(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        uid, gid = self.owner
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(path, uid, gid)

    def make_owned_dirs(self, path: Path) -> Path:
        """mkdir -p inside the bot, following no link rasa-gpu did not make (safefs), giving every folder it creates
        to the bot's owner; returns the real folder."""
        owner = self.owner if os.geteuid() == 0 else None
        real, made = safefs.make_dirs(self.root, path, owner)
        if self.state_dir in made:
            self.write_owned(
                self.state_dir / ".gitignore", "# rasa-gpu's own state; not for version control\n*\n"
            )
        return real

    def write_owned(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Write a file inside the bot atomically, owned by the bot's owner, with the given mode from its first byte
        (safefs.write_file: no link followed, a fresh temporary name)."""
        self.make_owned_dirs(path.parent)
        owner = self.owner if os.geteuid() == 0 else None
        safefs.write_file(self.root, path, text.encode("utf-8"), mode=mode, owner=owner)

    def checked(self, path: Path) -> Path:
        """Where `path` (inside the bot) really is, for writing or removing there; refuses a link that leads out of
        the bot, or any link in .rasa-gpu/ (safefs.check)."""
        return safefs.check(self.root, path)


def combined_digest(digests: Mapping[str, str]) -> str:
    """The digest of all training inputs from each one's (BotProject.input_digests)."""
    digest = hashlib.sha256()
    for name, each in digests.items():
        digest.update(name.encode() + b"\0" + bytes.fromhex(each))
    return digest.hexdigest()


def is_training_input(relative: PurePosixPath) -> bool:
    """The one rule for what changes a trained model, by path in the bot folder: config.yml, the domain (a file, or
    the data files of a domain/ folder), the data files under data/, and Python code outside the folders that never
    hold inputs (custom components; a root actions.py and actions/ are the action server's)."""
    parts = relative.parts
    if not parts or any(part.startswith(".") or part in NOT_INPUT_DIRS for part in parts[:-1]):
        return False
    if len(parts) == 1 and parts[0] in (CONFIG_NAME, *DOMAIN_NAMES[:2]):
        return True
    if parts[0] in ("data", DOMAIN_NAMES[2]) and len(parts) > 1:
        return relative.suffix in DATA_SUFFIXES and not parts[-1].startswith(".")
    return relative.suffix == ".py" and parts != ("actions.py",)
