"""The sbatch script and Slurm's answers, without a cluster (the real Slurm is in test_slurm.py)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import jobs
from rasa_gpu.errors import SettingsError
from rasa_gpu.project import BotProject
from rasa_gpu.queues import slurm
from rasa_gpu.settings import Settings, load_settings

SECRET = "s3cret-token"
INDEX_URL = f"https://user:{SECRET}@index.example.com/simple"


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
    assert sbatch_directives(text) == [
        "--partition=gpu",
        "--account=lab",
        "--time=30",
        "--gres=gpu:2",
        "--cpus-per-task=4",
        "--mem=16G",
    ]
    # The bot's name and paths are sbatch's arguments, never #SBATCH lines (a space would split one).
    assert job.sbatch_args() == [
        "--ignore-pbs",
        "--job-name=rasa-gpu-my_bot",
        f"--chdir={job.bot}",
        f"--output={job.output_path}",
    ]
    assert f"\nbot='{job.bot}'\n" in text and f"\njob_dir='{job.job_dir}'\n" in text
    assert text.rstrip().endswith(
        'exec "$python" -m rasa_gpu train "$bot" --no-wait --job "slurm:$SLURM_JOB_ID" '
        '--gpus "$CUDA_VISIBLE_DEVICES" '
        "--cuda none -- --augmentation 0"
    )
    assert f'if [ ! -e "$job_dir/{slurm.SUBMITTED_MARK}" ]' in text  # the shared-filesystem check
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


# ---- a bot folder and settings from someone else (issue 21) ------------------------------------------------------


def _sbatch_arguments(rest: str, quotes: str) -> list[str]:
    """One #SBATCH line's arguments as sbatch's _get_argument (src/sbatch/opt.c) takes them: whitespace separates,
    a backslash escapes the next character, an unquoted `#` ends the line, a quote groups (Slurm 18+: ' and ";
    older ones: " only)."""
    arguments, i = [], 0
    while True:
        while i < len(rest) and rest[i] in " \t\v\f\r":
            i += 1
        if i >= len(rest):
            return arguments
        argument, quote, escaped = "", "", False
        while i < len(rest) and (quote or rest[i] not in " \t\v\f\r"):
            char = rest[i]
            i += 1
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
                continue
            elif quote:
                if char == quote:
                    quote = ""
                    continue
            elif char in quotes:
                quote = char
                continue
            elif char == "#":
                return [*arguments, argument] if argument else arguments
            argument += char
        assert not quote, f"sbatch: unmatched {quote} in #SBATCH{rest}"
        arguments.append(argument)


def sbatch_directives(script: str, quotes: str = "'\"") -> list[str]:
    """The options sbatch reads from a script, as _opt_batch_script does: lines end at a newline only; `#SBATCH`
    at the start of a line is a directive; the first line that is neither blank nor a comment ends them. A line
    holding "hetjob" or "packjob" would start another job's directives: none may."""
    found: list[str] = []
    for line in script.split("\n"):
        if line.startswith("#SBATCH"):
            assert not re.search("hetjob|packjob", line, re.IGNORECASE), line
            found += _sbatch_arguments(line[len("#SBATCH") :], quotes)
        elif line.strip() and not line.strip().startswith("#"):
            break
    return found


HOSTILE_NAMES = ["bot $(touch PWNED)", 'it\'s `touch PWNED` "x" #1; 100%j $HOME']


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_folder_runs_nothing_on_the_node_and_breaks_no_sbatch_line(tmp_path, name):
    bot = tmp_path / name
    bot.mkdir()
    # A newline in [slurm] partition would put `touch PWNED2` before `set -euo pipefail`: refused, in one line.
    (bot / "rasa-gpu.toml").write_text('[slurm]\npartition = "gpu\\ntouch PWNED2"\n')
    with pytest.raises(SettingsError) as refused:
        slurm.SlurmOptions.from_settings(load_settings(bot))
    message = str(refused.value)
    assert message.startswith("rasa-gpu.toml: [slurm] partition") and "line break" in message, message
    assert "\n" not in message
    job = slurm.SlurmJob(
        bot=bot,
        job_dir=bot / ".rasa-gpu" / "jobs" / "j1",  # never made: the node "cannot see" the bot folder
        options=slurm.SlurmOptions(partition="gpu\ntouch PWNED2"),
        python=sys.executable,
    )
    with pytest.raises(SettingsError, match=r"^\[slurm\] partition must be a Slurm partition name"):
        slurm.render(job)  # whoever builds the options, the script never carries it

    job = slurm.SlurmJob(
        bot=bot,
        job_dir=job.job_dir,
        options=slurm.SlurmOptions(partition="gpu", account="lab", time="1:00:00", cpus=2, memory="16G"),
        train_args=("--", "--augmentation", "0"),
        python=sys.executable,
    )
    text = slurm.render(job)
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    # sbatch's reading of the script, by the parsing of today's releases and of old ones alike: only the
    # settings, each one whole; nothing of the folder's name before the first command.
    wanted = [
        "--partition=gpu",
        "--account=lab",
        "--time=1:00:00",
        "--gres=gpu:1",
        "--cpus-per-task=2",
        "--mem=16G",
    ]
    assert sbatch_directives(text) == wanted == sbatch_directives(text, quotes='"')
    header = text.split("\nset -euo pipefail\n")[0]
    assert "PWNED" not in header and "\n#PBS" not in text and "\n#BSUB" not in text
    # The paths are whole argv elements of sbatch (a `%` doubled: Slurm replaces %j in an output file's name).
    assert job.sbatch_args()[2:] == [f"--chdir={bot}", f"--output={str(job.output_path).replace('%', '%%')}"]
    assert re.fullmatch(r"--job-name=rasa-gpu-[A-Za-z0-9._-]+", job.sbatch_args()[1])

    # Run by bash as the node would, in the folder above the bot: the "not on this node" branch, which printed
    # the folder's name inside double quotes, now prints it as it is and runs nothing.
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    ran = subprocess.run(
        ["bash", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")},
        timeout=30,
    )
    assert ran.returncode == 2, ran
    assert ran.stderr == (
        f"error: the bot folder {bot} is not on this node's filesystem (put it on the cluster's shared filesystem)\n"
    )
    assert not list(tmp_path.rglob("PWNED*")) and not (Path.cwd() / "PWNED").exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("bot\n#PBS -e /tmp/evil\n#SBATCH --partition=evil", "line break"),
        ("bot\rx", "line break"),
        ("bot\\x", "backslash"),
    ],
)
def test_a_folder_name_that_no_script_line_can_carry_is_refused_in_one_line(tmp_path, name, why):
    job = slurm.SlurmJob(bot=tmp_path / name, job_dir=tmp_path / name / "j", options=slurm.SlurmOptions())
    with pytest.raises(SettingsError) as refused:
        slurm.render(job)
    assert (
        "\n" not in str(refused.value)
        and why in str(refused.value)
        and "rename the folder" in str(refused.value)
    )


