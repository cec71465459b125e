"""limits.BoundedRequests around the handler chain: bodiless requests (no wrappers of their own) and requests with
a body get the same answers when a handler fails, and a body is still bounded however it is framed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apimachinery.errors import StatusError
from apimachinery.httpserver import ServingLimits
from apiserver.chain import ChainOptions, build_handler_chain
from apiserver.chain.request_info import LISTENER_KEY
from apiserver.limits import BoundedRequests

Message = dict[str, Any]


def _scope(method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": "/api/v1/namespaces/ns/pods/p",
        "query_string": b"",
        "headers": headers,
        LISTENER_KEY: "insecure",
    }


async def _call(app: Any, scope: dict[str, Any], body: list[bytes]) -> list[Message]:
    """Run one request through `app`, the body in `body`'s pieces; the messages it sent."""
    pending = [{"type": "http.request", "body": b, "more_body": i < len(body) - 1} for i, b in enumerate(body)]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _status(sent: list[Message]) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], orjson.loads(sent[1]["body"]), dict(sent[0]["headers"])


FRAMINGS = {
    "no body": ("GET", [], [b""]),
    "empty body": ("POST", [(b"content-length", b"0")], [b""]),
    "body": ("POST", [(b"content-length", b"2")], [b"{}"]),
    "chunked": ("POST", [(b"transfer-encoding", b"chunked")], [b"{", b"}", b""]),
}


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_crash_before_the_answer_is_a_500_status_with_the_audit_id(framing: str) -> None:
    async def crash(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("boom")

    method, headers, body = FRAMINGS[framing]
    app = BoundedRequests(build_handler_chain(crash, ChainOptions()), ServingLimits())
    code, status, head = _status(await _call(app, _scope(method, [*headers, (b"audit-id", b"a1")]), body))
    assert (code, status["reason"]) == (500, "InternalError")
    assert status["message"] == "Internal error occurred: RuntimeError"
    assert head[b"audit-id"] == b"a1" and b"connection" not in head


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_status_error_outside_the_handlers_is_answered_as_its_status(framing: str) -> None:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        raise StatusError(409, "Conflict", "no")

    method, headers, body = FRAMINGS[framing]
    code, status, _ = _status(await _call(BoundedRequests(refuse, ServingLimits()), _scope(method, headers), body))
    assert (code, status["reason"]) == (409, "Conflict")


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_crash_after_the_answer_started_adds_nothing_to_it(framing: str) -> None:
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    method, headers, body = FRAMINGS[framing]
    app = BoundedRequests(build_handler_chain(half, ChainOptions()), ServingLimits())
    sent = await _call(app, _scope(method, headers), body)
    assert [(m["type"], m.get("status")) for m in sent] == [("http.response.start", 200)]


async def test_a_chunked_body_over_the_limit_is_413_and_the_handler_sees_no_more() -> None:
    async def read_all(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the whole body was read")

    app = BoundedRequests(read_all, ServingLimits(max_request_body_bytes=4))
    sent = await _call(app, _scope("POST", [(b"transfer-encoding", b"chunked")]), [b"abc", b"def", b""])
    code, status, _ = _status(sent)
    assert (code, status["message"]) == (413, "Request entity too large: limit is 4")
