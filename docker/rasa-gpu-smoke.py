"""The check before a new image is tagged: a tiny bot trains inside it on the CPU and its model loads.

Run by rasa-gpu in a throw-away container of the freshly built image (`python3 -c <this file>`). It trains with
the adjustments the entry script makes to every `rasa train` (the model archive packed at level 6), through
Rasa's own Python API, then loads the model and parses one message. The last line it prints is a JSON report:
{"ok": true, "seconds": S, "intent": NAME} or {"ok": false, "error": "Type: message", "package": "name version"}
(the package whose code raised, where the traceback says), or {"ok": true, "licensed": false, ...} for Rasa Pro
without a license (RASA_PRO_LICENSE): it trains only with one, so then what a training loads is imported instead.
"""

import json
import os
import sys
import tempfile
import time
import traceback

CONFIG = """
recipe: default.v1
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 1
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
"""
DOMAIN = """
version: "3.1"
intents: [greet, goodbye]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_goodbye: [{text: "Bye!"}]
"""
NLU = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
- intent: goodbye
  examples: |
    - bye
    - see you later
    - good night
"""
STORIES = """
version: "3.1"
stories:
- story: greet then leave
  steps:
  - intent: greet
  - action: utter_greet
  - intent: goodbye
  - action: utter_goodbye
"""
ENTRY = "/usr/local/bin/rasa-gpu-entry"


def distributions_of(top: str) -> list:
    """The installed distributions that provide a top-level module (packages_distributions is Python 3.10+)."""
    from importlib import metadata

    if hasattr(metadata, "packages_distributions"):
        return list(metadata.packages_distributions().get(top, []))
    found = []
    for dist in metadata.distributions():
        tops = (dist.read_text("top_level.txt") or "").split()
        if not tops and dist.files:
            tops = {str(f).split("/")[0].removesuffix(".py") for f in dist.files}
        if top in tops:
            found.append(dist.metadata["Name"])
    return found


def culprit(exc: BaseException) -> str:
    """ "name version" of the installed package whose code raised last, or ""."""
    from importlib import metadata

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        parts = frame.filename.replace("\\", "/").split("/")
        if "site-packages" in parts or "dist-packages" in parts:
            index = max(i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages"))
            top = parts[index + 1] if index + 1 < len(parts) else ""
            top = top[:-3] if top.endswith(".py") else top
            names = distributions_of(top)
            if names and names[0] not in ("rasa", "rasa-pro"):
                return f"{names[0]} {metadata.version(names[0])}"
    return ""


_LAST = [time.monotonic()]


def phase(name: str) -> None:
    now = time.monotonic()
    print(f"rasa-gpu smoke: {name} {now - _LAST[0]:.1f} s", file=sys.stderr, flush=True)
    _LAST[0] = now


def entry_adjustments() -> None:
    """The entry script's adjustments: the archive packed at level 6 (every training gets it) and DIET run eagerly
    (as for a short fine-tune; here it spares tracing DIET's graph twice, for training and for loading)."""
    import runpy

    if os.path.exists(ENTRY):
        entry = runpy.run_path(ENTRY, run_name="rasa_gpu_entry")
        entry["pack_at_level_6"]()
        os.environ[entry["EAGER_DIET"]] = "1"
        entry["eager_diet"]()


def pro_without_license() -> bool:
    from importlib import metadata

    try:
        metadata.version("rasa-pro")
    except metadata.PackageNotFoundError:
        return False
    return not os.environ.get("RASA_PRO_LICENSE")


def import_training() -> None:
    """What a training loads, for Rasa Pro without a license: Rasa trains only with one."""
    import rasa.api  # noqa: F401
    import rasa.core.agent  # noqa: F401
    import rasa.core.policies.ted_policy  # noqa: F401
    import rasa.nlu.classifiers.diet_classifier  # noqa: F401


def train_and_load(folder: str) -> str:
    import asyncio

    files = {"config.yml": CONFIG, "domain.yml": DOMAIN, "nlu.yml": NLU, "stories.yml": STORIES}
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(text)
    entry_adjustments()
    phase("imports")
    from rasa.api import train

    phase("rasa")

    result = train(
        domain=os.path.join(folder, "domain.yml"),
        config=os.path.join(folder, "config.yml"),
        training_files=[os.path.join(folder, "nlu.yml"), os.path.join(folder, "stories.yml")],
        output=os.path.join(folder, "models"),
    )
    model = getattr(result, "model", result)
    if not model or not os.path.isfile(str(model)):
        raise RuntimeError(f"rasa train wrote no model (exit code {getattr(result, 'code', '?')})")
    phase("train")
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    phase("load")
    try:  # eagerly, as it trained: the same operations, without tracing DIET's prediction graph first (4 s of 17)
        import tensorflow as tf

        tf.config.run_functions_eagerly(True)
    except (ImportError, AttributeError):  # a speed-up only: the check never fails for it
        pass
    parsed = asyncio.run(agent.parse_message("hello"))
    phase("parse")
    return str((parsed.get("intent") or {}).get("name"))


def main() -> None:
    started = time.monotonic()
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    with tempfile.TemporaryDirectory(prefix="rasa-gpu-smoke-") as folder:
        os.chdir(folder)
        try:
            if pro_without_license():
                import_training()
                report = {
                    "ok": True,
                    "licensed": False,
                    "note": "Rasa Pro without a license: imported, not trained",
                }
                report["seconds"] = round(time.monotonic() - started, 1)
                print(json.dumps(report), flush=True)
                os._exit(0)
            intent = train_and_load(folder)
        except BaseException as exc:  # noqa: BLE001 - every failure is the report
            text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            if "licen" in text.lower():
                report = {"ok": True, "licensed": False, "note": text.rstrip(": ")}
            else:
                traceback.print_exc()
                try:
                    package = culprit(exc)
                except Exception:  # noqa: BLE001 - the package is a nicety; the exception is the report
                    package = ""
                report = {"ok": False, "error": text.rstrip(": "), "package": package}
        else:
            report = {"ok": True, "intent": intent}
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report), flush=True)
    os._exit(0)  # like the entry script: no teardown of TensorFlow after the report


if __name__ == "__main__":
    main()
