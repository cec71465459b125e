"""NamespaceLifecycle: nothing is created in a namespace that does not exist or is being deleted,
and the system namespaces cannot be deleted (plugin/pkg/admission/namespace/lifecycle)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.resources import by_plural
from apiserver.admission import AdmissionAttributes

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["IMMORTAL_NAMESPACES", "NamespaceLifecycle"]

IMMORTAL_NAMESPACES = frozenset(("default", "kube-system", "kube-public"))
# after a namespace is deleted here, its lookups skip the watch cache for this long (forceLiveLookupTTL)
_FORCE_LIVE_LOOKUP_SECONDS = 30.0
_ACCESS_REVIEWS = ("localsubjectaccessreviews",)
_NAMESPACES = by_plural("", "namespaces")


def _is_namespace(attrs: AdmissionAttributes) -> bool:
    return attrs.resource.group == "" and attrs.resource.plural == "namespaces"


def _forbidden_name(attrs: AdmissionAttributes) -> str:
    """The name admission.NewForbidden reports: the object's name, else its generateName, else Unknown."""
    m = (attrs.obj or {}).get("metadata") or {}
    return str(m.get("name") or m.get("generateName") or "Unknown")


class NamespaceLifecycle:
    """Refuses writes into missing or terminating namespaces and deletes of the system namespaces."""

    name = "NamespaceLifecycle"

    def __init__(self) -> None:
        self._deleted: dict[str, float] = {}  # namespace → until when lookups go to etcd

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Writes of namespaced objects (but deletes) and deletes of namespaces."""
        if _is_namespace(attrs):
            return attrs.operation == "DELETE"
        return bool(attrs.namespace) and attrs.operation != "DELETE" and attrs.resource.plural not in _ACCESS_REVIEWS

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """404 for a missing namespace, 403 for a create into a terminating one or an immortal delete."""
        if _is_namespace(attrs):
            if attrs.name in IMMORTAL_NAMESPACES:
                raise errors.forbidden("namespaces", attrs.name, "this namespace may not be deleted")
            now = time.monotonic()
            self._deleted = {ns: until for ns, until in self._deleted.items() if until > now}
            self._deleted[attrs.name] = now + _FORCE_LIVE_LOOKUP_SECONDS
            return
        namespace = await self._namespace(attrs.namespace, reg)
        if attrs.operation != "CREATE" or not _terminating(namespace):
            return
        res = attrs.resource
        err = errors.forbidden(
            res.plural,
            _forbidden_name(attrs),
            f"unable to create new content in namespace {attrs.namespace} because it is being terminated",
            res.group,
        )
        err.details["causes"] = [
            {
                "reason": "NamespaceTerminating",
                "message": f"namespace {attrs.namespace} is being terminated",
                "field": "metadata.namespace",
            }
        ]
        raise err

    async def _namespace(self, name: str, reg: Registry) -> dict[str, Any]:
        """The namespace from the watch cache, or from etcd when the cache lacks it or it was just deleted."""
        assert _NAMESPACES is not None
        live = self._deleted.get(name, 0.0) > time.monotonic()
        if not live and reg.cache.ready.is_set():
            stored = reg.cache.cache("namespaces").get(reg.key(_NAMESPACES, None, name))
            if stored is not None:
                return stored.obj
        return await reg.get(_NAMESPACES, None, name)


def _terminating(namespace: dict[str, Any]) -> bool:
    m = namespace.get("metadata") or {}
    return bool(m.get("deletionTimestamp")) or (namespace.get("status") or {}).get("phase") == "Terminating"