@pytest.mark.parametrize("key", ["partition", "account", "time", "memory"])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("gpu\ntouch PWNED", "line break"),
        ("gpu\r", "line break"),
        ("gpu\x00", "line break"),
        ("gpu\t2", "line break"),
        ("gpu\u2028x", "line break"),
        ("gpu a", "of letters, digits and . _ - : , only"),
        ("gpu'", "of letters, digits and . _ - : , only"),
        ('gpu"', "of letters, digits and . _ - : , only"),
        ("gpu#2", "of letters, digits and . _ - : , only"),
        ("gpu\\", "of letters, digits and . _ - : , only"),
        ("$(touch PWNED)", "of letters, digits and . _ - : , only"),
        ("a;b", "of letters, digits and . _ - : , only"),
        ("gpü", "of letters, digits and . _ - : , only"),
        ("my-hetjob", "sbatch may read as the start of another job"),
        ("PackJob1", "sbatch may read as the start of another job"),
    ],
)
def test_a_setting_that_an_sbatch_line_cannot_carry_is_refused_naming_it(key, value, why):
    with pytest.raises(SettingsError) as refused:  # by settings.py's one-line rule, or by the sbatch alphabet
        table = "resources" if key in ("time", "gpus", "cpus", "memory") else "slurm"
        slurm.SlurmOptions.from_settings(Settings().merged(Settings(**{f"{table}_{key}": value})))
    message = str(refused.value)
    assert message.startswith(f"--{key} ") and why in message, message
    assert not re.search(r"[\x00-\x1f\u2028]", message)  # one line, whatever the value held
    # Whoever builds the options, the script never carries the value (the same rule, checked again by render).
    with pytest.raises(SettingsError):
        slurm.render(slurm.SlurmJob(Path("/bots/b"), Path("/bots/b/j"), slurm.SlurmOptions(**{key: value})))


@pytest.mark.parametrize(
    "options",
    [{"gpus": -1}, {"gpus": True}, {"gpus": "2"}, {"cpus": 0}, {"cpus": "4"}, {"partition": 5}],
)
def test_gpus_and_cpus_are_whole_numbers_and_names_are_text(options):
    with pytest.raises(SettingsError, match=r"^\[slurm\] (gpus|cpus|partition) must be"):
        slurm.check_options(slurm.SlurmOptions(**options))


def test_what_slurm_takes_passes_as_it_is():
    fine = slurm.SlurmOptions("gpu,gpu-a100", "lab_1", "2-00:00:00", 0, None, "16G")
    assert slurm.check_options(fine) is fine
    assert slurm.check_options(slurm.SlurmOptions(time="UNLIMITED", memory="16000M")).time == "UNLIMITED"


def test_a_folder_named_like_scontrols_fields_does_not_tell_its_jobs_state():
    answer = (
        "JobId=5 JobName=rasa-gpu-x UserId=root(0) JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 "
        "NodeList=n1 WorkDir=/bots/x JobState=COMPLETED ExitCode=0:0 Reason=None StdOut=/bots/x JobState=COMPLETED"
    )
    state = slurm._parse_scontrol("5", answer)
    assert (state.state, state.exit_code, state.reason, state.node) == ("failed", 1, "NonZeroExitCode", "n1")


