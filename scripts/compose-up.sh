#!/usr/bin/env bash
# The one command for a tinykube cluster in containers: makes sure of what this machine needs (a Docker
# Engine, the Compose v2 plugin, a base image when no registry answers, the image's wheels), then
# `docker compose up -d`, waits for the nodes to be Ready and prints the KUBECONFIG to use.
# Extra arguments go to `docker compose up -d`. Stop with `docker compose down` (`down -v` forgets the cluster).
# Environment: TINYKUBE_NODES (the node containers, 2 by default: see below), TINYKUBE_PORT (6443), TINYKUBE_BASE (python:3.12-slim when Docker Hub answers, else the
# local tinykube-base:bookworm), TINYKUBE_OUTPUT (./output), COMPOSE_PROJECT_NAME, and those of docker-compose.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/docker-engine.sh
bash scripts/compose-plugin.sh
if [ -z "${TINYKUBE_BASE:-}" ]; then
  TINYKUBE_BASE=python:3.12-slim
  if ! docker image inspect "$TINYKUBE_BASE" >/dev/null 2>&1 && ! timeout 120 docker pull -q "$TINYKUBE_BASE" >/dev/null 2>&1; then
    TINYKUBE_BASE=tinykube-base:bookworm
    echo "tinykube: no registry answers: building the image on $TINYKUBE_BASE" >&2
    bash scripts/base-image.sh "$TINYKUBE_BASE"
  fi
fi
export TINYKUBE_BASE
# the wheels of tinykube and its dependencies, for the base's Python (pip on the host: its index, its CA)
pyver=$(docker run --rm --entrypoint python3 "$TINYKUBE_BASE" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
mkdir -p wheels && rm -f wheels/tinykube-*.whl
# a reproducible wheel (its files dated by the last commit): the same code is the same build context,
# so an unchanged checkout rebuilds the image from the build cache
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}
"$PY" -m pip wheel --quiet --no-deps --disable-pip-version-check --wheel-dir wheels . 2>wheels/pip.log \
  || { cat wheels/pip.log >&2; exit 1; }
# the dependencies again only when they or the base's Python changed
stamp="python $pyver, $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat wheels/.deps 2>/dev/null)" != "$stamp" ]; then
  find wheels -mindepth 1 ! -name 'tinykube-*.whl' ! -name pip.log -delete
  "$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --dest wheels \
    --python-version "$pyver" --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 wheels/tinykube-*.whl 2>wheels/pip.log \
    || { cat wheels/pip.log >&2; exit 1; }
  echo "$stamp" > wheels/.deps
fi
rm -f wheels/pip.log
# the host's etcd (Debian's is a Go binary needing only glibc): no base then needs a registry for it
if etcd_bin=$(command -v etcd); then cp "$etcd_bin" wheels/etcd; fi
mkdir -p "${TINYKUBE_OUTPUT:-output}"
docker compose build --quiet
# TINYKUBE_NODES=N (N > 2): node-3 … node-N in a generated docker-compose.override.yml, which plain
# `docker compose` commands read too; TINYKUBE_NODES=2 removes a generated one; unset leaves it be.
override=docker-compose.override.yml
marker=$(sed -n 's/^OVERRIDE_MARKER = "\(.*\)"$/\1/p' tinykube/compose.py)
if [ -n "${TINYKUBE_NODES:-}" ]; then
  if [ "$TINYKUBE_NODES" -gt 2 ]; then
    docker run --rm -i --entrypoint python3 "${TINYKUBE_IMAGE:-tinykube:dev}" \
      -m tinykube.compose nodes-override "$TINYKUBE_NODES" < docker-compose.yml > "$override.tmp"
    mv "$override.tmp" "$override"
  elif [ -f "$override" ] && [ "$(head -1 "$override")" = "$marker" ]; then
    rm -f "$override"
  fi
fi
nodes=$(docker compose config --services | grep -c '^node-')
started=$(date +%s)
docker compose up -d --quiet-pull "$@"
docker compose exec -T apiserver python3 -m tinykube.compose wait-nodes "$nodes" --timeout 120 --since "$started"
out=$(cd "${TINYKUBE_OUTPUT:-output}" && pwd)
echo "export KUBECONFIG=$out/kubeconfig"
