"""Builders for admission plug-in unit tests: attributes, pods, quotas, limit ranges."""

from __future__ import annotations

from typing import Any

from apimachinery.resources import by_plural
from apiserver.admission import AdmissionAttributes
from apiserver.context import UserInfo


def attrs(
    plural: str,
    obj: dict[str, Any] | None,
    operation: str = "CREATE",
    *,
    old: dict[str, Any] | None = None,
    namespace: str = "ns",
    subresource: str = "",
    group: str = "",
    dry_run: bool = False,
) -> AdmissionAttributes:
    """One write as a plug-in sees it."""
    res = by_plural(group, plural)
    assert res is not None, plural
    name = ((obj or old or {}).get("metadata") or {}).get("name", "")
    return AdmissionAttributes(
        operation=operation,
        resource=res,
        subresource=subresource,
        namespace=namespace if res.namespaced else "",
        name=name,
        obj=obj,
        old=old,
        user=UserInfo("tester", groups=("system:authenticated",)),
        dry_run=dry_run,
    )


def container(
    name: str = "c", requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    """A container with the given requests and limits."""
    c: dict[str, Any] = {"name": name, "image": "busybox"}
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = dict(requests)
    if limits is not None:
        resources["limits"] = dict(limits)
    if resources:
        c["resources"] = resources
    return c


def pod(
    name: str = "p", *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (), **spec: Any
) -> dict[str, Any]:
    """A pod with these containers (one plain container by default)."""
    body: dict[str, Any] = {"containers": list(containers) or [container()], **spec}
    if init:
        body["initContainers"] = list(init)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}, "spec": body}


def limit_range(*items: dict[str, Any], name: str = "limits") -> dict[str, Any]:
    """A LimitRange with these items."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"limits": list(items)},
    }


def quota(name: str, hard: dict[str, str], used: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A ResourceQuota whose status is already computed (hard, and used — zero when not given)."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
        "spec": {"hard": dict(hard), **spec},
        "status": {"hard": dict(hard), "used": dict(used) if used is not None else dict.fromkeys(hard, "0")},
    }
