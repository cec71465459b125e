"""RBAC, the Node authorizer, NodeRestriction, the access reviews and impersonation, through a real
apiserver started with `--authorization-mode Node,RBAC` on its TLS port: static tokens, ServiceAccount
tokens and client certificates as the identities, the real kubectl for `auth can-i`, upstream's
exact 403 words."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from controller_kit import controllers, eventually
from identity_kit import STATIC_TOKEN, SecureApiserver, admin_kubectl, secure_apiserver

from tests.e2e.conftest import Kubectl

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureApiserver]:
    with secure_apiserver(tmp_path_factory, "--authorization-mode", "Node,RBAC") as server:
        yield server


@pytest.fixture(scope="module")
def kubectl(kubectl_binary: Path, secure: SecureApiserver, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return admin_kubectl(kubectl_binary, secure, tmp_path_factory)


@pytest.fixture
async def setup(secure: SecureApiserver) -> AsyncIterator[httpx.AsyncClient]:
    """The insecure port (full access): for arranging what each test needs."""
    async with httpx.AsyncClient(base_url=secure.insecure, timeout=10) as api:
        yield api


async def _create(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _namespace(api: httpx.AsyncClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    await _create(api, "/api/v1/namespaces", {"metadata": {"name": name}})
    # no controller-manager here: the `default` ServiceAccount the ServiceAccount admission plug-in wants
    await _create(api, f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}})
    return name


async def _role(api: httpx.AsyncClient, ns: str, name: str, *rules: dict[str, Any]) -> None:
    await _create(api, f"/apis/{RBAC}/v1/namespaces/{ns}/roles", {"metadata": {"name": name}, "rules": list(rules)})


async def _bind(api: httpx.AsyncClient, ns: str, name: str, kind: str, role: str, *subjects: dict[str, str]) -> None:
    body = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
        "subjects": list(subjects),
    }
    await _create(api, f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings", body)


async def _sa_token(api: httpx.AsyncClient, ns: str, name: str) -> str:
    await _create(api, f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": name}})
    review = await _create(api, f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token", {"spec": {}})
    return str(review["status"]["token"])


async def _until_status(
    client: httpx.AsyncClient, path: str, code: int, method: str = "GET", **kw: Any
) -> httpx.Response:
    """The response once it has `code`: RBAC follows the watch cache, a moment behind the write."""

    async def check() -> httpx.Response | None:
        r = await client.request(method, path, **kw)
        return r if r.status_code == code else None

    return await eventually(check, 10, f"{method} {path} → {code}")


def _token_kubectl(kubectl: Kubectl, secure: SecureApiserver, token: str) -> Kubectl:
    """kubectl with a bearer token and nothing else (no kubeconfig)."""
    env = {**kubectl.env, "KUBECONFIG": os.devnull}
    k = Kubectl(kubectl.binary, kubectl.server, kubectl.cache_dir, kubectl.home, env)
    ca = str(secure.pki.ca.cert)
    original = k.argv
    k.argv = lambda *args: [*original(*args), f"--certificate-authority={ca}", f"--token={token}"]  # type: ignore[method-assign]
    return k


def _status(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure", body
    return body


async def test_service_account_with_a_role_lists_pods_and_meets_exact_403s(
    secure: SecureApiserver, setup: httpx.AsyncClient, kubectl: Kubectl
) -> None:
    ns = await _namespace(setup, "demo")
    await _role(
        setup,
        ns,
        "pod-reader",
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    )
    await _bind(setup, ns, "read-pods", "Role", "pod-reader", {"kind": "ServiceAccount", "name": "reader"})
    token = await _sa_token(setup, ns, "reader")
    user = f"system:serviceaccount:{ns}:reader"
    async with secure.http(client=None, token=token) as reader:
        listing = (await _until_status(reader, f"/api/v1/namespaces/{ns}/pods", 200)).json()
        assert listing["kind"] == "PodList"
        # reading namespaces, granted in a namespace, reaches that one namespace object only
        assert (await reader.get(f"/api/v1/namespaces/{ns}")).status_code == 200
        r = await reader.get("/api/v1/namespaces/kube-system")
        assert _status(r)["message"] == (
            f'namespaces "kube-system" is forbidden: User "{user}" cannot get resource "namespaces" in API group "" '
            'in the namespace "kube-system"'
        )

        r = await reader.get(f"/api/v1/namespaces/{ns}/secrets")
        assert r.status_code == 403
        assert _status(r) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
            f'in the namespace "{ns}"',
            "reason": "Forbidden",
            "details": {"kind": "secrets"},
            "code": 403,
        }
        r = await reader.get("/api/v1/namespaces/kube-system/pods")
        assert r.status_code == 403
        assert _status(r)["message"] == (
            f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
            'in the namespace "kube-system"'
        )
        r = await reader.get(f"/api/v1/namespaces/{ns}/pods/web/log")
        assert _status(r)["message"] == (
            f'pods "web" is forbidden: User "{user}" cannot get resource "pods/log" in API group "" '
            f'in the namespace "{ns}"'
        )
        r = await reader.delete(f"/api/v1/namespaces/{ns}/pods/web")
        assert r.status_code == 403
        r = await reader.get("/api/v1/nodes")
        assert _status(r)["message"] == (
            f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope'
        )
        r = await reader.get("/metrics")
        assert r.status_code == 403
        assert _status(r) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'forbidden: User "{user}" cannot get path "/metrics"',
            "reason": "Forbidden",
            "details": {},
            "code": 403,
        }
        assert (await reader.get("/api")).status_code == 200  # system:discovery, for every authenticated user

    # kubectl with the ServiceAccount's token shows the same words
    as_reader = _token_kubectl(kubectl, secure, token)
    assert "No resources found" in as_reader("get", "pods", "-n", ns).stderr
    err = as_reader.fails("get", "pods", "-n", "kube-system")
    assert (
        f'Error from server (Forbidden): pods is forbidden: User "{user}" cannot list resource "pods" in API '
        f'group "" in the namespace "kube-system"'
    ) in err


async def test_kubectl_auth_can_i_matrix(secure: SecureApiserver, setup: httpx.AsyncClient, kubectl: Kubectl) -> None:
    ns = await _namespace(setup, "cani")
    await _role(setup, ns, "pod-reader", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]})
    await _role(
        setup,
        ns,
        "web-scaler",
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update"], "resourceNames": ["web"]},
    )
    await _bind(setup, ns, "read-pods", "Role", "pod-reader", {"kind": "ServiceAccount", "name": "reader"})
    await _bind(setup, ns, "scalers", "Role", "web-scaler", {"kind": "Group", "apiGroup": RBAC, "name": "ops"})
    token = await _sa_token(setup, ns, "reader")
    sa = f"system:serviceaccount:{ns}:reader"

    def can_i(*args: str, k: Kubectl = kubectl) -> tuple[str, int]:
        r = k("auth", "can-i", *args)
        return r.stdout.strip(), r.returncode

    # the admin (system:masters), then others through --as / --as-group, then with their own credentials
    assert can_i("*", "*") == ("yes", 0)
    matrix = [
        (("list", "pods", "-n", ns, "--as", sa), "yes"),
        (("watch", "pods", "-n", ns, "--as", sa), "yes"),
        (("get", "pods/web", "-n", ns, "--as", sa), "yes"),
        (("delete", "pods", "-n", ns, "--as", sa), "no"),
        (("list", "secrets", "-n", ns, "--as", sa), "no"),
        (("list", "pods", "-n", "kube-system", "--as", sa), "no"),
        (("list", "pods", "--all-namespaces", "--as", sa), "no"),
        (("get", "/healthz", "--as", sa), "yes"),
        (("get", "/metrics", "--as", sa), "no"),
        (("create", "selfsubjectaccessreviews.authorization.k8s.io", "--as", sa), "yes"),
        (
            ("update", "deployments.apps/web", "--subresource=scale", "-n", ns, "--as", "bob", "--as-group", "ops"),
            "yes",
        ),
        (("update", "deployments.apps/api", "--subresource=scale", "-n", ns, "--as", "bob", "--as-group", "ops"), "no"),
        (("update", "deployments.apps/web", "--subresource=scale", "-n", ns, "--as", "bob"), "no"),
        (("update", "deployments.apps/web", "-n", ns, "--as", "bob", "--as-group", "ops"), "no"),
    ]
    results = {args: can_i(*args) for args, _ in matrix}
    assert results == {args: (want, 0 if want == "yes" else 1) for args, want in matrix}

    as_reader = _token_kubectl(kubectl, secure, token)
    assert can_i("list", "pods", "-n", ns, k=as_reader) == ("yes", 0)
    assert can_i("list", "secrets", "-n", ns, k=as_reader) == ("no", 1)

    listed = kubectl.ok("auth", "can-i", "--list", "-n", ns, "--as", sa)
    rows = [line.split() for line in listed.splitlines()]
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/healthz]", "[]", "[get]"] in rows
    assert not any(row[0] == "secrets" for row in rows)
    listed = kubectl.ok("auth", "can-i", "--list", "-n", ns, "--as", "bob", "--as-group", "ops")
    assert ["deployments.apps/scale", "[]", "[web]", "[update]"] in [line.split() for line in listed.splitlines()]

    # alice (a static token, groups devs and ops) may not impersonate
    as_alice = _token_kubectl(kubectl, secure, STATIC_TOKEN)
    err = as_alice.fails("auth", "can-i", "list", "pods", "--as", "bob")
    assert (
        'Error from server (Forbidden): users "bob" is forbidden: User "alice" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    ) in err
    assert can_i("update", "deployments.apps/web", "--subresource=scale", "-n", ns, k=as_alice) == ("yes", 0)


async def test_node_reaches_only_its_own_pods_and_their_secrets(
    secure: SecureApiserver, setup: httpx.AsyncClient
) -> None:
    ns = await _namespace(setup, "nodes")
    for name in ("mine", "theirs"):
        await _create(setup, f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": name}, "stringData": {"k": "v"}})

    def pod(name: str, node: str, secret: str) -> dict[str, Any]:
        volume = {"name": "s", "secret": {"secretName": secret}}
        return {
            "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], "volumes": [volume]},
        }

    await _create(setup, f"/api/v1/namespaces/{ns}/pods", pod("on-1", "node-1", "mine"))
    theirs = await _create(setup, f"/api/v1/namespaces/{ns}/pods", pod("on-2", "node-2", "theirs"))
    node1 = "system:node:node-1"
    async with secure.http("kubelet-node-1") as kubelet:
        # its own pod's secret (once the pods are in the watch cache), and not the other node's
        await _until_status(kubelet, f"/api/v1/namespaces/{ns}/secrets/mine", 200)
        r = await kubelet.get(f"/api/v1/namespaces/{ns}/secrets/theirs")
        assert r.status_code == 403
        assert _status(r)["message"] == (
            f'secrets "theirs" is forbidden: User "{node1}" cannot get resource "secrets" in API group "" in the '
            f"namespace \"{ns}\": no relationship found between node 'node-1' and this object"
        )
        r = await kubelet.get(f"/api/v1/namespaces/{ns}/secrets")
        assert _status(r)["message"].endswith(": No Object name found")
        # a list or watch narrowed to one object by metadata.name is a read of that object (how kubelets watch)
        r = await kubelet.get(f"/api/v1/namespaces/{ns}/secrets", params={"fieldSelector": "metadata.name=mine"})
        assert r.status_code == 200 and [i["metadata"]["name"] for i in r.json()["items"]] == ["mine"]
        r = await kubelet.get(f"/api/v1/namespaces/{ns}/secrets", params={"fieldSelector": "metadata.name=theirs"})
        assert r.status_code == 403

        # status of its own pod: yes; of a pod bound to node-2: NodeRestriction's refusal
        mine = (await kubelet.get(f"/api/v1/namespaces/{ns}/pods/on-1")).json()
        mine["status"] = {"phase": "Running"}
        r = await kubelet.put(f"/api/v1/namespaces/{ns}/pods/on-1/status", json=mine)
        assert r.status_code == 200, r.text
        theirs["status"] = {"phase": "Failed"}
        r = await kubelet.put(f"/api/v1/namespaces/{ns}/pods/on-2/status", json=theirs)
        assert r.status_code == 403
        assert _status(r)["message"] == (
            'pods "on-2" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName '
            "set to itself"
        )
        r = await kubelet.patch(
            f"/api/v1/namespaces/{ns}/pods/on-2/status",
            content=b'{"status":{"phase":"Failed"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 403
        r = await kubelet.delete(f"/api/v1/namespaces/{ns}/pods/on-2")
        assert _status(r)["message"] == (
            'pods "on-2" is forbidden: node "node-1" can only delete pods with spec.nodeName set to itself'
        )

        # a ServiceAccount token only bound to one of its own pods (both pods run as `default`)
        def token_request(pod: dict[str, Any]) -> dict[str, Any]:
            ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
            return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"boundObjectRef": ref}}

        tokens = f"/api/v1/namespaces/{ns}/serviceaccounts/default/token"
        r = await kubelet.post(tokens, json=token_request(mine))
        assert r.status_code == 201, r.text
        r = await kubelet.post(tokens, json=token_request(theirs))
        assert _status(r)["message"] == (
            'serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node'
        )
        # nodes and leases: its own only
        r = await kubelet.post("/api/v1/nodes", json={"metadata": {"name": "node-2"}})
        assert (
            _status(r)["message"] == 'nodes "node-2" is forbidden: node "node-1" is not allowed to modify node "node-2"'
        )
        lease = {"metadata": {"name": "node-2"}, "spec": {"holderIdentity": "node-2"}}
        r = await kubelet.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=lease)
        assert _status(r)["message"] == (
            'leases.coordination.k8s.io "node-2" is forbidden: can only access node lease with the same name as the '
            "requesting node"
        )
        lease = {"metadata": {"name": "node-1"}, "spec": {"holderIdentity": "node-1"}}
        r = await kubelet.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=lease)
        assert r.status_code == 201, r.text
    on2 = (await setup.get(f"/api/v1/namespaces/{ns}/pods/on-2")).json()
    assert on2["status"].get("phase") != "Failed"


async def test_aggregated_view_picks_up_a_new_clusterrole_within_a_second(
    secure: SecureApiserver, setup: httpx.AsyncClient
) -> None:
    async with controllers(secure.insecure, "clusterrole-aggregation") as ctx:
        api = ctx.api

        async def rules_of(name: str) -> list[dict[str, Any]]:
            return list((await api.get("clusterroles", name)).get("rules") or [])

        async def view_aggregated() -> bool:
            return any("pods" in r.get("resources", []) for r in await rules_of("view"))

        await eventually(view_aggregated, 10, "the bootstrap view role aggregated")
        kind = f"widgets{uuid.uuid4().hex[:6]}"
        body = {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{kind}-viewer", "labels": {f"{RBAC}/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": [kind], "verbs": ["get", "list"]}],
        }
        start = time.monotonic()
        await api.create("clusterroles", body)

        async def view_has_it() -> bool:
            return any(kind in r.get("resources", []) for r in await rules_of("view"))

        await eventually(view_has_it, 5, f"view to include {kind}")
        assert time.monotonic() - start < 1.0
        # edit and admin aggregate view: they follow
        for role in ("edit", "admin"):
            await eventually(lambda role=role: _has(api, role, kind), 5, f"{role} to include {kind}")

    # and a user bound to view may now read them (a SubjectAccessReview asks the real authorizers)
    ns = await _namespace(setup, "agg")
    await _bind(setup, ns, "viewers", "ClusterRole", "view", {"kind": "User", "apiGroup": RBAC, "name": "vera"})
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "vera",
            "resourceAttributes": {"namespace": ns, "verb": "list", "group": "example.com", "resource": kind},
        },
    }

    async def allowed() -> dict[str, Any] | None:
        answer = await _create(setup, "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return answer["status"] if answer["status"]["allowed"] else None

    status = await eventually(allowed, 10, "vera allowed by view")
    assert status["reason"] == f'RBAC: allowed by RoleBinding "viewers/{ns}" of ClusterRole "view" to User "vera"'


async def _has(api: Any, role: str, resource: str) -> bool:
    return any(resource in r.get("resources", []) for r in (await api.get("clusterroles", role)).get("rules") or [])


async def test_escalation_is_refused(secure: SecureApiserver, setup: httpx.AsyncClient) -> None:
    ns = await _namespace(setup, "esc")
    await _role(
        setup,
        ns,
        "role-maker",
        {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": ["create", "get", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    )
    await _bind(setup, ns, "makers", "Role", "role-maker", {"kind": "User", "apiGroup": RBAC, "name": "alice"})
    async with secure.http(client=None, token=STATIC_TOKEN) as alice:
        roles = f"/apis/{RBAC}/v1/namespaces/{ns}/roles"
        held = {"metadata": {"name": "pods"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
        await _until_status(alice, roles, 201, "POST", json=held)

        wider = {
            "metadata": {"name": "secrets"},
            "rules": [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "delete"]}],
        }
        r = await alice.post(roles, json=wider)
        assert r.status_code == 403
        assert _status(r) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'roles.{RBAC} "secrets" is forbidden: user "alice" (groups=["devs" "ops" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}',
            "reason": "Forbidden",
            "details": {"name": "secrets", "group": RBAC, "kind": "roles"},
            "code": 403,
        }

        bindings = f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings"

        def binding(name: str, kind: str, role: str) -> dict[str, Any]:
            return {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
                "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "mallory"}],
            }

        r = await alice.post(bindings, json=binding("admin", "ClusterRole", "cluster-admin"))
        assert r.status_code == 403
        assert _status(r)["message"].startswith(
            f'rolebindings.{RBAC} "admin" is forbidden: user "alice" (groups=["devs" "ops" "system:authenticated"]) '
            "is attempting to grant RBAC permissions not currently held:\n"
        )
        # a role she holds every rule of: fine (once her new Role is in the watch cache RBAC reads)
        await _until_status(alice, bindings, 201, "POST", json=binding("pods", "Role", "pods"))

    # the `bind` verb on one ClusterRole lets her bind it without holding its rules
    await _role(
        setup,
        ns,
        "binder",
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit"]},
    )
    await _bind(setup, ns, "binders", "Role", "binder", {"kind": "Group", "apiGroup": RBAC, "name": "devs"})
    async with secure.http(client=None, token=STATIC_TOKEN) as alice:
        await _until_status(alice, bindings, 201, "POST", json=binding("edit", "ClusterRole", "edit"))
        r = await alice.post(bindings, json=binding("view", "ClusterRole", "view"))
        assert r.status_code == 403


async def test_custom_resources_are_authorized_by_rbac_like_any_kind(
    secure: SecureApiserver, setup: httpx.AsyncClient
) -> None:
    from tests.integration.test_crd import CRDS, crontab, crontab_crd, established

    group = f"r{uuid.uuid4().hex[:6]}.example.com"
    await _create(setup, CRDS, crontab_crd(group))
    await established(setup, f"crontabs.{group}")
    ns = await _namespace(setup, "crs")
    await _create(setup, f"/apis/{group}/v1/namespaces/{ns}/crontabs", crontab(group, "one"))
    await _role(setup, ns, "ct-reader", {"apiGroups": [group], "resources": ["crontabs"], "verbs": ["get", "list"]})
    await _bind(setup, ns, "read-ct", "Role", "ct-reader", {"kind": "ServiceAccount", "name": "ctreader"})
    token = await _sa_token(setup, ns, "ctreader")
    user = f"system:serviceaccount:{ns}:ctreader"
    async with secure.http(client=None, token=token) as reader:
        listing = (await _until_status(reader, f"/apis/{group}/v1/namespaces/{ns}/crontabs", 200)).json()
        assert [i["metadata"]["name"] for i in listing["items"]] == ["one"]
        r = await reader.delete(f"/apis/{group}/v1/namespaces/{ns}/crontabs/one")
        assert _status(r)["message"] == (
            f'crontabs.{group} "one" is forbidden: User "{user}" cannot delete resource "crontabs" '
            f'in API group "{group}" in the namespace "{ns}"'
        )
    await setup.delete(f"{CRDS}/crontabs.{group}")
