"""The ingress controller's pure parts: route table (host and path matching per the Ingress
specification's tables), class selection, and backend endpoint resolution."""

from __future__ import annotations

from typing import Any

import pytest

from ingress_controller.backends import Balancer, Target, resolve
from ingress_controller.classes import ClassFilter, ingress_class_manifest
from ingress_controller.routes import Backend, RouteTable, normalize_host, normalize_path
from ingress_controller.status import published_addresses

NS = "default"


def backend(service: str, number: int | None = 80, name: str | None = None) -> dict[str, Any]:
    """An IngressBackend naming a Service port by number or name."""
    port = {"number": number} if name is None else {"name": name}
    return {"service": {"name": service, "port": port}}


def path(p: str, path_type: str | None, service: str) -> dict[str, Any]:
    """One HTTPIngressPath."""
    out: dict[str, Any] = {"path": p, "backend": backend(service)}
    if path_type is not None:
        out["pathType"] = path_type
    return out


def ingress(
    name: str,
    rules: list[dict[str, Any]] | None = None,
    default: str | None = None,
    created: str = "2024-01-01T00:00:00Z",
    namespace: str = NS,
) -> dict[str, Any]:
    """An Ingress with these rules and default backend."""
    spec: dict[str, Any] = {}
    if rules is not None:
        spec["rules"] = rules
    if default:
        spec["defaultBackend"] = backend(default)
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": spec,
    }


def rule(host: str | None, *paths: dict[str, Any]) -> dict[str, Any]:
    """An IngressRule for a host (None: every host)."""
    out: dict[str, Any] = {"http": {"paths": list(paths)}}
    if host is not None:
        out["host"] = host
    return out


def served_by(table: RouteTable, host: str, request_path: str) -> str | None:
    """The Service a request reaches, or None (404)."""
    hit = table.match(host, request_path)
    return hit.service if hit else None


