"""Kept authorization decisions (apiserver/authz/decisions.py) through the chain's Authorization stage, with the
real PrivilegedGroups, Node and RBAC authorizers: a repeated request is answered as before only while no role or
binding changed; each user, verb, path and field selector has its own decision; a node's requests and any
authorizer without a stamp are asked every time; RBAC's index follows the watch cache, a relist too."""

from __future__ import annotations

import json
from typing import Any

from apiserver.authz import Attributes, Decision, Verdict
from apiserver.authz.node import NodeAuthorizer, NodeGraph
from apiserver.authz.privileged import PrivilegedGroups
from apiserver.authz.rbac import PolicyIndex, RBACAuthorizer
from apiserver.chain import ChainOptions, build_handler_chain
from apiserver.chain.request_info import LISTENER_KEY
from apiserver.context import RequestContext, UserInfo
from apiserver.storage import StoredObject, WatchEvent
from apiserver.watch_cache import WatchCache

USERS = {
    "alice": UserInfo("alice", "u1", ("devs",)),
    "bob": UserInfo("bob", "u2", ("ops",)),
    "node": UserInfo("system:node:n1", "", ("system:nodes",)),
}


class ByHeader:
    """Authenticates the user named in the `x-user` header."""

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        return USERS.get(ctx.headers.get("x-user", ""))


async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def status(app: Any, user: str, path: str, query: str = "", method: str = "GET") -> int:
    """The status code `user` gets for `method path?query`."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"x-user", user.encode())],
        "client": ("10.0.0.7", 40000),
        LISTENER_KEY: "secure",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    code: int = sent[0]["status"]
    if code == 403:
        assert json.loads(sent[1]["body"])["reason"] == "Forbidden"
    return code


def role(name: str, verbs: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [""], "resources": ["pods"], "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return {"metadata": {"name": name, "namespace": "ns"}, "rules": [rule]}


def binding(name: str, role_name: str, user: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def chain(index: PolicyIndex, *extra: Any) -> Any:
    authorizers = [PrivilegedGroups(("system:masters",)), NodeAuthorizer(NodeGraph()), RBACAuthorizer(index), *extra]
    return build_handler_chain(ok, ChainOptions(authenticators=[ByHeader()], authorizers=authorizers))


POD = "/api/v1/namespaces/ns/pods/p"


async def test_a_kept_decision_follows_every_change_of_roles_and_bindings() -> None:
    index = PolicyIndex()
    app = chain(index)
    assert await status(app, "alice", POD) == 403
    assert await status(app, "alice", POD) == 403  # kept
    index.apply("roles", "ADDED", role("read", ["get"]))
    index.apply("rolebindings", "ADDED", binding("alice-reads", "read", "alice"))
    assert await status(app, "alice", POD) == 200
    assert await status(app, "alice", POD) == 200  # kept
    index.apply("roles", "MODIFIED", role("read", ["list"]))  # the role changes under the binding
    assert await status(app, "alice", POD) == 403
    index.apply("roles", "MODIFIED", role("read", ["get"]))
    assert await status(app, "alice", POD) == 200
    index.apply("rolebindings", "DELETED", binding("alice-reads", "read", "alice"))
    assert await status(app, "alice", POD) == 403


async def test_each_user_verb_path_and_field_selector_has_its_own_decision() -> None:
    index = PolicyIndex()
    index.apply("roles", "ADDED", role("read-p", ["get", "list"], names=["p"]))
    index.apply("rolebindings", "ADDED", binding("alice-reads", "read-p", "alice"))
    app = chain(index)
    assert await status(app, "alice", POD) == 200
    assert await status(app, "bob", POD) == 403  # another user, the same request
    assert await status(app, "alice", POD, method="DELETE") == 403  # another verb
    assert await status(app, "alice", "/api/v1/namespaces/ns/pods/q") == 403  # another object
    pods = "/api/v1/namespaces/ns/pods"
    assert await status(app, "alice", pods, "fieldSelector=metadata.name%3Dp") == 200  # a list of p alone
    assert await status(app, "alice", pods, "fieldSelector=metadata.name%3Dq") == 403
    assert await status(app, "alice", pods) == 403
    assert await status(app, "alice", POD) == 200


class Flips:
    """An authorizer without a stamp whose answer the test changes."""

    def __init__(self) -> None:
        self.verdict = Verdict.NO_OPINION

    async def authorize(self, attrs: Attributes) -> Decision:
        return Decision(self.verdict)


class Counts:
    """An authorizer with a constant stamp that allows everything and counts what it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def decision_stamp(self, user: UserInfo) -> int:
        return 0

    async def authorize(self, attrs: Attributes) -> Decision:
        self.asked += 1
        return Decision(Verdict.ALLOW)


