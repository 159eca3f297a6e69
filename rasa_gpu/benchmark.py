"""`rasa-gpu benchmark`: the same bot trained on the CPU and on the GPU with the same image, a fresh Rasa cache per
run, after a warm-up; medians per component and in total, the speedup, and the cost per training from hourly prices.

Every figure is measured in this run. Without a GPU the GPU column says why it is missing; nothing is estimated.
Nothing here prints: events go to a callback, the report comes back as data.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, build_log, history, templates
from .engine import ContainerSpec, labels_for
from .errors import GpuUnavailable, RasaGpuError
from .events import EventSink, Notice
from .gpu import CPU, GpuRequest
from .images import ImageSpec, ensure_image
from .overrides import Override
from .project import BotProject
from .runners import Runner
from .training import Limits, TimedRun, bot_session, timed_training

if TYPE_CHECKING:
    from .license_key import License

#: The prices of the article this tool grew from (on-demand, Linux, US East).
DEFAULT_PRICES = {"cpu": ("z1d.large", 0.186), "gpu": ("g4dn.xlarge", 0.526)}
REPORTS_DIR = "benchmarks"


@dataclass(frozen=True)
class Price:
    instance: str
    per_hour: float


@dataclass(frozen=True)
class BenchmarkOptions:
    repeat: int = 3
    warmup: bool = True
    overrides: list[Override] = field(default_factory=list)
    gpus: tuple[str, ...] | None = None
    cpus: float | None = None
    memory: str | None = None
    #: Rasa Pro's license, handed to each training container in its environment (never shown).
    license: License | None = field(default=None, repr=False)
    prices: dict[str, Price] = field(
        default_factory=lambda: {k: Price(name, price) for k, (name, price) in DEFAULT_PRICES.items()}
    )


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))


@dataclass
class DeviceReport:
    name: str  # cpu | gpu
    price: Price
    available: bool = True
    reason: str | None = None  # why a device could not be measured
    device: str = ""  # what trained: "CPU: Intel ..." or "GPU: Tesla T4"
    runs: list[TimedRun] = field(default_factory=list)

    def total(self) -> Stats | None:
        return Stats.of([r.wall_seconds for r in self.runs]) if self.runs else None

    def components(self) -> dict[str, Stats]:
        names: list[str] = []
        for run in self.runs:
            names += [n for n in run.components if n not in names]
        return {n: Stats.of([r.components.get(n, 0.0) for r in self.runs]) for n in names}

    def cost_per_training(self) -> float | None:
        total = self.total()
        return total.median / 3600 * self.price.per_hour if total else None


@dataclass
class BenchmarkReport:
    bot: str
    started_at: str
    rasa_version: str
    tensorflow: str
    image: str
    host: str
    repeat: int
    warmup: bool
    overrides: list[str]
    cpus: float | None
    memory: str | None
    devices: dict[str, DeviceReport]

    @property
    def id(self) -> str:
        """The start time as a name: the report's folder, and the `benchmark` of its runs in the history."""
        return self.started_at.replace("-", "").replace(":", "").replace(" UTC", "").replace(" ", "-")

    def speedup(self) -> float | None:
        cpu, gpu = self.devices["cpu"].total(), self.devices["gpu"].total()
        return cpu.median / gpu.median if cpu and gpu else None

    def to_json(self) -> dict[str, Any]:
        def device(d: DeviceReport) -> dict[str, Any]:
            total = d.total()
            return {
                "available": d.available,
                "reason": d.reason,
                "device": d.device,
                "price_per_hour": d.price.per_hour,
                "instance": d.price.instance,
                "runs": [{"wall_seconds": r.wall_seconds, "components": r.components} for r in d.runs],
                "total": total.__dict__ if total else None,
                "components": {n: s.__dict__ for n, s in d.components().items()},
                "cost_per_training": d.cost_per_training(),
            }

        return {
            "tool": f"rasa-gpu {__version__}",
            "id": self.id,
            "bot": self.bot,
            "started_at": self.started_at,
            "rasa_version": self.rasa_version,
            "tensorflow": self.tensorflow,
            "image": self.image,
            "host": self.host,
            "repeat": self.repeat,
            "warmup": self.warmup,
            "overrides": self.overrides,
            "cpus": self.cpus,
            "memory": self.memory,
            "devices": {name: device(d) for name, d in self.devices.items()},
            "speedup": self.speedup(),
        }

    def markdown(self) -> str:
        cpu, gpu = self.devices["cpu"], self.devices["gpu"]
        lines = [
            f"# Training benchmark: {Path(self.bot).name}",
            "",
            f"Measured by rasa-gpu {__version__} on {self.started_at} on `{self.host}`.",
            f"Rasa {self.rasa_version}, TensorFlow {self.tensorflow}, image `{self.image}`.",
            f"{self.repeat} measured run(s) per device{' after one warm-up run' if self.warmup else ''}, "
            "each with a fresh Rasa cache.",
        ]
        if self.overrides:
            lines.append(
                "Overrides (the bot's config.yml was changed for these runs): "
                + ", ".join(f"`{o}`" for o in self.overrides)
            )
        if self.cpus or self.memory:
            lines.append(f"Container limits: cpus={self.cpus or 'none'}, memory={self.memory or 'none'}.")
        lines += ["", "| | CPU | GPU |", "|---|---|---|"]
        lines.append(f"| device | {cpu.device or '-'} | {gpu.device if gpu.available else 'not measured'} |")
        for label, pick in (("median (s)", "median"), ("min (s)", "min"), ("max (s)", "max")):
            lines.append(f"| {label} | {_cell(cpu.total(), pick)} | {_cell(gpu.total(), pick)} |")
        lines.append(
            f"| cost per training | {_money(cpu.cost_per_training())} ({cpu.price.instance} at ${cpu.price.per_hour}/h) "
            f"| {_money(gpu.cost_per_training())} ({gpu.price.instance} at ${gpu.price.per_hour}/h) |"
        )
        speedup = self.speedup()
        lines += [
            "",
            f"Speedup (CPU median / GPU median): {f'{speedup:.2f}x' if speedup else 'not measured'}",
        ]
        if not gpu.available:
            lines += ["", f"GPU not measured: {gpu.reason}"]
        lines += [
            "",
            "## Per component (median seconds, min–max)",
            "",
            "| component | CPU | GPU |",
            "|---|---|---|",
        ]
        names = list(cpu.components()) + [n for n in gpu.components() if n not in cpu.components()]
        for name in names:
            lines.append(
                f"| {name} | {_range(cpu.components().get(name))} | {_range(gpu.components().get(name))} |"
            )
        lines += ["", "![CPU vs GPU](chart.png)", ""]
        return "\n".join(lines)


