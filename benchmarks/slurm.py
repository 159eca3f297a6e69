"""A training queued on Slurm against the same training run here, side by side in one run (a script, not a test).

    python benchmarks/slurm.py [BOT] [--rounds 3]

Needs a Slurm cluster whose node is this machine (scripts/slurm.sh starts a one-node one) and the bot's image
already built (`rasa-gpu build BOT`), so that no build is timed. BOT (default example_bot) is copied to a temporary
folder first. Each round, alternating which goes first:

- start latency: from the `rasa-gpu submit` call to the training container's start (the engine's own event), and
  from a bare `docker run` of the same image to its container's start; prints the difference (target <= 2 s);
- total: `rasa-gpu submit --wait --force` against `rasa-gpu train --force`; prints the ratio of the medians (target
  <= 1.10). `--cache cold` (the default) removes Rasa's cache (BOT/.rasa) before each training, as
  benchmarks/remote.py does: a full training, what a changed bot gets. `--cache warm` keeps it, so every component
  is restored from the cache and the training is only Rasa's start and the packing of the model (the fixed costs
  of a queue weigh most there).
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

import docker

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "rasa_gpu"]
START_TARGET = 2.0
TOTAL_TARGET = 1.10


def started_after(client: docker.DockerClient, label: str, action) -> float:
    """Seconds from action() being called to the first container start with this label (the engine's events)."""
    since = time.time()
    seen: dict[str, float] = {}

    def watch() -> None:
        for event in client.events(
            since=since - 1, decode=True, filters={"type": "container", "event": "start", "label": label}
        ):
            seen["at"] = event.get("timeNano", 0) / 1e9 or time.time()
            return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    began = time.time()
    action()
    thread.join(timeout=600)
    if "at" not in seen:
        raise SystemExit(f"no container with {label} started")
    return seen["at"] - began


def submit_start(client: docker.DockerClient, label: str, bot: Path) -> float:
    """submit --wait --force; seconds from the call to its training container's start."""
    procs: list[subprocess.Popen[bytes]] = []

    def submit() -> None:
        procs.append(subprocess.Popen([*CLI, "submit", str(bot), "--force", "--wait"], cwd=REPO))

    latency = started_after(client, label, submit)
    procs[0].wait()
    return latency


def bare_start(client: docker.DockerClient, label: str, image: str) -> float:
    """A bare `docker run` of the image; seconds from the call to its container's start."""

    def run() -> None:
        subprocess.run(["docker", "run", "--rm", "--label", label, "--entrypoint", "true", image], check=True)

    return started_after(client, label, run)


def timed(command: list[str], bot: Path, cold: bool) -> float:
    if cold:
        shutil.rmtree(bot / ".rasa", ignore_errors=True)
    began = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bot", nargs="?", default=str(REPO / "example_bot"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", choices=["cold", "warm"], default="cold")
    args = parser.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        bot = Path(tmp) / "bot"
        shutil.copytree(args.bot, bot, ignore=shutil.ignore_patterns("models", ".rasa-gpu"))
        build = subprocess.run(
            [*CLI, "build", str(bot)], check=True, capture_output=True, text=True, cwd=REPO
        )
        image = build.stdout.split()[0]
        subprocess.run(
            [*CLI, "train", str(bot), "--force"], check=True, capture_output=True, cwd=REPO
        )  # warm
        label = f"io.rasa-gpu.bot={bot.resolve()}"
        starts: dict[str, list[float]] = {"submit": [], "docker run": []}
        totals: dict[str, list[float]] = {"submit --wait": [], "train": []}
        for i in range(args.rounds):
            order = ["submit", "docker run"] if i % 2 == 0 else ["docker run", "submit"]
            for name in order:
                if name == "submit":
                    starts[name].append(submit_start(client, label, bot))
                else:
                    starts[name].append(bare_start(client, f"io.rasa-gpu.benchmark=bare-{i}", image))
            for name in ["submit --wait", "train"] if i % 2 == 0 else ["train", "submit --wait"]:
                command = (
                    [*CLI, "submit", str(bot), "--force", "--wait"]
                    if name != "train"
                    else [*CLI, "train", str(bot), "--force"]
                )
                totals[name].append(timed(command, bot, args.cache == "cold"))
            print(
                f"round {i + 1}: start submit {starts['submit'][-1]:.2f} s, docker run {starts['docker run'][-1]:.2f} s;"
                f" total submit --wait {totals['submit --wait'][-1]:.1f} s, train {totals['train'][-1]:.1f} s",
                flush=True,
            )
    extra = statistics.median(starts["submit"]) - statistics.median(starts["docker run"])
    ratio = statistics.median(totals["submit --wait"]) / statistics.median(totals["train"])
    print(f"start latency over a bare docker run: {extra:+.2f} s (target <= {START_TARGET:.1f} s)")
    print(f"submit --wait / train, {args.cache} Rasa cache: {ratio:.3f} (target <= {TOTAL_TARGET:.2f})")


if __name__ == "__main__":
    main()
