"""pods/log and pods/exec through the real apiserver to a real KubeletServer.

The kubelet's runtime is a small honest double: containers are directories of CRI log files in
tmp_path and exec runs real subprocesses there. The Node object points the apiserver at the
server's address and port, as a kubelet registers itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from ssl import SSLContext
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from kubelet.server import KubeletServer
from tests.integration.controller_kit import eventually


def cri_lines(*texts: str, stream: str = "stdout") -> bytes:
    """CRI log records stamped now."""
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return b"".join(f"{ts} {stream} F {t}\n".encode() for t in texts)


class DirRuntime:
    """Containers are dirs `root/ns/pod/container` of `<attempt>.log` CRI files; running ones can exec."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: set[tuple[str, str, str]] = set()

    def start(self, ns: str, pod: str, container: str, log: bytes = b"") -> Path:
        """Start (or restart) a container: a new log file, and exec allowed."""
        d = self.root / ns / pod / container
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{len(list(d.glob('*.log')))}.log"
        path.write_bytes(log)
        self.running.add((ns, pod, container))
        return path

    def stop(self, ns: str, pod: str, container: str) -> None:
        """The container exits (its log stays)."""
        self.running.discard((ns, pod, container))

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        return (namespace, pod, container) in self.running

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        d = self.root / namespace / pod / container
        files = sorted(d.glob("*.log"), key=lambda p: int(p.stem)) if d.is_dir() else []
        want = 2 if previous else 1
        return files[-want] if len(files) >= want else None

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        if (namespace, pod, container) not in self.running:
            raise LookupError(f'container not found ("{container}")')
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.root / namespace / pod / container,
        )


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> DirRuntime:
    return DirRuntime(tmp_path_factory.mktemp("containers"))


@pytest.fixture(scope="module")
async def node(apiserver: str, runtime: DirRuntime) -> AsyncIterator[str]:
    """A KubeletServer on a free port and the Node that points at it."""
    server = KubeletServer(runtime, host="127.0.0.1", port=0)
    await server.start()
    name = f"stream-{uuid.uuid4().hex[:6]}"
    status = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}},
    }
    async with httpx.AsyncClient(base_url=apiserver, timeout=10) as api:
        r = await api.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        assert r.status_code == 201, r.text
        body = r.json()
        body["status"] = status
        r = await api.put(f"/api/v1/nodes/{name}/status", json=body)
        assert r.status_code == 200, r.text
    yield name
    await server.stop()


async def make_pod(api: httpx.AsyncClient, ns: str, name: str, node: str | None, *containers: str) -> None:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox:1.36"} for c in containers or ("c",)]}
    if node:
        spec["nodeName"] = node
    r = await api.post(
        f"/api/v1/namespaces/{ns}/pods",
        json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
    )
    assert r.status_code == 201, r.text


