"""The official `kubernetes` Python client against tinykube: CRUD, patches, errors and watch streams."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api_client(apiserver: str) -> Iterator[client.ApiClient]:
    """An ApiClient configured for the session apiserver (plain HTTP, no credentials)."""
    config = client.Configuration(host=apiserver)
    with client.ApiClient(config) as api:
        yield api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api on the session apiserver."""
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    """AppsV1Api on the session apiserver."""
    return client.AppsV1Api(api_client)


def _configmap(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def test_version_and_discovery(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert (info.major, info.minor) == ("1", "35")
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"apps", "batch"} <= groups
    resources = client.CoreV1Api(api_client).get_api_resources()
    assert "pods" in {r.name for r in resources.resources}


def test_configmap_create_list_patch_delete(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, _configmap("one", {"a": "1"}, {"app": "py"}))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    core.create_namespaced_config_map(namespace, _configmap("two", {"b": "2"}, {"app": "other"}))

    listing = core.list_namespaced_config_map(namespace)
    assert [cm.metadata.name for cm in listing.items] == ["one", "two"]
    assert listing.metadata.resource_version
    selected = core.list_namespaced_config_map(namespace, label_selector="app=py")
    assert [cm.metadata.name for cm in selected.items] == ["one"]
    by_field = core.list_namespaced_config_map(namespace, field_selector="metadata.name=two")
    assert [cm.metadata.name for cm in by_field.items] == ["two"]
    page = core.list_namespaced_config_map(namespace, limit=1)
    assert len(page.items) == 1 and page.metadata._continue
    rest = core.list_namespaced_config_map(namespace, limit=1, _continue=page.metadata._continue)
    assert [cm.metadata.name for cm in rest.items] == ["two"]

    patched = core.patch_namespaced_config_map(
        "one", namespace, {"data": {"c": "3"}, "metadata": {"labels": {"x": "y"}}}
    )
    assert patched.data == {"a": "1", "c": "3"}
    assert patched.metadata.labels == {"app": "py", "x": "y"}
    patched = core.patch_namespaced_config_map("one", namespace, [{"op": "remove", "path": "/data/a"}])
    assert patched.data == {"c": "3"}

    current = core.read_namespaced_config_map("one", namespace)
    current.data["d"] = "4"
    replaced = core.replace_namespaced_config_map("one", namespace, current)
    assert replaced.data == {"c": "3", "d": "4"}
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)

    # A stale resourceVersion on replace is a 409 Conflict.
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("one", namespace, current)
    assert e.value.status == 409

    status = core.delete_namespaced_config_map(
        "one", namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    assert status is not None
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("one", namespace)
    assert e.value.status == 404
    assert '"reason":"NotFound"' in e.value.body.replace(" ", "")

    core.delete_collection_namespaced_config_map(namespace, label_selector="app=other")
    assert core.list_namespaced_config_map(namespace).items == []


def test_errors_are_statuses(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, _configmap("dup", {}))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(namespace, _configmap("dup", {}))
    assert e.value.status == 409
    assert "already exists" in e.value.body

    bad = client.V1Pod(metadata=client.V1ObjectMeta(name="Bad_Name"), spec=client.V1PodSpec(containers=[]))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(namespace, bad)
    assert e.value.status == 422
    assert "Invalid" in e.value.body


def test_deployment_and_scale(apps: client.AppsV1Api, namespace: str) -> None:
    labels = {"app": "py"}
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.25")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, body, field_manager="py-test")
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.metadata.managed_fields[0].manager == "py-test"

    scale = apps.patch_namespaced_deployment_scale("py", namespace, {"spec": {"replicas": 4}})
    assert (scale.spec.replicas, scale.status.selector) == (4, "app=py")
    assert apps.read_namespaced_deployment("py", namespace).spec.replicas == 4

    patched = apps.patch_namespaced_deployment(
        "py", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}
    )
    assert patched.spec.template.spec.containers[0].image == "nginx:2"
    assert patched.metadata.generation == 3

    deployments = apps.list_deployment_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert [d.metadata.name for d in deployments.items] == ["py"]
    apps.delete_namespaced_deployment("py", namespace)
    assert apps.list_namespaced_deployment(namespace).items == []


def test_server_side_apply(core: client.CoreV1Api, namespace: str) -> None:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "v"}}
    cm = core.patch_namespaced_config_map(
        "ssa", namespace, body, field_manager="py-apply", _content_type="application/apply-patch+yaml"
    )
    assert cm.data == {"k": "v"}
    assert [(m.manager, m.operation) for m in cm.metadata.managed_fields] == [("py-apply", "Apply")]
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map(
            "ssa",
            namespace,
            {**body, "data": {"k": "other"}},
            field_manager="someone-else",
            _content_type="application/apply-patch+yaml",
        )
    assert e.value.status == 409
    assert 'conflict with \\"py-apply\\"' in e.value.body


def test_watch_stream(core: client.CoreV1Api, namespace: str) -> None:
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    events: list[tuple[str, str, dict[str, str] | None]] = []
    done = threading.Event()
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=20):
            obj = ev["object"]
            events.append((ev["type"], obj.metadata.name, obj.data))
            if ev["type"] == "DELETED":
                w.stop()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    core.create_namespaced_config_map(namespace, _configmap("w", {"n": "1"}))
    core.patch_namespaced_config_map("w", namespace, {"data": {"n": "2"}})
    core.delete_namespaced_config_map("w", namespace)
    assert done.wait(20), f"watch did not see the deletion: {events}"
    t.join(5)
    assert events == [("ADDED", "w", {"n": "1"}), ("MODIFIED", "w", {"n": "2"}), ("DELETED", "w", {"n": "2"})]

    # A watch from "now" with initial state: the existing object arrives as ADDED first.
    core.create_namespaced_config_map(namespace, _configmap("x", {"n": "1"}))
    seen = []
    w2 = watch.Watch()
    for ev in w2.stream(core.list_namespaced_config_map, namespace, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        w2.stop()
    assert seen == [("ADDED", "x")]

    # Raw JSON events are available too, with apiVersion and kind on every object.
    w3 = watch.Watch()
    for ev in w3.stream(core.list_namespaced_config_map, namespace, timeout_seconds=5, _preload_content=False):
        assert ev["raw_object"]["kind"] == "ConfigMap" and ev["raw_object"]["apiVersion"] == "v1"
        w3.stop()
