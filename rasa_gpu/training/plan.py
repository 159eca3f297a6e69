"""The training plan: everything a training will do, decided once (make_plan) before any container starts and before
anything is written: whether to train and why, the fingerprint, the fine-tune base (or why not), the policies' and
DIET's switches, the image and how it would be got, where it runs, the GPU request and the `rasa train` command line.
The run (run.py) follows it; `rasa-gpu train --dry-run` shows it."""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import gpu as gpu_rules
from .. import scratch
from ..errors import GpuUnavailable, SettingsError
from ..finetune import EAGER_DIET_MAX_STEPS, Shape, diet_steps, why_not
from ..images import ImageSpec, stand_ins
from ..project import BotProject
from ..runners import BOT_MOUNT, Capabilities, Runner
from .inputs import BotInputs
from .options import Limits, TrainOptions
from .state import STATE_FILE, TrainState

if TYPE_CHECKING:
    from ..overrides import Override
    from .image import ImagePlan

#: rasa train options that rasa-gpu itself sets.
OWNED_ARGS = ("--out",)


@dataclass(frozen=True)
class TrainingPlan:
    project: BotProject
    #: The image spec asked for (the image's own spec, on a stand-in base where one is picked, is image.spec).
    spec: ImageSpec
    options: TrainOptions
    #: Where it runs (the runner's name) and what that place can do.
    where: str
    capabilities: Capabilities
    #: Whether to train, and why (or why not) in a few words.
    train: bool
    reason: str
    #: What decides the model (training inputs, Rasa release, image, rasa args, overrides).
    fingerprint: str
    #: last-train.json as read for this plan (None: there is none).
    state: TrainState | None
    inputs: BotInputs
    #: config.yml rewritten by --set overrides (None: config.yml itself is used).
    config_text: str | None
    #: The run's name: its folder in .rasa-gpu/tmp and its container's.
    run_id: str
    #: The image and how it would be got (None when nothing is trained).
    image: ImagePlan | None = None
    #: What the container asks of the engine (the asked request, or the CPU for an image that cannot use a GPU),
    #: why it differs from what was asked, and the error a training would stop with (--gpu on, CPU-only image).
    gpu: gpu_rules.GpuRequest = gpu_rules.CPU
    gpu_note: str | None = None
    gpu_error: str | None = None
    #: The model a fine-tune continues from, or why there is none (when --finetune asked for one).
    finetune_base: Path | None = None
    finetune_reason: str | None = None
    #: Fine-tune switches for the image's entry script: the dialogue policies keep their configured epochs (their
    #: data did not change: Rasa's cache gives back their last training); DIET runs eagerly (a short fine-tune).
    keep_policies: bool = False
    eager_diet: bool = False
    diet_steps: int | None = None
    shape: Shape | None = None
    dialogue: str | None = None
    #: A measured training (benchmarks): a fresh Rasa cache, the container's limits, its model thrown away, no state.
    measured: bool = False
    limits: Limits = field(default_factory=Limits)

    @property
    def run_dir(self) -> Path:
        return self.project.state_dir / scratch.FOLDER / self.run_id

    @property
    def config_file(self) -> Path:
        return self.run_dir / "config.yml" if self.config_text is not None else self.project.config

    @property
    def previous_model(self) -> Path | None:
        """The model that is up to date (a plan that does not train)."""
        return self.project.root / self.state.model if self.state and self.state.model else None

    def command(self) -> list[str]:
        """The `rasa train` arguments: writing into the run's out/, with the bot's config (or the overridden one, in
        the run's folder), domain and data named explicitly (Rasa's defaults know only domain.yml, not a domain/
        folder), the user's rasa args, and the fine-tune's."""
        command = [
            "train",
            "--out",
            self.inside(self.run_dir / "out"),
            "--config",
            self.inside(self.config_file),
            "--domain",
            self.inside(self.project.domain),
            "--data",
            self.inside(self.project.data),
            *self.options.rasa_args,
        ]
        if self.finetune_base is not None:
            fraction = f"{self.options.epoch_fraction:g}"
            command += ["--finetune", self.inside(self.finetune_base), "--epoch-fraction", fraction]
        return command

    def inside(self, path: Path) -> str:
        return f"{BOT_MOUNT}/{self.project.relative(path)}"

    def fingerprint_for(self, spec: ImageSpec) -> str:
        return fingerprint(self.inputs.digest, spec, self.options)

    def lines(self) -> list[str]:
        """The plan in a few lines, as `rasa-gpu train --dry-run` shows it."""
        verdict = "would train" if self.train else "nothing to train"
        shown = [f"{verdict}: {self.reason}"]
        if not self.train:
            model = self.previous_model
            return shown + ([f"model: {self.project.relative(model)} is up to date"] if model else [])
        how = (
            "the bot folder is mounted"
            if self.capabilities.mounts_bot_folder
            else "the bot's inputs travel there in a volume"
        )
        shown.append(f"where: {self.where} ({how})")
        if self.image is not None:
            shown.append(f"image: {self.image.describe()}")
            shown += [f"  {step}" for step in self.image.steps]
        shown.append(f"GPU: {self._gpu_words()}")
        shown.append(f"fine-tune: {self._finetune_words()}")
        shown.append(f"command: {shlex.join(['rasa', *self.command()])}")
        return shown

    def _gpu_words(self) -> str:
        asked = self.options.gpu
        if self.gpu_error:
            return f"the training would stop: {self.gpu_error}"
        if not asked.wanted:
            return "none (--gpu off): it trains on the CPU"
        if self.gpu_note:
            return f"none: {self.gpu_note}"
        words = f"{asked.mode}: {asked.describe()}"
        if self.image is not None and self.image.gpu_ready is None:
            words += " if the new image passes its CUDA check"
        return words + (", else the CPU" if asked.mode == "auto" else "")

    def _finetune_words(self) -> str:
        if not self.options.finetune:
            return "no (--finetune not given)"
        if self.finetune_base is None:
            return f"no, from scratch: {self.finetune_reason or 'there is no model to continue from'}"
        words = f"from {self.project.relative(self.finetune_base)} (only training examples changed)"
        if self.keep_policies:
            words += "; the dialogue policies keep their last training"
        if self.eager_diet:
            words += f"; DIET without graph tracing (about {self.diet_steps} steps)"
        return words

    def to_json(self) -> dict[str, Any]:
        """The plan as `rasa-gpu train --dry-run --json` prints it (stable keys; no secret)."""
        image = self.image
        asked = self.options.gpu
        return {
            "bot": str(self.project.root),
            "train": self.train,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "model": self.project.relative(self.previous_model)
            if not self.train and self.previous_model
            else None,
            "where": self.where,
            "capabilities": asdict(self.capabilities),
            "rasa": {"version": self.spec.release.version, "tensorflow": self.spec.release.tensorflow},
            "image": None
            if image is None
            else {
                "tag": image.tag,
                "action": image.action,
                "gpu_ready": image.gpu_ready,
                "cuda_note": image.cuda_note,
                "pull_from": image.pull_from,
                "steps": list(image.steps),
            },
            "gpu": {
                "asked": asked.mode,
                "device_ids": list(asked.device_ids) if asked.device_ids else None,
                "request": self.gpu.mode if self.train else None,
                "note": self.gpu_note,
                "error": self.gpu_error,
            },
            "finetune": {
                "asked": self.options.finetune,
                "base": self.project.relative(self.finetune_base) if self.finetune_base else None,
                "reason": self.finetune_reason,
                "keep_policies": self.keep_policies,
                "eager_diet": self.eager_diet,
                "diet_steps": self.diet_steps,
            },
            "command": ["rasa", *self.command()] if self.train else None,
        }


