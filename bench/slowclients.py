"""Slow and greedy clients against the apiserver, with a well-behaved probe measured in the same run.

Run from the repo root:

    .venv/bin/python bench/slowclients.py               # 2,000 slow connections, 300 probes per phase
    .venv/bin/python bench/slowclients.py --slow 500    # fewer

It starts its own etcd and apiserver (127.0.0.1 only, default flags: --header-timeout 32,
--max-connections-per-client 1000, --max-open-connections 10000) and prints:

1. probe latency p50/p99/max — sequential `GET /api/v1/namespaces/default/configmaps` on one
   keep-alive connection — with no load, then while N slow connections are held open: half of them
   slowloris header senders (one header line every 2 s, never finishing), half slow bodies (headers
   done, a declared 1 KiB body sent one byte every 2 s), spread over loopback source addresses
   127.0.<s>.<i> (at most 100 per address, under the per-client bound);
2. how many slow connections the server has closed by itself, and when (the header timeout);
3. the per-client bound: connections from one address past --max-connections-per-client get 429;
4. the apiserver's RSS and CPU seconds across the run.

Every loop is bounded in count and time; the processes are stopped at the end, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tinykube.procs import Process, start_apiserver, start_etcd

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def probe(url: str, count: int) -> list[float]:
    """Latencies (ms) of `count` sequential GETs on one keep-alive connection."""
    out: list[float] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await client.get("/api/v1/namespaces/default/configmaps")
        for _ in range(count):
            t = time.perf_counter()
            r = await client.get("/api/v1/namespaces/default/configmaps")
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
    return out


class SlowClient:
    """One connection trickling a request, never finishing it."""

    def __init__(self, host: str, port: int, source: str, kind: str) -> None:
        self.host, self.port, self.source, self.kind = host, port, source, kind
        self.opened = 0.0
        self.closed_after: float | None = None
        self.refused = False

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Open, send the start of a request, then a byte every `interval` until closed or stopped."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0)), 10
            )
        except (OSError, TimeoutError):
            self.refused = True
            return
        self.opened = time.monotonic()
        if self.kind == "headers":
            writer.write(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n")
            trickle = (f"X-Slow-{i}: a\r\n".encode() for i in range(10_000))
        else:
            writer.write(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n")
            writer.write(b"Content-Type: application/json\r\nContent-Length: 1024\r\n\r\n")
            trickle = (b"{" if i == 0 else b" " for i in range(1023))
        try:
            await writer.drain()
            read = asyncio.create_task(reader.read(65536))
            for chunk in trickle:
                done, _ = await asyncio.wait(
                    {read, asyncio.create_task(stop.wait())}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                )
                if stop.is_set():
                    break
                if read in done:  # the server answered or closed the connection
                    self.closed_after = time.monotonic() - self.opened
                    break
                writer.write(chunk)
                await writer.drain()
            read.cancel()
        except (ConnectionError, OSError):
            self.closed_after = time.monotonic() - self.opened
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def greedy(host: str, port: int, source: str, count: int) -> tuple[int, int]:
    """Open `count` idle connections from one address: (served, refused with 429) as the server answers."""
    conns = []
    served = refused = 0
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
            conns.append(writer)
            try:
                head = await asyncio.wait_for(reader.read(64), 0.02)
            except TimeoutError:
                served += 1
                continue
            if head.startswith(b"HTTP/1.1 429"):
                refused += 1
    finally:
        for w in conns:
            w.close()
    return served, refused


async def hold(url: str, count: int, interval: float, octet: int, wait_close: float, started: Any, out: Any) -> None:
    """In the child process: open `count` slow clients, say so, keep them until the server closes them."""
    host, port = url.removeprefix("http://").split(":")
    stop = asyncio.Event()
    clients = [
        SlowClient(host, int(port), f"127.{octet}.{i // 100}.{1 + i % 100}", "headers" if i % 2 == 0 else "body")
        for i in range(count)
    ]
    tasks = [asyncio.create_task(c.run(stop, interval)) for c in clients]
    await asyncio.sleep(3)  # all connected and trickling
    started.put(sum(1 for c in clients if c.opened and c.closed_after is None))
    deadline = time.monotonic() + wait_close
    while time.monotonic() < deadline and any(c.opened and c.closed_after is None for c in clients):  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)
    out.put(([c.closed_after for c in clients if c.closed_after is not None], sum(c.refused for c in clients)))


def _hold_process(url: str, count: int, interval: float, octet: int, wait_close: float, started: Any, out: Any) -> None:
    asyncio.run(hold(url, count, interval, octet, wait_close, started, out))


async def run(args: argparse.Namespace, url: str, api: Process) -> None:
    host, port = url.removeprefix("http://").split(":")
    rss0, cpu0 = _rss_mib(api.pid), _cpu_s(api.pid)
    base = await probe(url, args.probes)
    octet = random.randint(20, 90)
    # the slow clients live in their own process, so the probe's latency is the server's alone
    ctx = multiprocessing.get_context("spawn")
    started, out = ctx.Queue(), ctx.Queue()
    child = ctx.Process(
        target=_hold_process, args=(url, args.slow, args.interval, octet, args.wait_close, started, out)
    )
    child.start()
    try:
        opened = await asyncio.to_thread(started.get, True, 120)
        loaded = await probe(url, args.probes)
        rss1, cpu1 = _rss_mib(api.pid), _cpu_s(api.pid)
        closed, refused_at_connect = await asyncio.to_thread(out.get, True, args.wait_close + 60)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    served, refused = await greedy(host, int(port), f"127.{octet}.99.1", args.greedy)
    print()
    print(f"probe GET configmaps (ms)          unloaded      with {args.slow} slow connections")
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        print(f"  {name:<32} {_pct(base, q):>8.2f}      {_pct(loaded, q):>8.2f}")
    print(f"  {'max':<32} {max(base):>8.2f}      {max(loaded):>8.2f}")
    print(f"  {'mean':<32} {statistics.mean(base):>8.2f}      {statistics.mean(loaded):>8.2f}")
    print()
    print(f"slow connections open when the loaded probe started: {opened}/{args.slow}")
    if closed:
        print(
            f"closed by the server: {len(closed)}/{args.slow}, after {min(closed):.1f}-{max(closed):.1f}s "
            f"(median {statistics.median(closed):.1f}s)"
        )
    print(f"refused at connect: {refused_at_connect}")
    print(f"one address opening {args.greedy} connections: {served} served, {refused} answered 429")
    print(f"apiserver RSS {rss0:.0f} -> {rss1:.0f} MiB while held; CPU {cpu1 - cpu0:.1f}s over the two probe phases")


def main() -> None:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--slow", type=int, default=2000, help="slow connections held during the loaded probe")
    p.add_argument("--probes", type=int, default=300, help="probe requests per phase")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between a slow client's bytes")
    p.add_argument("--wait-close", type=float, default=70.0, help="seconds to wait for the server to close them")
    p.add_argument("--greedy", type=int, default=1010, help="connections opened from one address")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-slow-"))
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
