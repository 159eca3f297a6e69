#!/usr/bin/env bash
# Make sure a Docker engine answers, installing and starting one where we can (Debian/Ubuntu, as root).
#   scripts/engine.sh            ensure the main engine (docker info must answer afterwards)
#   scripts/engine.sh gpu-stub   also start a second engine whose PATH has a stand-in
#                                nvidia-container-runtime-hook, so GPU requests reach containers
#                                (for tests on machines without a GPU); prints the RASA_GPU_TEST_STUB_* lines
#                                (sourceable)
#   scripts/engine.sh gpu-stub stop   stop that second engine (never the main one)
# The main engine is only ever started here (when none answers), never stopped or restarted.
set -euo pipefail

log() { echo "[engine] $*" >&2; }
. "$(dirname "$0")/netns.sh"

# The stand-in GPU engine has its own network namespace (so its dockerd never touches the host's docker0 or Docker's
# iptables chains), data root, exec root (so its own containerd), pid file and socket. The socket is a file on the host: the host reaches it
# from its own namespace. Its containers get no network (--bridge none) and see this machine's files, so bind mounts
# of the bots work as on the main engine.
STUB_NS=rgpu-stub STUB_SOCK=/var/run/rasa-gpu-stub.sock STUB_PIDFILE=/var/run/rasa-gpu-stub.pid

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

stub_up() { DOCKER_HOST="unix://$STUB_SOCK" docker info >/dev/null 2>&1; }

stop_stub() {
  [ -f "$STUB_PIDFILE" ] || return 0
  local pid; pid=$(cat "$STUB_PIDFILE")
  log "stopping the stand-in GPU engine (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  rm -f "$STUB_PIDFILE"
}

gpu_stub() {
  local stubdir=/var/lib/rasa-gpu-stub/bin
  if stub_up; then
    if [ ! -f "$STUB_PIDFILE" ]; then log "something answers at $STUB_SOCK without $STUB_PIDFILE; stop it"; exit 1; fi
    if ! in_netns $STUB_NS "$(cat "$STUB_PIDFILE")"; then
      # An older rig started it in the host's network namespace; it is this rig's own engine, so it may go.
      log "the stand-in GPU engine runs in the host's network namespace; starting it again in netns $STUB_NS"
      stop_stub
    fi
  fi
  if ! stub_up; then
    command -v ip >/dev/null || apt_install iproute2
    command -v iptables >/dev/null || apt_install iptables
    if [ "$(id -u)" != 0 ]; then log "the stand-in GPU engine needs root"; exit 1; fi
    ensure_netns $STUB_NS rgpu-sh rgpu-s 10.231.0.4/30 10.231.0.5 10.231.0.6
    mkdir -p "$stubdir"
    # Stand-in for the NVIDIA hook: dockerd registers its "nvidia" device driver when this name is on its PATH.
    printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' > "$stubdir/nvidia-container-runtime-hook"
    chmod +x "$stubdir/nvidia-container-runtime-hook"
    log "starting the stand-in GPU engine in netns $STUB_NS at unix://$STUB_SOCK (log: /var/log/rasa-gpu-stub-dockerd.log)"
    # nsenter, not `ip netns exec` (that remounts /sys and hides the cgroup mounts).
    PATH="$stubdir:$PATH" setsid nohup nsenter --net=/run/netns/$STUB_NS dockerd -H "unix://$STUB_SOCK" \
      --data-root /var/lib/rasa-gpu-stub/data --exec-root /var/run/rasa-gpu-stub \
      --pidfile "$STUB_PIDFILE" --bridge none --iptables=false --ip-masq=false \
      </dev/null >>/var/log/rasa-gpu-stub-dockerd.log 2>&1 &
    wait_for "unix://$STUB_SOCK"
  fi
  echo "RASA_GPU_TEST_STUB_HOST=unix://$STUB_SOCK"
  echo "RASA_GPU_TEST_STUB_NETNS=/run/netns/$STUB_NS"
}

if [ "${1:-}" = gpu-stub ] && [ "${2:-}" = stop ]; then stop_stub; exit 0; fi
ensure_main
if [ "${1:-}" = gpu-stub ]; then gpu_stub; fi
