#!/usr/bin/env bash
# Train example_bot on a fresh machine: engine, rasa-gpu, base image, then `rasa-gpu train example_bot`.
# Extra arguments go to rasa-gpu train (e.g. --gpu off).
set -euo pipefail
. "$(dirname "$0")/setup.sh"
rasa-gpu train example_bot "$@"
