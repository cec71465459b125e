"""What admission hands back besides its verdict, and how it reaches the client: warnings become
`Warning: 299 - "..."` response headers (kubectl prints them as `Warning: ...`) and audit
annotations join the request's RequestContext annotations, which the audit stage records.

Upstream keeps both in the request's context (warning.AddWarning, audit.AddAuditAnnotation); here a
context variable holds the request's `Feedback`, opened by the resource API's route (`apiserver/apiroute.py`,
innermost in the handler chain, so the RequestContext exists and the audit stage, outside it, sees the
annotations), which adds the warnings to the response it sends. Plug-ins never use this module directly:
`AdmissionAttributes.add_warning` and `add_annotation` forward here.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from apiserver.context import CONTEXT_KEY

__all__ = ["Feedback", "close_feedback", "current_feedback", "deliver", "open_feedback", "warning_header"]

# no admission runs for these (it runs on writes: create, update, patch, delete and their subresources):
# nothing would be fed back, so they get no Feedback
_READS = frozenset(("GET", "HEAD", "OPTIONS"))

_FEEDBACK: ContextVar[Feedback | None] = ContextVar("admission_feedback", default=None)

Scope = MutableMapping[str, Any]


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


def open_feedback(method: str) -> tuple[Feedback, Token[Feedback | None]] | None:
    """A fresh Feedback for a request that may run admission (every method but reads), made the current
    one; None for reads. The resource API's route (`apiserver/apiroute.py`) opens it and closes it."""
    if method in _READS:
        return None
    feedback = Feedback()
    return feedback, _FEEDBACK.set(feedback)


def deliver(scope: Scope, feedback: Feedback) -> list[tuple[bytes, bytes]]:
    """Before the response starts: its annotations join the request's; its warnings, returned, are the
    `Warning` headers to add to the response."""
    _annotate(scope, feedback)
    return [(b"warning", warning_header(w)) for w in feedback.warnings]


def close_feedback(scope: Scope, opened: tuple[Feedback, Token[Feedback | None]]) -> None:
    """The request is done: no current Feedback, and annotations added since the response started are kept."""
    feedback, token = opened
    _FEEDBACK.reset(token)
    _annotate(scope, feedback)


def _annotate(scope: Scope, feedback: Feedback) -> None:
    ctx = scope.get(CONTEXT_KEY)
    if ctx is not None:
        for key, value in feedback.annotations.items():
            ctx.annotations.setdefault(key, value)
