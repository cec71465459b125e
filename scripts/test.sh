#!/usr/bin/env bash
# Runs the whole tinykube test suite (sets up etcd and the venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
