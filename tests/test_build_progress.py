"""An image build as a person follows it: Docker's, pip's, uv's and debootstrap's lines read into stages, the raw
lines kept in a log file under the bot's .rasa-gpu/logs (or the user's state folder), an error naming that file."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import BOT_UID, EXAMPLE_BOT, copy_bot

from rasa_gpu import base_image, build_log
from rasa_gpu import cli as cli_mod
from rasa_gpu.build_progress import CHECK_TITLE, DebootstrapParser, DockerBuildParser, Installs, step_title
from rasa_gpu.cli import _common
from rasa_gpu.engine import Engine, WholeLines
from rasa_gpu.errors import BuildError, ProjectError, RasaGpuError
from rasa_gpu.events import (
    BuildFinished,
    BuildLogOpened,
    BuildNote,
    BuildOutput,
    BuildProgress,
    BuildStage,
    BuildStageDone,
    BuildStarted,
)
from rasa_gpu.project import BotProject

LOCK_RUN = (
    'RUN py="$(python3 -c \'import sys; print("%d.%d" % sys.version_info[:2])\')"  && '
    'lock="/tmp/rasa-gpu/locks/py$py.txt"  && if [ -f "$lock" ]; then       echo "rasa-gpu: installing the locked '
    'set of Rasa 3.6.21 for Python $py (hashes required)"       && python3 -m pip install --require-hashes '
    "--no-deps --target /tmp/rasa-gpu/uv -r /tmp/rasa-gpu/locks/installer.txt       && UV_SYSTEM_CERTS=1 "
    "UV_NO_CACHE=1 /tmp/rasa-gpu/uv/bin/uv pip install --python python3 --system --break-system-packages "
    '--no-deps --require-hashes --compile-bytecode -r "$lock"  && rm -rf /tmp/rasa-gpu/uv;     else       echo '
    "\"rasa-gpu: no locked set of Rasa 3.6.21 for Python $py (locked: 3.9): pip resolves today's versions, not "
    'reproducible"       && python3 -m pip install "rasa==3.6.21" "tensorflow==2.12.0";     fi'
)
CUDA_RUN = (
    "RUN python3 -m pip install --require-hashes --no-deps --target /tmp/rasa-gpu/uv -r "
    "/tmp/rasa-gpu/cuda/installer.txt  && UV_SYSTEM_CERTS=1 UV_NO_CACHE=1 /tmp/rasa-gpu/uv/bin/uv pip install "
    '--python python3 --system --break-system-packages --no-deps --require-hashes -r "/tmp/rasa-gpu/cuda/lock.txt"'
    '  && rm -rf /tmp/rasa-gpu/uv  && python3 -c "import nvidia" > /etc/ld.so.conf.d/rasa-gpu-cuda.conf  && ldconfig'
)
UV_INSTALL = [
    "Collecting uv==0.13.9 (from -r /tmp/rasa-gpu/cuda/installer.txt (line 2))",
    "  Downloading uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl (17.6 MB)",
    "     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 17.6/17.6 MB 79.6 MB/s eta 0:00:00",
    "Installing collected packages: uv",
    "Successfully installed uv-0.13.9",
    "\x1b[91mWARNING: Running pip as the 'root' user can result in broken permissions",
    "\x1b[0mUsing Python 3.9.2 environment at: /usr",
]
#: A whole build of the Rasa stage and the bot stage, as Docker's legacy builder, pip and uv print it (taken from a
#: real build here; the uv lines whole, as engine.build now hands them on).
BUILD = [
    "building rasa-gpu/bot:3.6.21-gpu-06f52c63e206 (the bot's requirements on the Rasa 3.6.21 stage)",
    "Step 1/17 : FROM rasa-gpu/base:bullseye AS rasa",
    " ---> c3c068d3d337",
    "Step 2/17 : ENV PIP_NO_CACHE_DIR=1     PIP_BREAK_SYSTEM_PACKAGES=1",
    " ---> Using cache",
    " ---> 480ab42fd6b2",
    'Step 3/17 : RUN python3 -m pip install "pip==24.0"',
    " ---> Using cache",
    " ---> 5778c338f8eb",
    "Step 4/17 : COPY cuda /tmp/rasa-gpu/cuda",
    " ---> 614cd867fa03",
    f"Step 5/17 : {CUDA_RUN}",
    " ---> Running in 13d5867da743",
    *UV_INSTALL,
    "Resolved 8 packages in 368ms",
    "Downloading nvidia-cuda-cupti-cu11 (12.5MiB)",
    "Downloading nvidia-cudnn-cu11 (682.6MiB)",
    " Downloaded nvidia-cuda-cupti-cu11",
    " Downloaded nvidia-cudnn-cu11",
    "Prepared 8 packages in 1m 32s",
    "Installed 8 packages in 120ms",
    " + nvidia-cublas-cu11==11.11.3.6",
    " + nvidia-cudnn-cu11==8.6.0.163",
    "Removing intermediate container 13d5867da743",
    " ---> 54fc4bb5e957",
    "Step 6/17 : COPY locks /tmp/rasa-gpu/locks",
    " ---> e1b7d708dafe",
    f"Step 7/17 : {LOCK_RUN}",
    " ---> Running in 86793ddc7b7b",
    "rasa-gpu: installing the locked set of Rasa 3.6.21 for Python 3.9 (hashes required)",
    *UV_INSTALL,
    "Resolved 161 packages in 5.89s",
    "Downloading tensorflow (560.2MiB)",
    " Downloaded tensorflow",
    "Installed 161 packages in 4.1s",
    "Bytecode compiled 12034 files in 40.2s",
    " + absl-py==1.4.0",
    "rasa",
    "3.6.21",
    "Removing intermediate container 86793ddc7b7b",
    " ---> 787e065b6b56",
    "Step 12/17 : FROM rasa AS bot",
    " ---> 314a8ebbd861",
    "Step 15/17 : RUN python3 -m pip install -r /tmp/rasa-gpu/bot-requirements.txt -c /tmp/rasa-gpu/bot-constraints.txt",
    " ---> Running in c718ba3be27f",
    "Collecting more-itertools==10.5.0 (from -r /tmp/rasa-gpu/bot-requirements.txt (line 1))",
    "  Downloading more_itertools-10.5.0-py3-none-any.whl (60 kB)",
    "Installing collected packages: more-itertools",
    "Successfully installed more-itertools-10.5.0",
    "Removing intermediate container c718ba3be27f",
    " ---> 7bc7af861989",
    "Step 16/17 : LABEL io.rasa-gpu.rasa=3.6.21",
    " ---> Running in feacbfd4b64d",
    "Removing intermediate container feacbfd4b64d",
    " ---> 5be1cac46896",
    "Successfully built 91df94f7dff7",
    "Successfully tagged rasa-gpu/candidate:bot-3.6.21-gpu-06f52c63e206-a08c805c",
    "training a tiny bot in the new image before it is tagged: trained and loaded in 35 s",
    "CUDA check of rasa-gpu/bot:3.6.21-gpu-06f52c63e206: GPU-ready: TensorFlow built with CUDA 11.8, cuDNN 8",
]
#: debootstrap's lines for bullseye, a few of each phase (from a real `rasa-gpu base-image` here).
DEBOOTSTRAP = [
    "building rasa-gpu/base:bullseye (Debian bullseye with Python 3.9: debootstrap, then docker import)",
    "I: Target architecture can be executed",
    "I: Retrieving InRelease",
    "I: Checking Release signature",
    "I: Valid Release signature (key id A4285295FC7B1A81600062A9605C66F00D6C9793)",
    "I: Retrieving Packages",
    "I: Validating Packages",
    "I: Resolving dependencies of required packages...",
    "I: Checking component main on http://deb.debian.org/debian...",
    "I: Retrieving adduser 3.118+deb11u1",
    "I: Validating adduser 3.118+deb11u1",
    "I: Retrieving apt 2.2.4",
    "I: Validating apt 2.2.4",
    "I: Retrieving bash 5.1-2+deb11u1",
    "I: Validating bash 5.1-2+deb11u1",
    "I: Chosen extractor for .deb packages: dpkg-deb",
    "I: Extracting adduser...",
    "I: Extracting bash...",
    "I: Installing core packages...",
    "I: Unpacking required packages...",
    "I: Unpacking adduser...",
    "I: Unpacking bash...",
    "I: Configuring required packages...",
    "I: Configuring bash...",
    "I: Unpacking the base system...",
    "I: Unpacking apt...",
    "I: Configuring the base system...",
    "I: Configuring apt...",
    "I: Base system installed successfully.",
    "importing rasa-gpu/base:bullseye",
]


class Clock:
    """Ten seconds pass between two readings."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10
        return self.now


