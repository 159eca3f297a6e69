"""GPU rules shared by every command: what to ask the engine for, and what its answers mean."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GpuUnavailable, SettingsError
from .events import EventSink, Notice

if TYPE_CHECKING:
    from .engine import ContainerSpec, Engine, RunningContainer

from .entry_contract import DEVICES_MARKER

NO_RUNTIME = "this Docker engine has no NVIDIA runtime for GPU requests"
TOOLKIT_HINT = (
    "install the NVIDIA Container Toolkit on this host and restart Docker "
    "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/install-guide.html)"
)


@dataclass(frozen=True)
class GpuRequest:
    """What `--gpu`/`--gpus` ask of the engine: nothing, all GPUs, or some by id."""

    mode: str  # auto | on | off
    device_ids: tuple[str, ...] | None = None  # None: all GPUs

    @property
    def wanted(self) -> bool:
        return self.mode != "off"

    def device_request(self) -> dict[str, object]:
        """The engine API's DeviceRequest. Count -1 means all GPUs; leaving count out would mean none."""
        if self.device_ids:
            return {"Driver": "", "DeviceIDs": list(self.device_ids), "Capabilities": [["gpu"]]}
        return {"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}

    def compose_devices(self) -> list[dict[str, object]]:
        """The same request in compose's `deploy.resources.reservations.devices` syntax."""
        device: dict[str, object] = {"driver": "nvidia", "capabilities": ["gpu"]}
        if self.device_ids:
            device["device_ids"] = list(self.device_ids)
        else:
            device["count"] = "all"
        return [device]

    def describe(self) -> str:
        return "GPUs " + ",".join(self.device_ids) if self.device_ids else "all GPUs"


def parse_gpu_request(
    mode: str | None, gpus: str | None, gpus_from: str = "--gpus", mode_from: str = "--gpu"
) -> GpuRequest:
    """The one parser of a GPU request: the mode (auto when not given) and the device ids ("0,1", UUIDs), refused in
    one line that names where each was given (`gpus_from`, `mode_from`: the option, or the file and its key).
    Settings.gpu_request is its caller for every command."""
    mode = mode or "auto"
    ids: tuple[str, ...] | None = None
    if gpus:
        ids = tuple(part.strip() for part in str(gpus).split(",") if part.strip())
        if not ids or not all(part.isdigit() or part.startswith("GPU-") for part in ids):
            raise SettingsError(
                f"{gpus_from} takes device numbers or UUIDs separated by commas (e.g. 0,1), not '{gpus}'"
            )
        if mode == "off":
            raise SettingsError(
                f"{gpus_from} picks devices to train on, but {mode_from} off trains on the CPU; drop one of them"
            )
    return GpuRequest(mode=mode, device_ids=ids)


def for_image(
    request: GpuRequest, image: str, ready: bool, note: str, doing: str
) -> tuple[GpuRequest, str | None]:
    """The one rule for an image that cannot use a GPU (built without CUDA, or it failed the CUDA check after its
    build): with `on` it is an error before any container starts (raised); with `auto` the work goes on on the CPU
    without asking the engine for a GPU, and the returned warning says why. Otherwise the request is unchanged."""
    if ready or not request.wanted:
        return request, None
    cpu_only = f"the image {image} cannot use a GPU ({note})"
    if request.mode == "on":
        raise GpuUnavailable(
            f"--gpu on, but {cpu_only}; build one that can (--cuda wheels, or a TensorFlow GPU base image with "
            f"--cuda base), or {doing} on the CPU with --gpu off"
        )
    return CPU, f"{cpu_only}: going on to {doing} on the CPU"


def without_runtime(request: GpuRequest, doing: str, *, remembered: bool = False) -> str:
    """The one rule for an engine that cannot serve GPU requests, used by every command: with `on` it is an error
    (raised); with `auto` the work goes on on the CPU, and the returned warning says so. `doing` names the work, as
    in "train" or "run the Rasa server". `remembered`: the engine refused within the last hour and was not asked
    again (see refused_recently)."""
    if request.mode == "on":
        raise GpuUnavailable(f"{NO_RUNTIME}; {TOOLKIT_HINT}, or {doing} on the CPU with --gpu off")
    when = (
        " (it refused a GPU request within the last hour; `rasa-gpu doctor` asks again)" if remembered else ""
    )
    return f"{NO_RUNTIME}: going on to {doing} on the CPU{when}. To use a GPU, {TOOLKIT_HINT}."


# ---- remembering an engine's refusal: with --gpu auto, ask an engine without a runtime at most once an hour ----

REFUSAL_MEMORY_SECONDS = 3600


def _refusals_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rasa-gpu" / "gpu-refusals.json"


def _refusals() -> dict[str, float]:
    try:
        data = json.loads(_refusals_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}
        if isinstance(data, dict)
        else {}
    )


