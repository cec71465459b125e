"""The real kubectl v1.35 on networking.k8s.io: Ingress, IngressClass, IPAddress, ServiceCIDR, and LB Services."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from .conftest import AGE, Kubectl, get_json, rows_without_age, table

NET = "/apis/networking.k8s.io/v1"


def columns(text: str) -> list[list[str]]:
    """kubectl's table cut at the header's column starts (so empty cells stay), AGE left out."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    rows = [[line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)] for line in lines]
    age = rows[0].index("AGE")
    for row in rows[1:]:
        assert AGE.match(row[age]), f"not a fresh age: {row[age]!r}"
    return [row[:age] + row[age + 1 :] for row in rows]


@pytest.fixture
def ingress_class(kubectl: Kubectl) -> Iterator[str]:
    """A default IngressClass made with `kubectl apply`, deleted afterwards (it is cluster-scoped)."""
    name = f"tk-{uuid.uuid4().hex[:6]}"
    doc = f"""
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: {name}
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: tinykube.io/ingress-controller
  parameters:
    apiGroup: k8s.example.com
    kind: IngressParameters
    name: external-lb
"""
    assert kubectl.ok("apply", "-f", "-", input=doc) == f"ingressclass.networking.k8s.io/{name} created\n"
    yield name
    kubectl("delete", "ingressclass", name, "--ignore-not-found")


def test_api_resources_list_the_networking_kinds(kubectl: Kubectl) -> None:
    rows = table(kubectl.ok("api-resources", "--api-group=networking.k8s.io"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert rows[1:] == [
        ["ingressclasses", "networking.k8s.io/v1", "false", "IngressClass"],
        ["ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"],
        ["ipaddresses", "ip", "networking.k8s.io/v1", "false", "IPAddress"],
        ["servicecidrs", "networking.k8s.io/v1", "false", "ServiceCIDR"],
    ]
    out = kubectl.ok("explain", "ipaddress.spec.parentRef")
    assert "ParentRef references the resource that an IPAddress is attached to." in out
    assert "pathType determines the interpretation of the path matching." in kubectl.ok(
        "explain", "ingress.spec.rules.http.paths.pathType"
    )


def test_create_and_get_ingress_with_the_default_class(
    kubectl: Kubectl, http: httpx.Client, namespace: str, ingress_class: str
) -> None:
    ns = namespace
    out = kubectl.ok("create", "ingress", "web", "-n", ns, "--rule=app.example.com/=web:80,tls=web-cert")
    assert out == "ingress.networking.k8s.io/web created\n"
    created = get_json(http, f"{NET}/namespaces/{ns}/ingresses/web")
    assert created["spec"]["ingressClassName"] == ingress_class  # DefaultIngressClass admission
    assert created["spec"]["rules"][0]["http"]["paths"][0] == {
        "path": "/",
        "pathType": "Exact",
        "backend": {"service": {"name": "web", "port": {"number": 80}}},
    }
    kubectl.ok("create", "ingress", "catch-all", "-n", ns, "--class=other", "--rule=/api*=api:http")
    assert columns(kubectl.ok("get", "ingress", "-n", ns)) == [
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS"],
        ["catch-all", "other", "*", "", "80"],
        ["web", ingress_class, "app.example.com", "", "80, 443"],
    ]
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "127.100.0.252"}]}}}
    r = http.patch(
        f"{NET}/namespaces/{ns}/ingresses/web/status",
        json=status,
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert columns(kubectl.ok("get", "ing", "web", "-n", ns)) == [
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS"],
        ["web", ingress_class, "app.example.com", "127.100.0.252", "80, 443"],
    ]
    assert rows_without_age(kubectl.ok("get", "ingressclass", ingress_class)) == [
        ["NAME", "CONTROLLER", "PARAMETERS"],
        [ingress_class, "tinykube.io/ingress-controller", "IngressParameters.k8s.example.com/external-lb"],
    ]
    err = kubectl.fails("create", "ingress", "bad", "-n", ns, "--rule=app.example.com/=Bad_Svc:80")
    assert err.startswith(
        'error: failed to create ingress: Ingress.networking.k8s.io "bad" is invalid: '
        'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Bad_Svc": a DNS-1035 label'
    )


def test_get_ipaddresses_and_servicecidrs(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    out = kubectl.ok("create", "service", "nodeport", "np", "-n", ns, "--tcp=80:8080")
    assert out == "service/np created\n"
    ip = get_json(http, f"/api/v1/namespaces/{ns}/services/np")["spec"]["clusterIP"]
    assert table(kubectl.ok("get", "ipaddress", ip)) == [
        ["NAME", "PARENTREF"],
        [ip, f"services/{ns}/np"],
    ]
    rows = table(kubectl.ok("get", "ipaddresses"))
    assert rows[0] == ["NAME", "PARENTREF"]
    assert ["127.96.0.1", "services/default/kubernetes"] in rows and [ip, f"services/{ns}/np"] in rows
    assert rows_without_age(kubectl.ok("get", "servicecidrs")) == [["NAME", "CIDRS"], ["kubernetes", "127.96.0.0/16"]]

    # several kinds at once, as `kubectl get a,b,c` prints them
    out = kubectl.ok("get", "ingress,servicecidrs,ipaddress", "-n", ns)
    blocks = out.strip().split("\n\n")
    assert table(blocks[0])[0] == ["NAME", "CIDRS", "AGE"]
    assert table(blocks[0])[1][:2] == ["servicecidr.networking.k8s.io/kubernetes", "127.96.0.0/16"]
    assert table(blocks[1])[0] == ["NAME", "PARENTREF"]
    assert [f"ipaddress.networking.k8s.io/{ip}", f"services/{ns}/np"] in table(blocks[1])

    kubectl.ok("delete", "service", "np", "-n", ns)
    r = kubectl("get", "ipaddress", ip)
    assert (
        r.returncode != 0
        and r.stderr == f'Error from server (NotFound): ipaddresses.networking.k8s.io "{ip}" not found\n'
    )


def test_load_balancer_external_ip_column(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    kubectl.ok("create", "service", "loadbalancer", "lb", "-n", ns, "--tcp=443:8443")
    svc = get_json(http, f"/api/v1/namespaces/{ns}/services/lb")
    port = svc["spec"]["ports"][0]["nodePort"]
    ip = svc["spec"]["clusterIP"]
    assert rows_without_age(kubectl.ok("get", "svc", "lb", "-n", ns)) == [
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"],
        ["lb", "LoadBalancer", ip, "<pending>", f"443:{port}/TCP"],
    ]
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "127.200.0.7"}]}}}
    r = http.patch(
        f"/api/v1/namespaces/{ns}/services/lb/status",
        json=status,
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"]["loadBalancer"]["ingress"] == [{"ip": "127.200.0.7", "ipMode": "VIP"}]  # defaulted
    assert rows_without_age(kubectl.ok("get", "svc", "lb", "-n", ns)) == [
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"],
        ["lb", "LoadBalancer", ip, "127.200.0.7", f"443:{port}/TCP"],
    ]
