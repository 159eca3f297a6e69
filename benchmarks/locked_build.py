"""The cold build of a training image the old way (pip resolving today's versions) and from its locked set, side
by side in one run, and the cost of the check that trains a tiny bot in each new image before it is tagged (a
script, not a test).

    python benchmarks/locked_build.py [--rasa-version 3.6.21] [--cuda wheels|none]

Both builds start from the same base image with nothing from the layer cache (downloads included), one after the
other; the Rasa stage only. Prints each build's seconds, their ratio (target <= 0.6: a locked set needs no
resolution, and uv downloads and unpacks in parallel) and the seconds of the tiny bot's training check (target <= 15
s per new image). The base image is RASA_GPU_BASE_IMAGE (else rasa-gpu/base:bullseye). Images are removed after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rasa_gpu import locks  # noqa: E402
from rasa_gpu.compat import load_matrix  # noqa: E402
from rasa_gpu.engine import Engine  # noqa: E402
from rasa_gpu.images import ImageSpec, candidate, smoke_check  # noqa: E402

RATIO_TARGET = 0.6
CHECK_TARGET = 15.0


def cold_build(engine: Engine, spec: ImageSpec) -> tuple[float, str]:
    tag = candidate(spec.rasa_tag())
    started = time.monotonic()
    engine.build(
        spec.context_tar(), tag=tag, target="rasa", labels={}, on_line=lambda _line: None, nocache=True
    )
    return time.monotonic() - started, tag


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rasa-version", default="3.6.21")
    parser.add_argument("--cuda", choices=["wheels", "none"], default="wheels")
    args = parser.parse_args()
    matrix = load_matrix()
    release = matrix.get(args.rasa_version)
    base = os.environ.get("RASA_GPU_BASE_IMAGE") or "rasa-gpu/base:bullseye"
    spec = ImageSpec(
        release=release, base_image=base, cuda=args.cuda, cuda_wheels=matrix.wheels_for(release.tensorflow)
    )
    engine = Engine.connect()
    if not locks.pythons(release):
        print(f"{release.name} has no locked set: nothing to compare", file=sys.stderr)
        return 2
    real, real_cuda = locks.release_locks, locks.cuda_lock
    locks.release_locks = lambda r: {}  # type: ignore[assignment]  # the old way: no lock in the Dockerfile
    locks.cuda_lock = lambda tf: None  # type: ignore[assignment]  # and the CUDA wheels pinned for pip
    try:
        old_seconds, old_tag = cold_build(engine, spec)
    finally:
        locks.release_locks, locks.cuda_lock = real, real_cuda  # type: ignore[assignment]
    new_seconds, new_tag = cold_build(engine, spec)
    started = time.monotonic()
    said = smoke_check(engine, spec, new_tag)
    check_seconds = time.monotonic() - started
    for tag in (old_tag, new_tag):
        engine.remove_image(tag)
    ratio = new_seconds / old_seconds
    print(f"{release.name}, --cuda {args.cuda}, on {base}: cold build of the Rasa stage")
    print(f"  old way (pip resolves today's versions): {old_seconds:7.1f} s")
    print(f"  locked set (uv, hashes required):        {new_seconds:7.1f} s")
    print(
        f"  ratio locked / old: {ratio:.2f} (target <= {RATIO_TARGET}) {'ok' if ratio <= RATIO_TARGET else 'MISSED'}"
    )
    print(
        f"  check before the tag (tiny bot trained and loaded): {check_seconds:.1f} s "
        f"(target <= {CHECK_TARGET:.0f} s) {'ok' if check_seconds <= CHECK_TARGET else 'MISSED'}; {said}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
