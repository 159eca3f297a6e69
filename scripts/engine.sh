#!/usr/bin/env bash
# Make sure a Docker engine answers, installing and starting one where we can (Debian/Ubuntu, as root).
#   scripts/engine.sh            ensure the main engine (docker info must answer afterwards)
#   scripts/engine.sh gpu-stub   also start a second engine whose PATH has a stand-in
#                                nvidia-container-runtime-hook, so GPU requests reach containers
#                                (for tests on machines without a GPU); prints its DOCKER_HOST
set -euo pipefail

log() { echo "[engine] $*" >&2; }

apt_install() {
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    log "missing: $*; install them (Debian/Ubuntu: sudo apt-get install $*)"; exit 1
  fi
  log "installing $* from the distribution"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for HOST
  for _ in $(seq 1 60); do
    if DOCKER_HOST="$1" docker info >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "the engine at $1 did not answer within 30 s"; return 1
}

ensure_main() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || apt_install docker.io
  command -v debootstrap >/dev/null || apt_install debootstrap
  if [ "$(id -u)" != 0 ]; then log "no Docker engine answers and starting one needs root"; exit 1; fi
  if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null && wait_for "unix:///var/run/docker.sock"; then
    return 0
  fi
  log "starting dockerd in the background (log: /var/log/rasa-gpu-dockerd.log)"
  nohup dockerd >/var/log/rasa-gpu-dockerd.log 2>&1 &
  wait_for "unix:///var/run/docker.sock"
}

gpu_stub() {
  local sock=/var/run/rasa-gpu-stub.sock stubdir=/var/lib/rasa-gpu-stub/bin
  if DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; then echo "unix://$sock"; return 0; fi
  mkdir -p "$stubdir"
  # Stand-in for the NVIDIA hook: dockerd registers its "nvidia" device driver when this name is on its PATH.
  printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' > "$stubdir/nvidia-container-runtime-hook"
  chmod +x "$stubdir/nvidia-container-runtime-hook"
  log "starting a second dockerd with a stand-in nvidia-container-runtime-hook at unix://$sock"
  PATH="$stubdir:$PATH" nohup dockerd -H "unix://$sock" \
    --data-root /var/lib/rasa-gpu-stub/data --exec-root /var/run/rasa-gpu-stub \
    --pidfile /var/run/rasa-gpu-stub.pid --bridge none --iptables=false --ip-masq=false \
    >/var/log/rasa-gpu-stub-dockerd.log 2>&1 &
  wait_for "unix://$sock"
  echo "unix://$sock"
}

restart_main_if_bridge_lost() {
  # A second dockerd started with --bridge none deletes the default bridge docker0 of the first one;
  # the first one recreates it when it restarts.
  if ip link show docker0 >/dev/null 2>&1 || [ ! -f /var/run/docker.pid ]; then return 0; fi
  log "docker0 is gone; restarting the main dockerd to recreate it"
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
    systemctl restart docker
  else
    kill "$(cat /var/run/docker.pid)" 2>/dev/null || true
    for _ in $(seq 1 40); do [ -f /var/run/docker.pid ] || break; sleep 0.5; done
    nohup dockerd >>/var/log/rasa-gpu-dockerd.log 2>&1 &
  fi
  wait_for "unix:///var/run/docker.sock"
}

ensure_main
if [ "${1:-}" = gpu-stub ]; then
  gpu_stub
  restart_main_if_bridge_lost >&2
fi
