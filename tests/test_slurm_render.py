"""The sbatch script and Slurm's answers, without a cluster (the real Slurm is in test_slurm.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rasa_gpu.runners import slurm
from rasa_gpu.settings import load_settings


def _job(tmp_path: Path, **options) -> slurm.SlurmJob:
    bot = tmp_path / "my bot"
    return slurm.SlurmJob(
        bot=bot,
        job_dir=bot / ".rasa-gpu" / "jobs" / "j1",
        options=slurm.SlurmOptions(**options),
        train_args=("--cuda", "none", "--", "--augmentation", "0"),
        python="/shared/venv/bin/python",
    )


def test_the_script_asks_for_the_gpus_and_hands_their_ids_to_train(tmp_path):
    job = _job(tmp_path, partition="gpu", account="lab", time="30", gpus=2, cpus=4, memory="16G")
    text = slurm.render(job)
    for directive in (
        "--partition=gpu",
        "--account=lab",
        "--time=30",
        "--gres=gpu:2",
        "--cpus-per-task=4",
        "--mem=16G",
        f"--output={job.output_path}",
        "--job-name=rasa-gpu-my bot",
    ):
        assert f"#SBATCH {directive}\n" in text, directive
    assert text.rstrip().endswith(
        f"exec /shared/venv/bin/python -m rasa_gpu train '{job.bot}' --no-wait --job \"slurm:$SLURM_JOB_ID\" "
        '--gpus "$CUDA_VISIBLE_DEVICES" '
        "--cuda none -- --augmentation 0"
    )
    assert f"if [ ! -e '{job.job_dir / slurm.SUBMITTED_MARK}' ]" in text  # the shared-filesystem check
    assert "\nexport PYTHONUNBUFFERED=1\n" in text  # the log file gets each line as it is printed
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0  # valid bash


def test_a_cpu_job_asks_for_no_gres_and_trains_with_gpu_off(tmp_path):
    text = slurm.render(_job(tmp_path, gpus=0))
    assert "--gres" not in text and " --gpu off " in text and "--partition" not in text


def test_the_slurm_table_of_the_settings(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text('[slurm]\npartition = "gpu"\ntime = "1:00:00"\ngpus = 2\n')
    settings = load_settings(tmp_path)
    assert (settings.slurm_partition, settings.slurm_time, settings.slurm_gpus) == ("gpu", "1:00:00", 2)


def test_slurms_refusals_become_one_line_each():
    bad_partition = slurm._explain(
        "sbatch: error: Batch job submission failed: Invalid partition name specified",
        slurm.SlurmOptions("nope"),
    )
    assert "no partition 'nope'" in bad_partition and "sinfo" in bad_partition
    down = slurm._explain(
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
        slurm.SlurmOptions(),
    )
    assert "controller does not answer" in down and "\n" not in down


def test_squeue_json_states_of_two_slurm_generations():
    old = slurm._from_json(
        {
            "job_id": 7,
            "job_state": "PENDING",
            "state_reason": "Resources",
            "nodes": "",
            "submit_time": 100,
            "start_time": 0,
            "end_time": 0,
            "exit_code": 0,
        }
    )
    assert (old.state, old.reason, old.submitted, old.started) == ("pending", "Resources", 100, None)
    new = slurm._from_json(
        {
            "job_id": 8,
            "job_state": ["COMPLETED"],
            "nodes": "n1",
            "state_reason": "None",
            "submit_time": {"set": True, "number": 100},
            "start_time": {"set": True, "number": 101},
            "exit_code": {"return_code": {"set": True, "number": 0}},
        }
    )
    assert (new.state, new.node, new.exit_code, new.reason) == ("done", "n1", 0, "")


def test_squeue_json_of_slurm_22_and_23_is_read():
    """squeue --json as Slurm 22 prints it (plain numbers) and as Slurm 23+ does ({"set", "number"}, state lists)."""
    old = slurm._from_json(
        {
            "job_id": 7,
            "job_state": "RUNNING",
            "nodes": "n1",
            "gres_detail": ["gpu:fake:1(IDX:0)"],
            "submit_time": 100,
            "start_time": 104,
            "end_time": 0,
            "exit_code": 0,
            "state_reason": "None",
        }
    )
    assert (old.state, old.node, old.gpus, old.submitted, old.started, old.ended, old.reason) == (
        "running",
        "n1",
        "gpu:fake:1(IDX:0)",
        100,
        104,
        None,
        "",
    )
    new = slurm._from_json(
        {
            "job_id": 8,
            "job_state": ["PENDING"],
            "state_reason": "Resources",
            "gres_detail": [],
            "tres_per_node": "gres:gpu:2",
            "submit_time": {"set": True, "number": 200},
            "start_time": {"set": False, "number": 0},
            "exit_code": {"status": ["PENDING"], "return_code": {"set": False, "number": 0}},
        }
    )
    assert (new.state, new.gpus, new.submitted, new.started, new.exit_code, new.reason) == (
        "pending",
        "gpu:2",
        200,
        None,
        None,
        "Resources",
    )
