"""Answering from inside the chain, before the app runs: a `Status` to an HTTP request or a refused
WebSocket upgrade (as kube-apiserver's responsewriters.ErrorNegotiated)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from apimachinery.errors import StatusError

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "send_status"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = (b"content-type", b"application/json")


def status_headers(err: StatusError, body: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of a Status answer: JSON, its length, and Retry-After when it says when to retry."""
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    retry = err.details.get("retryAfterSeconds") if err.details else None
    if retry and err.code in (429, 503, 504):
        headers.append((b"retry-after", str(retry).encode()))
    return headers


async def send_status(scope: Scope, receive: Receive, send: Send, err: StatusError) -> None:
    """Answer with `err` as a Status: an HTTP response, or the denial of a WebSocket upgrade."""
    body = orjson.dumps(err.to_status())
    headers = status_headers(err, body)
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": err.code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()  # the websocket.connect, before any answer
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": err.code, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": err.message[:120]})