def refused_recently(engine_id: str) -> bool:
    """Whether this engine (its ID from `docker info`) refused a GPU request within the last hour."""
    return bool(engine_id) and time.time() - _refusals().get(engine_id, 0.0) < REFUSAL_MEMORY_SECONDS


def remember(engine_id: str, *, refused: bool) -> None:
    """Note that the engine refused a GPU request now (refused=True) or granted one (forget an old refusal). The
    note is a cache: a file that cannot be written only means the engine is asked again next time."""
    if not engine_id:
        return
    refusals = _refusals()
    if refused:
        refusals[engine_id] = time.time()
    elif refusals.pop(engine_id, None) is None:
        return
    path = _refusals_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(refusals), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def granted(
    engine_id: str, gpu: GpuRequest, doing: str, on_event: EventSink, ask: Callable[[], bool]
) -> bool:
    """Whether the work gets the GPU: the one rule for asking an engine, with its refusal memory. off never asks;
    auto does not ask an engine that refused within the last hour (and says so); otherwise `ask` asks it (True:
    granted), the answer is remembered, and a refusal is an error with on (raised) and a warning with auto."""
    if not gpu.wanted:
        return False
    if gpu.mode == "auto" and refused_recently(engine_id):
        on_event(Notice(without_runtime(gpu, doing, remembered=True), "warn"))
        return False
    answer = ask()
    remember(engine_id, refused=not answer)
    if not answer:
        on_event(Notice(without_runtime(gpu, doing), "warn"))
    return answer


def is_missing_gpu_driver(message: str) -> bool:
    """True when the engine refused a GPU request because it has no NVIDIA runtime."""
    return "could not select device driver" in message


def request_works(engine: Engine, image: str, request: GpuRequest) -> bool:
    """Whether the engine grants this GPU request: a throw-away container of the image runs `true` with it, and a
    refusal for want of an NVIDIA runtime means no (any other failure is an error of its own)."""
    from .engine import probe_spec

    try:
        engine.run_to_completion(probe_spec(image, ["true"], "gpu-request", gpu=request))
    except GpuUnavailable:
        return False
    return True


def parse_devices_line(line: str) -> list[str] | None:
    """The GPU names from the entry script's marker line, or None if the line is something else."""
    if not line.startswith(DEVICES_MARKER):
        return None
    try:
        names = json.loads(line[len(DEVICES_MARKER) :])
    except json.JSONDecodeError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


# ---- starting a container that may get a GPU -----------------------------------------------------------------------


@contextmanager
def started(
    engine: Engine,
    build: Callable[[GpuRequest], ContainerSpec],
    gpu: GpuRequest,
    doing: str,
    on_event: EventSink,
) -> Iterator[tuple[RunningContainer, bool]]:
    """Start the container `build` makes, asking for the GPU as `gpu` says (auto: the CPU when the engine refuses,
    remembered per engine, as for a training). Yields it and whether it got the GPU; it is removed on the way out."""
    engine_id = engine.engine_id() if gpu.wanted else ""
    with ExitStack() as stack:
        first: list[RunningContainer] = []

        def ask() -> bool:
            try:
                first.append(stack.enter_context(engine.running(build(gpu))))
            except GpuUnavailable:
                if gpu.mode == "on":  # the engine's own words
                    remember(engine_id, refused=True)
                    raise
                return False
            return True

        got_gpu = granted(engine_id, gpu, doing, on_event, ask)
        running = first[0] if got_gpu else stack.enter_context(engine.running(build(CPU)))
        yield running, got_gpu


CPU = GpuRequest("off")
