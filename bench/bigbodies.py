"""Memory of the apiserver across a burst of large and hostile bodies: RSS before, at peak, and after.

Run from the repo root:

    .venv/bin/python bench/bigbodies.py            # the burst below, once
    .venv/bin/python bench/bigbodies.py --rounds 3

It starts its own etcd and apiserver (127.0.0.1 only) and sends, 16 at a time:
- 40 bodies declaring 200 MiB (Content-Length) — the issue's 200 MB body — each streaming until refused;
- 40 chunked bodies of 64 MiB offered (no Content-Length);
- 200 ConfigMaps of 2.9 MiB (under the body limit, over the 1 MiB data limit: decoded, validated, 422);
- with --stored, 200 ConfigMaps of 900 KiB, stored then deleted (their events stay in the watch cache's
  window of 1,000 per resource, by design, so this memory is not returned until newer events replace them);
- 100 YAML alias bombs (701 bytes, expanding to ~100 MB if decoded naively);
- 40 requests with a 64 MiB header.
It prints the apiserver's VmRSS before the burst, its VmHWM (peak) during it, and VmRSS 5 s after,
plus every answer's status code. Loops are bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tinykube.procs import Process, start_apiserver, start_etcd

MiB = 1024 * 1024
BOMB = "\n".join(
    [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        'data: {a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]}',
        *(f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _stream(total: int) -> AsyncIterator[bytes]:
    yield b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"'
    chunk = b"x" * MiB
    for _ in range(total // MiB):
        yield chunk


async def _raw(host: str, port: int, payload_head: bytes, filler: int) -> str:
    """A raw request: head, then `filler` bytes in 1 MiB writes until the server answers or closes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload_head)
        chunk = b"a" * MiB
        sent = 0
        read = asyncio.create_task(reader.read(64))
        while sent < filler and not read.done():
            writer.write(chunk)
            sent += MiB
            try:
                await asyncio.wait_for(writer.drain(), 5)
            except (ConnectionError, TimeoutError):
                break
        try:
            head = await asyncio.wait_for(read, 10)
        except (ConnectionError, TimeoutError):
            return "reset"
        return head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/1.1 ") else "closed"
    finally:
        writer.close()


async def burst(url: str, codes: collections.Counter[str], stored: bool) -> None:
    """One round of the burst."""
    host, port = url.removeprefix("http://").split(":")
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=32)) as api:

        async def go(coro_factory: object) -> None:
            async with sem:
                try:
                    codes[str(await coro_factory())] += 1  # type: ignore[operator]
                except httpx.HTTPError as e:
                    codes[type(e).__name__] += 1

        path = "/api/v1/namespaces/default/configmaps"
        head200 = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {200 * MiB}\r\n\r\n"
        ).encode()
        jobs: list[object] = []
        jobs += [lambda: _raw(host, int(port), head200, 200 * MiB) for _ in range(40)]
        jobs += [lambda: _chunked(api, path) for _ in range(40)]
        big = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"'
        big += b"x" * (29 * MiB // 10) + b'"}}'
        jobs += [lambda: _post(api, path, big, "application/json") for _ in range(200)]
        if stored:
            jobs += [lambda i=i: _post(api, path, _fits(i), "application/json") for i in range(200)]
        jobs += [lambda: _post(api, path, BOMB.encode(), "application/yaml") for _ in range(100)]
        head_big = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Big: "
        jobs += [lambda: _raw(host, int(port), head_big, 64 * MiB) for _ in range(40)]
        await asyncio.gather(*(go(j) for j in jobs))
        if stored:
            await asyncio.gather(*(go(lambda i=i: _delete(api, f"{path}/fits-{i}")) for i in range(200)))


async def _chunked(api: httpx.AsyncClient, path: str) -> int:
    return (await api.post(path, content=_stream(64 * MiB), headers={"Content-Type": "application/json"})).status_code


async def _post(api: httpx.AsyncClient, path: str, body: bytes, ctype: str) -> int:
    return (await api.post(path, content=body, headers={"Content-Type": ctype})).status_code


async def _delete(api: httpx.AsyncClient, path: str) -> int:
    return (await api.delete(path)).status_code


def _fits(i: int) -> bytes:
    return (
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fits-%d"},"data":{"a":"' % i
        + b"y" * (900 * 1024)
        + b'"}}'
    )


async def run(args: argparse.Namespace, url: str, api: Process) -> None:
    async with httpx.AsyncClient(base_url=url) as c:  # warm up: every code path loaded once
        warm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}}
        await c.post("/api/v1/namespaces/default/configmaps", json=warm)
    await asyncio.sleep(1)
    before = _status(api.pid, "VmRSS")
    codes: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    for _ in range(args.rounds):
        await burst(url, codes, args.stored)
    took = time.monotonic() - started
    peak = _status(api.pid, "VmHWM")
    await asyncio.sleep(5)
    after = _status(api.pid, "VmRSS")
    print()
    print(f"answers: {dict(sorted(codes.items()))} in {took:.1f}s")
    print(f"apiserver RSS before {before:.0f} MiB, peak {peak:.0f} MiB, 5 s after {after:.0f} MiB")


def main() -> None:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument(
        "--stored",
        action="store_true",
        help="also store 200 ConfigMaps of 900 KiB and delete them (the watch cache keeps its event window of them)",
    )
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-bodies-"))
    etcd = api = None
    try:
        etcd, etcd_url = start_etcd(tmp)
        api, url = start_apiserver(tmp, etcd_url, extra=["--etcd-compaction-interval", "0"])
        asyncio.run(run(args, url, api))
    finally:
        for proc in (api, etcd):
            if proc is not None:
                proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
