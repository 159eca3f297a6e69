"""The registry-less base image: one name and one mirror per Debian suite, a Python label on the image, and a build
that stops before it starts when the base image's Python does not fit the Rasa release."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu import base_image
from rasa_gpu import cli as cli_mod
from rasa_gpu.base_image import (
    DEFAULT_NAME,
    PYTHON_LABEL,
    SUITE_PYTHON,
    archive_keyring,
    debootstrap_command,
    default_mirror,
    default_name,
    image_changes,
)
from rasa_gpu.compat import load_matrix
from rasa_gpu.engine import Engine
from rasa_gpu.errors import VersionError
from rasa_gpu.images import ImageSpec, check_base_python, ensure_image

RASA_2 = "2.8.27"  # needs Python >=3.7,<3.9
BULLSEYE = "rasa-gpu/base:bullseye"


# ---- names, mirrors, debootstrap -------------------------------------------------------------------------------------


def test_each_suite_has_its_own_default_name():
    assert DEFAULT_NAME == default_name("bullseye") == BULLSEYE
    assert {default_name(suite) for suite in SUITE_PYTHON} == {
        "rasa-gpu/base:buster",
        "rasa-gpu/base:bullseye",
        "rasa-gpu/base:bookworm",
        "rasa-gpu/base:noble",
    }


def test_buster_comes_from_the_debian_archive_the_others_from_debootstraps_default():
    assert default_mirror("buster") == "http://archive.debian.org/debian"
    assert default_mirror("bullseye") is None and default_mirror("bookworm") is None
    assert default_mirror("noble") == "http://archive.ubuntu.com/ubuntu"


def test_noble_takes_ubuntus_universe_and_an_old_debootstrap_takes_the_ubuntu_script(tmp_path):
    rootfs = Path("/tmp/rootfs")
    old = debootstrap_command("noble", rootfs, default_mirror("noble"), Path("/k/u.gpg"), scripts=tmp_path)
    assert "--components=main,universe" in old and "--keyring=/k/u.gpg" in old
    assert old[-4:] == ["noble", "/tmp/rootfs", "http://archive.ubuntu.com/ubuntu", str(tmp_path / "gutsy")]
    (tmp_path / "gutsy").write_text("# debootstrap's Ubuntu script\n")
    (tmp_path / "noble").symlink_to("gutsy")
    new = debootstrap_command("noble", rootfs, default_mirror("noble"), None, scripts=tmp_path)
    assert new[-3:] == ["noble", "/tmp/rootfs", "http://archive.ubuntu.com/ubuntu"]
    assert "--components=main,universe" not in debootstrap_command("bookworm", rootfs, None)


def _serve(tmp_path, body: bytes) -> tuple[str, object]:
    import http.server
    import threading

    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www" / "keys.gpg").write_bytes(body)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/keys.gpg", server


def test_ubuntus_keyring_is_the_hosts_else_the_published_one_only_with_the_pinned_sha256(
    tmp_path, monkeypatch
):
    import hashlib

    keys = tmp_path / "keyrings"
    keys.mkdir()
    url, server = _serve(tmp_path, b"ubuntu keys")
    try:
        monkeypatch.setattr(base_image, "UBUNTU_KEYRING_SHA256", hashlib.sha256(b"ubuntu keys").hexdigest())
        fetched = base_image.ubuntu_keyring(tmp_path, keys, url)
        assert fetched.parent == tmp_path and fetched.read_bytes() == b"ubuntu keys"
        monkeypatch.setattr(base_image, "UBUNTU_KEYRING_SHA256", hashlib.sha256(b"other keys").hexdigest())
        fetched.unlink()
        with pytest.raises(base_image.RasaGpuError, match="not the one rasa-gpu knows"):
            base_image.ubuntu_keyring(tmp_path, keys, url)
        assert not fetched.exists()  # an unknown keyring is never written where debootstrap would read it
        (keys / "ubuntu-archive-keyring.gpg").write_bytes(b"host keys")
        assert base_image.ubuntu_keyring(tmp_path, keys, url) == keys / "ubuntu-archive-keyring.gpg"
    finally:
        server.shutdown()
        server.server_close()  # nothing listens there now: the fetch is refused at once
    with pytest.raises(base_image.RasaGpuError, match="install ubuntu-keyring"):
        base_image.ubuntu_keyring(tmp_path, tmp_path / "none", url)


def test_debootstrap_command_with_and_without_mirror_and_keyring():
    rootfs = Path("/tmp/rootfs")
    plain = debootstrap_command("bullseye", rootfs, None)
    assert plain[0] == "debootstrap" and plain[-2:] == ["bullseye", "/tmp/rootfs"]
    assert not any(arg.startswith("--keyring") for arg in plain)
    archived = debootstrap_command("buster", rootfs, "http://archive.debian.org/debian", Path("/k/keys.gpg"))
    assert archived[-3:] == ["buster", "/tmp/rootfs", "http://archive.debian.org/debian"]
    assert "--keyring=/k/keys.gpg" in archived and archived.index("--keyring=/k/keys.gpg") < archived.index(
        "buster"
    )


def test_archived_suites_get_the_current_and_removed_keys_in_one_keyring(tmp_path):
    keys = tmp_path / "keyrings"
    keys.mkdir()
    (keys / "debian-archive-keyring.gpg").write_bytes(b"current")
    assert archive_keyring("buster", tmp_path, keys) is None  # no removed keys: debootstrap's default keyring
    (keys / "debian-archive-removed-keys.gpg").write_bytes(b"removed")
    combined = archive_keyring("buster", tmp_path, keys)
    assert combined is not None and combined.read_bytes() == b"currentremoved"
    assert archive_keyring("bullseye", tmp_path, keys) is None


def test_the_image_is_labelled_with_its_python():
    assert "LABEL io.rasa-gpu.python=3.7" in image_changes("buster")
    assert "LABEL io.rasa-gpu.python=3.9" in image_changes("bullseye")
    assert "LABEL io.rasa-gpu.python=3.12" in image_changes("noble")


def test_suite_picks_the_image_name_unless_name_is_given(monkeypatch):
    calls = []
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls: object()))
    monkeypatch.setattr(
        base_image, "build_base_image", lambda engine, on_line, **kw: calls.append(kw) or "sha256:x"
    )
    runner = CliRunner()
    assert runner.invoke(cli_mod.cli, ["base-image", "--suite", "buster"]).exit_code == 0
    assert runner.invoke(cli_mod.cli, ["base-image"]).exit_code == 0
    assert (
        runner.invoke(cli_mod.cli, ["base-image", "--suite", "buster", "--name", "my/base:1"]).exit_code == 0
    )
    assert [(c["suite"], c["name"]) for c in calls] == [
        ("buster", "rasa-gpu/base:buster"),
        ("bullseye", "rasa-gpu/base:bullseye"),
        ("buster", "my/base:1"),
    ]


# ---- the Python check before a build ---------------------------------------------------------------------------------


class PythonEngine:
    """Knows each image's Python; records what the build would have done."""

    def __init__(self, pythons):
        self.pythons, self.asked, self.builds = dict(pythons), [], []

    def image_id(self, ref):
        return "sha256:x" if ref in self.pythons else None

    def image_labels(self, ref):
        self.asked.append(ref)
        python = self.pythons[ref]
        return {PYTHON_LABEL: python} if python else {}

    def run_to_completion(self, spec):
        return 127, ["exec: python3: not found"]  # the Python probe of an image without the label

    def pull(self, ref, on_line):
        raise AssertionError("nothing is pulled here")

    def build(self, context, *, tag, target, labels, on_line, secret_args):
        self.builds.append(target)
        return "sha256:y"


