"""Decisions kept: a request the same user made before (same verb, path and, for lists and watches, field
selector) gets the decision the authorizers gave it then, for as long as none of them has changed since.

An authorizer takes part by answering `decision_stamp(user)`: a value that changes whenever its decisions about
that user's requests may change (RBAC: its policy index's generation, once caught up with the watch cache; a
mode without state: a constant), or None when its decisions about that user cannot be kept (the Node
authorizer's about a node: they follow the node's pods). With one authorizer that does not answer, nothing is
kept. Upstream asks its authorizers every time (RBAC's rule walk is compiled Go); here that walk, with the
request's attributes, was about a tenth of a GET's CPU (bench/README.md, "Session 21").
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from apiserver.authz import Authorizer, Decision
from apiserver.context import RequestContext

__all__ = ["DecisionCache"]

_KEPT = 4096  # decisions kept (forgotten all at once past it)
_KEPT_PATH = 256  # characters of path and field selector a kept decision's key may hold: its memory stays small
_SELECTED = frozenset(("list", "watch"))  # verbs whose field selector may name the object (authorization_name)

Key = tuple[Any, ...]


class DecisionCache:
    """The decisions of one set of authorizers, by request, valid while their stamps stay the same."""

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        stamps = tuple(getattr(a, "decision_stamp", None) for a in authorizers)
        self._stamps = None if None in stamps else stamps  # one authorizer without a stamp: nothing is kept
        self._stamp: tuple[Hashable, ...] | None = None
        self._kept: dict[Key, Decision] = {}

    def lookup(self, ctx: RequestContext) -> tuple[Decision | None, Key | None, tuple[Hashable, ...] | None]:
        """(the kept decision or None, the request's key, the stamp it was looked up under); the key is None when
        this request's decision may not be kept."""
        user = ctx.user
        if self._stamps is None or user is None or user.extra:
            return None, None, None
        stamp = tuple([s(user) for s in self._stamps])
        if None in stamp:
            return None, None, None
        if stamp != self._stamp:
            self._kept.clear()
            self._stamp = stamp
        verb, path = ctx.verb, ctx.path
        selector = ctx.query.get("fieldSelector") if verb in _SELECTED else None
        if len(path) + (len(selector) if selector else 0) > _KEPT_PATH:
            return None, None, None  # asked every time: a long key is not worth keeping
        key = (user.name, user.uid, user.groups, verb, path, selector)
        return self._kept.get(key), key, stamp

    def keep(self, key: Key, stamp: tuple[Hashable, ...], decision: Decision) -> None:
        """Keep a decision made under `stamp`, unless an authorizer has changed since it was looked up."""
        if stamp != self._stamp:
            return
        if len(self._kept) >= _KEPT:
            self._kept.clear()
        self._kept[key] = decision
