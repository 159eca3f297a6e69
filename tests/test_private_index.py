"""A package index that needs a login (issue 21, point 4): the user and password of --pip-index-url reach pip inside
the build, and are in no layer, no history line, no saved image, no image the build left, no Dockerfile and no line
that rasa-gpu shows. Point 3 for Dockerfiles: base images and index URLs that would add instructions are refused in one
line.

The index is a real HTTPS server with Basic auth on the Docker bridge's gateway (where build containers reach the
host), serving a PEP 503 simple index of wheels made here; any other project is redirected to PyPI, as an Artifactory
or devpi that proxies PyPI does. So that no Rasa and no TensorFlow are downloaded, the images are built for a stand-in
release whose "rasa" and "tensorflow" are two tiny wheels of this index: the real Dockerfile, the real builder, the
real pip, in well under a minute."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import ssl
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from docker.errors import ImageNotFound
from support import EXAMPLE_BOT, assert_one_line_error, copy_bot, run_cli

from rasa_gpu.compat import load_matrix
from rasa_gpu.errors import BuildError
from rasa_gpu.images import INDEX_LOGIN_ARG, ImageSpec, ensure_image

USER = "deploy"
STAND_IN = "0.0.1"  # the version of the stand-in rasa and tensorflow
PROBE = "rasagpu-private-probe"  # the bot's own requirement, only on the private index
PROBE_SAYS = "installed from the private index"


def test_a_login_in_the_index_url_is_in_no_printed_dockerfile(tmp_path):
    password = f"s3cr3t-PASS-{secrets.token_hex(4)}"
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    (bot / "requirements.txt").write_text("rasa==3.6.21\nnltk==3.8\n")
    url = f"https://{USER}:{password}@pypi.corp/simple"
    result = run_cli("build", str(bot), "--print", "--pip-index-url", url, timeout=120)
    assert result.returncode == 0, result.output
    assert password not in result.output and f"{USER}:" not in result.output
    assert f'--index-url https://"${INDEX_LOGIN_ARG}"@pypi.corp/simple' in result.stdout


@pytest.mark.parametrize(
    ("args", "setting", "needles"),
    [
        (
            ("--base-image", "python 3.10"),
            None,
            ("--base-image 'python 3.10' is not an image reference", "use NAME"),
        ),
        (
            (),
            'base_image = "Python:3.10"',
            ("rasa-gpu.toml: base_image 'Python:3.10' is not an image reference",),
        ),
        (
            ("--pip-index-url", "ftp://deploy:hunter22@pypi.corp/simple"),
            None,
            ("--pip-index-url 'ftp://****@pypi.corp/simple' is not a package index URL", "https://HOST/PATH"),
        ),
        (
            (),
            'pip_index_url = "https://deploy:hunter22@pypi.corp/simple other"',
            ("rasa-gpu.toml: pip_index_url is not a package index URL: it holds a space or a line break",),
        ),
    ],
)
def test_values_that_would_change_the_dockerfile_are_refused_in_one_line(tmp_path, args, setting, needles):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    if setting:
        (bot / "rasa-gpu.toml").write_text(setting + "\n")
    # the environment's base image (CI's registry-less one) would win over the file's
    result = run_cli("build", str(bot), "--print", *args, timeout=120, env={"RASA_GPU_BASE_IMAGE": ""})
    line = assert_one_line_error(result, 1, *needles)
    assert "hunter22" not in result.output, line


# ---- a real index with a login, a real build -----------------------------------------------------------------------


@dataclass
class PrivateIndex:
    url: str  # with the login
    password: str
    ca: bytes  # the server's self-signed certificate (--ca-cert)
    #: (path, whether it came with the right login) of every request.
    requests: list[tuple[str, bool]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # project -> sha256 of its wheel


#: The stand-in Rasa's API, enough for the tiny bot that every new image trains before it is tagged: a "model"
#: file written where Rasa would write it, and an agent that loads it.
STAND_IN_API = {
    "rasa/api.py": (
        "import os\n"
        "class Result:\n    code = 0\n    model = None\n"
        "def train(domain, config, training_files, output, **kwargs):\n"
        "    os.makedirs(output, exist_ok=True)\n"
        "    result = Result()\n"
        "    result.model = os.path.join(output, 'stand-in.tar.gz')\n"
        "    open(result.model, 'w').write('stand-in model')\n"
        "    return result\n"
    ),
    "rasa/core/__init__.py": "",
    "rasa/core/agent.py": (
        "class Agent:\n"
        "    @classmethod\n"
        "    def load(cls, path):\n"
        "        assert open(path).read() == 'stand-in model'\n"
        "        return cls()\n"
        "    async def parse_message(self, text):\n"
        "        return {'intent': {'name': 'greet'}}\n"
    ),
}


def _wheel(folder: Path, name: str, version: str, code: str, modules: dict[str, str] | None = None) -> Path:
    """A pure-Python wheel of one package (and any further modules of it), written as a zip (no build backend, no
    network)."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": code,
        **(modules or {}),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: rasa-gpu-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist_info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist_info}/RECORD"])
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def _bridge_gateway(docker_client) -> str:
    """The address at which build containers (on the default bridge) reach this host: the bridge's gateway (its
    first address when the engine does not say), if it is an address of this machine."""
    config = (docker_client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or [{}])[0]
    gateway = config.get("Gateway") or (
        str(next(ipaddress.ip_network(config["Subnet"]).hosts())) if config.get("Subnet") else None
    )
    if gateway is None or os.environ.get("DOCKER_HOST", "unix://").split("://")[0] not in ("unix", ""):
        pytest.skip("the engine is not on this machine: its build containers cannot reach a test server here")
    return str(gateway)


