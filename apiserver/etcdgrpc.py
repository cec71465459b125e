"""A lean gRPC client over HTTP/2 for the apiserver's hot etcd calls (Range, Txn, Watch).

grpc.aio spends ~100-300 µs of CPU per unary call here, most of it in its C core's threads and the hand-offs
between them and the event loop; grpclib, on the pure-Python h2, spends more still (`bench/etcd_calls.py`).
This client speaks the part of HTTP/2 (RFC 9113) a gRPC client needs, on one asyncio Protocol per
connection: client-opened streams, flow control both ways, SETTINGS, PING (answered with the next write,
and sent as gRPC's keepalive while streams are open), GOAWAY and RST_STREAM. It sends its header blocks as
HPACK literals that never touch the server's table, and decodes the server's with `hpack`.

A unary call is one write (HEADERS and DATA frames) and one future; a stream's messages are read from a
buffer the protocol fills. A stream's receive window is given back as data arrives while less than a window
of whole messages waits unread, and held back beyond that until the reader takes them: a reader that falls
behind holds etcd back (etcd then sends its events in larger batches) instead of buffering without bound,
and a message larger than the window still comes in whole.
"""

from __future__ import annotations

import asyncio
import collections
import math
import ssl
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import grpc
from hpack import Decoder, HPACKError

