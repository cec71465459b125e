"""What upstream's RequestInfoFactory adds for authorization beyond the bare path.

- A list or watch narrowed to one object by `fieldSelector=metadata.name=<name>` is a request for
  that name (how kubelets read single secrets and configmaps the Node authorizer allows).
- A request for the namespace object `/api/v1/namespaces/<name>` is in that namespace (so a
  RoleBinding may grant reading "this" namespace, as the view role intends).
"""

from __future__ import annotations

from apimachinery.selectors import SelectorError, parse_field_selector
from apimachinery.validation import is_path_segment_name
from apiserver.request_info import RequestInfo

__all__ = ["authorization_name", "authorization_namespace"]


def authorization_name(info: RequestInfo, verb: str, query: dict[str, str]) -> str:
    """The object name the request is about: the path's, or a list/watch's metadata.name selector's."""
    if info.name or verb not in ("list", "watch"):
        return info.name
    try:
        selector = parse_field_selector(query.get("fieldSelector", ""))
    except SelectorError:
        return ""
    name = selector.requires_exact_match("metadata.name") or ""
    return name if name and not is_path_segment_name(name) else ""


def authorization_namespace(info: RequestInfo) -> str:
    """The namespace the request is in; a namespace object is in itself."""
    if not info.namespace and info.group == "" and info.resource == "namespaces" and info.name:
        return info.name
    return info.namespace
