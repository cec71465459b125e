"""The request pipeline against a real apiserver process: audit lines, 429 past the in-flight limit,
the exec WebSocket passing the chain, and no lost write or 409 under contention.

One apiserver of this module runs with an audit policy, an audit log and tiny in-flight limits
(`--max-requests-inflight 2 --max-mutating-requests-inflight 1`); the tests that send one request
at a time never come near the limits. The contention tests use the session's apiserver (default
limits). Requests come in on the insecure port, whose user is `system:unsecured`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from client.backoff import Backoff
from client.rest import ApiClient, RetryPolicy
from kubelet.server import KubeletServer
from tests.integration.helpers import MERGE, pod, pods_path
from tinykube.procs import start_apiserver

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/metrics"]
  - level: RequestResponse
    resources: [{group: "", resources: ["configmaps"]}]
  - level: Request
    resources: [{group: "", resources: ["secrets"]}]
    omitStages: ["RequestReceived"]
  - level: None
    verbs: ["list"]
    resources: [{group: "", resources: ["pods"]}]
  - level: Metadata
"""
UNSECURED = {"username": "system:unsecured", "groups": ["system:masters", "system:authenticated"]}
TOO_MANY = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Too many requests, please try again later.",
    "reason": "TooManyRequests",
    "details": {"retryAfterSeconds": 1},
    "code": 429,
}
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def audited(etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An apiserver with the audit policy above, its audit log, and in-flight limits of 2 and 1."""
    tmp = tmp_path_factory.mktemp("audited")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    log = tmp / "audit" / "audit.log"
    extra = [
        "--audit-policy-file",
        str(policy),
        "--audit-log-path",
        str(log),
        "--max-requests-inflight",
        "2",
        "--max-mutating-requests-inflight",
        "1",
    ]
    proc, url = start_apiserver(tmp, etcd, extra=extra)
    yield url, log
    proc.stop()


@pytest.fixture
async def aapi(audited: tuple[str, Path]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=audited[0], timeout=10, headers={"User-Agent": "pipeline-test/1.0"}) as c:
        yield c


@pytest.fixture
async def ans(aapi: httpx.AsyncClient) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    r = await aapi.post(
        "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    assert r.status_code == 201, r.text
    return name


async def audit_events(log: Path, audit_id: str, stages: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The events of one request, once `stages` of them are in the log (written asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(read_events, log, audit_id)
        if len(found) >= stages or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def read_events(log: Path, audit_id: str) -> list[dict[str, Any]]:
    """The events of one request in the audit log so far."""
    if not log.exists():
        return []
    found = [json.loads(line) for line in log.read_text().splitlines() if audit_id in line]
    return [e for e in found if e["auditID"] == audit_id]


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


# --- audit ------------------------------------------------------------------------------------


async def test_audit_records_a_create_at_request_response(
    aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str
) -> None:
    body = configmap("cm1", colour="blue")
    r = await aapi.post(f"/api/v1/namespaces/{ans}/configmaps", json=body)
    assert r.status_code == 201, r.text
    audit_id = r.headers["Audit-Id"]
    received, complete = await audit_events(audited[1], audit_id, 2)
    assert received["stage"] == "RequestReceived" and complete["stage"] == "ResponseComplete"
    assert set(received) == {
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "requestReceivedTimestamp",
        "stageTimestamp",
    }
    assert complete["kind"] == "Event" and complete["apiVersion"] == "audit.k8s.io/v1"
    assert complete["level"] == "RequestResponse"
    assert complete["verb"] == "create"
    assert complete["requestURI"] == f"/api/v1/namespaces/{ans}/configmaps"
    assert complete["user"] == UNSECURED
    assert complete["sourceIPs"] == ["127.0.0.1"]
    assert complete["userAgent"] == "pipeline-test/1.0"
    assert complete["objectRef"] == {"resource": "configmaps", "namespace": ans, "name": "cm1", "apiVersion": "v1"}
    assert complete["responseStatus"] == {"metadata": {}, "code": 201}
    assert complete["requestObject"] == body
    assert complete["responseObject"]["metadata"]["uid"] == r.json()["metadata"]["uid"]
    assert complete["requestReceivedTimestamp"] == received["requestReceivedTimestamp"]
    assert MICRO_TIME.match(complete["stageTimestamp"]) and MICRO_TIME.match(complete["requestReceivedTimestamp"])
    assert complete["stageTimestamp"] >= received["stageTimestamp"]


async def test_audit_levels_and_omitted_stages(aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str) -> None:
    log = audited[1]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "stringData": {"k": "v"}}
    r = await aapi.post(f"/api/v1/namespaces/{ans}/secrets", json=secret)
    assert r.status_code == 201, r.text
    # Request level, RequestReceived omitted: one event, with the request but not the response
    (only,) = await audit_events(log, r.headers["Audit-Id"], 1)
    assert only["stage"] == "ResponseComplete" and only["level"] == "Request"
    assert only["requestObject"] == secret and "responseObject" not in only

    r = await aapi.post(pods_path(ans), json=pod("web"))
    assert r.status_code == 201, r.text
    events = await audit_events(log, r.headers["Audit-Id"], 2)
    assert [e["level"] for e in events] == ["Metadata", "Metadata"]
    assert events[1]["objectRef"]["name"] == "web"
    assert "requestObject" not in events[1] and "responseObject" not in events[1]

    r = await aapi.get(pods_path(ans))  # level None: nothing at all
    assert r.status_code == 200
    r2 = await aapi.get(pods_path(ans, "web"))  # written after the list: its events mean the list's would be there
    assert len(await audit_events(log, r2.headers["Audit-Id"], 2)) == 2
    assert await audit_events(log, r.headers["Audit-Id"], 1, timeout=0) == []


async def test_audit_records_errors_with_their_status(
    aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str
) -> None:
    r = await aapi.get(f"/api/v1/namespaces/{ans}/configmaps/missing")
    assert r.status_code == 404
    _, complete = await audit_events(audited[1], r.headers["Audit-Id"], 2)
    assert complete["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "kind": "configmaps"},
        "code": 404,
    }


async def test_audit_id_from_the_client_and_watch_stages(
    aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str
) -> None:
    audit_id = str(uuid.uuid4())
    params = {"watch": "1", "timeoutSeconds": "1"}
    r = await aapi.get(f"/api/v1/namespaces/{ans}/secrets", params=params, headers={"Audit-ID": audit_id})
    assert r.status_code == 200 and r.headers["Audit-Id"] == audit_id
    events = await audit_events(audited[1], audit_id, 2)
    assert [e["stage"] for e in events] == ["ResponseStarted", "ResponseComplete"]
    assert all(e["verb"] == "watch" and e["responseStatus"] == {"metadata": {}, "code": 200} for e in events)


class ExecOnlyRuntime:
    """The part of a container runtime the kubelet server's exec needs: real subprocesses."""

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        return True

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        return None

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


@pytest.fixture
async def kubelet_node(aapi: httpx.AsyncClient) -> AsyncIterator[str]:
    """A real KubeletServer and the Node pointing the apiserver at it."""
    server = KubeletServer(ExecOnlyRuntime(), host="127.0.0.1", port=0)  # type: ignore[arg-type]
    await server.start()
    name = f"pipe-{uuid.uuid4().hex[:6]}"
    r = await aapi.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    node = r.json()
    node["status"] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}},
    }
    assert (await aapi.put(f"/api/v1/nodes/{name}/status", json=node)).status_code == 200
    yield name
    await server.stop()


