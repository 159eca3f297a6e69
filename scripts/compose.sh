#!/usr/bin/env bash
# Make sure both Compose implementations are installed, so the services tests can run against each:
#   v1 `docker-compose` 1.29 from the distribution (Debian bookworm), and
#   v2 `docker compose` (the CLI plugin) taken from Debian trixie's statically built docker-compose package.
# Needs root and apt; does nothing for an implementation that already answers.
set -euo pipefail

log() { echo "[compose] $*" >&2; }
plugin_dir=/usr/local/lib/docker/cli-plugins

if ! docker-compose version >/dev/null 2>&1; then
  log "installing docker-compose (v1) from the distribution"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi

if ! docker compose version >/dev/null 2>&1; then
  log "installing the docker compose (v2) plugin from Debian trixie's docker-compose package"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cat >"$work/trixie.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_opts=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  apt-get "${apt_opts[@]}" update -qq >/dev/null
  (cd "$work" && apt-get "${apt_opts[@]}" download -qq docker-compose >/dev/null)
  dpkg -x "$work"/docker-compose_*.deb "$work/root"
  mkdir -p "$plugin_dir"
  install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/docker-compose"
fi

docker-compose version --short >&2
docker compose version >&2
