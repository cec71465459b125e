"""Client watches: one JSON WatchEvent per line over a chunked response, from the cache."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from apimachinery import errors
from apimachinery.errors import expired, too_large_resource_version
from apimachinery.httpcycle import ResponseCycle
from apimachinery.resources import ResourceInfo
from apiserver import negotiation, protobuf
from apiserver.context import CONTEXT_KEY, RequestContext
from apiserver.negotiation import Output
from apiserver.options import ListOptions
from apiserver.printers import Printer
from apiserver.registry import Registry
from apiserver.storage import StoredObject
from apiserver.watch_cache import CacheWatcher, TooOld

__all__ = ["WatchResponse", "server_cycle", "watch_response"]

BOOKMARK_INTERVAL = 5.0
DEFAULT_TIMEOUT = 1800
MAX_BATCH = 1000  # events per chunk at most, so a long backlog is not copied into one huge write
# While events keep coming, live watches are written at most once per FLUSH_INTERVAL seconds; the first event
# after a quiet spell goes out at once. Each chunk wakes the client once (its read, its TLS record, its loop
# turn): under a burst, 4 watcher processes spent 35 us per event instead of 72 (bench/watch_clients.py).
FLUSH_INTERVAL = 0.005


def _line(ev_type: str, obj: Any) -> bytes:
    return orjson.dumps({"type": ev_type, "object": obj}) + b"\n"


def _bookmark(res: ResourceInfo, revision: int, initial_end: bool = False) -> dict[str, Any]:
    m: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        m["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": res.kind, "apiVersion": res.api_version, "metadata": m}


class _Encoder:
    """Renders event objects: as they are, or as one-row Tables for `kubectl get -w`; in JSON lines, or
    in another framing (`output`, set by `negotiation.render_watch`). A cache event's frame is made once
    per framing and shared by every watcher that uses it (Tables are per watcher: the first row has headers)."""

    def __init__(self, res: ResourceInfo, printer: Printer, table: bool, include_object: str) -> None:
        self.res, self.printer, self.table, self.include_object = res, printer, table, include_object
        self._headers_sent = False
        self.output: Output | None = None
        self.stream: AsyncIterator[bytes] | None = None  # the response's own stream, while nothing wraps it
        self.direct: _DirectSender | None = None  # set when the stream's frames reach the connection unchanged
        self._key: tuple[str, ...] = ("json",)

    def reframe(self, output: Output) -> None:
        """Frame every event in `output` (a streamable media type and `as=` transform, not a Table)."""
        self.output = output
        self._key = (output.media_type, output.transform, output.version)

    def event(self, ev_type: str, obj: dict[str, Any] | StoredObject, shared: dict[Any, bytes] | None = None) -> bytes:
        """One event's frame, from `shared` (a cache event's frames) when it was already made."""
        if self.table:
            return self._table(ev_type, obj.obj if isinstance(obj, StoredObject) else obj)
        if shared is None:
            return self._frame(ev_type, obj)
        key = (*self._key, ev_type)
        data = shared.get(key)
        if data is None:
            data = shared[key] = self._frame(ev_type, obj)
        return data

    def _frame(self, ev_type: str, obj: dict[str, Any] | StoredObject) -> bytes:
        if isinstance(obj, StoredObject):
            if self.output is None:  # the JSON the object keeps, as orjson would frame it
                return b'{"type":"%s","object":%s}\n' % (ev_type.encode(), obj.json())
            obj = obj.obj
        if self.output is None:
            return _line(ev_type, obj)
        return negotiation.watch_frame({"type": ev_type, "object": obj}, self.output)

    def _table(self, ev_type: str, obj: dict[str, Any]) -> bytes:
        if ev_type in ("ADDED", "MODIFIED", "DELETED"):
            from apiserver.tables import build_table

            rv = (obj.get("metadata") or {}).get("resourceVersion", "")
            obj = build_table(
                self.printer,
                [obj],
                resource_version=rv,
                include_object=self.include_object,
                with_headers=not self._headers_sent,
            )
            self._headers_sent = True
        return _line(ev_type, obj)


class _FlushRounds:
    """The live watches of one event loop written together, in rounds: at the end of the loop pass when the
    last round is `interval` seconds old or more, else once it is, so a busy watch wakes its client at most
    once per interval.

    One clock for every watch, not one per watch: an event is never written after one that the cache
    dispatched later on another watch, so a client's informers still see changes across resources in the
    order the cache applied them (with a clock per watch, a garbage collector could see an owner's deletion
    before the dependent created just before it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop, self._interval = loop, interval
        self._waiting: list[_DirectSender] = []
        self._scheduled = False
        self._last = -interval  # loop time of the last round

    def add(self, sender: _DirectSender) -> None:
        """Write `sender`'s pending frames in the next round."""
        self._waiting.append(sender)
        if self._scheduled:
            return
        self._scheduled = True
        wait = self._last + self._interval - self._loop.time()
        if wait > 0:
            self._loop.call_later(wait, self._round)
        else:
            self._loop.call_soon(self._round)

    def _round(self) -> None:
        self._scheduled = False
        self._last = self._loop.time()
        waiting, self._waiting = self._waiting, []
        for sender in waiting:
            sender.flush()


_ROUNDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _FlushRounds] = weakref.WeakKeyDictionary()