def parse(parser, lines):
    events = []
    for line in lines:
        events += parser.feed(line)
    return events + parser.close()


# ---- reading the lines (pure) ----------------------------------------------------------------------------------------


def test_a_build_reads_as_its_image_its_running_steps_and_the_check():
    events = parse(DockerBuildParser(Clock()), BUILD)
    assert [e for e in events if not isinstance(e, BuildProgress)] == [
        BuildStarted(
            "rasa-gpu/bot:3.6.21-gpu-06f52c63e206", "the bot's requirements on the Rasa 3.6.21 stage"
        ),
        # steps 2 and 3 came from the layer cache and the COPY, ENV, LABEL steps are quick: none is a stage
        BuildStage("installing NVIDIA's CUDA and cuDNN wheels", "step 5/17, stage rasa"),
        BuildStageDone(
            "installing NVIDIA's CUDA and cuDNN wheels", "uv, 8 packages, 746.5 MB downloaded", 10
        ),
        # the Dockerfile's own "rasa-gpu: installing the locked set …" says what the title says: no note
        BuildStage("installing the locked set of Rasa 3.6.21", "step 7/17, stage rasa"),
        BuildStageDone(
            "installing the locked set of Rasa 3.6.21", "uv, 161 packages, 605.0 MB downloaded", 10
        ),
        BuildStage("installing the bot's requirements", "step 15/17, stage bot"),
        BuildStageDone("installing the bot's requirements", "pip, 1 package, 60.0 kB downloaded", 10),
        BuildStage(CHECK_TITLE),
        BuildStageDone(CHECK_TITLE, "trained and loaded", 10),
        BuildNote(
            "CUDA check of rasa-gpu/bot:3.6.21-gpu-06f52c63e206: GPU-ready: TensorFlow built with CUDA 11.8, cuDNN 8"
        ),
    ]
    progress = [e.detail for e in events if isinstance(e, BuildProgress)]
    # pip's download of uv itself counts too
    assert (
        "uv: 8 packages · downloading nvidia-cudnn-cu11 (682.6 MiB) · 1/3 downloads, 17.6 MB of 746.5 MB"
        in (progress)
    )
    assert "uv: 161 packages · compiled 12034 files · 2/2 downloads, 605.0 MB of 605.0 MB" in progress
    assert "pip: 1 package · downloading more_itertools 10.5.0 (60 kB)" in progress


