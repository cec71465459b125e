"""Discovery: the resources a server serves right now, read from `/api/v1`, `/apis` and each group's
preferred version (client-go's `ServerPreferredResources`), for controllers that must cover kinds
added at run time (custom resources) as well as the built-in ones."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import orjson

from apimachinery.errors import StatusError
from apimachinery.resources import ResourceInfo, by_kind, by_plural
from client.rest import ApiClient

__all__ = ["KindResolver", "preferred_resources"]

log = logging.getLogger("client.discovery")


def _resource(group: str, version: str, entry: dict[str, Any]) -> ResourceInfo | None:
    """A discovered resource; the built-in table's own entry when it is one of those (same version)."""
    if "/" in str(entry.get("name", "")):  # a subresource
        return None
    known = by_plural(group, str(entry["name"]))
    if known is not None and known.version == version:
        return known
    return ResourceInfo(
        group=group,
        version=version,
        kind=str(entry.get("kind", "")),
        plural=str(entry["name"]),
        namespaced=bool(entry.get("namespaced")),
        short_names=tuple(entry.get("shortNames") or ()),
        categories=tuple(entry.get("categories") or ()),
        verbs=tuple(entry.get("verbs") or ()),
        singular_name=str(entry.get("singularName") or ""),
    )


async def _get(api: ApiClient, path: str) -> dict[str, Any]:
    data = orjson.loads((await api.request("GET", path, timeout=10)).content)
    return data if isinstance(data, dict) else {}


async def preferred_resources(api: ApiClient) -> list[ResourceInfo]:
    """Every resource in its group's preferred version; a group version that fails (an aggregated API
    whose server is down) is left out, as client-go leaves it out with a partial-discovery error.
    Built-in resources come back as the entries of `apimachinery.resources.RESOURCES`."""
    out: list[ResourceInfo] = []
    core = await _get(api, "/api/v1")
    out += [r for e in core.get("resources") or [] if (r := _resource("", "v1", e)) is not None]
    for group in (await _get(api, "/apis")).get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version")
        if not preferred:
            continue
        try:
            doc = await _get(api, f"/apis/{group['name']}/{preferred}")
        except StatusError as e:
            log.info("discovery of %s/%s failed: %s", group["name"], preferred, e)
            continue
        out += [r for e in doc.get("resources") or [] if (r := _resource(group["name"], preferred, e)) is not None]
    return out


class KindResolver:
    """Resolves `apiVersion` + `kind` to a resource (a RESTMapper): the built-in table first, then discovery,
    read again on a miss at most once per `refresh` seconds (a CRD may have been added since)."""

    def __init__(self, api: ApiClient, refresh: float = 1.0) -> None:
        self.api = api
        self.refresh = refresh
        self._found: dict[tuple[str, str], ResourceInfo] = {}  # (group, kind) → the discovered resource
        self._read_at = float("-inf")

    async def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The resource serving `kind` in the version `api_version` names, or None."""
        known = by_kind(api_version, kind)
        if known is not None:
            return known
        group, _, version = api_version.rpartition("/")
        res = self._found.get((group, kind))
        if res is None and time.monotonic() - self._read_at >= self.refresh:
            self._read_at = time.monotonic()
            try:
                self._found = {(r.group, r.kind): r for r in await preferred_resources(self.api)}
            except StatusError as e:
                log.info("discovery failed: %s", e)
            res = self._found.get((group, kind))
        return replace(res, version=version) if res is not None and version else res
