"""Ways of getting CUDA into the training image, side by side in one run (a script, not a test).

    python benchmarks/cuda_images.py [BOT] [--rounds 2] [--skip-cold]

Prints, for each way this machine can build (NVIDIA's wheels from PyPI; no CUDA at all; TensorFlow's GPU base image
only where a registry answers, else it says so):
  - the image's size and its cold build time (every step again, nothing from the layer cache, downloads included),
    and whether the CUDA check after the build found it GPU-ready;
  - the rebuild after a change of the bot's requirements.txt: its time and whether the CUDA layer was rebuilt
    (target: no);
  - CPU training time of BOT with the wheel image ÷ with the CPU-only image, interleaved rounds, fresh Rasa cache and
    --gpu off each time (target <= 1.05: the wheels must not slow the CPU down).

BOT (default example_bot) is copied to a temporary folder. The base image is RASA_GPU_BASE_IMAGE (the registry-less
rasa-gpu/base:bullseye here). Cold builds take minutes each; --skip-cold builds from the cache instead (sizes and the
check are still reported, build times are then not cold).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rasa_gpu.engine import Engine  # noqa: E402
from rasa_gpu.gpu import GpuRequest  # noqa: E402
from rasa_gpu.images import ImageSpec, candidate, checked_build, cpu_twin, ensure_image  # noqa: E402
from rasa_gpu.resolve import resolve  # noqa: E402
from rasa_gpu.runners import LocalRunner  # noqa: E402
from rasa_gpu.settings import Settings  # noqa: E402
from rasa_gpu.training import TrainOptions, train  # noqa: E402

TRAIN_TARGET = 1.05
GB = 1e9


def quiet(_line: str) -> None:
    pass


def cold_build(engine: Engine, spec: ImageSpec, cold: bool) -> tuple[float, str, bool, str]:
    """(seconds, tag, GPU-ready, the check's note) of building the Rasa stage without the layer cache, checked and
    named as ensure_image does."""
    labels = {"io.rasa-gpu.rasa": spec.release.version, "io.rasa-gpu.tensorflow": spec.release.tensorflow}
    tag = spec.rasa_tag()
    if cpu_twin(tag) != tag:  # an older failed check's name would be found first
        engine.remove_image(cpu_twin(tag))
    started = time.monotonic()
    built = candidate(tag, "bench")
    image_id = engine.build(
        spec.context_tar(), tag=built, target="rasa", labels=labels, on_line=quiet, nocache=cold
    )
    seconds = time.monotonic() - started
    result = checked_build(engine, spec, tag, image_id, quiet, built)
    return seconds, result.tag, result.gpu_ready, result.cuda_note


def cuda_layer(engine: Engine, image: str) -> str | None:
    """The id of the layer that installed NVIDIA's wheels, or None."""
    for layer in engine.api.history(image):
        if "nvidia-" in layer.get("CreatedBy", "") and "pip install" in layer["CreatedBy"]:
            return str(layer["Id"])
    return None


def requirements_rebuild(engine: Engine, bot: Path, spec_of) -> tuple[float, bool]:
    """Seconds of the rebuild after a requirements.txt change, and whether the CUDA layer stayed the same."""
    (bot / "requirements.txt").write_text("six==1.16.0\n")
    first = ensure_image(engine, spec_of(bot), quiet)
    before = cuda_layer(engine, first.tag)
    (bot / "requirements.txt").write_text("six==1.15.0\n")
    started = time.monotonic()
    second = ensure_image(engine, spec_of(bot), quiet)
    seconds = time.monotonic() - started
    (bot / "requirements.txt").unlink()
    return seconds, before is not None and cuda_layer(engine, second.tag) == before


def timed_train(bot: Path, cuda: str) -> float:
    resolved = resolve(str(bot), Settings(base_image=os.environ.get("RASA_GPU_BASE_IMAGE"), cuda=cuda), "gpu")
    shutil.rmtree(bot / ".rasa", ignore_errors=True)
    options = TrainOptions(gpu=GpuRequest("off"), force=True)
    result = train(resolved.project, resolved.spec, options, lambda event: None, runner=LocalRunner())
    return result.wall_seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bot", nargs="?", default=str(REPO / "example_bot"))
    parser.add_argument("--rounds", type=int, default=2, help="training rounds (one of each image per round)")
    parser.add_argument("--skip-cold", action="store_true", help="build from the layer cache (not cold)")
    args = parser.parse_args()
    engine = Engine.connect()
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-cuda-bench-") as tmp:
        bot = Path(tmp) / "bot"
        shutil.copytree(args.bot, bot, ignore=shutil.ignore_patterns("models", ".rasa", ".rasa-gpu"))
        base = os.environ.get("RASA_GPU_BASE_IMAGE")

        def spec_of(folder: Path, cuda: str = "auto") -> ImageSpec:
            return resolve(str(folder), Settings(base_image=base, cuda=cuda), "gpu").spec

        wheels_spec = spec_of(bot)
        ways = {"wheels": wheels_spec, "none": replace(wheels_spec, cuda="none")}
        print(f"Rasa {wheels_spec.release.version}, TensorFlow {wheels_spec.release.tensorflow}, base {base}")
        gpu_base = wheels_spec.release.gpu_base_image
        if engine.image_id(gpu_base) is None and not engine.can_pull(gpu_base):
            print(f"  TensorFlow's GPU base image ({gpu_base}): not measured, no registry answers here")
        else:
            ways["TF GPU base"] = replace(wheels_spec, base_image=gpu_base, cuda="base")
        kind = "cold" if not args.skip_cold else "cached"
        print(f"  {'way':<12} {'size':>8} {kind + ' build':>12}   check")
        tags = {}
        for name, spec in ways.items():
            seconds, tag, ready, note = cold_build(engine, spec, not args.skip_cold)
            tags[name] = tag
            size = engine.image_size(tag) / GB
            print(f"  {name:<12} {size:>6.2f} GB {seconds:>10.0f} s   {note}")

        seconds, same = requirements_rebuild(engine, bot, spec_of)
        verdict = "met" if same else "NOT met"
        print(
            f"rebuild after a requirements.txt change (wheel image): {seconds:.0f} s; CUDA layer reused: "
            f"{'yes' if same else 'no'} (target: no CUDA layer rebuilt) {verdict}"
        )

        times: dict[str, list[float]] = {"wheels": [], "none": []}
        timed_train(bot, "none")  # a warm-up of the machine, not counted
        for i in range(args.rounds):
            for cuda in ("wheels", "none") if i % 2 == 0 else ("none", "wheels"):
                took = timed_train(bot, cuda)
                times[cuda].append(took)
                print(f"  round {i + 1} {cuda:<7} {took:6.1f} s (CPU, cold Rasa cache)")
        ratio = statistics.median(times["wheels"]) / statistics.median(times["none"])
        verdict = "met" if ratio <= TRAIN_TARGET else "NOT met"
        print(f"CPU training, wheel image / CPU-only image: {ratio:.3f} (target <= {TRAIN_TARGET}) {verdict}")


if __name__ == "__main__":
    main()
