"""Training as a Kubernetes Job: the manifests (rendered here; the user applies them with kubectl and their own
kubeconfig and context). KubernetesQueue is the queue interface to it: it prepares the manifests, and says which
kubectl command does the rest, since rasa-gpu talks to no API server itself (none can run where it is tested).

The bot's training inputs travel in the manifests themselves, as a gzipped tar in a ConfigMap of the run (a few KB
for most bots; a ConfigMap holds up to 1 MiB), so `kubectl apply -f` of one file is all it takes: no transfer pod,
no push per training. The Job unpacks them into /bot (the pod's own emptyDir, the path every rasa-gpu container
trains at, which Rasa's cache keys depend on) and trains into /work/<run>/out on a PersistentVolumeClaim per bot,
with Rasa's cache in /work/cache (and the language models' in /work/huggingface), kept between runs like the cache volume of a remote engine (remote.py). The
model stays on the claim until it is copied out (README, "Kubernetes"). Chosen over baking the inputs into an image
(a push per training) and over copying them onto the claim (a second pod and a wait before the Job can start). The
image comes from the registry in the settings; without one the nodes must already have it (`imagePullPolicy:
Never`; load it with `docker save | ctr -n k8s.io images import -`).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import __version__
from ..errors import RasaGpuError, SettingsError
from ..runners.base import (
    BOT_MOUNT,  # the bot's path in every rasa-gpu container: Rasa's cache keys depend on it
    rasa_environment,
)
from .base import JobState, Prepared, Queue, QueueUnsupported, Request, Resources

if TYPE_CHECKING:
    from ..project import BotProject
    from ..settings import Settings

LABEL = "rasa-gpu.io/bot"
WORK = "/work"
INPUTS = "/inputs"
INPUTS_KEY = "inputs.tar.gz"
#: A ConfigMap holds at most 1 MiB, and binaryData is base64 (4/3): what the archive may weigh, with room to spare.
MAX_INPUTS_BYTES = 700_000
#: What the Job's container runs: unpack the inputs from the ConfigMap onto the claim, then Rasa (through the image's
#: entry point, as every rasa-gpu container) with the run's folders. "$@" is `rasa train`'s extra arguments.
JOB_SCRIPT = (
    f'set -eu; run="$RASA_GPU_RUN_DIR"; mkdir -p "$run/out"; tar -xzf {INPUTS}/{INPUTS_KEY} -C {BOT_MOUNT}; '
    f'cd {BOT_MOUNT}; exec python3 /usr/local/bin/rasa-gpu-entry train --out "$run/out" "$@"'
)


class InputsTooLarge(RasaGpuError):
    """The bot's training inputs do not fit into a ConfigMap."""


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
    deadline_seconds: int | None = None  # [resources] time: the Job's activeDeadlineSeconds

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeOptions:
        """The [kubernetes] and [resources] settings with the flags on top (typed where they were read)."""
        resources = Resources.from_settings(settings)
        return cls(
            namespace=settings.kubernetes_namespace,
            gpus=resources.gpus,
            cpus=None if resources.cpus is None else str(resources.cpus),
            memory=resources.memory,
            storage=settings.kubernetes_storage or cls.storage,
            storage_class=settings.kubernetes_storage_class,
            node_selector=dict(settings.kubernetes_node_selector),
            tolerations=tuple(settings.kubernetes_tolerations),
            deadline_seconds=deadline_seconds(resources.time, settings.subject("resources_time")),
        )


#: Slurm's time formats ([resources] time is the same for every queue): minutes, minutes:seconds, hours:minutes:
#: seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds.
_SLURM_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def deadline_seconds(time: str | None, subject: str = "[resources] time") -> int | None:
    """A Slurm time limit in seconds (None: no limit, as UNLIMITED and INFINITE say in Slurm)."""
    if time is None or time.upper() in ("UNLIMITED", "INFINITE"):
        return None
    found = _SLURM_TIME.fullmatch(time)
    if found is None:
        raise SettingsError(
            f"{subject} must be a time limit as Slurm writes it (minutes, HH:MM:SS or D-HH:MM), not '{time}'"
        )
    days, first, second, third = found.groups()
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
        total = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif third is not None:  # H:M:S
        total = int(first) * 3600 + int(second) * 60 + int(third)
    else:  # M or M:S
        total = int(first) * 60 + int(second or 0)
    if total <= 0:
        raise SettingsError(f"{subject} must be a time limit above zero, not '{time}'")
    return total


@dataclass(frozen=True)
class KubeJob:
    bot_name: str
    run_id: str
    image: str
    pulled: bool  # from a registry (IfNotPresent) or already on the nodes (Never)
    options: KubeOptions
    train_args: tuple[str, ...] = ()
    license_secret: str | None = None  # a Secret that holds RASA_PRO_LICENSE (never the value here)
    #: The training inputs, a gzipped tar (BotProject.inputs_archive).
    inputs: bytes = field(default=b"", repr=False)

    @property
    def claim(self) -> str:
        return f"rasa-gpu-{_dns(self.bot_name)}"

    @property
    def job_name(self) -> str:
        return f"rasa-gpu-{_dns(self.bot_name)}-{self.run_id}"[:63].rstrip("-")


