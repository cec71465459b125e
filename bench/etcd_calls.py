"""CPU per etcd call of the calling process, for several ways of making the apiserver's etcd calls.

Starts a real etcd (or uses `--etcd URL`), then for each variant times N gets (a Range of one key) and
N writes (a Txn putting one key), sequentially and with 16 concurrent callers, and prints the CPU
(user + system, `time.process_time`: every thread of this process, gRPC's C threads included) per call
in µs and calls/s, on uvloop as the apiserver. Variants run in turn within each round (ABAB…) and the median
round is printed.

    python -m bench.etcd_calls [--calls 3000] [--rounds 3] [--etcd http://127.0.0.1:2379]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import uvloop
from aetcd import rpc

from apiserver.etcdgrpc import GrpcChannel
from apiserver.storage import EtcdStorage

KEY = "/registry/bench/etcd-calls/key"
VALUE = json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b" * 200}}).encode()
TIMEOUT = 5.0
CONCURRENCY = 16

Call = Callable[[], Awaitable[Any]]


class Variant:
    """One way of calling etcd: its get and its write, set up once and closed at the end."""

    name = ""

    async def start(self, url: str) -> None:
        """Open connections."""

    async def get(self) -> Any:
        """Read KEY."""
        raise NotImplementedError

    async def write(self) -> Any:
        """Write KEY."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close connections."""


def _target(url: str) -> str:
    return url.split("://", 1)[-1]


def _txn(key: bytes) -> Any:
    return rpc.TxnRequest(
        compare=[rpc.Compare(result=rpc.Compare.GREATER, target=rpc.Compare.CREATE, key=key, create_revision=-1)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=VALUE))],
    )


class Storage(Variant):
    """1. the apiserver's path: EtcdStorage.get and .create (timeout, error mapping, metrics, decoding), on
    variant 6's channel since session 17."""

    name = "1 EtcdStorage"

    async def start(self, url: str) -> None:
        """Open the storage."""
        self.s = EtcdStorage(url, TIMEOUT)
        self.n = 0
        await self.s.put(KEY, json.loads(VALUE))

    async def get(self) -> Any:
        """EtcdStorage.get."""
        return await self.s.get(KEY)

    async def write(self) -> Any:
        """EtcdStorage.create of a new key (a Txn: the create compare, one put)."""
        self.n += 1
        return await self.s.create(f"{KEY}-{self.n}", {"kind": "ConfigMap", "data": {"a": "b" * 200}})

    async def close(self) -> None:
        """Close the storage."""
        await self.s.close()


class AioStub(Variant):
    """1b. the bare grpc.aio stub with the same per-call arguments (timeout, new request)."""

    name = "1b aio stub"
    options: tuple[tuple[str, Any], ...] = (("grpc.max_receive_message_length", 1 << 30),)

    async def start(self, url: str) -> None:
        """Open an aio channel."""
        self.ch = grpc.aio.insecure_channel(_target(url), options=list(self.options))
        self.kv = rpc.KVStub(self.ch)
        self.k = KEY.encode()

    async def get(self) -> Any:
        """Range with a new request."""
        return await self.kv.Range(rpc.RangeRequest(key=self.k), timeout=TIMEOUT)

    async def write(self) -> Any:
        """Txn with a new request."""
        return await self.kv.Txn(_txn(self.k), timeout=TIMEOUT)

    async def close(self) -> None:
        """Close the channel."""
        await self.ch.close()


class AioLean(AioStub):
    """2. grpc.aio, reused requests, a raw unary-unary multicallable, lean channel options."""

    name = "2 aio lean"
    options = (
        ("grpc.max_receive_message_length", 1 << 30),
        ("grpc.so_reuseport", 0),
        ("grpc.enable_retries", 0),
        ("grpc.default_compression_algorithm", 0),
    )

    async def start(self, url: str) -> None:
        """Open the channel and the multicallables."""
        await super().start(url)
        self.range = self.ch.unary_unary(
            "/etcdserverpb.KV/Range",
            request_serializer=rpc.RangeRequest.SerializeToString,
            response_deserializer=rpc.RangeResponse.FromString,
        )
        self.txn = self.ch.unary_unary(
            "/etcdserverpb.KV/Txn",
            request_serializer=rpc.TxnRequest.SerializeToString,
            response_deserializer=rpc.TxnResponse.FromString,
        )
        self.req = rpc.RangeRequest(key=self.k)
        self.treq = _txn(self.k)

    async def get(self) -> Any:
        """Range, request reused."""
        return await self.range(self.req, timeout=TIMEOUT)

    async def write(self) -> Any:
        """Txn, request reused."""
        return await self.txn(self.treq, timeout=TIMEOUT)


