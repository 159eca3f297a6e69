"""Bot folders made by someone else: links where rasa-gpu writes, links among the inputs, secrets named by a bot's
settings, runs that race, streams that break. Each bot lives in a sandbox home whose other folders must survive.

Most of these need no engine: rasa-gpu refuses (or tidies) before it contacts one, and the tests prove that by
pointing DOCKER_HOST at a socket that does not exist. The race of `test` and `train` runs for real in
test_day.py's `test nlu` test."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import retention, scratch, services
from rasa_gpu.errors import ProjectError, RasaGpuError
from rasa_gpu.project import BotProject
from rasa_gpu.runners.base import Workspace
from rasa_gpu.runners.remote import VolumeWorkspace

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture
def home(tmp_path) -> Path:
    """A user's home: folders, a .bashrc, a secret key, and a cloned bot in projects/bot."""
    home = tmp_path / "home"
    for folder in ("Documents", "projects", "Downloads", ".ssh"):
        (home / folder).mkdir(parents=True)
    (home / "Documents" / "thesis.txt").write_text("mine\n")
    (home / ".bashrc").write_text("alias ll='ls -l'\n")
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    (home / "Downloads" / "photos.tar.gz").write_bytes(b"not a model")
    (home / "Downloads" / "backup.tar.gz").write_bytes(b"not a model either")
    copy_bot(EXAMPLE_BOT, home / "projects" / "bot", owner=None)
    return home


def snapshot(home: Path) -> dict[str, bytes]:
    """Every file outside the bot, with its content."""
    bot = home / "projects" / "bot"
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.is_symlink() and bot not in p.parents
    }


def cli(home: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli(*args, env={"HOME": str(home), **NO_ENGINE, **(env or {})})


# ---- 1. links where rasa-gpu writes ------------------------------------------------------------------------------


def test_a_linked_tmp_folder_is_refused_and_the_home_survives(home):
    bot = home / "projects" / "bot"
    (bot / ".rasa-gpu").mkdir()
    (bot / ".rasa-gpu" / "tmp").symlink_to("../../..")
    before = snapshot(home)
    result = cli(home, "train", str(bot))
    assert_one_line_error(result, None, ".rasa-gpu/tmp is a link (to ../../..)", "remove the link")
    assert snapshot(home) == before
    assert (bot / "config.yml").is_file() and (bot / "data").is_dir()


@pytest.mark.parametrize("folder", ["models", ".rasa"])
def test_an_output_folder_linked_out_of_the_bot_is_refused_before_anything_runs(home, folder):
    bot = home / "projects" / "bot"
    (bot / folder).symlink_to(home / "Downloads")
    before = snapshot(home)
    result = cli(home, "train", str(bot))
    assert_one_line_error(result, None, f"{folder} is a link to {home / 'Downloads'}, outside the bot folder")
    assert snapshot(home) == before


def test_keep_models_never_removes_archives_through_a_linked_models_folder(home):
    bot = home / "projects" / "bot"
    (bot / "models").symlink_to(home / "Downloads")
    project = BotProject.load(bot)
    with pytest.raises(ProjectError, match="models is a link to .*outside the bot folder"):
        retention.tidy(project, 1, None)
    assert sorted(p.name for p in (home / "Downloads").iterdir()) == ["backup.tar.gz", "photos.tar.gz"]


def test_a_models_folder_linked_inside_the_bot_is_followed(home):
    bot = home / "projects" / "bot"
    (bot / "build" / "models").mkdir(parents=True)
    (bot / "models").symlink_to("build/models")
    for name in ("a", "b"):
        (bot / "build" / "models" / f"{name}.tar.gz").write_bytes(b"x")
        time.sleep(0.01)
    removed = retention.tidy(BotProject.load(bot), 1, None)
    assert [p.name for p in removed] == ["a.tar.gz"]
    assert [p.name for p in (bot / "build" / "models").iterdir()] == ["b.tar.gz"]


def test_temporary_files_linked_to_bashrc_are_never_written_through(home):
    """The old names of the temporary files (predictable) linked to ~/.bashrc: the runtime files of `up`
    (endpoints with a `$(...)` from the bot's endpoints.yml, the secrets' env file) are written, .bashrc is not."""
    bot = home / "projects" / "bot"
    (bot / "endpoints.yml").write_text('action_endpoint:\n  url: "http://x/$(touch PWNED)"\n')
    state = bot / ".rasa-gpu"
    state.mkdir()
    for name in (".endpoints.services.yml.tmp", ".services.env.tmp"):
        (state / name).symlink_to(home / ".bashrc")
    before = snapshot(home)
    project = BotProject.load(bot)
    services.write_runtime_files(project, "http://actions:5055/webhook")
    assert snapshot(home) == before
    written = [p for p in state.iterdir() if not p.is_symlink()]
    assert written, "the runtime files were written"
    for path in written:
        if "env" in path.name:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in state.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def test_a_replaced_file_that_is_a_link_in_the_state_folder_is_refused(home):
    bot = home / "projects" / "bot"
    (bot / ".rasa-gpu").mkdir()
    (bot / ".rasa-gpu" / "train.pid").symlink_to(home / ".bashrc")
    before = snapshot(home)
    result = cli(home, "train", str(bot))
    assert_one_line_error(result, None, ".rasa-gpu/train.pid is a link")
    assert snapshot(home) == before


def test_secrets_are_private_from_their_first_byte(home, monkeypatch):
    """The file that will hold a secret is created at 0600: seen at the moment its first byte is written."""
    bot = home / "projects" / "bot"
    project = BotProject.load(bot)
    seen: list[int] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        if "services.env" in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    project.write_owned(project.state_dir / "services.env", "TOKEN=s3cret\n", mode=0o600)
    monkeypatch.undo()
    assert seen and set(seen) == {0o600}


# ---- 2. links among the training inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        ("train",),  # this machine's engine
        ("train", "--host", "ssh://nobody@127.0.0.1:9"),  # an engine over SSH
        ("submit", "--to", "kubernetes", "--dry-run"),  # a Kubernetes Job's manifests
    ],
    ids=["local", "ssh", "kubernetes"],
)
def test_an_input_linked_out_of_the_bot_is_refused_by_every_runner(home, where):
    bot = home / "projects" / "bot"
    secret = home / ".docker" / "config.json"
    secret.parent.mkdir()
    secret.write_text('{"auths": {"registry": {"auth": "dXNlcjpwYXNz"}}}')
    (bot / "data" / "x.json").symlink_to(secret)
    result = cli(home, *where[:1], str(bot), *where[1:])
    line = assert_one_line_error(result, None, f"data/x.json is a link to {secret}, outside the bot folder")
    assert "dXNlcjpwYXNz" not in result.output and line


