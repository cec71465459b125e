"""Authenticators as pure logic: client certificates, the token file, ServiceAccount JWTs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apimachinery.errors import StatusError
from apiserver.authn.bearer import BearerTokenAuthenticator, TokenError, TokenUnion
from apiserver.authn.serviceaccount import ServiceAccountAuthenticator, TokenSigner, claims, load_public_keys
from apiserver.authn.tokenfile import TokenFile, TokenFileError
from apiserver.authn.x509 import X509Authenticator, load_ca_bundle
from apiserver.context import RequestContext
from tinykube.pki import ClientIdentity, ClusterPKI

ISSUER = "https://kubernetes.default.svc.cluster.local"


def _ctx(headers: dict[str, str] | None = None, der: bytes | None = None) -> RequestContext:
    return RequestContext("GET", "/api/v1/pods", "list", None, headers=headers or {}, peer_cert_der=der)


def _der(pem: bytes) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPKI:
    pki = ClusterPKI(tmp_path_factory.mktemp("pki"))
    pki.ensure(
        ips=["127.0.0.1"],
        dns_names=["localhost"],
        clients=[ClientIdentity("admin", "kubernetes-admin", ("system:masters",))],
    )
    return pki


async def test_a_client_certificate_is_its_cn_and_organisations(pki: ClusterPKI) -> None:
    auth = X509Authenticator(load_ca_bundle(pki.ca.cert))
    user = await auth.authenticate(_ctx(der=_der(pki.client("admin").cert_pem())))
    assert user is not None
    assert (user.name, user.groups) == ("kubernetes-admin", ("system:masters", "system:authenticated"))
    assert await auth.authenticate(_ctx()) is None  # no certificate: not this authenticator's business


async def test_a_certificate_of_another_ca_is_401(pki: ClusterPKI, tmp_path: Path) -> None:
    other = ClusterPKI(tmp_path / "other")
    other.ensure(ips=["127.0.0.1"], dns_names=[], clients=[ClientIdentity("admin", "kubernetes-admin")])
    auth = X509Authenticator(load_ca_bundle(pki.ca.cert))
    with pytest.raises(StatusError) as e:
        await auth.authenticate(_ctx(der=_der(other.client("admin").cert_pem())))
    assert (e.value.code, e.value.reason, e.value.message) == (401, "Unauthorized", "Unauthorized")
    # a serving certificate is no client certificate
    with pytest.raises(StatusError):
        await auth.authenticate(_ctx(der=_der(pki.apiserver.cert_pem())))


async def test_each_certificate_names_its_own_user_on_every_request(tmp_path: Path) -> None:
    pki = ClusterPKI(tmp_path / "pki")
    people = [ClientIdentity("a", "alice", ("devs",)), ClientIdentity("b", "bob", ("ops", "devs"))]
    pki.ensure(ips=["127.0.0.1"], dns_names=[], clients=people)
    auth = X509Authenticator(load_ca_bundle(pki.ca.cert))
    ders = {p.file: _der(pki.client(p.file).cert_pem()) for p in people}
    for _ in range(3):  # a client's requests one after the other (the users are remembered after the first)
        for file, name, groups in (("a", "alice", ("devs",)), ("b", "bob", ("ops", "devs"))):
            user = await auth.authenticate(_ctx(der=ders[file]))
            assert user is not None
            assert (user.name, user.groups) == (name, (*groups, "system:authenticated"))


def test_the_token_file_is_upstreams_csv() -> None:
    tokens = TokenFile.parse('t1,alice,1001,"dev,ops"\n\nt2,bob,1002\n')
    assert tokens.tokens["t1"].groups == ("dev", "ops")
    assert tokens.tokens["t2"].groups == ()
    with pytest.raises(TokenFileError, match="at least 3 columns"):
        TokenFile.parse("t3,carol\n")


async def test_bearer_tokens_nobody_accepts_are_401_not_anonymous() -> None:
    tokens = TokenUnion([TokenFile.parse("t1,alice,1001,dev\n", api_audiences=["api"])])
    bearer = BearerTokenAuthenticator(tokens)
    user = await bearer.authenticate(_ctx({"authorization": "Bearer t1"}))
    assert user is not None and (user.name, user.uid, user.groups) == ("alice", "1001", ("dev", "system:authenticated"))
    assert await bearer.authenticate(_ctx()) is None
    assert await bearer.authenticate(_ctx({"authorization": "Basic YTpi"})) is None
    for header in ("Bearer nope", "Bearer  two-spaces"):
        with pytest.raises(StatusError) as e:
            await bearer.authenticate(_ctx({"authorization": header}))
        assert e.value.code == 401
    # the token file is valid for the API's own audiences only
    assert (await tokens.authenticate_token("t1", ["api"])).audiences == ("api",)
    with pytest.raises(TokenError):
        await tokens.authenticate_token("t1", ["vault"])


class _Objects:
    """The objects a token names, as the apiserver's store would return them."""

    def __init__(self, *objs: tuple[str, dict[str, Any]]) -> None:
        self.objs = {(plural, o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for plural, o in objs}

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objs.get((plural, namespace, name))


SA = {"metadata": {"name": "robot", "namespace": "demo", "uid": "sa-uid"}}
POD = {"metadata": {"name": "web", "namespace": "demo", "uid": "pod-uid"}}


def _signer(pki: ClusterPKI) -> TokenSigner:
    return TokenSigner(pki.sa_key.read_bytes(), ISSUER)


def _sa_auth(pki: ClusterPKI, *objs: tuple[str, dict[str, Any]]) -> ServiceAccountAuthenticator:
    return ServiceAccountAuthenticator(load_public_keys([pki.sa_pub]), [ISSUER], [ISSUER], _Objects(*objs))


async def test_a_bound_service_account_token_is_its_account_and_pod(pki: ClusterPKI) -> None:
    token = _signer(pki).sign(claims(SA, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600, pod=POD))
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    result = await _sa_auth(pki, ("serviceaccounts", SA), ("pods", POD)).authenticate_token(token, [])
    assert result is not None
    assert result.user.name == "system:serviceaccount:demo:robot"
    assert result.user.uid == "sa-uid"
    assert result.user.groups == ("system:serviceaccounts", "system:serviceaccounts:demo")
    assert result.user.extra["authentication.kubernetes.io/pod-name"] == ("web",)
    assert result.audiences == (ISSUER,)


async def test_service_account_tokens_that_must_fail(pki: ClusterPKI) -> None:
    sign = _signer(pki).sign
    auth = _sa_auth(pki, ("serviceaccounts", SA), ("pods", POD))
    expired = claims(SA, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600, now=time.time() - 3600)
    with pytest.raises(TokenError, match="Token has expired"):
        await auth.authenticate_token(sign(expired), [])
    vault = claims(SA, issuer=ISSUER, audiences=["vault"], expiration_seconds=600)
    with pytest.raises(TokenError, match=r'token audiences \["vault"\] is invalid'):
        await auth.authenticate_token(sign(vault), [])
    recreated = claims(
        {"metadata": {**SA["metadata"], "uid": "old"}}, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600
    )
    with pytest.raises(TokenError, match="does not match claim"):
        await auth.authenticate_token(sign(recreated), [])
    pod_gone = claims(
        SA, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600, pod={"metadata": {"name": "x", "uid": "u"}}
    )
    with pytest.raises(TokenError, match="invalidated"):
        await auth.authenticate_token(sign(pod_gone), [])
    # signed by another key: a forgery
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = TokenSigner(pem, ISSUER).sign(claims(SA, issuer=ISSUER, audiences=[ISSUER], expiration_seconds=600))
    with pytest.raises(TokenError):
        await auth.authenticate_token(forged, [])
    # another issuer's JWT or no JWT at all: not ours to judge
    foreign = sign(claims(SA, issuer="https://example.com", audiences=[ISSUER], expiration_seconds=600))
    assert await auth.authenticate_token(foreign, []) is None
    assert await auth.authenticate_token("not-a-jwt", []) is None
