"""SPDY/3.1 framing and the server session (apimachinery/spdy.py), and the kubelet's port-forward
stream handling over it (kubelet/portforward.py) against a real local TCP server."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apimachinery import spdy
from kubelet.portforward import PodTarget, PortForwarder

# The first frames kubectl v1.35.2 sent on a port-forward session (captured from the real binary):
# SYN_STREAM 1 (the error stream), its FIN, SYN_STREAM 3 (the data stream; its header block continues
# the same compression context), then the first DATA of the forwarded connection.
KUBECTL_FRAMES = [
    "800300010000003f0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc6a6264"
    "68064aa09c459078cc04a56f460300000000ffff",
    "0000000101000000",
    "800300010000001c0000000300000000000082eac61445350f543425621807000000ffff",
    "0000000300000010474554202f20485454502f312e310d0a",
]


def test_dictionary_is_spdy3s() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2  # the DICTID in every SPDY/3 header stream
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_decodes_what_kubectl_sends() -> None:
    framer = spdy.Framer()
    frames = [f for hexed in KUBECTL_FRAMES for f in framer.feed(bytes.fromhex(hexed))]
    assert frames == [
        spdy.SynStream(1, {"streamtype": "error", "port": "42161", "requestid": "0"}),
        spdy.Data(1, b"", fin=True),
        spdy.SynStream(3, {"requestid": "0", "streamtype": "data", "port": "42161"}),
        spdy.Data(3, b"GET / HTTP/1.1\r\n"),
    ]


def test_our_header_blocks_are_zlib_with_the_dictionary() -> None:
    encoded = spdy.Framer().encode(spdy.SynReply(1, {"x": "y"}))
    block = encoded[12:]
    assert block[:2] == b"\x78\xf9" and block[2:6] == bytes.fromhex("e3c6a7c2")  # zlib, FDICT, DICTID
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert inflate.decompress(block) == b"\x00\x00\x00\x01\x00\x00\x00\x01x\x00\x00\x00\x01y"
    assert block.endswith(b"\x00\x00\xff\xff")  # each block ends with a sync flush


EVERY_FRAME: list[spdy.Frame] = [
    spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}),
    spdy.SynStream(3, {"a": "1\x002"}, associated_id=1, priority=7, fin=True, unidirectional=True),
    spdy.SynReply(1, {}),
    spdy.SynReply(3, {"status": "200"}, fin=True),
    spdy.RstStream(3, spdy.CANCEL),
    spdy.Settings(((0, 4, 100), (1, 7, 65536))),
    spdy.Settings((), clear=True),
    spdy.Ping(1),
    spdy.GoAway(5, spdy.GOAWAY_PROTOCOL_ERROR),
    spdy.Headers(1, {"k": "v"}),
    spdy.Headers(1, {}, fin=True),
    spdy.WindowUpdate(1, 65536),
    spdy.Data(1, b"hello"),
    spdy.Data(1, b"", fin=True),
    spdy.Data(3, bytes(range(256)) * 200),
]


def test_every_frame_type_round_trips_in_any_split() -> None:
    sender = spdy.Framer()
    wire = b"".join(sender.encode(f) for f in EVERY_FRAME)
    whole = spdy.Framer().feed(wire)
    assert whole == EVERY_FRAME
    receiver, split = spdy.Framer(), []
    for i in range(0, len(wire), 5):  # in 5-byte pieces: frames wait for the rest of their bytes
        split += receiver.feed(wire[i : i + 5])
    assert split == EVERY_FRAME


def test_unknown_control_frames_are_skipped() -> None:
    unknown = bytes.fromhex("8003000a00000004") + b"abcd"
    assert spdy.Framer().feed(unknown + spdy.Framer().encode(spdy.Ping(3))) == [spdy.Ping(3)]


def _with_block(block: bytes) -> bytes:
    body = b"\x00\x00\x00\x01" + block
    return bytes.fromhex("80030002") + len(body).to_bytes(4, "big") + body


def _compressed(raw: bytes) -> bytes:
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    return deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (bytes.fromhex("8002000600000004") + b"\x00\x00\x00\x01", "unsupported SPDY version 2"),
        (bytes.fromhex("0000000000000000"), "stream id zero"),
        (bytes.fromhex("8003000600000005") + b"\x00" * 5, "PING frame must carry 4 bytes"),
        (bytes.fromhex("8003000300000008") + b"\x00\x00\x00\x01\x00\x00\x00\x00", "invalid RST_STREAM"),
        (bytes.fromhex("8003000400000008") + b"\x00\x00\x00\x02\x00\x00\x00\x00", "SETTINGS frame length"),
        (_with_block(b"not zlib at all"), "does not decompress"),
        (_with_block(_compressed(b"\x00\x00\x00\x01\x00\x00\x00\x01A\x00\x00\x00\x00")), "not lowercased"),
        (_with_block(_compressed(b"\x00\x00\x00\x02\x00\x00\x00\x01a")), "truncated"),
        (_with_block(_compressed(b"\x00" * 300_000)), "larger than"),
    ],
)
def test_bad_bytes_are_protocol_errors(wire: bytes, why: str) -> None:
    with pytest.raises(spdy.SpdyError, match=why):
        spdy.Framer().feed(wire)


def test_a_frame_larger_than_the_bound_is_refused_before_it_is_buffered() -> None:
    with pytest.raises(spdy.SpdyError, match="larger than the 1024 bytes allowed"):
        spdy.Framer(max_buffer=1024).feed(bytes.fromhex("0000000100100000"))


class Peer:
    """The client end of an in-memory transport: it speaks frames, the session under test reads bytes."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.from_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.framer = spdy.Framer()
        self.pending: list[spdy.Frame] = []

    async def read(self) -> bytes | None:
        return await self.to_server.get()

    async def write(self, data: bytes) -> None:
        await self.from_server.put(data)

    def send(self, *frames: spdy.Frame) -> None:
        for frame in frames:
            self.to_server.put_nowait(self.framer.encode(frame))

    async def next(self, timeout: float = 5) -> spdy.Frame:
        while not self.pending:
            self.pending += self.framer.feed(await asyncio.wait_for(self.from_server.get(), timeout))
        return self.pending.pop(0)

    async def until(self, wanted: Callable[[spdy.Frame], bool], timeout: float = 5) -> list[spdy.Frame]:
        """Frames up to and including the first one `wanted` says yes to."""
        seen = []
        while True:
            seen.append(await self.next(timeout))
            if wanted(seen[-1]):
                return seen

    def nothing_sent(self) -> bool:
        return not self.pending and self.from_server.empty()


