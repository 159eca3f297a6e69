"""Kubernetes Job manifests, validated offline against the Kubernetes OpenAPI schema (no API server here)."""

from __future__ import annotations

import base64
import io
import tarfile

import pytest
import yaml
from support import EXAMPLE_BOT, copy_bot

from rasa_gpu.errors import SettingsError
from rasa_gpu.project import BotProject
from rasa_gpu.queues import kubernetes
from rasa_gpu.settings import load_settings

kubernetes_validate = pytest.importorskip("kubernetes_validate")
KUBERNETES_VERSION = "1.31"
IMAGE = "registry.example.com/team/rasa-gpu:3.6.21-tf2.12.0-gpu-0123456789ab"


def _job(gpus: int, pulled: bool, **options) -> kubernetes.KubeJob:
    return kubernetes.KubeJob(
        bot_name="Example_Bot",
        run_id="a1b2c3d4e5f6",
        image=IMAGE if pulled else "rasa-gpu/rasa:3.6.21-tf2.12.0-gpu-0123456789ab",
        pulled=pulled,
        options=kubernetes.KubeOptions(gpus=gpus, **options),
        train_args=("--augmentation", "0"),
    )


@pytest.mark.parametrize("pulled", [True, False], ids=["registry", "no-registry"])
@pytest.mark.parametrize("gpus", [1, 0], ids=["gpu", "cpu"])
def test_the_manifests_validate_against_the_kubernetes_schema(gpus, pulled):
    docs = list(yaml.safe_load_all(kubernetes.render(_job(gpus, pulled, cpus="4", memory="16Gi"))))
    assert [d["kind"] for d in docs] == ["ConfigMap", "PersistentVolumeClaim", "Job"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    job = docs[2]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert container["imagePullPolicy"] == ("IfNotPresent" if pulled else "Never")
    limits = container["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") == (1 if gpus else None)
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == docs[1]["metadata"]["name"]
    assert pod["volumes"][2]["configMap"]["name"] == docs[0]["metadata"]["name"]
    # The bot at /bot, as in every rasa-gpu container.
    assert pod["volumes"][1] == {"name": "bot", "emptyDir": {}}


def test_node_selector_tolerations_and_the_license_secret_by_reference():
    job = kubernetes.KubeJob(
        "bot",
        "r1",
        IMAGE,
        True,
        kubernetes.KubeOptions(
            node_selector={"nvidia.com/gpu.present": "true"},
            tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
        ),
        license_secret="rasa-pro-license",
    )
    text = kubernetes.render(job)
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    pod = docs[2]["spec"]["template"]["spec"]
    assert (
        pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    )
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    # Rasa's cache and the language models' on the claim, beside each other (not one in the other)
    assert (env["RASA_CACHE_DIRECTORY"], env["HF_HOME"]) == ("/work/cache", "/work/huggingface")
    assert env["HOME"] == "/tmp" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    [license_env] = [e for e in pod["containers"][0]["env"] if e["name"] == "RASA_PRO_LICENSE"]
    assert license_env == {
        "name": "RASA_PRO_LICENSE",
        "valueFrom": {"secretKeyRef": {"name": "rasa-pro-license", "key": "RASA_PRO_LICENSE"}},
    }


def test_a_broken_manifest_fails_the_same_validation():
    """The validator is not a rubber stamp: a misspelt field and a wrong type are refused."""
    job = kubernetes.manifests(_job(1, True))[2]
    job["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_configmap_carries_exactly_the_training_inputs(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    (bot / "models").mkdir()
    (bot / "models" / "old.tar.gz").write_bytes(b"x" * 1000)  # models and state never travel
    (bot / ".rasa-gpu").mkdir()
    project = BotProject.load(bot)
    job = kubernetes.KubeJob(
        "bot", "r1", IMAGE, True, kubernetes.KubeOptions(), inputs=project.inputs_archive()
    )
    [config_map] = [d for d in kubernetes.manifests(job) if d["kind"] == "ConfigMap"]
    packed = base64.b64decode(config_map["binaryData"][kubernetes.INPUTS_KEY])
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        names = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    expected = {project.relative(p): p.read_bytes() for p in project.training_inputs()}
    assert names == expected and "config.yml" in names and "domain.yml" in names
    assert project.inputs_archive() == packed  # same inputs, same bytes (no times, no owners)


def test_inputs_too_large_for_a_configmap_are_one_line():
    job = kubernetes.KubeJob("bot", "r1", IMAGE, True, kubernetes.KubeOptions(), inputs=b"x" * 800_000)
    with pytest.raises(
        kubernetes.InputsTooLarge, match=r"more than a Kubernetes ConfigMap holds .*--to slurm"
    ):
        kubernetes.manifests(job)


def test_the_kubernetes_table_of_the_settings(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text(
        '[kubernetes]\nnamespace = "bots"\nstorage_class = "fast"\n'
        'node_selector = { "nvidia.com/gpu.present" = "true" }\n'
        'tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]\n'
    )
    settings = load_settings(tmp_path)
    assert settings.kubernetes_namespace == "bots" and settings.kubernetes_storage_class == "fast"
    assert settings.kubernetes_node_selector == {"nvidia.com/gpu.present": "true"}
    assert settings.kubernetes_tolerations[0]["operator"] == "Exists"
    (tmp_path / "rasa-gpu.toml").write_text('[kubernetes]\nnode_selector = "gpu"\n')
    with pytest.raises(SettingsError, match="node_selector must be a table of strings"):
        load_settings(tmp_path)