def manifests(job: KubeJob) -> list[dict[str, Any]]:
    """The run's inputs (a ConfigMap), the claim (created once per bot; applying it again changes nothing) and the
    Job."""
    if len(job.inputs) > MAX_INPUTS_BYTES:
        raise InputsTooLarge(
            f"the training inputs of {job.bot_name} are {len(job.inputs) / 1e6:.1f} MB packed, more than a Kubernetes "
            f"ConfigMap holds ({MAX_INPUTS_BYTES / 1e6:.1f} MB): train with --to slurm or --host, or split the data"
        )
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
    inputs: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": job.job_name, **metadata},
        "binaryData": {INPUTS_KEY: base64.b64encode(job.inputs).decode("ascii")},
    }
    # Rasa's cache and the language models' (HF_HOME) on the claim: both outlive the pod.
    shared = {**rasa_environment(), "RASA_CACHE_DIRECTORY": f"{WORK}/cache", "HF_HOME": f"{WORK}/huggingface"}
    env: list[dict[str, Any]] = [
        {"name": "RASA_GPU_RUN_DIR", "value": run_dir},
        *({"name": name, "value": value} for name, value in shared.items()),
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
        "command": ["sh", "-c", JOB_SCRIPT, "rasa-gpu-job"],
        "args": list(job.train_args),
        "env": env,
        "volumeMounts": [
            {"name": "work", "mountPath": WORK},
            {"name": "bot", "mountPath": BOT_MOUNT},
            {"name": "inputs", "mountPath": INPUTS, "readOnly": True},
        ],
    }
    if limits or requests:
        container["resources"] = {k: v for k, v in (("limits", limits), ("requests", requests)) if v}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
        "containers": [container],
        "volumes": [
            {"name": "work", "persistentVolumeClaim": {"claimName": job.claim}},
            {"name": "bot", "emptyDir": {}},
            {"name": "inputs", "configMap": {"name": job.job_name}},
        ],
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
            **({"activeDeadlineSeconds": o.deadline_seconds} if o.deadline_seconds else {}),
            "template": {"metadata": {"labels": dict(metadata["labels"])}, "spec": pod_spec},
        },
    }
    return [inputs, claim, kube_job]


def render(job: KubeJob) -> str:
    """The manifests as one YAML stream, with a header that says how they are used."""
    header = (
        f"# rasa-gpu {__version__}: train {job.bot_name} as a Kubernetes Job (rasa-gpu submit --to kubernetes).\n"
        f"# The ConfigMap {job.job_name} carries the training inputs; the claim {job.claim} keeps Rasa's cache and\n"
        f"# the model ({WORK}/{job.run_id}/out). Apply with `kubectl apply -f`; copy the model out as the README says.\n"
    )
    return header + yaml.safe_dump_all(manifests(job), sort_keys=False)


def _dns(name: str) -> str:
    """A DNS-1123 label from a bot's folder name."""
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return cleaned[:40] or "bot"


class KubernetesQueue(Queue[KubeJob]):
    """A Kubernetes Job, applied by the user: rasa-gpu prepares the manifests and says which kubectl command does the
    rest (it talks to no API server itself)."""

    name = "kubernetes"
    title = "Kubernetes"
    submits_itself = False

    def __init__(self, options: KubeOptions | None = None, license_secret: str | None = None) -> None:
        self.options = options or KubeOptions()
        self.license_secret = license_secret or "rasa-pro-license"

    @classmethod
    def from_settings(cls, settings: Settings) -> KubernetesQueue:
        return cls(KubeOptions.from_settings(settings), settings.kubernetes_license_secret)

    def prepare(self, request: Request, folder: Path) -> Prepared[KubeJob]:
        """The manifests: the image is the published one when the spec names a registry, else its local tag."""
        from ..images import published_ref

        spec = request.spec
        if spec is None:
            raise SettingsError("a Kubernetes Job needs the training image; give the bot's image settings")
        job = KubeJob(
            bot_name=request.project.name,
            run_id=uuid.uuid4().hex[:12],
            image=published_ref(spec, spec.registry, spec.image_name) if spec.registry else spec.tag(),
            pulled=spec.registry is not None,
            options=self.options,
            train_args=request.rasa_args,
            license_secret=self.license_secret if spec.release.pro else None,
            inputs=request.project.inputs_archive(),
        )
        return Prepared(request, folder, job, render(job))

    def submit(self, prepared: Prepared[KubeJob]) -> str:
        raise QueueUnsupported(
            "rasa-gpu does not apply Kubernetes manifests itself: save them and `kubectl apply -f` them with your "
            'kubeconfig and context (README, "Kubernetes")'
        )

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        raise self._by_kubectl(f"kubectl get jobs -l {LABEL}", "shows them")

    def cancel(self, job_id: str) -> None:
        raise self._by_kubectl(f"kubectl delete job {job_id}", "cancels it")

    def logs(self, folder: Path, job_id: str) -> Path:
        raise self._by_kubectl(f"kubectl logs job/{job_id}", "shows its output")

    def fetch(self, project: BotProject, job_id: str) -> Path | None:
        raise self._by_kubectl(
            f"kubectl cp POD:{WORK}/RUN/out {project.name}/models",
            f"copies the model out of a pod that mounts the claim rasa-gpu-{_dns(project.name)}",
        )

    @staticmethod
    def _by_kubectl(command: str, does: str) -> QueueUnsupported:
        return QueueUnsupported(
            f'rasa-gpu talks to no Kubernetes API server; `{command}` {does} (README, "Kubernetes")'
        )
