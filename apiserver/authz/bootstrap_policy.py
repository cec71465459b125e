"""The default roles and bindings every cluster starts with, as upstream's bootstrappolicy.

From k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy (policy.go, namespace_policy.go):
cluster-admin, the aggregated admin/edit/view and their system:aggregate-to-* parts, system:basic-user,
system:discovery, system:public-info-viewer, system:monitoring, system:auth-delegator, system:node
(bound to nobody: the Node authorizer serves kubelets), system:node-proxier, system:kube-scheduler,
system:kube-controller-manager, system:kube-dns, system:service-account-issuer-discovery, with their
bindings and the leader-locking Roles in kube-system.

tinykube's own additions (marked below): its controller-manager runs every controller under the one
`system:kube-controller-manager` identity (upstream gives each controller its own ServiceAccount), so
`system:tinykube:controller-manager` grants what our controllers do; and the add-ons that run as
processes (cluster DNS as ServiceAccount kube-system/coredns, the ingress controller as
kube-system/ingress-nginx, metrics-server as kube-system/metrics-server) get what they read and,
through a RoleBinding in kube-system, the right to
publish their Service and EndpointSlice.

Every object carries the `kubernetes.io/bootstrapping: rbac-defaults` label and the
`rbac.authorization.kubernetes.io/autoupdate: "true"` annotation; `apiserver.authz.reconcile` writes
them at apiserver start.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AUTOUPDATE_ANNOTATION",
    "BOOTSTRAP_LABEL",
    "NODE_RULES",
    "cluster_role_bindings",
    "cluster_roles",
    "namespace_role_bindings",
    "namespace_roles",
]

AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
GROUP = "rbac.authorization.k8s.io"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
READ_WRITE = READ + WRITE

_LEGACY, _APPS, _AUTHN, _AUTHZ, _BATCH = "", "apps", "authentication.k8s.io", "authorization.k8s.io", "batch"
_COORD, _DISCOVERY, _EXT, _NET, _POLICY = (
    "coordination.k8s.io",
    "discovery.k8s.io",
    "extensions",
    "networking.k8s.io",
    "policy",
)
_STORAGE, _EVENTS, _CERTS, _AUTOSCALING = "storage.k8s.io", "events.k8s.io", "certificates.k8s.io", "autoscaling"
_AGG_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
_AGG_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
_AGG_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"


def rule(
    *verbs: str,
    groups: tuple[str, ...] = (),
    resources: tuple[str, ...] = (),
    names: tuple[str, ...] = (),
    urls: tuple[str, ...] = (),
) -> dict[str, list[str]]:
    """A PolicyRule (upstream's rbacv1helpers.NewRule(...).Groups(...).Resources(...).Names(...).URLs(...))."""
    out: dict[str, list[str]] = {"verbs": list(verbs)}
    if groups:
        out["apiGroups"] = list(groups)
    if resources:
        out["resources"] = list(resources)
    if names:
        out["resourceNames"] = list(names)
    if urls:
        out["nonResourceURLs"] = list(urls)
    return out


def _events_rule() -> dict[str, list[str]]:
    return rule("create", "update", "patch", groups=(_LEGACY, _EVENTS), resources=("events",))


def _meta(name: str, labels: dict[str, str] | None = None, namespace: str = "") -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "labels": {**(labels or {}), **BOOTSTRAP_LABEL},
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    }
    if namespace:
        m["namespace"] = namespace
    return m


def _cluster_role(
    name: str,
    rules: list[dict[str, list[str]]] | None = None,
    labels: dict[str, str] | None = None,
    aggregate: str = "",
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules or [],
    }
    if aggregate:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate: "true"}}]}
    return role