def test_a_step_nobody_named_is_shown_as_docker_numbers_it():
    assert step_title(
        "RUN", "apt-get update && apt-get install -y --no-install-recommends git", "step 4/9"
    ) == ("step 4/9 (RUN apt-get update && apt-get install -y --no-instal…)")
    events = parse(
        DockerBuildParser(Clock()),
        [
            "Step 4/9 : RUN make",
            " ---> Running in 1234",
            "cc -o x x.c",
            "Removing intermediate container 1234",
        ],
    )
    assert events == [
        BuildStage("step 4/9 (RUN make)", "step 4/9"),
        BuildStageDone("step 4/9 (RUN make)", "", 10),
    ]


def test_a_step_that_failed_is_not_done():
    lines = [
        "Step 15/17 : RUN python3 -m pip install -r /tmp/rasa-gpu/bot-requirements.txt",
        " ---> Running in 7ceed1da0e36",
        "ERROR: No matching distribution found for rasa-gpu-no-such-package-anywhere==0.0.1",
        "Removing intermediate container 7ceed1da0e36",  # Docker says it after a failed step too
    ]
    parser = DockerBuildParser(Clock())
    events = [event for line in lines for event in parser.feed(line)]
    assert events == [BuildStage("installing the bot's requirements", "step 15/17")]


def test_a_build_without_a_lock_says_so_and_a_service_image_is_not_checked():
    lines = [
        "building rasa-gpu/actions:3.6.21-065a3001c7ee (the actions service's image)",
        "Step 1/3 : FROM python:3.10-slim AS actions",
        f"Step 2/3 : {LOCK_RUN}",
        " ---> Running in 1234",
        "rasa-gpu: no locked set of Rasa 3.6.21 for Python 3.10 (locked: 3.9): pip resolves today's versions",
        "Removing intermediate container 1234",
        "Successfully tagged rasa-gpu/actions:3.6.21-065a3001c7ee",
    ]
    events = parse(DockerBuildParser(Clock()), lines)
    assert BuildNote(
        "no locked set of Rasa 3.6.21 for Python 3.10 (locked: 3.9): pip resolves today's versions"
    ) in (events)
    assert not [e for e in events if isinstance(e, BuildStage) and e.title == CHECK_TITLE]