# ---- making it ------------------------------------------------------------------------------------------------------


def make_plan(project: BotProject, spec: ImageSpec, options: TrainOptions, runner: Runner) -> TrainingPlan:
    """The plan of one training, from the bot's files (each read once), its last-train.json (read once), and, only
    when it would train, the runner's engine (asked read-only which image there is). Writes nothing, starts nothing."""
    check_request(project, options)
    inputs = BotInputs.read(project)
    config_text = config_with_overrides(project, inputs.config, options.overrides)
    if config_text is not None:  # what the fine-tune decisions see is the config the training uses
        inputs = replace(inputs, config=training_config(config_text))
    state = TrainState.read(project)
    newest = project.newest_model()
    prints = [fingerprint(inputs.digest, s, options) for s in (spec, *stand_ins(spec))]
    bases = [basis(s, options) for s in (spec, *stand_ins(spec))]
    train, reason = decide(
        state,
        project.relative(newest) if newest else None,
        prints,
        inputs.files,
        bases,
        options.force,
        model_exists=bool(state and state.model and (project.root / state.model).is_file()),
    )
    plan = TrainingPlan(
        project=project,
        spec=spec,
        options=options,
        where=runner.name,
        capabilities=runner.capabilities,
        train=train,
        reason=reason,
        fingerprint=prints[0],
        state=state,
        inputs=inputs,
        config_text=config_text,
        run_id=uuid.uuid4().hex[:12],
    )
    if not train:
        return plan  # decided before the engine is even contacted
    from .image import plan_image

    image = plan_image(runner.engine, spec, rebuild=options.rebuild)
    return with_image(plan, image, newest)


