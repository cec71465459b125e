#!/usr/bin/env bash
# tinykube-check HOST PORT PATH (in the image): exit 0 when http://HOST:PORT/PATH answers 200. The compose
# services' healthcheck, run every few seconds: bash's /dev/tcp costs far less than starting Python.
# HOST "self" is the container's own address (its hostname in the /etc/hosts Docker writes).
set -euo pipefail
host=$1 port=$2 path=$3
if [ "$host" = self ]; then
  host=$(awk -v h="$(cat /etc/hostname)" '$2 == h {print $1; exit}' /etc/hosts)
fi
exec 3<>"/dev/tcp/$host/$port"
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$host" >&3
IFS= read -r -t 3 status <&3
[[ $status == "HTTP/1."?" 200 "* ]]
