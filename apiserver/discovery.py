"""Discovery documents: /version, /api, /apis, per group version, and aggregated v2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery.resources import ResourceInfo, version_priority

if TYPE_CHECKING:
    from apiserver.kindregistry import KindRegistry

__all__ = [
    "AGGREGATED_CONTENT_TYPE",
    "aggregated",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "version_info",
    "wants_aggregated",
]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def version_info() -> dict[str, str]:
    """`/version`: what a 1.35 server reports."""
    return {
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.0-tinykube",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """`/api`: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list(kinds: KindRegistry) -> dict[str, Any]:
    """`/apis`: every named group."""
    groups = []
    for name, versions in kinds.groups().items():
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        groups.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(kinds: KindRegistry, group: str) -> dict[str, Any] | None:
    """`/apis/<group>`: one group, or None."""
    versions = kinds.groups().get(group)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": gvs,
        "preferredVersion": gvs[0],
    }


def _resource_entry(r: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    return entry


def _sub_facts(kinds: KindRegistry, r: ResourceInfo, sub: str) -> tuple[str, str, str, list[str]]:
    """The group, version and kind a subresource answers with, and its verbs, from what serves it."""
    served = kinds.of(r).subresources[sub]
    group, version, kind = served.response_kind or (r.group, r.version, r.kind)
    return group, version, kind, sorted(served.verbs)


def _sub_entry(kinds: KindRegistry, r: ResourceInfo, sub: str) -> dict[str, Any]:
    group, version, kind, verbs = _sub_facts(kinds, r, sub)
    entry: dict[str, Any] = {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": verbs,
    }
    if group != r.group or version != r.version:
        entry["group"], entry["version"] = group, version
    return entry


def api_resource_list(kinds: KindRegistry, group_version: str) -> dict[str, Any] | None:
    """`/api/v1` or `/apis/<g>/<v>`: the resources of one group version, or None."""
    resources = kinds.group_versions().get(group_version)
    if resources is None:
        return None
    entries: list[dict[str, Any]] = []
    for r in resources:
        entries.append(_resource_entry(r))
        entries.extend(_sub_entry(kinds, r, sub) for sub in r.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


def wants_aggregated(accept: str | None) -> bool:
    """Whether the Accept header asks for apidiscovery.k8s.io/v2 aggregated discovery."""
    for part in (accept or "").split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def _aggregated_resource(kinds: KindRegistry, r: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    subs = []
    for sub in r.subresources:
        group, version, kind, verbs = _sub_facts(kinds, r, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": verbs,
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(kinds: KindRegistry, core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList of `/api` (core=True) or `/apis`."""
    by_group: dict[str, dict[str, list[ResourceInfo]]] = {}
    for r in kinds.served():
        if (r.group == "") == core:
            by_group.setdefault(r.group, {}).setdefault(r.version, []).append(r)
    for versions in by_group.values():  # the preferred (highest priority) version first, as upstream lists them
        ordered = sorted(versions, key=version_priority)
        versions_sorted = {v: versions[v] for v in ordered}
        versions.clear()
        versions.update(versions_sorted)
    items = [
        {
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {
                    "version": v,
                    "freshness": "Current",
                    "resources": [_aggregated_resource(kinds, r) for r in rs],
                }
                for v, rs in versions.items()
            ],
        }
        for group, versions in by_group.items()
    ]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
