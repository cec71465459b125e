"""The handler chain's stages, each driven as the ASGI app it is (a tiny inner app stands for the
handlers): request info, panic recovery, authentication, impersonation, max in-flight,
authorization and audit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from apimachinery.errors import StatusError
from apiserver.audit.policy import Policy, parse_policy
from apiserver.authn import ANONYMOUS
from apiserver.authz import Attributes, Decision, Verdict
from apiserver.chain import ChainOptions, build_handler_chain
from apiserver.chain.authentication import UNSECURED, Authentication
from apiserver.chain.authorization import Authorization, authorize
from apiserver.chain.impersonation import Impersonation
from apiserver.chain.max_inflight import MaxInFlight
from apiserver.chain.panic import PanicRecovery
from apiserver.chain.request_info import LISTENER_KEY, RequestInfoStage, is_long_running, request_verb
from apiserver.context import RequestContext, UserInfo, context_of
from apiserver.request_info import RequestInfo, parse_path

Scope = dict[str, Any]
Inner = Callable[[Scope, Any, Any], Awaitable[None]]
ALICE = UserInfo("alice", "u1", ("devs",))


def scope(
    method: str = "GET",
    path: str = "/api/v1/namespaces/ns/pods",
    query: str = "",
    headers: dict[str, str] | None = None,
    listener: str | None = "secure",
    kind: str = "http",
) -> Scope:
    s: Scope = {
        "type": kind,
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("10.0.0.7", 40000),
    }
    if listener:
        s[LISTENER_KEY] = listener
    return s


async def call(app: Inner, s: Scope, body: bytes = b"") -> list[dict[str, Any]]:
    """Run one request through `app`; the messages it sent."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    if s["type"] == "websocket":
        messages = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(s, receive, send)
    return sent


def ok(body: bytes = b'{"kind":"Pod"}', status: int = 200) -> Inner:
    """An inner app answering `body`; it keeps the contexts it saw."""

    async def app(s: Scope, receive: Any, send: Any) -> None:
        app.seen.append(context_of(s))  # type: ignore[attr-defined]
        while (await receive()).get("more_body"):
            pass
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})

    app.seen = []  # type: ignore[attr-defined]
    return app


def answer(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], Any]:
    """Status code, headers and JSON body of a response."""
    start = next(m for m in sent if m["type"].endswith("response.start"))
    body = b"".join(m.get("body", b"") for m in sent if m["type"].endswith("response.body"))
    return start["status"], dict(start["headers"]), json.loads(body) if body else None


# --- request info ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "verb"),
    [
        ("GET", "/api/v1/namespaces/a/pods", {}, "list"),
        ("GET", "/api/v1/namespaces/a/pods", {"watch": "1"}, "watch"),
        ("GET", "/api/v1/namespaces/a/pods", {"watch": "false"}, "list"),
        ("GET", "/api/v1/watch/namespaces/a/pods/p", {}, "watch"),
        ("GET", "/api/v1/namespaces/a/pods/p", {}, "get"),
        ("GET", "/api/v1/namespaces/a/pods/p/log", {}, "get"),
        ("POST", "/api/v1/namespaces/a/pods", {}, "create"),
        ("PUT", "/api/v1/namespaces/a/pods/p/status", {}, "update"),
        ("PATCH", "/apis/apps/v1/namespaces/a/deployments/d", {}, "patch"),
        ("DELETE", "/api/v1/namespaces/a/pods/p", {}, "delete"),
        ("DELETE", "/api/v1/namespaces/a/pods", {}, "deletecollection"),
        ("GET", "/healthz", {}, "get"),
        ("POST", "/apis", {}, "post"),
        ("GET", "/api/v1", {}, "get"),
    ],
)
def test_request_verb(method: str, path: str, query: dict[str, str], verb: str) -> None:
    assert request_verb(method, parse_path(path), query) == verb


def test_parsed_paths_are_the_same_whether_remembered_or_not() -> None:
    # parse_path keeps the RequestInfo of short paths; a long path (past what it keeps) parses the same way
    name = "p" * 300
    short, long = "/api/v1/namespaces/a/pods/p/status", f"/apis/apps/v1/namespaces/a/deployments/{name}/scale"
    assert parse_path(short) == parse_path(short) == RequestInfo("", "v1", "a", "pods", "p", "status")
    assert parse_path(long) == RequestInfo("apps", "v1", "a", "deployments", name, "scale")
    assert parse_path("/api/v1/namespaces/a") == RequestInfo("", "v1", "", "namespaces", "a")
    assert parse_path("/healthz") is None
    with pytest.raises(dataclasses.FrozenInstanceError):  # requests share one: it must stay immutable
        parse_path(short).name = "q"  # type: ignore[misc]


