"""pydantic v2 models of the served kinds: they validate shape and types, never drop fields.

Every model allows extra fields; the apiserver validates a request body with these
models and then stores the body itself, so unknown fields round-trip untouched.
Only the fields the apiserver checks are declared.

The apiserver only wants the verdict, so it runs each model through `validator_of`: the model's own
core schema with every model in it made a typed dict (the same fields, constraints, validators and
errors), which builds plain dicts instead of model instances, at well under half the cost.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import SchemaValidator

from apimachinery.quantity import QuantityError, parse_quantity

__all__ = ["KIND_MODELS", "K8sModel", "validator_of"]


class K8sModel(BaseModel):
    """Base: extra fields allowed and kept, aliases are the JSON names."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=False)


Protocol = Literal["TCP", "UDP", "SCTP"]
IntOrString = int | str


class ObjectMeta(K8sModel):
    name: str | None = None
    generateName: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    ownerReferences: list[OwnerReference] | None = None


class OwnerReference(K8sModel):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None


def _check_quantities(v: dict[str, Any] | None) -> dict[str, Any] | None:
    for key, q in (v or {}).items():
        try:
            value = parse_quantity(q)
        except QuantityError as e:
            raise ValueError(f"[{key}]: Invalid value: {q!r}: {e}") from e
        if value < 0:  # upstream's ValidateNonnegativeQuantity
            raise ValueError(f'[{key}]: Invalid value: "{q}": must be greater than or equal to 0')
    return v


class ResourceRequirements(K8sModel):
    limits: dict[str, IntOrString] | None = None
    requests: dict[str, IntOrString] | None = None

    _q = field_validator("limits", "requests")(_check_quantities)


class ContainerPort(K8sModel):
    containerPort: int = Field(ge=1, le=65535)
    hostPort: int | None = Field(default=None, ge=0, le=65535)
    name: str | None = None
    protocol: Protocol | None = None


class EnvVar(K8sModel):
    name: str = Field(min_length=1)
    value: str | None = None
    valueFrom: dict[str, Any] | None = None


class VolumeMount(K8sModel):
    name: str = Field(min_length=1)
    mountPath: str = Field(min_length=1)
    subPath: str | None = None
    readOnly: bool | None = None


class Probe(K8sModel):
    initialDelaySeconds: int | None = Field(default=None, ge=0)
    periodSeconds: int | None = Field(default=None, ge=1)
    timeoutSeconds: int | None = Field(default=None, ge=1)
    successThreshold: int | None = Field(default=None, ge=1)
    failureThreshold: int | None = Field(default=None, ge=1)


class Container(K8sModel):
    name: str = Field(min_length=1)
    image: str = Field(min_length=1)
    command: list[str] | None = None
    args: list[str] | None = None
    workingDir: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    envFrom: list[dict[str, Any]] | None = None
    resources: ResourceRequirements | None = None
    volumeMounts: list[VolumeMount] | None = None
    livenessProbe: Probe | None = None
    readinessProbe: Probe | None = None
    startupProbe: Probe | None = None
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None


class Volume(K8sModel):
    name: str = Field(min_length=1)


class Toleration(K8sModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] | None = None
    tolerationSeconds: int | None = None


class PodSpec(K8sModel):
    containers: list[Container] = Field(min_length=1)
    initContainers: list[Container] | None = None
    volumes: list[Volume] | None = None
    restartPolicy: Literal["Always", "OnFailure", "Never"] | None = None
    dnsPolicy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] | None = None
    terminationGracePeriodSeconds: int | None = Field(default=None, ge=0)
    activeDeadlineSeconds: int | None = Field(default=None, ge=1)
    nodeName: str | None = None
    nodeSelector: dict[str, str] | None = None
    schedulerName: str | None = None
    serviceAccountName: str | None = None
    hostname: str | None = None
    subdomain: str | None = None
    tolerations: list[Toleration] | None = None
    affinity: dict[str, Any] | None = None
    priority: int | None = None


class PodTemplateSpec(K8sModel):
    metadata: ObjectMeta | None = None
    spec: PodSpec


