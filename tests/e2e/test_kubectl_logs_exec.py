"""The real kubectl v1.35: `kubectl logs [-f|--tail]` and `kubectl exec` through the apiserver to a KubeletServer.

The kubelet server runs in its own thread and event loop (kubectl runs synchronously here) over a
runtime double: containers are directories of CRI log files, exec runs real local processes.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kubelet.server import KubeletServer

from .conftest import Kubectl, finish, manifest


def cri_lines(*texts: str) -> bytes:
    """CRI stdout records stamped now."""
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return b"".join(f"{ts} stdout F {t}\n".encode() for t in texts)


class DirRuntime:
    """Containers are dirs `root/ns/pod/container` with `0.log`; every one is running."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def start(self, ns: str, pod: str, container: str, log: bytes) -> Path:
        d = self.root / ns / pod / container
        d.mkdir(parents=True, exist_ok=True)
        (d / "0.log").write_bytes(log)
        return d / "0.log"

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        path = self.root / namespace / pod / container / "0.log"
        return path if path.exists() and not previous else None

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        d = self.root / namespace / pod / container
        if not d.is_dir():
            raise LookupError(f'container not found ("{container}")')
        pipe = asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(*command, stdin=pipe, stdout=pipe, stderr=pipe, cwd=d)


class ThreadedKubelet:
    """A KubeletServer in a background thread with its own event loop."""

    def __init__(self, runtime: DirRuntime) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = KubeletServer(runtime, host="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedKubelet:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def register_node(http: httpx.Client, prefix: str, kubelet_port: int) -> str:
    """Create a Node named `<prefix>-<random>` whose status points at a kubelet on 127.0.0.1:`kubelet_port`."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    r = http.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    body = r.json()
    body["status"] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
    }
    r = http.put(f"/api/v1/nodes/{name}/status", json=body)
    assert r.status_code == 200, r.text
    return name


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> DirRuntime:
    return DirRuntime(tmp_path_factory.mktemp("containers"))


@pytest.fixture(scope="module")
def node(http: httpx.Client, runtime: DirRuntime) -> Iterator[str]:
    """A running kubelet server and the Node pointing at it."""
    with ThreadedKubelet(runtime) as kubelet:
        yield register_node(http, "e2e-node", kubelet.server.port)


def pod_yaml(name: str, node: str | None) -> str:
    bind = f"  nodeName: {node}\n" if node else ""
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
{bind}  containers:
  - name: main
    image: busybox:1.36
"""


def test_kubectl_logs_and_tail(kubectl: Kubectl, namespace: str, node: str, runtime: DirRuntime) -> None:
    runtime.start(namespace, "web", "main", cri_lines("hello", "world"))
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("web", node)))
    assert kubectl.ok("-n", namespace, "logs", "web") == "hello\nworld\n"
    assert kubectl.ok("-n", namespace, "logs", "web", "--tail=1") == "world\n"
    assert kubectl.ok("-n", namespace, "logs", "pod/web", "-c", "main", "--limit-bytes=3") == "hel"
    stamped = kubectl.ok("-n", namespace, "logs", "web", "--timestamps").splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["hello", "world"]
    err = kubectl.fails("-n", namespace, "logs", "web", "--previous")
    assert 'previous terminated container "main" in pod "web" not found' in err


def test_kubectl_logs_follow(kubectl: Kubectl, namespace: str, node: str, runtime: DirRuntime) -> None:
    path = runtime.start(namespace, "tail", "main", cri_lines("one"))
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("tail", node)))
    proc = kubectl.start("-n", namespace, "logs", "-f", "tail")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "one\n"
        with path.open("ab") as f:
            f.write(cri_lines("two"))
        assert proc.stdout.readline() == "two\n"
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        finish(proc)


def test_kubectl_exec(kubectl: Kubectl, namespace: str, node: str, runtime: DirRuntime) -> None:
    runtime.start(namespace, "box", "main", b"")
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("box", node)))
    assert kubectl.ok("-n", namespace, "exec", "box", "--", "echo", "hi") == "hi\n"
    r = kubectl("-n", namespace, "exec", "box", "--", "sh", "-c", "echo to-err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert "to-err" in r.stderr and "command terminated with exit code 3" in r.stderr
    assert kubectl.ok("-n", namespace, "exec", "-i", "box", "--", "cat", input="from stdin\n") == "from stdin\n"


def test_kubectl_exec_errors(kubectl: Kubectl, namespace: str, node: str) -> None:
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("unbound", None)))
    err = kubectl.fails("-n", namespace, "exec", "unbound", "--", "true")
    assert "pod unbound does not have a host assigned" in err
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("gone", node)))
    err = kubectl.fails("-n", namespace, "exec", "gone", "--", "true")
    assert 'container not found ("main")' in err
    err = kubectl.fails("-n", namespace, "exec", "gone", "-c", "nope", "--", "true")
    assert "Error from server (BadRequest): container nope is not valid for pod gone" in err


def test_kubectl_exec_missing_binary(kubectl: Kubectl, namespace: str, node: str, runtime: DirRuntime) -> None:
    runtime.start(namespace, "nobin", "main", b"")
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("nobin", node)))
    err = kubectl.fails("-n", namespace, "exec", "nobin", "--", "/no/such/binary")
    assert "error: Internal error occurred: error executing command in container:" in err