def test_long_running_requests() -> None:
    assert is_long_running("watch", parse_path("/api/v1/pods"))
    for sub in ("exec", "log", "attach", "portforward", "proxy"):
        assert is_long_running("get", parse_path(f"/api/v1/namespaces/a/pods/p/{sub}"))
    assert not is_long_running("list", parse_path("/api/v1/pods"))
    assert not is_long_running("get", None)


async def test_request_info_builds_the_context_and_returns_the_audit_id() -> None:
    inner = ok()
    sent = await call(RequestInfoStage(inner), scope(query="labelSelector=a%3Db&limit=5", headers={"User-Agent": "ua"}))
    (ctx,) = inner.seen  # type: ignore[attr-defined]
    assert (ctx.verb, ctx.path, ctx.method) == ("list", "/api/v1/namespaces/ns/pods", "GET")
    assert ctx.query == {"labelSelector": "a=b", "limit": "5"}
    assert ctx.headers["user-agent"] == "ua"
    assert ctx.info.namespace == "ns" and ctx.is_resource_request
    assert not ctx.insecure and not ctx.long_running and ctx.deadline is not None
    _, headers, _ = answer(sent)
    assert headers[b"audit-id"] == ctx.audit_id.encode() and len(ctx.audit_id) == 36


async def test_request_info_keeps_the_client_audit_id_and_marks_the_insecure_port() -> None:
    inner = ok()
    await call(RequestInfoStage(inner), scope(query="watch=1", headers={"Audit-ID": "abc"}, listener="insecure"))
    (ctx,) = inner.seen  # type: ignore[attr-defined]
    assert ctx.audit_id == "abc" and ctx.insecure and ctx.long_running and ctx.deadline is None


# --- panic recovery ----------------------------------------------------------------------------


