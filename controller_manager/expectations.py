"""Controller expectations (upstream's ControllerExpectations): how many creates and deletes a
controller has issued for an owner and not yet seen through its informer.

While expectations are pending, a sync must not act on the pod count it sees (its own writes
are still in flight and it would create duplicates). They expire after `ttl` seconds in case an
event is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Expectations"]

EXPECTATIONS_TTL = 300.0


@dataclass
class _Pending:
    adds: int = 0
    dels: int = 0
    deleting: set[str] = field(default_factory=set)
    at: float = field(default_factory=time.monotonic)


class Expectations:
    """Pending adds/deletes per owner key."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._by_key: dict[str, _Pending] = {}

    def satisfied(self, key: str) -> bool:
        """Whether every expected create and delete for `key` has been observed (or expired)."""
        p = self._by_key.get(key)
        if p is None:
            return True
        if (p.adds <= 0 and p.dels <= 0) or time.monotonic() - p.at > self.ttl:
            return True
        return False

    def expect_creations(self, key: str, n: int) -> None:
        """Record that `n` creates are about to be issued for `key`."""
        self._by_key[key] = _Pending(adds=n)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        """Record that these pods are about to be deleted for `key`."""
        self._by_key[key] = _Pending(dels=len(pod_keys), deleting=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        """An informer saw one of the expected creates (or a create failed)."""
        p = self._by_key.get(key)
        if p is not None:
            p.adds -= 1

    def deletion_observed(self, key: str, pod_key: str | None = None) -> None:
        """An informer saw one of the expected deletes (or a delete failed)."""
        p = self._by_key.get(key)
        if p is None:
            return
        if pod_key is not None:
            if pod_key not in p.deleting:
                return
            p.deleting.discard(pod_key)
        p.dels -= 1

    def forget(self, key: str) -> None:
        """Drop the owner's expectations (owner deleted)."""
        self._by_key.pop(key, None)
