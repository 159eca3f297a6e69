"""Training as a Kubernetes Job: the manifests (rendered here, applied with the user's kubectl and kubeconfig).

The bot's training inputs and the model move through a PersistentVolumeClaim per bot, as they move through a
per-run volume on a remote Docker engine (runners/remote.py): a short-lived transfer pod takes the inputs in
(`kubectl cp`), the Job trains from /work/<run>/bot into /work/<run>/out with Rasa's cache in /work/cache (kept
between runs), and `rasa-gpu jobs fetch` copies the model back through a transfer pod into models/. Chosen over
baking the inputs into an image: the image stays the shared Rasa image of the release (no push per training), and
the cache survives. The image comes from the registry in the settings; without one the nodes must already have it
(`imagePullPolicy: Never`; load it with `docker save | ctr -n k8s.io images import -`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from . import __version__

LABEL = "rasa-gpu.io/bot"
WORK = "/work"


@dataclass(frozen=True)
class KubeOptions:
    namespace: str | None = None
    gpus: int = 1
    cpus: str | None = None  # a Kubernetes quantity: "4", "500m"
    memory: str | None = None  # "16Gi"
    storage: str = "10Gi"
    storage_class: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    backoff_limit: int = 0
    ttl_seconds: int = 3600


@dataclass(frozen=True)
class KubeJob:
    bot_name: str
    run_id: str
    image: str
    pulled: bool  # from a registry (IfNotPresent) or already on the nodes (Never)
    options: KubeOptions
    train_args: tuple[str, ...] = ()
    license_secret: str | None = None  # a Secret that holds RASA_PRO_LICENSE (never the value here)

    @property
    def claim(self) -> str:
        return f"rasa-gpu-{_dns(self.bot_name)}"

    @property
    def job_name(self) -> str:
        return f"rasa-gpu-{_dns(self.bot_name)}-{self.run_id}"[:63].rstrip("-")


def manifests(job: KubeJob) -> list[dict[str, Any]]:
    """The claim (created once per bot; applying it again changes nothing) and the Job."""
    o = job.options
    metadata: dict[str, Any] = {
        "labels": {LABEL: _dns(job.bot_name), "app.kubernetes.io/managed-by": "rasa-gpu"}
    }
    if o.namespace:
        metadata["namespace"] = o.namespace
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": job.claim, **metadata},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": o.storage}}},
    }
    if o.storage_class:
        claim["spec"]["storageClassName"] = o.storage_class
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if o.gpus:
        limits["nvidia.com/gpu"] = o.gpus  # GPUs are asked for as limits only (the device plugin's rule)
    if o.cpus:
        requests["cpu"] = limits["cpu"] = o.cpus
    if o.memory:
        requests["memory"] = limits["memory"] = o.memory
    run_dir = f"{WORK}/{job.run_id}"
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "RASA_CACHE_DIRECTORY", "value": f"{WORK}/cache"},
        {"name": "TF_FORCE_GPU_ALLOW_GROWTH", "value": "true"},
    ]
    if job.license_secret:
        env.append(
            {
                "name": "RASA_PRO_LICENSE",
                "valueFrom": {"secretKeyRef": {"name": job.license_secret, "key": "RASA_PRO_LICENSE"}},
            }
        )
    container: dict[str, Any] = {
        "name": "train",
        "image": job.image,
        "imagePullPolicy": "IfNotPresent" if job.pulled else "Never",
        "workingDir": f"{run_dir}/bot",
        "args": ["train", "--out", f"{run_dir}/out", *job.train_args],
        "env": env,
        "volumeMounts": [{"name": "work", "mountPath": WORK}],
    }
    if limits or requests:
        container["resources"] = {k: v for k, v in (("limits", limits), ("requests", requests)) if v}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
        "containers": [container],
        "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": job.claim}}],
    }
    if o.node_selector:
        pod_spec["nodeSelector"] = dict(o.node_selector)
    if o.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in o.tolerations]
    kube_job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.job_name,
            **metadata,
            "annotations": {"rasa-gpu.io/version": __version__, "rasa-gpu.io/run": job.run_id},
        },
        "spec": {
            "backoffLimit": o.backoff_limit,
            "ttlSecondsAfterFinished": o.ttl_seconds,
            "template": {"metadata": {"labels": dict(metadata["labels"])}, "spec": pod_spec},
        },
    }
    return [claim, kube_job]


def render(job: KubeJob) -> str:
    """The manifests as one YAML stream, with a header that says how they are used."""
    header = (
        f"# rasa-gpu {__version__}: train {job.bot_name} as a Kubernetes Job (rasa-gpu submit --to kubernetes).\n"
        f"# The claim {job.claim} holds the training inputs, Rasa's cache and the model; `rasa-gpu jobs fetch` copies\n"
        "# the model back into models/.\n"
    )
    return header + yaml.safe_dump_all(manifests(job), sort_keys=False)


def _dns(name: str) -> str:
    """A DNS-1123 label from a bot's folder name."""
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return cleaned[:40] or "bot"
