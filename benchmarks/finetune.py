"""A fine-tuned retrain against a cold training and against today's full retrain with Rasa's cache, and the intent F1
of the fine-tuned model against the full retrain, side by side in one run (a script, not a test).

    python benchmarks/finetune.py [BOT] [--rounds 2] [--epoch-fraction 0.2]

BOT (default example_bot) is copied to a temporary folder. Each round, on a fresh copy:
1. a cold training (no Rasa cache, no model): the reference time;
2. a one-line NLU edit (one more example for the first intent), then `train --finetune` (the newest model continued
   for --epoch-fraction of the epochs): the figure the issue asks for;
3. a second one-line edit and a second fine-tune, as `watch` does next, and `rasa-gpu test nlu`;
4. on the same data, `train --no-finetune` (a full retrain that uses Rasa's cache where it can: what `train` did
   before fine-tuning existed), and `rasa-gpu test nlu` of that model;
5. `rasa-gpu watch` on that bot and two more one-line edits: the seconds from watch's `change in` line to its
   `model ready` line for each; the first starts watch's warm trainer, the second runs in it (TensorFlow and Rasa
   already imported).
Prints the medians of fine-tune ÷ cold (target <= 0.25), second fine-tune ÷ cold, cached full retrain ÷ cold,
watch's first and warm fine-tune ÷ cold, and
the intent F1 of the twice fine-tuned model minus the full retrain's (target: within 0.02). `rasa-gpu test nlu` tests on the bot's own NLU data, as Rasa
does without a test split. The image must exist (`rasa-gpu build BOT`), so that no build is timed.
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "rasa_gpu"]
RATIO_TARGET = 0.25
F1_TARGET = 0.02


def rasa_gpu(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"rasa-gpu {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done


def timed_train(bot: Path, *extra: str) -> float:
    began = time.monotonic()
    rasa_gpu("train", str(bot), "--force", *extra)
    return time.monotonic() - began


def intent_f1(bot: Path) -> float:
    rasa_gpu("test", str(bot), "nlu")
    runs = json.loads(rasa_gpu("runs", str(bot), "--kind", "test", "--json").stdout)
    return float(runs[0]["metrics"]["intent_f1"])


def add_example(bot: Path, text: str = "well hello to you too") -> None:
    """One more example for the first intent of data/nlu.yml (a new line after its `examples: |`)."""
    nlu = bot / "data" / "nlu.yml"
    lines = nlu.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("examples:"))
    indent = " " * (len(lines[at + 1]) - len(lines[at + 1].lstrip()))
    lines.insert(at + 1, f"{indent}- {text}\n")
    nlu.write_text("".join(lines), encoding="utf-8")


def watch_fine_tunes(bot: Path, texts: list[str]) -> list[float]:
    """One `rasa-gpu watch` of `bot`; for each text in turn, add it as an example and time the retraining (from
    watch's `change in` line to its `model ready` line, as they reach this process). Each must be a fine-tune."""
    proc = subprocess.Popen(
        [*CLI, "watch", str(bot)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put((time.monotonic(), line.rstrip("\n")))

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []

    def until(needle: str, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, line = lines.get(timeout=1)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if needle in line:
                return at
        raise SystemExit(f"rasa-gpu watch never said {needle!r}:\n" + "\n".join(seen[-40:]))

    try:
        until("watching for changes")
        times = []
        for text in texts:
            add_example(bot, text)
            began = until("rasa-gpu watch: change in")
            start = len(seen)
            ended = until("rasa-gpu watch: model ready")
            if not any("fine-tuning" in line for line in seen[start:]):
                raise SystemExit("watch trained from scratch:\n" + "\n".join(seen[start:]))
            until("watching for changes")
            times.append(ended - began)
        return times
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bot", nargs="?", default=str(REPO / "example_bot"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epoch-fraction", default="0.2")
    args = parser.parse_args()
    ratios, second_ratios, cached_ratios, f1_gaps = [], [], [], []
    watch_ratios: list[float] = []
    warm_ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            bot = Path(tmp) / f"bot-{i}"
            shutil.copytree(
                args.bot, bot, ignore=shutil.ignore_patterns("models", ".rasa", ".rasa-gpu", "results")
            )
            cold = timed_train(bot)
            add_example(bot)
            finetune = timed_train(bot, "--finetune", "--epoch-fraction", args.epoch_fraction)
            add_example(bot, "good day to you shop")
            second = timed_train(bot, "--finetune", "--epoch-fraction", args.epoch_fraction)
            f1_tuned = intent_f1(bot)
            cached = timed_train(bot, "--no-finetune")
            f1_full = intent_f1(bot)
            ratios.append(finetune / cold)
            second_ratios.append(second / cold)
            cached_ratios.append(cached / cold)
            f1_gaps.append(f1_tuned - f1_full)
            watched, warm = watch_fine_tunes(bot, ["hello from the watcher", "hello again from the watcher"])
            watch_ratios.append(watched / cold)
            warm_ratios.append(warm / cold)
            print(
                f"round {i + 1}: cold {cold:.1f} s, fine-tune {finetune:.1f} s, second fine-tune {second:.1f} s,"
                f" cached full retrain {cached:.1f} s; watch's fine-tunes {watched:.1f} s, warm {warm:.1f} s;"
                f" intent F1 fine-tuned {f1_tuned:.3f}, full retrain {f1_full:.3f}",
                flush=True,
            )
    print(f"fine-tune / cold training: {statistics.median(ratios):.3f} (target <= {RATIO_TARGET})")
    print(f"second fine-tune in a row / cold training: {statistics.median(second_ratios):.3f}")
    print(f"cached full retrain / cold training: {statistics.median(cached_ratios):.3f}")
    print(f"watch's first fine-tune / cold training: {statistics.median(watch_ratios):.3f}")
    print(
        f"watch's warm fine-tune / cold training: {statistics.median(warm_ratios):.3f} (target <= {RATIO_TARGET})"
    )
    print(
        f"intent F1, fine-tuned - full retrain: {statistics.median(f1_gaps):+.3f} (target: within {F1_TARGET})"
    )


if __name__ == "__main__":
    main()
