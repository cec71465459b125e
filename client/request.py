"""Building API requests without doing I/O (lightkube's `prepare_request`).

Every verb of the generic client is a pure function from a `ResourceInfo`, names and options
to a `Request` (method, path, query, JSON body, content type). Nothing here touches the network,
so URL and parameter rules are unit-testable and `rest.ApiClient` only sends what it is given.
Namespaced resources addressed by name need a namespace (from the argument or the object);
a missing one is a `ValueError` here rather than a confusing 404 from the server.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from apimachinery.resources import RESOURCES, ResourceInfo, by_plural
from apimachinery.selectors import FieldSelector, LabelSelector, escape_field_value

__all__ = [
    "DeleteOptions",
    "Obj",
    "PatchType",
    "Preconditions",
    "Request",
    "Selectors",
    "create_request",
    "delete_collection_request",
    "delete_request",
    "get_request",
    "list_request",
    "object_path",
    "patch_request",
    "resource",
    "update_request",
    "watch_request",
]

Obj = dict[str, Any]
JSON = "application/json"


class PatchType(StrEnum):
    """Patch flavours, as the Content-Type the server dispatches on."""

    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Request:
    """One API call, ready to send."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    content_type: str = JSON

    @property
    def retry_on_transport_error(self) -> bool:
        """Whether a request that may have reached the server can be sent again (reads only)."""
        return self.method in ("GET", "HEAD")


@dataclass(frozen=True)
class Selectors:
    """A label and a field selector in canonical string form; hashable, so usable as a cache key."""

    labels: str = ""
    fields: str = ""

    @classmethod
    def of(
        cls,
        labels: str | Mapping[str, str] | LabelSelector | None = None,
        fields: str | Mapping[str, str] | FieldSelector | None = None,
    ) -> Selectors:
        """Build from strings, `{key: value}` maps (equality terms) or parsed selectors."""
        return cls(_selector_str(labels, escape=False), _selector_str(fields, escape=True))

    def params(self) -> dict[str, str]:
        """The query parameters for these selectors."""
        out = {}
        if self.labels:
            out["labelSelector"] = self.labels
        if self.fields:
            out["fieldSelector"] = self.fields
        return out


def _selector_str(sel: str | Mapping[str, str] | LabelSelector | FieldSelector | None, escape: bool) -> str:
    if sel is None:
        return ""
    if isinstance(sel, Mapping):
        return ",".join(f"{k}={escape_field_value(v) if escape else v}" for k, v in sorted(sel.items()))
    return str(sel)


@dataclass(frozen=True)
class Preconditions:
    """Delete only if the object still has this uid and/or resourceVersion (else 409)."""

    uid: str | None = None
    resource_version: str | None = None

    def to_dict(self) -> dict[str, str]:
        """Render as metav1.Preconditions."""
        out = {}
        if self.uid:
            out["uid"] = self.uid
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        return out


@dataclass(frozen=True)
class DeleteOptions:
    """metav1.DeleteOptions: grace period, propagation policy (Orphan/Background/Foreground), preconditions."""

    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    preconditions: Preconditions | None = None
    dry_run: bool = False

    def to_dict(self) -> Obj:
        """Render as a DeleteOptions body."""
        out: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if self.grace_period_seconds is not None:
            out["gracePeriodSeconds"] = self.grace_period_seconds
        if self.propagation_policy:
            out["propagationPolicy"] = self.propagation_policy
        if self.preconditions:
            out["preconditions"] = self.preconditions.to_dict()
        if self.dry_run:
            out["dryRun"] = ["All"]
        return out


@functools.cache  # RESOURCES is fixed: a scan of every served resource per call was ~14 µs of each request
def resource(name: str) -> ResourceInfo:
    """Look up a served resource by plural, `plural.group`, kind or short name (`pods`, `deploy`, `Lease`)."""
    plural, _, group = name.partition(".")
    if group and (res := by_plural(group, plural)):
        return res
    matches = {r for r in RESOURCES if name in (r.plural, *r.short_names) or name.lower() == r.singular}
    if len(matches) != 1:
        what = "ambiguous" if matches else "unknown"
        raise LookupError(f'{what} resource "{name}"')
    return matches.pop()


