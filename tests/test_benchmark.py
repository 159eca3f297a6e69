"""`rasa-gpu benchmark`: measured for real on the CPU, the GPU marked as not measured (plain engine and stand-in
GPU engine), report files written, models/ untouched. Plus the pure report arithmetic."""

from __future__ import annotations

import json
import os

import pytest
from support import copy_bot, leftover_containers, models, run_cli

from rasa_gpu.benchmark import BenchmarkReport, DeviceReport, Price, Stats
from rasa_gpu.training import TimedRun

QUICK = ["--repeat", "1", "--no-warmup", "--set", "DIETClassifier.epochs=2", "--set", "TEDPolicy.epochs=2"]


def report(cpu_runs: list[float], gpu_runs: list[float]) -> BenchmarkReport:
    def device(name: str, runs: list[float], price: float) -> DeviceReport:
        d = DeviceReport(name, Price(f"{name}-instance", price), device=name.upper())
        d.runs = [
            TimedRun(name.upper(), name == "gpu", s, {"DIETClassifier": s / 2, "TEDPolicy": s / 4})
            for s in runs
        ]
        if not runs:
            d.available, d.reason = False, "no NVIDIA runtime"
        return d

    return BenchmarkReport(
        bot="/bots/shop",
        started_at="2026-11-22 00:00:00 UTC",
        rasa_version="3.6.21",
        tensorflow="2.12.0",
        image="img",
        host="h",
        repeat=len(cpu_runs),
        warmup=True,
        overrides=["DIETClassifier.epochs=5"],
        cpus=None,
        memory=None,
        devices={"cpu": device("cpu", cpu_runs, 0.186), "gpu": device("gpu", gpu_runs, 0.526)},
    )


def test_medians_speedup_and_cost_per_training():
    r = report([100.0, 80.0, 90.0], [10.0, 12.0, 11.0])
    assert r.devices["cpu"].total() == Stats(90.0, 80.0, 100.0)
    assert r.speedup() == pytest.approx(90 / 11)
    assert r.devices["cpu"].cost_per_training() == pytest.approx(90 / 3600 * 0.186)
    assert r.devices["gpu"].components()["DIETClassifier"] == Stats(5.5, 5.0, 6.0)
    data = r.to_json()
    assert data["devices"]["gpu"]["total"]["median"] == 11.0 and data["overrides"] == [
        "DIETClassifier.epochs=5"
    ]


def test_without_gpu_nothing_is_estimated():
    r = report([100.0], [])
    assert r.speedup() is None and r.devices["gpu"].cost_per_training() is None
    text = r.markdown()
    assert "GPU not measured: no NVIDIA runtime" in text and "`DIETClassifier.epochs=5`" in text
    assert "Speedup (CPU median / GPU median): not measured" in text


@pytest.mark.docker
@pytest.mark.slow
def test_benchmark_on_the_cpu_for_real(trained_bot, tmp_path, docker_client):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    models_before = {p: p.stat().st_mtime for p in models(bot)}
    cache_before = sorted(p.name for p in (bot / ".rasa" / "cache").iterdir())
    result = run_cli("benchmark", str(bot), *QUICK, "--json", "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)
    cpu, gpu = data["devices"]["cpu"], data["devices"]["gpu"]
    assert len(cpu["runs"]) == 1 and cpu["device"].startswith("CPU: ")
    total = cpu["total"]["median"]
    parts = sum(cpu["runs"][0]["components"].values())
    assert 0 < parts < total  # components are part of the wall time; start-up and saving are the rest
    assert parts > 0.3 * total, (parts, total)
    assert set(cpu["runs"][0]["components"]) >= {"DIETClassifier", "TEDPolicy"}
    assert gpu["available"] is False and "NVIDIA" in gpu["reason"] and gpu["runs"] == []
    assert data["speedup"] is None and data["overrides"] == ["DIETClassifier.epochs=2", "TEDPolicy.epochs=2"]
    assert cpu["cost_per_training"] == pytest.approx(total / 3600 * 0.186)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "GPU not measured" in md and "DIETClassifier.epochs=2" in md
    assert (tmp_path / "report" / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        json.loads((tmp_path / "report" / "report.json").read_text())["devices"]["cpu"]["total"]["median"]
        == total
    )
    assert {p: p.stat().st_mtime for p in models(bot)} == models_before  # models/ untouched
    assert sorted(p.name for p in (bot / ".rasa" / "cache").iterdir()) == cache_before  # fresh cache per run
    assert leftover_containers(docker_client, bot) == []
    assert not any((bot / ".rasa-gpu" / "tmp").iterdir())
    # Every run is in the history: the measured CPU run, and the GPU attempt the engine refused.
    listed = run_cli("runs", str(bot), "--kind", "benchmark", "--json")
    assert listed.returncode == 0, listed.output
    rows = {row["phase"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"cpu run 1/1", "gpu run 1/1"}, rows
    cpu_row, gpu_row = rows["cpu run 1/1"], rows["gpu run 1/1"]
    assert cpu_row["status"] == "ok" and cpu_row["benchmark"] == data["id"] == gpu_row["benchmark"]
    assert cpu_row["wall_seconds"] == pytest.approx(cpu["runs"][0]["wall_seconds"])
    assert cpu_row["components"] == pytest.approx(cpu["runs"][0]["components"])
    assert cpu_row["device"] == cpu["device"] and cpu_row["overrides"] == data["overrides"]
    assert cpu_row["image_id"] == docker_client.images.get(data["image"]).id
    assert cpu_row["model_path"] is None  # benchmark models are thrown away
    assert gpu_row["status"] == "error" and "NVIDIA" in gpu_row["error"]


@pytest.mark.docker
@pytest.mark.slow
def test_benchmark_on_the_stand_in_gpu_engine_marks_the_gpu_unmeasured(trained_bot, stub_engine, tmp_path):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    result = run_cli("benchmark", str(bot), *QUICK, "--json", env={"DOCKER_HOST": stub_engine})
    assert result.returncode == 0, result.output
    gpu = json.loads(result.stdout)["devices"]["gpu"]
    assert gpu["available"] is False and "TensorFlow inside the container sees no GPU" in gpu["reason"]
    assert "GPU not measured" in result.stderr
    owner = os.stat(bot).st_uid
    assert all(p.stat().st_uid == owner for p in (bot / ".rasa-gpu" / "benchmarks").rglob("*"))
