"""Dynamic admission against the real apiserver: HTTPS webhooks started by the test (a throwaway CA),
reached by URL and through a Service's endpoints, that mutate (a JSONPatch label) and deny, and what
failurePolicy, timeouts and a wrong CA do. Each test's configurations select only its namespace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from webhook_kit import Review, WebhookServer, allow, deny, json_patch, make_pki, webhook_server

from tinykube.procs import free_port

ADMISSION = "/apis/admissionregistration.k8s.io/v1"


def _selector(ns: str) -> dict[str, Any]:
    return {"matchLabels": {"webhook-test": ns}}


def _hook(name: str, client_config: dict[str, Any], ns: str, resources: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": client_config,
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": resources}],
        "namespaceSelector": _selector(ns),
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **extra,
    }


@contextlib.asynccontextmanager
async def configuration(
    api: httpx.AsyncClient, kind: str, name: str, webhooks: list[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    """Create a webhook configuration (cluster-scoped: always deleted afterwards)."""
    plural = kind.lower() + "s"
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": webhooks,
    }
    r = await api.post(f"{ADMISSION}/{plural}", json=body)
    assert r.status_code == 201, r.text
    # a consistent list waits for the apiserver's cache, which admission reads, to hold the new configuration
    assert (await api.get(f"{ADMISSION}/{plural}")).status_code == 200
    try:
        yield r.json()
    finally:
        await api.delete(f"{ADMISSION}/{plural}/{name}")


async def _label_namespace(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.patch(
        f"/api/v1/namespaces/{ns}",
        json={"metadata": {"labels": {"webhook-test": ns}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert (await api.get("/api/v1/namespaces")).status_code == 200  # the cache admission reads caught up


async def _service_to(api: httpx.AsyncClient, ns: str, server: WebhookServer) -> None:
    """A selector-less Service `wh` (port 443) whose EndpointSlice points at the test's server."""
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "wh"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": server.port}]},
    }
    assert (await api.post(f"/api/v1/namespaces/{ns}/services", json=svc)).status_code == 201
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "wh-1", "labels": {"kubernetes.io/service-name": "wh"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": server.port, "protocol": "TCP"}],
    }
    r = await api.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", json=eps)
    assert r.status_code == 201, r.text
    assert (await api.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices")).status_code == 200


def _handler(path: str, review: Review) -> dict[str, Any]:
    request = review["request"]
    obj = request["object"] or {}
    if path == "/mutate":
        ops: list[dict[str, Any]] = []
        if not (obj.get("metadata") or {}).get("labels"):
            ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
        ops.append({"op": "add", "path": "/metadata/labels/mutated-by", "value": "label.example.com"})
        return json_patch(review, ops)
    if "forbidden" in (obj.get("data") or {}):
        return deny(review, 'configmap key "forbidden" is not allowed')
    return allow(review, warnings=["checked by deny.example.com"], auditAnnotations={"checked": "yes"})


async def test_webhooks_mutate_and_deny(api: httpx.AsyncClient, ns: str) -> None:
    await _label_namespace(api, ns)
    async with webhook_server(_handler, dns_names=[f"wh.{ns}.svc"]) as server:
        await _service_to(api, ns, server)
        bundle = server.pki.ca_bundle
        mutate = _hook(
            "label.example.com",
            {"service": {"namespace": ns, "name": "wh", "path": "/mutate"}, "caBundle": bundle},
            ns,
            ["pods"],
        )
        skip = "!has(object.metadata.labels) || !('skip-webhook' in object.metadata.labels)"
        validate = _hook(
            "deny.example.com",
            {"url": server.url("/validate"), "caBundle": bundle},
            ns,
            ["configmaps"],
            matchConditions=[{"name": "not-skipped", "expression": skip}],
        )
        async with (
            configuration(api, "MutatingWebhookConfiguration", f"{ns}-m", [mutate]) as stored,
            configuration(api, "ValidatingWebhookConfiguration", f"{ns}-v", [validate]),
        ):
            assert stored["webhooks"][0]["failurePolicy"] == "Fail" and stored["webhooks"][0]["timeoutSeconds"] == 10
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }
            r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
            assert r.status_code == 201, r.text
            assert r.json()["metadata"]["labels"] == {"mutated-by": "label.example.com"}
            path, review = server.reviews[-1]
            request = review["request"]
            assert path == "/mutate" and review["apiVersion"] == "admission.k8s.io/v1"
            assert request["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
            assert request["resource"] == {"group": "", "version": "v1", "resource": "pods"}
            assert request["operation"] == "CREATE" and request["namespace"] == ns and request["name"] == "p"
            assert request["dryRun"] is False and request["options"]["kind"] == "CreateOptions"
            assert request["userInfo"]["username"]

            good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}, "data": {"a": "b"}}
            r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=good)
            assert r.status_code == 201, r.text
            assert r.headers.get_list("warning") == ['299 - "checked by deny.example.com"']

            bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "data": {"forbidden": "x"}}
            r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=bad)
            assert r.status_code == 403, r.text
            assert r.json()["message"] == (
                'admission webhook "deny.example.com" denied the request: configmap key "forbidden" is not allowed'
            )
            assert (await api.get(f"/api/v1/namespaces/{ns}/configmaps/bad")).status_code == 404
            # matchConditions: a labelled object never reaches the webhook
            seen = len(server.reviews)
            bad["metadata"]["labels"] = {"skip-webhook": "yes"}
            r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=bad)
            assert r.status_code == 201, r.text
            assert len(server.reviews) == seen

            # the other namespaces are not selected: their pods never reach the webhook
            seen = len(server.reviews)
            other = (await api.post("/api/v1/namespaces", json={"metadata": {"name": f"{ns}-other"}})).json()
            r = await api.post(f"/api/v1/namespaces/{other['metadata']['name']}/pods", json=pod)
            assert r.status_code == 201 and "labels" not in r.json()["metadata"]
            assert len(server.reviews) == seen
            await api.delete(f"/api/v1/namespaces/{ns}-other")


