"""tcp:// engines: encrypted with the TLS of the environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or of the Docker
context, whichever way the address came (--host, rasa-gpu.toml, DOCKER_HOST, a context); a plain one is said once.

The engine for the real tests is this machine's, reached through a relay inside a private network namespace (nothing
outside it reaches its port): over TLS that wants a client certificate signed by a CA made here (as dockerd's
--tlsverify does), or plain. The CLI runs in that namespace."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from relay import Relay, listen_in, private_netns
from support import EXAMPLE_BOT, REPO, CliResult, assert_one_line_error, cli_command, copy_bot

from rasa_gpu.errors import SettingsError
from rasa_gpu.events import Notice
from rasa_gpu.runners import RemoteRunner, Where, connect

IN_CLEAR = (
    "is not encrypted: the bot's inputs and secrets (a Rasa Pro license, an index login) travel in clear"
)
CLIENT = "rasa-gpu-test-client"


NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(folder: Path, name: str) -> Path:
    """folder/ca.pem and key.pem: a certificate authority."""
    folder.mkdir(parents=True)
    _openssl("req", "-x509", *NEW_KEY, "-out", "ca.pem", "-days", "2", "-subj", f"/CN={name}", cwd=folder)
    return folder


def _signed(folder: Path, ca: Path, name: str, usage: str, san: str = "") -> None:
    """folder/cert.pem and key.pem: a certificate for `name`, signed by the CA in the folder `ca`."""
    folder.mkdir(parents=True)
    _openssl("req", *NEW_KEY, "-out", "req.csr", "-subj", f"/CN={name}", cwd=folder)
    (folder / "ext.cnf").write_text(
        f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else "")
    )
    signer = ("-CA", str(ca / "ca.pem"), "-CAkey", str(ca / "key.pem"), "-CAcreateserial", "-days", "2")
    _openssl("x509", "-req", "-in", "req.csr", *signer, "-extfile", "ext.cnf", "-out", "cert.pem", cwd=folder)


@dataclass
class Certs:
    server: Path  # cert.pem, key.pem for 127.0.0.1
    client: Path  # a DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem
    stranger: Path  # the same, but the client certificate is signed by another CA
    ca: Path
    other_ca: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    """A CA, a server certificate for 127.0.0.1 and client certificates, made as Docker's guide to --tlsverify does."""
    root = tmp_path_factory.mktemp("tls")
    ca, other_ca = _ca(root / "ca", "rasa-gpu-test-ca"), _ca(root / "other-ca", "someone-else")
    _signed(root / "server", ca, "127.0.0.1", "serverAuth", "IP:127.0.0.1")
    _signed(root / "client", ca, CLIENT, "clientAuth")
    _signed(root / "stranger", other_ca, "stranger", "clientAuth")
    for folder in (root / "client", root / "stranger"):
        (folder / "ca.pem").write_bytes((ca / "ca.pem").read_bytes())
    return Certs(root / "server", root / "client", root / "stranger", ca, other_ca)


# ---- which TLS a tcp:// address gets (nothing is contacted) ----------------------------------------------------------


def _clean_env(monkeypatch, **env: str) -> None:
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("way", ["--host", "DOCKER_HOST"])
def test_a_tcp_host_takes_the_tls_of_the_environment(way, certs, monkeypatch):
    _clean_env(monkeypatch, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs.client))
    url = "tcp://gpu-box:2376"
    if way == "DOCKER_HOST":
        monkeypatch.setenv("DOCKER_HOST", url)
    heard: list = []
    runner = connect(Where(host=url if way == "--host" else None), heard.append)
    assert isinstance(runner, RemoteRunner) and heard == []
    tls = runner._tls
    assert tls.cert == (str(certs.client / "cert.pem"), str(certs.client / "key.pem"))
    assert tls.ca_cert == str(certs.client / "ca.pem") and tls.verify is True


