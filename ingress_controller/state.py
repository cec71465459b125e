"""The live routing state: the informers' stores folded into a route table and backend targets.

Informer handlers only mark parts stale; the table is rebuilt (and endpoint resolutions dropped)
on the next request that needs them, so a request never sees data older than the informers'.
"""

from __future__ import annotations

from collections.abc import Iterable

from client.request import Obj
from client.store import Store
from ingress_controller.backends import Balancer, Resolution, resolve
from ingress_controller.classes import ClassFilter
from ingress_controller.routes import Backend, RouteTable

__all__ = ["SERVICE_NAME_LABEL", "SLICE_SERVICE_INDEX", "RoutingState", "slice_service_indexer"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_SERVICE_INDEX = "service"


def slice_service_indexer(obj: Obj) -> list[str]:
    """File an EndpointSlice under `namespace/service` from its service-name label."""
    meta = obj.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{svc}"] if svc else []


class RoutingState:
    """Route table and endpoint targets over the stores of the Ingress, IngressClass, Service and
    EndpointSlice informers (the slice store must carry `SLICE_SERVICE_INDEX`)."""

    def __init__(
        self, class_name: str, ingresses: Store, classes: Store, services: Store, slices: Store, controller: str
    ) -> None:
        self.class_name = class_name
        self.controller = controller
        self.ingresses = ingresses
        self.classes = classes
        self.services = services
        self.slices = slices
        self.balancer = Balancer()
        self._filter: ClassFilter | None = None
        self._table: RouteTable | None = None
        self._resolved: dict[Backend, Resolution] = {}

    def routes_changed(self) -> None:
        """An Ingress or IngressClass changed: rebuild the table when next needed."""
        self._table = None

    def classes_changed(self) -> None:
        """An IngressClass changed: which Ingresses are ours may have too."""
        self._filter = None
        self._table = None

    def endpoints_changed(self) -> None:
        """A Service or EndpointSlice changed: resolve backends afresh."""
        self._resolved.clear()

    @property
    def class_filter(self) -> ClassFilter:
        """Which Ingresses are ours, from the IngressClasses held."""
        if self._filter is None:
            self._filter = ClassFilter.from_classes(self.class_name, self.classes.list(), self.controller)
        return self._filter

    def served(self) -> list[Obj]:
        """The Ingresses this controller serves."""
        serves = self.class_filter.serves
        return [i for i in self.ingresses.list() if serves(i)]

    def served_keys(self) -> Iterable[str]:
        """`namespace/name` of every Ingress served."""
        return (f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in self.served())

    @property
    def table(self) -> RouteTable:
        """The current route table."""
        if self._table is None:
            self._table = RouteTable.build(self.served())
            self.balancer.forget(self._table.backends())
        return self._table

    def resolve(self, backend: Backend) -> Resolution:
        """The ready targets of a backend (cached until a Service or EndpointSlice changes)."""
        hit = self._resolved.get(backend)
        if hit is None:
            if not backend.service:
                hit = Resolution(reason="resource backends are not supported")
            else:
                key = f"{backend.namespace}/{backend.service}"
                slices = self.slices.by_index(SLICE_SERVICE_INDEX, key)
                hit = resolve(self.services.get(key), slices, backend.port)
            self._resolved[backend] = hit
        return hit