def spec(version, base):
    return ImageSpec(release=load_matrix().get(version), base_image=base)


def test_a_rasa_2_build_on_the_bullseye_base_stops_before_the_builder():
    engine = PythonEngine({BULLSEYE: "3.9"})
    with pytest.raises(VersionError) as raised:
        ensure_image(engine, spec(RASA_2, BULLSEYE), print)
    message = raised.value.message
    assert "\n" not in message and engine.builds == []
    assert message.startswith(
        f"Rasa {RASA_2} needs Python >=3.7,<3.9 but the base image {BULLSEYE} has Python 3.9"
    )
    assert "--suite buster" in message and "--base-image rasa-gpu/base:buster" in message
    assert "tensorflow/tensorflow:2.6.1-gpu" in message


def test_matching_unknown_and_matrix_default_bases_pass():
    check_base_python(PythonEngine({BULLSEYE: "3.9"}), spec("3.6.21", BULLSEYE))
    check_base_python(PythonEngine({"rasa-gpu/base:buster": "3.7"}), spec(RASA_2, "rasa-gpu/base:buster"))
    check_base_python(PythonEngine({"no/python:1": None}), spec(RASA_2, "no/python:1"))
    release = load_matrix().get(RASA_2)
    engine = PythonEngine({release.gpu_base_image: "3.8"})
    check_base_python(engine, spec(RASA_2, release.gpu_base_image))
    assert engine.asked == [release.gpu_base_image]  # the matrix's own images are asked too


