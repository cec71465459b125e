"""Object metadata helpers: timestamps, uids, generated names, owner references."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "OBJECT_META_FIELDS",
    "format_time",
    "generate_name",
    "meta",
    "namespaced_key",
    "new_uid",
    "now",
    "parse_time",
]

# metav1.ObjectMeta's fields, in the order of its Go type (and so of kube-apiserver's JSON)
OBJECT_META_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_ALPHABET_SIZE = len(_NAME_ALPHABET)
_UNBIASED_BYTES = 256 - 256 % _ALPHABET_SIZE  # 243


_last_second: tuple[int, str] = (-1, "")  # the last second now() rendered: every write asks for it


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, UTC, seconds)."""
    global _last_second
    second = int(time.time())
    if second != _last_second[0]:
        _last_second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_second[1]


def format_time(t: datetime) -> str:
    """Render a datetime as `2025-01-01T00:00:00Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    """Parse an RFC 3339 timestamp (with Z or an offset, optional fraction)."""
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class _RandomHex:
    """Hex digits of the OS's random bytes, read 4 KiB at a time: one system call per 256 uids instead of one each
    (a create takes two: its uid and its audit ID). A forked child starts on bytes of its own."""

    def __init__(self) -> None:
        self.digits = ""
        self.pos = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        """Drop what is left (the parent has the same digits)."""
        self.digits, self.pos = "", 0

    def take32(self) -> str:
        """The next 32 digits (16 bytes)."""
        pos = self.pos
        if pos + 32 > len(self.digits):
            self.digits, pos = os.urandom(4096).hex(), 0
        self.pos = pos + 32
        return self.digits[pos : pos + 32]


_RANDOM_HEX = _RandomHex()


def new_uid() -> str:
    """A new object uid: a random (version 4) UUID, as `str(uuid.uuid4())` without building a UUID object."""
    h = _RANDOM_HEX.take32()
    variant = "89ab"[int(h[16], 16) & 3]  # RFC 4122's variant: the top two bits 10
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def generate_name(prefix: str) -> str:
    """`generateName` + 5 random characters, as the apiserver's name generator does."""
    # one urandom read for the five, not one per character (secrets.choice's); bytes past the last whole
    # multiple of the alphabet's size are skipped, so every character stays equally likely
    chars: list[str] = []
    while len(chars) < 5:
        chars.extend(_NAME_ALPHABET[b % _ALPHABET_SIZE] for b in os.urandom(8) if b < _UNBIASED_BYTES)
    return prefix[:58] + "".join(chars[:5])


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata dict, created if absent."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def namespaced_key(obj: dict[str, Any]) -> str:
    """`namespace/name` (or just `name`) of an object, as work queues key it."""
    m = obj.get("metadata") or {}
    ns = m.get("namespace")
    return f"{ns}/{m.get('name')}" if ns else str(m.get("name"))