def _cell(stats: Stats | None, pick: str) -> str:
    return f"{getattr(stats, pick):.1f}" if stats else "-"


def _range(stats: Stats | None) -> str:
    return f"{stats.median:.1f} ({stats.min:.1f}–{stats.max:.1f})" if stats else "-"


def _money(value: float | None) -> str:
    return f"${value:.4f}" if value is not None else "-"


# ---- running it -----------------------------------------------------------------------------------------------------


def run_benchmark(
    runner: Runner, project: BotProject, spec: ImageSpec, options: BenchmarkOptions, on_event: EventSink
) -> BenchmarkReport:
    engine = runner.engine
    with build_log.recording(build_log.of_bot(project), on_event) as build_line:
        built = ensure_image(engine, spec, build_line)
    image = built.tag
    limits = Limits(cpus=options.cpus, memory=options.memory)
    devices = {name: DeviceReport(name, options.prices[name]) for name in ("cpu", "gpu")}
    requests = {"cpu": CPU, "gpu": GpuRequest("on", options.gpus)}
    report = BenchmarkReport(
        bot=str(project.root),
        started_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        rasa_version=spec.release.version,
        tensorflow=spec.release.tensorflow,
        image=image,
        host=(
            f"{platform.node()} ({os.cpu_count()} cores)"
            if runner.capabilities.shares_host_machine
            else runner.machine()
        ),
        repeat=options.repeat,
        warmup=options.warmup,
        overrides=[o.text for o in options.overrides],
        cpus=options.cpus,
        memory=options.memory,
        devices=devices,
    )
    if not built.gpu_ready:  # the GPU run would fail before a container: say why once, measure the CPU
        devices["gpu"].available = False
        devices["gpu"].reason = f"the image {image} cannot use a GPU ({built.cuda_note})"
        on_event(Notice(f"GPU not measured: {devices['gpu'].reason}", "warn"))

    def one(name: str, label: str) -> TimedRun | None:
        device = devices[name]
        if not device.available:
            return None
        on_event(Notice(f"{name.upper()} {label}"))
        record = history.Run(
            kind="benchmark",
            bot_fingerprint=fingerprint,
            rasa_version=spec.release.version,
            tensorflow=spec.release.tensorflow,
            image=image,
            image_id=built.image_id,
            cpu_limit=options.cpus,
            memory_limit=options.memory,
            overrides=report.overrides,
            benchmark=report.id,
            phase=f"{name} {label}",
        )
        try:
            with history.recording(project, record, lambda text: on_event(Notice(text, "warn"))):
                run = timed_training(
                    runner,
                    project,
                    built.spec or spec,
                    image,
                    options.overrides,
                    requests[name],
                    on_event,
                    limits,
                    license=options.license,
                )
                record.measured(run.device, run.wall_seconds, run.components)
        except GpuUnavailable as exc:
            device.available, device.reason = False, exc.message
            on_event(Notice(f"GPU not measured: {exc.message}", "warn"))
            return None
        device.device = run.device
        return run

    fingerprint = project.inputs_digest()
    with bot_session(project, runner, on_event):
        if options.warmup:
            for name in ("cpu", "gpu"):
                one(name, "warm-up run (not counted)")
        for i in range(options.repeat):
            for name in ("cpu", "gpu") if i % 2 == 0 else ("gpu", "cpu"):  # alternate: drift hits both alike
                run = one(name, f"run {i + 1}/{options.repeat}")
                if run is not None:
                    devices[name].runs.append(run)
    return report


