#!/usr/bin/env bash
# Runs the whole tinykube test suite (sets up etcd and the venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# one worker per core, at most 4: each test file runs whole on one worker (tests/conftest.py groups them)
exec .venv/bin/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadgroup "$@"