async def test_exec_websocket_passes_the_chain(
    aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str, kubelet_node: str
) -> None:
    assert (await aapi.post(pods_path(ans), json=pod("box", nodeName=kubelet_node))).status_code == 201
    base = audited[0].replace("http://", "ws://")
    url = f"{base}/api/v1/namespaces/{ans}/pods/box/exec?command=echo&command=hi&stdout=true"
    audit_id = str(uuid.uuid4())
    out = b""
    async with connect(
        url, subprotocols=["v5.channel.k8s.io"], additional_headers={"Audit-ID": audit_id}, proxy=None
    ) as ws:  # type: ignore[list-item]
        async for frame in ws:
            assert isinstance(frame, bytes)
            if frame[0] == 1:
                out += frame[1:]
    assert out == b"hi\n"
    events = await audit_events(audited[1], audit_id, 3)
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    complete = events[-1]
    assert complete["verb"] == "get" and complete["user"] == UNSECURED
    assert complete["objectRef"] == {
        "resource": "pods",
        "namespace": ans,
        "name": "box",
        "apiVersion": "v1",
        "subresource": "exec",
    }
    assert complete["responseStatus"] == {"metadata": {}, "code": 101}


async def test_refused_exec_upgrade_is_audited_with_its_status(
    aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str
) -> None:
    assert (await aapi.post(pods_path(ans), json=pod("nowhere"))).status_code == 201
    url = audited[0].replace("http://", "ws://") + f"/api/v1/namespaces/{ans}/pods/nowhere/exec?command=true"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=["v5.channel.k8s.io"], proxy=None):  # type: ignore[list-item]
            pass
    response = refused.value.response
    assert response.status_code == 400
    assert json.loads(response.body)["message"] == "pod nowhere does not have a host assigned"
    events = await audit_events(audited[1], response.headers["Audit-Id"], 3)
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    complete = events[-1]
    assert complete["responseStatus"]["code"] == 400
    assert complete["responseStatus"]["message"] == "pod nowhere does not have a host assigned"