def write_report(
    runner: Runner, project: BotProject, report: BenchmarkReport, folder: Path | None = None
) -> Path:
    """report.json, report.md and chart.png in the bot's state folder (or `folder`). The chart is drawn by
    matplotlib inside the Rasa image, so the host needs no plotting library; on an engine elsewhere (which cannot
    see this folder) there is no chart."""
    out = folder or project.state_dir / REPORTS_DIR / report.id
    inside_bot = project.root in out.resolve().parents  # then the bot owner's, like models/
    if inside_bot:  # no link followed, the bot owner's files (safefs)
        out = project.make_owned_dirs(out)
        project.write_owned(out / "report.json", json.dumps(report.to_json(), indent=2) + "\n")
        project.write_owned(out / "report.md", report.markdown())
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        (out / "report.md").write_text(report.markdown(), encoding="utf-8")
    if not runner.capabilities.mounts_bot_folder:  # the chart's container mounts the report folder
        return out
    st = out.stat()  # the chart is written as whoever owns the report folder
    uid, gid = st.st_uid, st.st_gid
    code, lines = runner.engine.run_to_completion(
        ContainerSpec(
            image=report.image,
            command=[],
            entrypoint=["python3", "-c", templates.read_text("docker", "rasa-gpu-chart.py"), "/out"],
            name=f"rasa-gpu-chart-{project.name}-{os.getpid()}",
            labels=labels_for("chart", project.root),
            user=f"{uid}:{gid}",
            environment={"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"},
            binds={str(out.resolve()): "/out"},
        )
    )
    if code != 0:
        raise RasaGpuError(
            f"drawing the chart failed (exit {code}); the report itself is in {out}", details=lines[-10:]
        )
    return out