__all__ = ["STREAM_WINDOW", "GrpcChannel", "GrpcError", "GrpcStream"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME = struct.Struct(">HBBBI")  # 24-bit length (as 16 + 8 bits), type, flags, stream id
_U32 = struct.Struct(">I")
_SETTING = struct.Struct(">HI")
_GOAWAY = struct.Struct(">II")

_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _GOAWAY_FRAME, _WINDOW_UPDATE = range(9)
_CONTINUATION = 9
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
_SETTINGS_ENABLE_PUSH, _SETTINGS_INITIAL_WINDOW, _SETTINGS_MAX_FRAME = 0x2, 0x4, 0x5
_CANCEL = 0x8

_MAX_STREAM_ID = (1 << 31) - 1
_MAX_WINDOW = (1 << 31) - 1
# A stream's receive window: what one stream may have buffered and unread (a watch that lags holds etcd back)
STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 1 << 24
_DEFAULT_MAX_FRAME = 16_384
_DEADLINE_SLACK = 0.001  # a deadline this close is due: the loop may run its timer that much early
_HEADER_CACHE = 64  # decoded header blocks kept (etcd's answers use a handful)

_STATUS = {code.value[0]: code for code in grpc.StatusCode}
# gRPC's mapping of an HTTP status that is not 200 (doc/http-grpc-status-mapping.md)
_HTTP_STATUS = {
    400: grpc.StatusCode.INTERNAL,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.UNAVAILABLE,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}
_RST_STATUS = {
    0x7: grpc.StatusCode.UNAVAILABLE,  # REFUSED_STREAM: not processed, safe to retry
    0x8: grpc.StatusCode.CANCELLED,
    0xB: grpc.StatusCode.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: grpc.StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}


class GrpcError(Exception):
    """A call that ended without an answer: its gRPC status code and message (as grpc.aio's AioRpcError)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self._code = code
        self._message = message

    def code(self) -> grpc.StatusCode:
        """The status code."""
        return self._code

    def details(self) -> str:
        """The status message."""
        return self._message


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _FRAME.pack(n >> 8, n & 0xFF, kind, flags, stream_id) + payload


def _hpack_int(n: int) -> bytes:
    """An HPACK integer with a 7-bit prefix (RFC 7541 5.1), the prefix's other bit 0 (no Huffman)."""
    if n < 127:
        return bytes((n,))
    out = bytearray((127,))
    n -= 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """A header as a literal without indexing, new name (RFC 7541 6.2.2): the server's table is untouched,
    so one encoded block can be sent again and again."""
    return b"\x00" + _hpack_int(len(name)) + name + _hpack_int(len(value)) + value


def _timeout_header(seconds: float) -> bytes:
    """gRPC's grpc-timeout value: at most 8 digits and a unit."""
    millis = max(1, int(seconds * 1000))
    return b"%dm" % millis if millis < 100_000_000 else b"%dS" % min(int(seconds), 99_999_999)


def _message(payload: bytes) -> bytes:
    """One length-prefixed gRPC message, uncompressed."""
    return b"\x00" + _U32.pack(len(payload)) + payload


class _Stream:
    """One HTTP/2 stream of a call: what was received, the windows, and how it ends."""

    __slots__ = (
        "data",
        "deadline",
        "done",
        "ended",
        "error",
        "headers_seen",
        "id",
        "messages",
        "owed",
        "parse",
        "pending",
        "pending_end",
        "queued",
        "send_window",
        "sent",
        "unacked",
        "waiter",
    )

    def __init__(self, stream_id: int, done: asyncio.Future[Any] | None, parse: Callable[[bytes], Any] | None) -> None:
        self.id = stream_id
        self.done = done  # a unary call's answer; None for a stream
        self.parse = parse
        self.data = bytearray()
        self.messages: collections.deque[bytes] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.headers_seen = False
        self.send_window = 0
        self.pending = b""  # DATA the windows did not let out yet (from `sent` on)
        self.sent = 0
        self.pending_end = False
        self.unacked = 0  # received bytes not yet given back in a WINDOW_UPDATE
        self.queued = 0  # bytes of whole messages not read yet (a stream's)
        self.owed = 0  # received bytes whose window is held back while `queued` is a window or more
        self.error: GrpcError | None = None
        self.ended = False
        self.deadline = 0.0  # a unary call's, on the loop's clock (0: none)


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection to the server: frames in and out, streams by id."""

    def __init__(self, max_message: int, keepalive: float, keepalive_timeout: float, ping_ack_delay: float) -> None:
        self.transport: asyncio.Transport | None = None
        self.keepalive_interval = keepalive
        self.keepalive_timeout = keepalive_timeout
        self.buffer = bytearray()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.usable = True
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.max_message = max_message
        self.decoder = Decoder()
        self.header_cache: dict[bytes, dict[bytes, bytes]] = {}  # never changed once kept: shared by streams
        self.header_block = bytearray()
        self.header_stream = 0
        self.header_flags = 0
        self.send_window = 65_535
        self.initial_send_window = 65_535
        self.max_frame = _DEFAULT_MAX_FRAME
        self.blocked: list[_Stream] = []
        self.received = 0
        self.ping_sent = 0.0
        self.last_read = 0.0
        self.keepalive: asyncio.TimerHandle | None = None
        self.outgoing: list[bytes] = []
        self.ping_ack_delay = ping_ack_delay
        self.acks: list[bytes] = []  # answers to the server's PINGs, sent with the next write
        self.ack_timer: asyncio.TimerHandle | None = None
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.deadline_at = 0.0

    # -- connection ----------------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        """Send the preface, our SETTINGS and a larger connection window; start the keepalive."""
        self.transport = transport
        settings = _SETTING.pack(_SETTINGS_ENABLE_PUSH, 0) + _SETTING.pack(_SETTINGS_INITIAL_WINDOW, STREAM_WINDOW)
        transport.write(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW_UPDATE, 0, 0, _U32.pack(_CONNECTION_WINDOW - 65_535))
        )
        self.last_read = self.loop.time()
        self.keepalive = self.loop.call_later(self.keepalive_interval / 2, self._keepalive)

    def _out(self, data: bytes) -> None:
        """Queue bytes for the socket: what one loop pass queues goes out in one system call (the
        creates of many requests at once share a send, as gRPC's own writer batches its frames)."""
        if not self.outgoing:
            self.loop.call_soon(self._write_out)
        self.outgoing.append(data)

    def _write_out(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        if self.acks:
            outgoing[:0] = self.acks  # PING answers before other frames (RFC 9113 6.7)
            self.acks = []
            if self.ack_timer is not None:
                self.ack_timer.cancel()
                self.ack_timer = None
        if outgoing and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(outgoing)

    def _ack_ping(self, payload: bytes) -> None:
        """Answer a server's PING with the next write, or after `ping_ack_delay` if none comes sooner.

        etcd (gRPC-Go's BDP estimator) pings whenever data arrives while no ping of its own is unanswered:
        answered at once, that is a system call of its own for every call or two. Riding on the next write
        costs none, and etcd pings less often."""
        self.acks.append(_frame(_PING, _ACK, 0, payload))
        if self.ack_timer is None:
            self.ack_timer = self.loop.call_later(self.ping_ack_delay, self._acks_due)

    def _acks_due(self) -> None:
        self.ack_timer = None
        self._write_out()

    def connection_lost(self, exc: Exception | None) -> None:
        """Every open call ends UNAVAILABLE."""
        self.usable = False
        if self.closed.done():  # said already, by _fail
            return
        if self.keepalive is not None:
            self.keepalive.cancel()
        for timer in (self.ack_timer, self.deadline_timer):
            if timer is not None:
                timer.cancel()
        reason = f"connection lost: {exc}" if exc else "connection closed"
        for stream in list(self.streams.values()):
            self._end(stream, GrpcError(grpc.StatusCode.UNAVAILABLE, reason))
        self.streams.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        """Close the connection; its calls end UNAVAILABLE."""
        self.usable = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, reason: str) -> None:
        """A protocol error: drop the connection."""
        self.usable = False
        if self.transport is not None:
            self.transport.abort()
        self.connection_lost(ConnectionError(reason))

    def _keepalive(self) -> None:
        now = self.loop.time()
        if self.ping_sent and now - self.ping_sent > self.keepalive_timeout:
            self._fail("keepalive ping not answered")
            return
        # etcd refuses pings without open streams (PermitWithoutStream false), so ping only with streams
        idle = now - self.last_read >= self.keepalive_interval
        if not self.ping_sent and self.streams and idle and self.transport is not None:
            self.ping_sent = now
            self._out(_frame(_PING, 0, 0, b"keepaliv"))
        self.keepalive = self.loop.call_later(self.keepalive_interval / 2, self._keepalive)

    # -- deadlines -----------------------------------------------------------------------------------

    def expire_at(self, stream: _Stream, when: float) -> None:
        """End a unary call DEADLINE_EXCEEDED at `when` (the loop's clock) unless it ended before.

        One timer per connection, armed at the earliest deadline of its open calls, instead of one per call:
        a timer armed and cancelled per call cost a create about 1 % of its instructions (its handle, the heap's
        Python comparisons). Calls share a timeout, so the timer mostly finds its call done and moves on to the
        next open one's deadline."""
        stream.deadline = when
        if self.deadline_timer is None or when < self.deadline_at:
            self._arm_deadlines(when)

    def _arm_deadlines(self, when: float) -> None:
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
        self.deadline_at = when
        self.deadline_timer = self.loop.call_at(when, self._deadlines_due)

    def _deadlines_due(self) -> None:
        self.deadline_timer = None
        due = self.loop.time() + _DEADLINE_SLACK  # the loop runs a timer up to its clock's resolution early
        following = math.inf
        for stream in list(self.streams.values()):
            deadline = stream.deadline
            if not deadline:
                continue
            if deadline <= due:
                if stream.done is not None and not stream.done.done():
                    self.reset(stream)
                    stream.done.set_exception(GrpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
            elif deadline < following:
                following = deadline
        if following < math.inf and not self.closed.done():
            self._arm_deadlines(following)

    # -- streams out ---------------------------------------------------------------------------------

    def open(self, block: bytes, body: bytes | None, done: asyncio.Future[Any] | None, parse: Any) -> _Stream:
        """Open a stream with its HEADERS; `body` (a whole request message) ends it when given."""
        stream_id = self.next_id
        self.next_id += 2
        if self.next_id > _MAX_STREAM_ID:
            self.usable = False  # ids run out: the channel opens a new connection for the next call
        stream = _Stream(stream_id, done, parse)
        stream.send_window = self.initial_send_window
        self.streams[stream_id] = stream
        n = len(block)
        head = _FRAME.pack(n >> 8, n & 0xFF, _HEADERS, _END_HEADERS, stream_id)
        assert self.transport is not None
        if body is None:
            self._out(head + block)
            return stream
        n = len(body)
        if n <= self.max_frame and n <= self.send_window and n <= stream.send_window:
            self.send_window -= n
            stream.send_window -= n
            self._out(head + block + _FRAME.pack(n >> 8, n & 0xFF, _DATA, _END_STREAM, stream_id) + body)
            return stream
        self._out(head + block)
        self.send(stream, body, end=True)
        return stream

    def send(self, stream: _Stream, data: bytes, *, end: bool = False) -> None:
        """Queue DATA on a stream and write what the windows allow now (the rest on WINDOW_UPDATE)."""
        stream.pending = stream.pending[stream.sent :] + data if stream.sent < len(stream.pending) else data
        stream.sent = 0
        stream.pending_end = end
        if stream not in self.blocked:
            self.blocked.append(stream)
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        out = bytearray()
        still = []
        for stream in self.blocked:
            if stream.id not in self.streams:
                continue
            pending, sent = stream.pending, stream.sent
            while sent < len(pending) and self.send_window > 0 and stream.send_window > 0:
                n = min(len(pending) - sent, self.max_frame, self.send_window, stream.send_window)
                self.send_window -= n
                stream.send_window -= n
                last = sent + n == len(pending) and stream.pending_end
                out += _FRAME.pack(n >> 8, n & 0xFF, _DATA, _END_STREAM if last else 0, stream.id)
                out += pending[sent : sent + n]
                sent += n
            stream.sent = sent
            if sent < len(pending):
                still.append(stream)
            else:
                stream.pending, stream.sent = b"", 0
        self.blocked = still
        if out:
            self._out(bytes(out))

    def reset(self, stream: _Stream) -> None:
        """Cancel a stream (RST_STREAM CANCEL) that has not ended."""
        transport = self.transport
        if self.streams.pop(stream.id, None) is not None and transport is not None and not transport.is_closing():
            self._out(_frame(_RST_STREAM, 0, stream.id, _U32.pack(_CANCEL)))
        self._maybe_close()

    def _maybe_close(self) -> None:
        if not self.usable and not self.streams and self.transport is not None:
            self.transport.close()

    def consumed(self, stream: _Stream, n: int) -> None:
        """n bytes of a stream may be sent again: give them back once they add up to half the window."""
        stream.unacked += n
        if stream.unacked >= STREAM_WINDOW // 2 and stream.id in self.streams and self.transport is not None:
            self._out(_frame(_WINDOW_UPDATE, 0, stream.id, _U32.pack(stream.unacked)))
            stream.unacked = 0

    # -- frames in -----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse every whole frame received."""
        buf = self.buffer
        buf += data
        pos, end = 0, len(buf)
        unpack = _FRAME.unpack_from
        try:
            while end - pos >= 9:
                hi, lo, kind, flags, stream_id = unpack(buf, pos)
                n = (hi << 8) | lo
                if end - pos - 9 < n:
                    break
                payload = buf[pos + 9 : pos + 9 + n]
                pos += 9 + n
                stream_id &= _MAX_STREAM_ID
                if kind == _DATA:
                    self._on_data(stream_id, flags, payload)
                elif kind == _HEADERS or kind == _CONTINUATION:
                    self._on_headers(kind, stream_id, flags, payload)
                else:
                    self._on_control(kind, stream_id, flags, payload)
                if self.closed.done():  # a protocol error dropped the connection
                    return
        except (HPACKError, ValueError, IndexError, struct.error) as e:
            self._fail(f"malformed HTTP/2 from the server: {e}")
            return
        del buf[:pos]
        self.last_read = self.loop.time()

    def _on_data(self, stream_id: int, flags: int, payload: bytes) -> None:
        n = len(payload)
        self.received += n
        if self.received >= _CONNECTION_WINDOW // 2 and self.transport is not None:
            self._out(_frame(_WINDOW_UPDATE, 0, 0, _U32.pack(self.received)))
            self.received = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if flags & _PADDED:
            payload = payload[1 : n - payload[0]]
        stream.data += payload
        if stream.done is None:  # a stream's, not a unary call's
            self._split_messages(stream)
            if stream.queued < STREAM_WINDOW:
                self.consumed(stream, n + stream.owed)
                stream.owed = 0
            else:
                stream.owed += n
        else:
            self.consumed(stream, n)
            if len(stream.data) > 5 and int.from_bytes(stream.data[1:5], "big") > self.max_message:
                self._end_and_reset(stream, grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than allowed")
                return
        if flags & _END_STREAM:
            self._end(stream, GrpcError(grpc.StatusCode.INTERNAL, "the server ended the stream without trailers"))

    def _split_messages(self, stream: _Stream) -> None:
        """Move every whole message of a stream's data to its queue and wake its reader."""
        data = stream.data
        pos = 0
        while len(data) - pos >= 5:
            n = int.from_bytes(data[pos + 1 : pos + 5], "big")
            if n > self.max_message:
                self._end_and_reset(stream, grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than allowed")
                return
            if data[pos]:
                self._end_and_reset(stream, grpc.StatusCode.INTERNAL, "a compressed message was not asked for")
                return
            if len(data) - pos - 5 < n:
                break
            stream.messages.append(bytes(data[pos + 5 : pos + 5 + n]))
            stream.queued += 5 + n
            pos += 5 + n
        if pos:
            del data[:pos]
            _wake(stream)

    def _on_headers(self, kind: int, stream_id: int, flags: int, payload: bytes) -> None:
        if kind == _HEADERS:
            if flags & _PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & _PRIORITY_FLAG:
                payload = payload[5:]
            self.header_stream, self.header_flags = stream_id, flags
            self.header_block = bytearray(payload)
        elif stream_id != self.header_stream:
            raise ValueError("CONTINUATION of another stream")
        else:
            self.header_block += payload
        if not flags & _END_HEADERS:
            return
        # every block is decoded, a stream's or not: the decoder's table follows them all
        headers = self._decode_headers(bytes(self.header_block))
        stream = self.streams.get(self.header_stream)
        if stream is None:
            return
        end = bool(self.header_flags & _END_STREAM)
        if not stream.headers_seen:
            stream.headers_seen = True
            status = headers.get(b":status", b"")
            if status != b"200":
                code = _HTTP_STATUS.get(int(status) if status.isdigit() else 0, grpc.StatusCode.UNKNOWN)
                self._end_and_reset(stream, code, f"HTTP status {status.decode(errors='replace')}", reset=not end)
                return
            if not end:
                return
        elif not end:
            raise ValueError("a second header block that does not end the stream")
        raw = headers.get(b"grpc-status")
        code = _STATUS.get(int(raw), grpc.StatusCode.UNKNOWN) if raw and raw.isdigit() else grpc.StatusCode.UNKNOWN
        message = unquote(headers.get(b"grpc-message", b"").decode(errors="replace"))
        if raw is None:
            message = "the server's trailers have no grpc-status"
        self._end(stream, None if code is grpc.StatusCode.OK else GrpcError(code, message))

    def _decode_headers(self, block: bytes) -> dict[bytes, bytes]:
        """A header block's fields. After the first few answers etcd's blocks are the same few bytes (fields
        its table holds), and hpack's pure-Python decode of one cost ~5 µs: a block that left the table as it
        was is kept with its fields, and any block that changes the table (what kept blocks name may then
        have moved) empties the cache. A block that did not touch the table once never does: whether it
        inserts is in its bytes."""
        headers = self.header_cache.get(block)
        if headers is not None:
            return headers
        table = self.decoder.header_table
        before = (table.maxsize, list(table.dynamic_entries))
        headers = dict(self.decoder.decode(block, raw=True))
        if (table.maxsize, list(table.dynamic_entries)) != before:
            self.header_cache.clear()
        elif len(self.header_cache) < _HEADER_CACHE:
            self.header_cache[block] = headers
        return headers

    def _on_control(self, kind: int, stream_id: int, flags: int, payload: bytes) -> None:
        assert self.transport is not None
        if kind == _SETTINGS:
            if flags & _ACK:
                return
            for i in range(0, len(payload) - len(payload) % 6, 6):
                key, value = _SETTING.unpack_from(payload, i)
                if key == _SETTINGS_INITIAL_WINDOW:
                    delta = value - self.initial_send_window
                    self.initial_send_window = value
                    for stream in self.streams.values():
                        stream.send_window += delta
                elif key == _SETTINGS_MAX_FRAME:
                    self.max_frame = value
            self._out(_frame(_SETTINGS, _ACK, 0))
            self._flush()
        elif kind == _PING:
            if flags & _ACK:
                self.ping_sent = 0.0
            else:
                self._ack_ping(payload)
        elif kind == _WINDOW_UPDATE:
            increment = _U32.unpack(payload)[0] & _MAX_WINDOW
            if stream_id == 0:
                self.send_window += increment
            elif (stream := self.streams.get(stream_id)) is not None:
                stream.send_window += increment
            if self.blocked:
                self._flush()
        elif kind == _RST_STREAM:
            stream = self.streams.get(stream_id)
            if stream is not None:
                error = _U32.unpack(payload)[0]
                code = _RST_STATUS.get(error, grpc.StatusCode.INTERNAL)
                self._end(stream, GrpcError(code, f"stream reset by the server (HTTP/2 error {error})"))
        elif kind == _GOAWAY_FRAME:
            last, error = _GOAWAY.unpack_from(payload)
            self.usable = False
            reason = f"the server is going away (HTTP/2 error {error}): {payload[8:].decode(errors='replace')}"
            for stream in [s for s in self.streams.values() if s.id > last & _MAX_STREAM_ID]:
                self._end(stream, GrpcError(grpc.StatusCode.UNAVAILABLE, reason))
            self._maybe_close()
        elif kind == _PUSH_PROMISE:
            raise ValueError("PUSH_PROMISE though push is off")

    # -- ends ----------------------------------------------------------------------------------------

    def _end(self, stream: _Stream, error: GrpcError | None) -> None:
        """A stream ended (trailers, reset, lost connection): answer its caller or wake its reader."""
        self.streams.pop(stream.id, None)
        if stream in self.blocked:
            self.blocked.remove(stream)
        if stream.done is None:  # a stream's, not a unary call's
            stream.ended = True
            stream.error = error
            _wake(stream)
        elif not stream.done.done():  # type: ignore[union-attr]
            self._answer(stream, error)
        self._maybe_close()

    def _end_and_reset(self, stream: _Stream, code: grpc.StatusCode, message: str, *, reset: bool = True) -> None:
        if reset and self.transport is not None and stream.id in self.streams:
            self._out(_frame(_RST_STREAM, 0, stream.id, _U32.pack(_CANCEL)))
        self._end(stream, GrpcError(code, message))

    def _answer(self, stream: _Stream, error: GrpcError | None) -> None:
        done = stream.done
        assert done is not None
        if error is not None:
            done.set_exception(error)
            return
        data = stream.data
        if len(data) < 5 or data[0] or len(data) != 5 + int.from_bytes(data[1:5], "big"):
            done.set_exception(GrpcError(grpc.StatusCode.INTERNAL, "the answer is not one uncompressed message"))
            return
        try:
            done.set_result(stream.parse(bytes(data[5:])))  # type: ignore[misc]
        except Exception as e:  # protobuf's DecodeError: a broken answer, not a crash
            done.set_exception(GrpcError(grpc.StatusCode.INTERNAL, f"the answer cannot be parsed: {e}"))


def _wake(stream: _Stream) -> None:
    waiter = stream.waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class GrpcStream:
    """A bidirectional streaming call: `send` messages, `read` the server's until it ends."""

    def __init__(self, connection: _Connection, stream: _Stream) -> None:
        self._connection = connection
        self._stream = stream

    def send(self, message: bytes) -> None:
        """Send one serialized message."""
        if not self._stream.ended:
            self._connection.send(self._stream, _message(message))

    async def read(self) -> bytes | None:
        """The next serialized message; None once the server ended the stream with OK; GrpcError otherwise."""
        stream = self._stream
        while not stream.messages:
            if stream.ended:
                if stream.error is not None:
                    raise stream.error
                return None
            stream.waiter = asyncio.get_running_loop().create_future()
            try:
                await stream.waiter
            finally:
                stream.waiter = None
        message = stream.messages.popleft()
        stream.queued -= len(message) + 5
        if stream.owed and stream.queued < STREAM_WINDOW:
            self._connection.consumed(stream, stream.owed)
            stream.owed = 0
        return message

    @property
    def buffered(self) -> int:
        """Bytes received and not read yet: at most two windows, and a message being received."""
        return sum(map(len, self._stream.messages)) + len(self._stream.data)

    def cancel(self) -> None:
        """End the stream from our side (RST_STREAM CANCEL), unless it ended."""
        self._stream.ended = True
        self._connection.reset(self._stream)


class GrpcChannel:
    """Calls to one gRPC server over one HTTP/2 connection, opened on the first call and again after a loss.

    `keepalive`: while streams are open and nothing was read for that long, a PING is sent (gRPC's
    keepalive_time); `keepalive_timeout`: the connection is dropped when its answer is that late;
    `ping_ack_delay`: how long the answer to a server's PING may wait for a write to ride on.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_message: int = 1 << 30,
        keepalive: float = 10.0,
        keepalive_timeout: float = 20.0,
        ping_ack_delay: float = 0.005,
    ) -> None:
        self._keepalive = keepalive
        self._keepalive_timeout = keepalive_timeout
        self._ping_ack_delay = ping_ack_delay
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._max_message = max_message
        self._authority = f"{host}:{port}".encode()
        self._scheme = b"\x87" if ssl_context is not None else b"\x86"  # :scheme https / http, static table
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._blocks: dict[tuple[str, float], bytes] = {}
        self._closed = False

    def _block(self, path: str, timeout: float) -> bytes:
        """The request's header block (cached per method and timeout)."""
        block = self._blocks.get((path, timeout))
        if block is None:
            block = (
                b"\x83"  # :method POST, static table
                + self._scheme
                + _literal(b":path", path.encode())
                + _literal(b":authority", self._authority)
                + _literal(b"content-type", b"application/grpc")
                + _literal(b"te", b"trailers")
                + (_literal(b"grpc-timeout", _timeout_header(timeout)) if timeout else b"")
            )
            self._blocks[(path, timeout)] = block
        return block

    async def _connected(self, timeout: float) -> _Connection:
        connection = self._connection
        if connection is not None and connection.usable:
            return connection
        if self._closed:
            raise GrpcError(grpc.StatusCode.UNAVAILABLE, "the channel is closed")
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect(timeout))
        return await asyncio.shield(self._connecting)

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(
                        self._max_message, self._keepalive, self._keepalive_timeout, self._ping_ack_delay
                    ),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as e:
            raise GrpcError(grpc.StatusCode.UNAVAILABLE, f"cannot connect to {self._host}:{self._port}: {e}") from e
        if self._ssl is not None:
            protocol = connection.transport.get_extra_info("ssl_object").selected_alpn_protocol()
            if protocol not in (None, "h2"):
                connection.close()
                raise GrpcError(grpc.StatusCode.UNAVAILABLE, f"the server chose {protocol!r}, not h2")
        self._connection = connection
        return connection

    async def unary(self, path: str, request: bytes, parse: Callable[[bytes], Any], timeout: float) -> Any:
        """One unary call: the serialized request, `parse` for the answer's bytes, a deadline in seconds."""
        connection = self._connection
        if connection is None or not connection.usable:
            connection = await self._connected(timeout)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        stream = connection.open(self._block(path, timeout), _message(request), done, parse)
        connection.expire_at(stream, loop.time() + timeout)
        try:
            return await done
        except asyncio.CancelledError:
            connection.reset(stream)
            raise

    async def stream(self, path: str, timeout: float) -> GrpcStream:
        """Open a bidirectional streaming call (no deadline: it lasts until cancelled); `timeout` bounds
        the connect."""
        connection = await self._connected(timeout)
        return GrpcStream(connection, connection.open(self._block(path, 0), None, None, None))

    async def close(self) -> None:
        """Close the connection; open calls end UNAVAILABLE."""
        self._closed = True
        connection = self._connection
        if connection is not None:
            connection.close()
            await asyncio.wait_for(asyncio.shield(connection.closed), 5)