# The "Examples" table of https://kubernetes.io/docs/concepts/services-networking/ingress/#examples:
# (kind, paths, request path, matches?) — a match is the backend of the longest listed path.
SPEC_EXAMPLES = [
    ("Prefix", ["/"], "/anything/at/all", "/"),
    ("Exact", ["/foo"], "/foo", "/foo"),
    ("Exact", ["/foo"], "/bar", None),
    ("Exact", ["/foo"], "/foo/", None),
    ("Exact", ["/foo/"], "/foo", None),
    ("Prefix", ["/foo"], "/foo", "/foo"),
    ("Prefix", ["/foo"], "/foo/", "/foo"),
    ("Prefix", ["/foo/"], "/foo", "/foo/"),
    ("Prefix", ["/foo/"], "/foo/", "/foo/"),
    ("Prefix", ["/aaa/bb"], "/aaa/bbb", None),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb", "/aaa/bbb"),
    ("Prefix", ["/aaa/bbb/"], "/aaa/bbb", "/aaa/bbb/"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/", "/aaa/bbb"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/ccc", "/aaa/bbb"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbbxyz", None),
    ("Prefix", ["/", "/aaa"], "/aaa/ccc", "/aaa"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/aaa/bbb", "/aaa/bbb"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/ccc", "/"),
    ("Prefix", ["/aaa"], "/ccc", None),
    ("ImplementationSpecific", ["/aaa"], "/aaa/x", "/aaa"),
    ("ImplementationSpecific", ["/aaa"], "/aaax", None),
    (None, ["/aaa"], "/aaa/x", "/aaa"),
]


@pytest.mark.parametrize(("kind", "paths", "request_path", "want"), SPEC_EXAMPLES)
def test_path_matching_follows_the_specification_table(
    kind: str | None, paths: list[str], request_path: str, want: str | None
) -> None:
    # each path gets its own Service, named after the path, so the winner is visible
    ing = ingress("i", [rule(None, *(path(p, kind, f"svc{p}") for p in paths))])
    table = RouteTable.build([ing])
    assert served_by(table, "example.com", request_path) == (f"svc{want}" if want else None)


def test_exact_beats_prefix_of_the_same_path() -> None:
    ing = ingress("i", [rule(None, path("/foo", "Prefix", "prefix"), path("/foo", "Exact", "exact"))])
    table = RouteTable.build([ing])
    assert served_by(table, "h", "/foo") == "exact"
    assert served_by(table, "h", "/foo/") == "prefix"
    assert served_by(table, "h", "/foo/bar") == "prefix"


def test_longest_path_wins_over_exactness() -> None:
    """Longest match first; Exact only breaks ties of equal length (Exact /foo vs Prefix /foo/bar)."""
    ing = ingress("i", [rule(None, path("/foo", "Exact", "exact"), path("/foo/bar", "Prefix", "deep"))])
    table = RouteTable.build([ing])
    assert served_by(table, "h", "/foo") == "exact"
    assert served_by(table, "h", "/foo/bar/baz") == "deep"
    assert served_by(table, "h", "/foo/baz") is None


def test_exact_with_a_trailing_slash_beats_the_shorter_prefix() -> None:
    ing = ingress("i", [rule(None, path("/foo", "Prefix", "prefix"), path("/foo/", "Exact", "exact"))])
    table = RouteTable.build([ing])
    assert served_by(table, "h", "/foo/") == "exact"
    assert served_by(table, "h", "/foo") == "prefix"


# The hostname wildcard table of the same page: (rule host, Host header, matches?)
HOST_EXAMPLES = [
    ("*.foo.com", "bar.foo.com", True),
    ("*.foo.com", "baz.bar.foo.com", False),
    ("*.foo.com", "foo.com", False),
    ("foo.bar.com", "foo.bar.com", True),
    ("foo.bar.com", "FOO.bar.com", True),
    ("foo.bar.com", "foo.bar.com:8080", True),
    ("foo.bar.com", "foo.bar.com.", True),
    ("foo.bar.com", "bar.foo.com", False),
    ("*.foo.com", "BAR.foo.com:80", True),
]


@pytest.mark.parametrize(("rule_host", "header", "matches"), HOST_EXAMPLES)
def test_host_matching(rule_host: str, header: str, matches: bool) -> None:
    table = RouteTable.build([ingress("i", [rule(rule_host, path("/", "Prefix", "web"))])])
    assert (served_by(table, header, "/") == "web") is matches


def test_name_based_virtual_hosting() -> None:
    """The docs' name-virtual-host example: two hosts and a rule without host for the rest."""
    ing = ingress(
        "name-virtual-host-ingress-no-third-host",
        [
            rule("foo.bar.com", path("/", "Prefix", "service1")),
            rule("bar.foo.com", path("/", "Prefix", "service2")),
            rule(None, path("/", "Prefix", "service3")),
        ],
    )
    table = RouteTable.build([ing])
    assert served_by(table, "foo.bar.com", "/x") == "service1"
    assert served_by(table, "bar.foo.com", "/") == "service2"
    assert served_by(table, "other.example", "/") == "service3"
    assert served_by(table, "", "/") == "service3"


def test_exact_host_beats_wildcard_and_wildcard_beats_catch_all() -> None:
    ing = ingress(
        "i",
        [
            rule("*.foo.com", path("/", "Prefix", "wild")),
            rule("bar.foo.com", path("/", "Prefix", "exact-host")),
            rule(None, path("/", "Prefix", "any")),
        ],
    )
    table = RouteTable.build([ing])
    assert served_by(table, "bar.foo.com", "/") == "exact-host"
    assert served_by(table, "baz.foo.com", "/") == "wild"
    assert served_by(table, "a.baz.foo.com", "/") == "any"


def test_selected_host_does_not_fall_through_to_host_less_rules() -> None:
    """As nginx picks a server by Host first: a host's unmatched path is not served by the
    catch-all rules (it goes to a default backend, or 404)."""
    ing = ingress("i", [rule("foo.com", path("/api", "Prefix", "api")), rule(None, path("/", "Prefix", "any"))])
    table = RouteTable.build([ing])
    assert served_by(table, "foo.com", "/api/v1") == "api"
    assert served_by(table, "foo.com", "/other") is None
    assert served_by(table, "bar.com", "/other") == "any"


def test_default_backend() -> None:
    """The docs' test-ingress: an Ingress with only a defaultBackend takes every request."""
    table = RouteTable.build([ingress("test-ingress", default="test")])
    assert served_by(table, "anything", "/any/path") == "test"


def test_default_backend_serves_what_no_rule_matches() -> None:
    ing = ingress("i", [rule("foo.com", path("/api", "Exact", "api"))], default="fallback")
    table = RouteTable.build([ing])
    assert served_by(table, "foo.com", "/api") == "api"
    assert served_by(table, "foo.com", "/api/x") == "fallback"
    assert served_by(table, "bar.com", "/") == "fallback"


def test_a_hosts_own_default_backend_wins_over_the_cluster_wide_one() -> None:
    catch_all = ingress("catch", default="global", created="2024-01-01T00:00:00Z")
    mine = ingress(
        "mine", [rule("foo.com", path("/a", "Exact", "a"))], default="mine-default", created="2024-02-01T00:00:00Z"
    )
    table = RouteTable.build([mine, catch_all])
    assert served_by(table, "foo.com", "/b") == "mine-default"
    assert served_by(table, "bar.com", "/b") == "global"


def test_no_match_and_no_default_backend_is_none() -> None:
    table = RouteTable.build([ingress("i", [rule("foo.com", path("/a", "Prefix", "a"))])])
    assert table.match("bar.com", "/a") is None
    assert table.match("foo.com", "/b") is None
    assert RouteTable.build([]).match("x", "/") is None


def test_oldest_ingress_wins_a_conflicting_path() -> None:
    old = ingress("old", [rule("foo.com", path("/", "Prefix", "old"))], created="2024-01-01T00:00:00Z")
    new = ingress(
        "new",
        [rule("foo.com", path("/", "Prefix", "new"), path("/new", "Prefix", "new"))],
        created="2024-03-01T00:00:00Z",
    )
    for order in ([old, new], [new, old]):
        table = RouteTable.build(order)
        assert served_by(table, "foo.com", "/x") == "old"
        assert served_by(table, "foo.com", "/new/x") == "new"  # paths that do not conflict merge


def test_rules_of_several_ingresses_merge_per_host() -> None:
    a = ingress("a", [rule("foo.com", path("/a", "Prefix", "a"))], namespace="ns1")
    b = ingress("b", [rule("foo.com", path("/b", "Prefix", "b"))], namespace="ns2")
    table = RouteTable.build([a, b])
    hit = table.match("foo.com", "/b/1")
    assert hit == Backend("ns2", "b", "b", 80)
    assert table.match("foo.com", "/a") == Backend("ns1", "a", "a", 80)


def test_port_by_name_and_resource_backends() -> None:
    ing = ingress(
        "i",
        [
            rule(
                None,
                {"path": "/named", "pathType": "Prefix", "backend": backend("web", name="http")},
                {"path": "/res", "pathType": "Prefix", "backend": {"resource": {"kind": "StorageBucket", "name": "b"}}},
            )
        ],
    )
    table = RouteTable.build([ing])
    assert table.match("h", "/named") == Backend(NS, "i", "web", "http")
    assert table.match("h", "/res") == Backend(NS, "i", "", 0)


def test_malformed_ingresses_are_skipped_not_fatal() -> None:
    good = ingress("good", [rule("foo.com", path("/", "Prefix", "web"))])
    bad = [
        {"metadata": {"name": "a"}, "spec": "nonsense"},
        {"metadata": {"name": "b"}, "spec": {"rules": "nonsense"}},
        {"metadata": {"name": "c"}, "spec": {"rules": ["x", {"host": "bar.com", "http": "x"}]}},
        {
            "metadata": {"name": "d"},
            "spec": {"rules": [{"http": {"paths": ["x", {"path": "no-slash"}, {"backend": 3}]}}]},
        },
        {"metadata": {"name": "e"}},
    ]
    table = RouteTable.build([*bad, good])
    assert served_by(table, "foo.com", "/") == "web"
    assert table.match("bar.com", "/") is None


def test_request_paths_are_normalized_before_matching() -> None:
    ing = ingress("i", [rule(None, path("/admin", "Prefix", "admin"), path("/", "Prefix", "public"))])
    table = RouteTable.build([ing])
    assert served_by(table, "h", "/public/../admin/x") == "admin"
    assert served_by(table, "h", "//admin") == "admin"
    assert served_by(table, "h", "/admin/./x") == "admin"
    assert normalize_path("/a//b/") == "/a/b/"
    assert normalize_path("/a/../../b") == "/b"
    assert normalize_path("/") == "/"


@pytest.mark.parametrize(
    ("header", "host"),
    [("Foo.COM", "foo.com"), ("foo.com:8080", "foo.com"), ("[::1]:80", "::1"), ("127.0.0.1", "127.0.0.1"), ("", "")],
)
def test_normalize_host(header: str, host: str) -> None:
    assert normalize_host(header) == host


# --- class selection ------------------------------------------------------------------------------


def klass(name: str, controller: str = "tinykube.io/ingress-controller", default: bool = False) -> dict[str, Any]:
    """An IngressClass."""
    return ingress_class_manifest(name, default, controller)


def with_class(annotation: str | None = None, field: str | None = None) -> dict[str, Any]:
    """An Ingress naming a class by annotation and/or field."""
    ing = ingress("i", [])
    if annotation:
        ing["metadata"]["annotations"] = {"kubernetes.io/ingress.class": annotation}
    if field:
        ing["spec"]["ingressClassName"] = field
    return ing


@pytest.mark.parametrize(
    ("classes", "ing", "served"),
    [
        ([klass("tinykube")], with_class(field="tinykube"), True),
        ([klass("tinykube")], with_class(field="nginx"), False),
        ([klass("tinykube"), klass("nginx", "k8s.io/ingress-nginx")], with_class(field="nginx"), False),
        ([klass("tinykube"), klass("second")], with_class(field="second"), False),  # another instance's class
        ([klass("tinykube", "k8s.io/ingress-nginx")], with_class(field="tinykube"), False),  # not our controller
        ([], with_class(field="tinykube"), False),
        ([klass("tinykube")], with_class(annotation="tinykube"), True),
        ([klass("tinykube")], with_class(annotation="nginx", field="tinykube"), False),  # the annotation wins
        ([klass("tinykube")], with_class(annotation="tinykube", field="nginx"), True),
        ([], with_class(annotation="tinykube"), True),  # the flag's class name, even before its object exists
        ([klass("tinykube", default=True)], with_class(), True),
        ([klass("tinykube")], with_class(), False),
        ([klass("tinykube", "k8s.io/ingress-nginx", default=True)], with_class(), False),
        ([klass("tinykube"), klass("nginx", "k8s.io/ingress-nginx", default=True)], with_class(), False),
    ],
)
def test_class_selection(classes: list[dict[str, Any]], ing: dict[str, Any], served: bool) -> None:
    assert ClassFilter.from_classes("tinykube", classes).serves(ing) is served


# --- endpoints ------------------------------------------------------------------------------------


def service(ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Service with these ports."""
    return {"metadata": {"name": "web", "namespace": NS}, "spec": {"ports": ports, **spec}}


def endpoint_slice(ports: list[dict[str, Any]], *endpoints: dict[str, Any]) -> dict[str, Any]:
    """An EndpointSlice of the `web` Service."""
    return {
        "metadata": {"name": "web-abc", "namespace": NS, "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": list(endpoints),
    }


def ep(ip: str, ready: bool | None = True) -> dict[str, Any]:
    """An endpoint (ready None: the condition unset, which means ready)."""
    conditions = {} if ready is None else {"ready": ready}
    return {"addresses": [ip], "conditions": conditions}


def test_resolve_by_port_number_and_name_to_ready_endpoints() -> None:
    svc = service([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "admin", "port": 81}])
    sl = endpoint_slice(
        [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "admin", "port": 9090, "protocol": "TCP"}],
        ep("127.1.0.2"),
        ep("127.1.0.1", ready=None),
        ep("127.1.0.3", ready=False),
    )
    assert resolve(svc, [sl], 80).targets == (Target("127.1.0.1", 8080), Target("127.1.0.2", 8080))
    assert resolve(svc, [sl], "admin").targets == (Target("127.1.0.1", 9090), Target("127.1.0.2", 9090))


@pytest.mark.parametrize(
    ("svc", "slices", "ref", "reason"),
    [
        (None, [], 80, "service not found"),
        (service([{"name": "http", "port": 80}]), [], 81, "service has no port 81"),
        (service([{"name": "http", "port": 80}]), [], "grpc", "service has no port 'grpc'"),
        (service([{"name": "http", "port": 80}]), [], 80, "no ready endpoints"),
        (
            service([{"name": "http", "port": 80}]),
            [endpoint_slice([{"name": "http", "port": 8080}], ep("127.1.0.1", ready=False))],
            80,
            "no ready endpoints",
        ),
    ],
)
def test_resolve_reasons(svc: dict[str, Any] | None, slices: list[dict[str, Any]], ref: int | str, reason: str) -> None:
    got = resolve(svc, slices, ref)
    assert got.targets == ()
    assert got.reason == reason


def test_resolve_unnamed_port_and_external_name() -> None:
    svc = service([{"port": 80, "targetPort": 8080}])
    sl = endpoint_slice([{"port": 8080, "protocol": "TCP"}], ep("127.1.0.9"))
    assert resolve(svc, [sl], 80).targets == (Target("127.1.0.9", 8080),)
    ext = service([], type="ExternalName", externalName="example.org")
    assert resolve(ext, [], 8443).targets == (Target("example.org", 8443),)


def test_balancer_rotates_and_keeps_the_rest_in_order() -> None:
    targets = [Target("a", 1), Target("b", 1), Target("c", 1)]
    bal = Balancer()
    firsts = [bal.order("k", targets)[0].host for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]
    assert [t.host for t in bal.order("k", targets)] == ["a", "b", "c"]
    assert [t.host for t in bal.order("k", targets)] == ["b", "c", "a"]


def test_published_addresses_from_the_load_balancer_status() -> None:
    svc = {
        "spec": {"type": "LoadBalancer", "externalIPs": ["127.200.0.9"]},
        "status": {"loadBalancer": {"ingress": [{"ip": "127.200.0.3", "ipMode": "VIP"}, {"hostname": "lb.example"}]}},
    }
    assert published_addresses(svc) == [{"ip": "127.200.0.3"}, {"ip": "127.200.0.9"}, {"hostname": "lb.example"}]
    assert published_addresses({"spec": {}, "status": {}}) == []
    assert published_addresses(None) == []
