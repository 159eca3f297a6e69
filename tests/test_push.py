"""`rasa-gpu push` end to end, against a real registry (Debian's docker-registry package) with a real login:
refused without `docker login`, pushed with it, listed by the registry's own API, pulled back on a second engine by
`rasa-gpu build --registry` (nothing built), and run there."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from relay import host_port_in
from support import EXAMPLE_BOT, assert_one_line_error, require_docker, run_cli

import docker

USER = "rasa-gpu-test"


def test_bad_registry_is_one_line_without_a_traceback():
    assert_one_line_error(
        run_cli("push", str(EXAMPLE_BOT), "--registry", "bad registry!"), None, "--registry"
    )


# ---- a real registry ---------------------------------------------------------------------------------------------


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT, as it appears in image names
    port: int
    password: str
    logged_in: Path  # a DOCKER_CONFIG folder with the login
    logged_out: Path  # a DOCKER_CONFIG folder without any login

    def get(self, path: str, accept: str | None = None) -> tuple[dict, dict[str, str]]:
        """GET from the registry's HTTP API with basic auth; returns the JSON body and the headers."""
        request = urllib.request.Request(f"http://{self.host}{path}")
        token = base64.b64encode(f"{USER}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if accept:
            request.add_header("Accept", accept)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read()), dict(response.headers)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[Registry]:
    """docker-registry on a free port of 127.0.0.1 (an insecure registry for every Docker engine by default), with
    filesystem storage in a temporary folder and an htpasswd (bcrypt) login."""
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if not binary or not htpasswd:
        missing = " and ".join(n for n, p in (("docker-registry", binary), ("htpasswd", htpasswd)) if not p)
        message = f"{missing} not installed; `sudo bash scripts/registry.sh` installs them"
        if require_docker():
            pytest.fail(f"{message} (this run requires the push tests)")
        pytest.skip(message)
    root = tmp_path_factory.mktemp("registry")
    password = secrets.token_hex(12)
    line = subprocess.run(
        [htpasswd, "-Bbn", USER, password], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(line.strip() + "\n")
    port = _free_port()
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: rasa-gpu-test\n    path: {root / 'htpasswd'}\n"
    )
    host = f"127.0.0.1:{port}"
    logged_in, logged_out = root / "docker-login", root / "docker-no-login"
    logged_in.mkdir()
    logged_out.mkdir()
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (logged_in / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    log = (root / "registry.log").open("w")
    process = subprocess.Popen(
        [binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    reg = Registry(host=host, port=port, password=password, logged_in=logged_in, logged_out=logged_out)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reg.get("/v2/")
                break
            except (urllib.error.URLError, ConnectionError) as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"docker-registry did not answer on {host} ({exc}): {(root / 'registry.log').read_text()}"
                    )
                time.sleep(0.2)
        yield reg
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(
            root / "data", ignore_errors=True
        )  # about 1 GB of blobs; pytest keeps its last temp folders


@pytest.fixture(scope="module")
def cpu_image(docker_client) -> str:
    """example_bot's CPU-only image (--cuda none, 2.8 GB; the CUDA-wheel image is 5.9 GB): what these tests push.
    test_cuda_images.py builds the same one, so in a full run this finds it."""
    built = run_cli("build", str(EXAMPLE_BOT), "--cuda", "none")
    assert built.returncode == 0, built.output
    return built.stdout.split()[0]


@pytest.mark.docker
@pytest.mark.slow
def test_push_pull_back_on_another_engine_and_run(registry, cpu_image, docker_client, stub_engine):
    digest_of_tag = cpu_image.rsplit("-", 1)[1]
    expected_ref = f"{registry.host}/rasa-gpu:3.6.21-tf2.12.0-cpu-{digest_of_tag}"
    stub = docker.DockerClient(base_url=stub_engine)
    main_id = docker_client.images.get(cpu_image).id

    def push_with(docker_config: Path):
        return run_cli(
            "push",
            str(EXAMPLE_BOT),
            "--cuda",
            "none",
            "--registry",
            registry.host,
            env={"DOCKER_CONFIG": str(docker_config)},
        )

    try:
        # (a) Without `docker login`: refused, one line that says what to do, and no registry name left behind.
        refused = push_with(registry.logged_out)
        assert_one_line_error(
            refused, None, "refused the push (not logged in)", f"docker login {registry.host}"
        )
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(expected_ref)

        # (b) With the login: the ref and the digest on stdout, and the registry lists the tag.
        started = time.monotonic()
        pushed = push_with(registry.logged_in)
        push_seconds = time.monotonic() - started
        assert pushed.returncode == 0, pushed.output
        [line] = pushed.stdout.splitlines()
        ref, digest = line.split()
        assert ref == expected_ref and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
        tags, _ = registry.get("/v2/rasa-gpu/tags/list")
        assert tags == {"name": "rasa-gpu", "tags": [f"3.6.21-tf2.12.0-cpu-{digest_of_tag}"]}
        _, headers = registry.get(
            f"/v2/rasa-gpu/manifests/3.6.21-tf2.12.0-cpu-{digest_of_tag}",
            accept="application/vnd.docker.distribution.manifest.v2+json",
        )
        assert headers["Docker-Content-Digest"] == digest
        size = docker_client.images.get(cpu_image).attrs["Size"]
        print(f"\npush of the {size / 1e9:.2f} GB image: {push_seconds:.1f} s")

        # (c) On the second engine, without the image at all: build pulls it back, builds nothing. That engine has
        # a network namespace of its own: the registry's port of this host is relayed into it.
        with contextlib.suppress(docker.errors.ImageNotFound):
            stub.images.remove(cpu_image, force=True)
        with pytest.raises(docker.errors.ImageNotFound):
            stub.images.get(main_id)
        started = time.monotonic()
        with host_port_in(os.environ.get("RASA_GPU_TEST_STUB_NETNS"), registry.port):
            pulled = run_cli(
                "build",
                str(EXAMPLE_BOT),
                "--cuda",
                "none",
                "--registry",
                registry.host,
                env={"DOCKER_HOST": stub_engine, "DOCKER_CONFIG": str(registry.logged_in)},
            )
        pull_seconds = time.monotonic() - started
        assert pulled.returncode == 0, pulled.output
        assert f"{cpu_image} pulled from the registry as {expected_ref} (nothing built)" in pulled.stdout
        assert not [
            line for line in pulled.stderr.splitlines() if line.startswith("building ")
        ]  # nothing built
        assert stub.images.get(cpu_image).id == main_id
        print(f"pull back on the second engine (rasa-gpu build --registry): {pull_seconds:.1f} s")

        # (d) And it runs.
        out = stub.containers.run(
            cpu_image,
            ["-c", "import rasa; print(rasa.__version__)"],
            entrypoint=["python3"],
            network_mode="none",
            remove=True,
        )
        assert "3.6.21" in out.decode()
    finally:
        for client in (docker_client, stub):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(expected_ref)
        with contextlib.suppress(docker.errors.ImageNotFound):
            stub.images.remove(
                cpu_image, force=True
            )  # the stand-in engine keeps only what its other tests use
        stub.close()


# ---- push --host: the far engine pushes ------------------------------------------------------------------------------

#: The network namespace of the SSH engine's dockerd (scripts/remote-engine.sh: NS=rgpu-remote).
REMOTE_NETNS = "/run/netns/rgpu-remote"


@pytest.mark.docker
@pytest.mark.slow
def test_push_with_host_pushes_from_that_engine_with_this_machines_login(registry, cpu_image, docker_client):
    """`push --host ssh://…`: the engine over SSH tags and pushes its own image; the login is the one of `docker
    login` on this machine (the far engine has none), and it appears in no output. The registry's port of this host
    is relayed into that engine's network namespace."""
    host, ssh_path, socket_url = (
        os.environ.get(f"RASA_GPU_TEST_{k}", "") for k in ("SSH_HOST", "SSH_PATH", "REMOTE_SOCKET")
    )
    if not (host and ssh_path and socket_url and os.path.exists(REMOTE_NETNS)):
        message = "the SSH engine is not set up; scripts/test.sh starts it with scripts/remote-engine.sh"
        if require_docker():
            pytest.fail(message)
        pytest.skip(message)
    remote = docker.DockerClient(base_url=socket_url)
    expected_ref = f"{registry.host}/rasa-gpu:3.6.21-tf2.12.0-cpu-{cpu_image.rsplit('-', 1)[1]}"
    loaded = False
    try:
        remote.images.get(cpu_image)
    except docker.errors.ImageNotFound:  # not built there yet (test_remote.py builds it): this engine's copy
        remote.images.load(docker_client.images.get(cpu_image).save(named=True))
        loaded = True
    env = {"PATH": f"{ssh_path}:{os.environ['PATH']}", "RASA_GPU_CUDA": "none"}

    def push_with(docker_config: Path):
        return run_cli(
            "push",
            str(EXAMPLE_BOT),
            "--registry",
            registry.host,
            "--host",
            host,
            env={**env, "DOCKER_CONFIG": str(docker_config)},
        )

    try:
        with host_port_in(REMOTE_NETNS, registry.port):
            refused = push_with(registry.logged_out)
            assert_one_line_error(refused, None, "refused the push (not logged in)")
            pushed = push_with(registry.logged_in)
        assert pushed.returncode == 0, pushed.output
        ref, digest = pushed.stdout.split()
        assert ref == expected_ref
        # The far engine named and pushed it; this machine's engine did neither.
        assert remote.images.get(expected_ref).id == remote.images.get(cpu_image).id
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(expected_ref)
        _, headers = registry.get(
            f"/v2/rasa-gpu/manifests/{expected_ref.rsplit(':', 1)[1]}",
            accept="application/vnd.docker.distribution.manifest.v2+json",
        )
        assert headers["Docker-Content-Digest"] == digest
        assert registry.password not in pushed.output + refused.output
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            remote.images.remove(expected_ref)
        if loaded:
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                remote.images.remove(cpu_image)
        remote.close()
