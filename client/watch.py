"""Watching a collection: the chunked `?watch=1` stream as an async generator of typed events.

The server writes one JSON WatchEvent per line. `watch()` splits the byte stream itself with a
bounded buffer (a line longer than `max_line_bytes` is a protocol error, not unbounded memory),
and yields `WatchEvent`s: ADDED, MODIFIED, DELETED, and BOOKMARK (progress notices carrying only
a resourceVersion; asked for with `bookmarks=True`). An ERROR event or an error response ends the
generator with an exception: `WatchExpired` (a `StatusError`, code 410) when the resourceVersion
is too old and the caller must list again, `StatusError` otherwise. A stream the server closes
(its `timeoutSeconds` ran out) simply ends; a connection that breaks raises `httpx.TransportError`.
Either way the caller resumes from the last event's resourceVersion (see `client.informer`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import orjson

from apimachinery.errors import StatusError
from apimachinery.resources import ResourceInfo
from client.request import Obj, Selectors, watch_request
from client.rest import ApiClient

__all__ = ["EventType", "WatchEvent", "WatchExpired", "WatchProtocolError", "iter_lines", "parse_event", "watch"]

MAX_LINE_BYTES = 16 * 1024 * 1024
READ_MARGIN = 30.0
CONNECT_TIMEOUT = 10.0


class EventType(StrEnum):
    """The `type` of a WatchEvent."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"


class WatchExpired(StatusError):
    """410: the requested resourceVersion is older than the server's history; list again."""


class WatchProtocolError(Exception):
    """The stream was not a sequence of JSON WatchEvent lines."""


@dataclass(frozen=True)
class WatchEvent:
    """One change to one object (or a BOOKMARK carrying only a resourceVersion)."""

    type: EventType
    object: Obj

    @property
    def resource_version(self) -> str:
        """The object's resourceVersion: where a resumed watch starts."""
        return str((self.object.get("metadata") or {}).get("resourceVersion", ""))

    @property
    def is_initial_events_end(self) -> bool:
        """Whether this BOOKMARK ends the initial events of a watch-list."""
        annotations = (self.object.get("metadata") or {}).get("annotations") or {}
        return self.type is EventType.BOOKMARK and annotations.get("k8s.io/initial-events-end") == "true"


async def iter_lines(chunks: AsyncIterator[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> AsyncGenerator[bytes, None]:
    """Split a byte stream into non-empty lines (at most one line plus a chunk in memory); closes the source."""
    buf = bytearray()
    try:
        async for chunk in chunks:
            buf += chunk
            start = 0
            while (end := buf.find(b"\n", start)) >= 0:
                line = bytes(buf[start:end]).strip()
                start = end + 1
                if line:
                    yield line
            del buf[:start]
            if len(buf) > max_line_bytes:
                raise WatchProtocolError(f"watch event longer than {max_line_bytes} bytes")
        if buf.strip():
            yield bytes(buf).strip()
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _error_from(status: Mapping[str, Any]) -> StatusError:
    code = int(status.get("code") or 500)
    cls = WatchExpired if code == 410 else StatusError
    return cls(
        code, str(status.get("reason") or ""), str(status.get("message") or ""), dict(status.get("details") or {})
    )


def parse_event(line: bytes) -> WatchEvent:
    """Decode one WatchEvent line; an ERROR event raises its StatusError (WatchExpired for 410)."""
    try:
        raw = orjson.loads(line)
        ev_type, obj = EventType(raw["type"]), raw["object"]
    except (ValueError, KeyError, TypeError) as e:
        raise WatchProtocolError(f"bad watch event: {line[:200]!r}") from e
    if not isinstance(obj, dict):
        raise WatchProtocolError(f"watch event object is not a JSON object: {line[:200]!r}")
    if ev_type is EventType.ERROR:
        raise _error_from(obj)
    return WatchEvent(ev_type, obj)


async def watch(
    api: ApiClient,
    res: ResourceInfo | str,
    namespace: str | None = None,
    resource_version: str = "",
    selectors: Selectors | None = None,
    timeout: int | None = None,
    bookmarks: bool = True,
    *,
    send_initial_events: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> AsyncGenerator[WatchEvent, None]:
    """Stream changes after `resource_version` (server `timeoutSeconds=timeout`); raises WatchExpired on 410."""
    req = watch_request(
        api.resource(res), namespace, selectors, resource_version, timeout, bookmarks, send_initial_events
    )
    read_timeout = httpx.Timeout(None if timeout is None else timeout + READ_MARGIN, connect=CONNECT_TIMEOUT)
    try:
        async with (
            api.stream(req, timeout=read_timeout) as resp,
            contextlib.aclosing(iter_lines(resp.aiter_bytes(), max_line_bytes)) as lines,
        ):
            async for line in lines:
                yield parse_event(line)
    except StatusError as e:
        if e.code == 410 and not isinstance(e, WatchExpired):
            raise WatchExpired(e.code, e.reason, e.message, e.details) from e
        raise