def test_a_linked_input_inside_the_bot_is_followed_and_hashed_by_its_content(home):
    bot = home / "projects" / "bot"
    (bot / "extra").mkdir()
    (bot / "extra" / "more.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hey there\n'
    )
    (bot / "data" / "more.yml").symlink_to("../extra/more.yml")
    project = BotProject.load(bot)
    assert bot / "data" / "more.yml" in project.training_inputs()
    with tarfile.open(fileobj=io.BytesIO(project.inputs_archive()), mode="r:gz") as tar:
        member = tar.getmember("data/more.yml")
        assert member.isfile() and b"hey there" in tar.extractfile(member).read()  # type: ignore[union-attr]
    before = project.inputs_digest()
    (bot / "extra" / "more.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello\n'
    )
    assert BotProject.load(bot).inputs_digest() != before


def test_a_dangling_input_link_is_refused(home):
    bot = home / "projects" / "bot"
    (bot / "data" / "gone.yml").symlink_to("nowhere.yml")
    with pytest.raises(ProjectError, match=r"data/gone.yml is a link to nowhere.yml, which does not exist"):
        BotProject.load(bot)


# ---- 4. files that a bot's settings name ---------------------------------------------------------------------------


def test_a_license_file_outside_the_bot_is_refused(home):
    bot = home / "projects" / "bot"
    (bot / "rasa-gpu.toml").write_text(
        f'rasa_version = "3.8.18"\nlicense_file = "{home / ".ssh" / "id_ed25519"}"\n'
    )
    result = cli(home, "train", str(bot), env={"RASA_PRO_LICENSE": ""})
    assert_one_line_error(result, None, "license_file", "is outside the bot folder", "RASA_PRO_LICENSE")
    assert "BEGIN OPENSSH" not in result.output


def test_a_license_file_linked_out_of_the_bot_is_refused_too(home):
    bot = home / "projects" / "bot"
    (bot / "license.txt").symlink_to(home / ".ssh" / "id_ed25519")
    (bot / "rasa-gpu.toml").write_text('rasa_version = "3.8.18"\nlicense_file = "license.txt"\n')
    result = cli(home, "train", str(bot), env={"RASA_PRO_LICENSE": ""})
    assert_one_line_error(result, None, "license_file license.txt is outside the bot folder")


# ---- 5. runs that race, copies cut short, streams that break --------------------------------------------------------


