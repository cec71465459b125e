"""The lean gRPC channel (`apiserver.etcdgrpc`) against a real etcd: unary calls, big messages both ways
(flow control), many calls at once on one connection, etcd's errors, deadlines, a lost or frozen server,
a cancelled call, and a watch stream whose reader lags."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from aetcd import rpc
from hpack import Encoder

from apiserver.etcdgrpc import STREAM_WINDOW, GrpcChannel, GrpcError, GrpcStream
from tests.integration.controller_kit import eventually
from tests.integration.harden_kit import freeze
from tinykube.procs import Process, free_port, start_etcd

RANGE, TXN, WATCH = "/etcdserverpb.KV/Range", "/etcdserverpb.KV/Txn", "/etcdserverpb.Watch/Watch"
PREFIX = b"/test/etcdgrpc/"


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """One HTTP/2 frame, as a scripted server writes it."""
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    """The next HTTP/2 frame a scripted server reads: type, flags, stream id, payload."""
    head = await reader.readexactly(9)
    payload = await reader.readexactly(int.from_bytes(head[:3], "big"))
    return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, payload


def _channel(url: str, **kwargs: float) -> GrpcChannel:
    parts = urlsplit(url)
    return GrpcChannel(parts.hostname or "127.0.0.1", parts.port or 2379, **kwargs)  # type: ignore[arg-type]


async def _put(channel: GrpcChannel, key: bytes, value: bytes, timeout: float = 5) -> rpc.TxnResponse:
    req = rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))])
    return await channel.unary(TXN, req.SerializeToString(), rpc.TxnResponse.FromString, timeout)


async def _get(channel: GrpcChannel, key: bytes, end: bytes = b"", timeout: float = 5) -> rpc.RangeResponse:
    req = rpc.RangeRequest(key=key, range_end=end)
    return await channel.unary(RANGE, req.SerializeToString(), rpc.RangeResponse.FromString, timeout)


async def _watch(channel: GrpcChannel, prefix: bytes) -> GrpcStream:
    """A watch stream on every key under `prefix`, once etcd answered its creation."""
    stream = await channel.stream(WATCH, 5)
    create = rpc.WatchCreateRequest(key=prefix, range_end=prefix[:-1] + bytes((prefix[-1] + 1,)))
    stream.send(rpc.WatchRequest(create_request=create).SerializeToString())
    assert rpc.WatchResponse.FromString(await stream.read()).created  # type: ignore[arg-type]
    return stream


@pytest.fixture
async def channel(etcd: str) -> AsyncIterator[GrpcChannel]:
    """A channel to the session's etcd."""
    ch = _channel(etcd)
    yield ch
    await ch.close()


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """An etcd of this test's own, since the test freezes or kills it: the process and its URL."""
    proc, url = start_etcd(tmp_path)
    yield proc, url
    if proc.alive():
        os.kill(proc.pid, signal.SIGCONT)
    proc.stop()


async def test_a_put_and_a_range_round_trip(channel: GrpcChannel) -> None:
    key = PREFIX + b"plain"
    put = await _put(channel, key, b"value")
    got = await _get(channel, key)
    assert [(kv.key, kv.value) for kv in got.kvs] == [(key, b"value")]
    assert got.kvs[0].mod_revision == put.header.revision


async def test_messages_larger_than_the_windows_go_both_ways(channel: GrpcChannel) -> None:
    # a 1 MiB put is 16 frames and many times etcd's 64 KiB initial window; five of them read back at once
    # are 5 MiB, five times the stream window this client gives
    values = {PREFIX + b"big/%d" % i: os.urandom(1 << 20) for i in range(5)}
    for key, value in values.items():
        await _put(channel, key, value)
    got = await _get(channel, PREFIX + b"big/", PREFIX + b"big0")
    assert {kv.key: kv.value for kv in got.kvs} == values
    assert sum(len(v) for v in values.values()) > 4 * STREAM_WINDOW