@pytest.fixture
def private_index(docker_client, tmp_path) -> Iterator[PrivateIndex]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (it makes the index's certificate)")
    host = _bridge_gateway(docker_client)
    folder = tmp_path / "index"
    folder.mkdir()

    # A CA (the --ca-cert a company hands out) and the index's certificate signed by it: uv, like browsers, refuses
    # a CA certificate used as the server's own.
    def openssl_run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)

    openssl_run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rasa-gpu-test CA",
                "-keyout", "ca-key.pem", "-out", "cert.pem")  # fmt: skip
    openssl_run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rasa-gpu-test", "-keyout", "key.pem",
                "-out", "server.csr")  # fmt: skip
    (folder / "server.ext").write_text(f"subjectAltName=IP:{host}\nbasicConstraints=CA:FALSE\n")
    openssl_run("x509", "-req", "-in", "server.csr", "-CA", "cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "1", "-extfile", "server.ext", "-out", "server.pem")  # fmt: skip
    wheels = [
        _wheel(folder, "rasa", STAND_IN, f"__version__ = {STAND_IN!r}\n", STAND_IN_API),
        _wheel(folder, "tensorflow", STAND_IN, f"__version__ = {STAND_IN!r}\n"),
        _wheel(folder, PROBE, "1.0", f"SAYS = {PROBE_SAYS!r}\n"),
    ]
    by_project = {re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower(): w for w in wheels}
    password = f"s3cr3t-PASS-{secrets.token_hex(6)}"
    expected = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
    index = PrivateIndex(url="", password=password, ca=(folder / "cert.pem").read_bytes())
    index.digests = {name: hashlib.sha256(w.read_bytes()).hexdigest() for name, w in by_project.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            authorized = self.headers.get("Authorization") == expected
            index.requests.append((self.path, authorized))
            if not authorized:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="rasa-gpu-test"')
                self.end_headers()
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts[:1] == ["simple"] and len(parts) == 2:
                project = re.sub(r"[-_.]+", "-", parts[1]).lower()
                wheel = by_project.get(project)
                if wheel is None:  # everything else from PyPI, as a proxying index does
                    self.send_response(302)
                    self.send_header("Location", f"https://pypi.org/simple/{project}/")
                    self.end_headers()
                    return
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                self._send(
                    f'<a href="/files/{wheel.name}#sha256={digest}">{wheel.name}</a>\n'.encode(), "text/html"
                )
            elif parts[:1] == ["files"] and len(parts) == 2 and (folder / parts[1]).is_file():
                self._send((folder / parts[1]).read_bytes(), "application/octet-stream")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            pass

    try:
        server = ThreadingHTTPServer((host, 0), Handler)
    except OSError as exc:
        pytest.skip(
            f"cannot listen on the Docker bridge's address {host} ({exc}): the engine is not on this machine"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    index.url = f"https://{USER}:{password}@{host}:{server.server_address[1]}/simple"
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


def _base_image(docker_client) -> str:
    base = os.environ.get("RASA_GPU_BASE_IMAGE") or "rasa-gpu/base:bullseye"
    try:
        docker_client.images.get(base)
    except Exception:  # noqa: BLE001 - any lookup failure: no such image here
        pytest.skip(f"no base image {base} here (scripts/setup.sh builds it)")
    return base


def _history(ref: str) -> str:
    return subprocess.run(
        ["docker", "history", "--no-trunc", ref], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.docker
@pytest.mark.parametrize("locked", [True, False], ids=["locked-set-uv", "no-lock-pip"])
def test_an_index_login_reaches_pip_and_stays_out_of_every_layer_history_and_line(
    docker_client, private_index, tmp_path, monkeypatch, locked
):
    from rasa_gpu import locks
    from rasa_gpu.engine import Engine

    if shutil.which("docker") is None:
        pytest.skip(
            "the docker command is not installed (docker history and docker save are what this checks)"
        )
    release = dataclasses.replace(
        load_matrix().get("3.6.21"),
        version=STAND_IN,
        tensorflow=STAND_IN,
        tensorflow_text=None,
        python=">=3.7",
    )
    if (
        locked
    ):  # the stand-in's locked set: its two wheels with their hashes, installed by uv through the login
        lock = "".join(
            f"{name}=={STAND_IN} \\\n    --hash=sha256:{private_index.digests[name]}\n"
            for name in ("rasa", "tensorflow")
        )
        real = locks.release_locks
        monkeypatch.setattr(
            locks, "release_locks", lambda r: {"3.9": lock.encode()} if r.version == STAND_IN else real(r)
        )
    spec = ImageSpec(
        release=release,
        base_image=_base_image(docker_client),
        cuda="none",
        pip_index_url=private_index.url,
        ca_certs=(private_index.ca,),
        extra_requirements=(f"{PROBE}==1.0",),
    )
    password = private_index.password
    # Every form the login could take: as written, as the Basic auth header carries it.
    forms = [password, f"{USER}:{password}", base64.b64encode(f"{USER}:{password}".encode()).decode()]
    before = {image.id for image in docker_client.images.list(all=True)}
    lines: list[str] = []
    tags = [spec.rasa_tag(), spec.tag()]
    try:
        result = ensure_image(Engine.connect(), spec, lines.append)
        assert result.built and result.tag == spec.tag(), lines

        # The login reached pip: the index served its pages and wheels only to requests that carried it ...
        served = [path for path, authorized in private_index.requests if authorized]
        assert f"/simple/{PROBE}/" in served and any(
            p.startswith("/files/rasagpu_private_probe-1.0") for p in served
        )
        assert any(p.startswith(f"/files/rasa-{STAND_IN}") for p in served), private_index.requests
        assert any("installing the locked set" in line for line in lines) is locked, lines
        assert any("training a tiny bot in the new image before it is tagged: trained" in ln for ln in lines)
        # ... and the bot's package is in the image.
        says = docker_client.containers.run(
            spec.tag(),
            entrypoint=["python3", "-c", "import rasagpu_private_probe as p; print(p.SAYS)"],
            remove=True,
        )
        assert says.decode().strip() == PROBE_SAYS

        # Not in rasa-gpu's output (pip's "Looking in indexes" line is masked, the user too) ...
        output = "\n".join(lines)
        assert not [f for f in forms if f in output] and f"{USER}:" not in output
        assert "Looking in indexes: https://****@" in output
        # ... nor in the Dockerfile or anything else of the build context ...
        assert not [f for f in forms if f.encode() in spec.context_tar()]
        # ... nor in the history of the two images (every step of both stages) ...
        for tag in tags:
            history = _history(tag)
            assert (
                f'"${INDEX_LOGIN_ARG}"@' in history
            )  # the RUN lines are there, with the argument's name only
            assert not [f for f in forms if f in history], history
        # ... nor in any byte of the saved images (layers, configs, manifests) ...
        saved = tmp_path / "saved.tar"
        subprocess.run(["docker", "save", "-o", str(saved), *tags], check=True)
        data = saved.read_bytes()
        assert len(data) > 1_000_000 and not [f for f in forms if f.encode() in data]
        # ... nor in any image the build made or left behind, dangling ones included.
        dangling = {i.id for i in docker_client.images.list(all=True, filters={"dangling": True})}
        made = [i for i in docker_client.images.list(all=True) if i.id not in before]
        assert made, "the build made no image"
        for image in made:
            try:  # another build of this run (a parallel worker's) may remove its own candidate meanwhile
                described = str(image.attrs) + _history(image.id) + str(image.history())
            except (ImageNotFound, subprocess.CalledProcessError):
                continue
            assert not [f for f in forms if f in described], (image.id, image.id in dangling)
    finally:
        for tag in reversed(tags):
            if docker_client.images.list(name=tag):
                docker_client.images.remove(tag)


@pytest.mark.docker
def test_a_failed_build_masks_the_login_in_its_lines_and_its_error(docker_client):
    """Whatever a build step prints, rasa-gpu shows (and the run history keeps) no login: the build argument's value
    and any URL's user and password are masked in the streamed lines, the error and its details."""
    import io
    import tarfile

    from rasa_gpu.engine import Engine

    password = f"s3cr3t-PASS-{secrets.token_hex(6)}"
    dockerfile = (
        f"FROM {_base_image(docker_client)}\n"
        f'RUN echo "index https://${INDEX_LOGIN_ARG}@pypi.corp/simple"; echo "raw ${INDEX_LOGIN_ARG}"; '
        f'echo "other https://u:{password}x@h/"; exit 3\n'
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    lines: list[str] = []
    tag = f"rasa-gpu-test/masked:{secrets.token_hex(4)}"
    with pytest.raises(BuildError) as raised:
        Engine.connect().build(
            buffer.getvalue(),
            tag=tag,
            target="",
            labels={},
            on_line=lines.append,
            secret_args={INDEX_LOGIN_ARG: f"{USER}:{password}"},
        )
    shown = "\n".join([*lines, raised.value.message, *raised.value.details])
    assert password not in shown and f"{USER}:" not in shown, shown
    assert "index https://****@pypi.corp/simple" in shown and "raw ****" in shown
    assert "other https://****@h/" in shown
    assert "returned a non-zero code: 3" in raised.value.message
    assert not docker_client.images.list(name=tag)
