"""The kubelet server's authentication and authorization as pure logic: which questions a request asks
(upstream's GetRequestAttributes), who a request is, the webhooks' caches, and the filter's answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from apimachinery.clientcert import ClientCertificates, load_ca_bundle
from kubelet.auth import AuthOptions, KubeletAuth
from kubelet.authn import ANONYMOUS, Authenticator, TokenReviewer, Unauthenticated, User
from kubelet.authz import AlwaysAllow, Attributes, SubjectAccessReviewer, request_attributes
from kubelet.ttlcache import TTLCache
from tinykube.pki import ClientIdentity, ClusterPKI

ALICE = User("alice", groups=("devs", "system:authenticated"))


@pytest.mark.parametrize(
    ("method", "path", "websocket", "verb", "subresources"),
    [
        ("GET", "/containerLogs/ns/p/c", False, "get", ["proxy"]),
        ("GET", "/exec/ns/p/c", True, "create", ["proxy"]),  # a WebSocket upgrade is a create
        ("POST", "/exec/ns/p/c", False, "create", ["proxy"]),
        ("GET", "/stats/summary", False, "get", ["stats"]),
        ("GET", "/stats", False, "get", ["stats"]),
        ("GET", "/statsfoo", False, "get", ["proxy"]),
        ("GET", "/metrics", False, "get", ["metrics"]),
        ("GET", "/metrics/resource", False, "get", ["metrics"]),
        ("GET", "/logs/syslog", False, "get", ["log"]),
        ("POST", "/checkpoint/ns/p/c", False, "create", ["checkpoint"]),
        ("GET", "/healthz", False, "get", ["healthz", "proxy"]),
        ("GET", "/pods", False, "get", ["pods", "proxy"]),
        ("GET", "/runningpods/", False, "get", ["pods", "proxy"]),
        ("GET", "/configz", False, "get", ["configz", "proxy"]),
        ("PUT", "/run/ns/p/c", False, "update", ["proxy"]),
        ("PATCH", "/x", False, "patch", ["proxy"]),
        ("DELETE", "/x", False, "delete", ["proxy"]),
        ("OPTIONS", "/x", False, "", ["proxy"]),
    ],
)
def test_request_attributes_are_upstreams(
    method: str, path: str, websocket: bool, verb: str, subresources: list[str]
) -> None:
    attrs = request_attributes(ALICE, method, path, "node-1", websocket=websocket)
    assert [a.subresource for a in attrs] == subresources
    assert {(a.verb, a.resource, a.name, a.path, a.user) for a in attrs} == {(verb, "nodes", "node-1", path, ALICE)}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPKI:
    pki = ClusterPKI(tmp_path_factory.mktemp("pki"))
    pki.ensure(
        ips=["127.0.0.1"],
        dns_names=["localhost"],
        clients=[ClientIdentity("admin", "kubernetes-admin", ("system:masters",))],
    )
    return pki


def _scope(der: bytes | None = None) -> dict[str, Any]:
    if der is None:
        return {"type": "http", "extensions": {}}
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
    return {"type": "http", "extensions": {"tls": {"client_cert_chain": [pem]}}}


def _der(path: Any) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


class FakeApi:
    """An ApiClient double answering TokenReviews and SubjectAccessReviews, counting the questions."""

    def __init__(self, tokens: dict[str, dict[str, Any]] | None = None, allow: set[str] | None = None) -> None:
        self.tokens = tokens or {}
        self.allow = allow or set()
        self.asked: list[dict[str, Any]] = []

    async def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(body)
        if resource == "tokenreviews":
            user = self.tokens.get(body["spec"]["token"])
            return {"status": {"authenticated": True, "user": user} if user else {"authenticated": False}}
        spec = body["spec"]
        return {"status": {"allowed": f"{spec['user']}:{spec['resourceAttributes']['subresource']}" in self.allow}}


async def test_a_certificate_then_a_token_then_anonymous(pki: ClusterPKI) -> None:
    certs = ClientCertificates(load_ca_bundle(pki.ca.cert))
    api = FakeApi({"good": {"username": "bob", "uid": "7", "groups": ["devs", "system:authenticated"]}})
    auth = Authenticator(certificates=certs, tokens=TokenReviewer(api), anonymous=False)  # type: ignore[arg-type]
    admin = await auth.authenticate(_scope(_der(pki.client("admin").cert)), {})
    assert admin == User("kubernetes-admin", groups=("system:masters", "system:authenticated"))
    bob = await auth.authenticate(_scope(), {"authorization": "Bearer good"})
    assert bob == User("bob", "7", ("devs", "system:authenticated"))
    assert await auth.authenticate(_scope(), {}) is None  # nobody: 401
    with pytest.raises(Unauthenticated):
        await auth.authenticate(_scope(), {"authorization": "Bearer bad"})
    # a serving certificate is no client certificate; a bad credential is refused, not anonymous
    with pytest.raises(Unauthenticated, match="incompatible key usage"):
        await Authenticator(certificates=certs, anonymous=True).authenticate(_scope(_der(pki.apiserver.cert)), {})
    assert await Authenticator(anonymous=True).authenticate(_scope(), {"authorization": "Bearer x"}) == ANONYMOUS


async def test_token_reviews_are_cached_for_the_ttl() -> None:
    now = [0.0]
    api = FakeApi({"good": {"username": "bob"}})
    reviewer = TokenReviewer(api, ttl=120, cache=TTLCache(clock=lambda: now[0]))  # type: ignore[arg-type]
    for _ in range(3):
        assert (await reviewer.user("good")).groups == ("system:authenticated",)
        with pytest.raises(Unauthenticated):
            await reviewer.user("bad")
    assert len(api.asked) == 2
    now[0] = 121
    await reviewer.user("good")
    assert len(api.asked) == 3


async def test_access_reviews_ask_upstreams_spec_and_cache_each_answer_for_its_ttl() -> None:
    now = [0.0]
    api = FakeApi(allow={"alice:log"})
    sar = SubjectAccessReviewer(api, 300, 30, cache=TTLCache(clock=lambda: now[0]))  # type: ignore[arg-type]
    log, proxy = (Attributes(ALICE, "get", "node-1", sub, "/p") for sub in ("log", "proxy"))
    assert await sar.allowed(log) and not await sar.allowed(proxy)
    assert api.asked[0] == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": "get",
                "version": "v1",
                "resource": "nodes",
                "subresource": "log",
                "name": "node-1",
            },
            "user": "alice",
            "groups": ["devs", "system:authenticated"],
        },
    }
    now[0] = 31  # the denial is asked again, the allowed answer is still kept
    assert await sar.allowed(log) and not await sar.allowed(proxy)
    assert len(api.asked) == 3


class DenyProxy:
    async def allowed(self, attrs: Attributes) -> bool:
        if attrs.subresource == "boom":
            raise RuntimeError("apiserver unreachable")
        return attrs.subresource == "healthz"


async def test_the_filter_answers_as_upstreams_kubelet() -> None:
    async def ok(_: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", ok), Route("/containerLogs/a/b/c", ok)])
    anonymous = KubeletAuth(lambda _: "node-1", Authenticator(anonymous=True), DenyProxy())
    closed = KubeletAuth(lambda _: "node-1", Authenticator(anonymous=False), AlwaysAllow())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(anonymous.filter(app)), base_url="http://k") as k:
        r = await k.get("/containerLogs/a/b/c")
        assert (r.status_code, r.text) == (
            403,
            "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[proxy])\n",
        )
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert (await k.get("/healthz")).text == "ok"  # allowed as healthz, before proxy is asked
    async with httpx.AsyncClient(transport=httpx.ASGITransport(closed.filter(app)), base_url="http://k") as k:
        r = await k.get("/healthz")
        assert (r.status_code, r.text) == (401, "Unauthorized")


def test_options_check_their_flags(tmp_path: Any) -> None:
    AuthOptions().check()
    with pytest.raises(ValueError, match="go together"):
        AuthOptions(tls_cert_file="a.crt").check()
    with pytest.raises(ValueError, match="unknown mode 'RBAC'"):
        AuthOptions(authorization_mode="RBAC").check()
    assert AuthOptions().tls() is None
    assert AuthOptions(tls_cert_file="a", tls_private_key_file="b", client_ca_file="c").tls() is not None
