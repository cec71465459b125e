"""RBAC rule evaluation, covering and the policy index, table-driven from upstream's rbac tests
(plugin/pkg/auth/authorizer/rbac/rbac_test.go, component-helpers' policy_comparator_test.go)."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.authz import Attributes, Verdict
from apiserver.authz.messages import forbidden
from apiserver.authz.rbac import PolicyIndex, RBACAuthorizer
from apiserver.authz.rules import Rule, compact_rules, compact_string, covers, rule_allows
from apiserver.context import UserInfo

GROUP = "rbac.authorization.k8s.io"


def new_rule(verbs: str, groups: str = "", resources: str = "", urls: str = "", names: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": verbs.split(",")}
    if groups or resources:
        out["apiGroups"], out["resources"] = groups.split(","), resources.split(",")
    if urls:
        out["nonResourceURLs"] = urls.split(",")
    if names:
        out["resourceNames"] = names.split(",")
    return out


def res(user: str, groups: str, verb: str, resource: str, sub: str = "", ns: str = "", group: str = "", name: str = ""):
    return Attributes(
        UserInfo(user, groups=tuple(g for g in groups.split(",") if g)), verb, True, ns, group, "", resource, sub, name
    )


def url(verb: str, path: str, user: str = "", groups: tuple[str, ...] = ()) -> Attributes:
    return Attributes(UserInfo(user, groups=groups), verb, False, path=path)


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": list(rules)}


def role(ns: str, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def _subjects(subjects: tuple[str, ...]) -> list[dict[str, str]]:
    out = []
    for s in subjects:
        kind, _, name = s.partition(":")
        entry = {"kind": kind, "name": name}
        if kind == "ServiceAccount" and "/" in name:
            entry["namespace"], entry["name"] = name.split("/")
        out.append(entry)
    return out


def crb(role_name: str, *subjects: str, name: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name or f"crb-{role_name}"},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role_name},
        "subjects": _subjects(subjects),
    }


def rb(ns: str, kind: str, role_name: str, *subjects: str, name: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name or f"rb-{role_name}", "namespace": ns},
        "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role_name},
        "subjects": _subjects(subjects),
    }


def authorizer(
    roles: list[dict[str, Any]] = (),  # type: ignore[assignment]
    cluster_roles: list[dict[str, Any]] = (),  # type: ignore[assignment]
    bindings: list[dict[str, Any]] = (),  # type: ignore[assignment]
    cluster_bindings: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> RBACAuthorizer:
    index = PolicyIndex()
    for plural, objs in (
        ("roles", roles),
        ("clusterroles", cluster_roles),
        ("rolebindings", bindings),
        ("clusterrolebindings", cluster_bindings),
    ):
        for obj in objs:
            index.apply(plural, "ADDED", obj)
    return RBACAuthorizer(index)


async def allowed(a: RBACAuthorizer, attrs: Attributes) -> bool:
    return (await a.authorize(attrs)).verdict is Verdict.ALLOW


CASES = [
    (  # a ClusterRole bound in one namespace by a RoleBinding
        dict(
            cluster_roles=[cluster_role("admin", new_rule("*", "*", "*", "*"))],
            bindings=[rb("ns1", "ClusterRole", "admin", "User:admin", "Group:admins")],
        ),
        [
            res("admin", "", "get", "Pods", ns="ns1"),
            res("admin", "", "watch", "Pods", ns="ns1"),
            res("admin", "group1", "watch", "Foobar", ns="ns1"),
            res("joe", "admins", "watch", "Foobar", ns="ns1"),
            res("joe", "group1,admins", "watch", "Foobar", ns="ns1"),
        ],
        [
            res("admin", "", "GET", "Pods", ns="ns2"),
            res("admin", "", "GET", "Nodes"),
            res("admin", "admins", "GET", "Pods", ns="ns2"),
            res("admin", "admins", "GET", "Nodes"),
        ],
    ),
    (  # non-resource URLs: exact, `*` verb, trailing-* prefix
        dict(
            cluster_roles=[
                cluster_role("getter", new_rule("get", urls="/apis")),
                cluster_role("any", new_rule("*", urls="/apis")),
                cluster_role("prefix", new_rule("get", urls="/apis/*")),
            ],
            cluster_bindings=[
                crb("getter", "User:foo", "Group:bar"),
                crb("any", "User:admin", "Group:admin"),
                crb("prefix", "User:prefixed", "Group:prefixed"),
            ],
        ),
        [
            url("get", "/apis", "foo"),
            url("get", "/apis", groups=("bar",)),
            url("get", "/apis", "admin"),
            url("watch", "/apis", "admin"),
            url("watch", "/apis", groups=("admin",)),
            url("get", "/apis/v1", "prefixed"),
            url("get", "/apis/v1/foobar", groups=("prefixed",)),
        ],
        [
            url("watch", "/apis", "foo"),
            url("watch", "/apis", groups=("bar",)),
            url("get", "/api/v1", "foo"),
            url("get", "/api/v1", "admin"),
            url("get", "/api/v1", "prefixed"),
        ],
    ),
    (  # a rule on `pods` does not reach pods/status
        dict(
            cluster_roles=[cluster_role("admin", new_rule("*", "*", "pods"))],
            bindings=[rb("ns1", "ClusterRole", "admin", "User:admin")],
        ),
        [res("admin", "", "get", "pods", ns="ns1")],
        [res("admin", "", "get", "pods", "status", ns="ns1")],
    ),
    (  # and `pods/status` does not reach pods
        dict(
            cluster_roles=[cluster_role("admin", new_rule("*", "*", "pods/status"))],
            bindings=[rb("ns1", "ClusterRole", "admin", "User:admin")],
        ),
        [res("admin", "", "get", "pods", "status", ns="ns1")],
        [res("admin", "", "get", "pods", ns="ns1")],
    ),
    (  # a Role binds only in its namespace; ServiceAccount subjects default to the binding's namespace
        dict(
            roles=[role("demo", "reader", new_rule("get,list,watch", "", "pods"))],
            bindings=[rb("demo", "Role", "reader", "ServiceAccount:reader")],
        ),
        [res("system:serviceaccount:demo:reader", "", "list", "pods", ns="demo")],
        [
            res("system:serviceaccount:demo:reader", "", "list", "pods", ns="kube-system"),
            res("system:serviceaccount:demo:reader", "", "list", "secrets", ns="demo"),
            res("system:serviceaccount:other:reader", "", "list", "pods", ns="demo"),
            res("system:serviceaccount:demo:reader", "", "list", "pods"),
        ],
    ),
    (  # a ClusterRoleBinding to a ServiceAccount of another namespace, resourceNames, */subresource
        dict(
            cluster_roles=[
                cluster_role("named", new_rule("get,update", "", "configmaps", names="one,two")),
                cluster_role("scale", new_rule("update", "apps", "*/scale")),
            ],
            cluster_bindings=[crb("named", "ServiceAccount:kube-system/ctl"), crb("scale", "User:scaler")],
        ),
        [
            res("system:serviceaccount:kube-system:ctl", "", "get", "configmaps", ns="a", name="one"),
            res("system:serviceaccount:kube-system:ctl", "", "update", "configmaps", ns="b", name="two"),
            res("scaler", "", "update", "deployments", "scale", ns="x", group="apps"),
            res("scaler", "", "update", "statefulsets", "scale", ns="x", group="apps"),
        ],
        [
            res("system:serviceaccount:kube-system:ctl", "", "get", "configmaps", ns="a", name="three"),
            res("system:serviceaccount:kube-system:ctl", "", "list", "configmaps", ns="a"),
            res("scaler", "", "update", "deployments", ns="x", group="apps"),
            res("scaler", "", "update", "deployments", "scale", ns="x", group="extensions"),
        ],
    ),
]


@pytest.mark.parametrize(("policy", "allow", "deny"), CASES)
async def test_authorizer_table(policy: dict[str, Any], allow: list[Attributes], deny: list[Attributes]) -> None:
    a = authorizer(**policy)
    for attrs in allow:
        assert await allowed(a, attrs), f"incorrectly restricted {attrs}"
    for attrs in deny:
        assert not await allowed(a, attrs), f"incorrectly passed {attrs}"


RULE_MATCHES = [
    (
        Rule(("*",), ("group1",), ("resource1",)),
        {("verb1", "group1", "resource1", ""): True, ("verb2", "group1", "resource1", ""): True,
         ("verb1", "group2", "resource1", ""): False, ("verb1", "group1", "resource2", ""): False},
    ),
    (
        Rule(("verb1",), ("*",), ("resource1",)),
        {("verb1", "group1", "resource1", ""): True, ("verb1", "group2", "resource1", ""): True,
         ("verb2", "group1", "resource1", ""): False, ("verb1", "group1", "resource2", ""): False},
    ),
    (
        Rule(("verb1",), ("group1",), ("*",)),
        {("verb1", "group1", "resource1", ""): True, ("verb1", "group1", "resource2", ""): True,
         ("verb1", "group1", "resource1", "sub"): True, ("verb1", "group2", "resource1", ""): False},
    ),
    (
        Rule(("*",), ("*",), ("resource1/subresource1",)),
        {("verb1", "group1", "resource1", "subresource1"): True,
         ("verb1", "group1", "resource1", "subresource2"): False,
         ("verb1", "group1", "resource2", "subresource1"): False,
         ("verb1", "group1", "resource1", ""): False},
    ),
    (
        Rule(("*",), ("*",), ("*/subresource1",)),
        {("verb1", "group1", "resource1", "subresource1"): True, ("verb1", "group1", "resource2", "subresource1"): True,
         ("verb1", "group1", "resource1", "subresource2"): False, ("verb1", "group1", "resource1", ""): False},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "expected"), RULE_MATCHES)
def test_rule_matches(rule: Rule, expected: dict[tuple[str, str, str, str], bool]) -> None:
    for (verb, group, resource, sub), want in expected.items():
        attrs = Attributes(UserInfo("u"), verb, True, "ns", group, "", resource, sub)
        assert rule_allows(attrs, rule) is want, (rule, verb, group, resource, sub)


def test_non_resource_url_subpath_star() -> None:
    rule = Rule(("verb1",), non_resource_urls=("/foo/*",))
    assert not rule_allows(url("verb1", "/foo"), rule)
    assert rule_allows(url("verb1", "/foo/bar"), rule)
    assert rule_allows(url("verb1", "/foo/bar/one"), rule)
    assert not rule_allows(url("verb2", "/foo/bar"), rule)
    assert rule_allows(url("verb1", "/anything"), Rule(("verb1",), non_resource_urls=("*",)))


def r(verbs: str, groups: str = "", resources: str = "", names: str = "", urls: str = "") -> Rule:
    return Rule.of(new_rule(verbs, groups, resources, urls, names))


COVERS = [
    ("exact match", [r("get", "", "pods")], [r("get", "", "pods")], True, []),
    ("star verb", [r("*", "", "pods")], [r("get,list", "", "pods")], True, []),
    ("star group", [r("get", "*", "pods")], [r("get", "apps,batch", "pods")], True, []),
    ("star resource", [r("get", "", "*")], [r("get", "", "pods,pods/status")], True, []),
    ("*/subresource", [r("get", "", "*/status")], [r("get", "", "pods/status")], True, []),
    ("names within names", [r("get", "", "cm", "a,b")], [r("get", "", "cm", "a")], True, []),
    ("no names covers names", [r("get", "", "cm")], [r("get", "", "cm", "a")], True, []),
    ("names do not cover all", [r("get", "", "cm", "a")], [r("get", "", "cm")], False, [r("get", "", "cm")]),
    ("url prefix", [r("get", urls="/api/*")], [r("get", urls="/api/v1")], True, []),
    (
        "missing verbs broken down",
        [r("get", "", "pods")],
        [r("get,list,delete", "", "pods")],
        False,
        [r("list", "", "pods"), r("delete", "", "pods")],
    ),
    (
        "mixed owners",
        [r("get", "", "pods"), r("list", "", "pods")],
        [r("get,list", "", "pods,secrets")],
        False,
        [r("get", "", "secrets"), r("list", "", "secrets")],
    ),
]


@pytest.mark.parametrize(("name", "owner", "servant", "ok", "missing"), COVERS, ids=[c[0] for c in COVERS])
def test_covers(name: str, owner: list[Rule], servant: list[Rule], ok: bool, missing: list[Rule]) -> None:
    assert covers(owner, servant) == (ok, missing)


def test_compact_rules_and_string() -> None:
    _, missing = covers([], [r("get,list", "", "secrets"), r("get", "apps", "deployments", "web")])
    compact = compact_rules(missing)
    assert sorted(compact_string(c) for c in compact) == [
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}',
        '{APIGroups:["apps"], Resources:["deployments"], ResourceNames:["web"], Verbs:["get"]}',
    ]
    assert compact_string(r("get", urls="/healthz")) == '{NonResourceURLs:["/healthz"], Verbs:["get"]}'


async def test_reasons_and_messages() -> None:
    a = authorizer(
        cluster_roles=[cluster_role("reader", new_rule("get", "", "pods"))],
        cluster_bindings=[crb("reader", "Group:readers", "User:alice", name="readers"), crb("gone", "User:alice")],
        bindings=[rb("demo", "Role", "missing", "User:alice", name="rb1")],
    )
    ok = await a.authorize(res("alice", "readers", "get", "pods", ns="demo"))
    assert ok.reason == 'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "readers"'
    denied = await a.authorize(res("alice", "", "list", "secrets", ns="demo"))
    assert denied.verdict is Verdict.NO_OPINION
    assert denied.reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'role.rbac.authorization.k8s.io "missing" not found]'
    )
    assert (await a.authorize(res("bob", "", "get", "pods", ns="demo"))).reason == ""


def test_forbidden_messages() -> None:
    user = UserInfo("system:serviceaccount:demo:reader")
    e = forbidden(Attributes(user, "list", True, "kube-system", "", "v1", "pods"))
    assert e.code == 403 and e.reason == "Forbidden"
    assert e.message == (
        'pods is forbidden: User "system:serviceaccount:demo:reader" cannot list resource "pods" in API group "" '
        'in the namespace "kube-system"'
    )
    e = forbidden(Attributes(user, "get", True, "", "apps", "v1", "deployments", "scale", "web"), "because")
    assert e.message == (
        'deployments.apps "web" is forbidden: User "system:serviceaccount:demo:reader" cannot get resource '
        '"deployments/scale" in API group "apps" at the cluster scope: because'
    )
    assert e.to_status()["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    e = forbidden(Attributes(UserInfo("system:anonymous"), "get", False, path="/<x>"))
    assert e.message == 'forbidden: User "system:anonymous" cannot get path "/&lt;x&gt;"'
    assert e.to_status()["details"] == {}


async def test_index_follows_changes_and_deletes() -> None:
    a = authorizer(cluster_roles=[cluster_role("r", new_rule("get", "", "pods"))])
    ask = res("alice", "", "get", "pods", ns="x")
    assert not await allowed(a, ask)
    a.index.apply("clusterrolebindings", "ADDED", crb("r", "User:alice", name="b"))
    assert await allowed(a, ask)
    a.index.apply("clusterroles", "MODIFIED", cluster_role("r", new_rule("list", "", "pods")))
    assert not await allowed(a, ask)
    a.index.apply("clusterroles", "MODIFIED", cluster_role("r", new_rule("get", "", "pods")))
    assert await allowed(a, ask)
    a.index.apply("clusterrolebindings", "DELETED", crb("r", "User:alice", name="b"))
    assert not await allowed(a, ask)
