"""Overload protection: at most N requests in flight (upstream's WithMaxInFlightLimit).

Two budgets, as `--max-requests-inflight` (the verbs get, list and watch, GETs of non-resource
paths among them) and `--max-mutating-requests-inflight` (everything else); 0 means no limit.
Long-running requests (watches, exec, log, proxy) are not counted. A request past the limit is answered at once with 429
TooManyRequests and `Retry-After: 1`: one comparison and a pre-encoded answer, so a burst past the
limit costs the requests inside it almost nothing. As upstream, members of `system:masters` that
authenticated on the secure port are never refused (the insecure port counts like everyone else:
upstream's insecure chain limited before it knew the user).
"""

from __future__ import annotations

import orjson
from prometheus_client import Counter, Gauge

from apimachinery.errors import too_many_requests
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send, send_status, status_headers
from apiserver.context import RequestContext, context_of

__all__ = ["TOO_MANY_REQUESTS_MESSAGE", "MaxInFlight"]

TOO_MANY_REQUESTS_MESSAGE = "Too many requests, please try again later."
_READ_ONLY_VERBS = frozenset(("get", "list", "watch"))
_PRIVILEGED_GROUP = "system:masters"

DROPPED = Counter(
    "apiserver_dropped_requests",
    "Requests refused with 429 by the in-flight limit",
    ["request_kind"],
)
_INFLIGHT = Gauge(
    "apiserver_current_inflight_requests",
    "Requests being served now, by kind (the in-flight limit's counters)",
    ["request_kind"],
)


class MaxInFlight:
    """Counts requests in flight per kind and refuses (429) those past the limit."""

    def __init__(self, app: ASGIApp, max_read_only: int = 400, max_mutating: int = 200) -> None:
        self.app = app
        self.limits = {"readOnly": max_read_only, "mutating": max_mutating}
        self.inflight = {"readOnly": 0, "mutating": 0}
        err = too_many_requests(TOO_MANY_REQUESTS_MESSAGE, 1)
        self._error = err
        body = orjson.dumps(err.to_status())
        self._start = {"type": "http.response.start", "status": 429, "headers": status_headers(err, body)}
        self._body = {"type": "http.response.body", "body": body}
        for kind in self.inflight:
            _INFLIGHT.labels(kind).set_function(lambda k=kind: self.inflight[k])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve within the budget, or refuse at once."""
        ctx = context_of(scope)
        if ctx.long_running:
            await self.app(scope, receive, send)
            return
        kind = "readOnly" if ctx.verb in _READ_ONLY_VERBS else "mutating"
        limit = self.limits[kind]
        if limit and self.inflight[kind] >= limit and not _privileged(ctx):
            await self.refuse(scope, receive, send, kind)
            return
        self.inflight[kind] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight[kind] -= 1

    async def refuse(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        """The 429 answer (a Status with details.retryAfterSeconds 1, and Retry-After: 1)."""
        DROPPED.labels(kind).inc()
        if scope["type"] == "http":
            await send(dict(self._start))
            await send(dict(self._body))
        else:
            await send_status(scope, receive, send, self._error)


def _privileged(ctx: RequestContext) -> bool:
    return not ctx.insecure and ctx.user is not None and _PRIVILEGED_GROUP in ctx.user.groups