async def test_a_binding_is_admitted_as_a_create_of_the_binding(api: httpx.AsyncClient, ns: str) -> None:
    await _label_namespace(api, ns)

    def annotate(path: str, review: Review) -> dict[str, Any]:
        ops = [{"op": "add", "path": "/metadata/annotations", "value": {"example.com/zone": "z1"}}]
        return json_patch(review, ops)

    async with webhook_server(annotate) as server:
        hook = _hook(
            "bind.example.com", {"url": server.url("/bind"), "caBundle": server.pki.ca_bundle}, ns, ["pods/binding"]
        )
        async with configuration(api, "MutatingWebhookConfiguration", f"{ns}-b", [hook]):
            pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)).status_code == 201
            assert not server.reviews  # the pod's own create is not a pods/binding write
            binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"name": "n1"}}
            r = await api.post(f"/api/v1/namespaces/{ns}/pods/p/binding", json=binding)
            assert r.status_code == 201, r.text
            [(_, review)] = server.reviews
            request = review["request"]
            assert request["operation"] == "CREATE" and request["subResource"] == "binding"
            assert request["kind"] == {"group": "", "version": "v1", "kind": "Binding"}
            assert request["object"]["kind"] == "Binding" and request["object"]["target"]["name"] == "n1"
            assert request["oldObject"] is None
            got = (await api.get(f"/api/v1/namespaces/{ns}/pods/p")).json()
            # the Binding's annotations, as the webhook left them, are copied onto the pod
            assert got["spec"]["nodeName"] == "n1" and got["metadata"]["annotations"] == {"example.com/zone": "z1"}