@pytest.mark.parametrize("url", ["tcp://gpu-box:2375", "http://gpu-box:2375"])
def test_a_plain_tcp_host_is_said_once(url, monkeypatch):
    _clean_env(monkeypatch)
    heard: list = []
    runner = connect(Where(host=url), heard.append)
    assert runner._tls is None
    assert heard == [
        Notice(
            f"{url} {IN_CLEAR}; set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use ssh://",
            "warn",
        )
    ]


def test_tls_asked_for_without_the_files_is_one_line(tmp_path, monkeypatch):
    _clean_env(monkeypatch, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(tmp_path))
    (tmp_path / "ca.pem").write_text("")
    with pytest.raises(SettingsError) as caught:
        connect(Where(host="tcp://gpu-box:2376"), print)
    assert caught.value.message == (
        f"DOCKER_TLS_VERIFY/DOCKER_CERT_PATH ask for TLS, but {tmp_path} has no cert.pem or key.pem: put the "
        "engine's CA (ca.pem) and this client's certificate and key (cert.pem, key.pem) there, or point "
        "DOCKER_CERT_PATH at the folder that holds them"
    )


def _docker_config_with_contexts(folder: Path, certs: Certs, port: int = 2376) -> Path:
    """A DOCKER_CONFIG whose contexts the docker CLI itself made (so their TLS files are where it puts them)."""
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    client, host = certs.client, f"host=tcp://127.0.0.1:{port}"
    contexts = {
        "with-tls": f"{host},ca={client}/ca.pem,cert={client}/cert.pem,key={client}/key.pem",
        "ca-only": f"{host},ca={client}/ca.pem",
        "skip-verify": f"{host},skip-tls-verify=true",
        "plain": "host=tcp://127.0.0.1:2375",
    }
    for name, endpoint in contexts.items():
        subprocess.run(
            ["docker", "context", "create", name, "--docker", endpoint],
            env={**os.environ, "DOCKER_CONFIG": str(folder)},
            check=True,
            capture_output=True,
        )
    return folder


def test_a_context_gives_its_own_tls_as_the_docker_cli_does(certs, tmp_path, monkeypatch):
    if subprocess.run(["docker", "context", "--help"], capture_output=True).returncode:
        pytest.skip("the docker CLI (with `docker context`) is not installed")
    config = _docker_config_with_contexts(tmp_path / "docker", certs)
    # The environment's TLS is not a context's: only the context's own files count.
    _clean_env(
        monkeypatch, DOCKER_CONFIG=str(config), DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs.stranger)
    )
    heard: list = []
    tls = {
        name: connect(Where(context=name), heard.append)._tls
        for name in ("with-tls", "ca-only", "skip-verify")
    }
    assert heard == []
    assert tls["with-tls"].cert[0].endswith("/docker/cert.pem") and tls["with-tls"].verify is True
    assert Path(tls["with-tls"].ca_cert).read_bytes() == (certs.ca / "ca.pem").read_bytes()
    assert tls["ca-only"].cert is None and tls["ca-only"].verify is True and tls["ca-only"].ca_cert
    assert tls["skip-verify"].cert is None and tls["skip-verify"].verify is False

    plain = connect(Where(context="plain"), heard.append)
    assert plain._tls is None
    assert heard == [
        Notice(
            f"tcp://127.0.0.1:2375 (context plain) {IN_CLEAR}; give the context TLS (docker context update plain "
            "--docker host=…,ca=…,cert=…,key=…), or use ssh://",
            "warn",
        )
    ]


# ---- against a real engine ---------------------------------------------------------------------------------------


def _engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://") or not Path(host[len("unix://") :]).exists():
        pytest.skip(f"these tests relay to a local engine's unix socket; DOCKER_HOST is {host}")
    return host[len("unix://") :]


