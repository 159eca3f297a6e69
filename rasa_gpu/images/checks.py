"""Checks of an image, each run in a throw-away container of it on the CPU: its Python (before a build), a tiny bot
trained and loaded in a new image and its spaCy models (before the image gets its name), and whether its CUDA
libraries load (before it is named gpu). The engine runs the container and hands back its output; what the output
means is decided here."""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any, Protocol

from .. import locks, templates
from ..base_image import PYTHON_LABEL, SUITE_PYTHON, default_name
from ..compat import accepts_python
from ..engine import ContainerSpec, probe_spec
from ..errors import BuildError, RasaGpuError, VersionError
from .spec import ImageSpec

#: Quietens TensorFlow's C++ logging in a check's output (its report is the last line that counts).
_QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3"}


class ProbeEngine(Protocol):
    """What the checks need of an engine (the real one is rasa_gpu.engine.Engine)."""

    def run_to_completion(self, spec: ContainerSpec) -> tuple[int, list[str]]: ...

    def image_labels(self, ref: str) -> dict[str, str]: ...


def run_check(
    engine: ProbeEngine,
    ref: str,
    script: str,
    args: list[str],
    environment: dict[str, str] | None = None,
    *,
    check: str,
) -> tuple[dict[str, Any] | None, str]:
    """Run a check script (Python source) in a throw-away container of the image, on the CPU: the JSON report it
    printed last, or None and the last meaningful line of its output (else its exit code)."""
    spec = probe_spec(
        ref, ["python3", "-c", script], check, args=args, environment={**_QUIET_TF, **(environment or {})}
    )
    code, lines = engine.run_to_completion(spec)
    for line in reversed(lines):
        if line.startswith("{"):
            with suppress(ValueError):
                report = json.loads(line)
                if isinstance(report, dict):
                    return report, ""
    said = [line.strip() for line in lines if line.strip()]
    return None, said[-1] if said else f"exit code {code}"


def cuda_check(engine: ProbeEngine, ref: str, script: str, libraries: list[str]) -> dict[str, Any]:
    """Run the CUDA readiness script (docker/rasa-gpu-cuda-check.py) in a throw-away container of the image; its
    JSON report, or one with the reason it gave none."""
    report, last = run_check(engine, ref, script, [json.dumps(libraries)], check="cuda")
    return report if report is not None else {"ready": False, "problems": [f"the check did not run ({last})"]}


def image_python(engine: ProbeEngine, ref: str) -> str | None:
    """The Python (X.Y) of a local image: its io.rasa-gpu.python label, else what python3 says in a throw-away
    container. None when the image has no python3 (or it says nothing a version looks like)."""
    label = engine.image_labels(ref).get(PYTHON_LABEL, "").strip()
    if label:
        return label
    spec = probe_spec(ref, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "python")
    try:
        code, lines = engine.run_to_completion(spec)
    except RasaGpuError:  # no python3 in it: the build says so itself
        return None
    version = lines[-1].strip() if lines else ""
    parts = version.split(".")
    return version if code == 0 and len(parts) == 2 and all(p.isdigit() for p in parts) else None


def smoke_check(engine: ProbeEngine, spec: ImageSpec, ref: str, *, bot_stage: bool = False) -> str:
    """Train docker/rasa-gpu-smoke.py's tiny bot in the image on the CPU and load its model: a phrase that says how
    it went, or a BuildError with the exception and, where the traceback tells, the package that raised it."""
    script = templates.read_text("docker", "rasa-gpu-smoke.py")
    report, last = run_check(engine, ref, script, [], {"CUDA_VISIBLE_DEVICES": ""}, check="smoke")
    if report is None:
        raise BuildError(
            f"the new image of {spec.release.name} did not train a tiny bot: {last}; nothing was tagged"
        )
    seconds = f"{float(report.get('seconds', 0)):.0f} s"
    if not report.get("ok"):
        package = str(report.get("package") or "")
        where = f" (raised in {package})" if package else ""
        raise BuildError(
            f"the new image of {spec.release.name} did not train a tiny bot: {report.get('error')}{where}; nothing "
            f"was tagged. {_lock_advice(spec, bot_stage=bot_stage)}"
        )
    if report.get("licensed") is False:
        return f"{report.get('note')} ({seconds})"
    return f"trained and loaded in {seconds}"


