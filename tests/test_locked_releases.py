"""Releases other than 3.6.21 train from their locked sets on a real engine: the oldest Rasa Open Source minor
(3.1, whose range today admits the websockets that kills it at import), and a lock made to break gives the one line
and leaves no name. The newest minor (3.6) is what the rest of the tests train. CPU-only images (--cuda none): the
CUDA layers are the same for every release of a TensorFlow line and test_cuda_images checks them.

Every release of the matrix is covered by tools/matrix_check.py (about 3 minutes a row)."""

from __future__ import annotations

import json
import os
import re
import urllib.request

import pytest
from support import EXAMPLE_BOT, copy_bot, models, run_cli

from rasa_gpu import locks
from rasa_gpu.compat import load_matrix
from rasa_gpu.engine import Engine
from rasa_gpu.errors import BuildError
from rasa_gpu.images import ImageSpec, candidate, cpu_twin, ensure_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

OLDEST = "3.1.7"


def _base(docker_client) -> str:
    base = os.environ.get("RASA_GPU_BASE_IMAGE") or "rasa-gpu/base:bullseye"
    if not docker_client.images.list(name=base):
        pytest.skip(f"no base image {base} here (scripts/setup.sh builds it)")
    return base


def _freeze(docker_client, tag: str) -> dict[str, str]:
    out = docker_client.containers.run(
        tag, ["-m", "pip", "list", "--format", "json"], entrypoint=["python3"], remove=True
    )
    return {
        re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"]
        for p in json.loads(out.decode().splitlines()[-1])
    }


def _lock_pins(text: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", text, flags=re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def _remove(docker_client, *names: str) -> None:
    for name in names:
        if docker_client.images.list(name=name):
            docker_client.images.remove(name, force=True)


def test_the_oldest_open_source_minor_trains_from_its_lock(docker_client, tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot")
    base = _base(docker_client)
    spec = ImageSpec(release=load_matrix().get(OLDEST), base_image=base, cuda="none")
    _remove(docker_client, spec.rasa_tag(), cpu_twin(spec.rasa_tag()))  # so this run builds it and checks it
    args = ["--rasa-version", OLDEST, "--cuda", "none", "--gpu", "off", "--base-image", base]
    result = run_cli(
        "train", str(bot), *args, "--set", "DIETClassifier.epochs=2", "--set", "TEDPolicy.epochs=2"
    )
    assert result.returncode == 0, result.output
    assert "  ✓ installing the locked set of Rasa 3.1.7 (uv, " in result.stderr  # the step, as its stage
    assert "  ✓ checking the new image: training a tiny bot in it (trained and loaded) " in result.stderr
    [model] = models(bot)
    assert "Rasa 3.1.7" in result.stdout and str(model) in result.stdout
    # The image holds exactly the lock: every pin at its version (the base's own pip and setuptools aside).
    tag = re.search(r"training in (\S+)", result.stdout + result.stderr).group(1)
    installed = _freeze(docker_client, tag)
    release = load_matrix().get(OLDEST)
    pinned = _lock_pins(locks.release_locks(release)["3.9"].decode())
    assert {name: installed.get(name) for name in pinned} == pinned
    assert pinned["websockets"] == "10.3"


def test_two_builds_from_the_base_up_install_the_same_set(docker_client):
    """The tagged image and a second build of the same context with nothing from the layer cache (every download
    again) hold the same packages at the same versions."""
    spec = ImageSpec(release=load_matrix().get(OLDEST), base_image=_base(docker_client), cuda="none")
    engine = Engine.connect()
    first = ensure_image(engine, spec, lambda _line: None).tag
    again = candidate(spec.rasa_tag()).replace("candidate:", "candidate:again-")
    try:
        engine.build(
            spec.context_tar(), tag=again, target="rasa", labels={}, on_line=lambda _line: None, nocache=True
        )
        assert _freeze(docker_client, again) == _freeze(docker_client, first)
    finally:
        _remove(docker_client, again)


def _websockets_15_hashes() -> list[str]:
    request = urllib.request.Request(
        "https://pypi.org/simple/websockets/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            files = json.load(answer)["files"]
    except OSError as exc:
        pytest.skip(f"pypi.org is not reachable ({exc}): the broken lock needs websockets 15's hashes")
    return [f["hashes"]["sha256"] for f in files if f["filename"].startswith("websockets-15.0.1")]


def test_a_lock_made_to_break_gives_the_exception_and_the_package_and_leaves_no_name(
    docker_client, monkeypatch
):
    release = load_matrix().get(OLDEST)
    good = locks.release_locks(release)["3.9"].decode()
    pin = "websockets==15.0.1 \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in _websockets_15_hashes())
    broken = re.sub(
        r"^websockets==10\.3 \\\n(?:    --hash=sha256:[0-9a-f]+(?: \\)?\n)+", pin + "\n", good, flags=re.M
    )
    assert "websockets==15.0.1" in broken and "websockets==10.3" not in broken
    monkeypatch.setattr(locks, "release_locks", lambda r: {"3.9": broken.encode()} if r == release else {})
    spec = ImageSpec(release=release, base_image=_base(docker_client), cuda="none")
    lines: list[str] = []
    with pytest.raises(BuildError) as raised:
        ensure_image(Engine.connect(), spec, lines.append)
    message = raised.value.message
    assert (
        "the new image of Rasa 3.1.7 did not train a tiny bot: ImportError: cannot import name 'CLOSED'"
        in message
    )
    assert "(raised in sanic " in message and "nothing was tagged" in message, message
    assert "\n" not in message
    for name in (spec.tag(), cpu_twin(spec.tag())):
        assert not docker_client.images.list(name=name), name
    candidates = [t for i in docker_client.images.list(name="rasa-gpu/candidate") for t in i.tags]
    assert not [t for t in candidates if t.startswith(candidate(spec.tag()))], candidates
