"""Create, get, update, patch, delete over real HTTP on a real etcd."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest
import yaml

from tests.integration.helpers import JSONPATCH, MERGE, STRATEGIC, pod, pods_path


async def test_create_sets_server_metadata_and_defaults(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(pods_path(ns), json=pod("web"))
    assert r.status_code == 201
    obj = r.json()
    m = obj["metadata"]
    assert m["namespace"] == ns and m["uid"] and m["creationTimestamp"].endswith("Z")
    assert m["generation"] == 1 and int(m["resourceVersion"]) > 0
    spec = obj["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert obj["status"]["phase"] == "Pending"


@pytest.mark.parametrize(
    ("image", "policy"),
    [("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"), ("reg:5000/x", "Always")],
)
async def test_image_pull_policy_defaults_by_tag(api: httpx.AsyncClient, ns: str, image: str, policy: str) -> None:
    body = pod("p")
    body["spec"]["containers"][0]["image"] = image
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    r = await api.post(pods_path(ns), json=body)
    c = r.json()["spec"]["containers"][0]
    assert c["imagePullPolicy"] == policy
    assert c["ports"][0]["protocol"] == "TCP"


async def test_create_from_yaml_keeps_fields_the_models_do_not_declare(api: httpx.AsyncClient, ns: str) -> None:
    aliases = [{"ip": "127.0.0.9", "hostnames": ["db.local"]}]
    doc = yaml.safe_dump({**pod("y"), "spec": {**pod("y")["spec"], "hostAliases": aliases, "x-extra": 1}})
    r = await api.post(pods_path(ns), content=doc, headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert 'unknown field \\"spec.x-extra\\"' in r.headers["warning"]  # Kubernetes' default: Warn and drop
    got = (await api.get(pods_path(ns, "y"))).json()
    assert got["spec"]["hostAliases"] == aliases and "x-extra" not in got["spec"]


async def test_etcd_holds_json_under_registry_keys(api: httpx.AsyncClient, ns: str, etcd: str) -> None:
    await api.post(pods_path(ns), json=pod("stored"))
    done = await asyncio.to_thread(
        subprocess.run,
        ["etcdctl", "--endpoints", etcd, "get", f"/registry/pods/{ns}/stored", "--print-value-only"],
        capture_output=True,
        text=True,
        env={"ETCDCTL_API": "3"},
        timeout=10,
        check=True,
    )
    assert '"name":"stored"' in done.stdout


async def test_duplicate_create_is_409_already_exists(api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(pods_path(ns), json=pod("dup"))).status_code == 201
    r = await api.post(pods_path(ns), json=pod("dup"))
    assert r.status_code == 409
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "dup" already exists'


async def test_generate_name(api: httpx.AsyncClient, ns: str) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "web-"}
    names = {(await api.post(pods_path(ns), json=body)).json()["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("web-") and len(n) == 9 for n in names)


async def test_missing_namespace_is_404(api: httpx.AsyncClient) -> None:
    r = await api.post(pods_path("nope-missing"), json=pod("x"))
    assert r.status_code == 404 and r.json()["message"] == 'namespaces "nope-missing" not found'


async def test_namespace_mismatch_is_400(api: httpx.AsyncClient, ns: str) -> None:
    body = pod("x")
    body["metadata"]["namespace"] = "other"
    r = await api.post(pods_path(ns), json=body)
    assert r.status_code == 400 and "does not match the namespace" in r.json()["message"]


async def test_stale_update_is_409_conflict(api: httpx.AsyncClient, ns: str) -> None:
    created = (await api.post(pods_path(ns), json=pod("c1"))).json()
    fresh = dict(created, metadata={**created["metadata"], "labels": {"a": "1"}})
    assert (await api.put(pods_path(ns, "c1"), json=fresh)).status_code == 200
    stale = dict(created, metadata={**created["metadata"], "labels": {"a": "2"}})
    r = await api.put(pods_path(ns, "c1"), json=stale)
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict"
    assert "the object has been modified" in r.json()["message"]
    assert (await api.get(pods_path(ns, "c1"))).json()["metadata"]["labels"] == {"a": "1"}


async def test_concurrent_writers_exactly_one_wins(apiserver: str, ns: str) -> None:
    async with httpx.AsyncClient(base_url=apiserver, timeout=10) as api:
        created = (await api.post(pods_path(ns), json=pod("race"))).json()

        async def write(i: int) -> int:
            body = dict(created, metadata={**created["metadata"], "labels": {"writer": str(i)}})
            return (await api.put(pods_path(ns, "race"), json=body)).status_code

        codes = await asyncio.gather(*(write(i) for i in range(12)))
    assert sorted(codes).count(200) == 1
    assert codes.count(409) == 11


async def test_unconditional_update_without_resource_version(api: httpx.AsyncClient, ns: str) -> None:
    created = (await api.post(pods_path(ns), json=pod("u"))).json()
    del created["metadata"]["resourceVersion"]
    created["metadata"]["labels"] = {"x": "y"}
    assert (await api.put(pods_path(ns, "u"), json=created)).status_code == 200


async def test_generation_bumps_on_spec_change_only(api: httpx.AsyncClient, ns: str) -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod("x")["spec"]},
        },
    }
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/d"
    assert (await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=dep)).status_code == 201
    r = await api.patch(path, json={"metadata": {"labels": {"l": "1"}}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 1
    r = await api.patch(path, json={"spec": {"replicas": 3}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 2
    r = await api.patch(f"{path}/status", json={"status": {"replicas": 3}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 2 and r.json()["status"]["replicas"] == 3


async def test_status_subresource_isolation(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("s"))
    r = await api.patch(
        pods_path(ns, "s") + "/status",
        json={"status": {"phase": "Running"}, "spec": {"nodeName": "sneaky"}},
        headers=MERGE,
    )
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Running" and "nodeName" not in r.json()["spec"]
    r = await api.patch(
        pods_path(ns, "s"), json={"status": {"phase": "Failed"}, "metadata": {"labels": {"k": "v"}}}, headers=MERGE
    )
    assert r.json()["status"]["phase"] == "Running" and r.json()["metadata"]["labels"] == {"k": "v"}


async def test_status_patches_are_checked_as_whole_objects(api: httpx.AsyncClient, ns: str) -> None:
    """A pods/status patch is type checked and field validated on the whole patched object, as upstream
    decodes it into the Pod struct: a wrong type outside status is 422, an unknown field a warning (400 Strict)."""
    await api.post(pods_path(ns), json=pod("w"))
    status = pods_path(ns, "w") + "/status"
    r = await api.patch(status, json={"status": {"phase": "Running"}, "spec": {"containers": "x"}}, headers=MERGE)
    assert r.status_code == 422, r.text
    assert r.json()["message"].endswith(
        "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container"
    )
    r = await api.patch(status, json={"status": {"phase": "Running", "bogus": 1}}, headers=MERGE)
    assert r.status_code == 200, r.text
    assert r.headers["warning"] == '299 - "unknown field \\"status.bogus\\""'
    assert r.json()["status"]["phase"] == "Running" and "bogus" not in r.json()["status"]
    r = await api.patch(
        status, params={"fieldValidation": "Strict"}, json={"status": {"phase": "Failed", "x": 1}}, headers=MERGE
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == 'strict decoding error: unknown field "status.x"'
    assert (await api.get(pods_path(ns, "w"))).json()["status"]["phase"] == "Running"


async def test_concurrent_status_patches_all_apply(api: httpx.AsyncClient, ns: str) -> None:
    """Concurrent patches conflict in storage and are applied again to the object read anew: none is lost
    and none leaves anything of another behind."""
    await api.post(pods_path(ns), json=pod("race"))

    async def condition(i: int) -> int:
        cond = {"type": f"example.com/c{i}", "status": "True", "lastProbeTime": None, "reason": f"R{i}"}
        r = await api.patch(
            pods_path(ns, "race") + "/status", json={"status": {"conditions": [cond]}}, headers=STRATEGIC
        )
        return r.status_code

    assert await asyncio.gather(*(condition(i) for i in range(16))) == [200] * 16
    conditions = (await api.get(pods_path(ns, "race"))).json()["status"]["conditions"]
    mine = {c["type"]: c for c in conditions if c["type"].startswith("example.com/")}
    assert set(mine) == {f"example.com/c{i}" for i in range(16)}
    assert all(
        c["reason"] == "R" + t.removeprefix("example.com/c") and "lastProbeTime" not in c for t, c in mine.items()
    )


async def test_patch_types(api: httpx.AsyncClient, ns: str) -> None:
    spec = pod("x")["spec"]
    spec["containers"] = [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"},
    ]
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "pt"},
        "spec": {
            "selector": {"matchLabels": {"app": "pt"}},
            "template": {"metadata": {"labels": {"app": "pt"}}, "spec": spec},
        },
    }
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    await api.post(path, json=dep)
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}}
        }
    }
    r = await api.patch(f"{path}/pt", headers=STRATEGIC, json=patch)
    cs = r.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["a", "b"] and cs[0]["image"] == "a:2"
    assert [e["name"] for e in cs[0]["env"]] == ["X", "Y"]
    r = await api.patch(f"{path}/pt", headers=MERGE, json=patch)
    assert [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]] == ["a"]
    r = await api.patch(f"{path}/pt", headers=JSONPATCH, json=[{"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert r.json()["spec"]["replicas"] == 4
    r = await api.patch(f"{path}/pt", headers=JSONPATCH, json=[{"op": "remove", "path": "/nope"}])
    assert r.status_code == 422
    r = await api.patch(f"{path}/pt", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415


async def test_pod_spec_is_immutable_except_images(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("im"))
    r = await api.patch(pods_path(ns, "im"), json={"spec": {"restartPolicy": "Never"}}, headers=MERGE)
    assert r.status_code == 422 and "pod updates may not change fields" in r.json()["message"]


async def test_pod_update_may_change_images_and_add_tolerations(api: httpx.AsyncClient, ns: str) -> None:
    created = (await api.post(pods_path(ns), json=pod("img"))).json()
    container = created["spec"]["containers"][0]["name"]
    toleration = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    patch = {"spec": {"containers": [{"name": container, "image": "other:2"}], "tolerations": [toleration]}}
    r = await api.patch(pods_path(ns, "img"), json=patch, headers=STRATEGIC)
    assert r.status_code == 200, r.text
    got = (await api.get(pods_path(ns, "img"))).json()["spec"]
    assert got["containers"][0]["image"] == "other:2" and toleration in got["tolerations"]
    r = await api.patch(
        pods_path(ns, "img"),
        json={"spec": {"containers": [{"name": container, "image": "other:3", "workingDir": "/w"}]}},
        headers=STRATEGIC,
    )
    assert r.status_code == 422 and "pod updates may not change fields" in r.json()["message"]
    got = (await api.get(pods_path(ns, "img"))).json()["spec"]
    assert got["containers"][0]["image"] == "other:2" and "workingDir" not in got["containers"][0]


async def test_delete_returns_object_and_404_after(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("del"))
    r = await api.delete(pods_path(ns, "del"))
    assert r.status_code == 200 and r.json()["metadata"]["name"] == "del"
    r = await api.get(pods_path(ns, "del"))
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"


async def test_delete_preconditions(api: httpx.AsyncClient, ns: str) -> None:
    created = (await api.post(pods_path(ns), json=pod("pre"))).json()
    r = await api.request("DELETE", pods_path(ns, "pre"), json={"preconditions": {"uid": "not-it"}})
    assert r.status_code == 409 and "Precondition failed: UID" in r.json()["message"]
    r = await api.request("DELETE", pods_path(ns, "pre"), json={"preconditions": {"uid": created["metadata"]["uid"]}})
    assert r.status_code == 200


async def test_finalizers_hold_deletion_until_removed(api: httpx.AsyncClient, ns: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "finalizers": ["example.com/hold"]}}
    path = f"/api/v1/namespaces/{ns}/configmaps"
    await api.post(path, json=body)
    r = await api.delete(f"{path}/f")
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    r = await api.patch(f"{path}/f", json={"metadata": {"finalizers": ["example.com/hold", "x.io/new"]}}, headers=MERGE)
    assert r.status_code == 422 and "no new finalizers" in r.json()["message"]
    assert (await api.get(f"{path}/f")).status_code == 200
    r = await api.patch(f"{path}/f", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert r.status_code == 200
    assert (await api.get(f"{path}/f")).status_code == 404


@pytest.mark.parametrize("policy", ["Orphan", "Foreground"])
async def test_propagation_policy_adds_finalizer(api: httpx.AsyncClient, ns: str, policy: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    await api.post(path, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pp"}})
    r = await api.request("DELETE", f"{path}/pp", json={"propagationPolicy": policy})
    expected = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}[policy]
    assert r.json()["metadata"]["finalizers"] == [expected]


async def test_delete_collection_with_selector(api: httpx.AsyncClient, ns: str) -> None:
    for i in range(4):
        await api.post(pods_path(ns), json=pod(f"dc{i}", {"group": "a" if i < 3 else "b"}))
    r = await api.delete(pods_path(ns), params={"labelSelector": "group=a"})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    left = (await api.get(pods_path(ns))).json()["items"]
    assert [p["metadata"]["name"] for p in left] == ["dc3"]


async def test_dry_run_writes_nothing(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(pods_path(ns), json=pod("dry"), params={"dryRun": "All"})
    assert r.status_code == 201 and r.json()["metadata"]["uid"]
    assert (await api.get(pods_path(ns, "dry"))).status_code == 404


async def test_scale_subresource(api: httpx.AsyncClient, ns: str) -> None:
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "rs"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod("x")["spec"]},
        },
    }
    base = f"/apis/apps/v1/namespaces/{ns}/replicasets"
    await api.post(base, json=rs)
    scale = (await api.get(f"{base}/rs/scale")).json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "a=b"
    r = await api.patch(f"{base}/rs/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert r.json()["spec"]["replicas"] == 5
    assert (await api.get(f"{base}/rs")).json()["spec"]["replicas"] == 5
    scale["spec"]["replicas"] = 2
    assert (await api.put(f"{base}/rs/scale", json=scale)).status_code == 409  # stale resourceVersion


async def test_binding_sets_node_once(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("b"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "b"},
        "target": {"kind": "Node", "name": "n1"},
    }
    r = await api.post(pods_path(ns, "b") + "/binding", json=binding)
    assert r.status_code == 201
    got = (await api.get(pods_path(ns, "b"))).json()
    assert got["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
    r = await api.post(pods_path(ns, "b") + "/binding", json={**binding, "target": {"kind": "Node", "name": "n2"}})
    assert r.status_code == 409 and 'already assigned to node "n1"' in r.json()["message"]


async def test_kubernetes_service_is_bootstrapped(api: httpx.AsyncClient) -> None:
    svc = (await api.get("/api/v1/namespaces/default/services/kubernetes")).json()
    assert svc["spec"]["clusterIP"] == "127.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    ep = (await api.get("/api/v1/namespaces/default/endpoints/kubernetes")).json()
    assert ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]


async def test_concurrent_patches_without_resource_version_all_apply(api: httpx.AsyncClient, ns: str) -> None:
    url = f"/api/v1/namespaces/{ns}/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "race"}}
    created = await api.post(url, json=body)
    assert created.status_code == 201
    merge = {"content-type": "application/merge-patch+json"}

    async def label(i: int) -> int:
        r = await api.patch(f"{url}/race", headers=merge, json={"metadata": {"labels": {f"l{i}": "x"}}})
        return r.status_code

    assert await asyncio.gather(*(label(i) for i in range(20))) == [200] * 20
    labels = (await api.get(f"{url}/race")).json()["metadata"]["labels"]
    assert set(labels) == {f"l{i}" for i in range(20)}

    stale = created.json()["metadata"]["resourceVersion"]
    r = await api.patch(
        f"{url}/race", headers=merge, json={"metadata": {"resourceVersion": stale, "labels": {"z": "1"}}}
    )
    assert r.status_code == 409


async def test_system_namespaces_may_not_be_deleted(api: httpx.AsyncClient) -> None:
    for name in ("default", "kube-system", "kube-public"):
        r = await api.delete(f"/api/v1/namespaces/{name}")
        assert r.status_code == 403
        assert r.json()["message"] == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
        ns = (await api.get(f"/api/v1/namespaces/{name}")).json()
        assert "deletionTimestamp" not in ns["metadata"]