def spacy_check(engine: ProbeEngine, spec: ImageSpec, ref: str) -> str:
    """Load the bot's spaCy models in the new image as Rasa's SpacyNLP does (docker/rasa-gpu-spacy-check.py): a
    phrase that says what loaded, or a BuildError naming the model and why."""
    script = templates.read_text("docker", "rasa-gpu-spacy-check.py")
    report, last = run_check(
        engine, ref, script, list(spec.spacy_models), {"CUDA_VISIBLE_DEVICES": ""}, check="spacy"
    )
    if report is None or not report.get("ok"):
        model = (report or {}).get("model") or ", ".join(spec.spacy_models)
        error = (report or {}).get("error") or last
        raise BuildError(
            f"the new image of {spec.release.name} cannot load the spaCy model {model}: {error}; nothing was "
            "tagged. Check the requirement that provides it: a model package made for the spaCy that the image "
            f"installs ({spec.release.package}[spacy] or your spacy line)"
        )
    models = report.get("models") or {}
    loaded = ", ".join(f"{name} {version}".strip() for name, version in models.items())
    return f"spaCy {report.get('spacy')} loads {loaded} in the new image"


def _lock_advice(spec: ImageSpec, *, bot_stage: bool) -> str:
    release = spec.release
    if bot_stage:
        return (
            "The bot's own requirements break it (the Rasa stage alone trained): pin the package the line names "
            "to a version that works with its Rasa"
        )
    if locks.pythons(release):
        return (
            f"Its locked set breaks it: pin the package in tools/data/lock_fixes.toml and regenerate with "
            f"`python tools/gen_locks.py {release.version}`"
        )
    return (
        f"{release.name} has no locked set, so pip installed today's versions: lock it with "
        f"`python tools/gen_locks.py {release.version}` (a fix in tools/data/lock_fixes.toml where needed)"
    )


def check_cuda(engine: ProbeEngine, spec: ImageSpec, tag: str) -> tuple[bool, str]:
    """Whether the built image can use a GPU, and a phrase that says what was found (the problems when not)."""
    libraries = list(spec.cuda_wheels.libraries) if spec.cuda_wheels is not None else []
    report = cuda_check(engine, tag, templates.read_text("docker", "rasa-gpu-cuda-check.py"), libraries)
    if report.get("ready"):
        where = "NVIDIA's wheels" if spec.cuda == "wheels" else "the base image"
        found = f"CUDA {report.get('cuda')}, cuDNN {report.get('cudnn')}"
        return (
            True,
            f"GPU-ready: TensorFlow built with {found}; {len(report.get('loaded', []))} CUDA libraries from {where} load",
        )
    problems = [str(p) for p in report.get("problems", [])] or ["no reason given"]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return False, f"CPU-only: {problems[0]}{more}"


def check_base_python(engine: ProbeEngine, spec: ImageSpec) -> None:
    """Before a build: a VersionError when the base image's Python is outside the Rasa release's range (pip would
    fail only minutes into the build). The matrix's TensorFlow images are asked too: a TensorFlow image has one
    Python, and a Rasa Pro release may need another (TensorFlow 2.19's image has 3.11, Rasa Pro 3.13 wants 3.12)."""
    python = image_python(engine, spec.base_image)
    if python is None or accepts_python(spec.release.python, python):
        return
    raise VersionError(python_mismatch(spec, python))


def python_mismatch(spec: ImageSpec, python: str) -> str:
    """One line: what does not fit, and the base images that would."""
    release = spec.release
    default = release.gpu_base_image if spec.variant == "gpu" else release.cpu_base_image
    ways = [
        f"`sudo rasa-gpu base-image --suite {suite}` (Python {version}, no registry needed), "
        f"then --base-image {default_name(suite)}"
        for suite, version in SUITE_PYTHON.items()
        if accepts_python(release.python, version)
    ]
    slim = next(
        (f"3.{minor}" for minor in range(8, 15) if accepts_python(release.python, f"3.{minor}")), None
    )
    if slim:
        ways.append(f"--base-image python:{slim}-slim (CUDA then comes from PyPI: --cuda wheels)")
    if default != spec.base_image:
        ways.append(f"the matrix's {default} (drop --base-image and base_image; needs a registry)")
    return (
        f"{release.name} needs Python {release.python} but the base image {spec.base_image} has Python "
        f"{python}; nothing was built. Use a base image with a matching Python: {', or '.join(ways)}"
    )
