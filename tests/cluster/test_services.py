"""Services really route on a real cluster: kube-proxy on every node, cluster DNS, LoadBalancer IPs
and Ingress, driven with the real kubectl and a real DNS client."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import httpx
import pytest

from kube_proxy.balancer import Balancer
from kube_proxy.plan import DEFAULT_AFFINITY_TIMEOUT, Endpoint
from tests.cluster.conftest import wait_for
from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# A Deployment whose pods answer GET with their own name (HOSTNAME is the pod's name). With a
# `listen_when` path, a pod is Ready at once but listens only once that file exists in it.
ECHO = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: echo
        image: python:3
        command:
        - python3
        - -c
        - |
          import os
          import time
          from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
          class H(BaseHTTPRequestHandler):
              def do_GET(self):
                  body = os.environ["HOSTNAME"].encode()
                  self.send_response(200)
                  self.send_header("Content-Length", str(len(body)))
                  self.end_headers()
                  self.wfile.write(body)
          while os.environ["LISTEN_WHEN"] and not os.path.exists(os.environ["LISTEN_WHEN"]):
              time.sleep(0.05)
          ThreadingHTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
        env:
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        - {{name: LISTEN_WHEN, value: "{listen_when}"}}
        readinessProbe:
          exec: {{command: ["sh", "-c", "test ! -e /tmp/unready"]}}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: {type}
  sessionAffinity: {affinity}
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: 8080}}
"""


def echo(
    kube: Kubectl,
    ns: str,
    name: str,
    replicas: int = 2,
    type_: str = "ClusterIP",
    affinity: str = "None",
    listen_when: str = "",
) -> list[str]:
    """Apply an echo Deployment + Service, wait for it to roll out; returns its pod names."""
    manifest = ECHO.format(name=name, replicas=replicas, type=type_, affinity=affinity, listen_when=listen_when)
    kube.ok("apply", "-n", ns, "-f", "-", input=manifest)
    kube.ok("rollout", "status", "-n", ns, f"deploy/{name}", "--timeout=60s", timeout=70)
    return kube.ok("get", "pods", "-n", ns, "-l", f"app={name}", "-o", "jsonpath={.items[*].metadata.name}").split()


def service(kube: Kubectl, ns: str, name: str) -> dict:
    """The Service object."""
    return json.loads(kube.ok("get", "svc", "-n", ns, name, "-o", "json"))


def get(url: str, **kw: object) -> str:
    """GET with a short timeout; the body."""
    r = httpx.get(url, timeout=5, **kw)  # type: ignore[arg-type]
    r.raise_for_status()
    return r.text.strip()


def answers(url: str, n: int) -> list[str]:
    """`n` fresh-connection GETs of `url`."""
    return [get(url) for _ in range(n)]


def refused(ip: str, port: int) -> bool:
    """Whether a TCP connect is refused at once (not timing out)."""
    try:
        with socket.create_connection((ip, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def dns_query(cluster: Cluster, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    """Ask the kube-dns Service (through kube-proxy) one question."""
    q = dns.message.make_query(name, rdtype)
    where = cluster.network.dns_service_ip
    return dns.query.tcp(q, where, timeout=3) if tcp else dns.query.udp(q, where, timeout=3)


def rrs(msg: dns.message.Message, rdtype: str) -> list[str]:
    """The answer section's records of one type, as text."""
    kind = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in msg.answer if rrset.rdtype == kind for rd in rrset)


def test_web_stack_through_node_ports_and_dns(kube: Kubectl, cluster: Cluster, cns: str) -> None:
    """The seeds' stack: nginx → php-svc → wordpress-mysql, reached on node-2's NodePort."""
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "web-stack.yaml"))
    for d in ("nginx", "php", "wordpress-mysql"):
        kube.ok("rollout", "status", "-n", cns, f"deploy/{d}", "--timeout=60s", timeout=70)
    port = service(kube, cns, "nginx-svc")["spec"]["ports"][0]["nodePort"]
    node2 = cluster.node_ip("node-2")
    seen: set[str] = set()

    def through_all_tiers() -> bool:
        # until kube-proxy has programmed every tier's Service, a tier may refuse or nginx answer 502: not yet
        r = _try_get(f"http://{node2}:{port}/")
        if r is None or r.is_server_error:
            return False
        body = r.raise_for_status().text.strip()
        parts = body.split(" -> ")
        assert [p.split()[0] for p in parts] == ["nginx", "php", "mysql"], body
        seen.add(parts[0].split()[1])
        return len(seen) == 2

    wait_for(through_all_tiers, 20, "both nginx replicas answering through node-2's NodePort")
    nginx_pods = kube.ok("get", "pods", "-n", cns, "-l", "k8s-app=nginx", "-o", "jsonpath={.items[*].metadata.name}")
    assert seen == set(nginx_pods.split())
    # and through node-1's NodePort too, which node-1's kube-proxy programs on its own
    node1 = cluster.node_ip("node-1")
    wait_for(lambda: _answered(f"http://{node1}:{port}/"), 20, "node-1's NodePort")
    assert get(f"http://{node1}:{port}/").startswith("nginx ")
    # a pod resolves a Service by its short name with the host's own resolver library
    pod = nginx_pods.split()[0]
    out = kube.ok("exec", "-n", cns, pod, "--", "getent", "hosts", "php-svc")
    php_ip = service(kube, cns, "php-svc")["spec"]["clusterIP"]
    assert out.split()[0] == php_ip and f"php-svc.{cns}.svc.cluster.local" in out


