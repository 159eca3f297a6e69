"""Training and service images: what they are made of, their Dockerfiles and build contexts, and their names, derived
from a hash of everything that goes into them, so that an image that exists is found with one cheap lookup.

- spec: ImageSpec (the shared Rasa stage and the bot stage), the services' images, and the names they get;
- values: what a spec writes into a Dockerfile as it is (image references, index URLs and logins), checked;
- rendering: the shared Dockerfile pieces and the build context (tar, hash);
- build: find, pull as published, or build, each new image checked under a candidate name before it is named;
- checks: the checks run in a throw-away container of an image (Python, smoke test, spaCy, CUDA).
"""

from __future__ import annotations

from .build import (
    ImageEngine,
    ImageResult,
    ServiceImage,
    checked_build,
    cuda_for,
    ensure_image,
    ensure_service_image,
    settle_base,
    stand_ins,
)
from .checks import (
    ProbeEngine,
    check_base_python,
    check_cuda,
    cuda_check,
    image_python,
    python_mismatch,
    run_check,
    smoke_check,
    spacy_check,
)
from .rendering import CA_BUNDLE
from .spec import (
    ACTIONS_IMAGE_REPO,
    BOT_IMAGE_REPO,
    CANDIDATE_REPO,
    DEFAULT_IMAGE_NAME,
    IMAGE_REPO,
    NOTEBOOK_IMAGE_REPO,
    NOTEBOOK_REQUIREMENT,
    PIP_VERSION,
    PRO_NLU_SCRIPT,
    ActionsImageSpec,
    ImageSpec,
    NotebookImageSpec,
    candidate,
    cpu_twin,
    default_actions_base,
    published_ref,
)
from .values import (
    IMAGE_FORM,
    INDEX_FORM,
    INDEX_LOGIN_ARG,
    check_dockerfile_values,
    check_image_reference,
    check_index_url,
    index_secret_args,
    read_ca_certs,
)

__all__ = [
    "ACTIONS_IMAGE_REPO",
    "BOT_IMAGE_REPO",
    "CANDIDATE_REPO",
    "CA_BUNDLE",
    "DEFAULT_IMAGE_NAME",
    "IMAGE_FORM",
    "IMAGE_REPO",
    "INDEX_FORM",
    "INDEX_LOGIN_ARG",
    "NOTEBOOK_IMAGE_REPO",
    "NOTEBOOK_REQUIREMENT",
    "PIP_VERSION",
    "PRO_NLU_SCRIPT",
    "ActionsImageSpec",
    "ImageEngine",
    "ImageResult",
    "ImageSpec",
    "NotebookImageSpec",
    "ProbeEngine",
    "ServiceImage",
    "candidate",
    "check_base_python",
    "check_cuda",
    "check_dockerfile_values",
    "check_image_reference",
    "check_index_url",
    "checked_build",
    "cpu_twin",
    "cuda_check",
    "cuda_for",
    "default_actions_base",
    "ensure_image",
    "ensure_service_image",
    "image_python",
    "index_secret_args",
    "published_ref",
    "python_mismatch",
    "read_ca_certs",
    "run_check",
    "settle_base",
    "smoke_check",
    "spacy_check",
    "stand_ins",
]
