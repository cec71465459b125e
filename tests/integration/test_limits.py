"""Limits as upstream: body and header sizes, read timeouts, connection budgets, object and data sizes,
YAML aliasing, nesting depth, JSON-patch length, quantities — and no 500 (nor a closed connection) for
a client's mistake."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tinykube.procs import Process, start_apiserver

MiB = 1024 * 1024


def _cm(name: str, **extra: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


@pytest.fixture(scope="module", autouse=True)
def log_start(apiserver_proc: tuple[Process, str]) -> int:
    """Where the session apiserver's log stood when this module began."""
    return Path(apiserver_proc[0].log_path).stat().st_size


@pytest.fixture(scope="module")
def strict_server(etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    """An apiserver with short read timeouts, a small connection budget and a small object size."""
    proc, url = start_apiserver(
        tmp_path_factory.mktemp("strict"),
        etcd,
        extra=[
            "--header-timeout",
            "1",
            "--request-body-timeout",
            "1",
            "--max-connections-per-client",
            "8",
            "--max-object-size-bytes",
            "200000",
        ],
    )
    yield proc, url
    proc.stop()


@pytest.fixture
async def strict(strict_server: tuple[Process, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the strict apiserver."""
    async with httpx.AsyncClient(base_url=strict_server[1], timeout=10) as client:
        yield client


def _addr(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _raw(url: str, payload: bytes, source: str = "127.0.0.1", timeout: float = 10) -> bytes:
    """Send raw bytes on a fresh connection, as a client that notices an early answer, and read until EOF."""
    with socket.create_connection(_addr(url), timeout=timeout, source_address=(source, 0)) as s:
        for i in range(0, len(payload), 65536):
            if select.select([s], [], [], 0)[0]:
                break  # the server has answered (or closed): stop sending
            try:
                s.sendall(payload[i : i + 65536])
            except (BrokenPipeError, ConnectionResetError):
                break
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


# --- bodies ---------------------------------------------------------------------------------------


async def test_a_body_over_3mib_is_413_before_it_is_read(apiserver: str, ns: str) -> None:
    """Content-Length past the limit: refused at once, whatever follows (nothing of it is read)."""
    head = (
        f"POST /api/v1/namespaces/{ns}/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * MiB}\r\n\r\n"
    ).encode()
    answer = await asyncio.to_thread(_raw, apiserver, head + b"{")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:300]
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["reason"] == "RequestEntityTooLarge" and body["code"] == 413
    assert body["message"] == "Request entity too large: limit is 3145728"


async def test_a_chunked_body_over_3mib_is_413(api: httpx.AsyncClient, ns: str) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"'
        for _ in range(8):  # 8 MiB offered; the server stops keeping it after 3 MiB
            sent += MiB
            yield b"x" * MiB
        yield b'"}}'

    try:
        r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", content=chunks())
    except httpx.TransportError:
        pytest.fail("the server must answer 413, not drop the connection")
    assert r.status_code == 413 and r.json()["message"] == "Request entity too large: limit is 3145728"
    assert (await api.get(f"/api/v1/namespaces/{ns}/configmaps/big")).status_code == 404


async def test_a_body_that_stalls_is_408(strict_server: tuple[Process, str], ns: str) -> None:
    head = (
        f"POST /api/v1/namespaces/{ns}/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = await asyncio.to_thread(_raw, strict_server[1], head + b'{"apiVersion":')
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 5


# --- headers --------------------------------------------------------------------------------------


async def test_headers_over_1mib_are_431(apiserver: str) -> None:
    payload = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * MiB)
    answer = await asyncio.to_thread(_raw, apiserver, payload + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), answer[:200]
    # just over the limit, in one go: the same answer
    payload = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MiB + 10) + b"\r\n\r\n"
    answer = await asyncio.to_thread(_raw, apiserver, payload)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    async with httpx.AsyncClient(base_url=apiserver) as client:  # the server is fine afterwards
        assert (await client.get("/healthz")).status_code == 200


async def test_slow_headers_are_cut_off(strict_server: tuple[Process, str]) -> None:
    """A slowloris client (and one that never speaks) loses its connection after --header-timeout."""
    url = strict_server[1]

    def slowloris() -> float:
        started = time.monotonic()
        with socket.create_connection(_addr(url), timeout=10) as s:
            s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\n")
            try:
                for i in range(40):
                    s.sendall(f"X-Slow-{i}: a\r\n".encode())
                    if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        break
                    time.sleep(0.25)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
            s.settimeout(5)
            try:
                while s.recv(1024):
                    pass
            except ConnectionResetError:
                pass
        return time.monotonic() - started

    held = await asyncio.to_thread(slowloris)
    assert held < 4, f"a slow client held its connection for {held:.1f}s"

    def silent() -> float:
        started = time.monotonic()
        with socket.create_connection(_addr(url), timeout=10) as s:
            assert s.recv(1) == b""
        return time.monotonic() - started

    assert await asyncio.to_thread(silent) < 4


async def test_a_kept_connection_idles_past_the_header_timeout_and_each_request_is_timed_from_its_first_bytes(
    strict_server: tuple[Process, str],
) -> None:
    """As Go's server with kube-apiserver's IdleTimeout (90 s): requests 0.6 s apart on one connection
    outlast the 1 s header timeout together; a quiet spell longer than the header timeout and than
    uvicorn's default keep-alive (5 s) leaves the connection open for the next request; and that
    request's header clock starts with its first bytes, so a head left unfinished is still cut off."""

    def answer(s: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, f"closed before an answer: {data[:200]!r}"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += s.recv(4096)
        return head

    def kept() -> tuple[list[bytes], bool, float]:
        heads = []
        with socket.create_connection(_addr(strict_server[1]), timeout=10) as s:
            for _ in range(4):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                heads.append(answer(s).split(b"\r\n", 1)[0])
                time.sleep(0.6)
            readable, _, _ = select.select([s], [], [], 6)  # the idle spell: a close would make it readable
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            heads.append(answer(s).split(b"\r\n", 1)[0])
            s.sendall(b"GET /healthz HTTP/1.1\r\n")  # a head begun and never finished
            begun = time.monotonic()
            assert s.recv(1) == b""  # closed by the server
            return heads, bool(readable), time.monotonic() - begun

    heads, closed_while_idle, cut_after = await asyncio.to_thread(kept)
    assert not closed_while_idle, "the server closed a kept connection that was idle for 6 s"
    assert heads == [b"HTTP/1.1 200 OK"] * 5
    assert cut_after < 3, f"an unfinished head held a kept connection open {cut_after:.1f}s"


async def test_connections_per_client_are_bounded(strict_server: tuple[Process, str]) -> None:
    """Past 8 open connections from one address the next is refused with 429; another address is served."""
    url = strict_server[1]
    greedy = f"127.{(time.monotonic_ns() // 1000) % 200 + 20}.7.7"
    held = [socket.create_connection(_addr(url), timeout=5, source_address=(greedy, 0)) for _ in range(8)]
    try:
        for s in held:  # each is served
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        answer = await asyncio.to_thread(_raw, url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", greedy)
        assert answer.startswith(b"HTTP/1.1 429 Too Many Requests"), answer[:200]
        assert b"too many open connections from " + greedy.encode() in answer
        other = await asyncio.to_thread(_raw, url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert other.startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()
    # the places come back once the connections are gone
    deadline = time.monotonic() + 5
    while True:
        answer = await asyncio.to_thread(
            _raw, url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", greedy
        )
        if answer.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


# --- objects --------------------------------------------------------------------------------------


async def test_data_over_1mib_is_422(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("big", data={"a": "x" * (1200 * 1024)}))
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"] == [
        {"reason": "FieldValueTooLong", "message": "Too long: must have at most 1048576 bytes"}
    ]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "big"},
        "stringData": {"a": "x" * (MiB // 2), "b": "y" * (MiB // 2 + 1)},
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/secrets", json=secret)
    assert r.status_code == 422, r.text
    assert 'Secret "big" is invalid: data: Too long: must have at most 1048576 bytes' == r.json()["message"]
    r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("fits", data={"a": "x" * (MiB - 10)}))
    assert r.status_code == 201


async def test_an_object_too_large_for_etcd_is_413(strict: httpx.AsyncClient, api: httpx.AsyncClient, ns: str) -> None:
    # the apiserver's own bound (--max-object-size-bytes 200000 here)
    r = await strict.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("c", data={"a": "x" * 300_000}))
    assert r.status_code == 413, r.text
    assert r.json()["message"] == "Request entity too large: etcdserver: request is too large"
    # etcd's own refusal (1.5 MiB by default), from an object that passes validation
    env = [{"name": f"E{i}", "value": "v" * 200_000} for i in range(9)]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "env": env}]},
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 413, r.text
    assert r.json()["reason"] == "RequestEntityTooLarge"


async def test_negative_quantities_are_422(api: httpx.AsyncClient, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "neg"},
        "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"limits": {"memory": "-1Gi"}}}],
        },
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 422, r.text
    cause = r.json()["details"]["causes"][0]
    assert cause["field"] == "spec.containers[0].resources.limits[memory]"
    assert cause["message"] == 'Invalid value: "-1Gi": must be greater than or equal to 0'
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "-100m"}}
    r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 422 and "requests[cpu]" in r.text


