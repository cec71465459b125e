#!/usr/bin/env bash
# Runs the whole tinykube test suite (sets up etcd and the venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# one pytest-xdist worker per core, at most 4; a test file runs whole on one worker (its module fixtures
# start once, its tests keep their order)
exec .venv/bin/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadfile "$@"
