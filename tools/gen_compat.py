#!/usr/bin/env python3
"""Generate rasa_gpu/data/compat.json, the Rasa -> TensorFlow -> CUDA compatibility matrix.

Run from the repository root (needs network access to pypi.org and files.pythonhosted.org)::

    python tools/gen_compat.py [--out rasa_gpu/data/compat.json] [--cache-dir DIR] [--jobs N]
    python tools/gen_compat.py --locks [VERSION ...]   # the locked sets per release: see tools/gen_locks.py

Only the standard library and ``packaging`` are used (``pip install packaging``).
The output is deterministic: running the script twice gives byte-identical JSON
(as long as PyPI gains no new release inside a resolved range).

Output
------
``{"schema", "generated_by", "default", "releases", "cuda_wheels", "pro_default", "pro_releases"}``:
``releases`` (Rasa Open Source) and ``pro_releases`` (Rasa Pro) map a version to a row with the same keys
(tensorflow, tensorflow_spec, tensorflow_text, rasa_sdk, python, base_tensorflow, cuda, cudnn, min_driver,
min_driver_compat, gpu_base_image, cpu_base_image). ``cuda_wheels`` maps a TensorFlow version used by any
row to the NVIDIA wheels from PyPI that give it CUDA and cuDNN: ``{"cuda", "cudnn", "min_driver",
"min_driver_compat", "packages": {name: exact version}, "libraries": [sonames], "download_bytes",
"source"}``. Keys and versions are sorted; the keys added after schema 1 are new top-level keys only.

Where each input comes from
---------------------------
* Rasa releases: every final release 2.0.0 <= v < 3.7 listed by the PyPI simple index
  (PEP 691 JSON, ``https://pypi.org/simple/rasa/``; where a mirror of pypi.org answers that URL
  with HTML only, the same file list is read from PyPI's JSON API ``/pypi/<project>/json``).
  For each, the core metadata (``METADATA``) of its wheel gives ``Requires-Python`` and the
  ``Requires-Dist`` entries for ``tensorflow``, ``tensorflow-text`` and ``rasa-sdk`` (markers
  evaluated for Linux x86_64, CPython, no extras). The metadata comes from the PEP 658
  ``.metadata`` file when the index advertises one (and serves it), otherwise from the wheel
  itself, read with HTTP range requests (only the zip directory and METADATA member are
  transferred) or, if ranges are refused, a full download (never for wheels over 64 MB).
  Everything read from wheels is cached in ``<tmp>/rasa-gpu-compat-cache`` (``--cache-dir``),
  keyed by the file's sha256.
* Rasa Pro releases: every final release >= 3.8.0 of ``rasa-pro`` (3.8.16 is the first on PyPI
  and every release has TensorFlow). Same METADATA fields, with markers evaluated for Linux
  x86_64 CPython *with the extra "nlu"*: from 3.14 on TensorFlow, tensorflow-text (and
  tensorflow-hub) are only in the extras "nlu" and "full"; "nlu" is the smaller one that brings
  TensorFlow, and older releases (no extras for it) are unaffected by the choice.
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
* ``tools/data/cuda_components.csv``: NVIDIA's component versions of the CUDA 11.8 toolkit
  (redistrib_11.8.0.json = release notes table "CUDA 11.8 Component Versions") and the PyPI
  package of each (nvidia-cuda-runtime-cu11, nvidia-cublas-cu11, ...).
* ``tools/data/tf_dso_libraries.csv``: the libraries TensorFlow's DSO loader (dso_loader.cc) opens
  with dlopen, per TensorFlow version range: base name, the build macro that gives the soname
  version, required (checked by TryDlopenCUDALibraries) / optional / excluded (driver, TensorRT).
* Each TensorFlow wheel used by a row (the Linux x86_64 wheel of its newest CPython), read by
  HTTP ranges: its METADATA (the ``and-cuda`` extra), its ``dso_loader.h`` (the loaders it
  declares, checked against tf_dso_libraries.csv) and its generated ``cuda_config.h`` /
  ``nccl_config.h`` (TF_CUDART_VERSION "11.0", TF_CUDNN_VERSION "8", ...: the exact sonames).
* Each chosen NVIDIA wheel: its size from the index and its ``RECORD`` (read by HTTP ranges: the
  zip directory and RECORD only; never the whole wheel), which lists the sonames it ships.

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

Rasa Pro rows (``pro_releases``)
--------------------------------
* One Python per row: the newest CPython minor that Requires-Python allows (a minor counts when
  any of its releases does: ">=3.9.2" allows 3.9), at which ``rasa-pro[nlu]`` requires tensorflow
  and TensorFlow (and tensorflow-text, where required there) resolves, by the rule above, to a
  release with a manylinux x86_64 wheel for that Python. Older Pythons are tried only when a newer
  one fails; if none works the script stops.
* ``python``: the Pythons for which the row holds: Requires-Python as written when every allowed
  minor gets the same tensorflow / tensorflow-text / rasa-sdk requirements and wheels of the
  resolved versions, else ">=3.a,<3.b" around the contiguous block of such minors that contains
  the picked one (e.g. 3.20.0 allows 3.11-3.14 but requires TensorFlow on 3.11 only).
* The other keys as for Rasa rows. ``pro_default``: the newest final Rasa Pro release.

CUDA wheels (``cuda_wheels``)
-----------------------------
For every TensorFlow version that a row's ``tensorflow`` names:

* TensorFlow with an ``and-cuda`` extra (2.14 on): its ``Requires-Dist`` entries for that extra
  (evaluated for Linux x86_64 and the wheel's CPython). ``==`` pins are used as given; ranges
  (TensorFlow 2.20 on writes ``>=12.5.82,<13.0``) give their lower bound, the version TensorFlow
  was built and tested with. Requirements that are not NVIDIA CUDA wheels (``tensorrt`` in 2.14)
  are left out. The CUDA (from nvidia-cuda-runtime-cuXX) and cuDNN major.minor of the result must
  equal the tested-build row, else the script stops.
* TensorFlow built with CUDA 11.x and cuDNN 8.x without that extra (< 2.14): NVIDIA's cu11 wheels
  exist only for the 11.7 and 11.8 toolkits, and CUDA 11 has minor version compatibility with
  sonames that do not change across 11.x (libcudart.so.11.0, libcublas.so.11, ...; cuDNN 8 keeps
  libcudnn.so.8). So: the CUDA 11.8 component wheel of each library TensorFlow opens
  (cuda_components.csv), and nvidia-cudnn-cu11 = the newest wheel of the tested cuDNN major.minor
  (8.6.x for TensorFlow 2.12), else the newest 8.x above it (TensorFlow accepts a newer cuDNN minor
  than it was built with; 2.6-2.11, built with 8.1, get 8.9.x). nvidia-cudnn-cu11 depends on an
  unpinned nvidia-cublas-cu11: the pins include cublas themselves and are meant for
  ``pip install --no-deps``. A component wheel that provides none of the sonames TensorFlow asks
  for is dropped (cupti: TensorFlow 2.6-2.11 ask for libcupti.so.11.2, the wheel has .so.11.8).
* Anything else (CUDA 10.x / cuDNN 7: there are no such wheels): no entry; listed in the log.
* ``libraries``: for each required and optional library of tf_dso_libraries.csv, the soname
  lib<name>.so.<value of its macro in the wheel's build headers> when a chosen wheel's RECORD
  lists it. A missing required one stops the script; a missing optional one is logged.
  libcuda / libnvidia-ml (the driver) and TensorRT are never listed.
* ``cuda``/``cudnn``: major.minor of the chosen runtime and cuDNN wheels; ``min_driver`` /
  ``min_driver_compat``: cuda_drivers.csv for that CUDA (the wheels', not the TensorFlow build's).
* Every pinned version must exist on PyPI with a Python-independent manylinux x86_64 wheel; the one
  pip would take on a recent glibc (newest manylinux tag) gives ``download_bytes`` (the sum).

The script exits non-zero with a message when an input is missing (no tested-build row,
no driver row, no matching TensorFlow, a wheel or soname that is not there, an HTTP error, ...).
It never fills gaps silently.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
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
import threading
import time
import urllib.error
import urllib.parse
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
CUDA_COMPONENTS_FILE = DATA_DIR / "cuda_components.csv"
DSO_LIBRARIES_FILE = DATA_DIR / "tf_dso_libraries.csv"

SIMPLE_INDEX = "https://pypi.org/simple/{project}/"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
JSON_API = "https://pypi.org/pypi/{project}/json"
USER_AGENT = "rasa-gpu-gen-compat/1 (+tools/gen_compat.py)"
GENERATED_BY = "tools/gen_compat.py"
SCHEMA_VERSION = 1

RASA_MIN = Version("2.0.0")
RASA_BELOW = Version("3.7")  # "up to the newest 3.6.x"
PY_MINORS = range(5, 15)  # CPython 3.5 .. 3.14 are considered when matching wheel tags
PRO_MIN = Version("3.8.0")  # Rasa Pro: every final release from 3.8.0 on
PRO_EXTRA = "nlu"  # the rasa-pro extra that brings TensorFlow (3.14 on); older releases need no extra
AND_CUDA = "and-cuda"  # TensorFlow's extra that pins NVIDIA's CUDA wheels (2.14 on)
CU11_WHEEL_TOOLKIT = "11.8"  # the CUDA 11 toolkit whose wheels serve TensorFlow built with any CUDA 11.x
CUDNN_PACKAGE = {"11": "nvidia-cudnn-cu11", "12": "nvidia-cudnn-cu12"}
ROCM_LOADER = re.compile(r"Get(?:Roc|Hip|Miopen)\w*DsoHandle")  # AMD loaders in dso_loader.h, not CUDA
HTTP_TIMEOUT = 60
HTTP_TRIES = 4
RANGE_CHUNK = 256 * 1024
FULL_DOWNLOAD_MAX = 64 * 1024 * 1024  # never download a bigger wheel whole to read one member
IMAGE_REPO = "tensorflow/tensorflow"


class GenError(Exception):
    """A problem that must stop the generation (reported without a traceback)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- HTTP