async def test_a_crash_before_the_answer_is_a_500_status() -> None:
    async def crash(s: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    code, _, body = answer(await call(RequestInfoStage(PanicRecovery(crash)), scope()))
    assert code == 500 and body["reason"] == "InternalError"
    assert body["message"] == "Internal error occurred: RuntimeError"


async def test_a_crash_after_the_answer_goes_no_further() -> None:
    async def crash_late(s: Scope, receive: Any, send: Any) -> None:
        await ok()(s, receive, send)
        raise RuntimeError("late")

    sent = await call(RequestInfoStage(PanicRecovery(crash_late)), scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


# --- authentication ----------------------------------------------------------------------------


class Fixed:
    """An authenticator answering one user for requests carrying a given header (or raising)."""

    def __init__(self, header: str, user: UserInfo | None = None, error: Exception | None = None) -> None:
        self.header, self.user, self.error = header, user, error

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        if self.header not in ctx.headers:
            return None
        if self.error is not None:
            raise self.error
        return self.user


def authn(inner: Inner, *authenticators: Any, anonymous: bool = True) -> Inner:
    return RequestInfoStage(PanicRecovery(Authentication(inner, authenticators, anonymous)))


async def test_the_first_recognising_authenticator_decides_and_adds_system_authenticated() -> None:
    inner = ok()
    app = authn(inner, Fixed("x-a", ALICE), Fixed("x-b", UserInfo("bob")))
    await call(app, scope(headers={"X-A": "1", "X-B": "1"}))
    await call(app, scope(headers={"X-B": "1"}))
    await call(app, scope())
    alice, bob, anon = (c.user for c in inner.seen)  # type: ignore[attr-defined]
    assert alice == UserInfo("alice", "u1", ("devs", "system:authenticated"))
    assert bob.groups == ("system:authenticated",)
    assert anon == ANONYMOUS and ANONYMOUS.groups == ("system:unauthenticated",)
    assert inner.seen[0].authenticated_user is inner.seen[0].user  # type: ignore[attr-defined]


async def test_the_insecure_port_is_system_unsecured_without_asking() -> None:
    inner = ok()
    await call(
        authn(inner, Fixed("x-a", error=RuntimeError("never asked"))), scope(headers={"X-A": "1"}, listener="insecure")
    )
    assert inner.seen[0].user == UNSECURED  # type: ignore[attr-defined]
    assert UNSECURED.groups == ("system:masters", "system:authenticated")


@pytest.mark.parametrize("error", [StatusError(401, "Unauthorized", "Unauthorized"), RuntimeError("authenticator bug")])
async def test_a_rejected_credential_is_401(error: Exception) -> None:
    inner = ok()
    code, _, body = answer(await call(authn(inner, Fixed("x-a", error=error)), scope(headers={"X-A": "1"})))
    assert code == 401 and inner.seen == []  # type: ignore[attr-defined]
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_no_credential_without_anonymous_is_401() -> None:
    code, _, _ = answer(await call(authn(ok(), anonymous=False), scope()))
    assert code == 401


async def test_a_refused_websocket_upgrade_gets_the_status_as_http() -> None:
    s = scope(path="/api/v1/namespaces/a/pods/p/exec", kind="websocket")
    s["extensions"] = {"websocket.http.response": {}}
    sent = await call(authn(ok(), anonymous=False), s)
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401


# --- impersonation -----------------------------------------------------------------------------


class AsHeader:
    async def impersonate(self, ctx: RequestContext) -> UserInfo:
        if ctx.headers["impersonate-user"] == "root":
            raise StatusError(403, "Forbidden", "no")
        return UserInfo(ctx.headers["impersonate-user"])


async def test_impersonation_replaces_the_user_and_keeps_the_real_one() -> None:
    inner = ok()
    app = authn(Impersonation(inner, AsHeader()), Fixed("x-a", ALICE))
    await call(app, scope(headers={"X-A": "1", "Impersonate-User": "carol"}))
    await call(app, scope(headers={"X-A": "1"}))
    first, second = inner.seen  # type: ignore[attr-defined]
    assert first.user == UserInfo("carol") and first.authenticated_user.name == "alice"
    assert second.user is second.authenticated_user
    code, _, _ = answer(await call(app, scope(headers={"X-A": "1", "Impersonate-User": "root"})))
    assert code == 403


# --- max in flight -----------------------------------------------------------------------------


def held() -> tuple[Inner, asyncio.Event, asyncio.Semaphore]:
    """An inner app that holds every request until released; `entered` counts the requests it holds."""
    release, entered = asyncio.Event(), asyncio.Semaphore(0)

    async def app(s: Scope, receive: Any, send: Any) -> None:
        entered.release()
        await release.wait()
        await ok()(s, receive, send)

    return app, release, entered


async def inside(entered: asyncio.Semaphore, n: int) -> None:
    """Wait until n more requests are being held."""
    for _ in range(n):
        await asyncio.wait_for(entered.acquire(), 5)


async def test_past_the_limit_is_429_at_once_and_within_it_is_served() -> None:
    inner, release, entered = held()
    limiter = MaxInFlight(inner, max_read_only=2, max_mutating=1)
    app = authn(limiter)
    first = [asyncio.create_task(call(app, scope())) for _ in range(2)]
    write = asyncio.create_task(call(app, scope(method="POST")))
    await inside(entered, 3)
    code, headers, body = answer(await call(app, scope()))
    assert code == 429 and headers[b"retry-after"] == b"1" and headers[b"content-type"] == b"application/json"
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1},
        "code": 429,
    }
    assert answer(await call(app, scope(method="DELETE", path="/api/v1/namespaces/a/pods/p")))[0] == 429
    assert answer(await call(app, scope(path="/version")))[0] == 429
    watch = asyncio.create_task(call(app, scope(query="watch=1")))  # long-running: not counted
    await inside(entered, 1)
    release.set()
    for t in [*first, write, watch]:
        assert answer(await t)[0] == 200
    assert limiter.inflight == {"readOnly": 0, "mutating": 0}


async def test_secure_port_masters_are_never_refused_the_insecure_port_is() -> None:
    inner, release, entered = held()
    admin = UserInfo("admin", groups=("system:masters",))
    app = authn(MaxInFlight(inner, max_read_only=1, max_mutating=1), Fixed("x-admin", admin))
    holder = asyncio.create_task(call(app, scope()))
    await inside(entered, 1)
    privileged = asyncio.create_task(call(app, scope(headers={"X-Admin": "1"})))
    await inside(entered, 1)
    assert answer(await call(app, scope(listener="insecure")))[0] == 429
    release.set()
    assert answer(await holder)[0] == answer(await privileged)[0] == 200


