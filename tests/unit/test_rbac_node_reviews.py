"""The Node authorizer's graph, NodeRestriction's pure checks, access reviews, escalation checks and
impersonation, on policies built in memory (the integration tests run them in a real apiserver)."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.errors import StatusError
from apimachinery.resources import by_plural
from apiserver.admission import AdmissionAttributes
from apiserver.admission.noderestriction import NodeRestriction, forbidden_node_labels
from apiserver.authn.impersonation import impersonate
from apiserver.authz import Attributes, Verdict
from apiserver.authz.escalation import EscalationCheck
from apiserver.authz.node import NodeAuthorizer, NodeGraph, node_identity
from apiserver.authz.privileged import PrivilegedGroups
from apiserver.authz.rbac import PolicyIndex, RBACAuthorizer
from apiserver.authz.request import authorization_name, authorization_namespace
from apiserver.authz.reviews import create_review
from apiserver.context import RequestContext, UserInfo
from apiserver.request_info import parse_path

NODE1 = UserInfo("system:node:node-1", groups=("system:nodes", "system:authenticated"))
GROUP = "rbac.authorization.k8s.io"


def pod(name: str, node: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}, "spec": {"nodeName": node, **spec}}


def node_graph(*pods: dict[str, Any]) -> NodeAuthorizer:
    graph = NodeGraph()
    for p in pods:
        graph.apply("ADDED", p)
    return NodeAuthorizer(graph)


def ask(verb: str, resource: str, ns: str = "default", name: str = "", sub: str = "", group: str = "") -> Attributes:
    return Attributes(NODE1, verb, True, ns, group, "v1", resource, sub, name)


def test_node_identity() -> None:
    assert node_identity(NODE1) == ("node-1", True)
    assert node_identity(UserInfo("system:node:node-1")) == ("", False)  # not in system:nodes
    assert node_identity(UserInfo("alice", groups=("system:nodes",))) == ("", False)


async def test_node_reads_only_what_its_pods_use() -> None:
    uses = pod(
        "web",
        "node-1",
        volumes=[
            {"name": "s", "secret": {"secretName": "vol-secret"}},
            {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}]}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
        ],
        containers=[{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-secret"}}}]}],
        imagePullSecrets=[{"name": "pull"}],
        serviceAccountName="web-sa",
    )
    other = pod("db", "node-2", volumes=[{"name": "s", "secret": {"secretName": "db-secret"}}])
    a = node_graph(uses, other)
    for name in ("vol-secret", "env-secret", "pull"):
        assert (await a.authorize(ask("get", "secrets", name=name))).verdict is Verdict.ALLOW, name
    assert (await a.authorize(ask("get", "configmaps", name="proj-cm"))).verdict is Verdict.ALLOW
    assert (await a.authorize(ask("get", "persistentvolumeclaims", name="data"))).verdict is Verdict.ALLOW
    assert (await a.authorize(ask("create", "serviceaccounts", name="web-sa", sub="token"))).verdict is Verdict.ALLOW
    denied = await a.authorize(ask("get", "secrets", name="db-secret"))
    assert (denied.verdict, denied.reason) == (
        Verdict.NO_OPINION,
        "no relationship found between node 'node-1' and this object",
    )
    assert (await a.authorize(ask("list", "secrets"))).reason == "No Object name found"
    assert (await a.authorize(ask("update", "secrets", name="vol-secret"))).reason == (
        "can only read resources of this type"
    )
    # the pod moves away: its secrets go with it
    a.graph.apply("DELETED", uses)
    assert (await a.authorize(ask("get", "secrets", name="vol-secret"))).verdict is Verdict.NO_OPINION


async def test_node_leases_and_static_rules() -> None:
    a = node_graph()
    lease = ask("update", "leases", "kube-node-lease", "node-1", group="coordination.k8s.io")
    assert (await a.authorize(lease)).verdict is Verdict.ALLOW
    other = ask("update", "leases", "kube-node-lease", "node-2", group="coordination.k8s.io")
    assert (await a.authorize(other)).reason == "can only access node lease with the same name as the requesting node"
    assert (await a.authorize(ask("update", "pods", name="p", sub="status"))).verdict is Verdict.ALLOW
    assert (await a.authorize(ask("create", "events"))).verdict is Verdict.ALLOW
    assert (await a.authorize(ask("delete", "services", name="x"))).verdict is Verdict.NO_OPINION
    alice = Attributes(UserInfo("alice"), "get", True, "default", "", "v1", "secrets", "", "x")
    assert (await a.authorize(alice)).verdict is Verdict.NO_OPINION


def _admission(
    op: str, plural: str, obj: Any, old: Any, name: str = "", sub: str = "", ns: str = "default"
) -> AdmissionAttributes:
    res = by_plural("coordination.k8s.io" if plural == "leases" else "", plural)
    assert res is not None
    return AdmissionAttributes(op, res, sub, ns, name, obj, old, NODE1)


async def test_node_restriction_pod_status_of_another_node() -> None:
    plugin = NodeRestriction()
    theirs = pod("p", "node-2")
    attrs = _admission("UPDATE", "pods", theirs, theirs, "p", "status")
    assert plugin.handles(attrs)
    with pytest.raises(StatusError) as e:
        await plugin.validate(attrs, None)  # type: ignore[arg-type]
    assert e.value.code == 403
    assert e.value.message == (
        'pods "p" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName set to itself'
    )
    mine = pod("p", "node-1")
    await plugin.validate(_admission("UPDATE", "pods", mine, mine, "p", "status"), None)  # type: ignore[arg-type]
    relabelled = {**mine, "metadata": {**mine["metadata"], "labels": {"x": "y"}}}
    with pytest.raises(StatusError, match="cannot update labels through pod status"):
        await plugin.validate(_admission("UPDATE", "pods", relabelled, mine, "p", "status"), None)  # type: ignore[arg-type]


async def test_node_restriction_nodes_and_leases() -> None:
    plugin = NodeRestriction()
    other = {"metadata": {"name": "node-2"}}
    with pytest.raises(StatusError, match='node "node-1" is not allowed to modify node "node-2"'):
        await plugin.validate(_admission("UPDATE", "nodes", other, other, "node-2", ns=""), None)  # type: ignore[arg-type]
    old = {"metadata": {"name": "node-1"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    new = {"metadata": {"name": "node-1"}, "spec": {}}
    with pytest.raises(StatusError, match="not allowed to modify taints"):
        await plugin.validate(_admission("UPDATE", "nodes", new, old, "node-1", ns=""), None)  # type: ignore[arg-type]
    lease = {"metadata": {"name": "node-2"}}
    with pytest.raises(StatusError, match="same name as the requesting node"):
        await plugin.validate(_admission("CREATE", "leases", lease, None, ns="kube-node-lease"), None)  # type: ignore[arg-type]
    labels = {"kubernetes.io/hostname": "n", "node-role.kubernetes.io/master": "", "example.com/x": "1"}
    assert forbidden_node_labels(labels, None) == ["node-role.kubernetes.io/master"]
    assert forbidden_node_labels({"node-restriction.kubernetes.io/a": "b"}, {}) == ["node-restriction.kubernetes.io/a"]


def _policy() -> RBACAuthorizer:
    index = PolicyIndex()
    index.apply(
        "roles",
        "ADDED",
        {
            "metadata": {"name": "pod-reader", "namespace": "demo"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        },
    )
    index.apply(
        "rolebindings",
        "ADDED",
        {
            "metadata": {"name": "read-pods", "namespace": "demo"},
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "name": "alice"}],
        },
    )
    index.apply(
        "clusterroles",
        "ADDED",
        {
            "metadata": {"name": "secrets"},
            "rules": [
                {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]},
                {"verbs": ["get"], "nonResourceURLs": ["/x"]},
            ],
        },
    )
    return RBACAuthorizer(index)


async def test_access_reviews() -> None:
    rbac = _policy()
    authorizers = [PrivilegedGroups(("system:masters",)), rbac]
    alice = UserInfo("alice", groups=("system:authenticated",))
    ssar = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "demo", "verb": "list", "resource": "pods"}},
    }
    out = await create_review("SelfSubjectAccessReview", ssar, user=alice, namespace="", authorizers=authorizers)
    assert out["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "read-pods/demo" of Role "pod-reader" to User "alice"',
    }
    ssar["spec"]["resourceAttributes"]["namespace"] = "other"
    out = await create_review("SelfSubjectAccessReview", ssar, user=alice, namespace="", authorizers=authorizers)
    assert out["status"] == {"allowed": False}
    sar = {"spec": {"user": "alice", "resourceAttributes": {"namespace": "demo", "verb": "get", "resource": "pods"}}}
    out = await create_review("SubjectAccessReview", sar, user=None, namespace="", authorizers=authorizers)
    assert out["status"]["allowed"] is True and out["kind"] == "SubjectAccessReview"
    with pytest.raises(StatusError) as e:
        await create_review("SubjectAccessReview", {"spec": {}}, user=None, namespace="", authorizers=authorizers)
    assert e.value.code == 422
    assert e.value.message == (
        'SubjectAccessReview.authorization.k8s.io "" is invalid: [spec.resourceAttributes: Invalid value: "null": '
        "exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "
        '"": at least one of user or group must be specified]'
    )
    ssrr = {"spec": {"namespace": "demo"}}
    out = await create_review("SelfSubjectRulesReview", ssrr, user=alice, namespace="", authorizers=authorizers)
    assert out["status"] == {
        "resourceRules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        "nonResourceRules": [],
        "incomplete": False,
    }


async def test_escalation_refused_unless_held_or_bind() -> None:
    rbac = _policy()
    check = EscalationCheck(rbac, [PrivilegedGroups(("system:masters",)), rbac])
    alice = UserInfo("alice", groups=("system:authenticated",))
    roles = by_plural(GROUP, "roles")
    bindings = by_plural(GROUP, "rolebindings")
    assert roles is not None and bindings is not None
    held = {"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}
    await check.validate(AdmissionAttributes("CREATE", roles, "", "demo", "r", held, None, alice), None)  # type: ignore[arg-type]
    wider = {
        "metadata": {"name": "r"},
        "rules": [{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "secrets"]}],
    }
    with pytest.raises(StatusError) as e:
        await check.validate(AdmissionAttributes("CREATE", roles, "", "demo", "r", wider, None, alice), None)  # type: ignore[arg-type]
    assert e.value.code == 403
    assert e.value.message == (
        'roles.rbac.authorization.k8s.io "r" is forbidden: user "alice" (groups=["system:authenticated"]) is '
        "attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}'
    )
    binding = {
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "secrets"},
        "subjects": [{"kind": "User", "name": "bob"}],
    }
    with pytest.raises(StatusError, match="attempting to grant RBAC permissions not currently held"):
        await check.validate(AdmissionAttributes("CREATE", bindings, "", "demo", "b", binding, None, alice), None)  # type: ignore[arg-type]
    # binding a role one holds is fine; so is anything for system:masters
    binding["roleRef"] = {"apiGroup": GROUP, "kind": "Role", "name": "pod-reader"}
    await check.validate(AdmissionAttributes("CREATE", bindings, "", "demo", "b", binding, None, alice), None)  # type: ignore[arg-type]
    admin = UserInfo("root", groups=("system:masters",))
    await check.validate(AdmissionAttributes("CREATE", roles, "", "demo", "r", wider, None, admin), None)  # type: ignore[arg-type]


async def test_impersonation() -> None:
    rbac = _policy()
    rbac.index.apply(
        "clusterroles",
        "ADDED",
        {"metadata": {"name": "imp"}, "rules": [{"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"]}]},
    )
    rbac.index.apply(
        "clusterrolebindings",
        "ADDED",
        {
            "metadata": {"name": "imp"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "imp"},
            "subjects": [{"kind": "User", "name": "alice"}],
        },
    )
    authorizers = [PrivilegedGroups(("system:masters",)), rbac]

    def ctx(user: UserInfo, headers: dict[str, str]) -> RequestContext:
        return RequestContext("GET", "/api/v1/pods", "list", None, headers=headers, user=user)

    alice = UserInfo("alice", groups=("system:authenticated",))
    c = ctx(alice, {"impersonate-user": "bob", "accept": "application/json"})
    await impersonate(c, authorizers)
    assert c.user == UserInfo("bob", groups=("system:authenticated",))
    assert c.authenticated_user == alice and c.headers == {"accept": "application/json"}

    c = ctx(alice, {"impersonate-user": "bob"})
    with pytest.raises(StatusError) as e:
        await impersonate(c, authorizers, [("Impersonate-User", "bob"), ("Impersonate-Group", "admins")])
    assert e.value.message == (
        'groups "admins" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" '
        "at the cluster scope"
    )
    c = ctx(UserInfo("root", groups=("system:masters",)), {})
    await impersonate(
        c,
        authorizers,
        [("Impersonate-User", "system:serviceaccount:demo:reader")],
    )
    assert c.user is not None and c.user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:demo",
        "system:authenticated",
    )
    with pytest.raises(StatusError) as e:
        await impersonate(ctx(alice, {}), authorizers, [("Impersonate-Group", "x")])
    assert e.value.code == 500


def test_authorization_name_and_namespace() -> None:
    secrets = parse_path("/api/v1/namespaces/ns/secrets")
    assert secrets is not None
    assert authorization_name(secrets, "watch", {"fieldSelector": "metadata.name=s1"}) == "s1"
    assert authorization_name(secrets, "list", {"fieldSelector": "metadata.name=s1,type=x"}) == "s1"
    assert authorization_name(secrets, "list", {"fieldSelector": "metadata.name!=s1"}) == ""
    assert authorization_name(secrets, "list", {"fieldSelector": "metadata.name=a/b"}) == ""
    assert authorization_name(secrets, "list", {}) == ""
    assert authorization_name(secrets, "deletecollection", {"fieldSelector": "metadata.name=s1"}) == ""
    namespace = parse_path("/api/v1/namespaces/ns")
    assert namespace is not None and authorization_namespace(namespace) == "ns"
    assert authorization_namespace(secrets) == "ns"


async def test_local_subject_access_review_is_bound_to_its_namespace() -> None:
    rbac = _policy()
    authorizers = [PrivilegedGroups(("system:masters",)), rbac]
    lsar = {"spec": {"user": "alice", "resourceAttributes": {"namespace": "demo", "verb": "list", "resource": "pods"}}}
    out = await create_review("LocalSubjectAccessReview", lsar, user=None, namespace="demo", authorizers=authorizers)
    assert out["metadata"]["namespace"] == "demo" and out["status"]["allowed"] is True
    with pytest.raises(StatusError) as e:
        await create_review("LocalSubjectAccessReview", lsar, user=None, namespace="other", authorizers=authorizers)
    assert e.value.message == (
        'LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: '
        'Invalid value: "demo": must match metadata.namespace'
    )


def test_rbac_printers() -> None:
    from datetime import UTC, datetime

    from apiserver.printers import printer_for

    binding = {
        "metadata": {"name": "b", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "demo"},
        ],
    }
    now = datetime(2024, 1, 2, 3, 14, 5, tzinfo=UTC)
    printer = printer_for("RoleBinding")
    assert [c["name"] for c in printer.column_definitions()] == [
        "Name",
        "Role",
        "Age",
        "Users",
        "Groups",
        "ServiceAccounts",
    ]
    assert printer.row(binding, now)["cells"] == ["b", "ClusterRole/view", "10m", "alice, bob", "devs", "demo/sa"]
    role = printer_for("ClusterRole")
    assert [(c["name"], c["type"]) for c in role.column_definitions()] == [("Name", "string"), ("Created At", "date")]
    assert role.row(binding, now)["cells"] == ["b", "2024-01-02T03:04:05Z"]