class SyncFuture(Variant):
    """3. the synchronous channel's `.future()`, its result handed to the loop by call_soon_threadsafe."""

    name = "3 sync .future()"

    async def start(self, url: str) -> None:
        """Open a synchronous channel."""
        self.ch = grpc.insecure_channel(_target(url), options=[("grpc.max_receive_message_length", 1 << 30)])
        self.kv = rpc.KVStub(self.ch)
        self.k = KEY.encode()
        self.loop = asyncio.get_running_loop()

    async def _await(self, fut: grpc.Future) -> Any:
        done = self.loop.create_future()

        def finished(f: grpc.Future) -> None:
            self.loop.call_soon_threadsafe(_settle, done, f)

        fut.add_done_callback(finished)
        try:
            return await done
        except asyncio.CancelledError:
            fut.cancel()
            raise

    async def get(self) -> Any:
        """Range."""
        return await self._await(self.kv.Range.future(rpc.RangeRequest(key=self.k), timeout=TIMEOUT))

    async def write(self) -> Any:
        """Txn."""
        return await self._await(self.kv.Txn.future(_txn(self.k), timeout=TIMEOUT))

    async def close(self) -> None:
        """Close the channel."""
        self.ch.close()


def _settle(done: asyncio.Future[Any], f: grpc.Future) -> None:
    if done.done():
        return
    e = f.exception()
    if e is not None:
        done.set_exception(e)
    else:
        done.set_result(f.result())