def test_a_training_tidies_only_the_leftovers_of_dead_runs(home):
    """A live run's folder (here: a claim this test holds, as `rasa-gpu test` does) survives a training's tidy; a
    dead run's folder, its lock and a partial model copy of a SIGKILLed training do not."""
    bot = home / "projects" / "bot"
    project = BotProject.load(bot)
    live = scratch.Scratch(project, "test-live")
    (live.path / "report.json").write_text("{}")
    dead = project.state_dir / "tmp" / "dead-run"
    dead.mkdir()
    (dead / "out").mkdir()
    (project.models_dir).mkdir()
    partial = project.models_dir / ".20260101-000000-x.tar.gz.partial"
    partial.write_bytes(b"half")
    try:
        result = cli(home, "train", str(bot))
        assert result.returncode != 0  # no engine: but the tidy ran first, under the bot's lock
        assert "1 temporary folder(s) or partial model(s)" in result.output or not dead.exists()
        assert (live.path / "report.json").is_file()
        assert not dead.exists() and not partial.exists()
    finally:
        live.release()
    assert not live.path.exists()


class _Stream:
    """The engine's side of a copy-back: the bytes of a tar stream, as an engine elsewhere sends them."""

    shown_as = "ssh://gpu-box"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_files(self, container_id: str, path: str):
        yield from (self.data[i : i + 1000] for i in range(0, len(self.data), 1000))


def _tar(*files: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _workspace(bot: Path, data: bytes) -> VolumeWorkspace:
    workspace = VolumeWorkspace.__new__(VolumeWorkspace)
    Workspace.__init__(workspace, BotProject.load(bot), "run1")
    workspace.engine, workspace._holder_id = _Stream(data), "holder"  # type: ignore[assignment]
    return workspace


@pytest.mark.parametrize(
    "stream, why",
    [
        (_tar(("out/model.tar.gz", os.urandom(50_000)))[:30_000], "unexpected end of data"),
        (
            _tar(("out/model.tar.gz", b"a" * 10), ("out/sub/model.tar.gz", b"b" * 10)),
            "two files named model.tar.gz",
        ),
    ],
    ids=["truncated", "duplicate-names"],
)
def test_a_broken_stream_from_a_far_engine_is_one_line_and_leaves_nothing(home, stream, why):
    bot = home / "projects" / "bot"
    workspace = _workspace(bot, stream)
    try:
        with pytest.raises(RasaGpuError, match=f"the model came back incomplete from ssh://gpu-box .*{why}"):
            workspace.fetch()
        assert list((workspace.run_dir / "out").iterdir()) == []
    finally:
        Workspace.close(workspace)


def test_a_whole_stream_comes_back(home):
    bot = home / "projects" / "bot"
    workspace = _workspace(bot, _tar(("out/model.tar.gz", b"m" * 3000), ("out/../../evil", b"x")))
    try:
        workspace.fetch()
        assert sorted(p.name for p in (workspace.run_dir / "out").iterdir()) == ["evil", "model.tar.gz"]
        assert not (bot / ".rasa-gpu" / "evil").exists()
    finally:
        Workspace.close(workspace)


def test_vscode_tasks_through_a_linked_vscode_folder_are_refused(home):
    bot = home / "projects" / "bot"
    (home / "Documents" / "tasks.json").write_text('{"version": "2.0.0", "tasks": []}\n')
    (bot / ".vscode").symlink_to(home / "Documents")
    before = snapshot(home)
    result = cli(home, "vscode", str(bot))
    assert_one_line_error(result, None, ".vscode is a link to", "outside the bot folder")
    assert snapshot(home) == before


def test_a_bot_folder_named_like_a_vscode_variable_gets_no_tasks(home):
    bot = copy_bot(EXAMPLE_BOT, home / "projects" / "${command:workbench.action.terminal.new}", owner=None)
    result = cli(home, "vscode", str(bot), "--workspace", str(home / "projects"))
    assert_one_line_error(result, None, "which VS Code would read as a variable", "rename the folder")
    assert not (home / "projects" / ".vscode").exists()


def test_a_requirements_file_linked_out_of_the_bot_is_refused(home):
    bot = home / "projects" / "bot"
    (home / "Documents" / "reqs.txt").write_text("nltk==3.8\n")
    (bot / "requirements.txt").symlink_to(home / "Documents" / "reqs.txt")
    result = cli(home, "build", str(bot))
    assert_one_line_error(result, None, "requirements.txt is a link to", "outside the bot folder")


def test_a_requirement_whose_url_carries_a_login_is_refused(home):
    bot = home / "projects" / "bot"
    (bot / "requirements.txt").write_text(
        "tiny @ https://deploy:hunter22@pypi.corp/tiny-1.0-py3-none-any.whl\n"
    )
    result = cli(home, "build", str(bot), "--print")
    assert_one_line_error(result, None, "the URL of tiny carries a login")
    assert "hunter22" not in result.output
