"""The HTTP/1.1 protocol the apiserver and the kubelets run (`apimachinery/httpserver.py`). A fixed-length
response leaves in one write (on TLS: one record); otherwise every response goes out as uvicorn sends it: the
same bytes, the same closes, the same refusal of a bad header. Each case runs through that protocol and
uvicorn's own, on transports that record what is written. Then what its response cycle tells the layers above
it: that the body is in, whether the response started, the Audit-Id it adds, and that a watch may write to it
directly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from apimachinery.httpcycle import ResponseCycle
from apimachinery.httpserver import ServingLimits, protocol_factory
from apiserver.chain.request_info import RequestInfoStage
from apiserver.context import context_of
from apiserver.watch import server_cycle

GET = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
CONTINUE_POST = b"POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"  # body later


class Recorder:
    """A plain TCP connection's transport as uvicorn's protocol asks it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed.set()

    def is_closing(self) -> bool:
        return self.closed.is_set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def answer(*messages: dict[str, Any], read: bool = False) -> Any:
    """An app sending these messages (after reading the body, if `read`)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if read:
            while (await receive()).get("more_body"):
                pass
        for message in messages:
            await send(message)

    return app


def start(*headers: tuple[bytes, bytes], status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


LENGTH4 = (b"content-length", b"4")
CASES = {
    "fixed length": (answer(start(LENGTH4), body(b"body")), GET),
    "fixed length in two parts": (answer(start(LENGTH4), body(b"bo", more=True), body(b"dy")), GET),
    "chunked": (answer(start(), body(b"ab", more=True), body(b"cd")), GET),
    "HEAD": (answer(start(LENGTH4), body(b"")), b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n"),
    "no body": (answer(start((b"content-length", b"0"), status=204), body(b"")), GET),
    "connection close": (answer(start(LENGTH4, (b"Connection", b"Close")), body(b"body")), GET),
    "HTTP/1.0": (answer(start(LENGTH4), body(b"body")), b"GET / HTTP/1.0\r\nhost: x\r\n\r\n"),
    "pipelined": (answer(start(LENGTH4), body(b"body")), GET + GET),
    "body read": (
        answer(start(LENGTH4), body(b"body"), read=True),
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}",
    ),
    "chunked body read": (
        answer(start(LENGTH4), body(b"body"), read=True),
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n1\r\n \r\n0\r\n\r\n",
    ),
    "status without a phrase": (answer(start(LENGTH4, status=599), body(b"body")), GET),
    "length 0": (answer(start((b"content-length", b"0")), body(b"")), GET),
    "upper-case header names": (answer(start((b"Content-Length", b"4"), (b"X-Thing", b"v")), body(b"body")), GET),
    "100-continue": (
        answer(start(LENGTH4), body(b"body"), read=True),
        CONTINUE_POST,
    ),
    "a header value with a line break": (answer(start(LENGTH4, (b"x-bad", b"a\r\nb")), body(b"body")), GET),
    "a header name with a space": (answer(start(LENGTH4, (b"x bad", b"a")), body(b"body")), GET),
    "a target that does not parse": (answer(start(LENGTH4), body(b"body")), b"GET http://[::1 HTTP/1.1\r\n\r\n"),
    "a path of bytes outside ASCII": (answer(start(LENGTH4), body(b"body")), b"GET /\xff\xfe HTTP/1.1\r\n\r\n"),
    "a request header value with a control byte": (
        answer(start(LENGTH4), body(b"body")),
        b"GET / HTTP/1.1\r\nhost: x\r\nx: \x01\r\n\r\n",
    ),
    "a body shorter than its length": (answer(start(LENGTH4), body(b"bod")), GET),
    "a body longer than its length": (answer(start(LENGTH4), body(b"bodyy")), GET),
}


OURS = protocol_factory(ServingLimits())


async def serve(protocol_class: Any, app: Any, request: bytes) -> tuple[list[bytes], bool]:
    """What the protocol writes for `request` (and whether it closed the connection) once the app is done."""
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False)
    config.load()
    state = ServerState()
    protocol = protocol_class(config, state, {})
    transport = Recorder()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(request)
    if b"expect: 100" in request:
        await asyncio.sleep(0)  # the app asks for the body: the 100 goes out first
        protocol.data_received(b"{}")
    async with asyncio.timeout(5):
        while state.tasks:
            await asyncio.gather(*state.tasks, return_exceptions=True)
    protocol.connection_lost(None)
    return transport.writes, transport.closed.is_set()


@pytest.mark.parametrize("case", CASES)
async def test_the_bytes_sent_are_uvicorns(case: str) -> None:
    app, request = CASES[case]
    ours, closed = await serve(OURS, app, request)
    theirs, their_close = await serve(HttpToolsProtocol, app, request)
    assert b"".join(ours) == b"".join(theirs) and closed == their_close
    if case in ("fixed length", "connection close", "HTTP/1.0"):
        assert len(ours) == 1 and len(theirs) == 2  # head and body at once
    if case == "pipelined":
        assert len(ours) == 2 and b"".join(ours).count(b"HTTP/1.1 200 OK") == 2
    if case.startswith("a "):
        assert b"body" not in b"".join(ours) and closed  # refused: nothing of the response, the connection closed


async def test_an_app_failing_between_head_and_body_gets_the_head_sent_and_the_connection_closed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start(LENGTH4))
        raise RuntimeError("lost")

    ours, closed = await serve(OURS, app, GET)
    theirs, their_close = await serve(HttpToolsProtocol, app, GET)
    assert ours == theirs and closed and their_close
    assert ours[0].startswith(b"HTTP/1.1 200 OK")  # the held head goes out before the close, as uvicorn's does


async def test_the_cycle_says_when_the_body_is_in() -> None:
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(receive.__self__.has_message())  # limits.BoundedRequests reads it before arming a timer
        while (await receive()).get("more_body"):
            pass
        await send(start(LENGTH4))
        await send(body(b"body"))

    await serve(OURS, app, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
    assert seen == [True]  # the body came with the headers
    seen.clear()
    await serve(OURS, app, CONTINUE_POST)
    assert seen == [False]  # the body comes later


async def test_the_audit_id_is_added_by_the_cycle_once_and_the_context_knows_the_response_started() -> None:
    responded: list[bool] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        ctx = context_of(scope)
        responded.append(ctx.has_responded())
        await send(start(LENGTH4))
        responded.append(ctx.has_responded())
        await send(body(b"body"))

    stage = RequestInfoStage(inner)
    request = b"GET /api/v1/namespaces/a/pods/p HTTP/1.1\r\nhost: x\r\naudit-id: abc\r\n\r\n"
    ours, _ = await serve(OURS, stage, request)
    theirs, _ = await serve(HttpToolsProtocol, stage, request)  # the chain's own send wrapper adds it there
    assert b"".join(ours) == b"".join(theirs)
    assert b"".join(ours).count(b"audit-id: abc\r\n") == 1
    assert responded == [False, True, False, True]


async def test_a_watch_may_write_to_the_apiservers_connection_directly() -> None:
    cycles: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        cycles.append(server_cycle(scope))
        await send(start(LENGTH4))
        await send(body(b"body"))

    stage = RequestInfoStage(inner)
    await serve(OURS, stage, GET)
    await serve(HttpToolsProtocol, stage, GET)
    assert isinstance(cycles[0], ResponseCycle) and cycles[1] is None