class Gateway(Variant):
    """4. etcd's JSON gateway (/v3/kv/…) over one kept-alive HTTP/1.1 connection per caller."""

    name = "4 json gateway"

    async def start(self, url: str) -> None:
        """Remember the address; connections open per caller."""
        host, port = _target(url).rsplit(":", 1)
        self.addr = (host, int(port))
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        k = base64.b64encode(KEY.encode()).decode()
        self.range_body = json.dumps({"key": k}).encode()
        self.txn_body = json.dumps(
            {
                "compare": [{"result": "GREATER", "target": "CREATE", "key": k, "create_revision": "-1"}],
                "success": [{"request_put": {"key": k, "value": base64.b64encode(VALUE).decode()}}],
            }
        ).encode()

    async def _post(self, path: str, body: bytes) -> dict[str, Any]:
        conn = self.idle.pop() if self.idle else await asyncio.open_connection(*self.addr)
        reader, writer = conn
        async with asyncio.timeout(TIMEOUT):
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (path.encode(), len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            data = await reader.readexactly(length)
        self.idle.append(conn)
        out = json.loads(data)
        for kv in out.get("kvs", ()):
            kv["value"] = base64.b64decode(kv["value"])
        return out

    async def get(self) -> Any:
        """POST /v3/kv/range."""
        return await self._post("/v3/kv/range", self.range_body)

    async def write(self) -> Any:
        """POST /v3/kv/txn."""
        return await self._post("/v3/kv/txn", self.txn_body)

    async def close(self) -> None:
        """Close the connections."""
        for _, w in self.idle:
            w.close()


class Batched(AioLean):
    """5. gets that arrive together go out as one Txn of Range ops (no compares: always succeeds)."""

    name = "5 batched gets"

    async def start(self, url: str) -> None:
        """Open the channel; no batch pending."""
        await super().start(url)
        self.pending: list[tuple[bytes, asyncio.Future[Any]]] = []
        self.tasks: set[asyncio.Future[None]] = set()

    async def get(self) -> Any:
        """Join the pending batch (sent at the loop's next turn)."""
        fut = asyncio.get_running_loop().create_future()
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append((self.k, fut))
        return await fut

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if len(batch) == 1:
            call = self.range(rpc.RangeRequest(key=batch[0][0]), timeout=TIMEOUT)
        else:
            ops = [rpc.RequestOp(request_range=rpc.RangeRequest(key=k)) for k, _ in batch]
            call = self.txn(rpc.TxnRequest(success=ops), timeout=TIMEOUT)
        task = asyncio.ensure_future(self._deliver(call, batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, call: Any, batch: list[tuple[bytes, asyncio.Future[Any]]]) -> None:
        try:
            resp = await call
        except Exception as e:
            for _, f in batch:
                if not f.done():
                    f.set_exception(e)
            return
        for i, (_, f) in enumerate(batch):
            if not f.done():
                f.set_result(resp if len(batch) == 1 else resp.responses[i].response_range)


class Lean(Variant):
    """6. `apiserver.etcdgrpc`: gRPC on HTTP/2 in an asyncio Protocol (what EtcdStorage calls since session 17)."""

    name = "6 etcdgrpc"

    async def start(self, url: str) -> None:
        """Open the channel."""
        host, port = _target(url).rsplit(":", 1)
        self.ch = GrpcChannel(host, int(port))
        self.k = KEY.encode()

    async def get(self) -> Any:
        """Range with a new request."""
        req = rpc.RangeRequest(key=self.k).SerializeToString()
        return await self.ch.unary("/etcdserverpb.KV/Range", req, rpc.RangeResponse.FromString, TIMEOUT)

    async def write(self) -> Any:
        """Txn with a new request."""
        req = _txn(self.k).SerializeToString()
        return await self.ch.unary("/etcdserverpb.KV/Txn", req, rpc.TxnResponse.FromString, TIMEOUT)

    async def close(self) -> None:
        """Close the channel."""
        await self.ch.close()


VARIANTS: list[type[Variant]] = [Storage, AioStub, AioLean, SyncFuture, Gateway, Batched, Lean]


def _etcd_cpu(pid: int) -> float:
    """CPU seconds etcd has used so far (0 when it is not ours to read)."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ETCD_PID = 0


async def _timed(call: Call, n: int, concurrency: int) -> tuple[float, float, float, float]:
    """(CPU µs per call, of it the event loop's thread, etcd's CPU µs per call, calls/s) of n calls by
    `concurrency` callers."""
    per = n // concurrency

    async def caller() -> None:
        for _ in range(per):
            await call()

    e0, cpu0, th0, t0 = _etcd_cpu(ETCD_PID), time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    cpu, th, wall = time.process_time() - cpu0, time.thread_time() - th0, time.perf_counter() - t0
    etcd = _etcd_cpu(ETCD_PID) - e0
    done = per * concurrency
    return cpu / done * 1e6, th / done * 1e6, etcd / done * 1e6, done / wall


async def run(url: str, calls: int, rounds: int, only: str) -> None:
    """Time every variant `rounds` times, in turn, and print the median round."""
    variants = [v() for v in VARIANTS if not only or v.name.split()[0] in only.split(",")]
    for v in variants:
        await v.start(url)
    for v in variants:  # warm up: connect, first calls
        await v.write()
        await _timed(v.get, 200, 1)
    cases = [("get", 1), ("get", CONCURRENCY), ("write", 1), ("write", CONCURRENCY)]
    results: dict[tuple[str, str, int], list[tuple[float, float, float, float]]] = {}
    for _ in range(rounds):
        for op, conc in cases:
            for v in variants:
                if op == "write" and isinstance(v, Batched):
                    continue
                call = v.get if op == "get" else v.write
                results.setdefault((v.name, op, conc), []).append(await _timed(call, calls, conc))
    for v in variants:
        await v.close()
    print(
        f"{'variant':<20} {'op':<6} {'callers':>7} {'CPU µs/call':>12} {'loop thread':>12} {'etcd µs/call':>12}"
        f" {'calls/s':>9}"
    )
    for op, conc in cases:
        for v in variants:
            rows = results.get((v.name, op, conc))
            if not rows:
                continue
            cpu, th, etcd, rate = (statistics.median(r[i] for r in rows) for i in range(4))
            print(f"{v.name:<20} {op:<6} {conc:>7} {cpu:>12.1f} {th:>12.1f} {etcd:>12.1f} {rate:>9.0f}")
        print()


def main() -> None:
    """Parse arguments, start etcd unless given one, run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--etcd", default="", help="an etcd to use instead of starting one (its CPU is not read)")
    p.add_argument("--only", default="", help="variant numbers to run, e.g. 1,2,4")
    args = p.parse_args()
    if args.etcd:
        uvloop.run(run(args.etcd, args.calls, args.rounds, args.only))
        return
    from tinykube.procs import start_etcd

    with tempfile.TemporaryDirectory() as d:
        proc, url = start_etcd(Path(d))
        global ETCD_PID
        ETCD_PID = proc.pid
        try:
            uvloop.run(run(url, args.calls, args.rounds, args.only))
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