def _try_get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None


def _answered(url: str) -> httpx.Response | None:
    """The answer, once one is not a server error (a tier's kube-proxy not ready yet: nginx's 502)."""
    r = _try_get(url)
    return None if r is None or r.is_server_error else r


def test_cluster_ip_reaches_every_replica_and_readiness_takes_one_out(
    kube: Kubectl, cluster: Cluster, chttp: httpx.Client, cns: str
) -> None:
    pods = echo(kube, cns, "web", replicas=2)
    ip = service(kube, cns, "web")["spec"]["clusterIP"]
    wait_for(lambda: _try_get(f"http://{ip}/"), 20, "the Service answering")  # kube-proxy has programmed it
    wait_for(lambda: set(answers(f"http://{ip}/", 10)) == set(pods), 20, "both replicas behind the ClusterIP")

    # the pod turns unready: its endpoint becomes not-ready, and kube-proxy stops sending to it
    out, stays = pods
    kube.ok("exec", "-n", cns, out, "--", "touch", "/tmp/unready")

    def slice_unready() -> float | None:
        slices = chttp.get(
            f"/apis/discovery.k8s.io/v1/namespaces/{cns}/endpointslices",
            params={"labelSelector": "kubernetes.io/service-name=web"},
        ).json()["items"]
        for s in slices:
            for e in s.get("endpoints") or []:
                if (e.get("targetRef") or {}).get("name") == out and not e["conditions"]["ready"]:
                    return time.monotonic()
        return None

    changed = wait_for(slice_unready, 20, "the EndpointSlice marking the pod not ready")
    last_seen = changed
    deadline = changed + 3
    while time.monotonic() < deadline:
        if get(f"http://{ip}/") == out:
            last_seen = time.monotonic()
    assert last_seen - changed < 1.0, f"{out} still answered {last_seen - changed:.2f}s after its endpoint went"
    assert set(answers(f"http://{ip}/", 10)) == {stays}


def test_client_ip_affinity_sticks(kube: Kubectl, cns: str) -> None:
    pods = echo(kube, cns, "sticky", replicas=2, affinity="ClientIP")
    ip = service(kube, cns, "sticky")["spec"]["clusterIP"]
    wait_for(lambda: _try_get(f"http://{ip}/"), 20, "the sticky Service answering")
    first = answers(f"http://{ip}/", 1)[0]
    assert first in pods
    assert answers(f"http://{ip}/", 20) == [first] * 20


