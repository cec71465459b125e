"""Discovery documents: /version, /api, /apis, per group version, and aggregated v2."""

from __future__ import annotations

from typing import Any

from apimachinery.resources import ResourceInfo, group_versions, served_resources

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

_SUB_KINDS = {
    "status": None,
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "log": ("", "v1", "Pod"),
    "exec": ("", "v1", "PodExecOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "finalize": None,
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}
_SUB_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "binding": ["create"],
    "eviction": ["create"],
    "log": ["get"],
    "exec": ["create", "get"],
    "portforward": ["create", "get"],
    "finalize": ["update"],
    "token": ["create"],
}


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


def _groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in served_resources():
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def api_group_list() -> dict[str, Any]:
    """`/apis`: every named group."""
    groups = []
    for name, versions in _groups().items():
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        groups.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    """`/apis/<group>`: one group, or None."""
    versions = _groups().get(group)
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


def _sub_entry(r: ResourceInfo, sub: str) -> dict[str, Any]:
    gvk = _SUB_KINDS.get(sub)
    group, version, kind = gvk if gvk else (r.group, r.version, r.kind)
    entry: dict[str, Any] = {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": _SUB_VERBS[sub],
    }
    if group != r.group or version != r.version:
        entry["group"], entry["version"] = group, version
    return entry


def api_resource_list(group_version: str) -> dict[str, Any] | None:
    """`/api/v1` or `/apis/<g>/<v>`: the resources of one group version, or None."""
    resources = group_versions().get(group_version)
    if resources is None:
        return None
    entries: list[dict[str, Any]] = []
    for r in resources:
        entries.append(_resource_entry(r))
        entries.extend(_sub_entry(r, sub) for sub in r.subresources)
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


def _aggregated_resource(r: ResourceInfo) -> dict[str, Any]:
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
        gvk = _SUB_KINDS.get(sub)
        group, version, kind = gvk if gvk else (r.group, r.version, r.kind)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": _SUB_VERBS[sub],
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList of `/api` (core=True) or `/apis`."""
    by_group: dict[str, dict[str, list[ResourceInfo]]] = {}
    for r in served_resources():
        if (r.group == "") == core:
            by_group.setdefault(r.group, {}).setdefault(r.version, []).append(r)
    items = [
        {
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {
                    "version": v,
                    "freshness": "Current",
                    "resources": [_aggregated_resource(r) for r in rs],
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