def _rounds_of(loop: asyncio.AbstractEventLoop) -> _FlushRounds:
    """The loop's flush rounds (one per event loop: the apiserver's, or each test's)."""
    rounds = _ROUNDS.get(loop)
    if rounds is None:
        rounds = _ROUNDS[loop] = _FlushRounds(loop, FLUSH_INTERVAL)
    return rounds


class _DirectSender:
    """A live watch's frames written to its connection from the cache's dispatch, while the watch's
    queue is empty and the connection takes writes: no task switch, stream step or ASGI send per event.

    What it takes goes out as one chunk in the loop's next flush round (`_FlushRounds`). A paused or lost
    connection refuses the item, which is then queued (back-pressure and the bounded queue as before); the
    stream takes what is pending first whenever it wakes."""

    def __init__(self, cycle: ResponseCycle, enc: _Encoder, rounds: _FlushRounds) -> None:
        self.cycle, self.enc = cycle, enc
        self.pending: list[bytes] = []
        self.sent = 0  # items taken, so the stream knows the watch was not idle
        self._rounds = rounds

    def offer(self, item: Any) -> bool:
        """Take one queue item (type, object, shared frames) to the client; False when it must be queued."""
        cycle = self.cycle
        if cycle.flow.write_paused or cycle.disconnected or cycle.response_complete:
            return False
        try:
            frame = self.enc.event(*item)
        except Exception:  # the stream's own path meets it again (a ProtobufError ends the watch with an ERROR)
            return False  # and it must not fail the cache's dispatch to every other watcher
        if not self.pending:
            self._rounds.add(self)
        self.pending.append(frame)
        self.sent += 1
        return True

    def take(self) -> list[bytes]:
        """What was taken but not yet written (the stream sends it before anything else)."""
        parts, self.pending = self.pending, []
        return parts

    def flush(self) -> None:
        """Write what is pending as one HTTP chunk, as uvicorn's `send` would."""
        if not self.pending:
            return
        data = b"".join(self.take())
        cycle = self.cycle
        if not cycle.disconnected and not cycle.response_complete and not cycle.transport.is_closing():
            cycle.transport.write(b"%x\r\n%b\r\n" % (len(data), data))


def server_cycle(scope: Scope) -> ResponseCycle | None:
    """The apiserver's own response cycle of the request (`apiserver/httpcycle.py`, kept in its context by the
    request-info stage), whose connection a watch may write to directly; None under any other server."""
    ctx: RequestContext | None = scope.get(CONTEXT_KEY)
    return ctx.response_cycle if ctx is not None else None


