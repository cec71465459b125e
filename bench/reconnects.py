"""What a reconnect costs the apiserver, and whether a client that pauses between requests pays it.

Starts etcd and an apiserver with the secure port (bench/apiserver.py's stack: client certificates,
Node,RBAC), then, as the benchmark's user over TLS:

1. N GETs of /version, each on a new connection (TCP + TLS handshake with the client certificate);
2. the baseline from the same run: N GETs on one kept connection;
3. a client pausing `--pause` seconds between its requests (a kubelet renews its Lease every 10 s):
   how many of its requests found their connection closed by the server and had to reconnect.

Prints the apiserver's CPU per request (from /proc) for 1 and 2, and the count for 3.

    .venv/bin/python bench/reconnects.py [--requests 300] [--pauses 3] [--pause 6]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import load_apiserver_bench

ab = load_apiserver_bench()
cpu_seconds, run_on_apiserver = ab.cpu_seconds, ab.run_on_apiserver

REQUEST = b"GET /version HTTP/1.1\r\nHost: apiserver\r\n\r\n"

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _get(conn: Conn) -> None:
    """One GET /version on `conn`, read whole."""
    reader, writer = conn
    writer.write(REQUEST)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    await asyncio.wait_for(reader.readexactly(length), 10)


def _closed(conn: Conn) -> bool:
    """Whether the server has closed the connection (the reader has seen its end)."""
    reader, writer = conn
    return reader.at_eof() or writer.is_closing()


async def _measure(stack: Any, requests: int, pauses: int, pause: float) -> str:
    ctx: ssl.SSLContext = stack.secure.tls()
    host, port = stack.secure.url.removeprefix("https://").rsplit(":", 1)

    async def connect() -> Conn:
        return await asyncio.wait_for(asyncio.open_connection(host, int(port), ssl=ctx), 10)

    pid = stack.apiserver.pid
    warm = await connect()
    await _get(warm)
    start = cpu_seconds(pid)
    for _ in range(requests):
        conn = await connect()
        await _get(conn)
        conn[1].close()
    fresh = (cpu_seconds(pid) - start) / requests
    start = cpu_seconds(pid)
    for _ in range(requests):
        await _get(warm)
    kept = (cpu_seconds(pid) - start) / requests
    reconnects = 0
    for _ in range(pauses):
        await asyncio.sleep(pause)
        if _closed(warm):
            reconnects += 1
            warm[1].close()
            warm = await connect()
        await _get(warm)
    warm[1].close()
    return "\n".join(
        [
            f"apiserver CPU per GET on a new TLS connection: {fresh * 1e3:.2f} ms ({requests} connections)",
            f"apiserver CPU per GET on a kept connection:    {kept * 1e3:.2f} ms ({requests} GETs, the baseline)",
            f"a new connection costs {fresh / kept:.1f}x a request on a kept one",
            f"a client pausing {pause:g} s between requests reconnected for {reconnects} of {pauses}",
        ]
    )


def main() -> int:
    """Parse arguments, run on a fresh etcd and apiserver, print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=300, help="GETs on new connections, and on a kept one")
    p.add_argument("--pauses", type=int, default=3, help="requests of the pausing client")
    p.add_argument("--pause", type=float, default=6.0, help="seconds the pausing client waits before each")
    args = p.parse_args()
    return run_on_apiserver(
        "tinykube apiserver reconnect benchmark",
        "tinykube-reconnects-",
        False,
        lambda stack: asyncio.run(_measure(stack, args.requests, args.pauses, args.pause)),
    )


if __name__ == "__main__":
    sys.exit(main())
