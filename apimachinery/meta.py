"""Object metadata helpers: timestamps, uids, generated names, owner references."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "format_time",
    "generate_name",
    "meta",
    "namespaced_key",
    "new_uid",
    "now",
    "parse_time",
]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, UTC, seconds)."""
    return format_time(datetime.now(UTC))


def format_time(t: datetime) -> str:
    """Render a datetime as `2025-01-01T00:00:00Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    """Parse an RFC 3339 timestamp (with Z or an offset, optional fraction)."""
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def new_uid() -> str:
    """A new object uid."""
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`generateName` + 5 random characters, as the apiserver's name generator does."""
    return prefix[:58] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


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
