#!/usr/bin/env python3
"""Every Rasa minor of the matrix, tried as a user would: a script, not a test (about 3 to 5 minutes a row).

    python tools/matrix_check.py [--only 3.1,3.4,pro-3.21] [--keep] [--no-cuda-lines] [--no-pro]

Rasa Open Source (the newest patch of 3.1 to 3.6, on the registry-less bullseye base, CPU-only images): build the
image from its locked set (the build trains a tiny bot before it tags it), train example_bot (2 epochs), fine-tune
it after one more example (`train --finetune`), and retrain it warm once as `watch` does. Each step must work: the
image's entry script adjusts Rasa's internals (eager DIET, kept policies, packing) and each adjustment must hold on
every release or be switched off for it, never crash.

Rasa Pro (the newest patch of 3.8 to 3.21, on the registry-less base of the Python it needs: bullseye 3.9, else
bookworm 3.11, else Ubuntu noble 3.12, the only Python of 3.14 to 3.19): build the image, then train with a dummy
license: the row passes when Rasa's own license check refuses it (everything up to it works).

CUDA lines (--no-cuda-lines skips): the GPU image of the newest release of each CUDA line the matrix uses (11.8:
Rasa 3.6.21, TensorFlow 2.12; 12.5: the newest Rasa Pro, TensorFlow 2.21) is built from its lock with NVIDIA's wheels
and must pass the CUDA check (every library but the driver's libcuda loads).

Prints one table row per release (release, TensorFlow, image size, build, training, result) and a summary; exits 1
if a row failed. Each image is removed after its row unless --keep; an image that was there before the row is
found, not built (its build shows "cached"), and left in place. Needs a Docker engine and, for the bases,
root (`rasa-gpu base-image` runs debootstrap). The bookworm and noble bases are made when a row needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from packaging.version import Version  # noqa: E402

from rasa_gpu.base_image import SUITE_PYTHON, default_name  # noqa: E402
from rasa_gpu.compat import OPEN_SOURCE, PRO, RasaRelease, accepts_python, load_matrix  # noqa: E402

#: Python -> (suite, image) of the registry-less bases, oldest Python first (base-image's own table).
BASES = {python: (suite, default_name(suite)) for suite, python in SUITE_PYTHON.items()}
EPOCHS = ["--set", "DIETClassifier.epochs=2", "--set", "TEDPolicy.epochs=2"]
ONE_MORE = "      - hello there, matrix\n"


@dataclass
class Row:
    release: str
    tensorflow: str
    size: str = "-"
    build: str = "-"
    training: str = "-"
    result: str = ""
    ok: bool = False
    build_output: str = ""  # the build's stderr (the CUDA check's line)

    def cells(self) -> list[str]:
        return [self.release, self.tensorflow, self.size, self.build, self.training, self.result]


def rasa_gpu(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "rasa_gpu", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    return lines[-1] if lines else (stderr.strip().splitlines() or ["(no output)"])[-1]


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True).stdout.strip()


def size_of(tag: str) -> str:
    raw = docker("image", "inspect", "-f", "{{.Size}}", tag)
    return f"{int(raw) / 1e9:.2f} GB" if raw.isdigit() else "-"


def newest_patches(package: str, first: Version) -> list[RasaRelease]:
    matrix = load_matrix()
    newest: dict[tuple[int, int], Version] = {}
    for v in matrix.versions(package):
        if v >= first and not v.is_prerelease:
            newest[(v.major, v.minor)] = v
    return [matrix.get(str(v)) for _, v in sorted(newest.items())]


def base_for(release: RasaRelease) -> tuple[str, str] | None:
    for python, (suite, image) in BASES.items():
        if accepts_python(release.python, python):
            return suite, image
    return None


def ensure_base(suite: str, image: str) -> str | None:
    if docker("image", "ls", "-q", image):
        return None
    code, _, err, _ = rasa_gpu("base-image", "--suite", suite)
    return None if code == 0 else f"the {suite} base could not be made: {error_line(err)}"


def built_tag(stdout: str) -> str:
    first = stdout.strip().split()
    return first[0] if first else ""


def image_args(release: RasaRelease, base: str, cuda: str) -> list[str]:
    return ["--rasa-version", release.version, "--base-image", base, "--cuda", cuda]


def warm_retraining(bot: Path, args: list[str], timeout: float = 900) -> str | None:
    """One retraining in watch's warm container after a change to the NLU data: None, or what went wrong."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa_gpu", "watch", str(bot), *args, "--gpu", "off", *EPOCHS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + timeout
        changed = False
        for line in proc.stderr:
            seen.append(line.rstrip())
            if "watching for changes" in line and not changed:
                nlu = bot / "data" / "nlu.yml"
                nlu.write_text(
                    nlu.read_text().replace(ONE_MORE, ONE_MORE + ONE_MORE.replace("matrix", "warm"))
                )
                changed = True
            elif changed and "model ready" in line:
                return None
            elif line.startswith("error:") or "training failed" in line or time.monotonic() > deadline:
                return line.strip()
        return f"watch ended: {seen[-1] if seen else '(no output)'}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def built(
    release: RasaRelease, row: Row, work: Path, keep: bool, cuda: str
) -> Iterator[tuple[Path, list[str], str] | None]:
    """The base made if needed, example_bot copied and its image built (row.build, row.size set): (bot, args, tag),
    or None with row.result saying what failed. The image is removed afterwards unless keep."""
    found = base_for(release)
    if found is None:
        bases = ", ".join(f"{suite} {python}" for python, (suite, _) in BASES.items())
        row.result = f"no registry-less base has a Python in {release.python} ({bases})"
        yield None
        return
    suite, base = found
    if (problem := ensure_base(suite, base)) is not None:
        row.result = problem
        yield None
        return
    bot = Path(shutil.copytree(REPO / "example_bot", work / f"{cuda}-{release.version}", ignore=_no_outputs))
    args = image_args(release, base, cuda)
    there_before = set(docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split())
    code, out, err, seconds = rasa_gpu("build", str(bot), *args)
    row.build, row.build_output = f"{seconds:.0f} s", err
    if code != 0:
        row.result = f"build: {error_line(err)}"
        yield None
        return
    tag = built_tag(out)
    row.size = size_of(tag)
    cached = tag in there_before  # someone's image (a CI run's, say): found, not built, and left in place
    if cached:
        row.build = "cached"
    try:
        yield bot, args, tag
    finally:
        if not keep and not cached:
            docker("image", "rm", "-f", tag)


