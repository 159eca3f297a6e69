"""Benchmark of `rasa-gpu watch` on example_bot (a script, not a test).

    python benchmarks/watch_bench.py [--repeat 3] [--burst 100]

Prints P4:
  save -> training start latency: from the write of data/nlu.yml to the moment watch reports that the training
  container runs ("training in ..."), median of --repeat saves                                  (target <= 1.0 s)
  of which the quiet period (debounce) is                                                       (0.5 s by default)
  trainings per burst: --burst saves about 2 ms apart, counted from watch's output              (target 1)
The bot is trained once first so that every measured training starts from a warm cache, as in daily use.
Uses RASA_GPU_BASE_IMAGE like the CLI does. Needs a Docker engine; about 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GREET = "      - hello\n"


class Watch:
    def __init__(self, bot: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rasa_gpu", "watch", str(bot)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first_after(self, needle: str, since: float, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= since and needle in line:
                    return at
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        raise SystemExit(f"never saw {needle!r}:\n" + "\n".join(line for _, line in self.lines[-30:]))

    def count(self, needle: str, since: float) -> int:
        return sum(needle in line for at, line in list(self.lines) if at >= since)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="saves whose latency is measured")
    parser.add_argument("--burst", type=int, default=100, help="saves in the burst")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rasa-gpu-watch-bench-") as tmp:
        bot = Path(shutil.copytree(REPO / "example_bot", Path(tmp) / "bot"))
        print("training example_bot once (warm cache for the measured trainings) ...", flush=True)
        subprocess.run([sys.executable, "-m", "rasa_gpu", "train", str(bot)], check=True, capture_output=True)
        nlu = bot / "data" / "nlu.yml"
        original = nlu.read_text()
        watch = Watch(bot)
        try:
            watch.first_after("watching for changes", 0)
            latencies = []
            for i in range(args.repeat):
                idle = watch.count("watching for changes", 0)
                saved = time.monotonic()
                nlu.write_text(original.replace(GREET, GREET + f"      - hello latency {i}\n"))
                started = watch.first_after("training in ", saved)
                latencies.append(started - saved)
                print(f"  save {i + 1}: training started after {started - saved:.3f} s", flush=True)
                while watch.count("watching for changes", 0) <= idle:  # let the training finish
                    time.sleep(0.2)
            burst_start = time.monotonic()
            for i in range(args.burst):
                nlu.write_text(original.replace(GREET, GREET + f"      - hello burst {i}\n"))
                time.sleep(0.002)
            burst_took = time.monotonic() - burst_start
            watch.first_after("model ready", burst_start)
            watch.first_after("watching for changes", burst_start + 0.001)
            time.sleep(3)  # a second training would start within the quiet period
            trainings = watch.count("training in ", burst_start)
        finally:
            watch.stop()

    median = statistics.median(latencies)
    print()
    print(
        f"P4 save -> training start: median {median:.3f} s (min {min(latencies):.3f}, max {max(latencies):.3f}, "
        f"n={len(latencies)}); target <= 1.0 s; ratio to target {median / 1.0:.2f}"
    )
    print("   of which the quiet period (debounce): 0.500 s")
    print(f"P4 trainings per burst of {args.burst} saves in {burst_took:.2f} s: {trainings}; target 1")


if __name__ == "__main__":
    main()