def check_request(project: BotProject, options: TrainOptions) -> None:
    """What no training can start with: a rasa train option rasa-gpu sets itself, an output folder that is a file or
    a link rasa-gpu must not follow."""
    for arg in options.rasa_args:
        if arg.split("=", 1)[0] in OWNED_ARGS:
            raise SettingsError(
                f"rasa train {arg} is managed by rasa-gpu (models always land in models/); drop it"
            )
    project.check_output_folders()


def with_image(plan: TrainingPlan, image: ImagePlan, newest: Path | None) -> TrainingPlan:
    """The plan of a training in `image`: its GPU request, the fine-tune decisions (they depend on the image's
    spec), and the fingerprint of the spec the image is made of."""
    options, spec = plan.options, image.spec
    gpu, note, error = options.gpu, None, None
    if image.gpu_ready is not None:
        try:
            gpu, note = gpu_rules.for_image(options.gpu, image.tag, image.gpu_ready, image.cuda_note, "train")
        except GpuUnavailable as exc:
            error = exc.message
    shape, dialogue = plan.inputs.shape(), plan.inputs.dialogue()
    base, why = finetune_base(
        options.finetune,
        newest,
        plan.project,
        here=plan.capabilities.mounts_bot_folder,
        state=plan.state,
        basis_now=basis(spec, options),
        shape=shape,
    )
    steps = (
        diet_steps(plan.inputs.config, plan.inputs.nlu_examples(), options.epoch_fraction)
        if base is not None
        else None
    )
    keep = (
        base is not None
        and dialogue is not None
        and plan.state is not None
        and plan.state.dialogue == dialogue
    )
    return replace(
        plan,
        fingerprint=plan.fingerprint_for(spec),
        image=image,
        gpu=gpu,
        gpu_note=note,
        gpu_error=error,
        finetune_base=base,
        finetune_reason=why,
        keep_policies=keep,
        eager_diet=steps is not None and steps <= EAGER_DIET_MAX_STEPS,
        diet_steps=steps,
        shape=shape,
        dialogue=dialogue,
    )


def timed_plan(
    project: BotProject,
    image: ImagePlan,
    options: TrainOptions,
    runner: Runner,
    limits: Limits,
) -> TrainingPlan:
    """The plan of a measured training (benchmarks) in an image that is there: always trained, with a fresh Rasa
    cache and the container's limits; its model is thrown away and no state is kept."""
    inputs = BotInputs.read(project)
    config_text = config_with_overrides(project, inputs.config, options.overrides)
    return TrainingPlan(
        project=project,
        spec=image.spec,
        options=options,
        where=runner.name,
        capabilities=runner.capabilities,
        train=True,
        reason="a measured training: a fresh Rasa cache, the model thrown away",
        fingerprint=fingerprint(inputs.digest, image.spec, options),
        state=None,
        inputs=inputs,
        config_text=config_text,
        run_id=uuid.uuid4().hex[:12],
        image=image,
        gpu=options.gpu,
        measured=True,
        limits=limits,
    )


