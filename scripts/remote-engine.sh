#!/usr/bin/env bash
# Test rig: a second Docker engine on this machine that is reachable ONLY over SSH, like a GPU box elsewhere
# (Debian/Ubuntu, as root). The engine runs in its own network namespace and in a private mount namespace with
# tmpfs over /tmp and /work, so no bot folder of the host exists for it (a bind mount yields an empty folder).
#   scripts/remote-engine.sh        start what is not running; prints the RASA_GPU_TEST_* lines (sourceable)
#   scripts/remote-engine.sh stop   stop sshd and the remote dockerd (its containerd exits with it)
set -euo pipefail

RIG=/var/lib/rasa-gpu-remote        # data root, ssh keys and configs, the ssh wrapper
RUN=/var/run/rasa-gpu-remote        # socket, exec root, pid files (not under the tmpfs)
SSHD_DIR=$RIG/ssh
SOCK=unix://$RUN/docker.sock
MAIN=unix:///var/run/docker.sock
NS=rgpu-remote HOST_IF=rgpu-h NS_IF=rgpu-r NET=10.231.0.0/30 HOST_IP=10.231.0.1 NS_IP=10.231.0.2
PORT=2222
BASE=rasa-gpu/base:bullseye

log() { echo "[remote-engine] $*" >&2; }
. "$(dirname "$0")/netns.sh"

apt_install() {
  log "installing $* from the distribution"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

remote_up() { DOCKER_HOST=$SOCK docker info >/dev/null 2>&1; }
ssh_up() { "$RIG/bin/ssh" -p "$PORT" root@127.0.0.1 true >/dev/null 2>&1; }

stop() {
  local f
  for f in "$RUN/sshd.pid" "$RUN/dockerd.pid"; do
    [ -f "$f" ] || continue
    log "stopping pid $(cat "$f") ($f)"
    kill "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null || break; sleep 0.5; done
    rm -f "$f"
  done
}

ensure_tools() {
  local missing=()
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if [ "$(id -u)" != 0 ]; then log "this rig needs root"; exit 1; fi
}

ensure_dockerd() {
  remote_up && return 0
  mkdir -p "$RIG/data" "$RUN/exec"
  timeout 10 nsenter --net=/run/netns/$NS getent hosts pypi.org >/dev/null ||
    log "warning: no name resolution in netns $NS; builds on the remote engine will not reach PyPI"
  log "starting the remote dockerd in netns $NS (log: /var/log/rasa-gpu-remote-dockerd.log)"
  # nsenter, not `ip netns exec` (that remounts /sys and hides the cgroup mounts). With its own --exec-root
  # dockerd starts its own containerd (socket and state under $RUN/exec/containerd, root under $RIG/data).
  setsid nohup nsenter --net=/run/netns/$NS unshare --mount --propagation private sh -c '
    mount -t tmpfs -o mode=1777 tmpfs /tmp && mount -t tmpfs tmpfs /work && exec "$@"' sh \
    dockerd -H "$SOCK" --data-root "$RIG/data" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
    </dev/null >>/var/log/rasa-gpu-remote-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do remote_up && return 0; sleep 0.5; done
  log "the remote engine at $SOCK did not answer within 60 s; see /var/log/rasa-gpu-remote-dockerd.log"; exit 1
}

ensure_ssh_files() {
  mkdir -p "$SSHD_DIR" "$RIG/bin" /run/sshd && chmod 700 "$SSHD_DIR"
  [ -f "$SSHD_DIR/host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C rasa-gpu-remote-host -f "$SSHD_DIR/host_ed25519_key"
  [ -f "$SSHD_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C rasa-gpu-remote-client -f "$SSHD_DIR/id_ed25519"
  cp "$SSHD_DIR/id_ed25519.pub" "$SSHD_DIR/authorized_keys"
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519_key.pub")" >"$SSHD_DIR/known_hosts"
  # Server: key login only; every session (so `docker system dial-stdio`) talks to the remote engine.
  cat >"$SSHD_DIR/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519_key
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile $RUN/sshd.pid
SetEnv DOCKER_HOST=$SOCK
EOF
  # Client: used by whatever runs `ssh` from PATH when $RIG/bin comes first; root's ~/.ssh is left alone.
  cat >"$SSHD_DIR/ssh_config" <<EOF
Host *
  IdentityFile $SSHD_DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSHD_DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
EOF
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$SSHD_DIR/ssh_config" >"$RIG/bin/ssh"
  chmod 755 "$RIG/bin/ssh"
}

ensure_sshd() {
  ssh_up && return 0
  local sshd; sshd=$(command -v sshd || echo /usr/sbin/sshd)
  "$sshd" -t -f "$SSHD_DIR/sshd_config"
  log "starting sshd on 127.0.0.1:$PORT (log: /var/log/rasa-gpu-remote-sshd.log)"
  # In the foreground (-D) under setsid/nohup: a daemonised sshd reset connections here.
  setsid nohup "$sshd" -D -f "$SSHD_DIR/sshd_config" -E /var/log/rasa-gpu-remote-sshd.log </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 40); do ssh_up && return 0; sleep 0.25; done
  log "sshd on 127.0.0.1:$PORT did not accept the rig's key; see /var/log/rasa-gpu-remote-sshd.log"; exit 1
}

ensure_base_image() {
  DOCKER_HOST=$SOCK docker image inspect $BASE >/dev/null 2>&1 && return 0
  if ! DOCKER_HOST=$MAIN docker image inspect $BASE >/dev/null 2>&1; then
    log "the main engine has no $BASE; the remote engine starts without it"; return 0
  fi
  log "copying $BASE from the main engine to the remote engine"
  DOCKER_HOST=$MAIN docker save $BASE | DOCKER_HOST=$SOCK docker load >/dev/null
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi
ensure_tools
ensure_netns $NS $HOST_IF $NS_IF $NET $HOST_IP $NS_IP
ensure_dockerd
ensure_ssh_files
ensure_sshd
ensure_base_image
echo "RASA_GPU_TEST_SSH_HOST=ssh://root@127.0.0.1:$PORT"
echo "RASA_GPU_TEST_SSH_PATH=$RIG/bin"
echo "RASA_GPU_TEST_REMOTE_SOCKET=$SOCK"
