"""The strategy table: one small strategy object per served kind, built from the apiserver's settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from apimachinery.resources import RESOURCES, ResourceInfo
from apiserver.kinds.admissionregistration import (
    MutatingWebhookConfigurationStrategy,
    ValidatingWebhookConfigurationStrategy,
)
from apiserver.kinds.apiregistration import APIServiceStrategy
from apiserver.kinds.autoscaling import HorizontalPodAutoscalerStrategy
from apiserver.kinds.core import (
    ConfigMapStrategy,
    CreateOnUpdateStrategy,
    EndpointsStrategy,
    NamespaceStrategy,
    NodeStrategy,
    PersistentVolumeClaimStrategy,
    SecretStrategy,
)
from apiserver.kinds.networking import (
    IngressClassStrategy,
    IngressStrategy,
    IPAddressStrategy,
    ServiceCIDRStrategy,
)
from apiserver.kinds.pods import PodStrategy
from apiserver.kinds.quota import LimitRangeStrategy, ResourceQuotaStrategy
from apiserver.kinds.rbac import ClusterRoleBindingStrategy, ClusterRoleStrategy, RoleBindingStrategy, RoleStrategy
from apiserver.kinds.services import ServiceNetwork, ServiceStrategy
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

__all__ = ["KindOptions", "ServiceNetwork", "Strategies"]


@dataclass(frozen=True)
class KindOptions:
    """The apiserver settings some strategies take (the Service ranges)."""

    service_network: ServiceNetwork = field(default_factory=ServiceNetwork)


_Factory = Callable[[ResourceInfo, KindOptions], Strategy]

_BY_KIND: dict[str, _Factory] = {
    "Pod": lambda r, o: PodStrategy(r),
    "Namespace": lambda r, o: NamespaceStrategy(r),
    "Node": lambda r, o: NodeStrategy(r),
    "Service": lambda r, o: ServiceStrategy(r, o.service_network),
    "ConfigMap": lambda r, o: ConfigMapStrategy(r),
    "Secret": lambda r, o: SecretStrategy(r),
    "Deployment": lambda r, o: DeploymentStrategy(r),
    "ReplicaSet": lambda r, o: ReplicaSetStrategy(r),
    "ReplicationController": lambda r, o: ReplicationControllerStrategy(r),
    "DaemonSet": lambda r, o: DaemonSetStrategy(r),
    "StatefulSet": lambda r, o: StatefulSetStrategy(r),
    "Job": lambda r, o: JobStrategy(r),
    "CronJob": lambda r, o: CronJobStrategy(r),
    "Endpoints": lambda r, o: EndpointsStrategy(r),
    "PersistentVolumeClaim": lambda r, o: PersistentVolumeClaimStrategy(r),
    "Lease": lambda r, o: CreateOnUpdateStrategy(r),
    "Event": lambda r, o: CreateOnUpdateStrategy(r),
    "Ingress": lambda r, o: IngressStrategy(r),
    "IngressClass": lambda r, o: IngressClassStrategy(r),
    "IPAddress": lambda r, o: IPAddressStrategy(r),
    "ServiceCIDR": lambda r, o: ServiceCIDRStrategy(r),
    "Role": lambda r, o: RoleStrategy(r),
    "ClusterRole": lambda r, o: ClusterRoleStrategy(r),
    "RoleBinding": lambda r, o: RoleBindingStrategy(r),
    "ClusterRoleBinding": lambda r, o: ClusterRoleBindingStrategy(r),
    "LimitRange": lambda r, o: LimitRangeStrategy(r),
    "ResourceQuota": lambda r, o: ResourceQuotaStrategy(r),
    "MutatingWebhookConfiguration": lambda r, o: MutatingWebhookConfigurationStrategy(r),
    "ValidatingWebhookConfiguration": lambda r, o: ValidatingWebhookConfigurationStrategy(r),
    "HorizontalPodAutoscaler": lambda r, o: HorizontalPodAutoscalerStrategy(r),
    "APIService": lambda r, o: APIServiceStrategy(r),
}


class Strategies:
    """The strategy of every served resource (the generic default when a kind needs nothing special)."""

    def __init__(self, options: KindOptions | None = None) -> None:
        self.options = options or KindOptions()
        self._cache: dict[tuple[str, str], Strategy] = {}

    def __call__(self, resource: ResourceInfo) -> Strategy:
        """The strategy of `resource`, built on first use."""
        key = (resource.group, resource.plural)
        strategy = self._cache.get(key)
        if strategy is None:
            factory = _BY_KIND.get(resource.kind)
            strategy = factory(resource, self.options) if factory else Strategy(resource)
            self._cache[key] = strategy
        return strategy

    def all(self) -> list[Strategy]:
        """Strategies of every served resource."""
        return [self(r) for r in RESOURCES]
