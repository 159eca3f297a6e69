"""The documented Kubernetes steps (docs/clusters.md), followed for real up to `kubectl apply` (where an API server is needed), and the
Job's container run on the real Docker engine the way its pod would run it: the ConfigMap's inputs, the pod's
command, arguments, environment and user, a folder for the claim. The model it writes parses an intent."""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
import yaml
from support import BOT_UID, EXAMPLE_BOT, REPO, copy_bot, intent_of, require_docker

from rasa_gpu.queues import kubernetes


@pytest.fixture
def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        message = "no kubectl (Debian: kubernetes-client; scripts/test.sh installs it)"
        if require_docker():
            pytest.fail(message)
        pytest.skip(message)
    return found


def _readme_steps() -> list[str]:
    text = (REPO / "docs" / "clusters.md").read_text(encoding="utf-8")
    section = text[text.index("**Kubernetes.**") : text.index("**Scale to zero")]
    block = section[section.index("Step by step") :].split("\n\n")[1]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_the_readme_steps_up_to_the_api_server(kubectl, tmp_path):
    steps = _readme_steps()
    assert [s.split()[:2] for s in steps] == [
        ["rasa-gpu", "push"],
        ["rasa-gpu", "submit"],
        ["kubectl", "apply"],
        ["kubectl", "wait"],
    ], steps
    shim = tmp_path / "bin" / "rasa-gpu"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m rasa_gpu "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    copy_bot(EXAMPLE_BOT, tmp_path / "example_bot")
    env = {
        **os.environ,
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(tmp_path / "kubeconfig"),  # no cluster configured: kubectl's own default
    }
    push, submit, apply, _wait = steps
    # The push is tested against a real registry in test_push.py; registry.example.com does not exist.
    assert "--registry registry.example.com/team" in push
    done = subprocess.run(["bash", "-c", submit], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all((tmp_path / "job.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["ConfigMap", "PersistentVolumeClaim", "Job"]
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31", strict=True)
    [container] = docs[2]["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("registry.example.com/team/")
    assert docs[2]["metadata"]["labels"][kubernetes.LABEL] == "example-bot"  # what `kubectl wait -l` selects
    assert "rasa-gpu.io/bot=example-bot" in _wait
    refused = subprocess.run(["bash", "-c", apply], cwd=tmp_path, env=env, capture_output=True, text=True)
    # Here an API server is needed, and there is none: kubectl says it cannot reach one.
    assert refused.returncode != 0
    assert re.search(r"connection refused|no such host|localhost:8080", refused.stderr), refused.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_the_jobs_container_trains_as_its_pod_would(trained_bot, built_image, docker_client, tmp_path):
    bot = copy_bot(trained_bot[0], tmp_path / "bot")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa_gpu",
            "submit",
            str(bot),
            "--to",
            "kubernetes",
            "--dry-run",
            "--gpu-count",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    config_map, claim, job = yaml.safe_load_all(result.stdout)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == built_image and "resources" not in container  # no registry; --gpus 0
    # The claim: a folder with the warm Rasa cache of the trained fixture in it; the pod's emptyDir: a folder too.
    work, empty = tmp_path / "claim", tmp_path / "emptydir"
    shutil.copytree(bot / ".rasa" / "cache", work / "cache")
    empty.mkdir()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for key, value in config_map["binaryData"].items():
        (inputs / key).write_bytes(base64.b64decode(value))
    user, group = pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]
    for path in [work, empty, *work.rglob("*")]:
        os.lchown(path, user, group)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["bot"] and "persistentVolumeClaim" in volumes["work"]
    run = docker_client.containers.run(
        container["image"],
        container["command"][1:] + container["args"],
        entrypoint=container["command"][:1],
        user=f"{user}:{pod['securityContext']['runAsGroup']}",
        environment={e["name"]: e["value"] for e in container["env"]},
        volumes={
            str(work): {"bind": mounts["work"], "mode": "rw"},
            str(empty): {"bind": mounts["bot"], "mode": "rw"},
            str(inputs): {"bind": mounts["inputs"], "mode": "ro"},
            # The fixture's cache was written by a local training, whose cache database names its entries by
            # their path there (/bot/.rasa/cache/...); a cache the Job wrote itself names /work/cache/....
            str(work / "cache"): {"bind": "/bot/.rasa/cache", "mode": "ro"},
        },
        labels={"io.rasa-gpu.test": "kubernetes-job"},
        detach=True,
    )
    try:
        status = run.wait(timeout=600)
        logs = run.logs().decode(errors="replace")
    finally:
        run.remove(force=True)
    assert status["StatusCode"] == 0, logs[-3000:]
    run_id = job["metadata"]["annotations"]["rasa-gpu.io/run"]
    [model] = (work / run_id / "out").glob("*.tar.gz")
    assert (empty / "domain.yml").read_bytes() == (bot / "domain.yml").read_bytes()
    # The cache on the claim (RASA_CACHE_DIRECTORY=/work/cache) is used.
    assert "Restored component 'DIETClassifier' from cache" in logs, logs[-3000:]
    served = tmp_path / "served"
    (served / "models").mkdir(parents=True)
    shutil.copy(model, served / "models" / model.name)
    for path in [served, *served.rglob("*")]:
        os.lchown(path, BOT_UID, BOT_UID)
    assert (
        intent_of(docker_client, built_image, served, served / "models" / model.name, "hello there")
        == "greet"
    )
