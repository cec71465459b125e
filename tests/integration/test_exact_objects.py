"""Objects and errors byte for byte as kube-apiserver writes them: required fields with Go's zero values,
and `Status` bodies with Go's field order, details and messages."""

from __future__ import annotations

import httpx

from tests.integration.helpers import MERGE, collect, pod, pods_path

_TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def _daemonset(name: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": _TEMPLATE},
    }


def _deployment(name: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": _TEMPLATE},
    }


_OBJECT_META_ORDER = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
]

DS_ZEROS = {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}


async def test_required_status_fields_are_written_as_zeros_everywhere(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/daemonsets"
    rv0 = (await api.get(path)).json()["metadata"]["resourceVersion"]
    created = (await api.post(path, json=_daemonset("ds"))).json()
    assert created["status"] == DS_ZEROS

    # a /status write that sets one field keeps the others, as zeros
    r = await api.patch(
        f"{path}/ds/status", headers=MERGE, json={"status": {"numberReady": None, "numberAvailable": 2}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == {**DS_ZEROS, "numberAvailable": 2}
    assert (await api.get(f"{path}/ds")).json()["status"] == {**DS_ZEROS, "numberAvailable": 2}
    assert [d["status"] for d in (await api.get(path)).json()["items"]] == [{**DS_ZEROS, "numberAvailable": 2}]

    events = await collect(api, path, lambda evs: len(evs) >= 2, resourceVersion=rv0)
    assert [(e["type"], e["object"]["status"]) for e in events] == [
        ("ADDED", DS_ZEROS),
        ("MODIFIED", {**DS_ZEROS, "numberAvailable": 2}),
    ]


async def test_replication_controller_and_replicaset_report_zero_replicas(api: httpx.AsyncClient, ns: str) -> None:
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "rc"},
        "spec": {"replicas": 0, "selector": {"app": "x"}, "template": _TEMPLATE},
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/replicationcontrollers", json=rc)
    assert r.status_code == 201 and r.json()["status"] == {"replicas": 0}
    rs = {**_deployment("rs"), "kind": "ReplicaSet"}
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/replicasets", json=rs)
    assert r.status_code == 201 and r.json()["status"] == {"replicas": 0}


async def test_fields_are_filled_only_inside_objects_that_exist(api: httpx.AsyncClient, ns: str) -> None:
    cm = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "c"}})).json()
    assert "status" not in cm and "data" not in cm
    # a Deployment's status has no required field: it stays empty, and absent optional objects stay absent
    dep = (await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=_deployment("d"))).json()
    assert dep["status"] == {}
    assert "affinity" not in dep["spec"]["template"]["spec"]
    # a required list of a top-level kind is written (empty) when the client left it out
    slice_ = {"metadata": {"name": "s"}, "addressType": "IPv4"}
    r = await api.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", json=slice_)
    assert r.status_code == 201, r.text
    assert r.json()["endpoints"] == []


async def test_nested_required_fields_of_present_objects(api: httpx.AsyncClient) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "exact-node"},
        "status": {"nodeInfo": {"kubeletVersion": "v1.35.0"}, "daemonEndpoints": {"kubeletEndpoint": {}}},
    }
    r = await api.post("/api/v1/nodes", json=node)
    assert r.status_code == 201, r.text
    status = r.json()["status"]
    assert status["nodeInfo"] == {
        "machineID": "",
        "systemUUID": "",
        "bootID": "",
        "kernelVersion": "",
        "osImage": "",
        "containerRuntimeVersion": "",
        "kubeletVersion": "v1.35.0",
        "kubeProxyVersion": "",
        "operatingSystem": "",
        "architecture": "",
    }
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    await api.delete("/api/v1/nodes/exact-node")