def test_pulls_between_builds_are_progress_not_lines():
    events = parse(
        DockerBuildParser(Clock()), ["0a1b2c3d4e5f: Pull complete", "pulled 120 MB of 800 MB (15%) so far"]
    )
    assert events == [
        BuildProgress("0a1b2c3d4e5f: Pull complete"),
        BuildProgress("pulled 120 MB of 800 MB (15%) so far"),
    ]


def test_pip_and_uv_counts():
    installs = Installs()
    for line in [
        "Collecting a",
        "Collecting b",
        "  Downloading a-1.0.tar.gz (2.5 MB)",
        "Successfully installed a-1 b-2",
    ]:
        assert installs.feed(line)
    assert not installs.feed("  Building wheel for a (setup.py): started")
    assert installs.summary() == "pip, 2 packages, 2.5 MB downloaded"


def test_debootstrap_reads_as_its_phases_with_counts():
    events = parse(DebootstrapParser(Clock()), DEBOOTSTRAP)
    assert [e for e in events if not isinstance(e, BuildProgress)] == [
        BuildStarted(
            "rasa-gpu/base:bullseye", "Debian bullseye with Python 3.9: debootstrap, then docker import"
        ),
        BuildStage("fetching the package lists"),
        BuildStageDone("fetching the package lists", "", 10),
        BuildStage("downloading packages"),
        BuildStageDone("downloading packages", "3 packages", 10),
        BuildStage("extracting the required packages"),
        BuildStageDone("extracting the required packages", "2 packages", 10),
        BuildStage("unpacking required packages"),
        BuildStageDone("unpacking required packages", "2 packages", 10),
        BuildStage("configuring required packages"),
        BuildStageDone("configuring required packages", "1 packages", 10),
        BuildStage("unpacking the base system"),
        BuildStageDone("unpacking the base system", "1 packages", 10),
        BuildStage("configuring the base system"),
        BuildStageDone("configuring the base system", "1 packages", 10),
        BuildStage("packing the root filesystem (tar)"),
        BuildStageDone("packing the root filesystem (tar)", "", 10),
        BuildStage("importing it into Docker as rasa-gpu/base:bullseye"),
        BuildStageDone("importing it into Docker as rasa-gpu/base:bullseye", "", 10),
    ]
    progress = [e.detail for e in events if isinstance(e, BuildProgress)]
    assert progress[:3] == ["1 packages (adduser)", "2 packages (apt)", "3 packages (bash)"]
    assert "2 of 3 packages (bash)" in progress  # extracting, against what was downloaded
    assert parse(
        DebootstrapParser(Clock()), ["E: Failed getting release file http://x/dists/buster/Release"]
    ) == [BuildNote("E: Failed getting release file http://x/dists/buster/Release")]


def test_a_builds_stream_is_cut_into_whole_lines_and_masked_whole():
    """uv writes a line in pieces and Docker passes each piece on: whole lines come out, and a login split across two
    pieces is masked."""
    whole = WholeLines(lambda text: text.replace("hunter22", "****"))
    pieces = [
        "Resolved ",
        "161 packages",
        " in 5.89s\n\nDownloading",
        " babel (9.7MiB)\nLooking in https://u:hun",
        "ter22@x\n",
        "tail",
    ]
    lines = [line for piece in pieces for line in whole.feed(piece)] + whole.rest()
    assert lines == [
        "Resolved 161 packages in 5.89s",
        "Downloading babel (9.7MiB)",
        "Looking in https://u:****@x",
        "tail",
    ]


# ---- the log file ----------------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    return BotProject.load(copy_bot(EXAMPLE_BOT, tmp_path / "bot"))


def test_the_raw_lines_go_into_a_log_owned_by_the_bots_owner_and_the_events_to_the_sink(project):
    seen = []
    with build_log.recording(build_log.of_bot(project), seen.append) as on_line:
        for line in BUILD[:3]:
            on_line(line)
        on_line("Looking in indexes: https://deploy:hunter22@pypi.corp/simple")
    [log] = (project.root / ".rasa-gpu" / "logs").iterdir()
    assert log.name.startswith("build-") and log.suffix == ".log"
    text = log.read_text()
    assert text.splitlines()[1:] == [*BUILD[:3], "Looking in indexes: https://****@pypi.corp/simple"]
    info = log.lstat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (BOT_UID, BOT_UID)
        assert log.parent.stat().st_uid == BOT_UID
    assert seen[0] == BuildLogOpened(log)
    assert BuildOutput(BUILD[1]) in seen and isinstance(seen[1], BuildOutput)
    assert seen[-1] == BuildFinished(log)
    assert "hunter22" not in repr(seen)