async def test_a_crashing_request_gives_its_slot_back() -> None:
    async def crash(s: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("x")

    limiter = MaxInFlight(crash, max_read_only=1, max_mutating=1)
    for _ in range(3):
        assert answer(await call(authn(limiter), scope()))[0] == 500
    assert limiter.inflight["readOnly"] == 0


# --- authorization -----------------------------------------------------------------------------


class Says:
    """An authorizer with a fixed answer, remembering what it was asked."""

    def __init__(self, verdict: Verdict, reason: str = "") -> None:
        self.decision = Decision(verdict, reason)
        self.asked: list[Attributes] = []

    async def authorize(self, attrs: Attributes) -> Decision:
        self.asked.append(attrs)
        return self.decision


def authz(inner: Inner, *authorizers: Any) -> Inner:
    return authn(Authorization(inner, authorizers), Fixed("x-a", ALICE))


async def test_union_of_authorizers() -> None:
    attrs = Attributes(user=ALICE, verb="get", resource_request=False, path="/x")
    no = Says(Verdict.NO_OPINION, "not mine")
    assert (await authorize([no, Says(Verdict.ALLOW, "ok")], attrs)).verdict is Verdict.ALLOW
    assert (await authorize([Says(Verdict.DENY, "no"), Says(Verdict.ALLOW)], attrs)).verdict is Verdict.DENY
    assert await authorize([no, Says(Verdict.NO_OPINION, "nor mine")], attrs) == Decision(
        Verdict.NO_OPINION, "not mine\nnor mine"
    )


async def test_allowed_requests_go_through_with_the_decision_annotated() -> None:
    inner, allow = ok(), Says(Verdict.ALLOW, "RBAC: allowed by RoleBinding")
    await call(authz(inner, allow), scope(path="/api/v1/namespaces/ns/pods/p/log", headers={"X-A": "1"}))
    (attrs,) = allow.asked
    assert (attrs.verb, attrs.namespace, attrs.resource, attrs.subresource, attrs.name) == (
        "get",
        "ns",
        "pods",
        "log",
        "p",
    )
    assert attrs.resource_request and attrs.user.name == "alice" and attrs.api_version == "v1"
    assert inner.seen[0].annotations == {  # type: ignore[attr-defined]
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding",
    }


@pytest.mark.parametrize(
    ("path", "method", "message"),
    [
        (
            "/api/v1/namespaces/kube-system/pods",
            "GET",
            'pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
            'in the namespace "kube-system"',
        ),
        (
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            "PUT",
            'deployments.apps "web" is forbidden: User "alice" cannot update resource "deployments/scale" '
            'in API group "apps" in the namespace "ns"',
        ),
        (
            "/api/v1/nodes/n1",
            "DELETE",
            'nodes "n1" is forbidden: User "alice" cannot delete resource "nodes" in API group "" at the cluster scope',
        ),
        ("/metrics", "GET", 'forbidden: User "alice" cannot get path "/metrics"'),
    ],
)
async def test_refused_requests_get_upstreams_403(path: str, method: str, message: str) -> None:
    inner = ok()
    code, _, body = answer(
        await call(authz(inner, Says(Verdict.NO_OPINION)), scope(method, path, headers={"X-A": "1"}))
    )
    assert code == 403 and inner.seen == []  # type: ignore[attr-defined]
    assert body["reason"] == "Forbidden" and body["message"] == message


async def test_a_denial_reason_is_appended_and_an_authorizer_error_is_500() -> None:
    code, _, body = answer(await call(authz(ok(), Says(Verdict.DENY, "node says no")), scope(path="/healthz")))
    assert (
        code == 403 and body["message"] == 'forbidden: User "system:anonymous" cannot get path "/healthz": node says no'
    )

    class Broken:
        async def authorize(self, attrs: Attributes) -> Decision:
            raise RuntimeError("lost the cache")

    code, _, body = answer(await call(authz(ok(), Broken()), scope()))
    assert code == 500 and body["message"] == "Internal error occurred: lost the cache"


async def test_the_insecure_port_is_not_authorized() -> None:
    deny = Says(Verdict.DENY)
    inner = ok()
    assert answer(await call(authz(inner, deny), scope(listener="insecure")))[0] == 200
    assert deny.asked == [] and inner.seen[0].annotations == {}  # type: ignore[attr-defined]


# --- audit -------------------------------------------------------------------------------------

EVERYTHING = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "RequestResponse"}]})


