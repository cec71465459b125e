"""Authentication on the secure port: client certificates, static and ServiceAccount tokens, anonymous
requests, the 401s, TokenReview and SelfSubjectReview, through the real kubectl, curl and the official
Python client."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import kubernetes
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from identity_kit import ISSUER, STATIC_TOKEN, SecureApiserver, admin_kubectl, jwt_claims, secure_apiserver

from apiserver.authn.serviceaccount import TokenSigner, claims
from tests.e2e.conftest import Kubectl
from tinykube.cluster import write_kubeconfig
from tinykube.pki import ClientIdentity, ClusterPKI

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureApiserver]:
    with secure_apiserver(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def kubectl(kubectl_binary: Path, secure: SecureApiserver, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return admin_kubectl(kubectl_binary, secure, tmp_path_factory)


@pytest.fixture
def ns(kubectl: Kubectl) -> str:
    """A fresh namespace with its `default` ServiceAccount (no controller-manager runs here)."""
    name = f"authn-{uuid.uuid4().hex[:6]}"
    kubectl.ok("create", "namespace", name)
    kubectl.ok("create", "serviceaccount", "default", "-n", name)
    return name


def whoami(kubectl: Kubectl, *args: str) -> dict:
    """`kubectl auth whoami -o json` (a SelfSubjectReview) with extra flags."""
    return json.loads(kubectl.ok("auth", "whoami", "-o", "json", *args))["status"]["userInfo"]


def curl(secure: SecureApiserver, path: str, *args: str) -> tuple[int, str]:
    """curl on the secure port trusting the cluster CA; the status code and the body."""
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(secure.pki.ca.cert), "-w", "\n%{http_code}", *args, secure.url + path],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    body, _, code = out.rpartition("\n")
    return int(code), body


def test_the_admin_kubeconfig_works_with_kubectl(kubectl: Kubectl) -> None:
    assert kubectl.ok("get", "namespaces", "kube-system", "-o", "name").strip() == "namespace/kube-system"
    assert whoami(kubectl) == {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    table = kubectl.ok("auth", "whoami")
    assert table.split("\n")[0].split() == ["ATTRIBUTE", "VALUE"]
    assert "kubernetes-admin" in table


def test_the_official_client_with_the_admin_kubeconfig(secure: SecureApiserver) -> None:
    api = kubernetes.config.new_client_from_config(config_file=str(secure.kubeconfig))
    with api:
        names = [n.metadata.name for n in kubernetes.client.CoreV1Api(api).list_namespace().items]
    assert "kube-system" in names


async def test_anonymous_and_bad_credentials(secure: SecureApiserver) -> None:
    async with secure.http(client=None) as anonymous:
        for path in ("/healthz", "/livez", "/readyz", "/version"):
            assert (await anonymous.get(path)).status_code == 200, path
        r = await anonymous.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={})
        assert r.status_code == 201
        assert r.json()["status"]["userInfo"] == {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    for token in ("not-a-token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"):
        async with secure.http(client=None, token=token) as bad:
            for path in ("/api/v1/namespaces", "/version"):
                r = await bad.get(path)
                assert (r.status_code, r.json()) == (401, UNAUTHORIZED), path


def test_a_certificate_of_another_ca_is_refused_at_the_handshake(secure: SecureApiserver, tmp_path: Path) -> None:
    other = ClusterPKI(tmp_path / "other")
    other.ensure(ips=["127.0.0.1"], dns_names=[], clients=[ClientIdentity("admin", "kubernetes-admin")])
    ctx = ssl.create_default_context(cafile=str(secure.pki.ca.cert))
    ctx.load_cert_chain(other.client("admin").cert, other.client("admin").key)
    with pytest.raises(httpx.HTTPError):
        httpx.get(secure.url + "/api/v1/namespaces", verify=ctx, timeout=5).raise_for_status()


def test_client_certificates_and_static_tokens_name_their_users(kubectl: Kubectl, secure: SecureApiserver) -> None:
    stranger = secure.pki.client("stranger")
    user = whoami(kubectl, "--client-certificate", str(stranger.cert), "--client-key", str(stranger.key))
    assert user == {"username": "stranger", "groups": ["devs", "system:authenticated"]}
    code, body = curl(
        secure,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Authorization: Bearer {STATIC_TOKEN}",
        "-d",
        "{}",
    )
    assert code == 201
    assert json.loads(body)["status"]["userInfo"] == {
        "username": "alice",
        "uid": "1001",
        "groups": ["devs", "ops", "system:authenticated"],
    }


def test_kubectl_create_token_then_curl_with_it(
    kubectl: Kubectl, secure: SecureApiserver, ns: str, tmp_path: Path
) -> None:
    token = kubectl.ok("create", "token", "default", "-n", ns).strip()
    code, body = curl(
        secure,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Authorization: Bearer {token}",
        "-d",
        '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
    )
    assert code == 201, body
    info = json.loads(body)["status"]["userInfo"]
    sa_uid = kubectl.ok("get", "sa", "default", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    assert info["username"] == f"system:serviceaccount:{ns}:default"
    assert info["uid"] == sa_uid
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    assert info["extra"]["authentication.kubernetes.io/credential-id"] == [f"JTI={jwt_claims(token)['jti']}"]
    code, body = curl(secure, f"/api/v1/namespaces/{ns}/serviceaccounts", "-H", f"Authorization: Bearer {token}")
    assert code == 200 and json.loads(body)["kind"] == "ServiceAccountList"
    # kubectl with nothing but the token (and the CA)
    bare = tmp_path / "token-only.kubeconfig"
    write_kubeconfig(bare, secure.url, ca=secure.pki.ca.cert)
    user = whoami(kubectl, "--kubeconfig", str(bare), "--token", token)
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    # the account is deleted: its tokens are dead
    kubectl.ok("delete", "sa", "default", "-n", ns)
    code, body = curl(secure, f"/api/v1/namespaces/{ns}/serviceaccounts", "-H", f"Authorization: Bearer {token}")
    assert (code, json.loads(body)) == (401, UNAUTHORIZED)


def test_expired_and_forged_tokens_are_401(kubectl: Kubectl, secure: SecureApiserver, ns: str) -> None:
    sa = json.loads(kubectl.ok("get", "sa", "default", "-n", ns, "-o", "json"))
    signer = TokenSigner(secure.pki.sa_key.read_bytes(), ISSUER)
    good = signer.sign(claims(sa, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600))
    expired = signer.sign(claims(sa, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600, now=time.time() - 3600))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    forged = TokenSigner(pem, ISSUER).sign(claims(sa, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600))
    wrong_audience = signer.sign(claims(sa, issuer=ISSUER, audiences=["vault"], expiration_seconds=600))
    path = f"/api/v1/namespaces/{ns}/serviceaccounts"
    assert curl(secure, path, "-H", f"Authorization: Bearer {good}")[0] == 200
    for token in (expired, forged, wrong_audience):
        code, body = curl(secure, path, "-H", f"Authorization: Bearer {token}")
        assert (code, json.loads(body)) == (401, UNAUTHORIZED)


async def test_token_review(kubectl: Kubectl, secure: SecureApiserver, ns: str) -> None:
    token = kubectl.ok("create", "token", "default", "-n", ns, "--audience", "vault").strip()
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    async with secure.http() as admin:
        r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json=review)
        assert r.status_code == 201
        status = r.json()["status"]
        assert "authenticated" not in status and "vault" in status["error"]  # not for the API's audience
        review["spec"]["audiences"] = ["vault"]
        r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json=review)
        status = r.json()["status"]
        assert status["authenticated"] is True
        assert status["user"]["username"] == f"system:serviceaccount:{ns}:default"
        assert status["audiences"] == ["vault"]
        r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json={"spec": {"token": "nope"}})
        assert r.json()["status"] == {"user": {}, "error": "invalid bearer token"}
        r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json={"spec": {}})
        assert (r.status_code, r.json()["message"]) == (400, "token is required for TokenReview in authentication")
        # create-only: nothing is stored, nothing can be listed
        assert (await admin.get("/apis/authentication.k8s.io/v1/tokenreviews")).status_code == 405
    discovery = json.loads(kubectl.ok("get", "--raw", "/apis/authentication.k8s.io/v1"))
    verbs = {r["name"]: r["verbs"] for r in discovery["resources"]}
    assert verbs == {"tokenreviews": ["create"], "selfsubjectreviews": ["create"]}


async def _ws_status(server: SecureApiserver, client: str | None) -> int:
    """The HTTP status a pods/exec WebSocket handshake gets (it cannot succeed: the pod does not exist)."""
    uri = server.url.replace("https://", "wss://") + "/api/v1/namespaces/default/pods/nope/exec?command=ls&stdout=1"
    try:
        async with websockets.connect(uri, ssl=server.tls(client), subprotocols=["v5.channel.k8s.io"]):
            return 101
    except websockets.InvalidStatus as e:
        return e.response.status_code


async def test_without_anonymous_auth_no_credential_is_401(tmp_path_factory: pytest.TempPathFactory) -> None:
    with secure_apiserver(tmp_path_factory, "--no-anonymous-auth") as server:
        async with server.http(client=None) as anonymous:
            r = await anonymous.get("/api/v1/namespaces")
            assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
        async with server.http() as admin:
            assert (await admin.get("/api/v1/namespaces")).status_code == 200
        # the exec WebSocket reads the client certificate too: authenticated, it gets as far as the missing pod
        assert await _ws_status(server, None) == 401
        assert await _ws_status(server, "admin") == 404