def test_a_build_found_in_the_cache_writes_no_log_and_says_nothing(project):
    seen = []
    with build_log.recording(build_log.of_bot(project), seen.append):
        pass
    assert seen == [] and not (project.root / ".rasa-gpu" / "logs").exists()


def test_an_error_during_a_build_names_the_log_in_its_one_line(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    seen = []
    logs = build_log.of_bot(project)
    with pytest.raises(BuildError) as raised, build_log.recording(logs, seen.append) as on_line:
        on_line("Step 15/17 : RUN python3 -m pip install -r /tmp/rasa-gpu/bot-requirements.txt")
        on_line(" ---> Running in c718ba3be27f")
        raise BuildError("image build failed at step 15/17 (RUN …): No matching distribution found for x")
    [log] = (project.root / ".rasa-gpu" / "logs").iterdir()
    assert raised.value.message == (
        "image build failed at step 15/17 (RUN …): No matching distribution found for x; the full log: "
        f"bot/.rasa-gpu/logs/{log.name}"  # relative to the current folder, which holds the bot
    )
    assert str(raised.value) == raised.value.message
    assert seen[-1] == BuildFinished(log)
    assert not [e for e in seen if isinstance(e, BuildStageDone)]  # the failed step is not "done"
    # nothing was logged yet: the error stays as it was
    with pytest.raises(RasaGpuError) as raised, build_log.recording(logs, seen.append):
        raise RasaGpuError("base image x is not here")
    assert raised.value.message == "base image x is not here"


def test_only_the_newest_logs_stay(project):
    logs = project.root / ".rasa-gpu" / "logs"
    logs.mkdir(parents=True)
    old = [logs / f"build-2026010{i}-120000.log" for i in range(1, 8)]
    for day, path in enumerate(old, start=1):
        path.write_text("old\n")
        os.utime(path, (day * 86400, day * 86400))
    (logs / "notes.txt").write_text("mine\n")
    with build_log.recording(build_log.of_bot(project), lambda e: None) as on_line:
        on_line("Step 1/1 : FROM x")
    left = sorted(p.name for p in logs.iterdir())
    assert len([n for n in left if n.startswith("build-")]) == build_log.KEEP
    assert "notes.txt" in left and old[-1].name in left and old[0].name not in left


def test_a_link_where_the_logs_go_is_refused_and_nothing_is_written_through_it(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / ".rasa-gpu").mkdir()
    (project.root / ".rasa-gpu" / "logs").symlink_to(outside)
    logs = build_log.of_bot(project)
    with (
        pytest.raises(ProjectError, match="holds no links"),
        build_log.recording(logs, lambda e: None) as on_line,
    ):
        on_line("Step 1/1 : FROM x")
    assert list(outside.iterdir()) == []


def test_logs_without_a_bot_go_to_the_users_state_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert build_log.of_user().folder == tmp_path / "state" / "rasa-gpu" / "logs"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # not absolute: ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert build_log.of_user().folder == tmp_path / "home" / ".local" / "state" / "rasa-gpu" / "logs"


# ---- what the CLI shows -----------------------------------------------------------------------------------------------


@pytest.fixture
def stderr(monkeypatch):
    """rasa-gpu's stderr console, writing to a buffer that is not a terminal (as in CI)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, emoji=False, soft_wrap=True, force_terminal=False)
    monkeypatch.setattr(_common, "err", console, raising=False)
    return buffer


def _show(verbose: bool, events) -> None:
    from rasa_gpu.cli.views import BuildView

    with BuildView(verbose) as view:
        for event in events:
            view.handle(event)


def test_without_a_terminal_a_build_is_a_line_per_stage(stderr):
    events = [BuildLogOpened(Path("/b/.rasa-gpu/logs/build-1.log"))]
    events += [BuildOutput(line) for line in BUILD] + parse(DockerBuildParser(Clock()), BUILD)
    _show(False, [*events, BuildFinished(Path("/b/.rasa-gpu/logs/build-1.log"))])
    lines = stderr.getvalue().splitlines()
    assert lines == [
        "the build's whole output goes to /b/.rasa-gpu/logs/build-1.log (-v shows it)",
        "building rasa-gpu/bot:3.6.21-gpu-06f52c63e206 (the bot's requirements on the Rasa 3.6.21 stage)",
        "  ▶ installing NVIDIA's CUDA and cuDNN wheels (step 5/17, stage rasa)",
        "  ✓ installing NVIDIA's CUDA and cuDNN wheels (uv, 8 packages, 746.5 MB downloaded) 10.0 s",
        "  ▶ installing the locked set of Rasa 3.6.21 (step 7/17, stage rasa)",
        "  ✓ installing the locked set of Rasa 3.6.21 (uv, 161 packages, 605.0 MB downloaded) 10.0 s",
        "  ▶ installing the bot's requirements (step 15/17, stage bot)",
        "  ✓ installing the bot's requirements (pip, 1 package, 60.0 kB downloaded) 10.0 s",
        f"  ▶ {CHECK_TITLE}",
        f"  ✓ {CHECK_TITLE} (trained and loaded) 10.0 s",
        "  CUDA check of rasa-gpu/bot:3.6.21-gpu-06f52c63e206: GPU-ready: TensorFlow built with CUDA 11.8, cuDNN 8",
    ]


def test_with_v_a_build_is_its_raw_output(stderr):
    events = [BuildOutput(line) for line in BUILD] + parse(DockerBuildParser(Clock()), BUILD)
    _show(True, events)
    assert stderr.getvalue().splitlines() == [
        line.replace("\x1b[91m", "").replace("\x1b[0m", "") for line in BUILD
    ]


def test_base_image_shows_stages_and_keeps_debootstraps_lines_in_the_users_state_folder(
    monkeypatch, tmp_path
):
    """The command as a user runs it, debootstrap's real lines replayed by a stand-in for the build (it needs root,
    a mirror and two minutes): a few lines out, all of them in the log, and a failure names the log."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls: object()))
    fail = []

    def stand_in(engine, on_line, **kw):
        for line in DEBOOTSTRAP:
            on_line(line)
            if fail and line.startswith("I: Retrieving apt"):
                raise RasaGpuError("debootstrap failed with exit code 1")
        return "sha256:x"

    monkeypatch.setattr(base_image, "build_base_image", stand_in)
    result = CliRunner().invoke(cli_mod.cli, ["base-image"])
    assert result.exit_code == 0, result.output
    [log] = (tmp_path / "state" / "rasa-gpu" / "logs").iterdir()
    assert log.name.startswith("base-image-") and log.read_text().splitlines()[1:] == DEBOOTSTRAP
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    lines = result.output.splitlines()
    assert len(lines) < len(DEBOOTSTRAP) and f"the build's whole output goes to {log} (-v shows it)" in lines
    assert "  ✓ downloading packages (3 packages) 0.0 s" in [
        line.rsplit(" ", 2)[0] + " 0.0 s" for line in lines
    ]
    assert lines[-1].startswith("rasa-gpu/base:bullseye built in ")

    verbose = CliRunner().invoke(cli_mod.cli, ["base-image", "-v"])
    assert [line for line in DEBOOTSTRAP if line not in verbose.output] == []

    fail.append(True)
    failed = CliRunner().invoke(cli_mod.cli, ["base-image"])
    assert isinstance(failed.exception, RasaGpuError)
    message, _, named = failed.exception.message.partition("; the full log: ")
    assert message == "debootstrap failed with exit code 1"
    assert (
        Path(named).parent == log.parent
        and Path(named).read_text().splitlines()[-1] == "I: Retrieving apt 2.2.4"
    )


def test_without_a_terminal_a_training_is_a_line_per_component_when_it_ends(stderr):
    """A log gets one line per component (its time), not one when it starts and one when it ends: the first
    training on a fresh machine stays short enough to read."""
    from rasa_gpu import progress
    from rasa_gpu.cli.views import TrainView
    from rasa_gpu.events import TrainingStarted

    events = [
        TrainingStarted(image="rasa-gpu/rasa:3.6.21", gpu="none"),
        progress.ComponentStarted("DIETClassifier"),
        progress.EpochProgress(component="DIETClassifier", epoch=1, total=2, metrics={"loss": 1.5}),
        progress.ComponentFinished("DIETClassifier"),
        progress.ComponentRestored("TEDPolicy"),
    ]
    with TrainView(False) as view:
        for event in events:
            view.handle(event)
    lines = stderr.getvalue().splitlines()
    assert lines[0] == "training in rasa-gpu/rasa:3.6.21 on the CPU"
    assert len(lines) == 3 and lines[1].startswith("  ✓ DIETClassifier ") and lines[1].endswith(" s")
    assert lines[2] == "  ↺ TEDPolicy restored from cache"
    assert not any("▶" in line for line in lines)