# NodeRules: what the Node authorizer grants every kubelet beyond its graph checks (and system:node's rules).
NODE_RULES: list[dict[str, list[str]]] = [
    rule("create", groups=(_AUTHN,), resources=("tokenreviews",)),
    rule("create", groups=(_AUTHZ,), resources=("subjectaccessreviews", "localsubjectaccessreviews")),
    rule(*READ, groups=(_LEGACY,), resources=("services",)),
    rule("create", "get", "list", "watch", groups=(_LEGACY,), resources=("nodes",)),
    rule("update", "patch", groups=(_LEGACY,), resources=("nodes/status",)),
    rule("update", "patch", groups=(_LEGACY,), resources=("nodes",)),
    rule("create", "update", "patch", groups=(_LEGACY,), resources=("events",)),
    rule(*READ, groups=(_LEGACY,), resources=("pods",)),
    rule("create", "delete", groups=(_LEGACY,), resources=("pods",)),
    rule("update", "patch", groups=(_LEGACY,), resources=("pods/status",)),
    rule("create", groups=(_LEGACY,), resources=("pods/eviction",)),
    rule(*READ, groups=(_LEGACY,), resources=("configmaps", "secrets")),
    rule("get", groups=(_LEGACY,), resources=("persistentvolumeclaims", "persistentvolumes")),
    rule("get", groups=(_LEGACY,), resources=("endpoints",)),
    rule("create", "get", "list", "watch", groups=(_CERTS,), resources=("certificatesigningrequests",)),
    rule("get", "create", "update", "patch", "delete", groups=(_COORD,), resources=("leases",)),
    rule("get", groups=(_STORAGE,), resources=("volumeattachments",)),
    rule("create", groups=(_LEGACY,), resources=("serviceaccounts/token",)),
    rule("get", "update", "patch", groups=(_LEGACY,), resources=("persistentvolumeclaims/status",)),
    rule(*READ, groups=(_STORAGE,), resources=("csidrivers",)),
    rule("get", "create", "update", "patch", "delete", groups=(_STORAGE,), resources=("csinodes",)),
    rule(*READ, groups=("node.k8s.io",), resources=("runtimeclasses",)),
]


