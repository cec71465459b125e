"""The controller-manager on custom resources: found through discovery, emptied from a deleted namespace,
collected by the garbage collector as owners and as dependents."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from controller_kit import controllers, eventually
from housekeeping_kit import configmap_body, get_or_none, owner_ref, uniq

from apimachinery.resources import ResourceInfo
from client.discovery import preferred_resources
from client.rest import ApiClient
from tests.integration.test_crd import CRDS, crontab, crontab_crd, established


@pytest.fixture
async def crontabs(api: httpx.AsyncClient) -> AsyncIterator[ResourceInfo]:
    """The CronTab kind of a fresh CRD (deleted afterwards)."""
    group = f"k{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=crontab_crd(group))).status_code == 201
    await established(api, f"crontabs.{group}")
    yield ResourceInfo(group, "v1", "CronTab", "crontabs")
    await api.delete(f"{CRDS}/crontabs.{group}")


async def test_discovery_lists_custom_resources(apiserver: str, crontabs: ResourceInfo) -> None:
    res = crontabs
    async with ApiClient(apiserver) as api:
        found = {(r.group, r.plural): r for r in await preferred_resources(api)}
    got = found[(res.group, "crontabs")]
    assert (got.kind, got.version, got.namespaced, got.short_names) == ("CronTab", "v1", True, ("ct",))
    assert found[("apps", "deployments")].subresources == ("status", "scale")  # the built-in table's entry


async def test_namespace_deletion_deletes_custom_resources(apiserver: str, crontabs: ResourceInfo) -> None:
    res = crontabs
    async with controllers(apiserver, "namespace") as ctx:
        api = ctx.api
        ns = uniq("nscr")
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await api.create(res, crontab(res.group, "in-ns"), ns)
        await api.delete("namespaces", ns)

        async def gone() -> bool:
            return await get_or_none(api, "namespaces", ns) is None

        await eventually(gone, 20, "namespace with a custom resource removed")
        assert (await api.list(res, ns))["items"] == []


async def test_garbage_collector_follows_custom_owners_and_dependents(
    apiserver: str, ns: str, crontabs: ResourceInfo
) -> None:
    res = crontabs
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        # a ConfigMap owned by a CronTab, and a CronTab owned by a ConfigMap
        owner_ct = await api.create(res, crontab(res.group, "owner"), ns)
        dependent_cm = await api.create("configmaps", configmap_body(uniq("cm"), [owner_ref(owner_ct)]), ns)
        owner_cm = await api.create("configmaps", configmap_body(uniq("cm")), ns)
        child = crontab(res.group, "child")
        child["metadata"]["ownerReferences"] = [owner_ref(owner_cm)]
        await api.create(res, child, ns)
        await api.delete(res, "owner", ns)
        await api.delete("configmaps", owner_cm["metadata"]["name"], ns)

        async def both_collected() -> bool:
            cm_gone = await get_or_none(api, "configmaps", dependent_cm["metadata"]["name"], ns) is None
            return cm_gone and await get_or_none(api, res, "child", ns) is None

        await eventually(both_collected, 20, "dependents of a deleted CronTab and ConfigMap collected")


async def test_horizontal_pod_autoscaler_scales_a_custom_resource(
    apiserver: str, ns: str, crontabs: ResourceInfo
) -> None:
    async with controllers(apiserver, "horizontalpodautoscaling") as ctx:
        api = ctx.api
        await api.create(crontabs, crontab(crontabs.group, "scaled", replicas=5), ns)
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "ct"},
            "spec": {
                "scaleTargetRef": {"apiVersion": f"{crontabs.group}/v1", "kind": "CronTab", "name": "scaled"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                    }
                ],
            },
        }
        await api.create("horizontalpodautoscalers", hpa, ns)

        async def capped() -> bool:
            return (await api.get(crontabs, "scaled", ns))["spec"]["replicas"] == 3

        await eventually(capped, 20, "the HPA to scale the CronTab down to maxReplicas through its scale subresource")
        status = (await api.get("horizontalpodautoscalers", "ct", ns))["status"]
        able = next(c for c in status["conditions"] if c["type"] == "AbleToScale")
        assert able["status"] == "True"