# --- decoders -------------------------------------------------------------------------------------

_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)


async def test_a_yaml_alias_bomb_is_refused(api: httpx.AsyncClient, ns: str) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx:\n" + "\n".join(
        "  " + line for line in _BOMB.splitlines()
    )
    assert len(body) < 1000
    r = await api.post(
        f"/api/v1/namespaces/{ns}/configmaps", content=body, headers={"Content-Type": "application/yaml"}
    )
    assert r.status_code == 400, r.text
    assert "yaml: document contains excessive aliasing" in r.json()["message"]
    # aliases in moderation are fine
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, labels: &l {a: b}, annotations: *l}\n"
    r = await api.post(
        f"/api/v1/namespaces/{ns}/configmaps", content=body, headers={"Content-Type": "application/yaml"}
    )
    assert r.status_code == 201 and r.json()["metadata"]["annotations"] == {"a": "b"}


@pytest.mark.parametrize("depth", [129, 1000, 5000])
async def test_deep_nesting_is_400(api: httpx.AsyncClient, ns: str, depth: int) -> None:
    body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":' + "[" * depth + "]" * depth + "}"
    r = await api.post(
        f"/api/v1/namespaces/{ns}/configmaps", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert "exceeded max depth" in r.json()["message"]


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_deep_yaml_bodies_are_400(api: httpx.AsyncClient, ns: str, method: str) -> None:
    """A YAML create or update body nesting past the limit is refused as a JSON one is (by the decoder: the type
    check after it does not walk the depth again)."""
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nx: " + "[" * 129 + "]" * 129 + "\n"
    url = f"/api/v1/namespaces/{ns}/configmaps" + ("/deep" if method == "PUT" else "")
    if method == "PUT":
        assert (await api.post(url.removesuffix("/deep"), json=_cm("deep"))).status_code == 201
    r = await api.request(method, url, content=body, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "couldn't decode the request body as YAML: yaml: exceeded max depth of 128"


def _nested(depth: int) -> Any:
    """`depth` lists, each inside the one before."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def test_patched_objects_are_bounded_in_depth(api: httpx.AsyncClient, ns: str) -> None:
    """A merge patch's result nests no deeper than the stored object or the patch, both within the limit; a
    JSON patch that copies a value into itself nests deeper and is refused."""
    url = f"/apis/apps/v1/namespaces/{ns}/controllerrevisions"
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "deep"}, "revision": 1}
    r = await api.post(url, json={**revision, "data": {"a": _nested(100)}})  # object, data, 100 lists: 102 levels
    assert r.status_code == 201, r.text
    merge = {"Content-Type": "application/merge-patch+json"}
    r = await api.patch(f"{url}/deep", content=json.dumps({"data": {"b": _nested(126)}}), headers=merge)
    assert r.status_code == 200, r.text  # 128 levels: the limit
    assert r.json()["data"]["b"] == _nested(126) and r.json()["data"]["a"] == _nested(100)
    r = await api.patch(f"{url}/deep", content=json.dumps({"data": {"c": _nested(127)}}), headers=merge)
    assert r.status_code == 400, r.text
    assert "exceeded max depth of 128 nested objects and arrays" in r.json()["message"]
    copy = [{"op": "copy", "from": "/data/a", "path": "/data/a" + "/0" * 99 + "/-"}]
    r = await api.patch(
        f"{url}/deep", content=json.dumps(copy), headers={"Content-Type": "application/json-patch+json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["message"].endswith("exceeded max depth of 128 nested objects and arrays"), r.text
    assert "c" not in (await api.get(f"{url}/deep")).json()["data"]


async def test_a_json_patch_of_20000_operations_is_413(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("p"))
    ops = [{"op": "add", "path": "/metadata/labels", "value": {}}] * 20_000
    r = await api.patch(
        f"/api/v1/namespaces/{ns}/configmaps/p",
        content=json.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 413, r.text
    assert r.json()["message"] == (
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 20000"
    )


# --- no 500, and the connection survives ----------------------------------------------------------

_MALFORMED = [
    ("POST", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": "abc"}}),
    ("POST", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": ["a"]}}),
    ("POST", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": "abc"}),
    ("POST", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": "x"}}),
    ("POST", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"a": 1}}}),
    ("POST", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}),
    ("PUT", "configmaps/cm", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}),
    ("PATCH", "configmaps/cm", [{"op": "replace", "path": "/metadata", "value": "x"}]),
    ("PATCH", "configmaps/cm", [{"op": "add", "path": "/metadata/labels", "value": [1]}]),
]


async def test_malformed_requests_are_4xx_on_a_connection_that_stays_open(apiserver: str, ns: str) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=apiserver, timeout=10, limits=limits) as api:
        assert (await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("cm"))).status_code == 201
        ports = set()
        for method, sub, body in _MALFORMED:
            ctype = "application/json-patch+json" if method == "PATCH" else "application/json"
            r = await api.request(
                method,
                f"/api/v1/namespaces/{ns}/{sub}",
                content=json.dumps(body),
                headers={"Content-Type": ctype},
            )
            assert 400 <= r.status_code < 500, (method, body, r.text)
            assert r.json()["kind"] == "Status"
            ports.add(r.extensions["network_stream"].get_extra_info("client_addr")[1])
        assert len(ports) == 1, "the connection was closed after an error"
    message = r.json()["message"]
    assert "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels" in message


async def test_type_errors_name_the_field_as_upstream(api: httpx.AsyncClient, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": "abc"}}
    r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 400
    assert r.json()["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field '
        "PodSpec.spec.containers of type []v1.Container"
    )


def test_the_server_log_has_no_traceback(apiserver_proc: tuple[Process, str], log_start: int) -> None:
    """Runs after the tests above (same module, same server): none of them cost a traceback."""
    with open(apiserver_proc[0].log_path, "rb") as f:
        f.seek(log_start)
        log = f.read().decode(errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
