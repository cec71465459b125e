"""The kubelet's server with the flags the launcher gives it — HTTPS, client certificates of the cluster
CA, bearer tokens by TokenReview, no anonymous requests, every request authorized by a
SubjectAccessReview — in front of a real apiserver started with `--authorization-mode Node,RBAC` and
its `--kubelet-*` client flags.

The server runs in process over a small runtime double (tests/integration/test_streaming.py); it asks
the apiserver as node-1 (its client certificate), as a kubelet does. Upstream's exact words are
checked: `Unauthorized`, and `Forbidden (user=…, verb=…, resource=nodes, subresource(s)=[…])`.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from controller_kit import eventually
from identity_kit import SecureApiserver, kubelet_client_flags, start_secure_apiserver
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from client.config import Config
from client.rest import ApiClient
from kubelet.auth import AuthOptions
from kubelet.server import KubeletServer
from kubelet.simulated_stats import StatsServer
from tests.integration.test_streaming import DirRuntime, cri_lines, run_exec
from tinykube.procs import free_port

RBAC = "rbac.authorization.k8s.io"
NODE = "node-1"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureApiserver]:
    root = tmp_path_factory.mktemp("kubelet-auth")
    extra = ("--authorization-mode", "Node,RBAC", "--disable-admission-plugins", "ServiceAccount")
    server, etcd = start_secure_apiserver(root, (*extra, *kubelet_client_flags(root / "pki")))
    try:
        yield server
    finally:
        server.process.stop()
        etcd.stop()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> DirRuntime:
    return DirRuntime(tmp_path_factory.mktemp("containers"))


def _options(secure: SecureApiserver) -> AuthOptions:
    """The flags the launcher gives node-1's kubelet."""
    serving = secure.pki.serving(f"kubelet-{NODE}")
    return AuthOptions(
        tls_cert_file=str(serving.cert),
        tls_private_key_file=str(serving.key),
        client_ca_file=str(secure.pki.ca.cert),
        anonymous_auth=False,
        authentication_token_webhook=True,
        authorization_mode="Webhook",
    )


def _node_api(secure: SecureApiserver) -> ApiClient:
    """The kubelet's own connection: node-1's client certificate."""
    pair = secure.pki.client(f"kubelet-{NODE}")
    return ApiClient(
        Config(server=secure.url, ca_file=str(secure.pki.ca.cert), cert_file=str(pair.cert), key_file=str(pair.key))
    )


@pytest.fixture(scope="module")
async def kubelet(secure: SecureApiserver, runtime: DirRuntime) -> AsyncIterator[str]:
    """node-1's kubelet server (https://127.0.0.1:<port>) and its Node object."""
    opts = _options(secure)
    async with _node_api(secure) as api:
        auth = opts.build(api, lambda _address: NODE)
        server = KubeletServer(runtime, "127.0.0.1", 0, lambda _host: None, tls=opts.tls(), auth=auth)
        await server.start()
        status = {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}},
        }
        async with httpx.AsyncClient(base_url=secure.insecure, timeout=10) as setup:
            r = await setup.post("/api/v1/nodes", json={"metadata": {"name": NODE}})
            assert r.status_code == 201, r.text
            r = await setup.put(f"/api/v1/nodes/{NODE}/status", json={**r.json(), "status": status})
            assert r.status_code == 200, r.text
        try:
            yield f"https://127.0.0.1:{server.port}"
        finally:
            await server.stop()


