"""Reads the admission plug-ins share: the objects of a namespace and the namespace itself, from the
apiserver's watch cache (upstream's plug-ins read informers), so a write costs etcd nothing extra;
a namespace the cache has not seen yet is read from etcd."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.resources import by_plural

if TYPE_CHECKING:
    from apiserver.admission import AdmissionAttributes
    from apiserver.registry import Registry

__all__ = ["aggregate", "forbidden", "list_in_namespace", "namespace_of", "object_name"]


async def list_in_namespace(reg: Registry, plural: str, namespace: str) -> list[dict[str, Any]]:
    """Every object of a namespaced resource in `namespace`, as the watch cache holds them."""
    return [s.obj for s in reg.cache.cache(plural).under(f"/registry/{plural}/{namespace}/")]


async def namespace_of(reg: Registry, name: str) -> dict[str, Any] | None:
    """The Namespace object (the cache's, else etcd's), or None when it does not exist; read-only (it may be
    the watch cache's own copy)."""
    if reg.cache.ready.is_set():  # what `reg.get(rv="0", shared=True)` gives when the cache holds it, without its steps
        stored = reg.cache.cache("namespaces").get(f"/registry/namespaces/{name}")
        if stored is not None:
            return stored.obj
    res = by_plural("", "namespaces")
    assert res is not None
    for rv in ("0", ""):
        try:
            return await reg.get(res, None, name, rv=rv, shared=True)
        except errors.StatusError as e:
            if e.code != 404:
                raise
    return None


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
