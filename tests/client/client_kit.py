"""Test helpers for the client tests: condition waits, a handler recorder and fault-injecting transports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from client.request import Obj
from client.transport import KeepAliveTransport


async def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until `pred()` holds, re-checking every 10 ms; fail after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if pred():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def name_rv(obj: Obj) -> tuple[str, str]:
    """(name, resourceVersion) of an object."""
    m = obj["metadata"]
    return m["name"], m["resourceVersion"]


class Recorder:
    """Informer handlers that record (verb, name, resourceVersion) and wake waiters on each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._cond = asyncio.Condition()

    async def _record(self, verb: str, obj: Obj) -> None:
        async with self._cond:
            self.calls.append((verb, *name_rv(obj)))
            self._cond.notify_all()

    async def on_add(self, obj: Obj) -> None:
        """Record an add."""
        await self._record("add", obj)

    async def on_update(self, old: Obj, new: Obj) -> None:
        """Record an update (by the new object)."""
        await self._record("update", new)

    async def on_delete(self, obj: Obj) -> None:
        """Record a delete."""
        await self._record("delete", obj)

    def handlers(self) -> dict[str, Any]:
        """Keyword arguments for Informer.add_handler."""
        return {"on_add": self.on_add, "on_update": self.on_update, "on_delete": self.on_delete}

    def verbs(self, name: str | None = None) -> list[tuple[str, str]]:
        """(verb, name) pairs, optionally for one name."""
        return [(v, n) for v, n, _ in self.calls if name is None or n == name]

    async def wait_for(self, pred: Callable[[list[tuple[str, str, str]]], bool], timeout: float = 10.0) -> None:
        """Wait until `pred(calls)` holds."""
        try:
            async with asyncio.timeout(timeout), self._cond:
                await self._cond.wait_for(lambda: pred(self.calls))
        except TimeoutError:
            raise AssertionError(f"timed out; calls so far: {self.calls}") from None

    async def wait_count(self, n: int, timeout: float = 10.0) -> None:
        """Wait until at least `n` calls were recorded."""
        await self.wait_for(lambda calls: len(calls) >= n, timeout)


def is_watch(request: httpx.Request) -> bool:
    """Whether a request is a watch."""
    return request.method == "GET" and request.url.params.get("watch") in ("1", "true")


class _CutStream(httpx.AsyncByteStream):
    """Passes the first chunk of a stream through, then fails as a reset connection would."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk
            raise httpx.ReadError("connection reset by test")

    async def aclose(self) -> None:
        await self._inner.aclose()


class FaultyTransport(httpx.AsyncBaseTransport):
    """A real transport that records requests, cuts the first `drops` watch streams after their
    first chunk, and holds new watch requests while `gate` is clear."""

    def __init__(self, drops: int = 0) -> None:
        self._inner = KeepAliveTransport()
        self.drops = drops
        self.requests: list[httpx.Request] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = 0

    def watches(self) -> list[httpx.Request]:
        """The watch requests sent so far."""
        return [r for r in self.requests if is_watch(r)]

    def lists(self) -> list[httpx.Request]:
        """The list requests (GET on a collection without watch) sent so far."""
        return [r for r in self.requests if r.method == "GET" and not is_watch(r) and "limit" in r.url.params]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if is_watch(request) and not self.gate.is_set():
            self.held += 1
            await self.gate.wait()
        self.requests.append(request)
        resp = await self._inner.handle_async_request(request)
        if is_watch(request) and self.drops > 0 and resp.status_code == 200:
            assert isinstance(resp.stream, httpx.AsyncByteStream)
            self.drops -= 1
            return httpx.Response(
                resp.status_code, headers=resp.headers, stream=_CutStream(resp.stream), request=request
            )
        return resp

    async def aclose(self) -> None:
        await self._inner.aclose()