@pytest.fixture(scope="module")
async def pod(secure: SecureApiserver, kubelet: str, runtime: DirRuntime) -> str:
    """`<namespace>/web`: a pod bound to node-1 whose container has logged two lines."""
    ns = f"ka-{uuid.uuid4().hex[:6]}"
    runtime.start(ns, "web", "c", cri_lines("hello", "world"))
    async with httpx.AsyncClient(base_url=secure.insecure, timeout=10) as setup:
        assert (await setup.post("/api/v1/namespaces", json={"metadata": {"name": ns}})).status_code == 201
        body = {"metadata": {"name": "web"}, "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}}
        r = await setup.post(f"/api/v1/namespaces/{ns}/pods", json=body)
        assert r.status_code == 201, r.text
    return ns


def _tls(secure: SecureApiserver, client: str | None = None) -> ssl.SSLContext:
    return secure.tls(client)


async def _get(kubelet: str, path: str, verify: ssl.SSLContext, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=kubelet, verify=verify, headers=headers, timeout=10) as k:
        return await k.get(path)


async def _exec_refusal(kubelet: str, path: str, verify: ssl.SSLContext, token: str | None = None) -> tuple[int, str]:
    """The HTTP answer refusing a WebSocket exec straight to the kubelet."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    url = kubelet.replace("https://", "wss://") + path
    with pytest.raises(InvalidStatus) as e:
        async with connect(url, ssl=verify, subprotocols=["v5.channel.k8s.io"], additional_headers=headers, proxy=None):  # type: ignore[list-item]
            pass
    return e.value.response.status_code, (e.value.response.body or b"").decode()


async def test_callers_nobody_vouches_for_are_401(secure: SecureApiserver, kubelet: str, pod: str) -> None:
    r = await _get(kubelet, f"/containerLogs/{pod}/web/c", _tls(secure))
    assert (r.status_code, r.text, r.headers["content-type"]) == (401, "Unauthorized", "text/plain; charset=utf-8")
    r = await _get(kubelet, "/healthz", _tls(secure), token="not-a-token")
    assert (r.status_code, r.text) == (401, "Unauthorized")
    # plain HTTP is not served at all
    with pytest.raises(httpx.HTTPError):
        await _get(kubelet.replace("https://", "http://"), "/healthz", _tls(secure))


async def test_a_user_without_rights_gets_upstreams_403(secure: SecureApiserver, kubelet: str, pod: str) -> None:
    r = await _get(kubelet, f"/containerLogs/{pod}/web/c", _tls(secure, "stranger"))
    assert (r.status_code, r.text) == (
        403,
        "Forbidden (user=stranger, verb=get, resource=nodes, subresource(s)=[proxy])\n",
    )
    r = await _get(kubelet, "/healthz", _tls(secure, "stranger"))
    assert r.text == "Forbidden (user=stranger, verb=get, resource=nodes, subresource(s)=[healthz proxy])\n"
    # a WebSocket exec is a create, refused before the upgrade
    code, body = await _exec_refusal(kubelet, f"/exec/{pod}/web/c?command=id&stdout=1", _tls(secure, "stranger"))
    assert (code, body) == (403, "Forbidden (user=stranger, verb=create, resource=nodes, subresource(s)=[proxy])\n")


async def test_the_admin_and_the_apiserver_get_in(secure: SecureApiserver, kubelet: str, pod: str) -> None:
    r = await _get(kubelet, f"/containerLogs/{pod}/web/c", _tls(secure, "admin"))
    assert (r.status_code, r.text) == (200, "hello\nworld\n")
    # pods/log and pods/exec: the apiserver dials the kubelet over TLS as kube-apiserver-kubelet-client
    async with secure.http("admin") as admin:
        r = await admin.get(f"/api/v1/namespaces/{pod}/pods/web/log")
        assert (r.status_code, r.text) == (200, "hello\nworld\n")
    url = secure.url.replace("https://", "wss://") + f"/api/v1/namespaces/{pod}/pods/web/exec"
    url += "?command=echo&command=hi&stdout=true&stderr=true"
    out, err, status, _ = await asyncio.wait_for(run_exec(url, ssl=_tls(secure, "admin")), 15)
    assert (out, err, status) == (b"hi\n", b"", {"metadata": {}, "status": "Success"})


async def test_a_token_allowed_get_nodes_proxy_reads_logs_but_cannot_exec(
    secure: SecureApiserver, kubelet: str, pod: str
) -> None:
    async with httpx.AsyncClient(base_url=secure.insecure, timeout=10) as setup:
        for path, body in [
            (f"/api/v1/namespaces/{pod}/serviceaccounts", {"metadata": {"name": "reader"}}),
            (
                f"/apis/{RBAC}/v1/clusterroles",
                {
                    "metadata": {"name": f"{pod}-node-proxy-reader"},
                    "rules": [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}],
                },
            ),
            (
                f"/apis/{RBAC}/v1/clusterrolebindings",
                {
                    "metadata": {"name": f"{pod}-node-proxy-reader"},
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": f"{pod}-node-proxy-reader"},
                    "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": pod}],
                },
            ),
        ]:
            assert (await setup.post(path, json=body)).status_code == 201
        r = await setup.post(f"/api/v1/namespaces/{pod}/serviceaccounts/reader/token", json={"spec": {}})
        token = r.json()["status"]["token"]
        user = f"system:serviceaccount:{pod}:reader"
        review = {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "proxy", "name": NODE},
            }
        }

        async def granted() -> bool:
            # RBAC follows the watch cache, a moment behind the write (and the kubelet keeps a denial 30 s)
            r = await setup.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
            return bool(r.json()["status"].get("allowed"))

        await eventually(granted, 10, "the binding to take effect")
    r = await _get(kubelet, f"/containerLogs/{pod}/web/c", _tls(secure), token=token)
    assert (r.status_code, r.text) == (200, "hello\nworld\n")
    code, body = await _exec_refusal(kubelet, f"/exec/{pod}/web/c?command=id&stdout=1", _tls(secure), token=token)
    assert (code, body) == (403, f"Forbidden (user={user}, verb=create, resource=nodes, subresource(s)=[proxy])\n")


async def test_the_metrics_server_reads_resource_metrics_and_nothing_else(
    secure: SecureApiserver, kubelet: str
) -> None:
    r = await _get(kubelet, "/metrics/resource", _tls(secure, "metrics-server"))
    assert r.status_code == 200 and "resource_scrape_error" in r.text
    r = await _get(kubelet, "/stats/summary", _tls(secure, "metrics-server"))
    user = "system:serviceaccount:kube-system:metrics-server"
    assert (r.status_code, r.text) == (
        403,
        f"Forbidden (user={user}, verb=get, resource=nodes, subresource(s)=[stats])\n",
    )


async def test_simulated_nodes_serve_stats_behind_the_same_door(secure: SecureApiserver) -> None:
    opts = _options(secure)
    seen: list[str] = []

    def node_of(address: str) -> str:
        seen.append(address)
        return NODE

    async with _node_api(secure) as api:
        server = StatsServer(
            ["127.0.0.1"], free_port(), lambda _host: None, tls=opts.tls(), auth=opts.build(api, node_of)
        )
        await server.start()
        try:
            base = f"https://127.0.0.1:{server.port}"
            assert (await _get(base, "/metrics/resource", _tls(secure))).status_code == 401
            r = await _get(base, "/metrics/resource", _tls(secure, "metrics-server"))
            assert r.status_code == 200, r.text
            assert seen == ["127.0.0.1"]
        finally:
            await server.stop()