def _aggregate_to_edit() -> list[dict[str, list[str]]]:
    return [
        rule(
            *READ,
            groups=(_LEGACY,),
            resources=("pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
        ),
        rule("impersonate", groups=(_LEGACY,), resources=("serviceaccounts",)),
        rule(
            *WRITE, groups=(_LEGACY,), resources=("pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward")
        ),
        rule("create", groups=(_LEGACY,), resources=("pods/eviction",)),
        rule(
            *WRITE,
            groups=(_LEGACY,),
            resources=(
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ),
        ),
        rule("create", groups=(_LEGACY,), resources=("serviceaccounts/token",)),
        rule(
            *WRITE,
            groups=(_APPS,),
            resources=(
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ),
        ),
        rule(*WRITE, groups=(_AUTOSCALING,), resources=("horizontalpodautoscalers",)),
        rule(*WRITE, groups=(_BATCH,), resources=("jobs", "cronjobs")),
        rule(
            *WRITE,
            groups=(_EXT,),
            resources=(
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ),
        ),
        rule(*WRITE, groups=(_POLICY,), resources=("poddisruptionbudgets",)),
        rule(*WRITE, groups=(_NET,), resources=("ingresses", "networkpolicies")),
        rule(*READ_WRITE, groups=(_COORD,), resources=("leases",)),
    ]


def _aggregate_to_view() -> list[dict[str, list[str]]]:
    return [
        rule(
            *READ,
            groups=(_LEGACY,),
            resources=(
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ),
        ),
        rule(
            *READ,
            groups=(_LEGACY,),
            resources=(
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ),
        ),
        rule(*READ, groups=(_LEGACY,), resources=("namespaces",)),
        rule(*READ, groups=(_DISCOVERY,), resources=("endpointslices",)),
        rule(
            *READ,
            groups=(_APPS,),
            resources=(
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ),
        ),
        rule(*READ, groups=(_AUTOSCALING,), resources=("horizontalpodautoscalers", "horizontalpodautoscalers/status")),
        rule(*READ, groups=(_BATCH,), resources=("jobs", "cronjobs", "cronjobs/status", "jobs/status")),
        rule(
            *READ,
            groups=(_EXT,),
            resources=(
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ),
        ),
        rule(*READ, groups=(_POLICY,), resources=("poddisruptionbudgets", "poddisruptionbudgets/status")),
        rule(*READ, groups=(_NET,), resources=("ingresses", "ingresses/status", "networkpolicies")),
    ]


def _kube_scheduler() -> list[dict[str, list[str]]]:
    return [
        _events_rule(),
        rule("create", groups=(_COORD,), resources=("leases",)),
        rule("get", "update", groups=(_COORD,), resources=("leases",), names=("kube-scheduler",)),
        rule(*READ, groups=(_LEGACY,), resources=("nodes",)),
        rule("get", "list", "watch", "delete", groups=(_LEGACY,), resources=("pods",)),
        rule("create", groups=(_LEGACY,), resources=("bindings", "pods/binding")),
        rule("patch", "update", groups=(_LEGACY,), resources=("pods/status",)),
        rule(*READ, groups=(_LEGACY,), resources=("replicationcontrollers", "services")),
        rule(*READ, groups=(_APPS, _EXT), resources=("replicasets",)),
        rule(*READ, groups=(_APPS,), resources=("statefulsets",)),
        rule(*READ, groups=(_POLICY,), resources=("poddisruptionbudgets",)),
        rule(*READ, groups=(_LEGACY,), resources=("persistentvolumeclaims", "persistentvolumes")),
        rule("create", groups=(_AUTHN,), resources=("tokenreviews",)),
        rule("create", groups=(_AUTHZ,), resources=("subjectaccessreviews",)),
        rule(*READ, groups=(_STORAGE,), resources=("csinodes",)),
        rule(*READ, groups=(_LEGACY,), resources=("namespaces",)),
        rule(*READ, groups=(_STORAGE,), resources=("csidrivers",)),
        rule(*READ, groups=(_STORAGE,), resources=("csistoragecapacities",)),
    ]


def _kube_controller_manager() -> list[dict[str, list[str]]]:
    return [
        _events_rule(),
        rule("create", groups=(_COORD,), resources=("leases",)),
        rule("get", "update", groups=(_COORD,), resources=("leases",), names=("kube-controller-manager",)),
        rule("create", groups=(_LEGACY,), resources=("secrets", "serviceaccounts")),
        rule("delete", groups=(_LEGACY,), resources=("secrets",)),
        rule("get", groups=(_LEGACY,), resources=("configmaps", "namespaces", "secrets", "serviceaccounts")),
        rule("update", groups=(_LEGACY,), resources=("secrets", "serviceaccounts")),
        rule("create", groups=(_AUTHN,), resources=("tokenreviews",)),
        rule("create", groups=(_AUTHZ,), resources=("subjectaccessreviews",)),
        rule("list", "watch", groups=("*",), resources=("*",)),
        rule("create", groups=(_LEGACY,), resources=("serviceaccounts/token",)),
    ]


def _tinykube_controllers() -> list[dict[str, list[str]]]:
    """tinykube: what our controllers do under the one controller-manager identity.

    The union of the upstream per-controller roles for the controllers we run: the garbage collector
    and the namespace controller read, change and delete anything; the workload controllers create
    what they own; node lifecycle, service-lb and the status writers update status subresources.
    """
    return [
        rule("get", "list", "watch", "patch", "update", "delete", "deletecollection", groups=("*",), resources=("*",)),
        rule(
            "create",
            groups=(_LEGACY,),
            resources=(
                "pods",
                "pods/eviction",
                "pods/binding",
                "endpoints",
                "serviceaccounts",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ),
        ),
        rule("create", groups=(_APPS,), resources=("replicasets", "controllerrevisions")),
        rule("create", groups=(_BATCH,), resources=("jobs",)),
        rule("create", groups=(_DISCOVERY,), resources=("endpointslices",)),
        rule("create", groups=(_NET,), resources=("ipaddresses", "servicecidrs")),
        rule("create", groups=(_EVENTS,), resources=("events",)),
        # the clusterrole-aggregation controller writes rules it need not hold itself
        rule("escalate", groups=(GROUP,), resources=("clusterroles",)),
    ]


def _addon_publisher() -> list[dict[str, list[str]]]:
    """tinykube: an add-on process applies its own Service and EndpointSlice (client/addon.publish_addon)."""
    return [
        rule("get", "create", "patch", "update", groups=(_LEGACY,), resources=("services",)),
        rule("get", "create", "patch", "update", groups=(_DISCOVERY,), resources=("endpointslices",)),
    ]


def cluster_roles() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoles."""
    return [
        _cluster_role(
            "cluster-admin",
            [rule("*", groups=("*",), resources=("*",)), rule("*", urls=("*",))],
        ),
        _cluster_role(
            "system:discovery",
            [
                rule(
                    "get",
                    urls=(
                        "/livez",
                        "/readyz",
                        "/healthz",
                        "/version",
                        "/version/",
                        "/openapi",
                        "/openapi/*",
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                    ),
                )
            ],
        ),
        _cluster_role(
            "system:monitoring",
            [
                rule(
                    "get",
                    urls=(
                        "/metrics",
                        "/metrics/slis",
                        "/livez",
                        "/readyz",
                        "/healthz",
                        "/livez/*",
                        "/readyz/*",
                        "/healthz/*",
                    ),
                )
            ],
        ),
        _cluster_role(
            "system:basic-user",
            [
                rule("create", groups=(_AUTHZ,), resources=("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                rule("create", groups=(_AUTHN,), resources=("selfsubjectreviews",)),
            ],
        ),
        _cluster_role(
            "system:public-info-viewer",
            [rule("get", urls=("/livez", "/readyz", "/healthz", "/version", "/version/"))],
        ),
        _cluster_role("admin", aggregate=_AGG_ADMIN),
        _cluster_role("edit", labels={_AGG_ADMIN: "true"}, aggregate=_AGG_EDIT),
        _cluster_role("view", labels={_AGG_EDIT: "true"}, aggregate=_AGG_VIEW),
        _cluster_role(
            "system:aggregate-to-admin",
            [
                rule("create", groups=(_AUTHZ,), resources=("localsubjectaccessreviews",)),
                rule(*READ_WRITE, groups=(GROUP,), resources=("roles", "rolebindings")),
            ],
            labels={_AGG_ADMIN: "true"},
        ),
        _cluster_role("system:aggregate-to-edit", _aggregate_to_edit(), labels={_AGG_EDIT: "true"}),
        _cluster_role("system:aggregate-to-view", _aggregate_to_view(), labels={_AGG_VIEW: "true"}),
        _cluster_role(
            "system:auth-delegator",
            [
                rule("create", groups=(_AUTHN,), resources=("tokenreviews",)),
                rule("create", groups=(_AUTHZ,), resources=("subjectaccessreviews",)),
            ],
        ),
        _cluster_role("system:node", NODE_RULES),
        _cluster_role(
            "system:node-proxier",
            [
                rule("list", "watch", groups=(_LEGACY,), resources=("services", "endpoints")),
                rule(*READ, groups=(_LEGACY,), resources=("nodes",)),
                _events_rule(),
                rule("list", "watch", groups=(_DISCOVERY,), resources=("endpointslices",)),
            ],
        ),
        _cluster_role("system:kube-controller-manager", _kube_controller_manager()),
        _cluster_role("system:kube-scheduler", _kube_scheduler()),
        _cluster_role(
            "system:kube-dns", [rule("list", "watch", groups=(_LEGACY,), resources=("endpoints", "services"))]
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [rule("get", urls=("/.well-known/openid-configuration", "/openid/v1/jwks"))],
        ),
        # --- tinykube additions ---
        _cluster_role("system:tinykube:controller-manager", _tinykube_controllers()),
        _cluster_role(
            "system:tinykube:cluster-dns",
            [
                rule("list", "watch", groups=(_LEGACY,), resources=("services", "namespaces")),
                rule("list", "watch", groups=(_DISCOVERY,), resources=("endpointslices",)),
            ],
        ),
        _cluster_role(
            "system:tinykube:ingress-controller",
            [
                rule("list", "watch", groups=(_LEGACY,), resources=("services",)),
                rule("list", "watch", groups=(_DISCOVERY,), resources=("endpointslices",)),
                rule("get", "list", "watch", groups=(_NET,), resources=("ingresses", "ingressclasses")),
                rule("update", "patch", groups=(_NET,), resources=("ingresses/status",)),
                # it applies its own IngressClass (--ingress-class) at start
                rule("create", "patch", "update", groups=(_NET,), resources=("ingressclasses",)),
                rule("create", "patch", "update", groups=(_LEGACY,), resources=("events",)),
            ],
        ),
        _cluster_role("system:tinykube:addon-publisher", _addon_publisher()),
        # metrics-server's own ClusterRole (its manifests' system:metrics-server), plus its APIService
        _cluster_role(
            "system:metrics-server",
            [
                rule("get", groups=(_LEGACY,), resources=("nodes/metrics",)),
                rule("get", "list", "watch", groups=(_LEGACY,), resources=("pods", "nodes")),
                rule(
                    "get",
                    "create",
                    "patch",
                    "update",
                    groups=("apiregistration.k8s.io",),
                    resources=("apiservices",),
                    names=("v1beta1.metrics.k8s.io",),
                ),
                rule("create", groups=("apiregistration.k8s.io",), resources=("apiservices",)),
            ],
        ),
    ]


def _subject(kind: str, name: str, namespace: str = "") -> dict[str, str]:
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "apiGroup": GROUP, "name": name}


def _binding(
    kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, str]], namespace: str = ""
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": kind,
        "metadata": _meta(name, namespace=namespace),
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def _crb(role: str, *subjects: dict[str, str], name: str = "") -> dict[str, Any]:
    return _binding("ClusterRoleBinding", name or role, "ClusterRole", role, list(subjects))


def cluster_role_bindings() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoleBindings."""
    sa = "ServiceAccount"
    return [
        _crb("cluster-admin", _subject("Group", "system:masters")),
        _crb("system:monitoring", _subject("Group", "system:monitoring")),
        _crb("system:discovery", _subject("Group", "system:authenticated")),
        _crb("system:basic-user", _subject("Group", "system:authenticated")),
        _crb(
            "system:public-info-viewer",
            _subject("Group", "system:authenticated"),
            _subject("Group", "system:unauthenticated"),
        ),
        _crb("system:node-proxier", _subject("User", "system:kube-proxy")),
        _crb("system:kube-controller-manager", _subject("User", "system:kube-controller-manager")),
        _crb("system:kube-dns", _subject(sa, "kube-dns", "kube-system")),
        _crb("system:kube-scheduler", _subject("User", "system:kube-scheduler")),
        _crb("system:service-account-issuer-discovery", _subject("Group", "system:serviceaccounts")),
        # deprecated since the Node authorizer: kept with no subjects, as upstream
        _crb("system:node"),
        # --- tinykube additions ---
        _crb("system:tinykube:controller-manager", _subject("User", "system:kube-controller-manager")),
        _crb("system:tinykube:cluster-dns", _subject(sa, "coredns", "kube-system")),
        _crb("system:tinykube:ingress-controller", _subject(sa, "ingress-nginx", "kube-system")),
        _crb("system:metrics-server", _subject(sa, "metrics-server", "kube-system")),
    ]


def namespace_roles() -> list[dict[str, Any]]:
    """The bootstrap Roles (namespace_policy.go's leader-locking Roles in kube-system)."""
    lease_lock = [
        rule("watch", groups=(_LEGACY,), resources=("configmaps",)),
    ]
    return [
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Role",
            "metadata": _meta(name, namespace="kube-system"),
            "rules": [*lease_lock, rule("get", "update", groups=(_LEGACY,), resources=("configmaps",), names=(owner,))],
        }
        for name, owner in (
            ("system::leader-locking-kube-controller-manager", "kube-controller-manager"),
            ("system::leader-locking-kube-scheduler", "kube-scheduler"),
        )
    ]


def namespace_role_bindings() -> list[dict[str, Any]]:
    """The bootstrap RoleBindings (kube-system), tinykube's add-on publishers included."""
    rb = "RoleBinding"
    return [
        _binding(
            rb,
            "system::leader-locking-kube-controller-manager",
            "Role",
            "system::leader-locking-kube-controller-manager",
            [_subject("User", "system:kube-controller-manager")],
            "kube-system",
        ),
        _binding(
            rb,
            "system::leader-locking-kube-scheduler",
            "Role",
            "system::leader-locking-kube-scheduler",
            [_subject("User", "system:kube-scheduler")],
            "kube-system",
        ),
        # --- tinykube additions ---
        _binding(
            rb,
            "system:tinykube:addon-publisher",
            "ClusterRole",
            "system:tinykube:addon-publisher",
            [
                _subject("ServiceAccount", "coredns", "kube-system"),
                _subject("ServiceAccount", "ingress-nginx", "kube-system"),
                _subject("ServiceAccount", "metrics-server", "kube-system"),
            ],
            "kube-system",
        ),
    ]
