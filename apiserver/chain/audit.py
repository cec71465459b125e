"""Auditing (upstream's WithAudit): record each request as the audit policy says.

The policy is evaluated once per request, with the authenticated user (before impersonation, as
upstream); at level None nothing more happens. Otherwise the stage emits RequestReceived, then
ResponseStarted when a long-running response (watch, exec, log) starts, then ResponseComplete —
or Panic when the handler crashed — with the request and response bodies the level asks for.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from apiserver.audit.event import AuditRecord
from apiserver.audit.policy import Policy
from apiserver.chain.authorization import attributes_of
from apiserver.chain.respond import ASGIApp, Message, Receive, Scope, Send
from apiserver.context import context_of

__all__ = ["Audit"]


class Audit:
    """Emits the audit events of every request the policy records."""

    def __init__(self, app: ASGIApp, policy: Policy, emit: Callable[[dict[str, Any]], None]) -> None:
        self.app = app
        self.policy = policy
        self.emit = emit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the request around the rest of the chain."""
        ctx = context_of(scope)
        attrs = attributes_of(ctx)
        if ctx.authenticated_user is not None and ctx.authenticated_user is not ctx.user:
            attrs = dataclasses.replace(attrs, user=ctx.authenticated_user)
        rule = self.policy.evaluate(attrs)
        if not rule.records:
            await self.app(scope, receive, send)
            return
        record = AuditRecord(ctx, rule, scope, self.emit, time.time())
        record.emit("RequestReceived", time.time())
        try:
            await self.app(scope, _receiving(record, receive), _sending(record, send))
        except Exception as e:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"APIServer panic'd: {e!r}",
                "reason": "InternalError",
                "code": 500,
            }
            record.emit("Panic", time.time(), status)
            raise
        record.emit("ResponseComplete", time.time())


def _receiving(record: AuditRecord, receive: Receive) -> Receive:
    if not record.wants_request_body:
        return receive

    async def capture() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            record.capture_request(message.get("body", b""))
        return message

    return capture


def _sending(record: AuditRecord, send: Send) -> Send:
    capturing = False
    accepted = False

    async def watch(message: Message) -> None:
        nonlocal capturing, accepted
        kind = message["type"]
        if kind in ("http.response.start", "websocket.http.response.start"):
            record.code = message["status"]
            capturing = record.wants_response_body(record.code)
            if record.ctx.long_running:
                record.emit("ResponseStarted", time.time())
        elif kind in ("http.response.body", "websocket.http.response.body"):
            if capturing:
                record.capture_response(message.get("body", b""))
        elif kind == "websocket.accept":
            record.code, accepted = 101, True
            record.emit("ResponseStarted", time.time())
        elif kind == "websocket.close" and not accepted and not record.code:
            record.code = 403  # an upgrade refused without an HTTP answer
        await send(message)

    return watch
