"""Choosing an endpoint for a new connection: round-robin, ClientIP session affinity, failover order.

Upstream's userspace `LoadBalancerRR` semantics: endpoints are handed out in turn; with ClientIP
affinity a client IP keeps the endpoint it last used until `timeoutSeconds` pass without a new
connection; affinity records for endpoints that disappear are dropped; a connection that could not
reach its endpoint tries the next one and the client's affinity moves to the one that worked.

One difference, because every node's proxy shares each ClusterIP through SO_REUSEPORT: a client
with no affinity record starts at an endpoint chosen by a stable hash of its IP (rendezvous hashing)
rather than at the round-robin position, so that the proxies would pick the same endpoint for it
without sharing state. That alone does not keep them agreeing (one proxy's failover moves the
client's affinity, the other's table does not know), so the kernel is also told to send all of an
affinity Service's new connections to one proxy (`sockets.set_steering`); the hash then makes the
proxy that takes over when that one goes away start where it most likely was.

Endpoints that failed to connect in the last few seconds are tried last.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kube_proxy.plan import Endpoint

__all__ = ["Balancer"]

FAILURE_MEMORY = 5.0  # seconds an endpoint that failed stays at the back of the order


@dataclass
class _Sticky:
    endpoint: Endpoint
    last_used: float


def _weight(client_ip: str, ep: Endpoint) -> int:
    return zlib.crc32(f"{client_ip}|{ep.ip}:{ep.port}".encode())


class Balancer:
    """Round-robin over one service port's endpoints, with optional ClientIP affinity."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint] = (),
        affinity_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints: tuple[Endpoint, ...] = tuple(endpoints)
        self.affinity_timeout = affinity_timeout
        self.clock = clock
        self._index = 0
        self._sticky: dict[str, _Sticky] = {}
        self._failed: dict[Endpoint, float] = {}

    def update(self, endpoints: Sequence[Endpoint], affinity_timeout: float | None) -> None:
        """Take a new endpoint list; affinity to endpoints still present is kept."""
        endpoints = tuple(endpoints)
        if affinity_timeout is None:
            self._sticky.clear()
        elif endpoints != self.endpoints:
            keep = set(endpoints)
            self._sticky = {ip: s for ip, s in self._sticky.items() if s.endpoint in keep}
        if endpoints != self.endpoints:
            self._failed = {ep: t for ep, t in self._failed.items() if ep in endpoints}
            self._index = self._index % len(endpoints) if endpoints else 0
        self.endpoints = endpoints
        self.affinity_timeout = affinity_timeout

    def order(self, client_ip: str) -> list[Endpoint]:
        """Endpoints in the order a new connection from `client_ip` should try them (advances the turn)."""
        eps = self.endpoints
        n = len(eps)
        if n == 0:
            return []
        now = self.clock()
        first: Endpoint | None = None
        if self.affinity_timeout is not None:
            sticky = self._sticky.get(client_ip)
            if sticky is not None and now - sticky.last_used < self.affinity_timeout:
                first = sticky.endpoint
            else:
                first = max(eps, key=lambda ep: _weight(client_ip, ep))
        start = self._index
        self._index = (start + 1) % n
        if n == 1:
            return [eps[0]]
        rest = [eps[(start + i) % n] for i in range(n)]
        if first is not None:
            rest.remove(first)
            rest.insert(0, first)
        if self._failed:
            recent = {ep for ep, t in self._failed.items() if now - t < FAILURE_MEMORY}
            if len(recent) < len(self._failed):
                self._failed = {ep: t for ep, t in self._failed.items() if ep in recent}
            if recent:
                rest.sort(key=lambda ep: ep in recent)  # stable: keeps the turn order within each group
        return rest

    def connected(self, client_ip: str, endpoint: Endpoint) -> None:
        """A connection from `client_ip` reached `endpoint`: record the affinity."""
        self._failed.pop(endpoint, None)
        if self.affinity_timeout is not None:
            self._sticky[client_ip] = _Sticky(endpoint, self.clock())

    def failed(self, endpoint: Endpoint) -> None:
        """`endpoint` refused or timed out: try it last for a while."""
        self._failed[endpoint] = self.clock()

    def expire(self) -> None:
        """Drop affinity records older than the timeout (upstream's CleanupStaleStickySessions)."""
        if self.affinity_timeout is None or not self._sticky:
            return
        now = self.clock()
        self._sticky = {ip: s for ip, s in self._sticky.items() if now - s.last_used < self.affinity_timeout}

    def sticky_endpoint(self, client_ip: str) -> Endpoint | None:
        """The endpoint `client_ip` is currently stuck to, if any."""
        s = self._sticky.get(client_ip)
        return s.endpoint if s is not None else None