def source_ip(ip: str) -> str:
    """The address this host's connections to `ip` come from (the client IP kube-proxy sees)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ip, 80))  # routes only; nothing is sent
        return s.getsockname()[0]


def test_client_ip_affinity_survives_a_failover(kube: Kubectl, cns: str) -> None:
    """A pod can be Ready before its server listens. The client's first connection then goes past it
    to the other pod, and every later one goes there too once the first pod listens: both nodes'
    kube-proxies share the ClusterIP, and the one that did not see the failover must not start the
    client at the pod it would have chosen."""
    echo(kube, cns, "failover", replicas=2, affinity="ClientIP", listen_when="/tmp/listen")
    ip = service(kube, cns, "failover")["spec"]["clusterIP"]
    items = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=failover", "-o", "json"))["items"]
    pods = {p["status"]["podIP"]: p["metadata"]["name"] for p in items}
    # the pod a proxy starts this client at (rendezvous hash): it is the one that listens late
    endpoints = [Endpoint(pod_ip, 8080) for pod_ip in pods]
    late = Balancer(endpoints, DEFAULT_AFFINITY_TIMEOUT).order(source_ip(ip))[0].ip
    (early,) = set(pods) - {late}
    kube.ok("exec", "-n", cns, pods[early], "--", "touch", "/tmp/listen")
    first = wait_for(lambda: _try_get(f"http://{ip}/"), 20, "the Service answering")
    assert first.text == pods[early]
    kube.ok("exec", "-n", cns, pods[late], "--", "touch", "/tmp/listen")
    wait_for(lambda: _try_get(f"http://{late}:8080/"), 20, "the late pod listening")
    assert answers(f"http://{ip}/", 20) == [pods[early]] * 20


def test_no_endpoints_refuses_at_once_and_deleting_closes(kube: Kubectl, cns: str) -> None:
    kube.ok("create", "service", "clusterip", "empty", "-n", cns, "--tcp=80:8080")
    ip = service(kube, cns, "empty")["spec"]["clusterIP"]
    started = time.monotonic()
    assert refused(ip, 80)
    assert time.monotonic() - started < 1.5

    pods = echo(kube, cns, "gone", replicas=1)
    ip = service(kube, cns, "gone")["spec"]["clusterIP"]
    assert wait_for(lambda: _try_get(f"http://{ip}/"), 20, "the Service answering").text == pods[0]
    kube.ok("delete", "service", "gone", "-n", cns)
    wait_for(lambda: refused(ip, 80), 10, "the deleted Service's listener closed")


def test_kubectl_expose_then_curl(kube: Kubectl, cns: str) -> None:
    pods = echo(kube, cns, "exposed", replicas=1)
    kube.ok("expose", "deployment", "exposed", "-n", cns, "--name", "exposed-np", "--port", "8081",
            "--target-port", "8080", "--type", "NodePort")  # fmt: skip
    ip = service(kube, cns, "exposed-np")["spec"]["clusterIP"]
    assert wait_for(lambda: _try_get(f"http://{ip}:8081/"), 20, "the exposed Service").text == pods[0]


def test_load_balancer_gets_an_external_ip(kube: Kubectl, cluster: Cluster, cns: str) -> None:
    pods = echo(kube, cns, "lb", replicas=1, type_="LoadBalancer")

    def external_ip() -> str:
        return kube.ok("get", "svc", "lb", "-n", cns, "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")

    ip = wait_for(external_ip, 20, "an EXTERNAL-IP for the LoadBalancer Service")
    assert ip.startswith(cluster.network.load_balancer_range.rsplit(".", 1)[0] + ".")
    row = kube.ok("get", "svc", "lb", "-n", cns).splitlines()[1].split()
    assert row[1] == "LoadBalancer" and row[3] == ip
    assert wait_for(lambda: _try_get(f"http://{ip}/"), 20, "the LB IP answering").text == pods[0]


def test_dns_answers(kube: Kubectl, cluster: Cluster, cns: str) -> None:
    echo(kube, cns, "named", replicas=1)
    svc = service(kube, cns, "named")
    fqdn = f"named.{cns}.svc.cluster.local."
    assert rrs(dns_query(cluster, fqdn, "A"), "A") == [svc["spec"]["clusterIP"]]
    assert rrs(dns_query(cluster, fqdn, "A", tcp=True), "A") == [svc["spec"]["clusterIP"]]
    srv = rrs(dns_query(cluster, f"_http._tcp.{fqdn}", "SRV"), "SRV")
    assert len(srv) == 1 and srv[0].split()[2:] == ["80", fqdn]
    ptr = dns_query(cluster, dns.reversename.from_address(svc["spec"]["clusterIP"]).to_text(), "PTR")
    assert rrs(ptr, "PTR") == [fqdn]
    missing = dns_query(cluster, f"nope.{cns}.svc.cluster.local.", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].rdtype == dns.rdatatype.SOA

    # headless StatefulSet: the Service name gives every ready pod, each pod its own name
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "daemon-and-stateful.yaml"))
    kube.ok("rollout", "status", "-n", cns, "statefulset/db", "--timeout=90s", timeout=100)
    pod_ips = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=db", "-o", "json"))["items"]
    by_name = {p["metadata"]["name"]: p["status"]["podIP"] for p in pod_ips}
    wait_for(
        lambda: rrs(dns_query(cluster, f"db.{cns}.svc.cluster.local.", "A"), "A") == sorted(by_name.values()),
        10,
        "the headless Service's A records",
    )
    assert rrs(dns_query(cluster, f"db-1.db.{cns}.svc.cluster.local.", "A"), "A") == [by_name["db-1"]]
    dashed = by_name["db-0"].replace(".", "-")
    assert rrs(dns_query(cluster, f"{dashed}.{cns}.pod.cluster.local.", "A"), "A") == [by_name["db-0"]]


@pytest.mark.parametrize("component", ["kube-proxy-node-1", "cluster-dns"])
def test_killed_component_comes_back(kube: Kubectl, cluster: Cluster, cns: str, component: str) -> None:
    pods = echo(kube, cns, "survivor", replicas=1, type_="NodePort")
    svc = service(kube, cns, "survivor")
    ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    node1 = cluster.node_ip("node-1")
    fqdn = f"survivor.{cns}.svc.cluster.local."
    wait_for(lambda: _try_get(f"http://{node1}:{node_port}/"), 20, "the NodePort answering")
    proc = next(p for p in cluster.processes if p.name == component)
    proc.kill()
    if component == "kube-proxy-node-1":
        assert refused(node1, node_port)  # nobody else serves node-1's NodePorts
    assert cluster.supervise() == [component]
    assert wait_for(lambda: _try_get(f"http://{node1}:{node_port}/"), 20, "the NodePort back").text == pods[0]
    assert get(f"http://{ip}/") == pods[0]
    wait_for(lambda: _a_records(cluster, fqdn) == [ip], 20, "DNS answering again")


def _a_records(cluster: Cluster, name: str) -> list[str] | None:
    """The A records of `name`, or None while nothing answers."""
    try:
        return rrs(dns_query(cluster, name, "A"), "A")
    except dns.exception.Timeout:
        return None


def test_ingress_routes_by_host_and_path(kube: Kubectl, cluster: Cluster, cns: str) -> None:
    a = echo(kube, cns, "app-a", replicas=1)
    b = echo(kube, cns, "app-b", replicas=1)
    ingress = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: app-a, port: {number: 80}}}}
      - {path: /b, pathType: Prefix, backend: {service: {name: app-b, port: {name: http}}}}
"""
    kube.ok("apply", "-n", cns, "-f", "-", input=ingress)

    def address() -> str:
        return kube.ok("get", "ingress", "web", "-n", cns, "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")

    ip = wait_for(address, 30, "the Ingress ADDRESS")
    row = kube.ok("get", "ingress", "web", "-n", cns).splitlines()[1].split()
    assert row[2] == "shop.example" and row[3] == ip
    host = {"Host": "shop.example"}
    assert wait_for(lambda: _try_get_host(f"http://{ip}/", host), 20, "ingress routing").text == a[0]
    assert get(f"http://{ip}/b/x", headers=host) == b[0]
    assert httpx.get(f"http://{ip}/", headers={"Host": "other.example"}, timeout=5).status_code == 404


def _try_get_host(url: str, headers: dict[str, str]) -> httpx.Response | None:
    try:
        r = httpx.get(url, headers=headers, timeout=3)
    except httpx.HTTPError:
        return None
    return r if r.status_code == 200 else None