async def test_many_calls_at_once_share_one_connection(channel: GrpcChannel) -> None:
    keys = [PREFIX + b"many/%d" % i for i in range(300)]
    await asyncio.gather(*(_put(channel, k, k[::-1]) for k in keys))
    got = await asyncio.gather(*(_get(channel, k) for k in keys))
    assert [r.kvs[0].value for r in got] == [k[::-1] for k in keys]
    assert len({id(channel._connection)}) == 1 and not channel._connection.streams  # type: ignore[union-attr]


async def test_an_etcd_error_comes_back_as_its_status(channel: GrpcChannel) -> None:
    head = (await _get(channel, PREFIX + b"none")).header.revision
    req = rpc.RangeRequest(key=PREFIX, revision=head + 1000)
    with pytest.raises(GrpcError) as e:
        await channel.unary(RANGE, req.SerializeToString(), rpc.RangeResponse.FromString, 5)
    assert e.value.code() is grpc.StatusCode.OUT_OF_RANGE
    assert "future revision" in e.value.details()
    assert (await _get(channel, PREFIX + b"none")).count == 0  # the connection goes on


async def test_an_unknown_method_is_unimplemented(channel: GrpcChannel) -> None:
    with pytest.raises(GrpcError) as e:
        await channel.unary("/etcdserverpb.KV/Nothing", b"", rpc.RangeResponse.FromString, 5)
    assert e.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_a_frozen_server_meets_the_deadline_and_the_channel_recovers(own_etcd: tuple[Process, str]) -> None:
    proc, url = own_etcd
    channel = _channel(url)
    try:
        await _put(channel, PREFIX + b"frozen", b"1")
        await freeze(proc.pid)
        start = time.monotonic()
        with pytest.raises(GrpcError) as e:
            await _get(channel, PREFIX + b"frozen", timeout=0.5)
        assert e.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert 0.45 <= time.monotonic() - start < 2
        os.kill(proc.pid, signal.SIGCONT)
        assert (await _get(channel, PREFIX + b"frozen")).kvs[0].value == b"1"
    finally:
        await channel.close()