def audited(inner: Inner, policy: Policy, authorizers: tuple[Any, ...] = ()) -> tuple[Inner, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    options = ChainOptions(
        authenticators=[Fixed("x-a", ALICE)],
        impersonator=AsHeader(),
        audit_policy=policy,
        audit_emit=events.append,
        authorizers=authorizers or (Says(Verdict.ALLOW, "fine"),),
    )
    return build_handler_chain(inner, options), events


async def test_audit_events_of_a_write_at_request_response() -> None:
    app, events = audited(ok(b'{"kind":"ConfigMap","metadata":{"name":"c"}}', 201), EVERYTHING)
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","managedFields":[]}}'
    s = scope("POST", "/api/v1/namespaces/ns/configmaps", headers={"X-A": "1", "Content-Type": "application/json"})
    await call(app, s, body)
    received, complete = events
    assert [received["stage"], complete["stage"]] == ["RequestReceived", "ResponseComplete"]
    assert received["auditID"] == complete["auditID"]
    assert complete["user"] == {"username": "alice", "uid": "u1", "groups": ["devs", "system:authenticated"]}
    assert complete["sourceIPs"] == ["10.0.0.7"]
    assert complete["objectRef"] == {"resource": "configmaps", "namespace": "ns", "name": "c", "apiVersion": "v1"}
    assert complete["requestObject"] == json.loads(body)
    assert complete["responseObject"] == {"kind": "ConfigMap", "metadata": {"name": "c"}}
    assert complete["responseStatus"] == {"metadata": {}, "code": 201}
    assert complete["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "fine",
    }
    assert "annotations" not in received and "responseStatus" not in received


async def test_audit_levels_stages_and_managed_fields() -> None:
    policy = parse_policy(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "omitManagedFields": True,
            "rules": [
                {"level": "None", "users": ["bob"]},
                {"level": "Metadata", "verbs": ["get"]},
                {"level": "Request", "resources": [{"resources": ["configmaps"]}]},
            ],
        }
    )
    app, events = audited(ok(), policy)
    body = b'{"metadata":{"name":"c","managedFields":[{"manager":"m"}]}}'
    await call(app, scope("POST", "/api/v1/namespaces/ns/configmaps", headers={"X-A": "1"}), body)
    await call(app, scope(path="/api/v1/namespaces/ns/pods/p", headers={"X-A": "1"}))
    await call(app, scope(path="/api/v1/namespaces/ns/pods/p", headers={"X-A": "1", "Impersonate-User": "bob"}))
    await call(app, scope(path="/api/v1/namespaces/ns/secrets"))  # anonymous list of secrets: no rule
    request, metadata, impersonating = events
    assert request["level"] == "Request" and request["requestObject"] == {"metadata": {"name": "c"}}
    assert "responseObject" not in request
    assert metadata["level"] == "Metadata" and "requestObject" not in metadata
    # the policy sees the real user (alice), the event records whom she acted as
    assert impersonating["user"]["username"] == "alice"
    assert impersonating["impersonatedUser"] == {"username": "bob", "groups": []}


async def test_audit_errors_carry_their_status_and_refusals_are_recorded() -> None:
    status = {"kind": "Status", "status": "Failure", "message": 'pods "p" not found', "reason": "NotFound", "code": 404}
    app, events = audited(ok(json.dumps(status).encode(), 404), EVERYTHING)
    await call(app, scope(path="/api/v1/namespaces/ns/pods/p"))
    assert events[-1]["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": 'pods "p" not found',
        "reason": "NotFound",
        "code": 404,
    }
    app, events = audited(ok(), EVERYTHING, (Says(Verdict.NO_OPINION),))
    await call(app, scope(path="/api/v1/namespaces/ns/pods"))
    assert events[-1]["responseStatus"]["code"] == 403
    assert events[-1]["annotations"]["authorization.k8s.io/decision"] == "forbid"


async def test_audit_of_a_watch_and_of_a_crash() -> None:
    app, events = audited(ok(b""), EVERYTHING)
    await call(app, scope(query="watch=true"))
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]

    async def crash(s: Scope, receive: Any, send: Any) -> None:
        raise ValueError("bad")

    app, events = audited(crash, EVERYTHING)
    code, _, _ = answer(await call(app, scope()))
    assert code == 500
    assert [e["stage"] for e in events] == ["RequestReceived", "Panic"]
    assert events[-1]["responseStatus"]["message"] == "APIServer panic'd: ValueError('bad')"