# ---- the decisions (pure) -------------------------------------------------------------------------------------------


def decide(
    state: TrainState | None,
    newest: str | None,
    fingerprints: list[str],
    files: Mapping[str, str],
    bases: list[str],
    force: bool,
    *,
    model_exists: bool,
) -> tuple[bool, str]:
    """Whether to train, and why. Not when the last training's fingerprint is one of `fingerprints` (the bot now, on
    the asked base or a stand-in) and its model is still the newest in models/ (`newest`, relative to the bot)."""
    if force:
        return True, "forced (--force): training whatever changed"
    if newest is None:
        return True, "first training: there is no model in models/ yet"
    if state is None or state.model is None:
        return True, f"the newest model {newest} was not trained by this rasa-gpu (no {STATE_FILE})"
    if not model_exists or state.model != newest:
        return True, f"the newest model {newest} is not the one rasa-gpu trained last ({state.model})"
    if state.fingerprint in fingerprints:
        return False, f"nothing changed since the newest model {newest}"
    if state.basis not in bases:
        return True, "the Rasa release, image or rasa train arguments changed"
    changed = changed_inputs(state.inputs, files)
    if changed:
        return True, changed
    if not state.inputs:
        return True, "the training inputs changed"
    return True, "the --set overrides changed"


def changed_inputs(before: Mapping[str, str], now: Mapping[str, str]) -> str | None:
    """Which training inputs changed, in a few words (None when none did, or nothing is known of before)."""
    if not before:
        return None
    parts = []
    for word, names in (
        ("changed", sorted(n for n in now if n in before and before[n] != now[n])),
        ("new", sorted(n for n in now if n not in before)),
        ("removed", sorted(n for n in before if n not in now)),
    ):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{word}: {', '.join(names[:3])}{more}")
    return "; ".join(parts) or None


def finetune_base(
    asked: bool,
    newest: Path | None,
    project: BotProject,
    *,
    here: bool,
    state: TrainState | None,
    basis_now: str,
    shape: Shape,
) -> tuple[Path | None, str | None]:
    """The model to fine-tune when it was asked for and only training examples changed, else None and the reason
    (None when nothing was asked, or there is no model at all: nothing to say)."""
    if not asked or newest is None:
        return None, None
    if not here:
        return None, "fine-tuning runs on this machine's engine only"
    if state is None or state.model != project.relative(newest):
        return None, f"the newest model {newest.name} was not trained by rasa-gpu here"
    if state.basis != basis_now:
        return None, "the Rasa release, image or rasa train arguments changed"
    reason = why_not(state.shape, shape)
    return (newest, None) if reason is None else (None, reason)


def fingerprint(inputs: str, spec: ImageSpec, options: TrainOptions) -> str:
    """What decides the model: the training inputs' digest, the Rasa release, the image, rasa args, overrides."""
    parts = {
        "inputs": inputs,
        "rasa": spec.release.version,
        "image": spec.tag(),
        "args": options.rasa_args,
        "overrides": [o.text for o in options.overrides],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def basis(spec: ImageSpec, options: TrainOptions) -> str:
    """What a model is made with besides the bot's files: a fine-tune needs the same (epochs aside, which the
    config's shape already ignores)."""
    parts = {"rasa": spec.release.version, "image": spec.tag(), "args": options.rasa_args}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def config_with_overrides(
    project: BotProject, config: dict[str, Any], overrides: list[Override]
) -> str | None:
    """config.yml's content `config` with --set overrides applied, as the file the training reads (None: no
    overrides, config.yml itself)."""
    if not overrides:
        return None
    from ..overrides import apply_overrides, render_config

    changed = apply_overrides(copy.deepcopy(config), overrides, config_name=project.relative(project.config))
    return render_config(changed)


def training_config(config_text: str) -> dict[str, Any]:
    """The config a training uses when --set overrides rewrote config.yml, parsed once."""
    from .. import yamlfile

    config = yamlfile.load(config_text)
    return config if isinstance(config, dict) else {}