async def test_filling_does_not_count_as_a_spec_change(api: httpx.AsyncClient, ns: str) -> None:
    body = pod("p")
    # a required field inside an optional object the client gave without it (upstream writes weight 0)
    term = {"preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}}
    body["spec"]["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}
    created = (await api.post(pods_path(ns), json=body)).json()
    assert (
        created["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 0
    )
    # a PUT of the object without the filled field is no spec change: generation stays, the pod update is allowed
    again = created | {"spec": {**created["spec"], "affinity": body["spec"]["affinity"]}}
    r = await api.put(pods_path(ns, "p"), json=again)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["generation"] == 1
    assert r.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_a_put_leaving_out_defaulted_and_filled_fields_writes_nothing(api: httpx.AsyncClient, ns: str) -> None:
    # the create sets a defaulted field and a required zero itself, so its manager owns both
    body = pod("p")
    body["spec"]["restartPolicy"] = "Always"
    term = {"weight": 0, "preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}}
    body["spec"]["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}
    created = (await api.post(pods_path(ns), json=body)).json()
    # the PUT leaves both out: the server gives them back, so nothing changed, not even managedFields
    spec = {k: v for k, v in created["spec"].items() if k not in ("restartPolicy", "affinity")}
    spec["affinity"] = {
        "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"preference": term["preference"]}]}
    }
    r = await api.put(pods_path(ns, "p"), json=created | {"spec": spec})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert r.json()["metadata"]["managedFields"] == created["metadata"]["managedFields"]


# --- Status objects --------------------------------------------------------------------------------


async def test_already_exists_status_byte_for_byte(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    assert (await api.post(path, json=_deployment("triple-nginx"))).status_code == 201
    r = await api.post(path, json=_deployment("triple-nginx"))
    assert r.status_code == 409
    assert r.content == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"deployments.apps \\"triple-nginx\\" already exists","reason":"AlreadyExists",'
        b'"details":{"name":"triple-nginx","group":"apps","kind":"deployments"},"code":409}'
    )


async def test_not_found_and_conflict_carry_name_group_and_resource(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    r = await api.get(f"{path}/nope")
    assert r.content == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"deployments.apps \\"nope\\" not found","reason":"NotFound",'
        b'"details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}'
    )
    created = (await api.post(path, json=_deployment("d"))).json()
    await api.patch(f"{path}/d", headers=MERGE, json={"metadata": {"labels": {"a": "b"}}})
    r = await api.put(f"{path}/d", json=created)
    assert r.status_code == 409
    assert list(r.json()) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on deployments.apps "d": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert r.json()["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    # the core group has no `group`
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps/none")
    assert r.json()["details"] == {"name": "none", "kind": "configmaps"}


async def test_invalid_names_the_kind_and_lists_causes(api: httpx.AsyncClient, ns: str) -> None:
    bad = _deployment("bad")
    bad["spec"]["replicas"] = -1
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = ""
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=bad)
    assert r.status_code == 422
    status = r.json()
    assert list(status) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert status["message"] == (
        'Deployment.apps "bad" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, '
        "spec.template.spec.containers[0].name: Required value]"
    )
    assert status["details"] == {
        "name": "bad",
        "group": "apps",
        "kind": "Deployment",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: -1: must be greater than or equal to 0",
                "field": "spec.replicas",
            },
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.template.spec.containers[0].name",
            },
        ],
    }


async def test_forbidden_namespace_delete_and_terminating_namespace(api: httpx.AsyncClient) -> None:
    r = await api.delete("/api/v1/namespaces/default")
    assert r.content == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"namespaces \\"default\\" is forbidden: this namespace may not be deleted","reason":"Forbidden",'
        b'"details":{"name":"default","kind":"namespaces"},"code":403}'
    )
    name = "exact-terminating"
    assert (await api.post("/api/v1/namespaces", json={"metadata": {"name": name}})).status_code == 201
    assert (await api.delete(f"/api/v1/namespaces/{name}")).status_code == 200
    r = await api.post(f"/apis/apps/v1/namespaces/{name}/deployments", json=_deployment("late"))
    assert r.status_code == 403
    assert r.json()["message"] == (
        f'deployments.apps "late" is forbidden: unable to create new content in namespace {name} '
        "because it is being terminated"
    )
    assert r.json()["details"] == {
        "name": "late",
        "group": "apps",
        "kind": "deployments",
        "causes": [
            {
                "reason": "NamespaceTerminating",
                "message": f"namespace {name} is being terminated",
                "field": "metadata.namespace",
            }
        ],
    }
    await api.put(f"/api/v1/namespaces/{name}/finalize", json={"metadata": {"name": name}, "spec": {"finalizers": []}})


async def test_generic_answers_carry_empty_details(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.get("/api/v1/nosuchthings")
    assert r.content == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}'
    )
    r = await api.post(f"/api/v1/namespaces/{ns}/configmaps/named", json={"metadata": {"name": "named"}})
    assert r.status_code == 405
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server does not allow this method on the requested resource",
        "reason": "MethodNotAllowed",
        "details": {},
        "code": 405,
    }
    await api.post(pods_path(ns), json=pod("p"))
    r = await api.patch(
        pods_path(ns, "p"),
        headers={"content-type": "application/json-patch+json"},
        json=[{"op": "test", "path": "/spec/nodeName", "value": "elsewhere"}],
    )
    assert r.status_code == 422
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }


async def test_objects_come_in_go_field_order_on_every_read(api: httpx.AsyncClient, ns: str) -> None:
    path = pods_path(ns)
    rv0 = (await api.get(path)).json()["metadata"]["resourceVersion"]
    body = pod("ordered", {"app": "x"})
    body["metadata"] = {"labels": body["metadata"]["labels"], "name": "ordered"}  # the client's own order
    created = await api.post(path, json={"spec": body["spec"], "metadata": body["metadata"], "kind": "Pod"})
    assert created.status_code == 201, created.text
    rv = created.json()["metadata"]["resourceVersion"]
    events = await collect(api, path, lambda evs: len(evs) >= 1, resourceVersion=rv0)
    answers = {
        "create": created.json(),
        "get": (await api.get(pods_path(ns, "ordered"))).json(),
        "get from the cache": (await api.get(pods_path(ns, "ordered"), params={"resourceVersion": "0"})).json(),
        "list": (await api.get(path)).json()["items"][0],
        "watch": events[0]["object"],
    }
    for how, obj in answers.items():
        # as kube-apiserver writes a Pod: TypeMeta, then ObjectMeta's fields in the order of its Go type
        assert list(obj)[:3] == ["kind", "apiVersion", "metadata"], how
        keys = list(obj["metadata"])
        assert keys[:4] == ["name", "namespace", "uid", "resourceVersion"], how
        assert keys == [k for k in _OBJECT_META_ORDER if k in keys], how
        assert {"creationTimestamp", "labels", "managedFields"} <= set(keys), how
        assert obj["metadata"]["resourceVersion"] == rv, how
        assert obj["metadata"]["labels"] == {"app": "x"}, how