# ---- credentials: in sbatch's environment, never in the script or a command line ----------------------------------


def _recorder(path: Path) -> str:
    """A stand-in for the node's Python that records what it was given: its arguments, one a line, and its
    environment (this is what the job's rasa-gpu would see; it stands for nothing the test checks of rasa-gpu)."""
    path.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\nenv > "$(dirname "$0")/env"\npwd > "$(dirname "$0")/cwd"\n'
    )
    path.chmod(0o755)
    return str(path)


def test_the_index_login_reaches_the_nodes_train_through_its_environment_only(tmp_path):
    bot = tmp_path / "bot $(touch PWNED)"
    job = slurm.SlurmJob(
        bot=bot,
        job_dir=bot / ".rasa-gpu" / "jobs" / "j1",
        options=slurm.SlurmOptions(gpus=0),
        train_args=("--cuda", "none"),
        python=_recorder(tmp_path / "python"),
        environment={"RASA_GPU_PIP_INDEX_URL": INDEX_URL},
    )
    text = slurm.render(job)
    assert SECRET not in text and SECRET not in " ".join(job.sbatch_args()) and SECRET not in repr(job)
    job.job_dir.mkdir(parents=True)
    (job.job_dir / slurm.SUBMITTED_MARK).write_text("")
    job.script_path.write_text(text)
    base = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "7"}

    def node(**environment: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(job.script_path)],
            cwd=bot,
            capture_output=True,
            text=True,
            env={**base, **environment},
            timeout=30,
        )

    lost = node()  # sbatch told not to pass the environment (SBATCH_EXPORT=NONE): one line, not a PyPI build
    assert lost.returncode == 2 and lost.stderr.startswith(
        "error: RASA_GPU_PIP_INDEX_URL did not reach this node"
    )
    assert not (tmp_path / "argv").exists()
    given = node(RASA_GPU_PIP_INDEX_URL=INDEX_URL)
    assert given.returncode == 0, given.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["-m", "rasa_gpu", "train", str(bot), "--no-wait", "--job", "slurm:7", "--gpu", "off"] + [
        "--cuda",
        "none",
    ]
    assert f"RASA_GPU_PIP_INDEX_URL={INDEX_URL}" in (tmp_path / "env").read_text().splitlines()
    assert not list(tmp_path.rglob("PWNED*"))


def test_submit_gives_sbatch_the_login_in_its_environment_and_writes_the_script_for_the_owner_only(
    tmp_path, monkeypatch
):
    """sbatch and squeue are stand-ins here that record what they get; the real Slurm is in test_slurm.py."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "squeue").write_text("#!/bin/sh\nexit 0\n")
    (tools / "sbatch").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\nenv > "$(dirname "$0")/env"\necho 42\n'
    )
    for tool in tools.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    project = BotProject.load(copy_bot(EXAMPLE_BOT, tmp_path / "bot 100%j $(touch PWNED)", owner=None))
    record, job = jobs.submit_slurm(
        project, slurm.SlurmOptions(gpus=0), ("--cuda", "none"), {"RASA_GPU_PIP_INDEX_URL": INDEX_URL}
    )
    assert record.job_id == "42"
    assert stat.S_IMODE(job.script_path.stat().st_mode) == 0o600  # the owner's alone, on a shared filesystem
    assert SECRET not in job.script_path.read_text()
    argv = (tools / "argv").read_text().splitlines()
    assert argv == ["--parsable", *job.sbatch_args(), str(job.script_path)] and SECRET not in "".join(argv)
    assert f"--output={project.root}/.rasa-gpu/jobs/{record.name}/output.log".replace("%", "%%") in argv
    assert f"RASA_GPU_PIP_INDEX_URL={INDEX_URL}" in (tools / "env").read_text().splitlines()
    assert not list(tmp_path.rglob("PWNED*"))


def test_submit_dry_run_names_the_login_but_never_writes_it(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    shown = run_cli("submit", str(bot), "--dry-run", "--pip-index-url", INDEX_URL, "--gpu-count", "0")
    assert shown.returncode == 0, shown.output
    assert SECRET not in shown.output and "--pip-index-url" not in shown.stdout
    assert 'if [ -z "${RASA_GPU_PIP_INDEX_URL:-}" ]; then' in shown.stdout
    from_env = run_cli("submit", str(bot), "--dry-run", env={"RASA_GPU_PIP_INDEX_URL": INDEX_URL})
    assert (
        from_env.returncode == 0
        and SECRET not in from_env.output
        and "RASA_GPU_PIP_INDEX_URL" in from_env.stdout
    )
    refused = run_cli("submit", str(bot), "--dry-run", "--partition", "gpu\ntouch PWNED")
    assert_one_line_error(refused, 1, "--partition", "line break")
    assert not list(tmp_path.rglob("PWNED*"))
