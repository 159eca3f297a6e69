"""`rasa-gpu benchmark`: the same training on the CPU and on the GPU, timed and priced."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ._common import (
    ImageOptions,
    bot_argument,
    cpus_option,
    gpus_option,
    image_options,
    json_option,
    load,
    memory_option,
    set_option,
    show_notice,
    verbose_option,
)

if TYPE_CHECKING:
    from ..benchmark import BenchmarkReport


@click.command("benchmark")
@bot_argument
@image_options
@click.option(
    "--repeat",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    envvar="RASA_GPU_BENCHMARK_REPEAT",
    help="Measured runs per device. [env: RASA_GPU_BENCHMARK_REPEAT]",
)
@click.option(
    "--warmup/--no-warmup",
    default=True,
    show_default=True,
    envvar="RASA_GPU_BENCHMARK_WARMUP",
    help="One uncounted run per device first. [env: RASA_GPU_BENCHMARK_WARMUP]",
)
@set_option
@gpus_option
@cpus_option
@memory_option
@click.option(
    "--cpu-price", type=float, default=0.186, show_default=True, help="CPU instance price, $ per hour."
)
@click.option(
    "--gpu-price", type=float, default=0.526, show_default=True, help="GPU instance price, $ per hour."
)
@click.option(
    "--cpu-instance", default="z1d.large", show_default=True, help="Name of the CPU instance priced."
)
@click.option(
    "--gpu-instance", default="g4dn.xlarge", show_default=True, help="Name of the GPU instance priced."
)
@json_option
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Folder for report.md/json and chart.png."
)
@verbose_option
def benchmark_cmd(
    bot: str,
    image: ImageOptions,
    repeat: int,
    warmup: bool,
    overrides: Sequence[str],
    gpus: str | None,
    cpus: float | None,
    memory: str | None,
    cpu_price: float,
    gpu_price: float,
    cpu_instance: str,
    gpu_instance: str,
    as_json: bool,
    out_dir: str | None,
    verbose: bool,
) -> None:
    """Train BOT on the CPU and on the GPU with the same image and a fresh Rasa cache per run; report medians per
    component and in total, the speedup and the cost per training. Without a GPU only the CPU is measured and the
    report says why. Models are thrown away: models/ is not touched.

    \b
    Examples:
      rasa-gpu benchmark example_bot
      rasa-gpu benchmark example_bot --repeat 1 --set DIETClassifier.epochs=5 --cpus 2 --json
    """
    import json
    from pathlib import Path

    from rich.markup import escape

    from .. import benchmark as benchmark_mod
    from ..overrides import parse_overrides
    from ..settings import Settings
    from ._common import err
    from .views import TrainView

    resolved = load(bot, image, Settings(gpus=gpus, set=list(overrides)))
    project, settings, spec, why = resolved.project, resolved.settings, resolved.spec, resolved.why
    gpu_request = settings.gpu_request()  # the GPU runs use the GPUs train would use
    options = benchmark_mod.BenchmarkOptions(
        repeat=repeat,
        warmup=warmup,
        overrides=parse_overrides(list(settings.set)),
        gpus=gpu_request.device_ids,
        cpus=cpus,
        memory=memory,
        license=resolved.license(),
        prices={
            "cpu": benchmark_mod.Price(cpu_instance, cpu_price),
            "gpu": benchmark_mod.Price(gpu_instance, gpu_price),
        },
    )
    err.print(
        f"rasa-gpu benchmark of {escape(str(project.root))}: Rasa {spec.release.version} ({why}), "
        f"{repeat} run(s) per device{' after a warm-up' if warmup else ''}"
    )
    with resolved.runner(show_notice) as runner, TrainView(verbose) as view:
        report = benchmark_mod.run_benchmark(runner, project, spec, options, view.handle)
        folder = benchmark_mod.write_report(runner, project, report, Path(out_dir) if out_dir else None)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_benchmark(report)
    err.print(f"report: {escape(str(folder / 'report.md'))} (+ report.json, chart.png)")


def _print_benchmark(report: BenchmarkReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ._common import out

    cpu, gpu = report.devices["cpu"], report.devices["gpu"]
    table = Table("", "CPU", "GPU", title="training time (s), measured in this run")
    table.add_row(
        "device",
        escape(cpu.device or "-"),
        escape(gpu.device) if gpu.available else "[yellow]not measured[/]",
    )
    for label, pick in (("median", "median"), ("min", "min"), ("max", "max")):
        table.add_row(label, *(f"{getattr(d.total(), pick):.1f}" if d.total() else "-" for d in (cpu, gpu)))
    table.add_row(
        "cost / training",
        *(
            f"${d.cost_per_training():.4f} ({d.price.instance})" if d.cost_per_training() is not None else "-"
            for d in (cpu, gpu)
        ),
    )
    names = list(cpu.components()) + [n for n in gpu.components() if n not in cpu.components()]
    for name in names:
        table.add_row(
            f"  {name}",
            *(f"{d.components()[name].median:.1f}" if name in d.components() else "-" for d in (cpu, gpu)),
        )
    out.print(table)
    speedup = report.speedup()
    if speedup:
        out.print(f"GPU speedup: {speedup:.2f}x")
    if not gpu.available:
        out.print(f"[yellow]GPU not measured:[/] {escape(gpu.reason or '')}")
    if report.overrides:
        out.print("with overrides: " + ", ".join(report.overrides), markup=False)
