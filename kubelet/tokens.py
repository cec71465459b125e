"""ServiceAccount tokens for projected volumes (upstream pkg/kubelet/token): asked of the TokenRequest API,
bound to the pod, cached, and asked again once 80 % of their life is gone (or after 24 hours), with a
little jitter so a node's tokens do not all renew at once. A token that cannot be renewed keeps being
used while it is still valid."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from apimachinery.errors import StatusError
from apimachinery.meta import parse_time
from client.request import Request
from client.rest import ApiClient

__all__ = ["DEFAULT_EXPIRATION_SECONDS", "TOKEN_REQUESTS", "TokenError", "TokenManager", "token_sources"]

log = logging.getLogger("kubelet.tokens")

DEFAULT_EXPIRATION_SECONDS = 3600
MAX_TTL = 24 * 60 * 60
MAX_JITTER = 10.0
TOKEN_REQUESTS = 4  # TokenRequests in flight at once


class TokenError(Exception):
    """No token could be had; str() is the reason (`failed to fetch token: …`)."""


@dataclass(frozen=True)
class _Token:
    token: str
    expires: float  # status.expirationTimestamp
    ttl: int  # spec.expirationSeconds
    jitter: float

    def refresh_at(self) -> float:
        """When to renew: 80 % of the life (minus jitter), and at most a day after issue."""
        issued = self.expires - self.ttl
        return min(issued + MAX_TTL, self.expires - self.ttl * 0.2) - self.jitter


def token_sources(pod: Mapping[str, Any]) -> list[tuple[str, int, Mapping[str, Any]]]:
    """(volume name, source index, serviceAccountToken source) of every projected token in the pod."""
    out = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        for i, src in enumerate((vol.get("projected") or {}).get("sources") or []):
            if isinstance(src.get("serviceAccountToken"), dict):
                out.append((vol.get("name", ""), i, src["serviceAccountToken"]))
    return out


class TokenManager:
    """Fetches and caches the tokens of the node's pods."""

    def __init__(self, api: ApiClient, clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.clock = clock
        self._cache: dict[tuple[str, str, tuple[str, ...], int, str], _Token] = {}
        # a burst of pods asks a few tokens at a time over kept-alive connections: with one request in flight per
        # pod, HTTP/1.1 dials (and TLS-handshakes) a connection per pod, where upstream's kubelet multiplexes
        # them all on its one HTTP/2 connection
        self._slots = asyncio.Semaphore(TOKEN_REQUESTS)

    async def for_pod(self, pod: Mapping[str, Any]) -> tuple[dict[tuple[str, int], bytes], float | None]:
        """The token of each projected source ((volume, index) → token) and the earliest time one of them
        must be renewed (None without tokens); TokenError when one cannot be had."""
        sources = token_sources(pod)
        if not sources:
            return {}, None
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        tokens: dict[tuple[str, int], bytes] = {}
        due: float | None = None
        for volume, index, src in sources:
            audience = str(src.get("audience") or "")
            seconds = int(src.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS)
            tok = await self.get(
                meta.get("namespace", ""),
                spec.get("serviceAccountName") or "default",
                (audience,) if audience else (),
                seconds,
                {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name", ""), "uid": meta.get("uid", "")},
            )
            tokens[(volume, index)] = tok.token.encode()
            due = tok.refresh_at() if due is None else min(due, tok.refresh_at())
        return tokens, due

    async def get(
        self, namespace: str, name: str, audiences: tuple[str, ...], seconds: int, bound: dict[str, str]
    ) -> _Token:
        """A valid token for the account, from the cache while it is fresh."""
        key = (namespace, name, audiences, seconds, bound.get("uid", ""))
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached.refresh_at():
            return cached
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": list(audiences), "expirationSeconds": seconds, "boundObjectRef": bound},
        }
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        try:
            async with self._slots:
                resp = await self.api.send(Request("POST", path, {}, body))
            answer = resp.json()
            token = str(answer["status"]["token"])
            expires = parse_time(answer["status"]["expirationTimestamp"]).timestamp()
            ttl = int((answer.get("spec") or {}).get("expirationSeconds") or seconds)
        except (StatusError, httpx.HTTPError, KeyError, TypeError, ValueError) as e:
            if cached is not None and now < cached.expires:
                log.warning("couldn't renew the token of %s/%s, using the old one: %s", namespace, name, e)
                return cached
            reason = e.message if isinstance(e, StatusError) else str(e)
            raise TokenError(f"failed to fetch token: {reason}") from e
        fresh = _Token(token, expires, ttl, random.uniform(0, MAX_JITTER))
        self._cache[key] = fresh
        return fresh

    def forget(self, pod_uid: str) -> None:
        """Drop the tokens bound to a removed pod."""
        for key in [k for k in self._cache if k[4] == pod_uid]:
            del self._cache[key]
