"""Benchmark of `rasa-gpu train` on example_bot, measured side by side in one run (a script, not a test).

    python benchmarks/train_bench.py [--repeat 3] [--skip-cold-build]

Prints:
  P1  rasa-gpu train wall time / bare `docker run ... rasa train` on the same image, both cold   (target <= 1.03)
  P2  no-change retrain / cold train                                                            (target <= 0.02)
  P3  retrain after a one-line NLU edit / cold train                                            (target <= 0.6)
  P5  time to resolve an already-built image (seconds)                                          (target <= 0.5 s)
      rebuild after a bot-requirements change / cold build of the image
Uses RASA_GPU_BASE_IMAGE like the CLI does. Needs a Docker engine; takes about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rasa_gpu.compat import load_matrix  # noqa: E402
from rasa_gpu.engine import Engine  # noqa: E402
from rasa_gpu.images import ImageSpec, ensure_image  # noqa: E402


def timed(command: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-3000:]}")
    return took


def fresh_bot(root: Path, name: str) -> Path:
    bot = root / name
    shutil.copytree(REPO / "example_bot", bot, ignore=shutil.ignore_patterns("models", ".rasa", ".rasa-gpu"))
    return bot


def rasa_gpu(*args: str) -> list[str]:
    return [sys.executable, "-m", "rasa_gpu", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median is reported)")
    parser.add_argument("--skip-cold-build", action="store_true", help="skip the cold image build (~2.5 min)")
    args = parser.parse_args()

    base = os.environ.get("RASA_GPU_BASE_IMAGE", load_matrix().get("3.6.21").gpu_base_image)
    spec = ImageSpec(release=load_matrix().get("3.6.21"), base_image=base)
    engine = Engine.connect()
    image = ensure_image(engine, spec, lambda line: None).tag
    print(f"image {image}; base {base}; {os.cpu_count()} CPUs", flush=True)

    with tempfile.TemporaryDirectory(prefix="rasa-gpu-bench-") as tmp:
        root = Path(tmp)
        uid = f"{os.getuid()}:{os.getgid()}"
        # P1: both cold (no Rasa cache), same image, same bot, alternating which goes first.
        bares, colds = [], []
        for i in range(args.repeat):
            bare_bot, tool_bot = fresh_bot(root, f"bare{i}"), fresh_bot(root, f"tool{i}")
            bare_cmd = [
                "docker",
                "run",
                "--rm",
                "--init",
                "-u",
                uid,
                "-e",
                "HOME=/tmp",
                "-v",
                f"{bare_bot}:/bot",
            ]
            bare_cmd += ["-w", "/bot", "--entrypoint", "rasa", image, "train"]
            tool_cmd = rasa_gpu("train", str(tool_bot), "--gpu", "off")
            if i % 2 == 0:
                bares.append(timed(bare_cmd))
                colds.append(timed(tool_cmd))
            else:
                colds.append(timed(tool_cmd))
                bares.append(timed(bare_cmd))
            print(f"   run {i + 1}: rasa-gpu {colds[-1]:.1f} s, bare {bares[-1]:.1f} s", flush=True)
        bare, cold = statistics.median(bares), statistics.median(colds)
        print(
            f"P1 cold train (median of {args.repeat}): rasa-gpu {cold:.1f} s / bare docker run {bare:.1f} s = "
            f"{cold / bare:.3f}  (target <= 1.03)",
            flush=True,
        )

        nochange = statistics.median(
            timed(rasa_gpu("train", str(tool_bot), "--gpu", "off")) for _ in range(3)
        )
        print(
            f"P2 no-change retrain {nochange:.2f} s / cold {cold:.1f} s = {nochange / cold:.4f}  (target <= 0.02)",
            flush=True,
        )

        nlu = tool_bot / "data" / "nlu.yml"
        edits = []
        for i in range(args.repeat):
            nlu.write_text(
                nlu.read_text().replace("      - hello\n", f"      - hello\n      - hello no{i}\n", 1)
            )
            edits.append(timed(rasa_gpu("train", str(tool_bot), "--gpu", "off")))
        edited = statistics.median(edits)
        print(
            f"P3 retrain after a one-line NLU edit (median of {args.repeat}) {edited:.1f} s / cold {cold:.1f} s = "
            f"{edited / cold:.3f}  (target <= 0.6)",
            flush=True,
        )

    resolve = min(_resolve_time(engine, spec) for _ in range(5))
    cli_resolve = timed(rasa_gpu("build", str(REPO / "example_bot")))
    print(
        f"P5 resolve an already-built image: {resolve * 1000:.1f} ms in-process, {cli_resolve:.2f} s for the "
        "whole `rasa-gpu build` command  (target <= 0.5 s)",
        flush=True,
    )

    token = str(time.time_ns())
    with_reqs = ImageSpec(
        release=spec.release, base_image=base, extra_requirements=(f"six==1.16.0  # {token}",)
    )
    started = time.monotonic()
    bot_image = ensure_image(engine, with_reqs, lambda line: None).tag
    rebuild = time.monotonic() - started
    if args.skip_cold_build:
        print(f"P5 rebuild after a bot-requirements change: {rebuild:.1f} s (cold build skipped)")
    else:
        # A CA file changes the Rasa stage's hash and every layer after it: a cold build of the whole image.
        ca = Path("/etc/ssl/certs/ca-certificates.crt").read_bytes() + f"\n# {token}\n".encode()
        cold_spec = ImageSpec(release=spec.release, base_image=base, ca_certs=(ca,))
        started = time.monotonic()
        cold_image = ensure_image(engine, cold_spec, lambda line: None).tag
        cold_build = time.monotonic() - started
        print(
            f"P5 rebuild after a bot-requirements change {rebuild:.1f} s / cold build {cold_build:.1f} s = "
            f"{rebuild / cold_build:.3f}"
        )
        engine.client.images.remove(cold_image)
    engine.client.images.remove(bot_image)


def _resolve_time(engine: Engine, spec: ImageSpec) -> float:
    started = time.monotonic()
    result = ensure_image(engine, spec, lambda line: None)
    assert not result.built
    return time.monotonic() - started


if __name__ == "__main__":
    main()
