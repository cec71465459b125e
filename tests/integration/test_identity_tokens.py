"""ServiceAccount tokens end to end: TokenRequest (`kubectl create token`) with its defaults, limits and
bindings, and the kubelet's token manager renewing a pod's token at 80 % of its life."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from identity_kit import ISSUER, SecureApiserver, admin_kubectl, jwt_claims, secure_apiserver

from client.config import load_config
from client.rest import ApiClient
from client.transport import KeepAliveTransport
from kubelet.tokens import TOKEN_REQUESTS, TokenManager
from tests.e2e.conftest import Kubectl


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureApiserver]:
    with secure_apiserver(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def kubectl(kubectl_binary: Path, secure: SecureApiserver, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return admin_kubectl(kubectl_binary, secure, tmp_path_factory)


@pytest.fixture
async def ns(secure: SecureApiserver) -> str:
    """A fresh namespace with its `default` ServiceAccount (no controller-manager runs here)."""
    name = f"id-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=secure.insecure, timeout=10) as api:
        r = await api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert r.status_code == 201, r.text
        r = await api.post(f"/api/v1/namespaces/{name}/serviceaccounts", json={"metadata": {"name": "default"}})
        assert r.status_code == 201, r.text
    return name


def test_kubectl_create_token_signs_a_bound_token(kubectl: Kubectl, secure: SecureApiserver, ns: str) -> None:
    before = int(time.time())
    token = kubectl.ok("create", "token", "default", "-n", ns).strip()
    claims = jwt_claims(token)
    sa_uid = kubectl.ok("get", "sa", "default", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    assert claims["iss"] == ISSUER
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["aud"] == [ISSUER]
    assert claims["kubernetes.io"] == {"namespace": ns, "serviceaccount": {"name": "default", "uid": sa_uid}}
    assert claims["nbf"] == claims["iat"] and before <= claims["iat"] <= time.time()
    assert claims["exp"] - claims["iat"] == 3600  # the default expirationSeconds
    # an audience and a duration of the caller's choosing
    token = kubectl.ok("create", "token", "default", "-n", ns, "--audience", "vault", "--duration", "20m")
    claims = jwt_claims(token.strip())
    assert (claims["aud"], claims["exp"] - claims["iat"]) == (["vault"], 1200)


def test_token_requests_that_are_refused(kubectl: Kubectl, ns: str) -> None:
    err = kubectl.fails("create", "token", "default", "-n", ns, "--duration", "1m")
    assert (
        'TokenRequest.authentication.k8s.io "default" is invalid: spec.expirationSeconds: Invalid value: 60: '
        "may not specify a duration less than 10 minutes"
    ) in err
    err = kubectl.fails("create", "token", "nobody", "-n", ns)
    assert 'serviceaccounts "nobody" not found' in err
    err = kubectl.fails(
        "create", "token", "default", "-n", ns, "--bound-object-kind", "Pod", "--bound-object-name", "ghost"
    )
    assert 'pods "ghost" not found' in err


async def test_a_token_bound_to_a_pod_names_the_pod(secure: SecureApiserver, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    async with httpx.AsyncClient(base_url=secure.insecure, timeout=10) as api:
        r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
        assert r.status_code == 201, r.text
        uid = r.json()["metadata"]["uid"]
        ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": uid}
        r = await api.post(
            f"/api/v1/namespaces/{ns}/serviceaccounts/default/token",
            json={"spec": {"boundObjectRef": ref, "expirationSeconds": 3607}},
        )
        assert r.status_code == 201, r.text
        answer = r.json()
        assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
        assert answer["spec"]["expirationSeconds"] == 3607
        claims = jwt_claims(answer["status"]["token"])
        assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": uid}
        # the kubelet's magic 3607 s: the token lives a year, with a warning time at 3607 s (upstream's rollout)
        assert claims["kubernetes.io"]["warnafter"] == claims["iat"] + 3607
        assert claims["exp"] - claims["iat"] == 365 * 24 * 3600
        stale = {**ref, "uid": "0000"}
        r = await api.post(
            f"/api/v1/namespaces/{ns}/serviceaccounts/default/token", json={"spec": {"boundObjectRef": stale}}
        )
        assert r.status_code == 409, r.text
        assert "the UID in the bound object reference (0000) does not match the UID in record" in r.json()["message"]


async def test_the_kubelet_renews_a_token_at_80_percent_of_its_life(secure: SecureApiserver, ns: str) -> None:
    """The token manager against the real TokenRequest API, with its clock moved forward."""
    now = [time.time()]
    async with ApiClient(load_config(secure.kubeconfig)) as api:  # the admin kubeconfig: https + certificate
        pod = await api.create(
            "pods",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            ns,
        )
        pod["spec"]["volumes"] = [
            {
                "name": "tok",
                "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 600}}]},
            }
        ]
        manager = TokenManager(api, clock=lambda: now[0])
        first, due = await manager.for_pod(pod)
        issued = jwt_claims(first[("tok", 0)].decode())
        assert issued["exp"] - issued["iat"] == 600
        # 80 % of 600 s after issue (the server's clock, whole seconds), minus up to 10 s jitter
        assert due is not None and issued["exp"] - 120 - 10 <= due <= issued["exp"] - 120
        assert due >= int(now[0]) + 470  # counted from when it was asked for, not from some older time
        now[0] = due - 1
        again, _ = await manager.for_pod(pod)
        assert again == first  # still fresh: the cached token
        now[0] = due + 1
        renewed, next_due = await manager.for_pod(pod)
        assert renewed[("tok", 0)] != first[("tok", 0)]
        claims = jwt_claims(renewed[("tok", 0)].decode())
        assert claims["kubernetes.io"]["pod"]["uid"] == pod["metadata"]["uid"]
        # the new token's own schedule: 80 % of its life as the server issued it (the server's clock, not
        # the moved one), minus up to 10 s jitter
        assert next_due is not None and claims["exp"] - 120 - 10 <= next_due <= claims["exp"] - 120


async def test_a_burst_of_pods_gets_its_tokens_over_a_few_connections(secure: SecureApiserver, ns: str) -> None:
    """20 pods starting at once ask for 20 tokens without dialing (and TLS-handshaking) a connection each."""
    config = load_config(secure.kubeconfig)
    transport = KeepAliveTransport(config.ssl_context())
    async with ApiClient(config, transport=transport) as api:
        pods = []
        for i in range(20):
            pod = await api.create(
                "pods", {"metadata": {"name": f"b{i}"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}, ns
            )
            pod["spec"]["volumes"] = [
                {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
            ]
            pods.append(pod)
        dialed = transport.connections  # the creates went one after another: one connection
        manager = TokenManager(api)
        answers = await asyncio.gather(*(manager.for_pod(p) for p in pods))
        uids = {jwt_claims(tokens[("tok", 0)].decode())["kubernetes.io"]["pod"]["uid"] for tokens, _ in answers}
        assert uids == {p["metadata"]["uid"] for p in pods}  # each pod has its own bound token
        assert transport.connections <= max(dialed, TOKEN_REQUESTS)
