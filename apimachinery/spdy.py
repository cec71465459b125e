"""SPDY/3.1 as Kubernetes streams use it (moby/spdystream under apimachinery's httpstream/spdy).

`Framer` turns frames into bytes and bytes into frames: control frames SYN_STREAM, SYN_REPLY,
RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE and DATA frames; header blocks are
zlib-compressed with SPDY/3's fixed dictionary, one compression context per direction for the whole
connection, each block ended by a sync flush (as Go's framer writes them).

`Session` is the server side of one connection over any byte transport (a WebSocket carrying the
bytes in binary messages, as kubectl tunnels SPDY since 1.30): it answers PINGs, hands each stream
the peer opens to a handler, and gives streams async read/write/close/reset. As spdystream, it keeps
no flow-control windows (WINDOW_UPDATE and SETTINGS are read and ignored); a stream's receive
buffer is bounded, and a full buffer stops reading the transport until the stream's reader catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = [
    "DICTIONARY",
    "Data",
    "Frame",
    "Framer",
    "GoAway",
    "Headers",
    "Ping",
    "RstStream",
    "Session",
    "Settings",
    "SpdyError",
    "Stream",
    "SynReply",
    "SynStream",
    "WindowUpdate",
]

log = logging.getLogger("spdy")

VERSION = 3
TYPE_SYN_STREAM, TYPE_SYN_REPLY, TYPE_RST_STREAM, TYPE_SETTINGS = 1, 2, 3, 4
TYPE_PING, TYPE_GOAWAY, TYPE_HEADERS, TYPE_WINDOW_UPDATE = 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL = 1, 2, 3, 4, 5
INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 6, 7, 8, 9
# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2
MAX_LENGTH = (1 << 24) - 1
MAX_HEADER_BLOCK = 256 * 1024  # decompressed; a larger block is a protocol error
DATA_CHUNK = 32 * 1024

# SPDY/3's header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): length-prefixed
# words, then a raw tail. 1423 bytes, adler32 0xe3c6a7c2 (the DICTID of every header stream).
_SINGLE_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges "
    "age allow authorization cache-control connection content-base content-encoding content-language "
    "content-length content-location content-md5 content-range content-type date etag expect expires from "
    "host if-match if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after server te trailer "
    "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status"
)
_WORDS = [*_SINGLE_WORDS.split(), "200 OK", "version", "HTTP/1.1", "url"]
_WORDS += ["public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(Exception):
    """Bytes that are not valid SPDY/3 (the connection cannot continue)."""


HeaderMap = dict[str, str]  # lower-case name → value (several values joined by NUL, as on the wire)


@dataclass(frozen=True)
class SynStream:
    """Opens a stream."""

    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    associated_id: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    """Accepts a stream the peer opened."""

    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    """Ends a stream abnormally."""

    stream_id: int
    status: int = CANCEL


@dataclass(frozen=True)
class Settings:
    """Connection settings: (flags, id, value) triples."""

    entries: tuple[tuple[int, int, int], ...] = ()
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    """Liveness probe; the receiver echoes a ping the other side started."""

    id: int


@dataclass(frozen=True)
class GoAway:
    """The sender opens no more streams and accepts none after `last_good_stream_id`."""

    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True)
class Headers:
    """More headers for an open stream."""

    stream_id: int
    headers: HeaderMap = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class WindowUpdate:
    """Flow-control credit for a stream."""

    stream_id: int
    delta: int


@dataclass(frozen=True)
class Data:
    """Bytes of a stream; `fin` half-closes it."""

    stream_id: int
    data: bytes = b""
    fin: bool = False


Frame = SynStream | SynReply | RstStream | Settings | Ping | GoAway | Headers | WindowUpdate | Data


def _encode_block(headers: HeaderMap) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def _decode_block(block: bytes) -> HeaderMap:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos, headers = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4 : pos + 4 + n]
            pos += 4 + n
            (v,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4 : pos + 4 + v]
            pos += 4 + v
            if len(name) != n or len(value) != v:
                raise SpdyError("header block is truncated")
            key = name.decode("utf-8", "replace")
            if key != key.lower():
                raise SpdyError(f"header was not lowercased: {key!r}")
            if key in headers:
                raise SpdyError(f"multiple headers with same name: {key!r}")
            headers[key] = value.decode("utf-8", "replace")
    except struct.error:
        raise SpdyError("header block is truncated") from None
    if pos != len(block):
        raise SpdyError("header block has trailing bytes")
    return headers


class Framer:
    """Encodes and decodes the frames of one connection (it owns both header compression contexts)."""

    def __init__(self, max_buffer: int = 1 << 20) -> None:
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._inflate = zlib.decompressobj(15, DICTIONARY)
        self._buffer = bytearray()
        self._max_buffer = max_buffer

    def _compress(self, headers: HeaderMap) -> bytes:
        return self._deflate.compress(_encode_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _decompress(self, data: bytes) -> HeaderMap:
        try:
            block = self._inflate.decompress(data, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise SpdyError(f"header block does not decompress: {e}") from None
        if self._inflate.unconsumed_tail:
            raise SpdyError(f"header block is larger than {MAX_HEADER_BLOCK} bytes")
        return _decode_block(block)

    def encode(self, frame: Frame) -> bytes:
        """The bytes of one frame (header blocks go through this connection's compressor)."""
        if isinstance(frame, Data):
            if len(frame.data) > MAX_LENGTH:
                raise ValueError("a DATA frame carries at most 16 MiB - 1")
            flags = FLAG_FIN if frame.fin else 0
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF, flags << 24 | len(frame.data)) + frame.data
        flags = 0
        match frame:
            case SynStream():
                kind = TYPE_SYN_STREAM
                flags = (FLAG_FIN if frame.fin else 0) | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
                body = struct.pack(">IIBB", frame.stream_id, frame.associated_id, (frame.priority & 7) << 5, 0)
                body += self._compress(frame.headers)
            case SynReply():
                kind, flags = TYPE_SYN_REPLY, FLAG_FIN if frame.fin else 0
                body = struct.pack(">I", frame.stream_id) + self._compress(frame.headers)
            case RstStream():
                kind, body = TYPE_RST_STREAM, struct.pack(">II", frame.stream_id, frame.status)
            case Settings():
                kind, flags = TYPE_SETTINGS, 1 if frame.clear else 0
                body = struct.pack(">I", len(frame.entries))
                body += b"".join(struct.pack(">II", f << 24 | i, v) for f, i, v in frame.entries)
            case Ping():
                kind, body = TYPE_PING, struct.pack(">I", frame.id)
            case GoAway():
                kind, body = TYPE_GOAWAY, struct.pack(">II", frame.last_good_stream_id, frame.status)
            case Headers():
                kind, flags = TYPE_HEADERS, FLAG_FIN if frame.fin else 0
                body = struct.pack(">I", frame.stream_id) + self._compress(frame.headers)
            case WindowUpdate():
                kind, body = TYPE_WINDOW_UPDATE, struct.pack(">II", frame.stream_id, frame.delta)
        return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(body)) + body

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data` (what is left of a frame waits for more bytes)."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            word, flags_length = struct.unpack_from(">II", self._buffer, 0)
            length = flags_length & 0xFFFFFF
            if length > self._max_buffer:
                raise SpdyError(f"frame of {length} bytes is larger than the {self._max_buffer} bytes allowed")
            if len(self._buffer) < 8 + length:
                break
            body = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = flags_length >> 24
            if word & 0x80000000:
                frame = self._control((word >> 16) & 0x7FFF, word & 0xFFFF, flags, body)
                if frame is not None:
                    frames.append(frame)
            else:
                stream_id = word & 0x7FFFFFFF
                if stream_id == 0:
                    raise SpdyError("stream id zero is disallowed")
                frames.append(Data(stream_id, body, bool(flags & FLAG_FIN)))
        return frames

    def _control(self, version: int, kind: int, flags: int, body: bytes) -> Frame | None:
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        fixed = {TYPE_SYN_STREAM: 10, TYPE_SYN_REPLY: 4, TYPE_HEADERS: 4}
        if kind in fixed and len(body) < fixed[kind]:
            raise SpdyError(f"control frame {kind} is too short")
        if kind in (TYPE_RST_STREAM, TYPE_GOAWAY, TYPE_WINDOW_UPDATE) and len(body) != 8:
            raise SpdyError(f"control frame {kind} must carry 8 bytes")
        fin = bool(flags & FLAG_FIN)
        if kind == TYPE_SYN_STREAM:
            sid, assoc, prio, _slot = struct.unpack_from(">IIBB", body, 0)
            sid &= 0x7FFFFFFF
            if sid == 0:
                raise SpdyError("stream id zero is disallowed")
            headers = self._decompress(body[10:])
            return SynStream(sid, headers, assoc & 0x7FFFFFFF, prio >> 5, fin, bool(flags & FLAG_UNIDIRECTIONAL))
        if kind in (TYPE_SYN_REPLY, TYPE_HEADERS):
            sid = struct.unpack_from(">I", body, 0)[0] & 0x7FFFFFFF
            if sid == 0:
                raise SpdyError("stream id zero is disallowed")
            cls = SynReply if kind == TYPE_SYN_REPLY else Headers
            return cls(sid, self._decompress(body[4:]), fin)
        if kind == TYPE_RST_STREAM:
            sid, status = struct.unpack(">II", body)
            if sid & 0x7FFFFFFF == 0 or status == 0:
                raise SpdyError("invalid RST_STREAM frame")
            return RstStream(sid & 0x7FFFFFFF, status)
        if kind == TYPE_SETTINGS:
            if len(body) < 4:
                raise SpdyError("SETTINGS frame is too short")
            (count,) = struct.unpack_from(">I", body, 0)
            if len(body) != 4 + 8 * count:
                raise SpdyError("SETTINGS frame length does not match its entries")
            entries = tuple(
                (word >> 24, word & 0xFFFFFF, value)
                for word, value in (struct.unpack_from(">II", body, 4 + 8 * i) for i in range(count))
            )
            return Settings(entries, bool(flags & 1))
        if kind == TYPE_PING:
            if len(body) != 4:
                raise SpdyError("PING frame must carry 4 bytes")
            return Ping(struct.unpack(">I", body)[0])
        if kind == TYPE_GOAWAY:
            last, status = struct.unpack(">II", body)
            return GoAway(last & 0x7FFFFFFF, status)
        if kind == TYPE_WINDOW_UPDATE:
            sid, delta = struct.unpack(">II", body)
            return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        return None  # unknown control frames are ignored (SPDY/3 §2.2.1)


Read = Callable[[], Awaitable[bytes | None]]  # None: the transport is closed
Write = Callable[[bytes], Awaitable[None]]


class Stream:
    """One stream the peer opened: its headers, what it sent, and a way to answer."""

    def __init__(self, session: Session, stream_id: int, headers: HeaderMap, buffered: int) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()  # bounded by _deliver, not by the queue
        self._limit = max(1, buffered)
        self._drained = asyncio.Event()
        self._eof = False
        self._discarding = False
        self.remote_closed = False  # the peer sent FIN or RST (or the connection ended)
        self.local_closed = False  # we sent FIN or RST
        self.reset_by_peer = False
        self.replied = False

    def header(self, name: str) -> str:
        """The first value of a header ("" when absent)."""
        return self.headers.get(name.lower(), "").split("\0", 1)[0]

    async def read(self) -> bytes:
        """The next bytes the peer sent; b"" once it closed its side (FIN, RST or the connection ended)."""
        if self._eof:
            return b""
        chunk = await self._chunks.get()
        self._drained.set()
        if chunk is None:
            self._eof = True
            return b""
        return chunk

    async def reply(self) -> None:
        """Accept the stream (SYN_REPLY with no headers)."""
        if not self.replied:
            self.replied = True
            await self.session.send(SynReply(self.id))

    async def write(self, data: bytes) -> None:
        """Send bytes (DATA frames of at most 32 KiB); nothing once this side is closed or reset."""
        for start in range(0, len(data), DATA_CHUNK):
            if self.local_closed or self.reset_by_peer:
                return
            await self.session.send(Data(self.id, data[start : start + DATA_CHUNK]))

    async def close(self) -> None:
        """Half-close: an empty DATA frame with FIN."""
        if not (self.local_closed or self.reset_by_peer):
            self.local_closed = True
            await self.session.send(Data(self.id, b"", fin=True))
        self.session._forget_if_done(self)

    async def reset(self, status: int = CANCEL) -> None:
        """End the stream both ways at once (RST_STREAM); what the peer still sends is dropped."""
        if not self.reset_by_peer and not (self.local_closed and self.remote_closed):
            await self.session.send(RstStream(self.id, status))
        self.local_closed = True
        self.discard()
        self._end()
        self.session._forget(self)

    def discard(self) -> None:
        """Drop what the peer sends from now on (nobody will read it), so it never holds up the connection."""
        self._discarding = True
        self._drained.set()

    async def _deliver(self, data: bytes, fin: bool) -> None:
        if self.remote_closed:
            return
        if data and not self._discarding:
            while self._chunks.qsize() >= self._limit and not self._discarding:
                self._drained.clear()
                await self._drained.wait()
            if not self._discarding:
                self._chunks.put_nowait(data)
        if fin:
            self._end()

    def _end(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._chunks.put_nowait(None)


StreamHandler = Callable[[Stream], Awaitable[None]]


class Session:
    """The server side of one SPDY/3.1 connection over a byte transport."""

    def __init__(self, read: Read, write: Write, *, stream_buffer: int = 16, max_streams: int = 1000) -> None:
        self._read = read
        self._write = write
        self._framer = Framer()
        self._lock = asyncio.Lock()
        self._streams: dict[int, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stream_buffer = stream_buffer
        self._max_streams = max_streams
        self._last_id = 0
        self.closed = asyncio.Event()

    async def send(self, frame: Frame) -> None:
        """Write one frame (frames never interleave; header compression follows the write order)."""
        async with self._lock:
            if self.closed.is_set():
                return
            await self._write(self._framer.encode(frame))

    async def serve(self, handler: StreamHandler) -> None:
        """Read frames until the transport ends or the peer goes away; run `handler` for every new stream."""
        try:
            while True:
                data = await self._read()
                if data is None:
                    return
                try:
                    frames = self._framer.feed(data)
                except SpdyError as e:
                    log.info("closing SPDY connection: %s", e)
                    with contextlib.suppress(Exception):
                        await self.send(GoAway(self._last_id, GOAWAY_PROTOCOL_ERROR))
                    return
                for frame in frames:
                    if not await self._handle(frame, handler):
                        return
        finally:
            self.closed.set()
            for stream in list(self._streams.values()):
                stream._end()
            self._streams.clear()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _handle(self, frame: Frame, handler: StreamHandler) -> bool:
        match frame:
            case SynStream():
                await self._open(frame, handler)
            case Data():
                stream = self._streams.get(frame.stream_id)
                if stream is not None:
                    await stream._deliver(frame.data, frame.fin)
                    self._forget_if_done(stream)
            case RstStream():
                stream = self._streams.pop(frame.stream_id, None)
                if stream is not None:
                    stream.reset_by_peer = True
                    stream._end()
            case Headers(fin=True):
                stream = self._streams.get(frame.stream_id)
                if stream is not None:
                    await stream._deliver(b"", True)
            case Ping():
                if frame.id % 2 == 1:  # the client's ping (ours would be even): echo it
                    await self.send(frame)
            case GoAway():
                return False
        return True

    async def _open(self, frame: SynStream, handler: StreamHandler) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid <= self._last_id:
            await self.send(RstStream(sid, PROTOCOL_ERROR))
            return
        self._last_id = sid
        if len(self._streams) >= self._max_streams:
            await self.send(RstStream(sid, REFUSED_STREAM))
            return
        stream = Stream(self, sid, frame.headers, self._stream_buffer)
        self._streams[sid] = stream
        if frame.fin:
            stream._end()
        task = asyncio.create_task(self._run(handler, stream), name=f"spdy-stream-{sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, handler: StreamHandler, stream: Stream) -> None:
        try:
            await handler(stream)
        except Exception:
            log.exception("SPDY stream %d handler failed", stream.id)
            with contextlib.suppress(Exception):
                await stream.reset(INTERNAL_ERROR)

    def _forget(self, stream: Stream) -> None:
        self._streams.pop(stream.id, None)

    def _forget_if_done(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._forget(stream)
