"""Entry point of rasa-gpu images: say which GPUs TensorFlow sees, then run Rasa in this same process.

With RASA_GPU_MODE unset (GPU not requested) it goes straight to Rasa. With RASA_GPU_MODE=auto or on it first
lists TensorFlow's GPUs and prints them after the RASA_GPU_DEVICES marker; with "on" and no GPU it exits 86 so
that nobody trains on the CPU believing it is the GPU.

With RASA_GPU_TIED=1 the container lives only as long as the rasa-gpu command that started it: that command holds
stdin open, and when stdin closes (the command ended, even by SIGKILL) this process exits.

`rasa run` gets its auth token from the environment (RASA_AUTH_TOKEN), added to Rasa's arguments inside this
process, so the token never appears in a command line that `ps` can show.

With RASA_GPU_EAGER_DIET=1 (rasa-gpu sets it for a short fine-tune) Rasa's DIETClassifier loads and trains with
TensorFlow's functions run eagerly: loading a model to fine-tune fits it on one example, which traces DIET's whole
training graph, and the training traces it again; for a few hundred steps that tracing takes longer than the steps.
Only DIETClassifier itself (not its subclasses, nor TEDPolicy, whose loading fails eagerly in Rasa 3.6), and only
while it loads or trains; the config, and so Rasa's fingerprints and its fine-tune checks, are untouched.

With RASA_GPU_KEEP_POLICIES=1 (rasa-gpu sets it for a fine-tune when no story, rule, domain or policy changed since
the model it continues) the dialogue policies keep their configured epochs: `rasa train --finetune` writes
epochs × fraction into every trainable component's config, which changes the policies' cache keys, so Rasa would
fine-tune them on the very data they were trained on. Kept as configured, their keys are those of the last training
and Rasa restores them from its cache. Not when Rasa trains end to end (the policies then learn from NLU data too).

Two things spare every `rasa train` seconds of fixed work that no GPU shortens: Rasa packs the model archive with
gzip level 9, which here takes 2.5 s for example_bot's 24 MB against 0.9 s at level 6 for an archive 0.3 % larger, so
it packs at level 6; and once Rasa has written the model (its only output, closed by then), the process ends
without tearing down TensorFlow and the trained models in memory, with Rasa's exit status.
"""

import json
import os
import sys
import threading

NO_GPU_EXIT = 86
WRAPPER_GONE_EXIT = 143
EAGER_DIET = "RASA_GPU_EAGER_DIET"
KEEP_POLICIES = "RASA_GPU_KEEP_POLICIES"
#: What each switch makes the entry script say when a run has it on.
SWITCHES = {
    EAGER_DIET: "DIETClassifier runs eagerly (a short fine-tune)",
    KEEP_POLICIES: "the dialogue policies keep their epochs (their data did not change)",
}
#: The line after each run in serve mode: `RASA_GPU_DONE <exit status>`.
DONE_MARKER = "RASA_GPU_DONE"


def report_gpus(mode: str) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for device in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(device).get("device_name", device.name))
        except Exception:  # details are a nicety; the count is what matters
            names.append(device.name)
    print("RASA_GPU_DEVICES " + json.dumps(names), file=sys.stderr, flush=True)
    if not names and mode == "on":
        sys.exit(NO_GPU_EXIT)


def end_with_wrapper() -> None:
    def watch_stdin() -> None:
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        print(
            "rasa-gpu-entry: the rasa-gpu command that started this container is gone; stopping",
            file=sys.stderr,
        )
        sys.stderr.flush()
        os._exit(WRAPPER_GONE_EXIT)

    threading.Thread(target=watch_stdin, name="rasa-gpu-wrapper-watch", daemon=True).start()


def rasa_arguments(args: list) -> list:
    token = os.environ.pop("RASA_AUTH_TOKEN", "")
    if args[:1] == ["run"] and token and not any(a.split("=")[0] in ("--auth-token", "-t") for a in args):
        return [*args, "--auth-token", token]
    return args


def eager_diet() -> None:
    import functools

    try:
        import tensorflow as tf
        from rasa.nlu.classifiers.diet_classifier import DIETClassifier

        DIETClassifier.load.__func__  # noqa: B018 (a classmethod, as in Rasa 3.x)
    except (ImportError, AttributeError) as exc:
        print(f"rasa-gpu-entry: DIETClassifier runs as configured ({exc})", file=sys.stderr, flush=True)
        return

    def eagerly(function):
        @functools.wraps(function)  # Rasa validates the components' type annotations
        def run(owner, *args, **kwargs):
            if os.environ.get(EAGER_DIET) != "1" or (
                owner is not DIETClassifier and type(owner) is not DIETClassifier
            ):
                return function(owner, *args, **kwargs)
            before = tf.config.functions_run_eagerly()
            tf.config.run_functions_eagerly(True)
            try:
                return function(owner, *args, **kwargs)
            finally:
                tf.config.run_functions_eagerly(before)

        return run

    DIETClassifier.load = classmethod(eagerly(DIETClassifier.load.__func__))
    DIETClassifier.train = eagerly(DIETClassifier.train)


