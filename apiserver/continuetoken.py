"""Continue tokens of paginated lists: upstream's shape, bound to the list they continue, signed.

A token is upstream's `{"v":"meta.k8s.io/v1","rv":R,"start":K}` (base64url, no padding) where K is
the next key *relative to the list's key prefix*, so a token can never range outside the resource and
namespace it is used with (upstream's path-traversal defence). On top of upstream, tinykube adds
`"sig"`: an HMAC-SHA256 over the token's fields and the list's scope (API group, key prefix — that
is resource and namespace —, label and field selectors) under a cluster-wide secret key. A token
that was altered, or that was issued for another resource, namespace or selector, fails the check
and gets upstream's `400 invalid continue token: continue key is not valid: …`.

The key is generated once and kept in etcd (`/tinykube/continue-token-key`), so tokens survive an
apiserver restart and are valid on every apiserver of the cluster.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import posixpath
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from apimachinery.errors import StatusError, bad_request

__all__ = ["KEY_PATH", "ContinueTokens", "ListScope"]

log = logging.getLogger("apiserver.continuetoken")


KEY_PATH = "/tinykube/continue-token-key"
_VERSION = "meta.k8s.io/v1"
_MAX_TOKEN = 8192  # a real token is a key name and a few numbers: far below this


@dataclass(frozen=True)
class ListScope:
    """What a paginated list is of: its API group, key prefix (resource + namespace) and selectors."""

    group: str
    prefix: str
    label_selector: str = ""
    field_selector: str = ""

    def canonical(self) -> bytes:
        """The bytes the signature covers for this scope."""
        return orjson.dumps([self.group, self.prefix, self.label_selector, self.field_selector])


def _invalid(why: str) -> StatusError:
    return bad_request(f"invalid continue token: continue key is not valid: {why}")


def _b64decode(token: str) -> bytes:
    raw = token.rstrip("=")
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as e:
        raise _invalid(f"illegal base64 data: {e}") from e


class ContinueTokens:
    """Issues and checks continue tokens under one secret key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _sign(self, revision: int, start: str, scope: ListScope) -> str:
        msg = orjson.dumps([_VERSION, revision, start]) + b"\n" + scope.canonical()
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, revision: int, next_key: str, scope: ListScope) -> str:
        """A token continuing the list at `next_key` (a full etcd key under the scope's prefix) at `revision`."""
        if not next_key.startswith(scope.prefix):
            raise ValueError(f"key {next_key!r} is not under the list prefix {scope.prefix!r}")
        start = next_key[len(scope.prefix) :]
        sig = self._sign(revision, start, scope)
        raw = orjson.dumps({"v": _VERSION, "rv": revision, "start": start, "sig": sig})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str, scope: ListScope) -> tuple[int, str]:
        """The revision and the full etcd start key of a token; 400 unless it was issued for `scope`."""
        if len(token) > _MAX_TOKEN:
            raise _invalid("token too long")
        try:
            data: Any = orjson.loads(_b64decode(token))
        except orjson.JSONDecodeError as e:
            raise _invalid(str(e)) from e
        if not isinstance(data, dict):
            raise _invalid("json: cannot unmarshal into Go value of type storage.continueToken")
        if data.get("v") != _VERSION:
            raise _invalid(f"server does not recognize this encoded version {data.get('v')}")
        rv, start, sig = data.get("rv"), data.get("start"), data.get("sig")
        if not isinstance(rv, int) or isinstance(rv, bool) or rv <= 0 or rv >= 1 << 63:
            raise _invalid(f"incorrect encoded start resourceVersion (version {_VERSION})")
        if not isinstance(start, str) or not start:
            raise _invalid(f"encoded start key empty (version {_VERSION})")
        # upstream's defence against path traversal: the key must be clean below the prefix
        rooted = start if start.startswith("/") else "/" + start
        if posixpath.normpath(rooted) != rooted or rooted.startswith("//"):
            raise _invalid(start)
        if not isinstance(sig, str) or not hmac.compare_digest(sig, self._sign(rv, start, scope)):
            raise _invalid("the token was not issued for this resource, namespace and selectors")
        return rv, scope.prefix + rooted[1:]

    async def use_cluster_key(self, storage: Any) -> None:
        """Switch to the cluster's key in etcd, creating it if this is the first apiserver to need it."""
        from apiserver.storage import KeyExists

        fresh = base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            await storage.create(KEY_PATH, {"key": fresh})
        except KeyExists:
            pass
        stored = await storage.get(KEY_PATH)
        try:
            key = base64.b64decode(stored.obj["key"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            key = b""
        if len(key) < 16:
            log.error("%s in etcd is not a key of 16 bytes or more; continue tokens use this apiserver's own", KEY_PATH)
            return
        self._key = key
