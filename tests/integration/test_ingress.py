"""Ingress and IngressClass (networking.k8s.io/v1): CRUD, validation, status, the default class."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

NET = "/apis/networking.k8s.io/v1"
MERGE = {"content-type": "application/merge-patch+json"}
DEFAULT = "ingressclass.kubernetes.io/is-default-class"


def ingresses(ns: str, name: str = "") -> str:
    return f"{NET}/namespaces/{ns}/ingresses" + (f"/{name}" if name else "")


def backend(service: str = "web", port: Any = 80) -> dict[str, Any]:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service, "port": {key: port}}}


def ingress(name: str, *, paths: list[dict[str, Any]] | None = None, host: str = "app.example.com", **spec: Any):
    """An Ingress with one host rule."""
    if paths is None:
        paths = [{"path": "/", "pathType": "Prefix", "backend": backend()}]
    body = {"rules": [{"host": host, "http": {"paths": paths}}], **spec}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name}, "spec": body}


def ingress_class(name: str, default: bool = False, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {DEFAULT: "true"}
    body = {"controller": "tinykube.io/ingress", **spec}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": meta, "spec": body}


@pytest.fixture
async def classes(api: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """IngressClasses a test creates (cluster-scoped: deleted at the end so defaults do not leak)."""
    names: list[str] = []
    yield names
    for name in names:
        await api.delete(f"{NET}/ingressclasses/{name}")


async def test_ingress_crud_status_and_generation(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(ingresses(ns), json=ingress("web"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metadata"]["generation"] == 1
    assert created["status"] == {"loadBalancer": {}}
    assert created["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "Prefix"

    # status only through /status; a spec change bumps the generation
    status = {"loadBalancer": {"ingress": [{"ip": "127.100.0.252"}]}}
    r = await api.patch(
        ingresses(ns, "web"), headers=MERGE, json={"status": status, "spec": {"tls": [{"hosts": ["app.example.com"]}]}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == {"loadBalancer": {}} and r.json()["metadata"]["generation"] == 2
    r = await api.patch(f"{ingresses(ns, 'web')}/status", headers=MERGE, json={"status": status})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == status and r.json()["metadata"]["generation"] == 2
    r = await api.patch(
        f"{ingresses(ns, 'web')}/status",
        headers=MERGE,
        json={"status": {"loadBalancer": {"ingress": [{"ip": "nope"}]}}},
    )
    assert r.status_code == 422
    assert 'status.loadBalancer.ingress[0].ip: Invalid value: "nope": must be a valid IP address' in r.json()["message"]

    listed = (await api.get(ingresses(ns))).json()
    assert listed["kind"] == "IngressList" and [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    assert (await api.get(f"{NET}/ingresses")).status_code == 200
    assert (await api.delete(ingresses(ns, "web"))).status_code == 200
    assert (await api.get(ingresses(ns, "web"))).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            ingress("x", paths=[{"path": "/", "backend": backend()}]),
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
        ),
        (
            ingress("x", paths=[{"path": "/", "pathType": "Regex", "backend": backend()}]),
            'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": '
            'supported values: "Exact", "ImplementationSpecific", "Prefix"',
        ),
        (
            ingress("x", paths=[{"path": "api", "pathType": "Exact", "backend": backend()}]),
            'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path',
        ),
        (
            ingress("x", paths=[{"path": "/a//b", "pathType": "Prefix", "backend": backend()}]),
            "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'",
        ),
        (
            ingress("x", paths=[{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]),
            "spec.rules[0].http.paths[0].backend: Required value: port name or number is required",
        ),
        (
            ingress("x", paths=[{"path": "/", "pathType": "Prefix", "backend": backend("Web_1")}]),
            'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Web_1": a DNS-1035 label must '
            "consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end "
            "with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        (
            ingress("x", paths=[{"path": "/", "pathType": "Prefix", "backend": backend(port=70000)}]),
            "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: "
            "must be between 1 and 65535, inclusive",
        ),
        (
            ingress("x", paths=[{"path": "/", "pathType": "Prefix", "backend": {}}]),
            'spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required',
        ),
        (
            ingress("x", host="10.0.0.1"),
            'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
        ),
        (
            ingress("x", host="Bad_Host"),
            'spec.rules[0].host: Invalid value: "Bad_Host": a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            ingress("x", host="a.*.com"),
            "spec.rules[0].host: Invalid value: \"a.*.com\": a wildcard DNS-1123 subdomain must start with '*.', "
            "followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or "
            "'.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is "
            "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"}, "spec": {}},
            "spec: Invalid value: null: either `defaultBackend` or `rules` must be specified",
        ),
    ],
    ids=[
        "pathType-required",
        "pathType-unsupported",
        "path-relative",
        "path-double-slash",
        "backend-port-required",
        "backend-service-name",
        "backend-port-number",
        "backend-required",
        "host-ip",
        "host-syntax",
        "host-wildcard",
        "rules-or-default-backend",
    ],
)
async def test_ingress_validation(api: httpx.AsyncClient, ns: str, body: dict[str, Any], message: str) -> None:
    r = await api.post(ingresses(ns), json=body)
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid"
    assert status["message"] == f'Ingress.networking.k8s.io "x" is invalid: {message}'


async def test_wildcard_hosts_named_ports_and_default_backend_are_accepted(api: httpx.AsyncClient, ns: str) -> None:
    paths = [
        {"path": "/exact", "pathType": "Exact", "backend": backend("api", "http")},
        {"pathType": "ImplementationSpecific", "backend": backend("web", 8080)},
    ]
    body = ingress("ok", paths=paths, host="*.example.com", defaultBackend=backend("fallback", 80))
    r = await api.post(ingresses(ns), json=body)
    assert r.status_code == 201, r.text


async def test_ingress_class_crud_and_validation(api: httpx.AsyncClient, classes: list[str]) -> None:
    name = f"ic-{uuid.uuid4().hex[:6]}"
    body = ingress_class(name, parameters={"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"})
    r = await api.post(f"{NET}/ingressclasses", json=body)
    assert r.status_code == 201, r.text
    classes.append(name)
    created = r.json()
    assert created["spec"]["parameters"]["scope"] == "Cluster"  # defaulted
    assert created["metadata"]["generation"] == 1 and "namespace" not in created["metadata"]

    r = await api.patch(f"{NET}/ingressclasses/{name}", headers=MERGE, json={"spec": {"controller": "other.io/x"}})
    assert r.status_code == 422
    assert r.json()["message"] == (
        f'IngressClass.networking.k8s.io "{name}" is invalid: spec.controller: Invalid value: "other.io/x": '
        "field is immutable"
    )
    bad = ingress_class("bad", controller="no-domain")
    r = await api.post(f"{NET}/ingressclasses", json=bad)
    assert r.status_code == 422
    assert r.json()["message"] == (
        'IngressClass.networking.k8s.io "bad" is invalid: spec.controller: Invalid value: "no-domain": '
        'must be a domain-prefixed path (such as "acme.io/foo")'
    )
    bad = ingress_class("bad", parameters={"kind": "P", "name": "p", "scope": "Namespace"})
    r = await api.post(f"{NET}/ingressclasses", json=bad)
    assert r.status_code == 422
    assert r.json()["message"].endswith(
        "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"
    )
    assert (await api.delete(f"{NET}/ingressclasses/{name}")).status_code == 200


async def test_default_ingress_class_is_set_on_create(api: httpx.AsyncClient, ns: str, classes: list[str]) -> None:
    suffix = uuid.uuid4().hex[:6]
    older, newer, plain = f"older-{suffix}", f"newer-{suffix}", f"plain-{suffix}"
    for name, default in ((plain, False), (older, True)):
        assert (await api.post(f"{NET}/ingressclasses", json=ingress_class(name, default))).status_code == 201
        classes.append(name)
    r = await api.post(ingresses(ns), json=ingress("first"))
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["ingressClassName"] == older

    # an explicit class, or the legacy annotation, is left alone
    r = await api.post(ingresses(ns), json=ingress("explicit", ingressClassName=plain))
    assert r.json()["spec"]["ingressClassName"] == plain
    annotated = ingress("annotated")
    annotated["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "legacy"}
    r = await api.post(ingresses(ns), json=annotated)
    assert r.status_code == 201 and "ingressClassName" not in r.json()["spec"]
    mismatch = ingress("mismatch", ingressClassName=plain)
    mismatch["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "legacy"}
    r = await api.post(ingresses(ns), json=mismatch)
    assert r.status_code == 422
    assert r.json()["message"] == (
        'Ingress.networking.k8s.io "mismatch" is invalid: annotations.kubernetes.io/ingress.class: '
        'Invalid value: "legacy": must match `ingressClassName` when both are specified'
    )

    # two defaults: the newest wins (creation times have second precision, so wait for the next second)
    first_created = (await api.get(f"{NET}/ingressclasses/{older}")).json()["metadata"]["creationTimestamp"]
    while True:
        r = await api.post(f"{NET}/ingressclasses", json=ingress_class(newer, True))
        assert r.status_code == 201, r.text
        if r.json()["metadata"]["creationTimestamp"] > first_created:
            break
        assert (await api.delete(f"{NET}/ingressclasses/{newer}")).status_code == 200
    classes.append(newer)
    r = await api.post(ingresses(ns), json=ingress("second"))
    assert r.json()["spec"]["ingressClassName"] == newer

    # updates never change the class; without a default, nothing is set
    r = await api.patch(ingresses(ns, "annotated"), headers=MERGE, json={"metadata": {"labels": {"a": "b"}}})
    assert r.status_code == 200 and "ingressClassName" not in r.json()["spec"]
    for name in (older, newer):
        assert (await api.delete(f"{NET}/ingressclasses/{name}")).status_code == 200
    r = await api.post(ingresses(ns), json=ingress("third"))
    assert r.status_code == 201 and "ingressClassName" not in r.json()["spec"]
