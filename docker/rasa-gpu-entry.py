"""Entry point of rasa-gpu images: say which GPUs TensorFlow sees, then run Rasa in this same process.

With RASA_GPU_MODE unset (GPU not requested) it goes straight to Rasa. With RASA_GPU_MODE=auto or on it first
lists TensorFlow's GPUs and prints them after the RASA_GPU_DEVICES marker; with "on" and no GPU it exits 86 so
that nobody trains on the CPU believing it is the GPU.
"""

import json
import os
import sys

NO_GPU_EXIT = 86


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


def main() -> None:
    mode = os.environ.get("RASA_GPU_MODE", "")
    if mode in ("auto", "on"):
        report_gpus(mode)
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
