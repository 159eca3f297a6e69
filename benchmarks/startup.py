"""Start-up of `rasa-gpu`, measured side by side in one run as whole processes (a script, not a test).

    python benchmarks/startup.py [BOT] [--repeat 9] [--no-size]

Times, interleaved (one of each per round, median of the rounds), each as a whole process, after writing rasa_gpu's
byte-code as `pip install` does:
  `python -c pass` (the same interpreter), `rasa-gpu --help`, `rasa-gpu train --help`,
  `rasa-gpu build BOT` with the image already built (a cache hit), and `rasa-gpu train BOT` with nothing changed
  since the newest model (a no-change skip).
Prints each median, its ratio to `python -c pass`, and the targets: --help <= 10x; cache-hit build and no-change
skip <= 0.25 s. Then the installed size of rasa-gpu and its dependencies with byte-code, from a fresh venv and a
`pip install` of this checkout (target <= 30 MB; --no-size skips it, it takes a minute).

BOT (default example_bot) is copied to a temporary folder and trained there once first if it needs it (that copy's
first run is not counted). Uses RASA_GPU_BASE_IMAGE and the other RASA_GPU_* variables like the CLI does, e.g.
RASA_GPU_BASE_IMAGE=rasa-gpu/base:bullseye on a host without a registry. Build and train need a Docker engine.
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
HELP_TARGET = 10.0  # x `python -c pass`
COMMAND_TARGET = 0.25  # seconds
SIZE_TARGET = 30e6  # bytes
#: What a fresh venv has before rasa-gpu is installed; not counted.
NOT_COUNTED = ("pip", "setuptools", "pkg_resources", "wheel", "_distutils_hack", "distutils-precedence.pth")
SKIP_LINE = "Nothing changed since the newest model; not training"
CACHE_HIT = "found (cached, nothing built)"


def rasa_gpu() -> list[str]:
    """The console script of this interpreter's install (what a user runs), else `python -m rasa_gpu`."""
    script = Path(sys.executable).parent / "rasa-gpu"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rasa_gpu"]


def run(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, proc


def checked(command: list[str], expect: str | None = None) -> str:
    """Run once; stop with the output when it fails or does not say `expect`."""
    _, proc = run(command)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or (expect is not None and expect not in output):
        raise SystemExit(
            f"not measurable ({proc.returncode}): {' '.join(command)}\n"
            + (f"expected {expect!r} in its output\n" if expect else "")
            + output[-3000:]
        )
    return output


def prepare_bot(source: Path, folder: Path) -> Path:
    """A copy of the bot with a model that is up to date: trained now unless its copied state says so already."""
    bot = folder / source.name
    shutil.copytree(source, bot, symlinks=True)
    _, proc = run([*rasa_gpu(), "train", str(bot)])
    if proc.returncode != 0:
        raise SystemExit(f"the first training of {bot} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return bot


def compile_package() -> None:
    """Write the byte-code of the rasa_gpu that is measured, as `pip install` does: without it (an editable install
    under PYTHONDONTWRITEBYTECODE=1, as on these machines) every run compiles each module from source again, which
    is not what a user's install does."""
    import importlib.util

    found = importlib.util.find_spec("rasa_gpu")
    if found is None or not found.submodule_search_locations:
        raise SystemExit("rasa_gpu is not importable by this interpreter; `pip install -e .` first")
    for folder in found.submodule_search_locations:
        subprocess.run([sys.executable, "-m", "compileall", "-q", folder], check=True)


def measure(cases: dict[str, list[str]], repeat: int) -> dict[str, float]:
    """Median wall seconds of each command, run in turn round by round after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(repeat + 1):
        for name, command in cases.items():
            took, proc = run(command)
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
            if round_:
                times[name].append(took)
    return {name: statistics.median(values) for name, values in times.items()}


def installed_size() -> tuple[int, dict[str, int]]:
    """Bytes of site-packages of a fresh venv after `pip install <this checkout>` and compileall, without what
    the venv brings itself; and the largest distributions."""
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-size-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        checked([str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", str(REPO)])
        site = next((venv / "lib").glob("python3*/site-packages"))
        subprocess.run([str(python), "-m", "compileall", "-q", str(site)], check=True)
        sizes: dict[str, int] = {}
        for entry in site.iterdir():
            if entry.name.startswith(NOT_COUNTED) or entry.name == "__pycache__":
                continue
            files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
            sizes[entry.name] = sum(p.lstat().st_size for p in files)
        return sum(sizes.values()), dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:8])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "bot", nargs="?", default=str(REPO / "example_bot"), help="bot folder (default example_bot)"
    )
    parser.add_argument("--repeat", type=int, default=9, help="rounds (the median is reported)")
    parser.add_argument("--no-size", action="store_true", help="skip the installed-size measurement")
    args = parser.parse_args()

    compile_package()
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-startup-") as tmp:
        bot = prepare_bot(Path(args.bot).resolve(), Path(tmp))
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "rasa-gpu --help": [*rasa_gpu(), "--help"],
            "rasa-gpu train --help": [*rasa_gpu(), "train", "--help"],
            "rasa-gpu build BOT (cache hit)": [*rasa_gpu(), "build", str(bot)],
            "rasa-gpu train BOT (no change)": [*rasa_gpu(), "train", str(bot)],
        }
        checked(cases["rasa-gpu build BOT (cache hit)"], CACHE_HIT)
        checked(cases["rasa-gpu train BOT (no change)"], SKIP_LINE)
        medians = measure(cases, args.repeat)

    base = medians["python -c pass"]
    print(f"start-up, median of {args.repeat} interleaved rounds ({sys.executable}, {os.cpu_count()} CPUs)")
    print(f"  {'command':<32} {'median s':>9} {'x pass':>8}   target")
    for name, seconds in medians.items():
        if "--help" in name:
            target, met = f"<= {HELP_TARGET:g}x", seconds / base <= HELP_TARGET
        elif "BOT" in name:
            target, met = f"<= {COMMAND_TARGET} s", seconds <= COMMAND_TARGET
        else:
            target, met = "", None
        verdict = "" if met is None else ("met" if met else "NOT met")
        print(f"  {name:<32} {seconds:>9.3f} {seconds / base:>7.1f}x   {target} {verdict}".rstrip())
    if args.no_size:
        return
    total, largest = installed_size()
    met = "met" if total <= SIZE_TARGET else "NOT met"
    print(f"installed size with byte-code: {total / 1e6:.1f} MB (target <= {SIZE_TARGET / 1e6:g} MB) {met}")
    print("  largest: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in largest.items()))


if __name__ == "__main__":
    main()
