#!/usr/bin/env python3
"""Generate rasa_gpu/data/compat.json, the Rasa -> TensorFlow -> CUDA compatibility matrix.

Run from the repository root (needs network access to pypi.org and files.pythonhosted.org)::

    python tools/gen_compat.py [--out rasa_gpu/data/compat.json] [--cache-dir DIR] [--jobs N]

Only the standard library and ``packaging`` are used (``pip install packaging``).
The output is deterministic: running the script twice gives byte-identical JSON
(as long as PyPI gains no new release inside a resolved range).

Where each input comes from
---------------------------
* Rasa releases: every final release 2.0.0 <= v < 3.7 listed by the PyPI simple index
  (PEP 691 JSON, ``https://pypi.org/simple/rasa/``). For each, the core metadata
  (``METADATA``) of its wheel gives ``Requires-Python`` and the ``Requires-Dist`` entries for
  ``tensorflow``, ``tensorflow-text`` and ``rasa-sdk`` (markers evaluated for Linux x86_64,
  CPython, no extras). The metadata comes from the PEP 658 ``.metadata`` file when the index
  advertises one, otherwise from the wheel itself, read with HTTP range requests (only the zip
  directory and METADATA member are transferred) or, if ranges are refused, a full download.
  Extracted metadata is cached in ``<tmp>/rasa-gpu-compat-cache`` (``--cache-dir``).
* TensorFlow / tensorflow-text versions: the PyPI simple index of ``tensorflow`` and
  ``tensorflow-text``. A version counts only if it is a final release with a non-yanked
  Linux x86_64 wheel for a CPython version that the Rasa release allows.
* ``tools/data/tf_tested_builds_gpu.md``: TensorFlow's "Tested build configurations" table
  (Linux, GPU) copied from tensorflow/docs ``site/en/install/source.md``; gives cuDNN and CUDA
  per TensorFlow major.minor.
* ``tools/data/cuda_drivers.csv``: NVIDIA CUDA Toolkit release notes, "CUDA Toolkit and
  Corresponding Driver Versions" (minimum Linux driver per toolkit release) and the minor version
  compatibility minimum.
* ``tools/data/missing_docker_tags.csv``: TensorFlow versions with no ``tensorflow/tensorflow``
  image on Docker Hub (reported in upstream issues), never used as base image.

Resolution rules
----------------
* ``tensorflow``: the newest TensorFlow inside Rasa's specifier. If Rasa also requires
  tensorflow-text, the newest tensorflow-text inside its specifier whose own ``tensorflow``
  requirement overlaps Rasa's range is picked first, and TensorFlow is limited to that overlap
  (pip would do the same; it matters for ranges like ``>=2.3.4,<3.0.0``).
* ``base_tensorflow``: ``tensorflow`` unless its image is missing, then the newest older release
  of the same major.minor whose image exists (e.g. 2.6.5 -> 2.6.1).
* ``cuda``/``cudnn``: the tested-build row for ``base_tensorflow``'s major.minor.
* ``min_driver``: the lowest driver among the toolkit releases of that CUDA major.minor (its GA).

The script exits non-zero with a message when an input is missing (no tested-build row,
no driver row, no matching TensorFlow, an HTTP error, ...). It never fills gaps silently.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import email.message
import email.parser
import functools
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "tools" / "data"
DEFAULT_OUT = REPO_ROOT / "rasa_gpu" / "data" / "compat.json"
TESTED_BUILDS_FILE = DATA_DIR / "tf_tested_builds_gpu.md"
CUDA_DRIVERS_FILE = DATA_DIR / "cuda_drivers.csv"
MISSING_TAGS_FILE = DATA_DIR / "missing_docker_tags.csv"

SIMPLE_INDEX = "https://pypi.org/simple/{project}/"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
USER_AGENT = "rasa-gpu-gen-compat/1 (+tools/gen_compat.py)"
GENERATED_BY = "tools/gen_compat.py"
SCHEMA_VERSION = 1

RASA_MIN = Version("2.0.0")
RASA_BELOW = Version("3.7")  # "up to the newest 3.6.x"
PY_MINORS = range(5, 15)  # CPython 3.5 .. 3.14 are considered when matching wheel tags
HTTP_TIMEOUT = 60
HTTP_TRIES = 4
RANGE_CHUNK = 256 * 1024
IMAGE_REPO = "tensorflow/tensorflow"


class GenError(Exception):
    """A problem that must stop the generation (reported without a traceback)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- HTTP


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; returns (status, lower-cased headers, body). Retries transient failures."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    for attempt in range(1, HTTP_TRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, response_headers, response.read()
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == HTTP_TRIES:
                raise GenError(f"GET {url} failed: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == HTTP_TRIES:
                raise GenError(f"GET {url} failed: {exc}") from exc
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


class HttpRangeFile(io.RawIOBase):
    """Read-only, seekable view of a remote file that fetches byte ranges on demand.

    ``zipfile`` only needs the end-of-central-directory record, the central directory and
    one member, so reading a wheel's METADATA costs one or two small requests.
    """

    def __init__(self, url: str, size: int) -> None:
        super().__init__()
        self.url = url
        self.size = size
        self.pos = 0
        self.segments: list[tuple[int, bytes]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self.size, self.pos + len(view))
        if end <= self.pos:
            return 0
        data = self._read_range(self.pos, end)
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def _read_range(self, start: int, end: int) -> bytes:
        for seg_start, seg in self.segments:
            if seg_start <= start and end <= seg_start + len(seg):
                return seg[start - seg_start : end - seg_start]
        fetch_start = max(0, self.size - RANGE_CHUNK) if self.size - start <= RANGE_CHUNK else start
        fetch_end = min(self.size, max(end, fetch_start + RANGE_CHUNK))
        status, headers, body = http_get(self.url, {"Range": f"bytes={fetch_start}-{fetch_end - 1}"})
        if status != 206 or len(body) != fetch_end - fetch_start:
            raise RangeNotSupportedError(body if status == 200 else None)
        self.segments.append((fetch_start, body))
        return body[start - fetch_start : end - fetch_start]


class RangeNotSupportedError(Exception):
    """The server ignored the Range header (``full_body`` is the whole file when it sent one)."""

    def __init__(self, full_body: bytes | None) -> None:
        super().__init__("HTTP range requests not supported")
        self.full_body = full_body


# --------------------------------------------------------------------------- PyPI index


@dataclass(frozen=True)
class DistFile:
    filename: str
    url: str
    sha256: str | None
    size: int | None
    yanked: bool
    metadata_sha256: str | None  # set when the index serves a PEP 658 .metadata file
    has_metadata: bool

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def fetch_index(project: str) -> dict[Version, list[DistFile]]:
    """All files of ``project`` from the PEP 691 JSON simple index, grouped by version."""
    url = SIMPLE_INDEX.format(project=project)
    _, headers, body = http_get(url, {"Accept": SIMPLE_JSON})
    if SIMPLE_JSON not in headers.get("content-type", ""):
        raise GenError(f"{url} did not answer with {SIMPLE_JSON} (got {headers.get('content-type')!r})")
    files: dict[Version, list[DistFile]] = {}
    for entry in json.loads(body)["files"]:
        filename = entry["filename"]
        try:
            if filename.endswith(".whl"):
                version = parse_wheel_filename(filename)[1]
            else:
                version = parse_sdist_filename(filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue  # eggs, .exe installers and other legacy uploads
        metadata = entry.get("core-metadata", entry.get("data-dist-info-metadata", False))
        files.setdefault(version, []).append(
            DistFile(
                filename=filename,
                url=entry["url"],
                sha256=entry.get("hashes", {}).get("sha256"),
                size=entry.get("size"),
                yanked=bool(entry.get("yanked", False)),
                metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
                has_metadata=bool(metadata),
            )
        )
    for dist_files in files.values():
        dist_files.sort(key=lambda f: f.filename)
    return files


@functools.cache
def linux_x86_64_pythons(filename: str) -> frozenset[str]:
    """CPython versions ("3.8", ...) a wheel installs on for Linux x86_64 (empty for other files)."""
    if not filename.endswith(".whl"):
        return frozenset()
    pythons: set[str] = set()
    for tag in parse_wheel_filename(filename)[3]:
        if tag.platform != "any" and not (tag.platform.endswith("x86_64") and "linux" in tag.platform):
            continue
        match = re.fullmatch(r"(cp|py)3(\d*)", tag.interpreter)
        if match is None:
            continue
        if not match.group(2):  # py3
            pythons.update(f"3.{m}" for m in PY_MINORS)
        elif tag.abi == "abi3" or match.group(1) == "py":
            pythons.update(f"3.{m}" for m in PY_MINORS if m >= int(match.group(2)))
        else:
            pythons.add(f"3.{int(match.group(2))}")
    return frozenset(pythons)


def release_pythons(files: Iterable[DistFile]) -> set[str]:
    """Union of CPython versions over the non-yanked Linux x86_64 wheels of one release."""
    pythons: set[str] = set()
    for dist_file in files:
        if not dist_file.yanked:
            pythons |= linux_x86_64_pythons(dist_file.filename)
    return pythons


# --------------------------------------------------------------------------- metadata


class MetadataReader:
    """Fetches core metadata of distribution files, with an on-disk cache keyed by file hash."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    def read(self, dist_file: DistFile) -> email.message.Message:
        key = dist_file.sha256 or hashlib.sha256(dist_file.url.encode()).hexdigest()
        cached = self.cache_dir / f"{key}.METADATA"
        if cached.is_file():
            text = cached.read_text(encoding="utf-8")
        else:
            text = self._fetch(dist_file)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, cached)
        return email.parser.Parser().parsestr(text)

    def _fetch(self, dist_file: DistFile) -> str:
        if not dist_file.is_wheel:
            raise GenError(f"{dist_file.filename}: only wheels are supported")
        if dist_file.has_metadata:
            _, _, body = http_get(dist_file.url + ".metadata")
            if dist_file.metadata_sha256 and hashlib.sha256(body).hexdigest() != dist_file.metadata_sha256:
                raise GenError(f"{dist_file.filename}.metadata: sha256 mismatch")
            return body.decode("utf-8")
        size = dist_file.size
        if size is None:
            raise GenError(f"{dist_file.filename}: index gives no size, cannot read it by ranges")
        try:
            with zipfile.ZipFile(HttpRangeFile(dist_file.url, size)) as wheel:
                return self._metadata_member(wheel, dist_file.filename)
        except RangeNotSupportedError as exc:
            body = exc.full_body if exc.full_body is not None else http_get(dist_file.url)[2]
        if dist_file.sha256 and hashlib.sha256(body).hexdigest() != dist_file.sha256:
            raise GenError(f"{dist_file.filename}: sha256 mismatch")
        with zipfile.ZipFile(io.BytesIO(body)) as wheel:
            return self._metadata_member(wheel, dist_file.filename)

    @staticmethod
    def _metadata_member(wheel: zipfile.ZipFile, filename: str) -> str:
        names = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(names) != 1:
            raise GenError(f"{filename}: expected one *.dist-info/METADATA, found {names}")
        return wheel.read(names[0]).decode("utf-8")


def marker_env(python: str) -> dict[str, str]:
    """Marker environment of the Docker images: Linux x86_64, CPython ``python``, no extras."""
    return {
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "python_version": python,
        "python_full_version": f"{python}.0",
        "extra": "",
    }


def raw_specifier(requirement_line: str) -> str:
    """The version specifier exactly as written, e.g. 'tensorflow (>=2.3,<2.4)' -> '>=2.3,<2.4'."""
    text = requirement_line.split(";", 1)[0]
    text = re.sub(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?", "", text)
    return re.sub(r"\s+", "", text).strip("()")


def find_requirement(
    metadata: email.message.Message, project: str, pythons: Iterable[str], where: str
) -> str | None:
    """Raw specifier of ``project`` in ``Requires-Dist`` that applies on Linux x86_64.

    Returns None if the project is not required; fails if the answer depends on the Python
    version or more than one entry applies.
    """
    wanted = canonicalize_name(project)
    entries: list[tuple[Requirement, str]] = []
    for line in metadata.get_all("Requires-Dist") or []:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if name is None or canonicalize_name(name.group(1)) != wanted:
            continue  # cheap pre-filter; full parsing of ~100 entries per release is slow
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise GenError(f"{where}: unparsable Requires-Dist {line!r}: {exc}") from exc
        entries.append((requirement, raw_specifier(line)))
    answers: set[str | None] = set()
    for python in sorted(pythons):
        env = marker_env(python)
        found = [raw for req, raw in entries if req.marker is None or req.marker.evaluate(env)]
        if len(found) > 1:
            raise GenError(f"{where}: several Requires-Dist entries for {project} apply: {found}")
        answers.add(found[0] if found else None)
    if len(answers) > 1:
        raise GenError(f"{where}: the {project} requirement depends on the Python version: {answers}")
    return answers.pop() if answers else None


def specifier(text: str, where: str) -> SpecifierSet:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise GenError(f"{where}: invalid specifier {text!r}") from exc


# --------------------------------------------------------------------------- vendored tables


@dataclass(frozen=True)
class TestedBuild:
    version: str
    cudnn: str
    cuda: str


@dataclass(frozen=True)
class DriverInfo:
    min_driver: str
    min_driver_compat: str | None


def table_cells(line: str) -> tuple[str, list[str]] | None:
    """('th'|'td', cells) for an HTML table row or a markdown pipe-table row, else None."""
    line = line.strip()
    if line.startswith("<tr>"):
        kind = "th" if "<th>" in line else "td"
        return kind, [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(rf"<{kind}>(.*?)</{kind}>", line)]
    if line.startswith("|") and not re.fullmatch(r"[|:\-\s]+", line):
        cells = [c.strip() for c in line.strip("|").split("|")]
        return ("th" if cells and cells[0] == "Version" else "td"), cells
    return None


def load_tested_builds(path: Path) -> dict[tuple[int, int], TestedBuild]:
    """TensorFlow GPU tested-build rows keyed by (major, minor)."""
    builds: dict[tuple[int, int], TestedBuild] = {}
    columns: list[str] | None = None
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = table_cells(line)
        if row is None:
            continue
        kind, cells = row
        if kind == "th":
            columns = cells
            continue
        if columns is None or len(cells) != len(columns):
            raise GenError(f"{path}:{line_no}: table row without a matching header: {line!r}")
        record = dict(zip(columns, cells))
        match = re.fullmatch(r"tensorflow(?:_gpu)?-(\d+)\.(\d+)\.\d+", record.get("Version", ""))
        if match is None or not record.get("cuDNN") or not record.get("CUDA"):
            raise GenError(f"{path}:{line_no}: cannot read Version/cuDNN/CUDA from {line!r}")
        key = (int(match.group(1)), int(match.group(2)))
        if key in builds:
            raise GenError(f"{path}:{line_no}: second row for TensorFlow {key[0]}.{key[1]}")
        builds[key] = TestedBuild(record["Version"], record["cuDNN"], record["CUDA"])
    if not builds:
        raise GenError(f"{path}: no table rows found")
    return builds


def data_rows(path: Path) -> list[dict[str, str]]:
    """CSV rows of a vendored file, skipping '#' comment lines."""
    lines = [
        ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")
    ]
    return list(csv.DictReader(lines))


def load_cuda_drivers(path: Path) -> dict[str, DriverInfo]:
    """Minimum Linux driver per CUDA major.minor (lowest over its releases, i.e. its GA)."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in data_rows(path):
        grouped.setdefault(row["cuda"], []).append(row)
    drivers: dict[str, DriverInfo] = {}
    for cuda, rows in grouped.items():
        compat = {row["minor_version_compat_min_driver"] or None for row in rows}
        if len(compat) != 1:
            raise GenError(f"{path}: CUDA {cuda} rows disagree on the minor version compatibility driver")
        lowest = min(rows, key=lambda r: tuple(int(p) for p in r["linux_x86_64_min_driver"].split(".")))
        drivers[cuda] = DriverInfo(lowest["linux_x86_64_min_driver"], compat.pop())
    return drivers


def load_missing_tags(path: Path) -> set[Version]:
    return {Version(row["tensorflow"]) for row in data_rows(path)}


# --------------------------------------------------------------------------- resolution


@dataclass
class Context:
    tf_index: dict[Version, list[DistFile]]
    tft_index: dict[Version, list[DistFile]]
    tested: dict[tuple[int, int], TestedBuild]
    drivers: dict[str, DriverInfo]
    missing_tags: set[Version]
    reader: MetadataReader


def candidates(
    index: dict[Version, list[DistFile]], spec: SpecifierSet, pythons: set[str]
) -> dict[Version, set[str]]:
    """Final releases inside ``spec`` with a Linux x86_64 wheel for one of ``pythons``."""
    found: dict[Version, set[str]] = {}
    for version, files in index.items():
        if version.is_prerelease or version not in spec:
            continue
        usable = release_pythons(files) & pythons
        if usable:
            found[version] = usable
    return found


def tensorflow_text_constraint(ctx: Context, version: Version, pythons: set[str]) -> SpecifierSet:
    """The tensorflow specifier required by a tensorflow-text release (empty set if none)."""
    wheels = [
        f for f in ctx.tft_index[version] if not f.yanked and linux_x86_64_pythons(f.filename) & pythons
    ]
    where = f"tensorflow-text {version} ({wheels[0].filename})"
    spec = find_requirement(ctx.reader.read(wheels[0]), "tensorflow", pythons, where)
    return specifier(spec or "", where)


def resolve_tensorflow(
    ctx: Context, rasa: Version, tf_spec: SpecifierSet, tft_spec: SpecifierSet | None, pythons: set[str]
) -> tuple[Version, Version | None]:
    """(tensorflow, tensorflow-text or None) that pip would pick for this Rasa release."""
    tf_candidates = candidates(ctx.tf_index, tf_spec, pythons)
    if not tf_candidates:
        raise GenError(
            f"rasa {rasa}: no TensorFlow release on PyPI matches {tf_spec} for Python {sorted(pythons)}"
        )
    if tft_spec is None:
        return max(tf_candidates), None
    tft_candidates = candidates(ctx.tft_index, tft_spec, pythons)
    for tft in sorted(tft_candidates, reverse=True):
        needs = tensorflow_text_constraint(ctx, tft, tft_candidates[tft])
        both = [v for v, py in tf_candidates.items() if v in needs and py & tft_candidates[tft]]
        if both:
            return max(both), tft
    raise GenError(f"rasa {rasa}: no tensorflow-text in {tft_spec} fits TensorFlow {tf_spec}")


def base_image_tensorflow(ctx: Context, tf: Version) -> Version:
    """TensorFlow version of the Docker base image: ``tf`` or the newest older patch with an image."""
    if tf not in ctx.missing_tags:
        return tf
    same_minor = [
        v
        for v in ctx.tf_index
        if v.release[:2] == tf.release[:2] and v <= tf and not v.is_prerelease and v not in ctx.missing_tags
    ]
    if not same_minor:
        raise GenError(
            f"TensorFlow {tf}: no Docker image and no older {tf.major}.{tf.minor}.x release has one"
        )
    return max(same_minor)


def resolve_release(ctx: Context, rasa: Version, metadata: email.message.Message) -> dict[str, Any]:
    where = f"rasa {rasa}"
    python = (metadata.get("Requires-Python") or "").strip()
    python_spec = specifier(python, where)
    pythons = {f"3.{m}" for m in PY_MINORS if f"3.{m}" in python_spec}
    if not pythons:
        raise GenError(f"{where}: Requires-Python {python!r} allows no known CPython 3 version")

    tf_raw = find_requirement(metadata, "tensorflow", pythons, where)
    if not tf_raw:
        raise GenError(f"{where}: METADATA has no pinned tensorflow requirement for Linux x86_64")
    tft_raw = find_requirement(metadata, "tensorflow-text", pythons, where)
    sdk_raw = find_requirement(metadata, "rasa-sdk", pythons, where)

    tf, tft = resolve_tensorflow(
        ctx,
        rasa,
        specifier(tf_raw, where),
        None if tft_raw is None else specifier(tft_raw, where),
        pythons,
    )
    base = base_image_tensorflow(ctx, tf)
    build = ctx.tested.get(base.release[:2])
    if build is None:
        raise GenError(
            f"{where}: TensorFlow {base.major}.{base.minor} has no row in {TESTED_BUILDS_FILE.name} "
            f"(re-sync it from tensorflow/docs site/en/install/source.md)"
        )
    if ctx.tested.get(tf.release[:2]) != build:
        raise GenError(f"{where}: pip TensorFlow {tf} and image TensorFlow {base} need different CUDA builds")
    driver = ctx.drivers.get(build.cuda)
    if driver is None:
        raise GenError(
            f"{where}: CUDA {build.cuda} (TensorFlow {base}) has no row in {CUDA_DRIVERS_FILE.name} "
            f"(add it from the NVIDIA CUDA Toolkit release notes)"
        )
    return {
        "tensorflow": str(tf),
        "tensorflow_spec": tf_raw,
        "tensorflow_text": None if tft is None else str(tft),
        "rasa_sdk": sdk_raw,
        "python": python,
        "base_tensorflow": str(base),
        "cuda": build.cuda,
        "cudnn": build.cudnn,
        "min_driver": driver.min_driver,
        "min_driver_compat": driver.min_driver_compat,
        "gpu_base_image": f"{IMAGE_REPO}:{base}-gpu",
        "cpu_base_image": f"{IMAGE_REPO}:{base}",
    }


def rasa_wheels(rasa_index: dict[Version, list[DistFile]]) -> dict[Version, DistFile]:
    """The wheel to read for every final Rasa release in range (warns about unusable ones)."""
    selected: dict[Version, DistFile] = {}
    for version in sorted(rasa_index):
        if version.is_prerelease or not RASA_MIN <= version < RASA_BELOW:
            continue
        files = rasa_index[version]
        wheels = [f for f in files if f.is_wheel and not f.yanked]
        if not wheels:
            state = "is yanked" if files and all(f.yanked for f in files) else "has no wheel"
            log(f"warning: rasa {version} {state}; left out of the matrix")
            continue
        selected[version] = wheels[0]
    if not selected:
        raise GenError(f"no Rasa release {RASA_MIN} <= v < {RASA_BELOW} found on PyPI")
    return selected


# --------------------------------------------------------------------------- main


def render(releases: dict[Version, dict[str, Any]]) -> str:
    newest_36 = max(v for v in releases if v.release[:2] == (3, 6))
    document = {
        "schema": SCHEMA_VERSION,
        "generated_by": GENERATED_BY,
        "default": str(newest_36),
        "releases": {str(v): releases[v] for v in sorted(releases)},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generate(out: Path, cache_dir: Path, jobs: int) -> int:
    started = time.monotonic()
    tested = load_tested_builds(TESTED_BUILDS_FILE)
    drivers = load_cuda_drivers(CUDA_DRIVERS_FILE)
    missing_tags = load_missing_tags(MISSING_TAGS_FILE)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        rasa_future, tf_future, tft_future = (
            pool.submit(fetch_index, p) for p in ("rasa", "tensorflow", "tensorflow-text")
        )
        wheels = rasa_wheels(rasa_future.result())
        ctx = Context(
            tf_future.result(), tft_future.result(), tested, drivers, missing_tags, MetadataReader(cache_dir)
        )
        log(f"reading METADATA of {len(wheels)} rasa wheels ...")
        metadata = dict(zip(wheels, pool.map(ctx.reader.read, wheels.values())))

    releases = {version: resolve_release(ctx, version, metadata[version]) for version in sorted(wheels)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(releases), encoding="utf-8")

    for version, row in releases.items():
        if row["base_tensorflow"] != row["tensorflow"]:
            log(f"note: rasa {version}: pip TensorFlow {row['tensorflow']}, image {row['gpu_base_image']}")
    log(f"wrote {len(releases)} releases to {out} in {time.monotonic() - started:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSON (default: %(default)s)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rasa-gpu-compat-cache",
        help="cache for extracted METADATA files (default: %(default)s)",
    )
    parser.add_argument("--jobs", type=int, default=8, help="parallel downloads (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        return generate(args.out, args.cache_dir, max(1, args.jobs))
    except GenError as exc:
        log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
