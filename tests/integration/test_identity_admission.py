"""The ServiceAccount admission plug-in: every pod runs as an existing account and gets the projected
`kube-api-access-*` volume mounted in every container, unless automounting is off."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from identity_kit import SecureApiserver, secure_apiserver

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
PROJECTED = {
    "defaultMode": 420,
    "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "downwardAPI": {
                "items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]
            }
        },
    ],
}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureApiserver]:
    with secure_apiserver(tmp_path_factory) as server:
        yield server


@pytest.fixture
async def api(secure: SecureApiserver) -> AsyncIterator[httpx.AsyncClient]:
    async with secure.http() as client:  # the admin's certificate on the secure port
        yield client


@pytest.fixture
async def ns(api: httpx.AsyncClient) -> str:
    name = f"sa-{uuid.uuid4().hex[:6]}"
    assert (await api.post("/api/v1/namespaces", json={"metadata": {"name": name}})).status_code == 201
    return name


async def make_account(api: httpx.AsyncClient, ns: str, name: str, **fields: Any) -> None:
    r = await api.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": name}, **fields})
    assert r.status_code == 201, r.text


async def make_pod(api: httpx.AsyncClient, ns: str, name: str, **spec: Any) -> httpx.Response:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    spec.setdefault("containers", [{"name": "c", "image": "nginx"}])
    return await api.post(f"/api/v1/namespaces/{ns}/pods", json=body)


async def test_a_pod_gets_the_default_account_and_its_token_volume(api: httpx.AsyncClient, ns: str) -> None:
    await make_account(api, ns, "default", imagePullSecrets=[{"name": "registry"}])
    r = await make_pod(
        api,
        ns,
        "web",
        initContainers=[{"name": "init", "image": "busybox"}],
        containers=[
            {"name": "a", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            {"name": "b", "image": "nginx"},
        ],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert spec["serviceAccountName"] == "default"
    assert spec["serviceAccount"] == "default"  # the deprecated alias, as upstream fills it
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    token_volume = spec["volumes"][-1]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", token_volume["name"])
    assert token_volume["projected"] == PROJECTED
    mount = {"name": token_volume["name"], "readOnly": True, "mountPath": MOUNT}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}, mount]
    assert spec["containers"][1]["volumeMounts"] == [mount]


async def test_automount_off_on_the_account_or_the_pod(api: httpx.AsyncClient, ns: str) -> None:
    await make_account(api, ns, "quiet", automountServiceAccountToken=False)
    r = await make_pod(api, ns, "p1", serviceAccountName="quiet")
    assert r.status_code == 201, r.text
    assert "volumes" not in r.json()["spec"]
    # the pod's word wins over the account's
    r = await make_pod(api, ns, "p2", serviceAccountName="quiet", automountServiceAccountToken=True)
    assert r.json()["spec"]["volumes"][0]["projected"] == PROJECTED
    await make_account(api, ns, "default")
    r = await make_pod(api, ns, "p3", automountServiceAccountToken=False)
    assert "volumes" not in r.json()["spec"]
    # a container with its own mount at the token path keeps it
    own = [{"name": "c", "image": "nginx", "volumeMounts": [{"name": "mine", "mountPath": MOUNT}]}]
    r = await make_pod(api, ns, "p4", containers=own, volumes=[{"name": "mine", "emptyDir": {}}])
    spec = r.json()["spec"]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]
    assert [v["name"] for v in spec["volumes"]] == ["mine"]


async def test_a_missing_account_is_refused(api: httpx.AsyncClient, ns: str) -> None:
    r = await make_pod(api, ns, "lost", serviceAccountName="ghost")
    assert r.status_code == 403
    assert r.json()["message"] == (
        f'pods "lost" is forbidden: error looking up service account {ns}/ghost: serviceaccount "ghost" not found'
    )
    assert r.json()["reason"] == "Forbidden"


async def test_pods_read_their_account_as_it_is_now_and_leave_it_unchanged(api: httpx.AsyncClient, ns: str) -> None:
    # the plug-in reads the watch cache's own account object (no copy): pods must not change it, and a change
    # to the account must reach the next pod
    await make_account(api, ns, "builder", imagePullSecrets=[{"name": "registry"}])
    account_url = f"/api/v1/namespaces/{ns}/serviceaccounts/builder"
    before = (await api.get(account_url)).json()
    for name in ("a1", "a2"):
        r = await make_pod(api, ns, name, serviceAccountName="builder")
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert (await api.get(account_url, params={"resourceVersion": "0"})).json() == before
    assert (await api.get(account_url)).json() == before

    patch = {"imagePullSecrets": [{"name": "mirror"}], "automountServiceAccountToken": False}
    r = await api.patch(account_url, json=patch, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    changed_rv = r.json()["metadata"]["resourceVersion"]
    for _ in range(200):  # the plug-in reads the cache (resourceVersion 0): wait until it has the change
        cached = (await api.get(account_url, params={"resourceVersion": "0"})).json()
        if cached["metadata"]["resourceVersion"] == changed_rv:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the watch cache never saw the account's change")
    r = await make_pod(api, ns, "a3", serviceAccountName="builder")
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["imagePullSecrets"] == [{"name": "mirror"}]
    assert "volumes" not in r.json()["spec"]