Handler = Callable[[spdy.Stream], Awaitable[None]]


async def _serving(peer: Peer, handler: Handler, **kwargs: int) -> tuple[spdy.Session, asyncio.Task[None]]:
    session = spdy.Session(peer.read, peer.write, **kwargs)
    return session, asyncio.create_task(session.serve(handler))


async def test_session_echoes_client_pings_only() -> None:
    peer = Peer()

    async def ignore(_stream: spdy.Stream) -> None:
        pass

    _session, task = await _serving(peer, ignore)
    peer.send(spdy.Ping(2), spdy.Ping(7))
    assert await peer.next() == spdy.Ping(7)  # the even (server-started) one is not echoed
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


async def test_session_streams_reply_read_write_close() -> None:
    peer = Peer()
    got: list[bytes] = []

    async def echo(stream: spdy.Stream) -> None:
        await stream.reply()
        while chunk := await stream.read():
            got.append(chunk)
            await stream.write(chunk.upper())
        await stream.close()

    _session, task = await _serving(peer, echo)
    peer.send(spdy.SynStream(1, {"x": "1"}), spdy.Data(1, b"ab"), spdy.Data(1, b"cd", fin=True))
    assert await peer.until(lambda f: isinstance(f, spdy.Data) and f.fin) == [
        spdy.SynReply(1, {}),
        spdy.Data(1, b"AB"),
        spdy.Data(1, b"CD"),
        spdy.Data(1, b"", fin=True),
    ]
    assert got == [b"ab", b"cd"]
    peer.send(spdy.GoAway(1))
    await asyncio.wait_for(task, 5)