# --- max in flight ------------------------------------------------------------------------------


async def hold_read_slots(c: httpx.AsyncClient, path: str) -> tuple[list[asyncio.Task[httpx.Response]], httpx.Response]:
    """Fill both read slots with lists that stay in flight ~3 s (they wait for a resourceVersion far
    ahead, then answer 504), until a third read is refused: (the slow lists, that refusal)."""
    far = {"resourceVersion": str(10**12), "resourceVersionMatch": "NotOlderThan"}
    slow: list[asyncio.Task[httpx.Response]] = []
    deadline = time.monotonic() + 10
    while True:
        slow = [t for t in slow if not t.done()]  # one refused or ended early is sent again
        slow += [asyncio.create_task(c.get(path, params=far)) for _ in range(2 - len(slow))]
        probe = await c.get(path)
        if probe.status_code == 429 or time.monotonic() > deadline:
            return slow, probe


async def test_reads_past_the_limit_get_429_with_retry_after(aapi: httpx.AsyncClient, ans: str) -> None:
    path = f"/api/v1/namespaces/{ans}/configmaps"
    slow, r = await hold_read_slots(aapi, path)
    assert r.status_code == 429
    assert r.json() == TOO_MANY
    assert r.headers["Retry-After"] == "1"
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Audit-Id"]
    assert (await aapi.get("/version")).status_code == 429  # non-resource reads count too
    assert [s.status_code for s in await asyncio.gather(*slow)] == [504, 504]
    assert (await aapi.get(path)).status_code == 200


async def test_writes_past_the_limit_get_429(aapi: httpx.AsyncClient, ans: str) -> None:
    creates = [aapi.post(f"/api/v1/namespaces/{ans}/configmaps", json=configmap(f"b{i}")) for i in range(40)]
    answers = await asyncio.gather(*creates)
    assert {r.status_code for r in answers} == {201, 429}
    assert all(r.json() == TOO_MANY for r in answers if r.status_code == 429)


async def test_watches_do_not_count_against_the_limit(audited: tuple[str, Path], ans: str) -> None:
    async with httpx.AsyncClient(base_url=audited[0], timeout=10) as c:
        watches = [
            c.stream("GET", f"/api/v1/namespaces/{ans}/configmaps", params={"watch": "1", "timeoutSeconds": "30"})
            for _ in range(4)
        ]
        opened = [await w.__aenter__() for w in watches]
        try:
            assert [r.status_code for r in opened] == [200] * 4
            for _ in range(3):
                assert (await c.get(f"/api/v1/namespaces/{ans}/configmaps")).status_code == 200
        finally:
            for w in watches:
                await w.__aexit__(None, None, None)


async def test_the_client_library_waits_as_retry_after_says(
    aapi: httpx.AsyncClient, audited: tuple[str, Path], ans: str
) -> None:
    path = f"/api/v1/namespaces/{ans}/configmaps"
    retry = RetryPolicy(max_attempts=20, backoff=Backoff(initial=0.05, cap=0.2))
    before = await dropped(aapi)
    async with ApiClient(audited[0], retry=retry) as client:
        slow, refused = await hold_read_slots(aapi, path)
        assert refused.status_code == 429
        start = time.monotonic()
        listing = await client.list("configmaps", ans)  # refused while the slots are held, then served
        took = time.monotonic() - start
        await asyncio.gather(*slow)
    assert listing["kind"] == "ConfigMapList"
    assert await dropped(aapi) >= before + 2  # the probe's 429, and at least one of the client's
    assert took >= 1.0  # it waited the Retry-After second, not the 0.05 s backoff


