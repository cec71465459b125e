"""The real kubectl v1.35: `kubectl attach` through the apiserver to a KubeletServer.

The runtime double's containers are real `cat` processes: what they read on stdin they print, and
their output lands in a CRI log as the process runtime writes it. The double offers `attach_stdin`
(kubelet/streaming_attach.py's StdinRuntime) as stdinOnce containers; tests/cluster/test_attach.py
runs the same through the process runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import websockets

from kubelet.streaming_attach import PipeStdin

from .conftest import Kubectl, manifest
from .test_kubectl_logs_exec import ThreadedKubelet, register_node


class CatRuntime:
    """Containers are `cat` processes with their stdin on a pipe and their stdout in a CRI log."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[tuple[str, str, str], asyncio.subprocess.Process] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, ns: str, pod: str, container: str) -> None:
        path = self.root / ns / pod / container / "0.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec("cat", stdin=pipe, stdout=pipe)
        self.procs[(ns, pod, container)] = proc

        async def record() -> None:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                with path.open("ab") as f:
                    f.write(f"{ts} stdout F ".encode() + line.rstrip(b"\n") + b"\n")
            await proc.wait()

        task = asyncio.create_task(record())
        self.tasks.add(task)

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        for task in self.tasks:
            task.cancel()

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        path = self.root / namespace / pod / container / "0.log"
        return path if path.exists() and not previous else None

    def container_running(self, namespace: str, pod: str, container: str) -> bool:
        proc = self.procs.get((namespace, pod, container))
        return proc is not None and proc.returncode is None

    async def attach_stdin(self, namespace: str, pod: str, container: str) -> PipeStdin | None:
        proc = self.procs.get((namespace, pod, container))
        if proc is None or proc.returncode is not None:
            raise LookupError(container)
        assert proc.stdin is not None
        return PipeStdin(proc.stdin, once=True)

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        raise LookupError(f'container not found ("{container}")')


@pytest.fixture(scope="module")
def kubelet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedKubelet, CatRuntime]]:
    runtime = CatRuntime(tmp_path_factory.mktemp("attach"))
    with ThreadedKubelet(runtime) as threaded:  # type: ignore[arg-type]
        yield threaded, runtime
        asyncio.run_coroutine_threadsafe(runtime.stop_all(), threaded.loop).result(10)


@pytest.fixture(scope="module")
def node(http: httpx.Client, kubelet: tuple[ThreadedKubelet, CatRuntime]) -> str:
    return register_node(http, "attach-node", kubelet[0].server.port)


def cat_pod(
    http: httpx.Client, kubectl: Kubectl, kubelet: tuple[ThreadedKubelet, CatRuntime], ns: str, name: str, node: str
) -> CatRuntime:
    """A Running pod whose container `main` is a `cat` the runtime double started."""
    threaded, runtime = kubelet
    asyncio.run_coroutine_threadsafe(runtime.start(ns, name, "main"), threaded.loop).result(10)
    pod = f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  containers:
  - {{name: main, image: busybox:1.36, command: [cat], stdin: true, stdinOnce: true}}
"""
    kubectl.ok("-n", ns, "apply", "-f", "-", input=manifest(pod))
    body = http.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()
    body["status"] = {"phase": "Running", "podIP": "127.0.0.1"}
    assert http.put(f"/api/v1/namespaces/{ns}/pods/{name}/status", json=body).status_code == 200
    return runtime


def test_kubectl_attach_with_stdin(
    kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, kubelet: tuple[ThreadedKubelet, CatRuntime]
) -> None:
    cat_pod(http, kubectl, kubelet, namespace, "cat", node)
    # kubectl sends stdin, then its end (v5 close); the container's stdin closes (stdinOnce), cat exits
    # after echoing, the attach ends with Success
    r = kubectl("-n", namespace, "attach", "-i", "cat", input="hello\nworld\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\nworld\n"


def test_kubectl_attach_output_only_follows_until_the_container_exits(
    kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, kubelet: tuple[ThreadedKubelet, CatRuntime]
) -> None:
    threaded, runtime = kubelet
    cat_pod(http, kubectl, kubelet, namespace, "quiet", node)
    proc = kubectl.start("-n", namespace, "attach", "quiet")
    lines: queue.Queue[str] = queue.Queue()
    try:
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
        reader.start()
        cat_stdin = runtime.procs[(namespace, "quiet", "main")].stdin
        assert cat_stdin is not None

        async def say(text: bytes) -> None:
            cat_stdin.write(text)
            await cat_stdin.drain()

        # output written before the attach is not replayed: tick until a line arrives (kubectl is attached)
        deadline = time.monotonic() + 20
        first = None
        while first is None and time.monotonic() < deadline:
            asyncio.run_coroutine_threadsafe(say(b"tick\n"), threaded.loop).result(5)
            with contextlib.suppress(queue.Empty):
                first = lines.get(timeout=0.3)
        assert first == "tick\n"
        asyncio.run_coroutine_threadsafe(say(b"last\n"), threaded.loop).result(5)
        threaded.loop.call_soon_threadsafe(cat_stdin.close)  # cat exits: the attach ends by itself
        code = proc.wait(timeout=30)
        reader.join(5)
        err = proc.stderr.read() if proc.stderr is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert rest[-1:] == ["last\n"] and set(rest[:-1]) <= {"tick\n"}, rest


def test_kubectl_attach_errors(kubectl: Kubectl, http: httpx.Client, namespace: str, node: str) -> None:
    pod = f"""