async def test_session_refuses_stream_ids_that_do_not_increase_and_reports_garbage() -> None:
    peer = Peer()
    opened: list[int] = []

    async def note(stream: spdy.Stream) -> None:
        opened.append(stream.id)
        await stream.reply()

    _session, task = await _serving(peer, note)
    peer.send(spdy.SynStream(5), spdy.SynStream(3), spdy.SynStream(4))
    frames = [await peer.next() for _ in range(3)]  # the reply comes from the handler's task: any order
    assert sorted(frames, key=repr) == [
        spdy.RstStream(3, spdy.PROTOCOL_ERROR),
        spdy.RstStream(4, spdy.PROTOCOL_ERROR),
        spdy.SynReply(5, {}),
    ]
    assert opened == [5]
    peer.to_server.put_nowait(bytes.fromhex("8002000600000004") + b"\x00\x00\x00\x01")
    assert await peer.next() == spdy.GoAway(5, spdy.GOAWAY_PROTOCOL_ERROR)
    await asyncio.wait_for(task, 5)  # the session ends on a protocol error


async def test_a_stream_reset_by_the_peer_reads_as_ended() -> None:
    peer = Peer()
    ended = asyncio.Event()
    streams: list[spdy.Stream] = []

    async def wait_end(stream: spdy.Stream) -> None:
        streams.append(stream)
        await stream.reply()
        assert await stream.read() == b""
        ended.set()

    _session, task = await _serving(peer, wait_end)
    peer.send(spdy.SynStream(1))
    assert await peer.next() == spdy.SynReply(1, {})
    peer.send(spdy.RstStream(1, spdy.CANCEL))
    await asyncio.wait_for(ended.wait(), 5)
    assert streams[0].reset_by_peer
    await streams[0].write(b"dropped")  # nothing goes out on a reset stream
    peer.send(spdy.Ping(9))
    assert await peer.next() == spdy.Ping(9)
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


async def test_a_slow_reader_holds_the_connection_back_and_a_discarding_one_does_not() -> None:
    peer = Peer()
    streams: dict[int, spdy.Stream] = {}

    async def keep(stream: spdy.Stream) -> None:
        streams[stream.id] = stream
        await stream.reply()

    _session, task = await _serving(peer, keep, stream_buffer=2)
    peer.send(spdy.SynStream(1), *(spdy.Data(1, b"x") for _ in range(3)), spdy.Ping(1))
    await peer.next()  # the reply
    with pytest.raises(TimeoutError):  # the third chunk waits for room: the ping behind it is not read
        await peer.next(timeout=0.3)
    assert await streams[1].read() == b"x"
    assert await peer.next() == spdy.Ping(1)
    streams[1].discard()  # nobody reads it any more: what comes is dropped
    peer.send(*(spdy.Data(1, b"y") for _ in range(5)), spdy.Ping(3))
    assert await peer.next() == spdy.Ping(3)
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