async def test_a_cancelled_call_leaves_the_connection_usable(channel: GrpcChannel) -> None:
    await _get(channel, PREFIX)  # connected
    task = asyncio.ensure_future(_put(channel, PREFIX + b"cancelled", os.urandom(1 << 20)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not channel._connection.streams  # type: ignore[union-attr]
    assert (await _put(channel, PREFIX + b"after", b"ok")).succeeded


async def test_nothing_listening_is_unavailable() -> None:
    channel = GrpcChannel("127.0.0.1", free_port())
    with pytest.raises(GrpcError) as e:
        await _get(channel, PREFIX)
    assert e.value.code() is grpc.StatusCode.UNAVAILABLE
    await channel.close()


async def test_a_killed_server_ends_open_calls_unavailable_and_a_new_one_reconnects(
    own_etcd: tuple[Process, str], tmp_path: Path
) -> None:
    proc, url = own_etcd
    channel = _channel(url)
    try:
        stream = await _watch(channel, PREFIX)
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(GrpcError) as e:
            await asyncio.wait_for(stream.read(), 5)
        assert e.value.code() is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(GrpcError) as e:
            await _get(channel, PREFIX)
        assert e.value.code() is grpc.StatusCode.UNAVAILABLE
        # etcd back on the same port, its data kept: the next call opens a new connection
        proc.proc.wait(5)
        again, _ = start_etcd(tmp_path, client_port=urlsplit(url).port)
        try:
            assert (await _get(channel, PREFIX + b"none")).count == 0
        finally:
            again.stop()
    finally:
        await channel.close()


async def test_calls_with_their_own_timeouts_each_end_at_their_own_deadline(own_etcd: tuple[Process, str]) -> None:
    """One timer serves a connection's deadlines: a shorter timeout opened after a longer one still ends first,
    each at its own time, and a call answered before its deadline is not touched by the others' ends."""
    proc, url = own_etcd
    channel = _channel(url)
    try:
        await _put(channel, PREFIX + b"deadlines", b"1")
        answered = await _get(channel, PREFIX + b"deadlines", timeout=0.3)  # its deadline passes while frozen
        await freeze(proc.pid)
        ended: dict[float, float] = {}

        async def call(timeout: float) -> None:
            start = time.monotonic()
            with pytest.raises(GrpcError) as e:
                await _get(channel, PREFIX + b"deadlines", timeout=timeout)
            assert e.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            ended[timeout] = time.monotonic() - start

        await asyncio.gather(call(1.2), call(0.3), call(0.7))
        for timeout, elapsed in ended.items():
            assert timeout * 0.9 <= elapsed < timeout + 0.5, (timeout, elapsed)
        assert sorted(ended, key=ended.__getitem__) == [0.3, 0.7, 1.2]
        assert answered.kvs[0].value == b"1"
        os.kill(proc.pid, signal.SIGCONT)
        assert (await _get(channel, PREFIX + b"deadlines", timeout=0.5)).kvs[0].value == b"1"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        await channel.close()


async def test_a_frozen_server_under_an_open_stream_is_found_by_the_keepalive(own_etcd: tuple[Process, str]) -> None:
    proc, url = own_etcd
    channel = _channel(url, keepalive=0.2, keepalive_timeout=0.5)
    try:
        stream = await _watch(channel, PREFIX)
        await freeze(proc.pid)
        start = time.monotonic()
        with pytest.raises(GrpcError, match="keepalive"):
            await asyncio.wait_for(stream.read(), 10)
        assert time.monotonic() - start < 3
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        await channel.close()


async def test_a_watch_reader_that_lags_holds_etcd_back_and_then_gets_every_event(channel: GrpcChannel) -> None:
    prefix = PREFIX + b"lag/"
    stream = await _watch(channel, prefix)
    values = [os.urandom(100_000) for _ in range(40)]  # 4 MB of events, four stream windows
    bound = 2 * STREAM_WINDOW + 100_100  # two windows and a message still coming in
    for i, value in enumerate(values):
        await _put(channel, prefix + b"%02d" % i, value)

    # the unread events fill the window, and the one etcd had before the window was held back, and stop there
    async def filled() -> bool:
        return stream.buffered >= STREAM_WINDOW * 1.9

    await eventually(filled, 5, "the stream's windows filled")
    assert stream.buffered <= bound
    seen: list[bytes] = []
    while len(seen) < len(values):
        message = await asyncio.wait_for(stream.read(), 5)
        assert message is not None
        seen += [ev.kv.value for ev in rpc.WatchResponse.FromString(message).events]
        assert stream.buffered <= bound
    assert seen == values
    stream.cancel()
    assert (await _get(channel, prefix, prefix[:-1] + b"0")).count == len(values)


async def test_a_watch_event_larger_than_the_window_comes_in_whole(channel: GrpcChannel) -> None:
    prefix = PREFIX + b"huge/"
    stream = await _watch(channel, prefix)
    value = os.urandom(STREAM_WINDOW + STREAM_WINDOW // 4)  # etcd takes requests up to 1.5 MiB
    await _put(channel, prefix + b"one", value)
    message = await asyncio.wait_for(stream.read(), 5)
    assert [ev.kv.value for ev in rpc.WatchResponse.FromString(message).events] == [value]  # type: ignore[arg-type]
    stream.cancel()


async def test_a_server_that_breaks_http2_ends_the_call_unavailable() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the preface and the first call
        # a header block for stream 1 that names entry 126 of an empty table: HPACK cannot decode it
        writer.write(b"\x00\x00\x01\x01\x04\x00\x00\x00\x01\xfe")
        await writer.drain()
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = GrpcChannel("127.0.0.1", port)
    try:
        with pytest.raises(GrpcError) as e:
            await _get(channel, PREFIX)
        assert e.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "malformed HTTP/2" in e.value.details()
    finally:
        await channel.close()
        server.close()


async def test_header_blocks_are_read_anew_once_the_servers_table_moves() -> None:
    # a scripted HTTP/2 server whose header blocks come from hpack's own encoder: its second error answer
    # is the same two bytes as the earlier OK trailers (the entries those bytes name changed in between)
    encoder = Encoder()
    trailers = [
        [("grpc-status", "0"), ("grpc-message", "")],
        [("grpc-status", "0"), ("grpc-message", "")],
        [("grpc-status", "5"), ("grpc-message", "not here")],
        [("grpc-status", "5"), ("grpc-message", "not here")],
    ]
    sent: list[bytes] = []
    frame = _frame

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(24)  # the client preface
        writer.write(frame(4, 0, 0, b""))
        while trailers:
            head = await reader.readexactly(9)
            await reader.readexactly(int.from_bytes(head[:3], "big"))  # what the client sent: not needed
            kind, flags, stream = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            if kind == 4 and not flags & 1:
                writer.write(frame(4, 1, 0, b""))
            if kind == 0 and flags & 1:  # a request's DATA, ending its stream
                headers = encoder.encode([(":status", "200"), ("content-type", "application/grpc")])
                end = encoder.encode(trailers.pop(0))
                sent.append(end)
                message = rpc.RangeResponse(count=stream).SerializeToString()
                writer.write(
                    frame(1, 4, stream, headers)
                    + frame(0, 0, stream, b"\x00" + len(message).to_bytes(4, "big") + message)
                    + frame(1, 5, stream, end)
                )
        await reader.read()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    channel = GrpcChannel("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        assert (await _get(channel, PREFIX)).count == 1
        assert (await _get(channel, PREFIX)).count == 3
        for _ in range(2):
            with pytest.raises(GrpcError) as e:
                await _get(channel, PREFIX)
            assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND, "not here")
        assert sent[3] == sent[1]  # the same bytes, first OK, then an error
    finally:
        await channel.close()
        server.close()


async def test_a_servers_pings_are_answered_with_the_next_call_or_after_the_delay() -> None:
    # a scripted server that pings before each answer (as etcd's BDP estimator does) and answers a call only
    # once its earlier ping is answered: with an hour's delay allowed, the second call completes only if the
    # answer rides on that call's own write; the last ping, with no call after it, is answered by the timer
    answered: list[list[bytes]] = []  # each connection's PING answers
    third: asyncio.Event = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        encoder, acks, calls = Encoder(), [], 0
        answered.append(acks)
        await reader.readexactly(24)  # the client preface
        writer.write(_frame(4, 0, 0, b""))
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed
            while True:
                kind, flags, stream, payload = await _read_frame(reader)
                if kind == 6 and flags & 1:
                    acks.append(payload)
                    if len(acks) == 3:
                        third.set()
                elif kind == 4 and not flags & 1:
                    writer.write(_frame(4, 1, 0, b""))
                elif kind == 0 and flags & 1:  # a request's DATA, ending its stream
                    while len(acks) < calls:
                        kind, flags, _, payload = await _read_frame(reader)
                        if kind == 6 and flags & 1:
                            acks.append(payload)
                    calls += 1
                    message = rpc.RangeResponse(count=calls).SerializeToString()
                    head = encoder.encode([(":status", "200"), ("content-type", "application/grpc")])
                    writer.write(
                        _frame(6, 0, 0, b"ping%04d" % calls)
                        + _frame(1, 4, stream, head)
                        + _frame(0, 0, stream, b"\x00" + len(message).to_bytes(4, "big") + message)
                        + _frame(1, 5, stream, encoder.encode([("grpc-status", "0")]))
                    )
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    riding = GrpcChannel("127.0.0.1", port, ping_ack_delay=3600)
    try:
        assert (await _get(riding, PREFIX)).count == 1
        assert (await _get(riding, PREFIX, timeout=10)).count == 2
    finally:
        await riding.close()
    timed = GrpcChannel("127.0.0.1", port, ping_ack_delay=0.01)
    try:
        for n in (1, 2, 3):
            assert (await _get(timed, PREFIX)).count == n
        await asyncio.wait_for(third.wait(), 10)
    finally:
        await timed.close()
        server.close()
    assert answered == [[b"ping0001"], [b"ping0001", b"ping0002", b"ping0003"]]