class WatchResponse(StreamingResponse):
    """A watch's chunked response: its frames go straight to the connection (`_DirectSender`) when the
    stream is the watch's own (not re-framed by a wrapper) and the server is the apiserver's own."""

    watch_encoder: _Encoder | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the response, enabling direct writes when they send exactly what `send` would."""
        enc = self.watch_encoder
        cycle = server_cycle(scope)
        if (
            enc is not None
            and not enc.table
            and enc.stream is self.body_iterator
            and cycle is not None
            and scope.get("method") != "HEAD"
        ):
            enc.direct = _DirectSender(cycle, enc, _rounds_of(asyncio.get_running_loop()))
        await super().__call__(scope, receive, send)


async def _start(
    reg: Registry, res: ResourceInfo, namespace: str | None, opts: ListOptions
) -> tuple[CacheWatcher | None, dict[str, Any] | None, bool]:
    """Register with the cache: (watcher, error status, whether initial events are sent)."""
    cache = reg.cache.cache(res.storage_name)
    match = reg.filter(res, namespace, opts)
    rv = opts.resource_version
    initial = bool(opts.send_initial_events) if opts.send_initial_events is not None else rv in ("", "0")
    if initial and rv != "0":
        wanted = int(rv) if rv else await reg._current_revision()
        await reg.cache.wait_for_revision(wanted)
    else:
        await reg.cache.ready.wait()
    try:
        return cache.watch(int(rv or 0), match, initial, shared=True), None, initial
    except TooOld as e:
        status = expired(str(e)).to_status()
        return None, status, initial


async def _stream(
    reg: Registry, res: ResourceInfo, namespace: str | None, opts: ListOptions, enc: _Encoder
) -> AsyncIterator[bytes]:
    """The watch's frames: everything queued at once goes out as one chunk (one socket write), as
    upstream's watch server flushes only when its channel is empty."""
    watcher, error, _initial = await _start(reg, res, namespace, opts)
    if watcher is None:
        yield enc.event("ERROR", error or {})
        return
    if reg.cache.closing:  # shutting down: end the stream at once
        watcher.close()
        enc.direct = None
    cache = reg.cache.cache(res.storage_name)
    queue = watcher.queue
    start_revision = reg.cache.revision
    last_bookmark = -1
    # Initial ADDED events were queued synchronously at registration: count them.
    initial_left = queue.qsize() if opts.send_initial_events else -1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (opts.timeout_seconds or DEFAULT_TIMEOUT)
    try:
        while True:
            parts: list[bytes] = []
            if initial_left == 0:
                parts.append(enc.event("BOOKMARK", _bookmark(res, start_revision, initial_end=True)))
                initial_left = -1
            remaining = deadline - loop.time()
            if remaining <= 0:
                if parts:
                    yield b"".join(parts)
                return
            if queue.empty():
                if parts:
                    yield b"".join(parts)
                    parts = []
                # live events may go straight out while this waits (never the initial ones: they are counted)
                direct = enc.direct if initial_left < 0 and queue.empty() else None
                sent = direct.sent if direct is not None else 0
                try:
                    watcher.sink = direct.offer if direct is not None else None
                    async with asyncio.timeout(min(remaining, BOOKMARK_INTERVAL)):
                        item = await queue.get()
                except TimeoutError:
                    if direct is not None:
                        parts = direct.take()
                        if direct.sent != sent:  # not idle: events went out directly
                            if parts:
                                yield b"".join(parts)
                            continue
                    if opts.allow_bookmarks and reg.cache.revision > last_bookmark:
                        last_bookmark = reg.cache.revision
                        yield enc.event("BOOKMARK", _bookmark(res, last_bookmark))
                    continue
                finally:
                    watcher.sink = None
                if direct is not None:
                    parts = direct.take()  # taken before this item was queued: they go first
            else:
                item = queue.get_nowait()
            while item is not None:
                try:
                    parts.append(enc.event(*item))
                except protobuf.ProtobufError as e:  # an object the client's format cannot carry: end as upstream
                    parts.append(enc.event("ERROR", errors.internal_error(str(e)).to_status()))
                    yield b"".join(parts)
                    return
                if initial_left > 0:
                    initial_left -= 1
                    if initial_left == 0:
                        parts.append(enc.event("BOOKMARK", _bookmark(res, start_revision, initial_end=True)))
                        initial_left = -1
                if queue.empty() or len(parts) >= MAX_BATCH:
                    break
                item = queue.get_nowait()
            if parts:
                yield b"".join(parts)
            if item is None:
                return
    finally:
        cache.unwatch(watcher)
        if enc.direct is not None:
            enc.direct.take()  # an abandoned stream's last frames are dropped, as its queue's are


async def watch_response(
    reg: Registry,
    res: ResourceInfo,
    namespace: str | None,
    opts: ListOptions,
    *,
    table: bool = False,
    include_object: str = "Metadata",
) -> StreamingResponse:
    """A chunked streaming response of WatchEvents; 504 when resourceVersion is ahead of the store."""
    rv = opts.resource_version
    if rv.isdigit() and int(rv) > reg.cache.revision and not await reg.cache.wait_for_revision(int(rv)):
        raise too_large_resource_version(int(rv), reg.cache.revision)
    enc = _Encoder(res, reg.kinds.of(res).printer, table, include_object)
    enc.stream = _stream(reg, res, namespace, opts, enc)
    response = WatchResponse(
        enc.stream,
        media_type="application/json",
        headers={"Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private"},
    )
    response.watch_encoder = enc  # negotiation re-frames through it
    return response
