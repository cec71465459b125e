"""The resource table: every kind tinykube serves, with group, version, scope and names."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = [
    "EVENTS_V1",
    "RESOURCES",
    "ResourceInfo",
    "by_kind",
    "by_plural",
    "group_versions",
    "served_resources",
    "version_priority",
]

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class ResourceInfo:
    """Describes one served resource, the way discovery and the storage keys name it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    has_status: bool = False
    verbs: tuple[str, ...] = VERBS
    also_served: tuple[str, ...] = ()
    """Older versions serving the same objects, converted from this (the storage) version."""
    custom: bool = False
    """Served from a CustomResourceDefinition: stored under group-qualified etcd keys."""
    singular_name: str = ""
    """discovery's singularName when it is not the lower-case kind (a CRD's spec.names.singular)."""
    list_kind_name: str = ""
    """The list's kind when it is not `<Kind>List` (a CRD's spec.names.listKind)."""
    pod_spec: str = ""
    """Where the kind keeps a PodSpec (`spec/template/spec`): strategic merge patches merge its lists by key."""

    @property
    def singular(self) -> str:
        """discovery's singularName: the lower-case kind unless named otherwise."""
        return self.singular_name or self.kind.lower()

    @property
    def api_version(self) -> str:
        """`group/version`, or just `version` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`plural.group` as used in error messages (`deployments.apps`)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_name(self) -> str:
        """The etcd key segment after `/registry/`: the plural, or `<group>/<plural>` for a custom resource
        (upstream's key root), so a custom resource never shares keys with a built-in one."""
        return f"{self.group}/{self.plural}" if self.custom else self.plural

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects."""
        return self.list_kind_name or f"{self.kind}List"

    def base_path(self, namespace: str | None = None) -> str:
        """URL of the collection, optionally in a namespace."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


def _r(group: str, kind: str, plural: str, **kw: object) -> ResourceInfo:
    return ResourceInfo(group=group, version="v1", kind=kind, plural=plural, **kw)  # type: ignore[arg-type]


_ALL = ("all",)
_AUTHZ = "authorization.k8s.io"
_SCALE_STATUS = ("status", "scale")

RESOURCES: tuple[ResourceInfo, ...] = (
    _r(
        "",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        subresources=("status", "finalize"),
        has_status=True,
    ),
    _r(
        "",
        "Pod",
        "pods",
        pod_spec="spec",
        short_names=("po",),
        categories=_ALL,
        subresources=("status", "binding", "eviction", "log", "exec", "attach", "portforward", "ephemeralcontainers"),
        has_status=True,
    ),
    _r(
        "",
        "Node",
        "nodes",
        namespaced=False,
        short_names=("no",),
        subresources=("status",),
        has_status=True,
    ),
    _r(
        "",
        "Service",
        "services",
        short_names=("svc",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
    ),
    _r("", "Endpoints", "endpoints", short_names=("ep",)),
    _r(
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short_names=("pvc",),
        subresources=("status",),
        has_status=True,
    ),
    _r("", "ConfigMap", "configmaps", short_names=("cm",)),
    _r("", "Secret", "secrets"),
    _r("", "Event", "events", short_names=("ev",)),
    _r("", "ServiceAccount", "serviceaccounts", short_names=("sa",), subresources=("token",)),
    _r("", "LimitRange", "limitranges", short_names=("limits",)),
    _r(
        "",
        "ResourceQuota",
        "resourcequotas",
        short_names=("quota",),
        subresources=("status",),
        has_status=True,
    ),
    _r(
        "",
        "ReplicationController",
        "replicationcontrollers",
        pod_spec="spec/template/spec",
        short_names=("rc",),
        categories=_ALL,
        subresources=_SCALE_STATUS,
        has_status=True,
    ),
    _r(
        "apps",
        "Deployment",
        "deployments",
        pod_spec="spec/template/spec",
        short_names=("deploy",),
        categories=_ALL,
        subresources=_SCALE_STATUS,
        has_status=True,
    ),
    _r(
        "apps",
        "ReplicaSet",
        "replicasets",
        pod_spec="spec/template/spec",
        short_names=("rs",),
        categories=_ALL,
        subresources=_SCALE_STATUS,
        has_status=True,
    ),
    _r(
        "apps",
        "DaemonSet",
        "daemonsets",
        pod_spec="spec/template/spec",
        short_names=("ds",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
    ),
    _r(
        "apps",
        "StatefulSet",
        "statefulsets",
        pod_spec="spec/template/spec",
        short_names=("sts",),
        categories=_ALL,
        subresources=_SCALE_STATUS,
        has_status=True,
    ),
    _r("apps", "ControllerRevision", "controllerrevisions"),
    _r(
        "batch",
        "Job",
        "jobs",
        pod_spec="spec/template/spec",
        categories=_ALL,
        subresources=("status",),
        has_status=True,
    ),
    _r(
        "batch",
        "CronJob",
        "cronjobs",
        pod_spec="spec/jobTemplate/spec/template/spec",
        short_names=("cj",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
    ),
    _r("coordination.k8s.io", "Lease", "leases"),
    _r(
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short_names=("pdb",),
        subresources=("status",),
        has_status=True,
    ),
    _r("scheduling.k8s.io", "PriorityClass", "priorityclasses", namespaced=False, short_names=("pc",)),
    _r("discovery.k8s.io", "EndpointSlice", "endpointslices"),
    _r(
        "networking.k8s.io",
        "Ingress",
        "ingresses",
        short_names=("ing",),
        subresources=("status",),
        has_status=True,
    ),
    _r("networking.k8s.io", "IngressClass", "ingressclasses", namespaced=False),
    _r("networking.k8s.io", "IPAddress", "ipaddresses", namespaced=False, short_names=("ip",)),
    _r(
        "networking.k8s.io",
        "ServiceCIDR",
        "servicecidrs",
        namespaced=False,
        subresources=("status",),
        has_status=True,
    ),
    _r("rbac.authorization.k8s.io", "Role", "roles"),
    _r("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    # create-only: answered in the response's status, never stored
    _r(_AUTHZ, "SubjectAccessReview", "subjectaccessreviews", namespaced=False, verbs=CREATE_ONLY),
    _r(_AUTHZ, "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False, verbs=CREATE_ONLY),
    _r(_AUTHZ, "SelfSubjectRulesReview", "selfsubjectrulesreviews", namespaced=False, verbs=CREATE_ONLY),
    _r(_AUTHZ, "LocalSubjectAccessReview", "localsubjectaccessreviews", verbs=CREATE_ONLY),
    _r("authentication.k8s.io", "TokenReview", "tokenreviews", namespaced=False, verbs=CREATE_ONLY),
    _r("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", namespaced=False, verbs=CREATE_ONLY),
    _r(
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        namespaced=False,
        categories=("api-extensions",),
    ),
    _r(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        namespaced=False,
        categories=("api-extensions",),
    ),
    ResourceInfo(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short_names=("hpa",),
        categories=_ALL,
        subresources=("status",),
        has_status=True,
        also_served=("v1",),
    ),
    _r(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        has_status=True,
    ),
    _r(
        "apiregistration.k8s.io",
        "APIService",
        "apiservices",
        namespaced=False,
        categories=("api-extensions",),
        subresources=("status",),
        has_status=True,
    ),
)

EVENTS_V1 = _r("events.k8s.io", "Event", "events")
"""events.k8s.io/v1 Events: not a resource of its own, core/v1 Events served in another group and shape."""

_BY_PLURAL = {(r.group, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.group, r.kind): r for r in RESOURCES}


def by_plural(group: str, plural: str) -> ResourceInfo | None:
    """Look a resource up by its group and plural name."""
    return _BY_PLURAL.get((group, plural))


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """Look a resource up by apiVersion (`apps/v1` or `v1`) and kind."""
    group = api_version.rpartition("/")[0]
    return _BY_KIND.get((group, kind))


def served_resources() -> list[ResourceInfo]:
    """Every resource in every version it is served in: the table's entries, then a view of each in
    each of its `also_served` versions (same objects, another version), then events.k8s.io/v1 Events
    (core Events, another group)."""
    views = [replace(r, version=v, also_served=()) for r in RESOURCES for v in r.also_served]
    return [*RESOURCES, *views, EVENTS_V1]


def group_versions() -> dict[str, list[ResourceInfo]]:
    """Served resources grouped by `group/version` (core as `v1`), in table order."""
    out: dict[str, list[ResourceInfo]] = {}
    for r in served_resources():
        out.setdefault(r.api_version, []).append(r)
    return out


_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """A sort key putting versions in Kubernetes' priority order (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > foo)."""
    m = _VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    stability = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stability, -int(m.group(1)), -int(m.group(3) or 0), version)
