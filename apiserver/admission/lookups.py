"""Reads the admission plug-ins share: the objects of a namespace and the namespace itself, read
consistently (the watch cache caught up with etcd), so a LimitRange or quota created just before a
pod already applies to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.resources import by_plural
from apiserver.options import ListOptions

if TYPE_CHECKING:
    from apiserver.admission import AdmissionAttributes
    from apiserver.registry import Registry

__all__ = ["aggregate", "forbidden", "list_in_namespace", "namespace_of", "object_name"]


async def list_in_namespace(reg: Registry, plural: str, namespace: str, group: str = "") -> list[dict[str, Any]]:
    """Every object of a namespaced resource in `namespace`, as of now."""
    res = by_plural(group, plural)
    if res is None:
        return []
    listing = await reg.list(res, namespace, ListOptions.parse({}, res.kind))
    return list(listing["items"])


async def namespace_of(reg: Registry, name: str) -> dict[str, Any] | None:
    """The Namespace object, or None when it does not exist."""
    res = by_plural("", "namespaces")
    assert res is not None
    try:
        return await reg.get(res, None, name)
    except errors.StatusError as e:
        if e.code == 404:
            return None
        raise


def object_name(attrs: AdmissionAttributes) -> str:
    """The name admission errors use: the request's, else the object's name or generateName, else Unknown."""
    if attrs.name:
        return attrs.name
    meta = (attrs.obj or {}).get("metadata") or {}
    return meta.get("name") or meta.get("generateName") or "Unknown"


def forbidden(attrs: AdmissionAttributes, why: str) -> errors.StatusError:
    """admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`."""
    return errors.forbidden(attrs.resource.plural, object_name(attrs), why, attrs.resource.group)


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several (deduplicated) inside `[...]`."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
