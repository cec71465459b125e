"""kubernetes_asyncio and lightkube, each writing a custom resource and watching it: ADDED, MODIFIED, DELETED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import watch as k8s_watch
from lightkube import AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from tests.e2e.thirdparty_crd import crontab_crd, delete_crd, install_crd

GROUP = "watch.thirdparty.example.com"
PLURAL = "crontabs"
WATCH_TIMEOUT = 30.0
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture(scope="module")
def watched_crd(http: httpx.Client) -> Iterator[None]:
    """The CronTab CRD of this module, installed and Established; deleted after the module."""
    crd = crontab_crd(GROUP)
    install_crd(http, crd)
    yield
    delete_crd(http, crd["metadata"]["name"])


def _crontab(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "CronTab",
        "metadata": {"name": name},
        "spec": {"cronSpec": "*/5 * * * *", "image": image, "replicas": 1},
    }


async def _collect(events: AsyncIterator[tuple[str, str, str]], name: str) -> list[tuple[str, str]]:
    """(type, spec.image) of the events on `name`, up to and including its DELETED event."""
    seen: list[tuple[str, str]] = []
    async for kind, obj_name, image in events:
        if obj_name == name:
            seen.append((kind, image))
            if kind == "DELETED":
                break
    return seen


async def test_kubernetes_asyncio_watches_a_custom_resource(apiserver: str, watched_crd: None, namespace: str) -> None:
    async with k8s_client.ApiClient(k8s_client.Configuration(host=apiserver)) as api:
        objects = k8s_client.CustomObjectsApi(api)
        listed = await objects.list_namespaced_custom_object(GROUP, "v1", namespace, PLURAL)
        assert listed["items"] == []
        w = k8s_watch.Watch()

        async def events() -> AsyncIterator[tuple[str, str, str]]:
            stream = w.stream(
                objects.list_namespaced_custom_object,
                GROUP,
                "v1",
                namespace,
                PLURAL,
                resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=int(WATCH_TIMEOUT),
            )
            async for event in stream:
                obj = event["object"]
                yield event["type"], obj["metadata"]["name"], obj["spec"]["image"]

        watching = asyncio.create_task(_collect(events(), "py"))
        await objects.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, _crontab("py", "one"))
        # with a dict body the generated client would send it as a JSON patch (a list of operations)
        await objects.patch_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, "py", {"spec": {"image": "two"}}, _content_type=MERGE_PATCH
        )
        await objects.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "py")
        seen = await asyncio.wait_for(watching, WATCH_TIMEOUT)
        w.stop()
    assert seen == [("ADDED", "one"), ("MODIFIED", "two"), ("DELETED", "two")]


def _kubeconfig(server: str) -> KubeConfig:
    """A kubeconfig with an anonymous user (lightkube's `KubeConfig.from_server` has none, which its client refuses)."""
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "t", "cluster": {"server": server}}],
            "users": [{"name": "anonymous", "user": {}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "anonymous"}}],
            "current-context": "t",
        }
    )


async def test_lightkube_watches_a_custom_resource(apiserver: str, watched_crd: None, namespace: str) -> None:
    CronTab = create_namespaced_resource(GROUP, "v1", "CronTab", PLURAL)
    kube = AsyncClient(_kubeconfig(apiserver), namespace=namespace)
    try:
        listing = kube.list(CronTab)
        assert [obj async for obj in listing] == []
        since = listing.resourceVersion

        async def events() -> AsyncIterator[tuple[str, str, str]]:
            async for kind, obj in kube.watch(CronTab, resource_version=since, server_timeout=int(WATCH_TIMEOUT)):
                yield kind, obj.metadata.name, obj.spec["image"]

        watching = asyncio.create_task(_collect(events(), "lk"))
        created = await kube.create(CronTab.from_dict(_crontab("lk", "one")))
        assert created.metadata.uid
        patched = await kube.patch(CronTab, "lk", {"spec": {"image": "two"}}, patch_type=PatchType.MERGE)
        assert patched.spec["image"] == "two"
        await kube.delete(CronTab, "lk")
        seen = await asyncio.wait_for(watching, WATCH_TIMEOUT)
    finally:
        await kube.close()
    assert seen == [("ADDED", "one"), ("MODIFIED", "two"), ("DELETED", "two")]
