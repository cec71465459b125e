"""The real kubectl v1.35: `kubectl port-forward` through the apiserver to a KubeletServer; and the
official Python client's `portforward` (the channel protocol, v4.channel.k8s.io).

kubectl tunnels SPDY/3.1 in a WebSocket to the apiserver, which relays it to the kubelet's
/portForward; the kubelet dials the pod's IP. Here the "pods" are HTTP servers the test runs on
127.0.0.1 (the kubelet server runs in its own thread over a runtime double whose sandboxes say so).
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import websockets
from kubernetes import client as k8s
from kubernetes.stream import portforward

from kubelet.runtime import Sandbox

from .conftest import Kubectl, finish, manifest
from .test_kubectl_logs_exec import ThreadedKubelet, register_node

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


class SandboxRuntime:
    """The pods the test declares as running, each with its IP; no logs, no exec."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], str] = {}

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(f"uid-{ns}-{n}", ns, n, ip, Path("/nonexistent")) for (ns, n), ip in self.pods.items()]

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        return None

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        raise LookupError(f'container not found ("{container}")')


class Page(BaseHTTPRequestHandler):
    """Answers every GET with the path it was asked for (slowly on /slow, to hold connections open together)."""

    def do_GET(self) -> None:
        body = f"page {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 (the pod's port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def runtime() -> SandboxRuntime:
    return SandboxRuntime()


@pytest.fixture(scope="module")
def node(http: httpx.Client, runtime: SandboxRuntime) -> Iterator[str]:
    """A running kubelet server and the Node pointing at it."""
    with ThreadedKubelet(runtime) as kubelet:  # type: ignore[arg-type]
        yield register_node(http, "pf-node", kubelet.server.port)


def running_pod(http: httpx.Client, kubectl: Kubectl, namespace: str, name: str, node: str, port: int) -> None:
    """A pod bound to `node`, reported Running (as its kubelet would) with IP 127.0.0.1."""
    pod = f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  nodeName: {node}
  containers:
  - name: main
    image: busybox:1.36
    ports: [{{containerPort: {port}}}]
