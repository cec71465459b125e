#!/usr/bin/env bash
# Installs what tinykube needs on Debian/Ubuntu (etcd, a venv with the package) — idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
# etcd and etcdctl (the tests read etcd directly with etcdctl); unshare/nsenter come with util-linux.
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
# Debian's chromium: the dashboard tests drive it headless with Playwright (never `playwright install`).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The venv's interpreter: $PYTHON when set; else the distribution's /usr/bin/python3 when it is 3.11 or
# newer (Debian and Ubuntu build it with profile-guided and link-time optimization; a default pyenv or
# source build has neither, and every component spends about 10 % more CPU per request on it:
# bench/README.md, "Session 26") and can make a venv, or is the only python3 here (then python3-venv is
# installed); else python3 on PATH.
real() { "$1" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'; }
PY=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
  if /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1; then
    PY=/usr/bin/python3
  elif [ "$(real python3 2>/dev/null)" = "$(real /usr/bin/python3)" ]; then
    PY=/usr/bin/python3
    missing+=(python3-venv)
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "tinykube: installing ${missing[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# a venv made from another interpreter is made again (its packages come back from pip's cache)
if [ -x .venv/bin/python ] && [ "$(real .venv/bin/python 2>/dev/null)" != "$(real "$PY")" ]; then
  echo "tinykube: making .venv again with $(real "$PY")" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.tinykube-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
# The repo's packages compiled to bytecode once (incremental: only what changed since). Where
# PYTHONDONTWRITEBYTECODE is set, as in many CI images, every component process would otherwise compile
# each module it imports from source at every start (about 0.35 s more for an apiserver). A module that does
# not compile is left to fail where it is imported.
.venv/bin/python -m compileall -q -j 0 $(dirname */__init__.py) >/dev/null 2>&1 || true