def test_a_rasa_pro_release_whose_tensorflow_image_has_another_python_says_which_bases_fit():
    """TensorFlow's image has one Python; a Rasa Pro release may need another. The line offers what fits."""
    matrix = load_matrix()
    release = next(r for r in matrix.releases.values() if r.pro and r.python == ">=3.12,<3.13")
    engine = PythonEngine({release.gpu_base_image: "3.11"})
    with pytest.raises(VersionError) as raised:
        ensure_image(engine, ImageSpec(release=release, base_image=release.gpu_base_image), print)
    message = raised.value.message
    assert engine.builds == [] and "\n" not in message
    assert message.startswith(f"Rasa Pro {release.version} needs Python >=3.12,<3.13 but the base image ")
    assert "--base-image python:3.12-slim (CUDA then comes from PyPI: --cuda wheels)" in message
    assert "the matrix's" not in message  # the matrix's own image is the one that does not fit


def test_a_newer_rasa_on_an_older_python_suggests_bullseye():
    with pytest.raises(VersionError) as raised:
        check_base_python(
            PythonEngine({"rasa-gpu/base:buster": "3.7"}), spec("3.6.21", "rasa-gpu/base:buster")
        )
    assert "has Python 3.7" in raised.value.message and "--suite bullseye" in raised.value.message


# ---- with an engine --------------------------------------------------------------------------------------------------


def _tags(client) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags}


@pytest.mark.docker
def test_rasa_2_on_the_bullseye_base_fails_in_seconds_without_building(tmp_path, docker_client):
    """The image's own python3 answers (rasa-gpu/base:bullseye built before the label existed has none)."""
    if BULLSEYE not in _tags(docker_client):
        pytest.skip(f"{BULLSEYE} is not on this engine; build it with `sudo rasa-gpu base-image`")
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    args = ("build", str(bot), "--rasa-version", RASA_2, "--base-image", BULLSEYE)
    printed = run_cli(*args, "--print", timeout=60)
    assert printed.returncode == 0, printed.output
    would_build = printed.stdout.split()[2]  # "# image: rasa-gpu/rasa:2.8.27-... (Rasa 2.8.27, ...)"
    assert would_build.startswith(f"rasa-gpu/rasa:{RASA_2}-") and would_build not in _tags(docker_client)
    result = run_cli(*args, timeout=120)
    assert_one_line_error(
        result, 1, f"Rasa {RASA_2} needs Python >=3.7,<3.9", f"{BULLSEYE} has Python 3.9", "--suite buster"
    )
    assert not (bot / ".rasa-gpu" / "logs").exists()  # no build output, not a line: nothing was built
    assert would_build not in _tags(docker_client)
    for run in (printed, result):  # their probes (each container carries its rasa-gpu's pid)
        probes = docker_client.containers.list(
            all=True,
            filters={"label": ["io.rasa-gpu.role=probe", f"io.rasa-gpu.pid={run.pid}"], "ancestor": BULLSEYE},
        )
        assert probes == []


@pytest.mark.docker
def test_the_python_label_is_read_without_running_the_image(tmp_path, docker_client):
    """An image from `rasa-gpu base-image` says its Python in a label; this one has no python3 at all."""
    ref = f"rasa-gpu/test-python-label:{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"not a Python\n"
        info = tarfile.TarInfo("README")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repository, tag = ref.split(":")
    docker_client.api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag=tag, changes=["LABEL io.rasa-gpu.python=3.7"]
    )
    try:
        bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
        result = run_cli("build", str(bot), "--rasa-version", "3.6.21", "--base-image", ref, timeout=120)
        assert_one_line_error(result, 1, "Rasa 3.6.21 needs Python >=3.8,<3.11", f"{ref} has Python 3.7")
        assert not (bot / ".rasa-gpu" / "logs").exists()  # nothing was built
    finally:
        docker_client.images.remove(ref, force=True)
