#!/usr/bin/env python3
"""Generate rasa_gpu/data/locks/: per Rasa release and Python, the exact versions (with hashes) its image installs.

Run from the repository root (needs pypi.org and uv, `pip install uv`)::

    python tools/gen_locks.py [VERSION ...] [--python 3.9] [--margin-days 30] [--jobs 2] [--cuda-only]
    python tools/gen_compat.py --locks [VERSION ...]       # the same

Without versions: the newest patch of every Rasa Open Source minor from 3.1 and of every Rasa Pro minor. Without
--python: each Python of rasa-gpu's registry-less bases (bullseye 3.9, bookworm 3.11) that the release accepts, else
the newest Python it accepts (for a python:3.X-slim base).

How a set is chosen: ``uv pip compile`` of the release's own pins from compat.json (rasa or rasa-pro[nlu] ==
version, tensorflow, tensorflow-text) plus the fixes of tools/data/lock_fixes.toml that name the release, resolved
for Linux x86_64 (manylinux 2.31, the oldest glibc of the bases) as PyPI stood on the day after the newest of those
pins was uploaded plus --margin-days (``--exclude-newer``): the versions a user installing the release then got,
not today's. Every file's sha256 is kept (``--generate-hashes``), so the build installs with hashes required.

The output of one input is the same on every run: PyPI keeps its files, and ``--exclude-newer`` hides whatever
came later (a yank after the date can still change it; the diff shows it).

NVIDIA's CUDA and cuDNN wheels of each TensorFlow the wanted releases use (compat.json's ``cuda_wheels``, exact pins
already) are locked too, as ``cuda-tf<version>.txt``: their files' sha256, no dependencies (the pins are the whole
set), for every Python (the wheels are ``py3-none``). A lock counts once an image built from
it has trained: every build trains a tiny bot before it is tagged (rasa_gpu/images.py), and
tools/matrix_check.py trains example_bot on each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rasa_gpu.locks import cuda_lock_name  # noqa: E402

COMPAT_JSON = REPO / "rasa_gpu" / "data" / "compat.json"
LOCKS = REPO / "rasa_gpu" / "data" / "locks"
FIXES = REPO / "tools" / "data" / "lock_fixes.toml"
INDEX = "https://pypi.org/simple"
#: The Pythons of rasa-gpu's registry-less bases (rasa_gpu.base_image.SUITE_PYTHON: bullseye, bookworm, noble).
BASE_PYTHONS = ("3.9", "3.11", "3.12")
#: Their exact Pythons (a release may want >=3.9.2, which 3.9 alone, read as 3.9.0, is not).
BASE_PATCHES = {"3.9": "3.9.2", "3.11": "3.11.2", "3.12": "3.12.3"}
#: For a release that no registry-less base holds: the python:3.X-slim bases.
SLIM_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12")
PLATFORM = "x86_64-manylinux_2_31"  # bullseye's glibc; Ubuntu 20.04 (TensorFlow's images) has 2.31 too
OLDEST_OPEN_SOURCE = Version("3.1")  # 3.0 and 2.x need Python < 3.9: no registry-less base holds them


@dataclass(frozen=True)
class Target:
    package: str  # rasa | rasa-pro
    version: str
    tensorflow: str
    tensorflow_text: str | None
    python: str

    @property
    def path(self) -> Path:
        return LOCKS / lock_name(self.package, self.version, self.python)

    def requirements(self) -> list[str]:
        rasa = "rasa-pro[nlu]" if self.package == "rasa-pro" else "rasa"
        pins = [f"{rasa}=={self.version}", f"tensorflow=={self.tensorflow}"]
        if self.tensorflow_text:
            pins.append(f"tensorflow-text=={self.tensorflow_text}")
        return pins


def lock_name(package: str, version: str, python: str) -> str:
    """rasa-3.6.21-py3.9.txt: the file name rasa_gpu.locks reads."""
    return f"{package}-{version}-py{python}.txt"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_rows() -> dict[tuple[str, str], dict]:
    raw = json.loads(COMPAT_JSON.read_text(encoding="utf-8"))
    rows = {("rasa", v): row for v, row in raw["releases"].items()}
    rows.update({("rasa-pro", v): row for v, row in raw.get("pro_releases", {}).items()})
    return rows


def newest_patches(rows: dict[tuple[str, str], dict]) -> list[tuple[str, str]]:
    newest: dict[tuple[str, int, int], Version] = {}
    for package, version in rows:
        v = Version(version)
        if package == "rasa" and v < OLDEST_OPEN_SOURCE:
            continue
        key = (package, v.major, v.minor)
        newest[key] = max(newest.get(key, v), v)
    return sorted(((key[0], str(v)) for key, v in newest.items()), key=lambda t: (t[0], Version(t[1])))


def targets(
    rows: dict[tuple[str, str], dict], wanted: list[tuple[str, str]], pythons: list[str] | None
) -> list[Target]:
    found = []
    for package, version in wanted:
        row = rows[(package, version)]
        fitting = [p for p in pythons or BASE_PYTHONS if accepts_python(row["python"], p)]
        if (
            not fitting and not pythons
        ):  # no registry-less base holds it: the newest Python for python:3.X-slim
            fitting = [p for p in reversed(SLIM_PYTHONS) if accepts_python(row["python"], p)][:1]
        for python in fitting:
            found.append(Target(package, version, row["tensorflow"], row.get("tensorflow_text"), python))
    return found


def accepts_python(python_range: str, python: str) -> bool:
    """Some patch of Python X.Y is admitted (rasa_gpu.compat.accepts_python)."""
    allowed = SpecifierSet(python_range)
    return any(allowed.contains(f"{python}.{patch}") for patch in (0, 99))


#: What a fix may change in a lock's inputs: requirements added, packages left out, packages taken from wheels only.
CHANGES = ("require", "exclude", "only_binary")


def load_fixes(path: Path = FIXES) -> list[dict]:
    """The [[fix]] tables, each checked: `releases` and `why` strings, `require`, `exclude` and `only_binary` lists
    of strings, at least one of them (a ValueError names the fix and the key otherwise)."""
    fixes = tomllib.loads(path.read_text(encoding="utf-8")).get("fix", [])
    for number, fix in enumerate(fixes, 1):
        where = f"{path.name}: fix {number}"
        for key in ("releases", "why"):
            if not isinstance(fix.get(key), str):
                raise ValueError(f"{where}: '{key}' must be a string")
        for key in CHANGES:
            value = fix.get(key, [])
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"{where}: '{key}' must be a list of strings")
        if not any(fix.get(key) for key in CHANGES):
            raise ValueError(f"{where}: it needs one of {', '.join(repr(key) for key in CHANGES)}")
        unknown = set(fix) - {"releases", "why", *CHANGES}
        if unknown:
            raise ValueError(f"{where}: unknown key {', '.join(sorted(unknown))}")
    return fixes


def fixes_for(fixes: list[dict], package: str, version: str) -> list[dict]:
    """The fixes whose `releases` requirement names this release."""
    chosen = []
    for fix in fixes:
        req = Requirement(fix["releases"])
        if req.name == package and req.specifier.contains(version, prereleases=True):
            chosen.append(fix)
    return chosen


_UPLOADS: dict[str, dict[str, dt.datetime]] = {}
_FILES: dict[str, list[dict]] = {}


def supported_tags(python: str) -> set[Tag]:
    """The wheel tags a CPython X.Y on the bases' platform (manylinux 2.31, x86_64) installs."""
    major, minor = (int(part) for part in python.split(".")[:2])
    glibc = int(PLATFORM.rsplit("_", 1)[1])
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(glibc, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    found = set(cpython_tags((major, minor), abis=[f"cp{major}{minor}"], platforms=platforms))
    return found | set(compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms))


