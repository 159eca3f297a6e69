#!/usr/bin/env bash
# The test command: lint, types, the docs' strict build, and every test against a real Docker engine (a missing engine
# fails).
# Extra arguments go to pytest (e.g. -k train -x). `--fast` first: the tier that needs no engine.
set -euo pipefail
# In parallel workers, a file per worker at a time (module fixtures are made once); the long files first (see
# LONG_FILES in tests/conftest.py). Most of a Docker test's time is Rasa training on one thread and containers
# starting, so on 2 cores three workers get through the suite about twice as fast as one.
PARALLEL=(-n "${RASA_GPU_TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder)
# The docs (docs/, mkdocs.yml) as a site, strict: a broken link, anchor or page fails the run. Built into a temporary
# folder, so the checkout stays as it was.
docs_site() {
  local site
  site="$(mktemp -d)"
  NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "$site"
  rm -rf "$site"
}
if [ "${1:-}" = --fast ]; then
  # The fast tier: lint, types and every test that needs no engine (no Docker, Slurm or SSH started), under a
  # minute on 2 cores. The tests it leaves out are marked docker (tests/conftest.py marks each one whose fixtures
  # reach an engine).
  shift
  cd "$(dirname "$0")/.."
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check ".[test]"
  export PATH="$PWD/.venv/bin:$PATH"
  ruff check rasa_gpu tests tools benchmarks
  ruff format --check rasa_gpu tests tools benchmarks
  mypy
  docs_site
  exec python -m pytest -p no:cacheprovider "${PARALLEL[@]}" -m "not docker" "$@"
fi
. "$(dirname "$0")/setup.sh" test
bash scripts/compose.sh  # docker compose (v2) and docker-compose (v1): the services tests use both
bash scripts/registry.sh  # docker-registry and htpasswd: the push tests start a registry with a login
# The stand-in GPU engine (its own network namespace; a stand-in nvidia-container-runtime-hook): the GPU-request tests.
STUB_ENV="$(bash scripts/engine.sh gpu-stub)"
set -a; eval "$STUB_ENV"; set +a
# A second engine reachable only over SSH (its own namespaces, sshd on 127.0.0.1:2222): the remote-host tests.
REMOTE_ENV="$(bash scripts/remote-engine.sh)"
set -a; eval "$REMOTE_ENV"; set +a
# A one-node Slurm cluster with a fake GPU: the queued-training tests.
bash scripts/slurm.sh >/dev/null
# kubectl: the README's Kubernetes steps are followed up to `kubectl apply` (Debian's kubernetes-client if missing).
command -v kubectl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
export RASA_GPU_REQUIRE_DOCKER=1 RASA_GPU_TEST_SLURM=1
ruff check rasa_gpu tests tools benchmarks
ruff format --check rasa_gpu tests tools benchmarks
mypy
docs_site
python -m pytest -p no:cacheprovider "${PARALLEL[@]}" --durations=25 "$@"