def http_get(
    url: str, headers: dict[str, str] | None = None, *, missing_ok: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; returns (status, lower-cased headers, body). Retries transient failures.

    With ``missing_ok`` a 404 is returned as (404, {}, b"") instead of stopping the run.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    for attempt in range(1, HTTP_TRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, response_headers, response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return 404, {}, b""
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
    """All files of ``project``, grouped by version.

    From the PEP 691 JSON simple index; where that answers with HTML only (some mirrors of pypi.org
    do), from PyPI's JSON API ``/pypi/<project>/json``, which lists the same files with the same
    fields (file name, URL, sha256, size, yanked, core-metadata). Relative URLs are resolved against
    the page they came from.
    """
    url = SIMPLE_INDEX.format(project=project)
    _, headers, body = http_get(url, {"Accept": SIMPLE_JSON})
    if SIMPLE_JSON in headers.get("content-type", ""):
        entries = json.loads(body)["files"]
        base = url
    else:
        base = JSON_API.format(project=project)
        _, api_headers, api_body = http_get(base)
        if "json" not in api_headers.get("content-type", ""):
            raise GenError(
                f"{url} did not answer with {SIMPLE_JSON} (got {headers.get('content-type')!r}) "
                f"and {base} did not answer with JSON either"
            )
        _log_once(f"note: {url} answers with {headers.get('content-type')!r}; file lists come from {base}")
        entries = [
            {
                "filename": f["filename"],
                "url": f["url"],
                "hashes": {"sha256": f.get("digests", {}).get("sha256")},
                "size": f.get("size"),
                "yanked": f.get("yanked", False),
                "core-metadata": f.get("core-metadata", f.get("data-dist-info-metadata", False)),
            }
            for release_files in json.loads(api_body)["releases"].values()
            for f in release_files
        ]
    files: dict[Version, list[DistFile]] = {}
    for entry in entries:
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
                url=urllib.parse.urljoin(base, entry["url"]),
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


_LOGGED: set[str] = set()
_LOG_LOCK = threading.Lock()


def _log_once(message: str) -> None:
    """log() a note only the first time (notes that would repeat for every project or file)."""
    key = re.sub(r"https?://\S+", "", message)
    with _LOG_LOCK:
        if key in _LOGGED:
            return
        _LOGGED.add(key)
    log(message)


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
    """Reads members of distribution files (METADATA, RECORD, TensorFlow's build headers) with an
    on-disk cache keyed by the file's sha256; wheels are read with HTTP range requests."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    def _cached(self, dist_file: DistFile, suffix: str, fetch: Any) -> str:
        key = dist_file.sha256 or hashlib.sha256(dist_file.url.encode()).hexdigest()
        cached = self.cache_dir / f"{key}.{suffix}"
        if cached.is_file():
            return cached.read_text(encoding="utf-8")
        text = fetch(dist_file)
        tmp = cached.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cached)
        return text

    def read(self, dist_file: DistFile) -> email.message.Message:
        """The core metadata (METADATA) of a wheel."""
        return email.parser.Parser().parsestr(self._cached(dist_file, "METADATA", self._fetch))

    def record(self, dist_file: DistFile) -> str:
        """The RECORD file of a wheel (its list of files)."""
        return self._cached(dist_file, "RECORD", self._fetch_record)

    def tf_build(self, dist_file: DistFile) -> dict[str, Any]:
        """What a TensorFlow wheel says about its CUDA build: the macros of the ``*_config.h`` headers
        it ships (TF_CUDART_VERSION, ...) and the Get<X>DsoHandle functions its dso_loader.h declares."""
        return json.loads(self._cached(dist_file, f"tfbuild-{TF_BUILD_CACHE_TAG}.json", self._fetch_tf_build))

    def _fetch(self, dist_file: DistFile) -> str:
        if not dist_file.is_wheel:
            raise GenError(f"{dist_file.filename}: only wheels are supported")
        if dist_file.has_metadata:
            status, _, body = http_get(dist_file.url + ".metadata", missing_ok=True)
            if status != 404:
                if (
                    dist_file.metadata_sha256
                    and hashlib.sha256(body).hexdigest() != dist_file.metadata_sha256
                ):
                    raise GenError(f"{dist_file.filename}.metadata: sha256 mismatch")
                return body.decode("utf-8")
            _log_once(
                f"note: the index advertises {dist_file.url}.metadata but it is not served (HTTP 404); "
                "METADATA is read from the wheels instead"
            )
        members = self._members(dist_file, lambda names: _one(names, r"[^/]+\.dist-info/METADATA", dist_file))
        return next(iter(members.values()))

    def _fetch_record(self, dist_file: DistFile) -> str:
        members = self._members(dist_file, lambda names: _one(names, r"[^/]+\.dist-info/RECORD", dist_file))
        return next(iter(members.values()))

    def _fetch_tf_build(self, dist_file: DistFile) -> str:
        def select(names: list[str]) -> list[str]:
            return [n for n in names if TF_CONFIG_HEADER.search(n) or TF_DSO_LOADER_HEADER.search(n)]

        members = self._members(dist_file, select)
        macros: dict[str, str] = {}
        loaders: set[str] = set()
        for name in sorted(members):
            if TF_CONFIG_HEADER.search(name):
                for macro, value in parse_header_macros(members[name]).items():
                    if macros.setdefault(macro, value) != value:
                        raise GenError(f"{dist_file.filename}: {macro} differs between its config headers")
            else:
                loaders |= dso_loader_functions(members[name])
        if "TF_CUDA_VERSION" not in macros or not loaders:
            raise GenError(
                f"{dist_file.filename}: found no cuda_config.h / dso_loader.h under tensorflow/include "
                f"(looked at {sorted(members)})"
            )
        return json.dumps({"macros": macros, "dso_loaders": sorted(loaders)}, indent=1, sort_keys=True)

    @staticmethod
    def _members(dist_file: DistFile, select: Any) -> dict[str, str]:
        """The text of the members ``select(namelist)`` picks, read with HTTP ranges (only the zip
        directory and those members are transferred)."""
        if not dist_file.is_wheel:
            raise GenError(f"{dist_file.filename}: only wheels are supported")
        size = dist_file.size
        if size is None:
            raise GenError(f"{dist_file.filename}: index gives no size, cannot read it by ranges")
        try:
            with zipfile.ZipFile(HttpRangeFile(dist_file.url, size)) as wheel:
                return {n: wheel.read(n).decode("utf-8") for n in select(wheel.namelist())}
        except RangeNotSupportedError as exc:
            if exc.full_body is None and size > FULL_DOWNLOAD_MAX:
                raise GenError(
                    f"{dist_file.url}: the server ignores HTTP ranges; refusing to download "
                    f"{size / 1e6:.0f} MB to read one member"
                ) from exc
            body = exc.full_body if exc.full_body is not None else http_get(dist_file.url)[2]
        if dist_file.sha256 and hashlib.sha256(body).hexdigest() != dist_file.sha256:
            raise GenError(f"{dist_file.filename}: sha256 mismatch")
        with zipfile.ZipFile(io.BytesIO(body)) as wheel:
            return {n: wheel.read(n).decode("utf-8") for n in select(wheel.namelist())}


def _one(names: list[str], pattern: str, dist_file: DistFile) -> list[str]:
    found = [n for n in names if re.fullmatch(pattern, n)]
    if len(found) != 1:
        raise GenError(f"{dist_file.filename}: expected one {pattern}, found {found}")
    return found


#: The generated build headers a TensorFlow wheel ships under tensorflow/include: cuda_config.h
#: (external/local_config_cuda/..., third_party/gpus/cuda/), nccl_config.h (external/local_config_nccl/ or
#: external/nccl_archive/), nvshmem_config.h, tensorrt_config.h.
TF_CONFIG_HEADER = re.compile(r"^tensorflow/include/(?:.*/)?(?:cuda|nccl|nvshmem|tensorrt)_config\.h$")
#: TensorFlow's DSO loader header (stream_executor, tsl or xla/tsl, depending on the version).
TF_DSO_LOADER_HEADER = re.compile(r"^tensorflow/include/.*platform/default/dso_loader\.h$")
#: Part of the cache file name of extracted TensorFlow build data: changes when what is extracted changes.
TF_BUILD_CACHE_TAG = hashlib.sha256(
    f"{TF_CONFIG_HEADER.pattern}|{TF_DSO_LOADER_HEADER.pattern}".encode()
).hexdigest()[:8]


def parse_header_macros(text: str) -> dict[str, str]:
    """``#define NAME "value"`` lines of a C header (string values only)."""
    return dict(re.findall(r'^\s*#\s*define\s+(\w+)\s+"([^"]*)"', text, flags=re.MULTILINE))


def dso_loader_functions(text: str) -> set[str]:
    """Names of the Get<X>DsoHandle functions a dso_loader.h declares."""
    return set(re.findall(r"\b(Get\w+DsoHandle)\s*\(\s*\)\s*;", text))


def record_sonames(record_text: str) -> set[str]:
    """Shared-library file names (``libfoo.so.1.2``, ``libfoo.so``) a wheel's RECORD lists."""
    names: set[str] = set()
    for row in csv.reader(io.StringIO(record_text)):
        if row:
            base = row[0].rsplit("/", 1)[-1]
            if re.fullmatch(r"lib[\w.+-]*?\.so(\.\d+)*", base):
                names.add(base)
    return names


def marker_env(python: str, extra: str = "") -> dict[str, str]:
    """Marker environment of the Docker images: Linux x86_64, CPython ``python``, ``extra`` (none by default)."""
    return {
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "python_version": python,
        "python_full_version": f"{python}.0",
        "extra": extra,
    }


def raw_specifier(requirement_line: str) -> str:
    """The version specifier exactly as written, e.g. 'tensorflow (>=2.3,<2.4)' -> '>=2.3,<2.4'."""
    text = requirement_line.split(";", 1)[0]
    text = re.sub(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?", "", text)
    return re.sub(r"\s+", "", text).strip("()")


def find_requirement(
    metadata: email.message.Message, project: str, pythons: Iterable[str], where: str, extra: str = ""
) -> str | None:
    """Raw specifier of ``project`` in ``Requires-Dist`` that applies on Linux x86_64 (with ``extra``).

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
        env = marker_env(python, extra)
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


@dataclass(frozen=True)
class Component:
    """One component of a CUDA toolkit release and the PyPI wheel that carries it."""

    toolkit: str
    component: str
    version: str
    package: str
    libraries: tuple[str, ...]


def load_cuda_components(path: Path) -> dict[str, list[Component]]:
    """Components per toolkit (e.g. "11.8"), from tools/data/cuda_components.csv."""
    toolkits: dict[str, list[Component]] = {}
    seen: set[tuple[str, str]] = set()
    for row in data_rows(path):
        try:
            toolkit, version, package = row["toolkit"], row["version"], row["package"]
            Version(version)
        except (KeyError, InvalidVersion) as exc:
            raise GenError(f"{path}: bad row {row}: {exc}") from exc
        if not re.fullmatch(r"\d+\.\d+", toolkit) or not package:
            raise GenError(f"{path}: bad row {row}")
        key = (toolkit, canonicalize_name(package))
        if key in seen:
            raise GenError(f"{path}: second row for {package} in CUDA {toolkit}")
        seen.add(key)
        toolkits.setdefault(toolkit, []).append(
            Component(
                toolkit, row["component"], version, package, tuple((row.get("libraries") or "").split())
            )
        )
    if not toolkits:
        raise GenError(f"{path}: no rows")
    return toolkits


DSO_NEEDS = ("required", "optional", "excluded")


@dataclass(frozen=True)
class DsoLibrary:
    """A library TensorFlow's DSO loader opens, for TensorFlow tf_min <= v < tf_below."""

    tf_min: Version
    tf_below: Version | None
    loader: str
    library: str
    macro: str
    need: str
    source: str

    def applies(self, tf: Version) -> bool:
        release = Version(".".join(str(p) for p in tf.release[:2]))
        return self.tf_min <= release and (self.tf_below is None or release < self.tf_below)


def load_dso_libraries(path: Path) -> list[DsoLibrary]:
    """Rows of tools/data/tf_dso_libraries.csv."""
    rows: list[DsoLibrary] = []
    for row in data_rows(path):
        try:
            entry = DsoLibrary(
                tf_min=Version(row["tf_min"]),
                tf_below=Version(row["tf_below"]) if row["tf_below"] else None,
                loader=row["loader"],
                library=row["library"],
                macro=row["version"],
                need=row["need"],
                source=row["source"],
            )
        except (KeyError, InvalidVersion) as exc:
            raise GenError(f"{path}: bad row {row}: {exc}") from exc
        if entry.need not in DSO_NEEDS or not re.fullmatch(r"Get\w+DsoHandle", entry.loader):
            raise GenError(f"{path}: bad row {row} (need must be one of {DSO_NEEDS})")
        if entry.need != "excluded" and not entry.macro:
            raise GenError(f"{path}: {entry.library} needs a version macro")
        rows.append(entry)
    if not rows:
        raise GenError(f"{path}: no rows")
    return rows


# --------------------------------------------------------------------------- resolution


@dataclass
class Context:
    tf_index: dict[Version, list[DistFile]]
    tft_index: dict[Version, list[DistFile]]
    tested: dict[tuple[int, int], TestedBuild]
    drivers: dict[str, DriverInfo]
    missing_tags: set[Version]
    reader: MetadataReader
    components: dict[str, list[Component]] = dataclasses.field(default_factory=dict)
    dso_libraries: list[DsoLibrary] = dataclasses.field(default_factory=list)


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
    ctx: Context, where: str, tf_spec: SpecifierSet, tft_spec: SpecifierSet | None, pythons: set[str]
) -> tuple[Version, Version | None]:
    """(tensorflow, tensorflow-text or None) that pip would pick for this Rasa release (``where``: "rasa 3.6.0")."""
    tf_candidates = candidates(ctx.tf_index, tf_spec, pythons)
    if not tf_candidates:
        raise GenError(
            f"{where}: no TensorFlow release on PyPI matches {tf_spec} for Python {sorted(pythons)}"
        )
    if tft_spec is None:
        return max(tf_candidates), None
    tft_candidates = candidates(ctx.tft_index, tft_spec, pythons)
    for tft in sorted(tft_candidates, reverse=True):
        needs = tensorflow_text_constraint(ctx, tft, tft_candidates[tft])
        both = [v for v, py in tf_candidates.items() if v in needs and py & tft_candidates[tft]]
        if both:
            return max(both), tft
    raise GenError(f"{where}: no tensorflow-text in {tft_spec} fits TensorFlow {tf_spec}")


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
        where,
        specifier(tf_raw, where),
        None if tft_raw is None else specifier(tft_raw, where),
        pythons,
    )
    return build_row(ctx, where, tf, tft, tf_raw, sdk_raw, python)


def build_row(
    ctx: Context,
    where: str,
    tf: Version,
    tft: Version | None,
    tf_raw: str,
    sdk_raw: str | None,
    python: str,
) -> dict[str, Any]:
    """A matrix row (the keys rasa_gpu.compat.RasaRelease takes) for a resolved TensorFlow."""
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


def rasa_wheels(
    rasa_index: dict[Version, list[DistFile]],
    project: str = "rasa",
    low: Version = RASA_MIN,
    below: Version | None = RASA_BELOW,
) -> dict[Version, DistFile]:
    """The wheel to read for every final release low <= v < below (warns about unusable ones)."""
    selected: dict[Version, DistFile] = {}
    for version in sorted(rasa_index):
        if version.is_prerelease or version < low or (below is not None and version >= below):
            continue
        files = rasa_index[version]
        wheels = [f for f in files if f.is_wheel and not f.yanked]
        if not wheels:
            state = "is yanked" if files and all(f.yanked for f in files) else "has no wheel"
            log(f"warning: {project} {version} {state}; left out of the matrix")
            continue
        selected[version] = wheels[0]
    if not selected:
        upper = f" <= v < {below}" if below is not None else " <= v"
        raise GenError(f"no {project} release {low}{upper} found on PyPI")
    return selected


# --------------------------------------------------------------------------- Rasa Pro


def pro_pythons(spec: SpecifierSet) -> list[str]:
    """CPython minors (oldest first) of which some release satisfies ``spec`` (">=3.9.2" allows 3.9)."""
    return [f"3.{m}" for m in PY_MINORS if any(spec.contains(f"3.{m}.{patch}") for patch in (0, 99))]


def python_range(block: list[str], allowed: list[str], requires_python: str) -> str:
    """The row's Python range: Requires-Python as written when ``block`` is every allowed minor,
    else ">=3.a,<3.b" around the contiguous ``block``."""
    if block == allowed:
        return requires_python
    first, last = block[0], block[-1]
    return f">={first},<3.{int(last.split('.')[1]) + 1}"


def resolve_pro_release(ctx: Context, version: Version, metadata: email.message.Message) -> dict[str, Any]:
    """Row for a Rasa Pro release: TensorFlow as ``pip install rasa-pro[nlu]`` gets it on Linux x86_64
    with the newest CPython the release allows and TensorFlow has a wheel for."""
    where = f"rasa-pro {version}"
    requires_python = (metadata.get("Requires-Python") or "").strip()
    allowed = pro_pythons(specifier(requires_python, where))
    if not allowed:
        raise GenError(f"{where}: Requires-Python {requires_python!r} allows no known CPython 3 version")

    def requirements(python: str) -> tuple[str | None, str | None, str | None]:
        return tuple(  # type: ignore[return-value]
            find_requirement(metadata, project, [python], where, PRO_EXTRA)
            for project in ("tensorflow", "tensorflow-text", "rasa-sdk")
        )

    refused: list[str] = []
    for python in reversed(allowed):
        tf_raw, tft_raw, sdk_raw = requirements(python)
        if not tf_raw:
            refused.append(f"{python}: rasa-pro[{PRO_EXTRA}] requires no tensorflow")
            continue
        try:
            tf, tft = resolve_tensorflow(
                ctx,
                where,
                specifier(tf_raw, where),
                None if tft_raw is None else specifier(tft_raw, where),
                {python},
            )
        except GenError as exc:
            refused.append(f"{python}: {exc}")
            continue
        break
    else:
        raise GenError(
            f"{where}: no Python it allows gets a TensorFlow with a Linux wheel: " + "; ".join(refused)
        )

    # the Pythons (contiguous, down from the picked one) that get the same requirements and wheels
    block = [python]
    for older in reversed(allowed[: allowed.index(python)]):
        same = requirements(older) == (tf_raw, tft_raw, sdk_raw)
        wheels = older in release_pythons(ctx.tf_index[tf]) and (
            tft is None or older in release_pythons(ctx.tft_index[tft])
        )
        if not (same and wheels):
            break
        block.insert(0, older)
    return build_row(ctx, where, tf, tft, tf_raw, sdk_raw, python_range(block, allowed, requires_python))


# --------------------------------------------------------------------------- CUDA wheels


@dataclass(frozen=True)
class SonameRequest:
    library: DsoLibrary
    soname: str | None  # None: the version macro is not in the wheel's headers


def dso_rows_for(rows: list[DsoLibrary], tf: Version) -> list[DsoLibrary]:
    found = [row for row in rows if row.applies(tf)]
    if not found:
        raise GenError(
            f"TensorFlow {tf}: no rows in {DSO_LIBRARIES_FILE.name} (add them from its dso_loader.cc)"
        )
    return found


def check_dso_loaders(rows: list[DsoLibrary], declared: Iterable[str], where: str) -> None:
    """The data file and the wheel's dso_loader.h must name the same CUDA loaders."""
    declared = set(declared)
    listed = {row.loader for row in rows}
    missing = sorted(row.loader for row in rows if row.loader not in declared)
    if missing:
        raise GenError(
            f"{where}: {DSO_LIBRARIES_FILE.name} lists {missing}, which its dso_loader.h does not declare"
        )
    unknown = sorted(name for name in declared - listed if not ROCM_LOADER.fullmatch(name))
    if unknown:
        raise GenError(
            f"{where}: its dso_loader.h declares {unknown}; add rows for them to {DSO_LIBRARIES_FILE.name}"
        )


def requested_sonames(rows: list[DsoLibrary], macros: dict[str, str], where: str) -> list[SonameRequest]:
    """lib<name>.so.<version> for the required and optional libraries, versions from the build headers."""
    requests = []
    for row in rows:
        if row.need == "excluded":
            continue
        value = macros.get(row.macro)
        if not value and row.need == "required":
            raise GenError(
                f"{where}: its build headers do not define {row.macro} (needed for lib{row.library})"
            )
        requests.append(SonameRequest(row, f"lib{row.library}.so.{value}" if value else None))
    return requests


def and_cuda_requirements(
    metadata: email.message.Message, python: str, where: str
) -> dict[str, SpecifierSet]:
    """Requires-Dist entries that only the "and-cuda" extra adds (Linux x86_64, CPython ``python``)."""
    found: dict[str, SpecifierSet] = {}
    with_extra, without = marker_env(python, AND_CUDA), marker_env(python)
    for line in metadata.get_all("Requires-Dist") or []:
        if AND_CUDA not in line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise GenError(f"{where}: unparsable Requires-Dist {line!r}: {exc}") from exc
        if requirement.marker is None or not requirement.marker.evaluate(with_extra):
            continue
        if requirement.marker.evaluate(without):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            raise GenError(f"{where}: two and-cuda entries for {name}")
        found[name] = requirement.specifier
    return found


def pin_version(name: str, spec: SpecifierSet, where: str) -> tuple[str, bool]:
    """(version, exact) for an and-cuda requirement: an ``==`` pin as given; a range ``>=X[,<Y]`` gives
    its lower bound X (the version TensorFlow was built and tested with)."""
    specs = list(spec)
    exact = [s for s in specs if s.operator in ("==", "===") and "*" not in s.version]
    if len(specs) == 1 and exact:
        return exact[0].version, True
    lower = [s for s in specs if s.operator == ">="]
    others = [s for s in specs if s.operator not in (">=", "<")]
    if len(lower) == 1 and not others:
        return lower[0].version, False
    raise GenError(f"{where}: cannot take one version of {name} from {spec!s}")


def manylinux_glibc(filename: str) -> tuple[int, int] | None:
    """glibc level of a Python-independent (py3-none) manylinux x86_64 wheel, None for any other file."""
    if not filename.endswith(".whl"):
        return None
    levels = []
    for tag in parse_wheel_filename(filename)[3]:
        if tag.abi != "none" or not tag.interpreter.startswith("py3") or not tag.platform.endswith("_x86_64"):
            continue
        legacy = {
            "manylinux1_x86_64": (2, 5),
            "manylinux2010_x86_64": (2, 12),
            "manylinux2014_x86_64": (2, 17),
        }
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", tag.platform)
        if match:
            levels.append((int(match.group(1)), int(match.group(2))))
        elif tag.platform in legacy:
            levels.append(legacy[tag.platform])
    return max(levels) if levels else None


def pick_wheel(files: Iterable[DistFile]) -> DistFile | None:
    """The wheel pip takes on a recent Linux x86_64: Python-independent manylinux, newest glibc tag."""
    usable = [(manylinux_glibc(f.filename), f.filename, f) for f in files if not f.yanked]
    usable = [u for u in usable if u[0] is not None]
    return max(usable, key=lambda u: (u[0], u[1]))[2] if usable else None


def pick_cudnn(index: dict[Version, list[DistFile]], tested: str, where: str) -> Version:
    """cuDNN wheel for a tested cuDNN "X.Y": the newest X.Y.* wheel, else the newest X.* >= X.Y
    (cuDNN X keeps libcudnn.so.X and TensorFlow accepts a newer minor than it was built with)."""
    major, minor = (int(p) for p in tested.split(".")[:2])
    versions = [v for v, files in index.items() if not v.is_prerelease and pick_wheel(files) is not None]
    same = [v for v in versions if v.release[:2] == (major, minor)]
    newer = [v for v in versions if v.major == major and v.release[:2] >= (major, minor)]
    if same or newer:
        return max(same or newer)
    raise GenError(f"{where}: no cuDNN {major}.x >= {tested} wheel with a manylinux x86_64 file on PyPI")


def wheel_size(dist_file: DistFile) -> int:
    if dist_file.size is None:
        raise GenError(f"{dist_file.filename}: the index gives no size")
    return dist_file.size


def tensorflow_wheel(files: Iterable[DistFile]) -> tuple[DistFile, str] | None:
    """(wheel, python) for reading a TensorFlow release: the Linux x86_64 wheel of its newest CPython."""
    best: tuple[tuple[int, str], DistFile, str] | None = None
    for dist_file in files:
        if dist_file.yanked:
            continue
        for python in linux_x86_64_pythons(dist_file.filename):
            key = (int(python.split(".")[1]), dist_file.filename)
            if best is None or key > best[0]:
                best = (key, dist_file, python)
    return None if best is None else (best[1], best[2])


def build_cuda_wheels(
    ctx: Context, tf_versions: Iterable[Version], pool: Any
) -> tuple[dict[str, Any], list[str]]:
    """cuda_wheels entries per TensorFlow version, and the versions left without one (with the reason)."""
    plans: dict[Version, dict[str, Any]] = {}
    without: list[str] = []
    for tf in sorted(set(tf_versions)):
        plan = plan_cuda_wheels(ctx, tf)
        if isinstance(plan, str):
            without.append(f"{tf} ({plan})")
        else:
            plans[tf] = plan

    names = sorted({name for plan in plans.values() for name in plan["pins"]})
    indexes = dict(zip(names, pool.map(fetch_index, names)))
    chosen: dict[tuple[str, str], DistFile] = {}
    for tf, plan in plans.items():
        if plan["cudnn_package"]:
            version = pick_cudnn(indexes[plan["cudnn_package"]], plan["cudnn_wanted"], f"tensorflow {tf}")
            plan["pins"][plan["cudnn_package"]] = (str(version), "cudnn")
        for name, (version, _) in plan["pins"].items():
            wheel = pick_wheel(indexes[name].get(Version(version), []))
            if wheel is None:
                raise GenError(
                    f"tensorflow {tf}: {name}=={version} has no Python-independent manylinux x86_64 wheel on PyPI"
                )
            chosen[(name, version)] = wheel
    keys = sorted(chosen)
    records = dict(zip(keys, pool.map(lambda key: record_sonames(ctx.reader.record(chosen[key])), keys)))

    entries: dict[str, Any] = {}
    for tf, plan in plans.items():
        entries[str(tf)] = finish_cuda_wheels(ctx, tf, plan, chosen, records)
    return entries, without


def plan_cuda_wheels(ctx: Context, tf: Version) -> dict[str, Any] | str:
    """Which wheels would serve TensorFlow ``tf`` (before the index and RECORD checks), or why none."""
    where = f"tensorflow {tf}"
    build = ctx.tested.get(tf.release[:2])
    if build is None:
        raise GenError(f"{where}: no row in {TESTED_BUILDS_FILE.name}")
    found = tensorflow_wheel(ctx.tf_index.get(tf, []))
    if found is None:
        raise GenError(f"{where}: no Linux x86_64 wheel on PyPI")
    wheel, python = found
    metadata = ctx.reader.read(wheel)
    extras = {canonicalize_name(e) for e in metadata.get_all("Provides-Extra") or []}
    if AND_CUDA not in extras and not (build.cuda.startswith("11.") and build.cudnn.startswith("8.")):
        return f"built with CUDA {build.cuda} and cuDNN {build.cudnn}; NVIDIA publishes no wheels for those"

    tf_build = ctx.reader.tf_build(wheel)
    rows = dso_rows_for(ctx.dso_libraries, tf)
    check_dso_loaders(rows, tf_build["dso_loaders"], f"{where} ({wheel.filename})")
    requests = requested_sonames(rows, tf_build["macros"], f"{where} ({wheel.filename})")
    plan: dict[str, Any] = {
        "build": build,
        "requests": requests,
        "pins": {},  # package -> (version, why)
        "cudnn_package": None,
        "cudnn_wanted": None,
        "and_cuda": AND_CUDA in extras,
    }
    if plan["and_cuda"]:
        exact_all = True
        for name, spec in sorted(and_cuda_requirements(metadata, python, where).items()):
            if not name.startswith("nvidia-"):
                _log_once(
                    f"note: tensorflow {tf}: and-cuda also names {name}{spec}; left out (not a CUDA wheel)"
                )
                continue
            version, exact = pin_version(name, spec, where)
            exact_all &= exact
            plan["pins"][name] = (version, "and-cuda")
        if not plan["pins"]:
            raise GenError(f"{where}: Provides-Extra and-cuda but no nvidia-* requirement for it")
        how = "its exact pins" if exact_all else "the lower bounds of its ranges"
        plan["source"] = f'tensorflow {tf} METADATA (Linux x86_64 wheel), extra "{AND_CUDA}": {how}'
        return plan

    toolkit = CU11_WHEEL_TOOLKIT
    components = ctx.components.get(toolkit)
    if components is None:
        raise GenError(f"{where}: CUDA {toolkit} has no rows in {CUDA_COMPONENTS_FILE.name}")
    for request in requests:
        if request.library.library == "cudnn":
            plan["cudnn_package"] = CUDNN_PACKAGE[build.cuda.split(".")[0]]
            plan["cudnn_wanted"] = build.cudnn
            continue
        providers = [c for c in components if request.library.library in c.libraries]
        if len(providers) != 1:
            if request.library.need == "required":
                raise GenError(
                    f"{where}: no single CUDA {toolkit} component in {CUDA_COMPONENTS_FILE.name} "
                    f"ships lib{request.library.library}"
                )
            continue
        plan["pins"][canonicalize_name(providers[0].package)] = (
            providers[0].version,
            request.library.library,
        )
    plan["source"] = (
        f"CUDA {toolkit} component versions ({CUDA_COMPONENTS_FILE.name}) for the libraries TensorFlow {tf} "
        f"(CUDA {build.cuda} build) opens, and the newest nvidia-cudnn wheel for its cuDNN {build.cudnn}"
    )
    return plan


def finish_cuda_wheels(
    ctx: Context,
    tf: Version,
    plan: dict[str, Any],
    chosen: dict[tuple[str, str], DistFile],
    records: dict[tuple[str, str], set[str]],
) -> dict[str, Any]:
    where = f"tensorflow {tf}"
    pins: dict[str, tuple[str, str]] = plan["pins"]
    libraries: set[str] = set()
    used: set[str] = set()
    for request in plan["requests"]:
        providers = [
            name for name, (version, _) in pins.items() if request.soname in records[(name, version)]
        ]
        if not providers:
            if request.library.need == "required":
                raise GenError(
                    f"{where}: no chosen wheel provides {request.soname or 'lib' + request.library.library} "
                    f"({', '.join(f'{n}=={v}' for n, (v, _) in sorted(pins.items()))})"
                )
            _log_once(
                f"note: tensorflow {tf}: optional lib{request.library.library} "
                f"({request.soname or request.library.macro + ' not in its build headers'}) is in none of its wheels"
            )
            continue
        libraries.add(request.soname)
        used.update(providers)
    if not plan["and_cuda"]:  # a component wheel that serves no library TensorFlow opens is not installed
        pins = {name: pin for name, pin in pins.items() if name in used}

    def major_minor(version: str) -> str:
        return ".".join(version.split(".")[:2])

    runtime = [name for name in pins if re.fullmatch(r"nvidia-cuda-runtime-cu\d+", name)]
    cudnn = [name for name in pins if re.fullmatch(r"nvidia-cudnn-cu\d+", name)]
    if len(runtime) != 1 or len(cudnn) != 1:
        raise GenError(f"{where}: expected one CUDA runtime and one cuDNN wheel, got {sorted(pins)}")
    cuda, cudnn_version = major_minor(pins[runtime[0]][0]), major_minor(pins[cudnn[0]][0])
    build: TestedBuild = plan["build"]
    if plan["and_cuda"] and (cuda, cudnn_version) != (build.cuda, build.cudnn):
        raise GenError(
            f"{where}: its and-cuda wheels are CUDA {cuda} / cuDNN {cudnn_version}, its tested build "
            f"CUDA {build.cuda} / cuDNN {build.cudnn}"
        )
    driver = ctx.drivers.get(cuda)
    if driver is None:
        raise GenError(
            f"{where}: CUDA {cuda} (its wheels) has no row in {CUDA_DRIVERS_FILE.name} "
            f"(add it from the NVIDIA CUDA Toolkit release notes)"
        )
    return {
        "cuda": cuda,
        "cudnn": cudnn_version,
        "min_driver": driver.min_driver,
        "min_driver_compat": driver.min_driver_compat,
        "packages": {name: pins[name][0] for name in sorted(pins)},
        "libraries": sorted(libraries),
        "download_bytes": sum(wheel_size(chosen[(name, version)]) for name, (version, _) in pins.items()),
        "source": plan["source"],
    }


# --------------------------------------------------------------------------- main


def render(
    releases: dict[Version, dict[str, Any]],
    pro_releases: dict[Version, dict[str, Any]],
    cuda_wheels: dict[str, dict[str, Any]],
) -> str:
    newest_36 = max(v for v in releases if v.release[:2] == (3, 6))
    document = {
        "schema": SCHEMA_VERSION,
        "generated_by": GENERATED_BY,
        "default": str(newest_36),
        "releases": {str(v): releases[v] for v in sorted(releases)},
        "cuda_wheels": {tf: cuda_wheels[tf] for tf in sorted(cuda_wheels, key=Version)},
        "pro_default": str(max(pro_releases)),
        "pro_releases": {str(v): pro_releases[v] for v in sorted(pro_releases)},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generate(out: Path, cache_dir: Path, jobs: int) -> int:
    started = time.monotonic()
    tested = load_tested_builds(TESTED_BUILDS_FILE)
    drivers = load_cuda_drivers(CUDA_DRIVERS_FILE)
    missing_tags = load_missing_tags(MISSING_TAGS_FILE)
    components = load_cuda_components(CUDA_COMPONENTS_FILE)
    dso_libraries = load_dso_libraries(DSO_LIBRARIES_FILE)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        rasa_future, tf_future, tft_future, pro_future = (
            pool.submit(fetch_index, p) for p in ("rasa", "tensorflow", "tensorflow-text", "rasa-pro")
        )
        wheels = rasa_wheels(rasa_future.result())
        pro_index = pro_future.result()
        pro_wheels = rasa_wheels(pro_index, "rasa-pro", PRO_MIN, None)
        ctx = Context(
            tf_future.result(),
            tft_future.result(),
            tested,
            drivers,
            missing_tags,
            MetadataReader(cache_dir),
            components,
            dso_libraries,
        )
        log(f"reading METADATA of {len(wheels)} rasa and {len(pro_wheels)} rasa-pro wheels ...")
        metadata = dict(zip(wheels, pool.map(ctx.reader.read, wheels.values())))
        pro_metadata = dict(zip(pro_wheels, pool.map(ctx.reader.read, pro_wheels.values())))

        releases = {version: resolve_release(ctx, version, metadata[version]) for version in sorted(wheels)}
        pro_releases = {v: resolve_pro_release(ctx, v, pro_metadata[v]) for v in sorted(pro_wheels)}
        tf_versions = {Version(row["tensorflow"]) for row in [*releases.values(), *pro_releases.values()]}
        log(f"reading CUDA wheel data for {len(tf_versions)} TensorFlow versions ...")
        cuda_wheels, without_wheels = build_cuda_wheels(ctx, tf_versions, pool)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(releases, pro_releases, cuda_wheels), encoding="utf-8")

    for version, row in releases.items():
        if row["base_tensorflow"] != row["tensorflow"]:
            log(f"note: rasa {version}: pip TensorFlow {row['tensorflow']}, image {row['gpu_base_image']}")
    finals = [v for v in pro_index if not v.is_prerelease and v >= PRO_MIN]
    by_tf: dict[str, int] = {}
    for row in pro_releases.values():
        key = f"TensorFlow {row['tensorflow']} (Python {row['python']})"
        by_tf[key] = by_tf.get(key, 0) + 1
    log(
        f"rasa-pro: {len(pro_releases)} of {len(finals)} final releases >= {PRO_MIN} in the matrix "
        f"({min(pro_releases)} .. {max(pro_releases)}; pro_default {max(pro_releases)}); "
        + ", ".join(f"{n} x {key}" for key, n in sorted(by_tf.items()))
    )
    log(
        f"cuda_wheels: {len(cuda_wheels)} TensorFlow versions served by NVIDIA wheels "
        f"({', '.join(sorted(cuda_wheels, key=Version))}); none for "
        + ("; ".join(without_wheels) if without_wheels else "no version")
    )
    log(
        f"wrote {len(releases)} releases, {len(pro_releases)} rasa-pro releases and "
        f"{len(cuda_wheels)} cuda_wheels entries to {out} in {time.monotonic() - started:.1f}s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--locks"]:  # the locked sets per release: tools/gen_locks.py, which reads compat.json
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import gen_locks

        return gen_locks.main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSON (default: %(default)s)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rasa-gpu-compat-cache",
        help="cache for METADATA, RECORD and TensorFlow build headers read from wheels (default: %(default)s)",
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