@dataclass
class Engine:
    """This machine's engine at tcp://127.0.0.1:PORT inside the network namespace `netns`."""

    netns: str
    url: str
    relay: Relay

    def cli(self, *args: str, env: dict[str, str]) -> CliResult:
        """rasa-gpu in the namespace, with only the Docker variables given in env (none of the caller's)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        proc = subprocess.run(
            ["nsenter", f"--net={self.netns}", *cli_command(*args)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**base, **env},
            cwd=REPO,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _engine_behind(port: int, tls: ssl.SSLContext | None) -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("a private network namespace needs root")
    socket_path = _engine_socket()
    with private_netns() as netns:
        listener = listen_in(netns, port)
        with Relay(listener, lambda: asyncio.open_unix_connection(socket_path), tls) as relay:
            yield Engine(netns, f"tcp://127.0.0.1:{port}", relay)


@pytest.fixture
def tls_engine(certs, docker_client) -> Iterator[Engine]:
    """The engine behind TLS that wants a client certificate of our CA (dockerd --tlsverify), at port 2376."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca / "ca.pem"))
    server.load_cert_chain(certs.server / "cert.pem", certs.server / "key.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    yield from _engine_behind(2376, server)


@pytest.fixture
def plain_engine(docker_client) -> Iterator[Engine]:
    """The engine in clear at port 2375 (dockerd -H tcp://…:2375 without TLS)."""
    yield from _engine_behind(2375, None)


def _tls_env(folder: Path) -> dict[str, str]:
    return {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(folder)}


@pytest.mark.docker
@pytest.mark.parametrize("way", ["--host", "rasa-gpu.toml", "DOCKER_HOST", "--context"])
def test_a_tcp_engine_is_reached_over_tls_with_the_client_certificate(
    way, tls_engine, certs, built_image, tmp_path
):
    bot, args, env = EXAMPLE_BOT, (), _tls_env(certs.client)
    # A CA bundle for Python's requests (corporate machines set one) must not replace the engine's own CA.
    bundle = {"REQUESTS_CA_BUNDLE": str(certs.other_ca / "ca.pem")}
    if way == "--host":
        args = ("--host", tls_engine.url)
    elif way == "rasa-gpu.toml":
        bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
        (bot / "rasa-gpu.toml").write_text(f'host = "{tls_engine.url}"\n')
    elif way == "DOCKER_HOST":
        env["DOCKER_HOST"] = tls_engine.url
    else:
        env = {"DOCKER_CONFIG": str(_docker_config_with_contexts(tmp_path / "docker", certs))}
        args = ("--context", "with-tls")
    result = tls_engine.cli("build", str(bot), *args, env={**env, **bundle})
    assert result.returncode == 0, result.output
    assert result.stdout.split()[0] == built_image  # found there: the engine answered over TLS
    assert IN_CLEAR not in result.stderr
    assert tls_engine.relay.clients and set(tls_engine.relay.clients) == {CLIENT}


@pytest.mark.docker
def test_a_tls_engine_without_the_tls_settings_is_one_line_and_one_warning(tls_engine):
    result = tls_engine.cli("build", str(EXAMPLE_BOT), "--host", tls_engine.url, env={})
    assert_one_line_error(result, 3, f"cannot reach a Docker engine at {tls_engine.url}", "DOCKER_TLS_VERIFY")
    assert result.stderr.count(IN_CLEAR) == 1
    assert tls_engine.relay.clients == []


@pytest.mark.docker
def test_a_client_certificate_of_another_ca_is_refused_in_one_line(tls_engine, certs):
    result = tls_engine.cli("build", str(EXAMPLE_BOT), "--host", tls_engine.url, env=_tls_env(certs.stranger))
    assert_one_line_error(result, 3, f"cannot reach a Docker engine over TLS at {tls_engine.url}")
    assert IN_CLEAR not in result.stderr and tls_engine.relay.clients == []


@pytest.mark.docker
def test_a_plain_tcp_engine_works_and_is_said_exactly_once(plain_engine, built_image):
    result = plain_engine.cli("build", str(EXAMPLE_BOT), "--host", plain_engine.url, env={})
    assert result.returncode == 0, result.output
    assert result.stdout.split()[0] == built_image
    warning = (
        f"warning: {plain_engine.url} {IN_CLEAR}; set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use ssh://"
    )
    assert result.stderr.splitlines().count(warning) == 1, result.stderr
    assert result.stderr.count("not encrypted") == 1
