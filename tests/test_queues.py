"""The queue interface and the shared [resources] table, without a cluster (the real Slurm is in test_slurm.py;
no Kubernetes API server can run here): what each queue makes of one request, what it says it cannot do, and how
[resources] and the older [slurm] keys are read, checked and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import jobs, queues
from rasa_gpu.errors import SettingsError
from rasa_gpu.project import BotProject
from rasa_gpu.queues import kubernetes, slurm
from rasa_gpu.resolve import resolve
from rasa_gpu.settings import Settings, load_settings

RESOURCES = '[resources]\ngpus = 2\ncpus = 4\nmemory = "16G"\ntime = "1:30:00"\n'


@pytest.fixture
def bot(tmp_path) -> Path:
    return copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)


def _request(bot: Path) -> queues.Request:
    resolved = resolve(str(bot), Settings(), "gpu")
    return queues.Request(
        resolved.project, train_args=("--cuda", "none"), rasa_args=("--augmentation", "0"), spec=resolved.spec
    )


def _directives(text: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_one_resources_table_for_both_queues(bot):
    (bot / "rasa-gpu.toml").write_text(
        '[slurm]\npartition = "gpu"\n[kubernetes]\nnamespace = "bots"\n' + RESOURCES
    )
    settings = load_settings(bot)
    assert settings.renamed_tables() is None  # nothing to move
    request = _request(bot)
    folder = jobs.jobs_dir(request.project) / "j1"

    on_slurm = queues.named("slurm", settings).prepare(request, folder)
    assert _directives(on_slurm.text) == [
        "--partition=gpu",
        "--time=1:30:00",
        "--gres=gpu:2",
        "--cpus-per-task=4",
        "--mem=16G",
    ]
    assert on_slurm.job.job_dir == folder and not folder.exists()  # prepared: nothing written

    on_kubernetes = queues.named("kubernetes", settings).prepare(request, folder)
    *_, job = yaml.safe_load_all(on_kubernetes.text)
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {
        "limits": {"nvidia.com/gpu": 2, "cpu": "4", "memory": "16G"},
        "requests": {"cpu": "4", "memory": "16G"},
    }
    assert job["spec"]["activeDeadlineSeconds"] == 5400 and job["metadata"]["namespace"] == "bots"
    assert container["args"] == ["--augmentation", "0"]  # Rasa's own arguments: the pod runs Rasa itself
    assert not queues.named("kubernetes").submits_itself and queues.named("slurm").submits_itself


def test_the_slurm_table_still_gives_the_resources_with_a_notice(bot):
    (bot / "rasa-gpu.toml").write_text('[slurm]\npartition = "gpu"\ngpus = 0\ntime = "30"\n')
    settings = load_settings(bot)
    assert (settings.resources_gpus, settings.resources_time, settings.slurm_partition) == (0, "30", "gpu")
    notice = settings.renamed_tables()
    assert notice is not None and "\n" not in notice
    assert notice.startswith("rasa-gpu.toml: [slurm] gpus, time ") and "[resources]" in notice

    result = run_cli("submit", str(bot), "--dry-run", timeout=120)
    assert result.returncode == 0, result.output
    assert _directives(result.stdout) == ["--partition=gpu", "--time=30"]  # 0 GPUs: no --gres
    [warning] = [line for line in result.stderr.splitlines() if "[resources]" in line]
    assert warning == f"warning: {notice}"

    (bot / "rasa-gpu.toml").write_text(RESOURCES)
    quiet = run_cli("submit", str(bot), "--dry-run", timeout=120)
    assert quiet.returncode == 0 and "[resources]" not in quiet.stderr, quiet.output


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[resources]\ngpus = "two"\n', "rasa-gpu.toml: [resources] gpus must be a whole number of GPUs"),
        (
            "[resources]\ncpus = 0\n",
            "rasa-gpu.toml: [resources] cpus must be a whole number of CPUs, at least 1",
        ),
        ("[resources]\nmemory = 16\n", "rasa-gpu.toml: [resources] memory must be a string (in quotes)"),
        ("[resources]\ntime = true\n", "rasa-gpu.toml: [resources] time must be a string (in quotes)"),
        ("[slurm]\ngpus = 1.5\n", "rasa-gpu.toml: [slurm] gpus must be a whole number of GPUs"),
        ('[slurm]\nmemory = "16 G"\n', "rasa-gpu.toml: [slurm] memory must be a Slurm memory size"),
        ("resources = 3\n", "rasa-gpu.toml: resources must be a table"),
        ("[resources]\ngpu = 1\n", "unknown setting(s) resources_gpu"),
        ("[slurm]\ngpus = 1\n[resources]\ngpus = 2\n", "gpus is under both [slurm] and [resources]"),
    ],
)
def test_wrong_resources_are_one_line_naming_where_they_were_written(bot, toml, needle):
    (bot / "rasa-gpu.toml").write_text(toml)
    assert_one_line_error(run_cli("submit", str(bot), "--dry-run", timeout=120), 1, needle)


def test_a_time_kubernetes_cannot_read_is_one_line(bot):
    (bot / "rasa-gpu.toml").write_text('[resources]\ntime = "soon"\n')
    result = run_cli("submit", str(bot), "--to", "kubernetes", "--dry-run", timeout=120)
    assert_one_line_error(
        result, 1, "rasa-gpu.toml: [resources] time must be a time limit as Slurm writes it"
    )
    flag = run_cli("submit", str(bot), "--to", "kubernetes", "--dry-run", "--time", "0", timeout=120)
    assert_one_line_error(flag, 1, "--time must be a time limit above zero")


@pytest.mark.parametrize(
    ("time", "seconds"),
    [
        ("30", 1800),
        ("30:15", 1815),
        ("2:00:00", 7200),
        ("1-0", 86400),
        ("1-2:30", 95400),
        ("1-00:00:10", 86410),
        ("UNLIMITED", None),
        (None, None),
    ],
)
def test_slurm_times_as_a_jobs_deadline(time, seconds):
    assert kubernetes.deadline_seconds(time) == seconds


def test_what_rasa_gpu_leaves_to_kubectl_is_one_line_naming_the_command(bot):
    queue = queues.named("kubernetes")
    project = BotProject.load(bot)
    for call, command in (
        (lambda: queue.states(["rasa-gpu-bot-1"]), "kubectl get jobs -l rasa-gpu.io/bot"),
        (lambda: queue.cancel("rasa-gpu-bot-1"), "kubectl delete job rasa-gpu-bot-1"),
        (lambda: queue.logs(bot, "rasa-gpu-bot-1"), "kubectl logs job/rasa-gpu-bot-1"),
        (lambda: queue.fetch(project, "rasa-gpu-bot-1"), "kubectl cp POD:/work/RUN/out bot/models"),
    ):
        with pytest.raises(queues.QueueUnsupported) as refused:
            call()
        assert f"`{command}" in refused.value.message and "\n" not in refused.value.message
    request = _request(bot)
    prepared = queue.prepare(request, jobs.jobs_dir(request.project) / "k1")
    with pytest.raises(queues.QueueUnsupported, match="kubectl apply -f"):
        queue.submit(prepared)


def test_a_slurm_jobs_output_and_an_unknown_queue(bot):
    queue = queues.named("slurm")
    assert (
        queue.logs(bot / ".rasa-gpu" / "jobs" / "j1", "7") == bot / ".rasa-gpu" / "jobs" / "j1" / "output.log"
    )
    assert queue.fetch(BotProject.load(bot), "7") is None  # no run of that job in the history
    with pytest.raises(SettingsError, match="no queue named 'pbs'; use one of slurm, kubernetes"):
        queues.named("pbs")
    assert isinstance(queue, slurm.SlurmQueue)


def test_jobs_model_of_a_job_without_a_model_is_one_line(bot):
    """`rasa-gpu jobs model` asks the job's queue (Queue.fetch): a job whose training recorded no model yet."""
    folder = jobs.jobs_dir(BotProject.load(bot)) / "j1"
    folder.mkdir(parents=True)
    record = {"scheduler": "slurm", "job_id": "7", "name": "j1", "submitted_at": "2026-12-06T10:00:00Z"}
    (folder / jobs.RECORD_FILE).write_text(json.dumps(record))
    result = run_cli("jobs", "model", "7", str(bot))
    assert_one_line_error(result, 1, "slurm:7 has no model in", "(yet); `rasa-gpu jobs ")
    assert result.stdout == ""