def has_wheel(filenames: list[str], version: str, python: str) -> bool:
    """Whether one of a project's files is a wheel of this version that the Python installs on the bases."""
    wanted = supported_tags(python)
    for name in filenames:
        if not name.endswith(".whl"):
            continue
        try:
            _, file_version_, _, file_tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        if file_version_ == Version(version) and file_tags & wanted:
            return True
    return False


def index_files(project: str) -> list[dict]:
    """A project's files on the index (PEP 691 JSON: filename, hashes, PEP 700's upload-time), asked once."""
    if project not in _FILES:
        request = urllib.request.Request(
            f"{INDEX}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            _FILES[project] = json.load(answer)["files"]
    return _FILES[project]


def built_from_source(lock_text: str, python: str) -> list[str]:
    """The lock's pins that the image has to build from an sdist: no wheel of that version for the Python on the
    bases' platform. Harmless for pure Python; anything with C code fails on the bases, which have no compiler
    (blis, spaCy and mitie did): such a package goes into `only_binary` or `exclude` of lock_fixes.toml."""
    pins = [
        line.split(" ")[0] for line in lock_text.splitlines() if "==" in line and not line.startswith("#")
    ]
    projects = {pin: canonicalize_name(pin.partition("==")[0]) for pin in pins}
    with ThreadPoolExecutor(max_workers=8) as pool:  # one index request per project, side by side
        list(pool.map(index_files, set(projects.values())))
    return [
        pin
        for pin, project in projects.items()
        if not has_wheel([f["filename"] for f in index_files(project)], pin.partition("==")[2], python)
    ]


def upload_dates(project: str) -> dict[str, dt.datetime]:
    """The first upload time of each version of a project (PEP 691 JSON with PEP 700's upload-time)."""
    if project not in _UPLOADS:
        dates: dict[str, dt.datetime] = {}
        for file in index_files(project):
            version = file_version(project, file["filename"])
            stamp = file.get("upload-time")
            if version is None or not stamp:
                continue
            when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            dates[version] = min(dates.get(version, when), when)
        _UPLOADS[project] = dates
    return _UPLOADS[project]


def file_version(project: str, filename: str) -> str | None:
    stem = project.replace("-", "_")
    for prefix in (f"{stem}-", f"{project}-"):
        if filename.lower().startswith(prefix.lower()):
            rest = filename[len(prefix) :]
            version = rest.split("-", 1)[0] if filename.endswith(".whl") else rest.rsplit(".tar", 1)[0]
            return version.removesuffix(".zip")
    return None


def cutoff(target: Target, margin_days: int) -> dt.date:
    """The day after the newest of the release's pins appeared, plus the margin."""
    pins = [(target.package, target.version), ("tensorflow", target.tensorflow)]
    if target.tensorflow_text:
        pins.append(("tensorflow-text", target.tensorflow_text))
    newest = max(upload_dates(project)[version] for project, version in pins)
    return newest.date() + dt.timedelta(days=1 + margin_days)


def uv_command() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def uv_compile(requirements: list[str], options: list[str], what: str) -> str:
    """`uv pip compile` of these requirements for Linux x86_64 with every file's sha256: its output, or a
    RuntimeError that names `what` and uv's first line."""
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-lock-") as tmp:
        inputs = Path(tmp) / "requirements.in"
        inputs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        command = uv_command() + [
            "pip",
            "compile",
            str(inputs),
            *options,
            "--python-platform",
            PLATFORM,
            "--index-url",
            INDEX,
            "--generate-hashes",
            "--no-header",
            "--no-annotate",
            "--no-config",
            "--quiet",
        ]
        env = {**os.environ, "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path(tmp) / "cache"))}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        reason = next((ln.strip() for ln in done.stderr.splitlines() if ln.strip()), "no output")
        raise RuntimeError(f"{what}: {reason}")
    return done.stdout


def compile_lock(target: Target, margin_days: int, fixes: list[dict]) -> str:
    date = cutoff(target, margin_days)
    applied = fixes_for(fixes, target.package, target.version)
    extra = [r for fix in applied for r in fix.get("require", [])]
    left_out = [name for fix in applied for name in fix.get("exclude", [])]
    wheels_only = [name for fix in applied for name in fix.get("only_binary", [])]
    options = [
        "--python-version",
        BASE_PATCHES.get(target.python, target.python),
        "--exclude-newer",
        date.isoformat(),
        *(arg for name in left_out for arg in ("--no-emit-package", name)),
        *(arg for name in wheels_only for arg in ("--only-binary", name)),
    ]
    what = f"{target.package} {target.version} (Python {target.python})"
    resolved = uv_compile(target.requirements() + extra, options, what)
    header = [
        f"# {target.package} {target.version} for Python {target.python} on Linux x86_64: generated by "
        "tools/gen_locks.py, do not edit",
        f"# inputs: {' '.join(target.requirements() + extra)}",
        f"# resolved as of {date.isoformat()} (uv pip compile --exclude-newer), hashes required",
    ]
    for fix in applied:
        changes = [
            *fix.get("require", []),
            *(f"without {name}" for name in fix.get("exclude", [])),
            *(f"{name} from a wheel" for name in fix.get("only_binary", [])),
        ]
        header.append(f"# fix ({fix['releases']}: {', '.join(changes)}): {fix['why']}")
    return "\n".join(header) + "\n" + resolved


def compile_cuda_lock(tensorflow: str, pins: dict[str, str]) -> str:
    """The lock of the CUDA wheels of one TensorFlow: its exact pins with every file's sha256, no dependencies."""
    requirements = [f"{name}=={version}" for name, version in sorted(pins.items())]
    resolved = uv_compile(requirements, ["--no-deps"], f"CUDA wheels of TensorFlow {tensorflow}")
    header = [
        f"# NVIDIA's CUDA and cuDNN wheels for TensorFlow {tensorflow} on Linux x86_64 (every Python): generated by "
        "tools/gen_locks.py, do not edit",
        f"# inputs: {' '.join(requirements)} (compat.json's cuda_wheels), no dependencies, hashes required",
    ]
    return "\n".join(header) + "\n" + resolved


def cuda_locks_wanted(
    rows: dict[tuple[str, str], dict], wanted: list[tuple[str, str]] | None
) -> dict[str, dict[str, str]]:
    """The CUDA wheel pins (name: version) of each TensorFlow that the wanted releases use and the matrix has wheels
    for; every TensorFlow of the matrix's cuda_wheels when no release is named."""
    wheels = json.loads(COMPAT_JSON.read_text(encoding="utf-8")).get("cuda_wheels", {})
    tensorflows = {rows[key]["tensorflow"] for key in wanted} if wanted else set(wheels)
    return {tf: dict(wheels[tf]["packages"]) for tf in sorted(tensorflows, key=Version) if tf in wheels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", help="releases (3.6.21; Rasa Pro's by their number, 3.21.0)")
    parser.add_argument("--python", action="append", help="X.Y (repeatable; default: the bases' Pythons)")
    parser.add_argument("--margin-days", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cuda-only", action="store_true", help="only the CUDA wheels' locks (cuda-tf*.txt)")
    args = parser.parse_args(argv)
    rows = load_rows()
    by_version = {version: (package, version) for package, version in rows}
    unknown = [v for v in args.versions if v not in by_version]
    if unknown:
        parser.error(f"not in compat.json: {', '.join(unknown)}")
    wanted = [by_version[v] for v in args.versions] or newest_patches(rows)
    fixes = load_fixes()
    LOCKS.mkdir(parents=True, exist_ok=True)
    failed = 0

    def one(target: Target) -> None:
        nonlocal failed
        try:
            text = compile_lock(target, args.margin_days, fixes)
        except (RuntimeError, KeyError, OSError) as exc:
            failed += 1
            log(f"FAILED {exc}")
            return
        target.path.write_text(text, encoding="utf-8")
        pins = sum(1 for line in text.splitlines() if "==" in line and not line.startswith("#"))
        log(f"{target.path.relative_to(REPO)}: {pins} packages")
        try:
            sources = built_from_source(text, target.python)
        except OSError as exc:
            log(f"  (could not ask the index which packages have wheels: {exc})")
            return
        if sources:
            log(
                f"  built from source in the image (no wheel for Python {target.python}, {PLATFORM}): "
                f"{', '.join(sources)}; one with C code needs `only_binary` or `exclude` in lock_fixes.toml"
            )

    def cuda(item: tuple[str, dict[str, str]]) -> None:
        nonlocal failed
        tensorflow, pins = item
        try:
            text = compile_cuda_lock(tensorflow, pins)
        except (RuntimeError, OSError) as exc:
            failed += 1
            log(f"FAILED {exc}")
            return
        path = LOCKS / cuda_lock_name(tensorflow)
        path.write_text(text, encoding="utf-8")
        log(f"{path.relative_to(REPO)}: {len(pins)} packages")

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(cuda, cuda_locks_wanted(rows, [by_version[v] for v in args.versions]).items()))
        if not args.cuda_only:
            list(pool.map(one, targets(rows, wanted, args.python)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
