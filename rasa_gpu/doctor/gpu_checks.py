"""doctor's GPU checks: the engine's NVIDIA runtime, a smoke test in the training image, and the driver against
the CUDA of the bot's TensorFlow."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import gpu as gpu_rules
from ..compat import RasaRelease
from ..engine import ContainerSpec, Engine, EngineAbout, labels_for
from .checks import Check, Context, LocalImages, gpu_problem


def runtime_check(engine: Engine, about: EngineAbout, context: Context, images: LocalImages) -> Check:
    if context.gpu_mode == "off":
        return Check("NVIDIA runtime", "skip", "--gpu off")
    probe_image = images.probe
    if probe_image is None:
        return Check("NVIDIA runtime", "skip", "no local image to start a probe container from yet")
    runtimes = ", ".join(about.runtimes) or "none listed"
    works = gpu_rules.request_works(engine, probe_image, context.probe_request)
    gpu_rules.remember(
        about.engine_id, refused=not works
    )  # doctor asks for real; train trusts the answer an hour
    if works:
        return Check("NVIDIA runtime", "ok", f"the engine grants GPU requests (runtimes: {runtimes})")
    return gpu_problem(
        "NVIDIA runtime",
        f"the engine refuses GPU requests: no NVIDIA runtime registered (runtimes: {runtimes})",
        gpu_rules.TOOLKIT_HINT,
        context.gpu_mode,
    )


_SMOKE_SCRIPT = """
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | sed 's/^/SMI /' || true
python3 - <<'PY'
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
print("TF_GPUS " + json.dumps([d.name for d in tf.config.list_physical_devices("GPU")]))
PY
"""


@dataclass(frozen=True)
class SmokeResult:
    gpus: list[tuple[str, str]]  # (name, driver) from nvidia-smi
    smi_error: str | None
    tf_gpus: list[str] | None  # None: TensorFlow did not answer


def parse_smoke_output(lines: list[str]) -> SmokeResult:
    gpus, smi_error, tf_gpus = [], None, None
    for line in lines:
        if line.startswith("SMI "):
            parts = [p.strip() for p in line[4:].split(",")]
            if len(parts) == 2 and re.match(r"^\d+(\.\d+)+$", parts[1]):
                gpus.append((parts[0], parts[1]))
            else:
                smi_error = smi_error or line[4:].strip()
        elif line.startswith("TF_GPUS "):
            tf_gpus = [str(n) for n in json.loads(line[8:])]
    return SmokeResult(gpus, smi_error, tf_gpus)


def smoke_test(
    engine: Engine, context: Context, runtime: Check, images: LocalImages
) -> tuple[Check, str | None]:
    """nvidia-smi and TensorFlow's device list in the training image, with a GPU request. Returns the check and
    the driver version nvidia-smi reported (for the driver check when the host has no nvidia-smi)."""
    name = "GPU smoke test"
    if runtime.status != "ok":
        return Check(name, "skip", "needs a working NVIDIA runtime"), None
    if context.spec is None or images.built is None:
        return Check(
            name, "skip", "the training image is not built yet; `rasa-gpu build BOT`, then doctor"
        ), None
    spec = ContainerSpec(
        image=context.spec.tag(),
        command=["-c", _SMOKE_SCRIPT],
        entrypoint=["sh"],
        name=f"rasa-gpu-doctor-{uuid.uuid4().hex[:8]}",
        labels=labels_for("doctor", context.project.root if context.project else Path("/")),
        gpu=context.probe_request,
        environment={"HOME": "/tmp"},
    )
    code, lines = engine.run_to_completion(spec)
    result = parse_smoke_output(lines)
    driver = result.gpus[0][1] if result.gpus else None
    if result.tf_gpus is None:
        return Check(name, "fail", f"TensorFlow did not start in the image (exit {code})", None, True), driver
    seen = (
        f"nvidia-smi: {', '.join(f'{n} (driver {d})' for n, d in result.gpus)}"
        if result.gpus
        else (f"nvidia-smi failed ({result.smi_error or 'no output'})")
    )
    if result.gpus and result.tf_gpus:
        return Check(name, "ok", f"{seen}; TensorFlow sees {len(result.tf_gpus)} GPU(s)"), driver
    if result.gpus:
        return gpu_problem(
            name,
            f"{seen}, but TensorFlow {context.spec.release.tensorflow} sees no GPU",
            "usually a driver too old for this TensorFlow's CUDA (see the driver check) or a base image without "
            "CUDA libraries (use the default tensorflow/tensorflow:<tf>-gpu base)",
            context.gpu_mode,
        ), driver
    return gpu_problem(
        name,
        f"the engine accepted the GPU request, but no GPU reached the container ({seen}) and TensorFlow sees none",
        "check `nvidia-smi` on the host, then `sudo nvidia-ctk runtime configure --runtime=docker` and restart "
        "Docker",
        context.gpu_mode,
    ), driver


def driver_check(driver: str | None, release: RasaRelease | None, mode: str) -> Check:
    """The NVIDIA driver against the CUDA that the bot's TensorFlow was built with (from the compatibility matrix).

    At or above the CUDA toolkit's minimum driver: ok. Between the minor-version-compatibility minimum (CUDA 11+)
    and that: warn, it runs but PTX JIT compilation may fail. Below: fail, TensorFlow will see no GPU.
    """
    name = "NVIDIA driver"
    if mode == "off":
        return Check(name, "skip", "--gpu off")
    if driver is None:
        return Check(name, "skip", "no NVIDIA driver found on this host (no /proc/driver/nvidia/version)")
    if release is None:
        return Check(name, "ok", f"driver {driver} (no bot, so no CUDA version to compare it with)")
    found = _version_tuple(driver)
    if found is None:
        return Check(name, "warn", f"cannot read the driver version '{driver}'")
    need = release.min_driver
    cuda = f"CUDA {release.cuda} (TensorFlow {release.tensorflow}, Rasa {release.version})"
    upgrade = f"upgrade the NVIDIA driver to {need} or newer, or use a Rasa release whose TensorFlow needs an older CUDA"
    if found >= (_version_tuple(need) or (0,)):
        return Check(name, "ok", f"driver {driver} ≥ {need}, the minimum for {cuda}")
    compat = release.min_driver_compat
    if compat and found >= (_version_tuple(compat) or (0,)):
        return Check(
            name,
            "warn",
            f"driver {driver} is older than {need}, which {cuda} asks for; it runs through CUDA minor-version "
            f"compatibility (≥ {compat}), but kernels that need PTX JIT compilation can fail",
            upgrade,
        )
    return Check(
        name,
        "fail",
        f"driver {driver} is too old for {cuda}: it needs {need}"
        + (f" (or {compat} with minor-version compatibility)" if compat else "")
        + "; TensorFlow will see no GPU",
        upgrade,
        blocking=mode == "on",
    )


def host_driver_version(proc_file: str = "/proc/driver/nvidia/version") -> str | None:
    try:
        text = Path(proc_file).read_text()
    except OSError:
        text = ""
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", text)
    if match:
        return match.group(1)
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out[0] if out else None
    return None


def _version_tuple(text: str) -> tuple[int, ...] | None:
    if not re.match(r"^\d+(\.\d+)*$", text.strip()):
        return None
    return tuple(int(part) for part in text.strip().split("."))
