"""What rasa-gpu and the images' entry script (docker/rasa-gpu-entry.py) agree on: the environment it reads, the
exit codes it ends with, the line it prints after each run of the warm trainer. The entry script runs inside images
without rasa-gpu, so it holds its own copy of each value; tests/test_entry_contract.py checks that both say the same.
"""

from __future__ import annotations

#: The GPU mode (auto, on): the entry script asks TensorFlow for its GPUs and prints them before Rasa starts.
MODE_ENV = "RASA_GPU_MODE"
#: A fine-tune's switches: DIET without graph tracing; the dialogue policies keep their configured epochs.
EAGER_DIET_ENV = "RASA_GPU_EAGER_DIET"
KEEP_POLICIES_ENV = "RASA_GPU_KEEP_POLICIES"
#: The warm trainer: the container serves one training per request on its stdin.
SERVE_ENV = "RASA_GPU_SERVE"
#: A tied container: it ends when its stdin closes (the rasa-gpu that started it is gone).
TIED_ENV = "RASA_GPU_TIED"
#: `rasa run`'s auth token, added to Rasa's arguments inside the container (never on a command line).
AUTH_TOKEN_ENV = "RASA_AUTH_TOKEN"
#: Printed before Rasa starts, followed by a JSON list of the GPUs TensorFlow sees.
DEVICES_MARKER = "RASA_GPU_DEVICES "
#: The line after each run in serve mode: `RASA_GPU_DONE <exit status>`.
DONE_MARKER = "RASA_GPU_DONE"
#: --gpu on, and TensorFlow in the container sees no GPU.
NO_GPU_EXIT = 86
#: The rasa-gpu that started a tied container went away (SIGTERM's status).
WRAPPER_GONE_EXIT = 143
