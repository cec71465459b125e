"""The built-in kinds' strategies: one small strategy object per kind, built from the apiserver's settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from apimachinery.resources import ResourceInfo
from apiserver.crd.schema import SchemaCompiler, compile_structural
from apiserver.crd.strategy import CustomResourceDefinitionStrategy
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
from apiserver.kinds.events import EventStrategy
from apiserver.kinds.networking import (
    IngressClassStrategy,
    IngressStrategy,
    IPAddressStrategy,
    ServiceCIDRStrategy,
)
from apiserver.kinds.pods import PodStrategy
from apiserver.kinds.policy import PodDisruptionBudgetStrategy, PriorityClassStrategy
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

__all__ = ["KindOptions", "ServiceNetwork", "builtin_strategy"]


@dataclass(frozen=True)
class KindOptions:
    """The apiserver settings some strategies take (the Service ranges, how CRD schemas compile)."""

    service_network: ServiceNetwork = field(default_factory=ServiceNetwork)
    compile_schema: SchemaCompiler = compile_structural


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
    "PodDisruptionBudget": lambda r, o: PodDisruptionBudgetStrategy(r),
    "PriorityClass": lambda r, o: PriorityClassStrategy(r),
    "Event": lambda r, o: EventStrategy(r),
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
    "CustomResourceDefinition": lambda r, o: CustomResourceDefinitionStrategy(r, o.compile_schema),
}


def builtin_strategy(resource: ResourceInfo, options: KindOptions) -> Strategy:
    """The strategy of a built-in resource (the generic default when its kind needs nothing special)."""
    factory = _BY_KIND.get(resource.kind)
    return factory(resource, options) if factory else Strategy(resource)