def keep_policy_epochs() -> None:
    import functools

    try:
        from rasa.core.policies.policy import Policy
        from rasa.engine.recipes.default_recipe import DefaultV1Recipe

        original = DefaultV1Recipe._extra_config_from_cli
    except (ImportError, AttributeError) as exc:
        print(
            f"rasa-gpu-entry: the dialogue policies fine-tune as Rasa says ({exc})",
            file=sys.stderr,
            flush=True,
        )
        return

    @functools.wraps(original)
    def extra_config(recipe, cli_parameters, component, *args, **kwargs):
        config = original(recipe, cli_parameters, component, *args, **kwargs)
        if (
            os.environ.get(KEEP_POLICIES) == "1"
            and isinstance(component, type)
            and issubclass(component, Policy)
            and not getattr(
                recipe, "_use_end_to_end", True
            )  # unknown (another Rasa): leave them as Rasa says
        ):
            return {k: v for k, v in config.items() if k not in ("epochs", "finetuning_epoch_fraction")}
        return config

    DefaultV1Recipe._extra_config_from_cli = extra_config


def pack_at_level_6() -> None:
    try:
        from rasa.engine.storage import local_model_storage

        packer = local_model_storage.TarSafe
    except (ImportError, AttributeError):
        return  # Rasa packs as it always has

    class PackAtLevel6(packer):
        @classmethod
        def open(cls, name=None, mode="r", *args, **kwargs):
            if mode == "w:gz":
                kwargs.setdefault("compresslevel", 6)
            return super().open(name, mode, *args, **kwargs)

    local_model_storage.TarSafe = PackAtLevel6


def say_switches() -> None:
    for name, text in SWITCHES.items():
        if os.environ.get(name) == "1":
            print(f"rasa-gpu-entry: {text}", file=sys.stderr, flush=True)


def run_rasa(rasa_main) -> int:
    """Run Rasa's main once and return its exit status (Python's rules for SystemExit's code)."""
    try:
        rasa_main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        return 0
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        return 1
    return code


def leave(code: int) -> None:
    """End the process at once: no teardown of TensorFlow and the models in memory."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def read_requests():
    """Serve mode's stdin, read from now on by a thread: each line onto the queue it returns; when stdin closes (the
    rasa-gpu command that started the container is gone) the process ends at once, in a run or between runs."""
    import queue

    requests: queue.Queue = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            requests.put(line)
        print(
            "rasa-gpu-entry: the rasa-gpu command that started this container is gone; stopping",
            file=sys.stderr,
        )
        leave(WRAPPER_GONE_EXIT)

    threading.Thread(target=read_stdin, name="rasa-gpu-requests", daemon=True).start()
    return requests


def serve(rasa_main, mode: str, requests) -> None:
    """RASA_GPU_SERVE=1: run `rasa train` once per request, in this one process, so that each retraining of `rasa-gpu
    watch` skips the container's start and the imports of TensorFlow and Rasa. A request is one JSON line on stdin,
    {"args": [...], "env": {...}}; after each run the entry prints `RASA_GPU_DONE <status>` (and once when it is
    ready). A failed run ends the process after its marker: what it leaves in memory is not trusted with the next
    run."""
    import gc
    import traceback

    sys.stdout.flush()
    os.dup2(2, 1)  # one stream: each run's output, and its marker after it, in the order written
    for install in (eager_diet, keep_policy_epochs, pack_at_level_6):
        install()
    print(f"{DONE_MARKER} 0", flush=True)  # ready: the imports are done
    base_environment = dict(os.environ)
    while True:
        try:
            request = json.loads(requests.get())
            args, environment = list(request["args"]), dict(request.get("env") or {})
        except (ValueError, KeyError, TypeError) as exc:
            print(f"rasa-gpu-entry: not a request ({exc})", file=sys.stderr, flush=True)
            print(f"{DONE_MARKER} 2", flush=True)
            continue
        os.environ.clear()
        os.environ.update(base_environment)
        os.environ.update({str(k): str(v) for k, v in environment.items()})
        if mode in ("auto", "on"):
            report_gpus(mode)  # each run's output says which GPUs it had
        say_switches()
        sys.argv = ["rasa", *args]
        try:
            code = run_rasa(rasa_main)
        except Exception:  # noqa: BLE001 (Rasa's own failure, shown as a one-shot run would show it)
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"{DONE_MARKER} {code}", flush=True)
        if code != 0:
            leave(code)
        try:
            import tensorflow as tf

            tf.keras.backend.clear_session()
        except ImportError:
            pass
        gc.collect()


def main() -> None:
    serving = os.environ.get("RASA_GPU_SERVE") == "1"
    requests = read_requests() if serving else None
    if not serving:
        if os.environ.get(EAGER_DIET) == "1":
            eager_diet()
        if os.environ.get(KEEP_POLICIES) == "1":
            keep_policy_epochs()
        say_switches()
        if os.environ.get("RASA_GPU_TIED") == "1":
            end_with_wrapper()
    mode = os.environ.get("RASA_GPU_MODE", "")
    if mode in ("auto", "on") and not serving:
        report_gpus(mode)
    from rasa.__main__ import main as rasa_main

    if serving:
        serve(rasa_main, mode, requests)
    sys.argv = ["rasa", *rasa_arguments(sys.argv[1:])]
    if sys.argv[1:2] == ["train"]:
        pack_at_level_6()
        leave(run_rasa(rasa_main))
    rasa_main()


if __name__ == "__main__":
    main()
