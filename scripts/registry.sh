#!/usr/bin/env bash
# Make sure a container registry can be started for the push tests: Debian's docker-registry package (the CNCF
# distribution registry, binary /usr/bin/docker-registry) and htpasswd (apache2-utils) for its bcrypt login file.
# The tests start their own registry on a free port of 127.0.0.1; the package's own service is not used.
# Needs root and apt; does nothing when both are installed.
set -euo pipefail

log() { echo "[registry] $*" >&2; }

missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    log "missing: ${missing[*]}; install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})"; exit 1
  fi
  log "installing ${missing[*]} from the distribution"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

docker-registry --version >&2
