"""Queued trainings on a real Slurm (issue 12): slurmctld, one slurmd with a fake GPU, munge (scripts/slurm.sh),
and the real Docker engine on the node (this machine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import (
    BOT_UID,
    EXAMPLE_BOT,
    assert_one_line_error,
    copy_bot,
    intent_of,
    leftover_containers,
    models,
    require_docker,
    run_cli,
    send_and_wait,
    start_cli,
    wait_for_line,
)

from rasa_gpu.project import BotProject
from rasa_gpu.queues import slurm

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm_cluster(docker_client) -> None:
    if os.environ.get("RASA_GPU_TEST_SLURM") != "1" or shutil.which("sbatch") is None:
        message = "no Slurm cluster (scripts/slurm.sh starts one; then export RASA_GPU_TEST_SLURM=1)"
        if require_docker():
            pytest.fail(message)
        pytest.skip(message)


def _jobs(bot: Path) -> dict[str, dict]:
    result = run_cli("jobs", str(bot), "--json")
    assert result.returncode == 0, result.output
    return {row["job_id"]: row for row in json.loads(result.stdout)}


def _submit(bot: Path, *args: str) -> str:
    result = run_cli("submit", str(bot), "--to", "slurm", "--force", *args)
    assert result.returncode == 0, result.output
    return result.stdout.strip().split(":")[-1]


def _node_of(job_id: str) -> str:
    shown = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True, check=True
    )
    return re.search(r"\bNodeList=(\S+)", shown.stdout).group(1)


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never: {what}")


def test_submit_wait_trains_on_the_node_and_the_model_is_the_owners(
    slurm_cluster, bot_copy, docker_client, built_image
):
    before = set(models(bot_copy))
    # An engine elsewhere in the bot's settings is for trainings started here: the node trains on its own engine.
    (bot_copy / "rasa-gpu.toml").write_text('host = "ssh://nobody@gpu-box.invalid"\n')
    result = run_cli("submit", str(bot_copy), "--to", "slurm", "--force", "--wait")
    assert result.returncode == 0, result.output
    assert "Model ready" in result.stderr  # the node's `rasa-gpu train`, followed live
    [model] = set(models(bot_copy)) - before
    assert model.stat().st_uid == BOT_UID
    for path in (bot_copy / ".rasa-gpu" / "jobs").rglob("*"):
        assert path.stat().st_uid == BOT_UID, path  # the script, the record and Slurm's own output file
    assert intent_of(docker_client, built_image, bot_copy, model, "hello there") == "greet"
    job_id = result.stdout.strip().split(":")[-1]
    assert _jobs(bot_copy)[job_id]["state"] == "done"
    # In the run history like a local training, with its job, its queue wait and the node that ran it.
    newest = json.loads(run_cli("runs", str(bot_copy), "--json").stdout)[0]
    assert newest["job"] == f"slurm:{job_id}" and newest["status"] == "ok", newest
    assert newest["queued_seconds"] is not None and newest["queued_seconds"] >= 0, newest
    assert newest["host"] == _node_of(job_id) and newest["device"], newest


def test_two_jobs_on_one_gpu_queue_and_both_finish(slurm_cluster, bot_copy, docker_client):
    first, second = _submit(bot_copy), _submit(bot_copy)
    # The scheduler gives a pending job its reason on its next pass (Resources: the one GPU is taken).
    _until(
        lambda: (
            (rows := _jobs(bot_copy))[first]["state"] == "running"
            and rows[first]["gpus"].startswith("gpu:")  # the one GPU the first job holds
            and rows[second]["state"] == "pending"
            and rows[second]["reason"] in ("Resources", "Priority")
        ),
        120,
        "the first job running while the second waits for the GPU",
    )
    _until(lambda: all(row["state"] == "done" for row in _jobs(bot_copy).values()), 900, "both jobs done")
    assert leftover_containers(docker_client, bot_copy) == []


def test_cancel_of_a_running_job_leaves_no_container_and_no_partial_model(
    slurm_cluster, bot_copy, docker_client
):
    before = sorted(models(bot_copy))
    job = _submit(bot_copy)
    _until(lambda: leftover_containers(docker_client, bot_copy), 300, "the job's training container")
    result = run_cli("jobs", "cancel", job, str(bot_copy))
    assert result.returncode == 0, result.output
    _until(lambda: _jobs(bot_copy)[job]["state"] == "cancelled", 120, "the job cancelled")
    _until(lambda: not leftover_containers(docker_client, bot_copy), 60, "the container gone")
    assert sorted(models(bot_copy)) == before
    assert not list((bot_copy / ".rasa-gpu" / "tmp").glob("*"))


def test_a_failing_training_shows_rasas_cause_in_jobs_and_history(slurm_cluster, bot_copy):
    config = bot_copy / "config.yml"
    config.write_text(config.read_text().replace("DIETClassifier", "NoSuchClassifier", 1))
    result = run_cli("submit", str(bot_copy), "--to", "slurm", "--force", "--wait")
    line = assert_one_line_error(result, None, "NoSuchClassifier")
    job_id = result.stdout.strip().split(":")[-1]
    row = _jobs(bot_copy)[job_id]
    assert row["state"] == "failed" and "NoSuchClassifier" in row["reason"], (row, line)
    runs = run_cli("runs", str(bot_copy), "--json")
    newest = json.loads(runs.stdout)[0]
    assert newest["status"] == "failed" and "NoSuchClassifier" in newest["error"], newest
    assert newest["job"] == f"slurm:{job_id}", newest


def test_no_slurm_no_controller_and_no_partition_are_one_line_each(slurm_cluster, bot_copy, tmp_path):
    no_sbatch = run_cli("submit", str(bot_copy), env={"PATH": str(Path(sys.executable).parent)})
    assert_one_line_error(no_sbatch, 1, "Slurm is not installed here")
    conf = Path("/etc/slurm/slurm.conf").read_text()
    bad = tmp_path / "slurm.conf"
    bad.write_text(conf + "\nSlurmctldPort=6999\n")
    down = run_cli("submit", str(bot_copy), env={"SLURM_CONF": str(bad)})
    assert_one_line_error(down, 1, "Slurm controller does not answer")
    nope = run_cli("submit", str(bot_copy), "--partition", "nope")
    assert_one_line_error(nope, 1, "Slurm has no partition 'nope'")
    assert not any((bot_copy / ".rasa-gpu" / "jobs").glob("*/job.json"))  # nothing was recorded as submitted


def test_ctrl_c_while_following_leaves_the_job_queued_and_says_how_to_end_it(
    slurm_cluster, bot_copy, docker_client
):
    proc = start_cli("submit", str(bot_copy), "--to", "slurm", "--force", "--wait")
    wait_for_line(proc, "submitted")
    code, _ = send_and_wait(proc, signal.SIGINT)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 130, stderr
    job = proc.stdout.read().strip().split(":")[-1] if proc.stdout else ""
    assert f"jobs cancel {job}" in stderr and "goes on in Slurm's queue" in stderr, stderr
    assert _jobs(bot_copy)[job]["state"] in ("pending", "running", "done")  # the job was not touched
    assert run_cli("jobs", "cancel", job, str(bot_copy)).returncode == 0
    _until(lambda: not leftover_containers(docker_client, bot_copy), 120, "the container gone")


def test_a_hostile_folder_reaches_the_node_whole_and_the_login_only_in_its_environment(
    slurm_cluster, tmp_path
):
    """The real sbatch and slurmd with a bot folder whose name holds a space, a `$(...)`, a quote and a `%j`: the
    job runs in that folder, writes its output there and runs nothing of its name; the index login is in the job's
    environment, not in the script or the node's command line. The node's Python is a stand-in that records what it
    got (a training is what the tests above run)."""
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot $(touch PWNED) it's 100%j", owner=None)
    project = BotProject.load(bot)
    secret = "s3cret-token"
    node_python = tmp_path / "node-python"
    node_python.write_text(
        '#!/bin/sh\nd="$(dirname "$0")"\nprintf "%s\\n" "$@" > "$d/argv"\nenv > "$d/env"\npwd > "$d/cwd"\n'
    )
    node_python.chmod(0o755)
    job = slurm.SlurmJob(
        bot=project.root,
        job_dir=project.state_dir / "jobs" / "hostile",
        options=slurm.SlurmOptions(gpus=0, time="5"),
        python=str(node_python),
        environment={"RASA_GPU_PIP_INDEX_URL": f"https://user:{secret}@index.example.com/simple"},
    )
    project.write_owned(job.script_path, slurm.render(job), mode=0o600)
    project.write_owned(job.job_dir / slurm.SUBMITTED_MARK, "")
    job_id = slurm.submit(job)
    ended = _until(
        lambda: (
            (s := slurm.states([job_id]).get(job_id)) and s.state in ("done", "failed", "cancelled") and s
        ),
        120,
        "the job ended",
    )
    assert ended.state == "done", (ended, job.output_path.read_text() if job.output_path.exists() else "")
    assert (
        job.output_path.is_file()
    )  # Slurm wrote its output where rasa-gpu reads it: the `%j` taken as it is
    assert (tmp_path / "cwd").read_text().strip() == str(project.root)  # --chdir, whole
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:4] == ["-m", "rasa_gpu", "train", str(project.root)] and secret not in "".join(argv)
    assert f"RASA_GPU_PIP_INDEX_URL=https://user:{secret}@index.example.com/simple" in (
        (tmp_path / "env").read_text().splitlines()
    )
    assert (
        secret not in job.script_path.read_text() and oct(job.script_path.stat().st_mode & 0o777) == "0o600"
    )
    shown = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"\bJobName=rasa-gpu-[A-Za-z0-9._-]+ ", shown) and secret not in shown
    assert not list(tmp_path.rglob("PWNED*")) and not (Path.cwd() / "PWNED").exists()


def test_the_queue_interface_finds_the_jobs_state_output_and_model(slurm_cluster, bot_copy):
    """What `submit` and `jobs` ask the queue, asked directly: the state, the output file and the model a job made."""
    from rasa_gpu import jobs, queues

    before = set(models(bot_copy))
    result = run_cli("submit", str(bot_copy), "--to", "slurm", "--force", "--wait")
    assert result.returncode == 0, result.output
    job_id = result.stdout.strip().split(":")[-1]
    [model] = set(models(bot_copy)) - before
    project = BotProject.load(bot_copy)
    queue = queues.named("slurm")
    [record] = [r for r in jobs.records(project) if r.job_id == job_id]
    assert queue.states([job_id])[job_id].state == "done"
    assert "Model ready" in queue.logs(jobs.jobs_dir(project) / record.name, job_id).read_text()
    assert queue.fetch(project, job_id).resolve() == model.resolve()
    assert queue.fetch(project, "999999") is None
    # and through the CLI
    shown = run_cli("jobs", "model", job_id, str(bot_copy))
    assert shown.returncode == 0 and Path(shown.stdout.strip()).resolve() == model.resolve(), shown.output
    assert_one_line_error(run_cli("jobs", "model", "999999", str(bot_copy)), 1, "no job 999999")
