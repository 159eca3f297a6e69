#!/usr/bin/env bash
# Shared by train-example.sh and test.sh: a Docker engine, rasa-gpu in ./.venv, and a base image that can be had.
# Source it: `. scripts/setup.sh [test]`. With test, exports RASA_GPU_BASE_IMAGE when no registry answers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/engine.sh

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
extra=""; [ "${1:-}" = test ] && extra="[test]"
echo "[setup] installing rasa-gpu$extra into .venv" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check ".$extra"
export PATH="$ROOT/.venv/bin:$PATH"

# Where no container registry answers, build the registry-less base once (debootstrap, about a minute). rasa-gpu
# finds it by itself (by its Python label) when the matrix's base image cannot be had: nothing to export for a
# newcomer's next shell. The tests name it (RASA_GPU_BASE_IMAGE), as a user who wants that base everywhere would.
if [ -z "${RASA_GPU_BASE_IMAGE:-}" ]; then
  rasa-gpu base-image --if-needed
  if [ "${1:-}" = test ] && docker image inspect rasa-gpu/base:bullseye >/dev/null 2>&1; then
    export RASA_GPU_BASE_IMAGE=rasa-gpu/base:bullseye
    echo "[setup] the tests use the registry-less base image $RASA_GPU_BASE_IMAGE" >&2
  fi
fi
