"""kube-proxy's pure plan: Services + EndpointSlices + node → listeners, rule by rule (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from kube_proxy.plan import Endpoint, ListenerKey, NodeInfo, PortRef, Route, plan

NODE = NodeInfo("node-1", "127.100.0.1")
CIP = "127.96.0.20"


def svc(name: str = "web", ns: str = "default", *, ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict:
    """A Service as the apiserver stores it (defaults filled in)."""
    body: dict[str, Any] = {
        "type": "ClusterIP",
        "clusterIP": CIP,
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    }
    body.update(spec)
    status = body.pop("status", {"loadBalancer": {}})
    labels = body.pop("labels", {})
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": body, "status": status}


def ep(ip: str, node: str = "node-1", ready: bool | None = True, serving: bool | None = None, term: bool | None = None):
    """An EndpointSlice endpoint with the given conditions (None: the condition is absent)."""
    cond = {k: v for k, v in (("ready", ready), ("serving", serving), ("terminating", term)) if v is not None}
    return {"addresses": [ip], "nodeName": node, "conditions": cond}


def eps(*endpoints: Any, svc_name: str = "web", ns: str = "default", ports: Any = None, name: str = "") -> dict:
    """An EndpointSlice of `svc_name`."""
    return {
        "metadata": {
            "name": name or f"{svc_name}-abc",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc_name},
        },
        "addressType": "IPv4",
        "endpoints": list(endpoints),
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


REF = PortRef("default", "web", "http", "TCP")


def E(ip: str, port: int = 8080) -> Endpoint:
    return Endpoint(ip, port)


def listeners(services: list[dict], slices: list[dict], node: NodeInfo = NODE) -> dict[ListenerKey, Route]:
    return plan(services, slices, node).listeners


def test_clusterip_tcp_routes_to_ready_endpoints() -> None:
    got = listeners([svc()], [eps(ep("127.1.0.5"), ep("127.1.0.4"))])
    assert got == {ListenerKey(CIP, 80, "TCP"): Route(REF, (E("127.1.0.4"), E("127.1.0.5")))}


def test_udp_and_tcp_ports_of_one_service() -> None:
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
    slice_ports = [
        {"name": "dns", "port": 5353, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 5354, "protocol": "TCP"},
    ]
    got = listeners([svc(ports=ports)], [eps(ep("127.1.0.9"), ports=slice_ports)])
    assert got[ListenerKey(CIP, 53, "UDP")].endpoints == (E("127.1.0.9", 5353),)
    assert got[ListenerKey(CIP, 53, "TCP")].endpoints == (E("127.1.0.9", 5354),)
    assert got[ListenerKey(CIP, 53, "UDP")].ref == PortRef("default", "web", "dns", "UDP")


def test_unnamed_port_matches_unnamed_slice_port_and_is_named_by_number() -> None:
    got = listeners([svc(ports=[{"port": 80, "protocol": "TCP"}])], [eps(ep("127.1.0.4"), ports=[{"port": 9000}])])
    route = got[ListenerKey(CIP, 80, "TCP")]
    assert route.endpoints == (E("127.1.0.4", 9000),)
    assert route.ref == PortRef("default", "web", "80", "TCP")


def test_named_target_port_resolves_through_the_slice_ports_by_name() -> None:
    """targetPort "http-alt" is resolved per pod by the slice controller; the slice port carries the number."""
    service = svc(ports=[{"name": "web", "port": 80, "protocol": "TCP", "targetPort": "http-alt"}])
    slices = [
        eps(ep("127.1.0.4"), ports=[{"name": "web", "port": 8081, "protocol": "TCP"}], name="a"),
        eps(ep("127.1.0.5"), ports=[{"name": "web", "port": 9091, "protocol": "TCP"}], name="b"),
        eps(ep("127.1.0.6"), ports=[{"name": "other", "port": 7000, "protocol": "TCP"}], name="c"),
    ]
    assert listeners([service], slices)[ListenerKey(CIP, 80, "TCP")].endpoints == (
        E("127.1.0.4", 8081),
        E("127.1.0.5", 9091),
    )


def test_slice_port_protocol_must_match() -> None:
    assert listeners([svc()], [eps(ep("127.1.0.4"), ports=[{"name": "http", "port": 8080, "protocol": "UDP"}])]) == {}


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        pytest.param([ep("127.1.0.4"), ep("127.1.0.5", ready=False)], ["127.1.0.4"], id="not-ready-skipped"),
        pytest.param([ep("127.1.0.4", ready=None)], ["127.1.0.4"], id="absent-ready-means-ready"),
        pytest.param(
            [ep("127.1.0.4"), ep("127.1.0.5", ready=False, serving=True, term=True)],
            ["127.1.0.4"],
            id="terminating-gets-no-new-connections",
        ),
        pytest.param(
            [
                ep("127.1.0.5", ready=False, serving=True, term=True),
                ep("127.1.0.6", ready=False, serving=False, term=True),
            ],
            ["127.1.0.5"],
            id="fallback-to-serving-terminating-when-none-ready",
        ),
        pytest.param(
            [ep("127.1.0.5", ready=False, serving=True, term=False)], [], id="serving-not-terminating-unready"
        ),
        pytest.param([ep("127.1.0.5", ready=False, serving=False, term=True)], [], id="terminating-not-serving"),
        pytest.param([], [], id="no-endpoints"),
    ],
)
def test_endpoint_conditions(endpoints: list[dict], expected: list[str]) -> None:
    got = listeners([svc()], [eps(*endpoints)])
    if not expected:
        assert got == {}  # no listener at all: the kernel refuses at once
    else:
        assert [e.ip for e in got[ListenerKey(CIP, 80, "TCP")].endpoints] == expected


def test_no_slice_means_no_listener() -> None:
    assert listeners([svc()], []) == {}


def test_endpoints_merged_across_slices_and_deduplicated() -> None:
    slices = [
        eps(ep("127.1.0.4"), ep("127.1.0.5", ready=False), name="a"),
        eps(ep("127.1.0.5"), ep("127.1.0.6"), name="b"),
    ]
    got = listeners([svc()], slices)[ListenerKey(CIP, 80, "TCP")]
    assert got.endpoints == (E("127.1.0.4"), E("127.1.0.5"), E("127.1.0.6"))


def test_slices_of_other_services_namespaces_and_families_ignored() -> None:
    slices = [
        eps(ep("127.1.0.4"), svc_name="other"),
        eps(ep("127.1.0.5"), ns="elsewhere"),
        {**eps(ep("::1")), "addressType": "IPv6"},
        {**eps(ep("127.1.0.6")), "metadata": {"name": "x", "namespace": "default", "labels": {}}},
    ]
    assert listeners([svc()], slices) == {}


@pytest.mark.parametrize(
    "service",
    [
        pytest.param(svc(clusterIP="None"), id="headless"),
        pytest.param(svc(clusterIP=""), id="no-cluster-ip"),
        pytest.param(svc(type="ExternalName", externalName="example.com"), id="external-name"),
        pytest.param(svc(labels={"service.kubernetes.io/service-proxy-name": "other"}), id="other-proxy"),
        pytest.param(svc(ports=[{"name": "http", "port": 80, "protocol": "SCTP"}]), id="sctp"),
    ],
)
def test_services_without_listeners(service: dict) -> None:
    assert listeners([service], [eps(ep("127.1.0.4"))]) == {}


def test_node_port_binds_this_nodes_address_without_reuseport() -> None:
    service = svc(
        type="NodePort",
        externalTrafficPolicy="Cluster",
        ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
    )
    got = listeners([service], [eps(ep("127.1.0.4", node="node-2"))])
    assert got[ListenerKey(NODE.address, 30080, "TCP")] == Route(REF, (E("127.1.0.4"),), reuse_port=False)
    assert got[ListenerKey(CIP, 80, "TCP")].reuse_port


def test_load_balancer_ingress_and_external_ips() -> None:
    service = svc(
        type="LoadBalancer",
        externalTrafficPolicy="Cluster",
        externalIPs=["127.200.0.9", "not-an-ip"],
        ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        status={"loadBalancer": {"ingress": [{"ip": "127.200.0.1"}, {"ip": "127.200.0.2", "ipMode": "Proxy"}]}},
    )
    result = plan([service], [eps(ep("127.1.0.4"))], NODE)
    keys = set(result.listeners)
    assert keys == {
        ListenerKey(CIP, 80, "TCP"),
        ListenerKey(NODE.address, 30080, "TCP"),
        ListenerKey("127.200.0.9", 80, "TCP"),
        ListenerKey("127.200.0.1", 80, "TCP"),
    }
    assert result.listeners[ListenerKey("127.200.0.1", 80, "TCP")].reuse_port
    assert any("not-an-ip" in w for w in result.warnings)


def test_lb_ingress_ignored_unless_type_load_balancer() -> None:
    service = svc(status={"loadBalancer": {"ingress": [{"ip": "127.200.0.1"}]}})
    assert set(listeners([service], [eps(ep("127.1.0.4"))])) == {ListenerKey(CIP, 80, "TCP")}


def test_external_ips_on_a_clusterip_service() -> None:
    got = listeners([svc(externalIPs=["127.200.0.7"])], [eps(ep("127.1.0.4"))])
    assert set(got) == {ListenerKey(CIP, 80, "TCP"), ListenerKey("127.200.0.7", 80, "TCP")}


def test_internal_traffic_policy_local() -> None:
    service = svc(internalTrafficPolicy="Local")
    slices = [eps(ep("127.1.0.4", node="node-1"), ep("127.1.0.5", node="node-2"))]
    route = listeners([service], slices)[ListenerKey(CIP, 80, "TCP")]
    assert route.endpoints == (E("127.1.0.4"),)
    assert route.local
    # a node without local endpoints does not listen on the ClusterIP
    assert listeners([service], slices, NodeInfo("node-3", "127.100.0.3")) == {}


def test_internal_local_falls_back_to_local_serving_terminating() -> None:
    service = svc(internalTrafficPolicy="Local")
    slices = [eps(ep("127.1.0.4", node="node-1", ready=False, serving=True, term=True), ep("127.1.0.5", node="node-2"))]
    assert listeners([service], slices)[ListenerKey(CIP, 80, "TCP")].endpoints == (E("127.1.0.4"),)


def test_external_traffic_policy_local() -> None:
    service = svc(
        type="LoadBalancer",
        externalTrafficPolicy="Local",
        ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
        status={"loadBalancer": {"ingress": [{"ip": "127.200.0.1"}]}},
    )
    slices = [eps(ep("127.1.0.4", node="node-1"), ep("127.1.0.5", node="node-2"))]
    got = listeners([service], slices)
    assert got[ListenerKey(CIP, 80, "TCP")].endpoints == (E("127.1.0.4"), E("127.1.0.5"))  # ClusterIP: all
    assert got[ListenerKey(NODE.address, 30080, "TCP")].endpoints == (E("127.1.0.4"),)
    assert got[ListenerKey("127.200.0.1", 80, "TCP")].endpoints == (E("127.1.0.4"),)
    assert got[ListenerKey("127.200.0.1", 80, "TCP")].local
    # node-3 has no local endpoint: it binds neither its NodePort nor the LB IP, only the ClusterIP
    node3 = NodeInfo("node-3", "127.100.0.3")
    assert set(listeners([service], slices, node3)) == {ListenerKey(CIP, 80, "TCP")}


def test_session_affinity() -> None:
    default = svc(sessionAffinity="ClientIP")
    custom = svc("api", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    custom["spec"]["clusterIP"] = "127.96.0.21"
    got = listeners([default, custom], [eps(ep("127.1.0.4")), eps(ep("127.1.0.4"), svc_name="api")])
    assert got[ListenerKey(CIP, 80, "TCP")].affinity_timeout == 10800
    assert got[ListenerKey("127.96.0.21", 80, "TCP")].affinity_timeout == 60
    assert listeners([svc()], [eps(ep("127.1.0.4"))])[ListenerKey(CIP, 80, "TCP")].affinity_timeout is None


def test_conflicting_addresses_first_service_wins_with_a_warning() -> None:
    a = svc("a", externalIPs=["127.200.0.7"])
    b = svc("b", externalIPs=["127.200.0.7"])
    b["spec"]["clusterIP"] = "127.96.0.21"
    result = plan([b, a], [eps(ep("127.1.0.4"), svc_name="a"), eps(ep("127.1.0.5"), svc_name="b")], NODE)
    assert result.listeners[ListenerKey("127.200.0.7", 80, "TCP")].ref.service == "a"
    assert len(result.warnings) == 1


def test_ports_lists_every_proxied_service_port_even_without_endpoints() -> None:
    result = plan([svc()], [], NODE)
    assert result.listeners == {}
    assert result.ports == {REF}


def test_bad_objects_do_not_crash() -> None:
    broken = [
        {"metadata": {"name": "x", "namespace": "d"}},
        {"metadata": {"name": "y", "namespace": "d"}, "spec": {"clusterIP": "bogus", "ports": [{"port": 80}]}},
        svc("z", ports=[{"name": "http", "port": "80"}, "junk"]),
        "not a dict",
    ]
    slices = [{"metadata": {}}, eps({"addresses": "x"}, {"addresses": ["bad"]}, ports=[{"port": None}])]
    result = plan(broken, slices, NODE)  # type: ignore[arg-type]
    assert result.listeners == {}
    assert any("bogus" in w for w in result.warnings)
