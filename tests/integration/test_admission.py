"""LimitRanger, ResourceQuota (admission and controller) and PodSecurity against the real apiserver."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from controller_kit import controllers, eventually

from tinykube.procs import start_apiserver

POD_STATUS_FORBIDDEN = 403


def _pod(name: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", **container}]},
    }


async def _create(api: httpx.AsyncClient, ns: str, plural: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/api/v1/namespaces/{ns}/{plural}", json=body)


async def _cache_caught_up(api: httpx.AsyncClient, path: str) -> None:
    """A consistent list returns once the apiserver's watch cache, which admission reads, has caught
    up with etcd (what upstream's informers give plug-ins, a moment after a write)."""
    assert (await api.get(path)).status_code == 200


# --- LimitRanger -----------------------------------------------------------------------------


async def test_limit_range_defaults_and_refusal(api: httpx.AsyncClient, ns: str) -> None:
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits"},
        "spec": {
            "limits": [
                {"type": "Container", "max": {"cpu": "1"}, "default": {"cpu": "500m", "memory": "128Mi"}},
                {"type": "Pod", "max": {"memory": "1Gi"}},
            ]
        },
    }
    r = await _create(api, ns, "limitranges", limits)
    assert r.status_code == 201, r.text
    stored = r.json()["spec"]["limits"][0]
    assert stored["defaultRequest"] == {"cpu": "500m", "memory": "128Mi"}  # SetDefaults_LimitRangeItem
    await _cache_caught_up(api, f"/api/v1/namespaces/{ns}/limitranges")

    r = await _create(api, ns, "pods", _pod("defaulted"))
    assert r.status_code == 201, r.text
    pod = r.json()
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "500m", "memory": "128Mi"},
    }
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    )

    r = await _create(api, ns, "pods", _pod("too-big", resources={"limits": {"cpu": "2"}}))
    assert r.status_code == POD_STATUS_FORBIDDEN, r.text
    status = r.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == 'pods "too-big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    assert status["details"] == {"name": "too-big", "kind": "pods"}

    table = await api.get(
        f"/api/v1/namespaces/{ns}/limitranges", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert [c["name"] for c in table.json()["columnDefinitions"]] == ["Name", "Created At"]
    assert table.json()["rows"][0]["cells"][1].endswith("Z")


# --- ResourceQuota ---------------------------------------------------------------------------


async def _quota(api: httpx.AsyncClient, ns: str, hard: dict[str, str], used: dict[str, str]) -> dict[str, Any]:
    """A quota whose status is set by hand (no controller runs here), as upstream's admission tests do."""
    body = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota"}, "spec": {"hard": hard}}
    r = await _create(api, ns, "resourcequotas", body)
    assert r.status_code == 201, r.text
    quota = r.json()
    quota["status"] = {"hard": hard, "used": used}
    r = await api.put(f"/api/v1/namespaces/{ns}/resourcequotas/quota/status", json=quota)
    assert r.status_code == 200, r.text
    await _cache_caught_up(api, f"/api/v1/namespaces/{ns}/resourcequotas")
    return r.json()


async def test_quota_exceeded_message_and_no_over_admission(api: httpx.AsyncClient, ns: str) -> None:
    await _quota(api, ns, {"pods": "2"}, {"pods": "0"})
    results = await asyncio.gather(*(_create(api, ns, "pods", _pod(f"p{i}")) for i in range(10)))
    created = [r for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code != 201]
    assert len(created) == 2, [r.text for r in results]
    for r in refused:
        assert r.status_code == 403, r.text
        name = r.json()["details"]["name"]
        assert r.json()["message"] == (
            f'pods "{name}" is forbidden: exceeded quota: quota, requested: pods=1, used: pods=2, limited: pods=2'
        )
    quota = (await api.get(f"/api/v1/namespaces/{ns}/resourcequotas/quota")).json()
    assert quota["status"]["used"] == {"pods": "2"}
    listing = (await api.get(f"/api/v1/namespaces/{ns}/pods")).json()
    assert len(listing["items"]) == 2

    dry = await api.post(f"/api/v1/namespaces/{ns}/pods?dryRun=All", json=_pod("dry"))
    assert dry.status_code == 403  # a dry run is checked too, and charges nothing
    table = await api.get(
        f"/api/v1/namespaces/{ns}/resourcequotas", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert [c["name"] for c in table.json()["columnDefinitions"]] == ["Name", "Request", "Limit", "Age"]
    assert table.json()["rows"][0]["cells"][:3] == ["quota", "pods: 2/2", ""]


async def test_quota_compute_resources_must_be_given(api: httpx.AsyncClient, ns: str) -> None:
    await _quota(api, ns, {"limits.cpu": "2", "requests.memory": "1Gi"}, {"limits.cpu": "0", "requests.memory": "0"})
    r = await _create(api, ns, "pods", _pod("bare"))
    assert r.status_code == 403
    assert r.json()["message"] == (
        'pods "bare" is forbidden: failed quota: quota: must specify limits.cpu for: c; requests.memory for: c'
    )
    ok = await _create(api, ns, "pods", _pod("sized", resources={"limits": {"cpu": "1500m", "memory": "512Mi"}}))
    assert ok.status_code == 201, ok.text
    big = await _create(api, ns, "pods", _pod("big", resources={"limits": {"cpu": "1", "memory": "64Mi"}}))
    assert big.json()["message"].endswith(
        "exceeded quota: quota, requested: limits.cpu=1, used: limits.cpu=1500m, limited: limits.cpu=2"
    )


async def test_quota_controller_keeps_status_used(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with controllers(apiserver, "resourcequota") as ctx:
        hard = {"pods": "3", "requests.cpu": "1", "configmaps": "5", "count/deployments.apps": "2"}
        body = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"}, "spec": {"hard": hard}}
        # an object that exists before the quota is counted by the controller, not by admission
        assert (await _create(api, ns, "configmaps", {"metadata": {"name": "early"}, "data": {}})).status_code == 201
        assert (await _create(api, ns, "resourcequotas", body)).status_code == 201

        async def used(expected: dict[str, str]) -> dict[str, Any] | None:
            q = await ctx.api.get("resourcequotas", "compute", ns)
            status = q.get("status") or {}
            return q if status.get("used") == expected and status.get("hard") == hard else None

        base = {"pods": "0", "requests.cpu": "0", "configmaps": "1", "count/deployments.apps": "0"}
        await eventually(lambda: used(base), 10, "the controller's first status")

        sized = {"resources": {"requests": {"cpu": "300m"}}}
        for name in ("a", "b"):
            assert (await _create(api, ns, "pods", _pod(name, **sized))).status_code == 201
        charged = {**base, "pods": "2", "requests.cpu": "600m"}
        await eventually(lambda: used(charged), 10, "usage after two pods")

        r = await api.delete(f"/api/v1/namespaces/{ns}/pods/a?gracePeriodSeconds=0")
        assert r.status_code == 200, r.text
        await eventually(lambda: used({**base, "pods": "1", "requests.cpu": "300m"}), 10, "usage given back")

        over = await _create(api, ns, "pods", _pod("c", resources={"requests": {"cpu": "800m"}}))
        assert over.status_code == 403
        assert (
            "requested: requests.cpu=800m, used: requests.cpu=300m, limited: requests.cpu=1" in over.json()["message"]
        )


# --- PodSecurity -----------------------------------------------------------------------------

PRIVILEGED_MESSAGE = (
    'pods "x" is forbidden: violates PodSecurity "restricted:latest": '
    'privileged (container "c" must not set securityContext.privileged=true), '
    'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
    '"Localhost")'
)


async def _label(api: httpx.AsyncClient, ns: str, labels: dict[str, str]) -> httpx.Response:
    r = await api.patch(
        f"/api/v1/namespaces/{ns}",
        json={"metadata": {"labels": labels}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    await _cache_caught_up(api, "/api/v1/namespaces")
    return r


async def test_pod_security_enforce_refuses_with_upstream_message(api: httpx.AsyncClient, ns: str) -> None:
    # admitted while the namespace has no labels (privileged), refused once they say restricted
    r = await _create(api, ns, "pods", _pod("before", securityContext={"privileged": True}))
    assert r.status_code == 201, r.text
    r = await _label(api, ns, {"pod-security.kubernetes.io/enforce": "restricted"})
    assert r.status_code == 200, r.text
    r = await _create(api, ns, "pods", _pod("x", securityContext={"privileged": True}))
    assert r.status_code == 403, r.text
    assert r.json()["message"] == PRIVILEGED_MESSAGE
    assert r.json()["reason"] == "Forbidden"

    restricted = _pod(
        "ok",
        securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    )
    restricted["spec"]["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    r = await _create(api, ns, "pods", restricted)
    assert r.status_code == 201, r.text
    assert "warning" not in r.headers


async def test_pod_security_warn_header_and_namespace_labels(api: httpx.AsyncClient, ns: str) -> None:
    r = await _label(api, ns, {"pod-security.kubernetes.io/warn": "baseline"})
    assert r.status_code == 200, r.text
    r = await _create(api, ns, "pods", _pod("plain", ports=[{"containerPort": 80}]))
    assert r.status_code == 201 and "warning" not in r.headers
    body = _pod("hostport", ports=[{"containerPort": 80, "hostPort": 8080}])
    r = await _create(api, ns, "pods", body)
    assert r.status_code == 201, r.text
    assert r.headers.get_list("warning") == [
        '299 - "would violate PodSecurity \\"baseline:latest\\": hostPort (container \\"c\\" uses hostPort 8080)"'
    ]
    # workload templates are checked for warn (never refused)
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": body["spec"]},
        },
    }
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deploy)
    assert r.status_code == 201, r.text
    assert "would violate PodSecurity" in r.headers.get("warning", "")

    r = await _label(api, ns, {"pod-security.kubernetes.io/enforce": "strict"})
    assert r.status_code == 422
    assert r.json()["message"] == (
        f'Namespace "{ns}" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "strict": must be one of privileged, baseline, restricted'
    )
    r = await _label(api, ns, {"pod-security.kubernetes.io/enforce": "baseline"})
    assert r.status_code == 200, r.text
    assert r.headers.get_list("warning") == [
        f'299 - "existing pods in namespace \\"{ns}\\" violate the new PodSecurity enforce level '
        '\\"baseline:latest\\""',
        '299 - "hostport: hostPort"',
    ]


async def test_admission_annotations_reach_the_audit_log(etcd: str, tmp_path: Path) -> None:
    """PodSecurity's audit annotations (and the enforced policy) land in the audit event of the write."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  omitStages: [RequestReceived]\n"
    )
    log = tmp_path / "audit.log"
    proc, url = start_apiserver(
        tmp_path, etcd, extra=["--audit-policy-file", str(policy), "--audit-log-path", str(log)]
    )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            ns = f"audit-{uuid.uuid4().hex[:8]}"
            labels = {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/audit": "restricted",
            }
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
            assert (await api.post("/api/v1/namespaces", json=body)).status_code == 201
            r = await _create(api, ns, "pods", _pod("audited"))
            assert r.status_code == 201, r.text

            async def event() -> dict[str, Any] | None:
                for line in log.read_text().splitlines() if log.exists() else []:
                    ev = json.loads(line)
                    ref = ev.get("objectRef") or {}
                    if ev["verb"] == "create" and ref.get("resource") == "pods" and ref.get("namespace") == ns:
                        return ev
                return None

            found = await eventually(event, 10, "the pod's audit event")
            annotations = found["annotations"]
            assert annotations["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
            assert annotations["pod-security.kubernetes.io/audit-violations"].startswith(
                'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
            )
    finally:
        proc.stop()