def log_url(ns: str, pod: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods/{pod}/log"


async def test_log_returns_the_lines(api: httpx.AsyncClient, ns: str, node: str, runtime: DirRuntime) -> None:
    runtime.start(ns, "web", "c", cri_lines("hello", "world") + cri_lines("oops", stream="stderr"))
    await make_pod(api, ns, "web", node)
    r = await api.get(log_url(ns, "web"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "hello\nworld\noops\n"
    r = await api.get(log_url(ns, "web"), params={"tailLines": "1", "container": "c"})
    assert r.text == "oops\n"
    r = await api.get(log_url(ns, "web"), params={"timestamps": "true", "limitBytes": "40"})
    first = r.text.split("\n")[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z hello", first), first
    assert len(r.content) == 40


async def test_log_follow_streams_new_lines(api: httpx.AsyncClient, ns: str, node: str, runtime: DirRuntime) -> None:
    path = runtime.start(ns, "tail", "c", cri_lines("first"))
    await make_pod(api, ns, "tail", node)

    async def follow() -> list[str]:
        got: list[str] = []
        async with api.stream("GET", log_url(ns, "tail"), params={"follow": "true"}, timeout=15) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                got.append(line)
                if line == "first":
                    with path.open("ab") as f:
                        f.write(cri_lines("second"))
                if line == "second":
                    return got
        return got

    assert await asyncio.wait_for(follow(), 10) == ["first", "second"]


async def test_log_follow_stops_when_the_client_goes_away(
    api: httpx.AsyncClient, ns: str, node: str, runtime: DirRuntime
) -> None:
    runtime.start(ns, "gone", "c", cri_lines("only"))
    await make_pod(api, ns, "gone", node)
    before = REGISTRY.get_sample_value("kubelet_container_log_streams") or 0
    async with api.stream("GET", log_url(ns, "gone"), params={"follow": "true"}, timeout=15) as r:
        lines = r.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 10) == "only"
        assert REGISTRY.get_sample_value("kubelet_container_log_streams") == before + 1
    # the client hung up mid-follow: the apiserver drops its kubelet request and the kubelet stops reading
    deadline = asyncio.get_running_loop().time() + 10
    while REGISTRY.get_sample_value("kubelet_container_log_streams") != before:
        assert asyncio.get_running_loop().time() < deadline, "the kubelet kept following after the client left"
        await asyncio.sleep(0.05)


async def test_log_follow_ends_when_the_container_exits(
    api: httpx.AsyncClient, ns: str, node: str, runtime: DirRuntime
) -> None:
    path = runtime.start(ns, "exits", "c", cri_lines("working"))
    await make_pod(api, ns, "exits", node)

    async def follow() -> str:
        async with api.stream("GET", log_url(ns, "exits"), params={"follow": "true"}, timeout=15) as r:
            out = ""
            async for chunk in r.aiter_text():
                out += chunk
                if out == "working\n":
                    with path.open("ab") as f:
                        f.write(cri_lines("last words"))
                    runtime.stop(ns, "exits", "c")
            return out

    assert await asyncio.wait_for(follow(), 10) == "working\nlast words\n"


async def test_log_follow_ends_when_the_container_restarts(
    api: httpx.AsyncClient, ns: str, node: str, runtime: DirRuntime
) -> None:
    runtime.start(ns, "rs", "c", cri_lines("attempt 0"))
    await make_pod(api, ns, "rs", node)

    async def follow() -> str:
        async with api.stream("GET", log_url(ns, "rs"), params={"follow": "true"}, timeout=15) as r:
            out = ""
            async for chunk in r.aiter_text():
                out += chunk
                if out == "attempt 0\n":
                    runtime.start(ns, "rs", "c", cri_lines("attempt 1"))
            return out

    assert await asyncio.wait_for(follow(), 10) == "attempt 0\n"
    assert (await api.get(log_url(ns, "rs"))).text == "attempt 1\n"
    assert (await api.get(log_url(ns, "rs"), params={"previous": "true"})).text == "attempt 0\n"


async def test_log_errors_match_kubernetes(api: httpx.AsyncClient, ns: str, node: str, runtime: DirRuntime) -> None:
    r = await api.get(log_url(ns, "nope"))
    assert r.status_code == 404 and r.json()["message"] == 'pods "nope" not found'

    await make_pod(api, ns, "two", node, "a", "b")
    r = await api.get(log_url(ns, "two"))
    assert r.status_code == 400
    assert r.json()["message"] == "a container name must be specified for pod two, choose one of: [a b]"
    r = await api.get(log_url(ns, "two"), params={"container": "z"})
    assert (r.status_code, r.json()["message"]) == (400, "container z is not valid for pod two")

    # scheduled, but the kubelet has no log yet: the kubelet's "waiting to start"
    r = await api.get(log_url(ns, "two"), params={"container": "a"})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == 'container "a" in pod "two" is waiting to start: ContainerCreating'

    runtime.start(ns, "two", "b", cri_lines("b here"))
    r = await api.get(log_url(ns, "two"), params={"container": "b", "previous": "true"})
    assert r.status_code == 400
    assert r.json()["message"] == 'previous terminated container "b" in pod "two" not found'

    r = await api.get(log_url(ns, "two"), params={"container": "b", "tailLines": "-1"})
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"
    assert "tailLines: Invalid value: -1: must be greater than or equal to 0" in r.json()["message"]

    # not scheduled: kube-apiserver streams nothing
    await make_pod(api, ns, "pending", None)
    r = await api.get(log_url(ns, "pending"))
    assert (r.status_code, r.text) == (200, "")


def exec_url(apiserver: str, ns: str, pod: str, *command: str, stdin: bool = False) -> str:
    query = "&".join(f"command={c}" for c in command) + "&stdout=true&stderr=true"
    if stdin:
        query += "&stdin=true"
    return f"{apiserver.replace('http://', 'ws://')}/api/v1/namespaces/{ns}/pods/{pod}/exec?{query}"


async def run_exec(
    url: str, stdin: bytes | None = None, protocol: str = "v5.channel.k8s.io", ssl: SSLContext | None = None
) -> tuple[bytes, bytes, dict[str, Any], str]:
    """Run one exec: (stdout, stderr, status, subprotocol); v1's plain-text error becomes {"message": text}."""
    out, err, status = b"", b"", b""
    async with connect(url, subprotocols=[protocol], open_timeout=10, proxy=None, ssl=ssl) as ws:  # type: ignore[list-item]
        if stdin is not None:
            await ws.send(b"\x00" + stdin)
            await ws.send(bytes([255, 0]))
        async for frame in ws:
            assert isinstance(frame, bytes)
            channel, data = frame[0], frame[1:]
            if channel == 1:
                out += data
            elif channel == 2:
                err += data
            elif channel == 3:
                status += data
        assert ws.close_code == 1000
        proto = ws.subprotocol or ""
    if proto == "channel.k8s.io":
        return out, err, {"message": status.decode()}, proto
    return out, err, json.loads(status), proto


async def test_exec_returns_output_and_status(
    api: httpx.AsyncClient, apiserver: str, ns: str, node: str, runtime: DirRuntime
) -> None:
    runtime.start(ns, "box", "c")
    await make_pod(api, ns, "box", node)
    out, err, status, proto = await asyncio.wait_for(run_exec(exec_url(apiserver, ns, "box", "echo", "hi")), 15)
    assert (out, err, proto) == (b"hi\n", b"", "v5.channel.k8s.io")
    assert status == {"metadata": {}, "status": "Success"}

    url = exec_url(apiserver, ns, "box", "sh", "-c", "echo%20out;%20echo%20err%20%3E%262;%20exit%203")
    out, err, status, _ = await asyncio.wait_for(run_exec(url), 15)
    assert (out, err) == (b"out\n", b"err\n")
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]

    out, _, status, _ = await asyncio.wait_for(
        run_exec(exec_url(apiserver, ns, "box", "cat", stdin=True), b"ping\n"), 15
    )
    assert out == b"ping\n" and status["status"] == "Success"


async def test_exec_older_protocols(
    api: httpx.AsyncClient, apiserver: str, ns: str, node: str, runtime: DirRuntime
) -> None:
    runtime.start(ns, "old", "c")
    await make_pod(api, ns, "old", node)
    url = exec_url(apiserver, ns, "old", "sh", "-c", "echo%20v;%20exit%207")
    out, _, status, proto = await asyncio.wait_for(run_exec(url, protocol="v4.channel.k8s.io"), 15)
    assert (out, proto, status["reason"]) == (b"v\n", "v4.channel.k8s.io", "NonZeroExitCode")
    assert status["details"]["causes"][0]["message"] == "7"
    # v1 reports errors as plain text on channel 3, and nothing on success
    out, _, status, proto = await asyncio.wait_for(run_exec(url, protocol="channel.k8s.io"), 15)
    assert (out, proto) == (b"v\n", "channel.k8s.io")
    assert status["message"].startswith("command terminated with non-zero exit code")
    out, _, status, _ = await asyncio.wait_for(
        run_exec(exec_url(apiserver, ns, "old", "true"), protocol="channel.k8s.io"), 15
    )
    assert status == {"message": ""}


async def test_exec_errors(api: httpx.AsyncClient, apiserver: str, ns: str, node: str, runtime: DirRuntime) -> None:
    with pytest.raises(InvalidStatus) as info:
        await run_exec(exec_url(apiserver, ns, "ghost", "true"))
    assert info.value.response.status_code == 404
    assert json.loads(info.value.response.body)["message"] == 'pods "ghost" not found'

    await make_pod(api, ns, "unbound", None)
    with pytest.raises(InvalidStatus) as info:
        await run_exec(exec_url(apiserver, ns, "unbound", "true"))
    assert info.value.response.status_code == 400
    assert json.loads(info.value.response.body)["message"] == "pod unbound does not have a host assigned"

    # bound, but the container is not running on the kubelet: a Status on the error channel
    await make_pod(api, ns, "stopped", node)
    out, _, status, _ = await asyncio.wait_for(run_exec(exec_url(apiserver, ns, "stopped", "true")), 15)
    assert out == b"" and status["reason"] == "InternalError"
    assert 'unable to upgrade connection: container not found ("c")' in status["message"]

    # the exec'd process dies with the session when the client hangs up
    runtime.start(ns, "stopped", "c")
    async with connect(exec_url(apiserver, ns, "stopped", "sh", "-c", "echo%20$$;exec%20sleep%2030"), proxy=None) as ws:
        frame = b""
        while not frame.startswith(b"\x01") or len(frame) < 2:
            frame = await asyncio.wait_for(ws.recv(), 10)  # type: ignore[assignment]
        pid = int(frame[1:].strip())
        # the shell prints its pid before it execs: wait for the exec, not just the echo
        await eventually(_proc_is(pid, b"name:\tsleep"), 10, "the exec'd shell to become sleep")
    await eventually(_proc_is(pid, b"zombie"), 10, "the exec process to die with its client")

    # kubectl's SPDY fallback is a POST without a WebSocket upgrade: the same checks, then a clear 400
    r = await api.post(f"/api/v1/namespaces/{ns}/pods/unbound/exec?command=true&stdout=true")
    assert (r.status_code, r.json()["message"]) == (400, "pod unbound does not have a host assigned")
    r = await api.post(f"/api/v1/namespaces/{ns}/pods/stopped/exec?command=true&stdout=true")
    assert r.status_code == 400 and "WebSocket" in r.json()["message"]


def _proc_has(pid: int, marker: bytes) -> bool:
    """Whether `/proc/<pid>/status` holds `marker` (a process already reaped counts as a zombie)."""
    try:
        return marker in Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return marker == b"zombie"


def _proc_is(pid: int, marker: bytes) -> Callable[[], Awaitable[bool]]:
    """`_proc_has` as a check for `eventually` (procfs reads do not block)."""

    async def check() -> bool:
        return _proc_has(pid, marker)

    return check


async def test_unreachable_kubelet(api: httpx.AsyncClient, apiserver: str, ns: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"dead-{uuid.uuid4().hex[:6]}"
    r = await api.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    body = r.json()
    body["status"] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }
    assert (await api.put(f"/api/v1/nodes/{name}/status", json=body)).status_code == 200
    await make_pod(api, ns, "orphan", name)
    r = await api.get(log_url(ns, "orphan"))
    assert r.status_code == 500 and r.json()["reason"] == "InternalError"
    assert r.json()["message"].endswith(f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    _, _, status, _ = await asyncio.wait_for(run_exec(exec_url(apiserver, ns, "orphan", "true")), 15)
    assert status["message"] == (
        f"Internal error occurred: error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


async def test_exec_when_the_kubelet_goes_away(
    api: httpx.AsyncClient, apiserver: str, ns: str, runtime: DirRuntime
) -> None:
    server = KubeletServer(runtime, host="127.0.0.1", port=0)
    await server.start()
    name = f"brief-{uuid.uuid4().hex[:6]}"
    r = await api.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    body = r.json()
    body["status"] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}},
    }
    assert (await api.put(f"/api/v1/nodes/{name}/status", json=body)).status_code == 200
    runtime.start(ns, "long", "c")
    await make_pod(api, ns, "long", name)
    try:
        url = exec_url(apiserver, ns, "long", "sleep", "30")
        async with connect(url, subprotocols=["v5.channel.k8s.io"], proxy=None) as ws:  # type: ignore[list-item]
            assert await asyncio.wait_for(ws.recv(), 10) == b"\x01"  # the kubelet's hello
            await server.stop()
            frames = [frame async for frame in ws]
            assert ws.close_code == 1000
        status = json.loads(frames[-1][1:])
        assert status["reason"] == "InternalError" and "the kubelet closed the stream (1012" in status["message"]
    finally:
        await server.stop()