@pytest.fixture
async def pod_port() -> AsyncIterator[int]:
    """A TCP server that answers each line with it upper-cased, then closes after "bye"."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
            if line.strip() == b"bye":
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def _pair(first: int, port: int | str, request_id: str | None = "0") -> list[spdy.SynStream]:
    rid = {"requestid": request_id} if request_id is not None else {}
    return [
        spdy.SynStream(first, {"streamtype": "error", "port": str(port), **rid}),
        spdy.SynStream(first + 2, {"streamtype": "data", "port": str(port), **rid}),
    ]


async def test_port_forward_pairs_streams_and_forwards_both_ways(pod_port: int) -> None:
    peer = Peer()
    forwarder = PortForwarder("ns/web", PodTarget("127.0.0.1", "u1"))
    _session, task = await _serving(peer, forwarder.on_stream)
    peer.send(*_pair(1, pod_port), spdy.Data(1, b"", fin=True))
    peer.send(*_pair(5, pod_port, request_id=None))  # an old client: paired by stream ids
    peer.send(spdy.Data(3, b"hello\n"), spdy.Data(7, b"other\n"))
    answers = {spdy.Data(3, b"HELLO\n"), spdy.Data(7, b"OTHER\n")}
    seen: set[spdy.Frame] = set()
    await peer.until(lambda f: (isinstance(f, spdy.Data) and seen.add(f)) or answers <= seen)  # in either order
    peer.send(spdy.Data(3, b"bye\n"))  # the pod closes: both streams of the pair are closed, no error
    frames = await peer.until(lambda f: f == spdy.Data(1, b"", fin=True))
    assert spdy.Data(3, b"", fin=True) in frames
    assert not any(isinstance(f, spdy.Data) and f.stream_id == 1 and f.data for f in frames)
    peer.send(spdy.Data(7, b"bye\n"))
    await peer.until(lambda f: f == spdy.Data(5, b"", fin=True))
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


async def test_port_forward_reports_a_refused_port_on_the_error_stream(pod_port: int) -> None:
    peer = Peer()
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    closed = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    _session, task = await _serving(peer, PortForwarder("ns/web", PodTarget("127.0.0.1", "u1")).on_stream)
    peer.send(*_pair(1, closed))
    frames = await peer.until(lambda f: f == spdy.Data(1, b"", fin=True))
    message = b"".join(f.data for f in frames if isinstance(f, spdy.Data) and f.stream_id == 1)
    assert message.decode() == (
        f"error forwarding port {closed} to pod ns/web, uid u1: "
        f"dial tcp 127.0.0.1:{closed}: connect: connection refused"
    )
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"streamtype": "data"}, spdy.REFUSED_STREAM),  # no port
        ({"streamtype": "data", "port": "0"}, spdy.REFUSED_STREAM),
        ({"streamtype": "data", "port": "http"}, spdy.REFUSED_STREAM),
        ({"port": "80"}, spdy.REFUSED_STREAM),  # no streamType
        ({"streamtype": "video", "port": "80"}, spdy.REFUSED_STREAM),
    ],
)
async def test_port_forward_rejects_streams_without_a_port_or_type(headers: dict[str, str], status: int) -> None:
    peer = Peer()
    _session, task = await _serving(peer, PortForwarder("ns/web", PodTarget("127.0.0.1", "u")).on_stream)
    peer.send(spdy.SynStream(1, headers))
    assert await peer.next() == spdy.RstStream(1, status)
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


async def test_port_forward_gives_up_on_a_pair_that_never_completes() -> None:
    peer = Peer()
    forwarder = PortForwarder("ns/web", PodTarget("127.0.0.1", "u"), stream_creation_timeout=0.2)
    _session, task = await _serving(peer, forwarder.on_stream)
    peer.send(_pair(1, 80, request_id="7")[0])
    frames = await peer.until(lambda f: f == spdy.Data(1, b"", fin=True))
    assert spdy.Data(1, b"(conn=tunnel, request=7) timed out waiting for streams") in frames
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)


async def test_port_forward_refuses_a_second_stream_of_the_same_kind() -> None:
    peer = Peer()
    forwarder = PortForwarder("ns/web", PodTarget("127.0.0.1", "u"), stream_creation_timeout=0.5)
    _session, task = await _serving(peer, forwarder.on_stream)
    error = _pair(1, 80, request_id="3")[0]
    peer.send(error, spdy.SynStream(3, error.headers))
    frames = await peer.until(lambda f: isinstance(f, spdy.RstStream))
    assert frames[-1] == spdy.RstStream(3, spdy.CANCEL)
    assert spdy.Data(1, b"error processing stream for request 3: error stream already assigned") in frames
    peer.to_server.put_nowait(None)
    await asyncio.wait_for(task, 5)
