"""`kubectl port-forward` on a real cluster: kubectl → apiserver (TLS, Node,RBAC) → the pod's kubelet
(HTTPS, its client certificate, `nodes/proxy` checked) → `python3 -m http.server` in a process-runtime
pod, for pod/, svc/ and deploy/ targets."""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Kubectl, finish

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")
PORT = 8000

WEB = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: python:3
        command: ["sh", "-c", "exec python3 -m http.server {PORT} --bind $POD_IP"]
        env:
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        ports: [{{containerPort: {PORT}}}]
        readinessProbe:
          tcpSocket: {{port: {PORT}}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: {PORT}}}]
"""


@pytest.fixture(scope="module")
def web(kube: Kubectl) -> Iterator[tuple[str, str]]:
    """A namespace with the web Deployment rolled out; (namespace, pod name)."""
    ns = f"portforward-{uuid.uuid4().hex[:6]}"
    kube.ok("create", "namespace", ns)
    kube.ok("apply", "-n", ns, "-f", "-", input=WEB)
    kube.ok("rollout", "status", "-n", ns, "deploy/web", "--timeout=60s", timeout=70)
    pod = kube.ok("get", "pods", "-n", ns, "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}")
    yield ns, pod
    kube("delete", "namespace", ns, "--wait=false")


def forward(kube: Kubectl, ns: str, target: str, remote: int) -> tuple[subprocess.Popen[str], int]:
    """`kubectl port-forward <target> :<remote>` in the background, and the local port it chose."""
    proc = kube.start("-n", ns, "port-forward", target, f":{remote}")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = FORWARDING.search(line)
    if match is None:
        proc.kill()
        _code, out, err = finish(proc)
        raise AssertionError(f"kubectl port-forward {target} did not start: {line}{out}\n{err}")
    assert int(match.group(2)) == remote or target.startswith("svc/")
    return proc, int(match.group(1))


def stop(proc: subprocess.Popen[str]) -> None:
    """End a background kubectl port-forward."""
    if proc.poll() is None:
        proc.terminate()
    finish(proc)


def listing(port: int) -> str:
    """GET / through the forwarded local port: http.server's directory listing."""
    r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert r.status_code == 200, r.text
    return r.text


@pytest.mark.parametrize("target", ["pod", "svc/web", "deploy/web"])
def test_port_forward_reaches_http_server(kube: Kubectl, web: tuple[str, str], target: str) -> None:
    ns, pod = web
    name, remote = (f"pod/{pod}", PORT) if target == "pod" else (target, 80 if target == "svc/web" else PORT)
    proc, local = forward(kube, ns, name, remote)
    try:
        assert "Directory listing for /" in listing(local)
        assert proc.poll() is None
    finally:
        stop(proc)


def test_two_connections_at_once(kube: Kubectl, web: tuple[str, str]) -> None:
    ns, pod = web
    proc, local = forward(kube, ns, f"pod/{pod}", PORT)
    try:
        first = socket.create_connection(("127.0.0.1", local), timeout=10)
        second = socket.create_connection(("127.0.0.1", local), timeout=10)
        with first, second:
            first.sendall(b"GET / HTTP/1.0\r\n\r\n")
            second.sendall(b"GET / HTTP/1.0\r\n\r\n")
            for sock in (second, first):  # both in flight; read in the other order than they were sent
                body = b""
                while chunk := sock.recv(65536):
                    body += chunk
                assert body.startswith(b"HTTP/1.0 200") and b"Directory listing for /" in body
    finally:
        stop(proc)


def test_port_nothing_listens_on_ends_with_kubectls_error(kube: Kubectl, web: tuple[str, str]) -> None:
    ns, pod = web
    proc, local = forward(kube, ns, f"pod/{pod}", 8001)
    try:
        with socket.create_connection(("127.0.0.1", local), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(100) == b""
        code, _out, err = finish(proc)  # kubectl drops the session and exits by itself: no hang
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert "error forwarding port 8001 to pod" in err and "connect: connection refused" in err, err
    assert "lost connection to pod" in err