apiVersion: v1
kind: Pod
metadata: {{name: ghost}}
spec:
  nodeName: {node}
  containers:
  - {{name: main, image: busybox:1.36}}
"""
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod))
    body = http.get(f"/api/v1/namespaces/{namespace}/pods/ghost").json()
    body["status"] = {"phase": "Running"}
    assert http.put(f"/api/v1/namespaces/{namespace}/pods/ghost/status", json=body).status_code == 200
    err = kubectl.fails("-n", namespace, "attach", "ghost")
    assert 'container not found ("main")' in err
    # an unknown container is kubectl's own check; the apiserver's, asked directly, is a 400
    err = kubectl.fails("-n", namespace, "attach", "ghost", "-c", "nope")
    assert "container nope not found in pod ghost" in err, err
    url = http.base_url.copy_with(scheme="ws", path=f"/api/v1/namespaces/{namespace}/pods/ghost/attach")

    async def upgrade() -> None:
        async with websockets.connect(f"{url}?container=nope&stdout=1"):
            pass

    with pytest.raises(websockets.InvalidStatus) as e:
        asyncio.run(upgrade())
    assert e.value.response.status_code == 400
    assert b"container nope is not valid for pod ghost" in e.value.response.body


def test_ephemeral_containers_subresource(http: httpx.Client, namespace: str) -> None:
    """pods/<name>/ephemeralcontainers: entries added by kubectl debug's strategic merge patch, never on create,
    never removed; upstream's field errors."""
    base = f"/api/v1/namespaces/{namespace}/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "target"}}
    pod["spec"] = {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "60"]}]}
    debug = {"name": "dbg", "image": "busybox", "targetContainerName": "app", "stdin": True}
    r = http.post(base, json={**pod, "spec": {**pod["spec"], "ephemeralContainers": [debug]}})
    assert r.status_code == 422, r.text
    assert (
        r.json()["message"] == 'Pod "target" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create'
    )
    assert http.post(base, json=pod).status_code == 201

    smp = {"Content-Type": "application/strategic-merge-patch+json"}
    r = http.patch(f"{base}/target/ephemeralcontainers", json={"spec": {"ephemeralContainers": [debug]}}, headers=smp)
    assert r.status_code == 200, r.text
    [added] = r.json()["spec"]["ephemeralContainers"]
    assert added["name"] == "dbg" and added["terminationMessagePolicy"] == "File"  # defaulted as any container
    assert r.json()["spec"]["containers"][0]["image"] == "busybox"

    bad = {"name": "dbg2", "image": "busybox", "targetContainerName": "nope", "ports": [{"containerPort": 80}]}
    r = http.patch(f"{base}/target/ephemeralcontainers", json={"spec": {"ephemeralContainers": [bad]}}, headers=smp)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"] == [
        {
            "reason": "FieldValueNotFound",
            "message": 'Not found: "nope"',
            "field": "spec.ephemeralContainers[1].targetContainerName",
        },
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: cannot be set for an Ephemeral Container",
            "field": "spec.ephemeralContainers[1].ports",
        },
    ]
    remove = [{"op": "remove", "path": "/spec/ephemeralContainers/0"}]
    json_patch = {"Content-Type": "application/json-patch+json"}
    r = http.patch(f"{base}/target/ephemeralcontainers", json=remove, headers=json_patch)
    assert r.status_code == 422, r.text
    assert 'existing ephemeral containers \\"dbg\\" may not be removed' in r.text
    r = http.patch(f"{base}/missing/ephemeralcontainers", json={"spec": {}}, headers=smp)
    assert r.status_code == 404 and r.json()["details"]["name"] == "missing"  # kubectl debug reads details.name