async def dropped(c: httpx.AsyncClient) -> float:
    text = (await c.get("/metrics")).text
    return sum(float(v) for v in re.findall(r"^apiserver_dropped_requests_total\{[^}]*\} (\S+)$", text, re.M))


# --- server-side retries ------------------------------------------------------------------------

WRITERS, WRITES = 8, 50


async def race(
    api: httpx.AsyncClient, path: str, write: Callable[[int, int], Awaitable[httpx.Response]]
) -> tuple[list[int], list[dict[str, str]]]:
    """WRITERS concurrent writers doing WRITES writes each while a watch records every version of
    the object: the status codes, and the data of each version in order."""
    name = path.rsplit("/", 1)[1]
    versions: list[dict[str, str]] = []
    last = {f"w{i}": str(WRITES - 1) for i in range(WRITERS)}

    async def watch() -> None:
        collection = path.rsplit("/", 1)[0]
        params = {"watch": "1", "fieldSelector": f"metadata.name={name}", "timeoutSeconds": "120"}
        async with api.stream("GET", collection, params=params, timeout=130) as r:
            async for line in r.aiter_lines():
                if line.strip():
                    data = json.loads(line)["object"].get("data") or {}
                    versions.append(data)
                    if data == last:
                        return

    watcher = asyncio.create_task(watch())

    async def writer(i: int) -> list[int]:
        return [(await write(i, j)).status_code for j in range(WRITES)]

    codes = [c for cs in await asyncio.gather(*(writer(i) for i in range(WRITERS))) for c in cs]
    await asyncio.wait_for(watcher, 30)
    return codes, versions


def assert_nothing_lost(versions: list[dict[str, str]]) -> None:
    """From one version to the next every writer's counter stays or goes up, and it ends at its last
    write: a write computed from a stale object would have set another writer's counter back."""
    seen: dict[str, int] = {}
    for data in versions:
        for key, before in seen.items():
            assert key in data, f"{key} vanished: a write was lost"
            assert int(data[key]) >= before, f"{key} went from {before} back to {data[key]}: a write was lost"
        seen = {key: int(value) for key, value in data.items()}
    assert seen == {f"w{i}": WRITES - 1 for i in range(WRITERS)}


async def test_concurrent_merge_patches_lose_nothing(api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=configmap("shared"))).status_code == 201
    path = f"/api/v1/namespaces/{ns}/configmaps/shared"

    async def patch(i: int, j: int) -> httpx.Response:
        return await api.patch(path, json={"data": {f"w{i}": str(j)}}, headers=MERGE, timeout=60)

    codes, versions = await race(api, path, patch)
    assert codes == [200] * WRITERS * WRITES
    assert_nothing_lost(versions)


async def test_concurrent_server_side_applies_lose_nothing(api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=configmap("applied"))).status_code == 201
    path = f"/api/v1/namespaces/{ns}/configmaps/applied"
    headers = {"content-type": "application/apply-patch+yaml"}

    async def apply(i: int, j: int) -> httpx.Response:
        config = configmap("applied", **{f"w{i}": str(j)})
        return await api.patch(path, json=config, headers=headers, params={"fieldManager": f"writer-{i}"}, timeout=60)

    codes, versions = await race(api, path, apply)
    assert codes == [200] * WRITERS * WRITES
    assert_nothing_lost(versions)
    obj = (await api.get(path)).json()
    managers = {m["manager"] for m in obj["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert managers == {f"writer-{i}" for i in range(WRITERS)}


async def test_a_write_naming_a_stale_resource_version_still_conflicts(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=configmap("pinned", a="1"))
    stale = r.json()["metadata"]["resourceVersion"]
    path = f"/api/v1/namespaces/{ns}/configmaps/pinned"
    assert (await api.patch(path, json={"data": {"a": "2"}}, headers=MERGE)).status_code == 200
    r = await api.patch(path, json={"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}, headers=MERGE)
    assert r.status_code == 409
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on configmaps "pinned": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    apply = {"content-type": "application/apply-patch+yaml"}
    config = {**configmap("pinned", a="4"), "metadata": {"name": "pinned", "resourceVersion": stale}}
    r = await api.patch(path, json=config, headers=apply, params={"fieldManager": "pinner", "force": "true"})
    assert r.status_code == 409
    assert (await api.get(path)).json()["data"] == {"a": "2"}