async def test_failure_policy_ignore_and_fail(api: httpx.AsyncClient, ns: str) -> None:
    await _label_namespace(api, ns)
    port = free_port()  # nothing listens there
    url = f"https://127.0.0.1:{port}/validate"
    ignore = _hook("ignore.example.com", {"url": url}, ns, ["configmaps"], failurePolicy="Ignore")
    async with configuration(api, "ValidatingWebhookConfiguration", f"{ns}-ignore", [ignore]):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "passes"}}
        r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=body)
        assert r.status_code == 201, r.text
    fail = _hook("fail.example.com", {"url": url}, ns, ["configmaps"])
    async with configuration(api, "ValidatingWebhookConfiguration", f"{ns}-fail", [fail]):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "refused"}}
        r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=body)
        assert r.status_code == 500, r.text
        assert r.json()["reason"] == "InternalError"
        assert r.json()["message"] == (
            'Internal error occurred: failed calling webhook "fail.example.com": failed to call webhook: '
            f'Post "https://127.0.0.1:{port}/validate?timeout=10s": '
            f"dial tcp 127.0.0.1:{port}: connect: connection refused"
        )


async def test_timeout_and_untrusted_certificate(api: httpx.AsyncClient, ns: str) -> None:
    await _label_namespace(api, ns)

    async def slow(path: str, review: Review) -> dict[str, Any]:
        await asyncio.sleep(3)
        return allow(review)

    async with webhook_server(slow) as server:
        timeout = _hook(
            "slow.example.com",
            {"url": server.url("/slow"), "caBundle": server.pki.ca_bundle},
            ns,
            ["configmaps"],
            timeoutSeconds=1,
        )
        wrong_ca = _hook(
            "untrusted.example.com",
            {"url": server.url("/x"), "caBundle": make_pki(["x"], []).ca_bundle},
            ns,
            ["secrets"],
        )
        async with configuration(api, "ValidatingWebhookConfiguration", f"{ns}-v", [timeout, wrong_ca]):
            r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "slow"}})
            assert r.status_code == 500, r.text
            assert r.json()["message"] == (
                'Internal error occurred: failed calling webhook "slow.example.com": failed to call webhook: '
                f'Post "{server.url("/slow")}?timeout=1s": context deadline exceeded'
            )
            r = await api.post(f"/api/v1/namespaces/{ns}/secrets", json={"metadata": {"name": "s"}})
            assert r.status_code == 500, r.text
            assert r.json()["message"].endswith(
                f'Post "{server.url("/x")}?timeout=10s": tls: failed to verify certificate: '
                "x509: certificate signed by unknown authority"
            )


async def test_configuration_validation(api: httpx.AsyncClient) -> None:
    hook = {
        "name": "short",
        "clientConfig": {"url": "http://example.com/x?a=b"},
        "rules": [{"operations": ["CREATE", "*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "matchConditions": [{"name": "bad", "expression": "object.metadata.name =="}],
        "timeoutSeconds": 31,
        "admissionReviewVersions": ["v2"],
    }
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "invalid-config"},
        "webhooks": [hook],
    }
    r = await api.post(f"{ADMISSION}/validatingwebhookconfigurations", json=body)
    assert r.status_code == 422, r.text
    causes = {(c["field"], c["message"].split(":")[0]) for c in r.json()["details"]["causes"]}
    assert causes >= {
        ("webhooks[0].name", "Invalid value"),
        ("webhooks[0].rules[0].operations", "Invalid value"),
        ("webhooks[0].sideEffects", "Required value"),
        ("webhooks[0].timeoutSeconds", "Invalid value"),
        ("webhooks[0].clientConfig.url", "Invalid value"),
        ("webhooks[0].matchConditions[0].expression", "Invalid value"),
        ("webhooks[0].admissionReviewVersions", "Invalid value"),
    }
    messages = [c["message"] for c in r.json()["details"]["causes"]]
    assert 'Invalid value: "short": should be a domain with at least three segments separated by dots' in messages
    assert "Invalid value: 31: the timeout value must be between 1 and 30 seconds" in messages
