"""The strategy table: one small strategy object per served kind."""

from __future__ import annotations

from apimachinery.resources import RESOURCES, ResourceInfo
from apiserver.kinds.core import (
    ConfigMapStrategy,
    CreateOnUpdateStrategy,
    EndpointsStrategy,
    NamespaceStrategy,
    NodeStrategy,
    PersistentVolumeClaimStrategy,
    SecretStrategy,
    ServiceStrategy,
)
from apiserver.kinds.pods import PodStrategy
from apiserver.kinds.workloads import (
    CronJobStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    JobStrategy,
    ReplicaSetStrategy,
    ReplicationControllerStrategy,
    StatefulSetStrategy,
)
from apiserver.strategy import Strategy

__all__ = ["strategy_for"]

_BY_KIND: dict[str, type[Strategy]] = {
    "Pod": PodStrategy,
    "Namespace": NamespaceStrategy,
    "Node": NodeStrategy,
    "Service": ServiceStrategy,
    "ConfigMap": ConfigMapStrategy,
    "Secret": SecretStrategy,
    "Deployment": DeploymentStrategy,
    "ReplicaSet": ReplicaSetStrategy,
    "ReplicationController": ReplicationControllerStrategy,
    "DaemonSet": DaemonSetStrategy,
    "StatefulSet": StatefulSetStrategy,
    "Job": JobStrategy,
    "CronJob": CronJobStrategy,
    "Endpoints": EndpointsStrategy,
    "PersistentVolumeClaim": PersistentVolumeClaimStrategy,
    "Lease": CreateOnUpdateStrategy,
    "Event": CreateOnUpdateStrategy,
}

_CACHE: dict[tuple[str, str], Strategy] = {}


def strategy_for(resource: ResourceInfo) -> Strategy:
    """The strategy of a resource (the generic default when the kind needs nothing special)."""
    key = (resource.group, resource.plural)
    if key not in _CACHE:
        _CACHE[key] = _BY_KIND.get(resource.kind, Strategy)(resource)
    return _CACHE[key]


def all_strategies() -> list[Strategy]:
    """Strategies of every served resource."""
    return [strategy_for(r) for r in RESOURCES]