# --- audit policy ------------------------------------------------------------------------------


def attrs(verb: str = "get", path: str = "/api/v1/namespaces/ns/pods/p", user: UserInfo = ALICE) -> Attributes:
    info = parse_path(path)
    if info is None or not info.resource:
        return Attributes(user=user, verb=verb, resource_request=False, path=path)
    return Attributes(
        user=user,
        verb=verb,
        resource_request=True,
        namespace=info.namespace,
        api_group=info.group,
        api_version=info.version,
        resource=info.resource,
        subresource=info.subresource,
        name=info.name,
        path=path,
    )


def level(rule: dict[str, Any], a: Attributes) -> str:
    policy = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata", **rule}]})
    return policy.evaluate(a).level


@pytest.mark.parametrize(
    ("rule", "path", "matches"),
    [
        ({"users": ["alice"]}, "/api/v1/pods", True),
        ({"users": ["bob"]}, "/api/v1/pods", False),
        ({"userGroups": ["devs"]}, "/api/v1/pods", True),
        ({"verbs": ["list"]}, "/api/v1/namespaces/ns/pods/p", False),
        ({"resources": [{"group": "", "resources": ["pods"]}]}, "/api/v1/namespaces/ns/pods/p", True),
        ({"resources": [{"group": "", "resources": ["pods"]}]}, "/api/v1/namespaces/ns/pods/p/log", False),
        ({"resources": [{"group": "", "resources": ["pods/log"]}]}, "/api/v1/namespaces/ns/pods/p/log", True),
        ({"resources": [{"group": "", "resources": ["*/log"]}]}, "/api/v1/namespaces/ns/pods/p/log", True),
        ({"resources": [{"group": "", "resources": ["pods/*"]}]}, "/api/v1/namespaces/ns/pods/p/exec", True),
        ({"resources": [{"group": "", "resources": ["*"]}]}, "/api/v1/namespaces/ns/pods/p/exec", True),
        ({"resources": [{"group": "apps"}]}, "/api/v1/namespaces/ns/pods/p", False),
        ({"resources": [{"group": "apps"}]}, "/apis/apps/v1/namespaces/ns/deployments", True),
        ({"resources": [{"resources": ["pods"], "resourceNames": ["q"]}]}, "/api/v1/namespaces/ns/pods/p", False),
        ({"resources": [{"resources": ["pods"], "resourceNames": ["p"]}]}, "/api/v1/namespaces/ns/pods/p", True),
        ({"namespaces": ["ns"]}, "/api/v1/namespaces/ns/pods/p", True),
        ({"namespaces": [""]}, "/api/v1/nodes/n", True),
        ({"namespaces": ["ns"]}, "/healthz", False),
        ({"nonResourceURLs": ["/healthz*"]}, "/healthz/ping", True),
        ({"nonResourceURLs": ["/healthz"]}, "/healthz/ping", False),
        ({"nonResourceURLs": ["*"]}, "/api/v1/pods", False),
    ],
)
def test_policy_rule_matching(rule: dict[str, Any], path: str, matches: bool) -> None:
    assert level(rule, attrs(path=path)) == ("Metadata" if matches else "None")


def test_the_first_matching_rule_wins_and_stages_add_up() -> None:
    policy = parse_policy(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {"level": "Request", "verbs": ["get"], "omitStages": ["ResponseStarted"]},
                {"level": "RequestResponse"},
            ],
        }
    )
    got = policy.evaluate(attrs())
    assert got.level == "Request" and got.omit_stages == {"RequestReceived", "ResponseStarted"}
    assert policy.evaluate(attrs(verb="list")).level == "RequestResponse"


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"apiVersion": "v1", "kind": "Policy"}, 'want apiVersion "audit.k8s.io/v1", kind "Policy"'),
        ({"rules": [{"level": "Everything"}]}, 'rules[0].level: Unsupported value: "Everything"'),
        ({"rules": [{"level": "None", "omitStages": ["Later"]}]}, 'rules[0].omitStages: Unsupported value: "Later"'),
        (
            {"rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]},
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        ({"rules": [{"level": "None", "nonResourceURLs": ["x"]}]}, 'must begin with "/"'),
        ({"rules": [{"level": "None", "users": "alice"}]}, "rules[0].users: must be a list of strings"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(doc: dict[str, Any], error: str) -> None:
    full = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **doc}
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(full)
