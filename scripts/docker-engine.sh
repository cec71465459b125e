#!/usr/bin/env bash
# Makes sure a Docker Engine answers on /var/run/docker.sock: installs Debian's docker.io when dockerd
# is missing and starts dockerd when nothing answers (idempotent; CI starts with no services running).
set -euo pipefail
# one caller at a time on this machine (test workers may ask at once); apt-get waits for the others' apt-get
exec 9>"${TMPDIR:-/tmp}/tinykube-docker-engine.lock"
flock 9
APT_LOCK=${TMPDIR:-/tmp}/tinykube-apt.lock
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v dockerd >/dev/null 2>&1; then
  echo "tinykube: installing docker.io with apt-get" >&2
  # flock -o and 9>&-: a daemon the package's scripts start must not hold either lock
  $SUDO flock -o "$APT_LOCK" apt-get update -qq 9>&-
  DEBIAN_FRONTEND=noninteractive $SUDO flock -o "$APT_LOCK" apt-get install -y -qq docker.io >/dev/null 9>&-
fi
answers() { curl -sf --max-time 2 --unix-socket "$SOCK" http://docker/_ping >/dev/null 2>&1; }
if ! answers; then
  log=${TMPDIR:-/tmp}/tinykube-dockerd.log
  echo "tinykube: starting dockerd (log: $log)" >&2
  # setsid: dockerd outlives this script and the test run that started it, as a service would;
  # 9>&-: it must not inherit (and so hold forever) this script's lock
  $SUDO setsid dockerd --host "unix://$SOCK" >"$log" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 120); do
    answers && break
    sleep 0.5
  done
  answers || { echo "tinykube: dockerd did not answer on $SOCK within 60 s; its log:" >&2; tail -20 "$log" >&2; exit 1; }
fi
