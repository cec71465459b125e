"""Turn a request path into what it addresses: group, version, namespace, resource, name."""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["RequestInfo", "parse_path"]

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class RequestInfo:
    """The parts of an API path (as the apiserver's RequestInfoFactory resolves them)."""

    group: str
    version: str
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    legacy_watch: bool = False


def parse_path(path: str) -> RequestInfo | None:
    """Parse `/api/v1/...` or `/apis/<g>/<v>/...`; None when it is not an API path."""
    if len(path) > _CACHED_PATH_CHARS:
        return _parse_path(path)
    return _parse_cached(path)


_CACHED_PATH_CHARS = 256  # longer paths are parsed each time, so the cache's memory stays small


@functools.lru_cache(maxsize=2048)
def _parse_cached(path: str) -> RequestInfo | None:
    # the same collection paths (every create of a kind) and object paths come back again and again;
    # a RequestInfo is frozen, so requests may share one
    return _parse_path(path)


def _parse_path(path: str) -> RequestInfo | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
        else:
            # /namespaces/{name}[/status|/finalize]: the namespace object itself
            return RequestInfo(
                group,
                version,
                "",
                "namespaces",
                namespace,
                rest[2] if len(rest) > 2 else "",
                legacy_watch,
            )
    if len(rest) > 3:
        return RequestInfo(group, version, namespace, "", "", "", legacy_watch)
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return RequestInfo(group, version, namespace, resource, name, sub, legacy_watch)
