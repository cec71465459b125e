#!/usr/bin/env bash
# Brings up a local tinykube cluster (installs etcd and the venv first). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tinykube up "$@"
