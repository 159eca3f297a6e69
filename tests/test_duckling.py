"""`rasa-gpu up` for a pipeline with DucklingEntityExtractor, with a real engine, real compose and real Rasa: without
the Duckling image the other services start and one warning says why Duckling's entities will be missing; with an
image that answers Duckling's /parse (a stand-in made here, as no registry is reachable) the Rasa server's
/model/parse returns its entity, config.yml untouched (RASA_DUCKLING_HTTP_URL points Rasa at the service)."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pytest
from support import copy_bot, free_ports, remove_containers_under, run_cli
from test_services import require_compose

from rasa_gpu import services
from rasa_gpu.engine import Engine
from rasa_gpu.project import BotProject

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMPOSE = {"RASA_GPU_COMPOSE": "docker compose"}
#: What the stand-in says about any text that holds "tomorrow": Duckling's own answer shape (dim, body, value).
STAND_IN = r"""
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs


class Duckling(BaseHTTPRequestHandler):
    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        text = form["text"][0]
        start = text.find("tomorrow")
        value = {"value": "2030-01-02T00:00:00.000Z", "grain": "day", "type": "value"}
        found = [] if start < 0 else [
            {"body": "tomorrow", "start": start, "end": start + 8, "dim": "time", "value": value, "latent": False}
        ]
        body = json.dumps(found).encode()
        self.send_response(200 if self.path == "/parse" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", 8000), Duckling).serve_forever()
"""
#: Demo bots name a Duckling on the machine that runs Rasa; in a container that is nobody.
DUCKLING_STEP = "  - name: DucklingEntityExtractor\n    url: http://localhost:8000\n    dimensions: [time]\n"


@pytest.fixture(scope="module")
def duckling_bot(trained_bot, tmp_path_factory) -> Path:
    """The trained example bot with DucklingEntityExtractor in its pipeline, trained again (Rasa's cache keeps the
    rest)."""
    require_compose(COMPOSE["RASA_GPU_COMPOSE"])
    bot = copy_bot(trained_bot[0], tmp_path_factory.mktemp("duckling") / "shop")
    config = bot / "config.yml"
    config.write_text(config.read_text().replace("  - name: EntitySynonymMapper\n", DUCKLING_STEP, 1))
    assert DUCKLING_STEP in config.read_text()
    result = run_cli("train", str(bot), "--gpu", "off")
    assert result.returncode == 0, result.output
    return bot


@pytest.fixture(scope="module")
def stand_in(built_image, docker_client):
    """A small image that answers Duckling's /parse, on top of the training image (which has a Python)."""
    tag = f"rasa-gpu-test/duckling-stand-in:{uuid.uuid4().hex[:8]}"
    dockerfile = (
        f'FROM {built_image}\nCOPY stand_in.py /stand_in.py\nENTRYPOINT ["python3", "/stand_in.py"]\n'
    )
    context = _tar({"Dockerfile": dockerfile.encode(), "stand_in.py": STAND_IN.encode()})
    docker_client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, noprune=False)


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def up(bot: Path):
    ports = free_ports(2)
    args = ["up", str(bot), "--rasa-port", str(ports[0]), "--actions-port", str(ports[1])]
    return run_cli(*args, env=COMPOSE), f"http://127.0.0.1:{ports[0]}"


def down(bot: Path, docker_client) -> None:
    run_cli("down", str(bot), env=COMPOSE)
    assert remove_containers_under(docker_client, bot) == []


def parse(bot: Path, url: str, text: str) -> list[dict]:
    token = services.read_env(BotProject.load(bot))["RASA_AUTH_TOKEN"]
    answer = services.rasa_request(url, token, "POST", "/model/parse", {"text": text}, timeout=60)
    return answer["entities"]


def test_without_the_duckling_image_the_services_start_and_one_line_says_why(duckling_bot, docker_client):
    engine = Engine.connect()
    if engine.image_id(services.DUCKLING_IMAGE) or engine.can_pull(services.DUCKLING_IMAGE):
        pytest.skip(f"this engine has or can pull {services.DUCKLING_IMAGE}: nothing is missing here")
    try:
        result, url = up(duckling_bot)
        assert result.returncode == 0, result.output
        [line] = [line for line in result.stderr.splitlines() if "duckling" in line.lower()]
        assert line.startswith(
            f"warning: the duckling service is not started: {services.DUCKLING_IMAGE} is not on this engine and no "
            "registry answers for it; entities from DucklingEntityExtractor will be missing"
        ), line
        assert "set duckling_image in rasa-gpu.toml" in line
        assert "actions is healthy" in result.output and "rasa is healthy" in result.output
        assert "duckling:" not in (duckling_bot / services.COMPOSE_FILE).read_text()
        entities = parse(duckling_bot, url, "where is my order tomorrow")
        assert not [e for e in entities if e.get("extractor") == "DucklingEntityExtractor"], entities
    finally:
        down(duckling_bot, docker_client)


def test_a_duckling_image_of_the_settings_serves_the_rasa_server(duckling_bot, stand_in, docker_client):
    config_before = (duckling_bot / "config.yml").read_text()
    (duckling_bot / "rasa-gpu.toml").write_text(f'duckling_image = "{stand_in}"\n')
    try:
        result, url = up(duckling_bot)
        assert result.returncode == 0, result.output
        assert "duckling is running" in result.output and "warning: the duckling" not in result.output
        entities = parse(duckling_bot, url, "where is my order tomorrow")
        [duckling] = [e for e in entities if e.get("extractor") == "DucklingEntityExtractor"]
        assert (duckling["entity"], duckling["value"], duckling["start"]) == (
            "time",
            "2030-01-02T00:00:00.000Z",
            len("where is my order "),
        )
        assert (duckling_bot / "config.yml").read_text() == config_before  # url: http://localhost:8000 stays
        compose = (duckling_bot / services.COMPOSE_FILE).read_text()
        assert f"image: {stand_in}" in compose and "RASA_DUCKLING_HTTP_URL: http://duckling:8000" in compose
    finally:
        down(duckling_bot, docker_client)
        (duckling_bot / "rasa-gpu.toml").unlink()
