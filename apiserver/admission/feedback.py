"""What admission hands back besides its verdict, and how it reaches the client: warnings become
`Warning: 299 - "..."` response headers (kubectl prints them as `Warning: ...`) and audit
annotations join the request's RequestContext annotations, which the audit stage records.

Upstream keeps both in the request's context (warning.AddWarning, audit.AddAuditAnnotation); here a
context variable holds the request's `Feedback`, set by `AdmissionFeedback`, a small ASGI layer
inside the handler chain (so the RequestContext exists and the audit stage, outside it, sees the
annotations). Plug-ins never use this module directly: `AdmissionAttributes.add_warning` and
`add_annotation` forward here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from apiserver.context import CONTEXT_KEY

__all__ = ["AdmissionFeedback", "Feedback", "current_feedback", "warning_header"]

# no admission runs for these (it runs on writes: create, update, patch, delete and their subresources):
# nothing would be fed back, so they get no Feedback and no `send` wrapper
_READS = frozenset(("GET", "HEAD", "OPTIONS"))

_FEEDBACK: ContextVar[Feedback | None] = ContextVar("admission_feedback", default=None)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


@dataclass
class Feedback:
    """One request's admission warnings (in order, once each) and audit annotations."""

    warnings: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)

    def add_warning(self, text: str) -> None:
        """Remember a warning for the response."""
        if text not in self.warnings:
            self.warnings.append(text)

    def add_annotation(self, key: str, value: str) -> None:
        """Remember an audit annotation (the first value of a key stays)."""
        self.annotations.setdefault(key, value)


def current_feedback() -> Feedback | None:
    """The feedback of the request being served (None outside a request)."""
    return _FEEDBACK.get()


def warning_header(text: str) -> bytes:
    """A warning as the `Warning` header value kube-apiserver sends (code 299, agent `-`)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'.encode()


class AdmissionFeedback:
    """ASGI layer: gives each HTTP request a Feedback and delivers it (headers, audit annotations)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        """Serve one request with a fresh Feedback."""
        if scope["type"] != "http" or scope["method"] in _READS:
            await self.app(scope, receive, send)
            return
        feedback = Feedback()
        token = _FEEDBACK.set(feedback)

        async def send_with_feedback(message: Message) -> None:
            if message["type"] == "http.response.start":
                _annotate(scope, feedback)
                if feedback.warnings:
                    headers = list(message.get("headers") or [])
                    headers += [(b"warning", warning_header(w)) for w in feedback.warnings]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_feedback)
        finally:
            _FEEDBACK.reset(token)
            _annotate(scope, feedback)


def _annotate(scope: Scope, feedback: Feedback) -> None:
    ctx = scope.get(CONTEXT_KEY)
    if ctx is not None:
        for key, value in feedback.annotations.items():
            ctx.annotations.setdefault(key, value)
