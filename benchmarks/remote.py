"""Training on an engine elsewhere (over SSH) against this machine's engine, side by side in one run (a script, not a
test).

    python benchmarks/remote.py --host ssh://user@gpu-box[:port] [BOT] [--rounds 2]

Each round trains BOT once on each engine, alternating which goes first, each time from a cold Rasa cache (the
local .rasa/ is moved away, the far cache volume is removed) and with --force, through the same code path as
`rasa-gpu train`. Prints each wall time, the ratio far ÷ here (median of the rounds; target <= 1.10 when both
engines are on one machine, so that the ratio is the cost of the transfer and SSH), and the bytes sent per training
(target: the bot's training inputs, not its models/ or cache) and received (the model archive).

BOT (default example_bot) is copied to a temporary folder first. Uses RASA_GPU_BASE_IMAGE like the CLI does. The
image must already exist on both engines (run `rasa-gpu build BOT` and `rasa-gpu build BOT --host …` first), so that
no build is timed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rasa_gpu.gpu import GpuRequest  # noqa: E402
from rasa_gpu.resolve import resolve  # noqa: E402
from rasa_gpu.runners import Where, connect  # noqa: E402
from rasa_gpu.runners.remote import cache_volume  # noqa: E402
from rasa_gpu.settings import Settings  # noqa: E402
from rasa_gpu.training import TrainOptions, TrainResult, train  # noqa: E402

TARGET = 1.10


def one(bot: Path, where: Where) -> TrainResult:
    resolved = resolve(
        str(bot), Settings(host=where.host, base_image=os.environ.get("RASA_GPU_BASE_IMAGE")), "gpu"
    )
    with connect(where, lambda event: None) as runner:
        if runner.capabilities.mounts_bot_folder:  # Rasa's cache is the bot's .rasa/cache
            shutil.rmtree(bot / ".rasa", ignore_errors=True)
        else:
            runner.engine.remove_volume(cache_volume(resolved.project))
        options = TrainOptions(gpu=GpuRequest("off"), force=True)
        return train(resolved.project, resolved.spec, options, lambda event: None, runner=runner)


def inputs_size(bot: Path) -> int:
    resolved = resolve(str(bot), Settings(), "gpu")
    return sum(path.stat().st_size for path in resolved.project.training_inputs())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bot", nargs="?", default=str(REPO / "example_bot"))
    parser.add_argument("--host", required=True, help="the far engine, e.g. ssh://root@127.0.0.1:2222")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-remote-bench-") as tmp:
        bot = Path(tmp) / "bot"
        shutil.copytree(
            args.bot, bot, ignore=shutil.ignore_patterns("models", ".rasa", ".rasa-gpu", "results", ".git")
        )
        places = {"here": Where(), "far": Where(host=args.host)}
        times: dict[str, list[float]] = {"here": [], "far": []}
        outside: dict[str, list[float]] = {"here": [], "far": []}
        sent: list[int] = []
        received: list[int] = []
        for round_ in range(args.rounds):
            order = ("here", "far") if round_ % 2 == 0 else ("far", "here")
            for name in order:
                result = one(bot, places[name])
                times[name].append(result.wall_seconds)
                if name == "far":
                    sent.append(result.sent_bytes)
                    received.append(result.received_bytes)
                inside = sum(result.components.values())
                outside[name].append(result.wall_seconds - inside)
                print(
                    f"round {round_ + 1} {name:<4} {result.wall_seconds:7.1f} s  (components {inside:.1f} s, "
                    f"everything else {result.wall_seconds - inside:.1f} s)  {result.device}",
                    flush=True,
                )
        here, far = statistics.median(times["here"]), statistics.median(times["far"])
        ratio = far / here
        inputs = inputs_size(bot)
        models = sum(p.stat().st_size for p in (bot / "models").glob("*.tar.gz"))
        print()
        print(
            f"this machine's engine   median {here:7.1f} s  ({', '.join(f'{t:.1f}' for t in times['here'])})"
        )
        print(f"{args.host:<23} median {far:7.1f} s  ({', '.join(f'{t:.1f}' for t in times['far'])})")
        print(
            f"far / here              {ratio:.3f}   target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}"
        )
        print(
            f"bytes sent per training {statistics.median(sent):,.0f} (training inputs: {inputs:,} bytes of files, "
            f"sent as a tar archive; models/ now holds {models:,} bytes and was not sent)"
        )
        print(f"bytes received          {statistics.median(received):,.0f} (the model archive)")


if __name__ == "__main__":
    main()