def object_path(res: ResourceInfo, name: str, namespace: str | None = None, subresource: str = "") -> str:
    """URL of one object (or one of its subresources)."""
    if res.namespaced and not namespace:
        raise ValueError(f"{res.group_resource} are namespaced: a namespace is required")
    path = f"{res.base_path(namespace)}/{quote(name, safe='')}"
    return f"{path}/{subresource}" if subresource else path


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _write_params(dry_run: bool, field_manager: str | None) -> dict[str, str]:
    params = {}
    if dry_run:
        params["dryRun"] = "All"
    if field_manager:
        params["fieldManager"] = field_manager
    return params


def get_request(res: ResourceInfo, name: str, namespace: str | None = None, resource_version: str = "") -> Request:
    """GET one object."""
    params = {"resourceVersion": resource_version} if resource_version else {}
    return Request("GET", object_path(res, name, namespace), params)


def list_request(
    res: ResourceInfo,
    namespace: str | None = None,
    selectors: Selectors | None = None,
    limit: int | None = None,
    continue_token: str = "",
    resource_version: str = "",
) -> Request:
    """GET a collection (all namespaces when `namespace` is None), one page if `limit` is set."""
    params = (selectors or Selectors()).params()
    if limit:
        params["limit"] = str(limit)
    if continue_token:
        params["continue"] = continue_token
    if resource_version:
        params["resourceVersion"] = resource_version
    return Request("GET", res.base_path(namespace), params)


def watch_request(
    res: ResourceInfo,
    namespace: str | None = None,
    selectors: Selectors | None = None,
    resource_version: str = "",
    timeout_seconds: int | None = None,
    bookmarks: bool = True,
    send_initial_events: bool = False,
) -> Request:
    """GET a collection with `watch=1`; with `send_initial_events` a watch-list (state, then changes)."""
    params = {"watch": "1", **(selectors or Selectors()).params()}
    if resource_version:
        params["resourceVersion"] = resource_version
    if timeout_seconds is not None:
        params["timeoutSeconds"] = str(timeout_seconds)
    if bookmarks or send_initial_events:
        params["allowWatchBookmarks"] = "true"
    if send_initial_events:
        params["sendInitialEvents"] = "true"
        params["resourceVersionMatch"] = "NotOlderThan"
    return Request("GET", res.base_path(namespace), params)


def create_request(
    res: ResourceInfo,
    obj: Obj,
    namespace: str | None = None,
    dry_run: bool = False,
    field_manager: str | None = None,
) -> Request:
    """POST a new object into its collection (namespace from the argument or the object)."""
    ns = namespace or _meta(obj).get("namespace")
    if res.namespaced and not ns:
        raise ValueError(f"{res.group_resource} are namespaced: a namespace is required")
    return Request("POST", res.base_path(ns), _write_params(dry_run, field_manager), obj)


def update_request(
    res: ResourceInfo,
    obj: Obj,
    namespace: str | None = None,
    subresource: str = "",
    dry_run: bool = False,
    field_manager: str | None = None,
) -> Request:
    """PUT a whole object (or its status); its resourceVersion makes the write conditional."""
    m = _meta(obj)
    name = m.get("name")
    if not name:
        raise ValueError("the object has no metadata.name")
    path = object_path(res, name, namespace or m.get("namespace"), subresource)
    return Request("PUT", path, _write_params(dry_run, field_manager), obj)


def patch_request(
    res: ResourceInfo,
    name: str,
    patch: Any,
    namespace: str | None = None,
    patch_type: PatchType = PatchType.MERGE,
    subresource: str = "",
    dry_run: bool = False,
    field_manager: str | None = None,
    force: bool = False,
) -> Request:
    """PATCH an object; server-side apply (`PatchType.APPLY`) requires a field manager."""
    if patch_type is PatchType.APPLY and not field_manager:
        raise ValueError("server-side apply requires a field_manager")
    params = _write_params(dry_run, field_manager)
    if force:
        params["force"] = "true"
    return Request("PATCH", object_path(res, name, namespace, subresource), params, patch, str(patch_type))


def delete_request(
    res: ResourceInfo, name: str, namespace: str | None = None, options: DeleteOptions | None = None
) -> Request:
    """DELETE one object with DeleteOptions in the body."""
    return Request("DELETE", object_path(res, name, namespace), {}, (options or DeleteOptions()).to_dict())


def delete_collection_request(
    res: ResourceInfo,
    namespace: str | None = None,
    selectors: Selectors | None = None,
    options: DeleteOptions | None = None,
) -> Request:
    """DELETE every selected object of a collection."""
    params = (selectors or Selectors()).params()
    return Request("DELETE", res.base_path(namespace), params, (options or DeleteOptions()).to_dict())