"""
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod))
    body = http.get(f"/api/v1/namespaces/{namespace}/pods/{name}").json()
    body["status"] = {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}
    r = http.put(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json=body)
    assert r.status_code == 200, r.text


def start_forward(kubectl: Kubectl, *args: str) -> tuple[subprocess.Popen[str], int]:
    """`kubectl port-forward <args>` in the background, and the local port it chose."""
    proc = kubectl.start(*args)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = FORWARDING.search(line)
    if match is None:
        proc.kill()
        _code, out, err = finish(proc)
        raise AssertionError(f"kubectl port-forward did not start: {line}{out}\n{err}")
    return proc, int(match.group(1))


def stop(proc: subprocess.Popen[str]) -> str:
    """End a background kubectl port-forward; its stderr."""
    if proc.poll() is None:
        proc.terminate()
    _code, _out, err = finish(proc)
    return err


def raw_get(port: int, path: str) -> socket.socket:
    """A connection to the local port with one HTTP request sent (the answer is read by `answer`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes."""
    chunks = []
    with sock:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_port_forward_pod(
    kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, runtime: SandboxRuntime, web: int
) -> None:
    runtime.pods[(namespace, "web")] = "127.0.0.1"
    running_pod(http, kubectl, namespace, "web", node, web)
    proc, local = start_forward(kubectl, "-n", namespace, "port-forward", "pod/web", f":{web}")
    try:
        r = httpx.get(f"http://127.0.0.1:{local}/index.html", timeout=10)
        assert (r.status_code, r.text) == (200, "page /index.html\n")
        # two connections open at once, answered in the other order than they were opened
        first, second = raw_get(local, "/first"), raw_get(local, "/second")
        assert answer(second).endswith(b"page /second\n")
        assert answer(first).endswith(b"page /first\n")
        # a bigger exchange (many DATA frames each way) arrives whole
        long = "/" + "x" * 60000
        r = httpx.get(f"http://127.0.0.1:{local}{long}", timeout=10)
        assert (r.status_code, r.text) == (200, f"page {long}\n")
        assert proc.poll() is None
    finally:
        stop(proc)


def test_port_forward_service_resolves_to_its_pod(
    kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, runtime: SandboxRuntime, web: int
) -> None:
    runtime.pods[(namespace, "api")] = "127.0.0.1"
    running_pod(http, kubectl, namespace, "api", node, web)
    svc = f"""
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {{app: api}}
  ports: [{{port: 8080, targetPort: {web}}}]
"""
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(svc))
    proc, local = start_forward(kubectl, "-n", namespace, "port-forward", "svc/api", ":8080")
    try:
        r = httpx.get(f"http://127.0.0.1:{local}/via-service", timeout=10)
        assert (r.status_code, r.text) == (200, "page /via-service\n")
    finally:
        stop(proc)


def test_port_forward_to_a_closed_port_reports_the_refusal(
    kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, runtime: SandboxRuntime
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    runtime.pods[(namespace, "idle")] = "127.0.0.1"
    running_pod(http, kubectl, namespace, "idle", node, closed)
    proc, local = start_forward(kubectl, "-n", namespace, "port-forward", "pod/idle", f":{closed}")
    try:
        with socket.create_connection(("127.0.0.1", local), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert sock.recv(100) == b""  # closed without an answer
        code, _out, err = finish(proc)  # kubectl gives up on the session: it exits on its own
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert f"error forwarding port {closed} to pod {namespace}/idle" in err
    assert f"dial tcp 127.0.0.1:{closed}: connect: connection refused" in err
    assert "lost connection to pod" in err


def test_port_forward_errors(
    kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, runtime: SandboxRuntime
) -> None:
    # Running in the API but unknown to its kubelet: the kubelet's 404 reaches kubectl
    running_pod(http, kubectl, namespace, "ghost", node, 80)
    err = kubectl.fails("-n", namespace, "port-forward", "pod/ghost", ":80")
    assert "error upgrading connection: unable to upgrade connection: pod does not exist" in err
    # a pod nobody scheduled (kubectl itself refuses pods that are not Running; ask the API directly)
    kubectl.ok("-n", namespace, "run", "unbound", "--image=busybox:1.36")
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/unbound/portforward")
    assert r.status_code == 400 and r.json()["message"] == "pod unbound does not have a host assigned", r.text
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/nope/portforward")
    assert r.status_code == 404 and r.json()["reason"] == "NotFound", r.text


def test_port_forward_to_a_node_whose_kubelet_is_down(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    with socket.socket() as s:  # a port no kubelet listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    name = f"pf-dead-{uuid.uuid4().hex[:6]}"
    r = http.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    body = r.json()
    body["status"] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": dead}},
    }
    assert http.put(f"/api/v1/nodes/{name}/status", json=body).status_code == 200
    running_pod(http, kubectl, namespace, "stranded", name, 80)
    err = kubectl.fails("-n", namespace, "port-forward", "pod/stranded", ":80")
    assert f"error dialing backend: dial tcp 127.0.0.1:{dead}: connect: connection refused" in err, err


def _receive_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_python_client_port_forward(
    apiserver: str, kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, runtime: SandboxRuntime, web: int
) -> None:
    runtime.pods[(namespace, "py")] = "127.0.0.1"
    running_pod(http, kubectl, namespace, "py", node, web)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    api = k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=apiserver)))
    pf = portforward(api.connect_get_namespaced_pod_portforward, "py", namespace, ports=f"{web},{closed}")
    try:
        sock = pf.socket(web)
        sock.setblocking(True)
        sock.sendall(b"GET /from-python HTTP/1.0\r\n\r\n")
        answer = _receive_all(sock)
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"page /from-python\n"), answer
        assert pf.error(web) is None
        refused = pf.error(closed)
        assert refused == (
            f"error forwarding port {closed} to pod {namespace}/py, uid uid-{namespace}-py: "
            f"dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )
    finally:
        pf.close()


async def test_channel_protocol_base64_and_refusals(
    apiserver: str, kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, runtime: SandboxRuntime, web: int
) -> None:
    runtime.pods[(namespace, "b64")] = "127.0.0.1"
    running_pod(http, kubectl, namespace, "b64", node, web)
    base = apiserver.replace("http://", "ws://") + f"/api/v1/namespaces/{namespace}/pods/b64/portforward"
    async with websockets.connect(f"{base}?ports={web}", subprotocols=["v4.base64.channel.k8s.io"]) as ws:
        assert ws.subprotocol == "v4.base64.channel.k8s.io"
        hello = base64.b64encode(web.to_bytes(2, "little")).decode()
        assert [await ws.recv(), await ws.recv()] == ["0" + hello, "1" + hello]
        await ws.send("0" + base64.b64encode(b"GET /b64 HTTP/1.0\r\n\r\n").decode())
        got = b""
        async for message in ws:
            assert isinstance(message, str) and message[0] == "0", message
            got += base64.b64decode(message[1:])
        assert got.endswith(b"page /b64\n")
    with pytest.raises(websockets.InvalidStatus) as e:
        await websockets.connect(base, subprotocols=["v4.channel.k8s.io"])
    assert e.value.response.status_code == 400
    assert b'unable to upgrade connection: query parameter \\"port\\" is required' in e.value.response.body
    with pytest.raises(websockets.InvalidStatus) as e:
        await websockets.connect(f"{base}?ports=http", subprotocols=["v4.channel.k8s.io"])
    assert b'unable to parse \\"http\\" as a port' in e.value.response.body
    with pytest.raises(websockets.InvalidStatus) as e:
        await websockets.connect(f"{base}?ports={web}", subprotocols=["v5.channel.k8s.io"])
    assert b"requested protocol(s) are not supported" in e.value.response.body