def open_source_row(release: RasaRelease, work: Path, keep: bool) -> Row:
    row = Row(release.name, release.tensorflow)
    with built(release, row, work, keep, "none") as ready:
        if ready is None:
            return row
        bot, args, _ = ready
        code, out, err, seconds = rasa_gpu("train", str(bot), *args, "--gpu", "off", *EPOCHS)
        row.training = f"{seconds:.0f} s"
        if code != 0:
            row.result = f"train: {error_line(err)}"
            return row
        nlu = bot / "data" / "nlu.yml"
        text = nlu.read_text()
        nlu.write_text(re.sub(r"(- intent: greet\n\s+examples: \|\n)", r"\1" + ONE_MORE, text, count=1))
        code, out, err, _ = rasa_gpu("train", str(bot), *args, "--gpu", "off", "--finetune", *EPOCHS)
        if code != 0 or "fine-tun" not in out + err:
            row.result = f"finetune: {error_line(err) if code else 'it trained from scratch'}"
            return row
        problem = warm_retraining(bot, args)
        if problem is not None:
            row.result = f"warm retraining: {problem}"
            return row
        row.ok, row.result = True, "trains, fine-tunes, retrains warm"
    return row


def pro_row(release: RasaRelease, work: Path, keep: bool) -> Row:
    row = Row(release.name, release.tensorflow)
    with built(release, row, work, keep, "none") as ready:
        if ready is None:
            return row
        bot, args, _ = ready
        dummy = {"RASA_PRO_LICENSE": "matrix-check-dummy-license"}
        code, out, err, seconds = rasa_gpu("train", str(bot), *args, "--gpu", "off", *EPOCHS, env=dummy)
        row.training = f"{seconds:.0f} s"
        line = error_line(err)
        if code != 0 and re.search(r"validate Rasa (Pro )?license", line):  # Rasa's own refusal sentence
            row.ok, row.result = True, f"builds; Rasa refuses the dummy license: {line[:110]}"
        else:
            row.result = f"train with a dummy license: {line if code else 'it trained (no license check?)'}"
    return row


def cuda_row(release: RasaRelease, work: Path, keep: bool) -> Row:
    row = Row(f"{release.name} GPU (CUDA {release.cuda})", release.tensorflow)
    with built(release, row, work, keep, "wheels") as ready:
        if ready is None:
            return row
        _, _, tag = ready
        said = [line for line in row.build_output.splitlines() if "CUDA check of" in line]
        if said:
            note = said[-1].split(": ", 1)[-1]
        elif row.build == "cached":
            note = "passed when it was built (only a passed check leaves the gpu name on it)"
        else:
            note = "(no CUDA check line)"
        row.ok = "-gpu-" in tag  # only a passed check leaves the gpu name on it
        row.result = f"CUDA check: {note}"
    return row


def _no_outputs(folder: str, names: list[str]) -> list[str]:
    return (
        [n for n in names if n in {"models", ".rasa-gpu", ".rasa"}] if folder.endswith("example_bot") else []
    )


def wanted(release: RasaRelease, only: set[str]) -> bool:
    v = Version(release.version)
    key = f"{'pro-' if release.package == PRO else ''}{v.major}.{v.minor}"
    return not only or key in only


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated minors, e.g. 3.1,3.4,pro-3.21")
    parser.add_argument("--keep", action="store_true", help="keep each image after its row")
    parser.add_argument("--no-pro", action="store_true", help="skip the Rasa Pro rows")
    parser.add_argument("--no-cuda-lines", action="store_true", help="skip the GPU images of the CUDA lines")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    rows: list[Row] = []
    header = ["release", "TensorFlow", "image size", "build", "training", "result"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)

    def report(row: Row) -> None:
        rows.append(row)
        print("| " + " | ".join(row.cells()) + " |", flush=True)

    with tempfile.TemporaryDirectory(prefix="rasa-gpu-matrix-") as tmp:
        work = Path(tmp)
        for release in newest_patches(OPEN_SOURCE, Version("3.1")):
            if wanted(release, only):
                report(open_source_row(release, work, args.keep))
        pro = [] if args.no_pro else newest_patches(PRO, Version("3.8"))
        for release in pro:
            if wanted(release, only):
                report(pro_row(release, work, args.keep))
        if not args.no_cuda_lines:
            matrix = load_matrix()
            newest_pro = newest_patches(PRO, Version("3.8"))[-1:]
            for release in [matrix.get("3.6.21"), *newest_pro]:
                if not only or wanted(release, only):
                    report(cuda_row(release, work, args.keep))
    failed = [row for row in rows if not row.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} rows work", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
