#!/usr/bin/env bash
# Builds the local base image tinykube's Dockerfile starts from on machines where no registry answers:
# a debootstrap'ed Debian bookworm (minbase) with python3, python3-venv, etcd-server, ca-certificates,
# procps and iproute2, imported with `docker import`. Idempotent: nothing to do when the image exists.
# Usage: bash scripts/base-image.sh [image]   (default tinykube-base:bookworm)
set -euo pipefail
# one build at a time on this machine (test workers may ask at once); apt-get waits for the others' apt-get
exec 9>"${TMPDIR:-/tmp}/tinykube-base-image.lock"
flock 9
APT_LOCK=${TMPDIR:-/tmp}/tinykube-apt.lock
IMAGE=${1:-${TINYKUBE_BASE_IMAGE:-tinykube-base:bookworm}}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v debootstrap >/dev/null 2>&1; then
  $SUDO flock -o "$APT_LOCK" apt-get update -qq 9>&-
  DEBIAN_FRONTEND=noninteractive $SUDO flock -o "$APT_LOCK" apt-get install -y -qq debootstrap >/dev/null 9>&-
fi
# the mirror apt uses on this machine (deb822 sources or a one-line sources.list), else Debian's own
mirror=$(grep -hs -m1 -E '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' || true)
[ -n "$mirror" ] || mirror=$(grep -hs -m1 -E '^deb .*debian/? bookworm' /etc/apt/sources.list | awk '{print $2}' || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
root=$(mktemp -d "${TMPDIR:-/tmp}/tinykube-base.XXXXXX")
trap '$SUDO rm -rf "$root"' EXIT
echo "tinykube: debootstrap bookworm from $mirror into $root" >&2
$SUDO debootstrap --variant=minbase \
  --include=python3,python3-venv,etcd-server,ca-certificates,procps,iproute2 \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# what a docker base image leaves out: apt's caches, docs, man pages
$SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/locale/*
$SUDO tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "tinykube: built base image $IMAGE" >&2