class LabelSelectorRequirement(K8sModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(K8sModel):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


class Pod(K8sModel):
    metadata: ObjectMeta
    spec: PodSpec


class RollingUpdateDeployment(K8sModel):
    maxSurge: IntOrString | None = None
    maxUnavailable: IntOrString | None = None


class DeploymentStrategy(K8sModel):
    type: Literal["RollingUpdate", "Recreate"] | None = None
    rollingUpdate: RollingUpdateDeployment | None = None


class DeploymentSpec(K8sModel):
    replicas: int | None = Field(default=None, ge=0)
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy | None = None
    minReadySeconds: int | None = Field(default=None, ge=0)
    revisionHistoryLimit: int | None = Field(default=None, ge=0)
    progressDeadlineSeconds: int | None = Field(default=None, ge=1)
    paused: bool | None = None


class Deployment(K8sModel):
    metadata: ObjectMeta
    spec: DeploymentSpec


class ReplicaSetSpec(K8sModel):
    replicas: int | None = Field(default=None, ge=0)
    selector: LabelSelector
    template: PodTemplateSpec | None = None
    minReadySeconds: int | None = Field(default=None, ge=0)


class ReplicaSet(K8sModel):
    metadata: ObjectMeta
    spec: ReplicaSetSpec


class ReplicationControllerSpec(K8sModel):
    replicas: int | None = Field(default=None, ge=0)
    selector: dict[str, str] | None = None
    template: PodTemplateSpec | None = None
    minReadySeconds: int | None = Field(default=None, ge=0)


class ReplicationController(K8sModel):
    metadata: ObjectMeta
    spec: ReplicationControllerSpec


class DaemonSetSpec(K8sModel):
    selector: LabelSelector
    template: PodTemplateSpec
    minReadySeconds: int | None = Field(default=None, ge=0)
    revisionHistoryLimit: int | None = Field(default=None, ge=0)


class DaemonSet(K8sModel):
    metadata: ObjectMeta
    spec: DaemonSetSpec


class StatefulSetSpec(K8sModel):
    replicas: int | None = Field(default=None, ge=0)
    selector: LabelSelector
    template: PodTemplateSpec
    serviceName: str | None = None
    podManagementPolicy: Literal["OrderedReady", "Parallel"] | None = None
    revisionHistoryLimit: int | None = Field(default=None, ge=0)
    minReadySeconds: int | None = Field(default=None, ge=0)


class StatefulSet(K8sModel):
    metadata: ObjectMeta
    spec: StatefulSetSpec


class ControllerRevision(K8sModel):
    metadata: ObjectMeta
    revision: int = Field(ge=0)


class JobSpec(K8sModel):
    template: PodTemplateSpec
    parallelism: int | None = Field(default=None, ge=0)
    completions: int | None = Field(default=None, ge=0)
    backoffLimit: int | None = Field(default=None, ge=0)
    activeDeadlineSeconds: int | None = Field(default=None, ge=1)
    ttlSecondsAfterFinished: int | None = Field(default=None, ge=0)
    completionMode: Literal["NonIndexed", "Indexed"] | None = None
    suspend: bool | None = None
    selector: LabelSelector | None = None
    manualSelector: bool | None = None


class Job(K8sModel):
    metadata: ObjectMeta
    spec: JobSpec


class JobTemplateSpec(K8sModel):
    metadata: ObjectMeta | None = None
    spec: JobSpec


class CronJobSpec(K8sModel):
    schedule: str = Field(min_length=1)
    jobTemplate: JobTemplateSpec
    timeZone: str | None = None
    concurrencyPolicy: Literal["Allow", "Forbid", "Replace"] | None = None
    suspend: bool | None = None
    startingDeadlineSeconds: int | None = Field(default=None, ge=0)
    successfulJobsHistoryLimit: int | None = Field(default=None, ge=0)
    failedJobsHistoryLimit: int | None = Field(default=None, ge=0)


class CronJob(K8sModel):
    metadata: ObjectMeta
    spec: CronJobSpec


class ServicePort(K8sModel):
    port: int = Field(ge=1, le=65535)
    name: str | None = None
    protocol: Protocol | None = None
    targetPort: IntOrString | None = None
    nodePort: int | None = Field(default=None, ge=0, le=65535)


class ServiceSpec(K8sModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] | None = None
    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    clusterIP: str | None = None
    externalName: str | None = None
    sessionAffinity: Literal["None", "ClientIP"] | None = None


class Service(K8sModel):
    metadata: ObjectMeta
    spec: ServiceSpec | None = None


class ConfigMap(K8sModel):
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    binaryData: dict[str, str] | None = None
    immutable: bool | None = None


class Secret(K8sModel):
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    stringData: dict[str, str] | None = None
    type: str | None = None
    immutable: bool | None = None


class Namespace(K8sModel):
    metadata: ObjectMeta


class Taint(K8sModel):
    key: str = Field(min_length=1)
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodeSpec(K8sModel):
    podCIDR: str | None = None
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class Node(K8sModel):
    metadata: ObjectMeta
    spec: NodeSpec | None = None


class ObjectReference(K8sModel):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    apiVersion: str | None = None


class Event(K8sModel):
    metadata: ObjectMeta
    involvedObject: ObjectReference
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    count: int | None = None


class ServiceAccount(K8sModel):
    metadata: ObjectMeta


class LeaseSpec(K8sModel):
    holderIdentity: str | None = None
    leaseDurationSeconds: int | None = Field(default=None, ge=1)
    acquireTime: str | None = None
    renewTime: str | None = None
    leaseTransitions: int | None = Field(default=None, ge=0)


class Lease(K8sModel):
    metadata: ObjectMeta
    spec: LeaseSpec | None = None


class EndpointPort(K8sModel):
    port: int | None = None
    name: str | None = None
    protocol: Protocol | None = None


class Endpoint(K8sModel):
    addresses: list[str] = Field(min_length=1)


class EndpointSlice(K8sModel):
    metadata: ObjectMeta
    addressType: Literal["IPv4", "IPv6", "FQDN"]
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(K8sModel):
    metadata: ObjectMeta
    subsets: list[dict[str, Any]] | None = None


class PolicyRule(K8sModel):
    verbs: list[str] | None = None
    apiGroups: list[str] | None = None
    resources: list[str] | None = None
    resourceNames: list[str] | None = None
    nonResourceURLs: list[str] | None = None


class Role(K8sModel):
    metadata: ObjectMeta
    rules: list[PolicyRule] | None = None


class AggregationRule(K8sModel):
    clusterRoleSelectors: list[LabelSelector] | None = None


class ClusterRole(K8sModel):
    metadata: ObjectMeta
    rules: list[PolicyRule] | None = None
    aggregationRule: AggregationRule | None = None


class RoleRef(K8sModel):
    apiGroup: str | None = None
    kind: str | None = None
    name: str | None = None


class Subject(K8sModel):
    kind: str | None = None
    apiGroup: str | None = None
    name: str | None = None
    namespace: str | None = None


class RoleBinding(K8sModel):
    metadata: ObjectMeta
    subjects: list[Subject] | None = None
    roleRef: RoleRef | None = None


class ClusterRoleBinding(K8sModel):
    metadata: ObjectMeta
    subjects: list[Subject] | None = None
    roleRef: RoleRef | None = None


ObjectMeta.model_rebuild()

KIND_MODELS: dict[str, type[K8sModel]] = {
    m.__name__: m
    for m in (
        Pod,
        Deployment,
        ReplicaSet,
        ReplicationController,
        DaemonSet,
        StatefulSet,
        ControllerRevision,
        Job,
        CronJob,
        Service,
        ConfigMap,
        Secret,
        Namespace,
        Node,
        Event,
        ServiceAccount,
        Lease,
        EndpointSlice,
        Endpoints,
        Role,
        ClusterRole,
        RoleBinding,
        ClusterRoleBinding,
    )
}


@functools.cache
def validator_of(model: type[K8sModel]) -> SchemaValidator:
    """`model.model_validate` as a verdict: the same checks and errors, plain dicts built instead of models."""
    return SchemaValidator(_as_typed_dicts(model.__pydantic_core_schema__))


def _as_typed_dicts(schema: Any) -> Any:
    """A copy of a core schema with each model schema replaced by the typed dict of its fields (a field with
    a default is not required; undeclared fields are ignored, where a model would keep them as extras)."""
    if isinstance(schema, list):
        return [_as_typed_dicts(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") != "model":
        return {k: _as_typed_dicts(v) for k, v in schema.items()}
    fields = schema["schema"]
    assert fields["type"] == "model-fields", fields["type"]
    # the models use the JSON names themselves; an alias would need the model's populate_by_name carried over
    assert not any("validation_alias" in f for f in fields["fields"].values()), "an aliased field"
    typed: dict[str, Any] = {
        "type": "typed-dict",
        "extra_behavior": "ignore",
        "fields": {
            name: {
                "type": "typed-dict-field",
                "schema": _as_typed_dicts(field["schema"]),
                "required": field["schema"]["type"] != "default",
            }
            for name, field in fields["fields"].items()
        },
    }
    if "ref" in schema:
        typed["ref"] = schema["ref"]
    return typed