async def test_a_decision_is_kept_for_a_short_path_and_a_long_one_is_asked_every_time() -> None:
    counts = Counts()
    app = build_handler_chain(ok, ChainOptions(authenticators=[ByHeader()], authorizers=[counts]))
    for _ in range(3):
        assert await status(app, "bob", POD) == 200
    assert counts.asked == 1
    long = "/api/v1/namespaces/ns/pods/" + "p" * 300  # a key that long is not kept: memory stays bounded
    for _ in range(3):
        assert await status(app, "bob", long) == 200
    assert counts.asked == 4


async def test_an_authorizer_without_a_stamp_is_asked_every_time() -> None:
    flips = Flips()
    app = chain(PolicyIndex(), flips)
    assert await status(app, "bob", POD) == 403
    flips.verdict = Verdict.ALLOW
    assert await status(app, "bob", POD) == 200
    flips.verdict = Verdict.NO_OPINION
    assert await status(app, "bob", POD) == 403


async def test_a_nodes_requests_follow_its_pods() -> None:
    graph = NodeGraph()
    authorizers = [NodeAuthorizer(graph), RBACAuthorizer(PolicyIndex())]
    app = build_handler_chain(ok, ChainOptions(authenticators=[ByHeader()], authorizers=authorizers))
    secret = "/api/v1/namespaces/ns/secrets/s"
    assert await status(app, "node", secret) == 403
    pod = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "1"},
        "spec": {"nodeName": "n1", "volumes": [{"name": "v", "secret": {"secretName": "s"}}]},
    }
    graph.apply("ADDED", pod)
    assert await status(app, "node", secret) == 200
    graph.apply("DELETED", pod)
    assert await status(app, "node", secret) == 403


async def test_rbac_follows_the_watch_cache_through_live_events_and_a_relist() -> None:
    cache = WatchCache(None)  # type: ignore[arg-type]  # its collections only: nothing follows etcd here
    cache.ready.set()
    roles, bindings = cache.cache("roles"), cache.cache("rolebindings")
    app = chain(PolicyIndex(cache))
    revision = 0

    def put(collection: Any, obj: dict[str, Any]) -> None:
        nonlocal revision
        revision += 1
        key = f"/registry/{collection.resource}/ns/{obj['metadata']['name']}"
        collection.apply(WatchEvent("PUT", key, StoredObject(key, obj, revision), revision, True))

    assert await status(app, "alice", POD) == 403
    put(roles, role("read", ["get"]))
    put(bindings, binding("alice-reads", "read", "alice"))
    assert await status(app, "alice", POD) == 200
    put(roles, role("read", ["list"]))
    assert await status(app, "alice", POD) == 403
    # a relist: the cache's roles replaced (its watchers closed, no event), the feed starts over from them
    read = role("read", ["get"])
    roles.reset([StoredObject("/registry/roles/ns/read", read, revision)], revision)
    assert await status(app, "alice", POD) == 200
    put(roles, role("read", ["delete"]))  # and follows the events after it
    assert await status(app, "alice", POD) == 403
