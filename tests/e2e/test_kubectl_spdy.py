"""The real kubectl v1.35 on its SPDY/3.1 fallback: `kubectl exec`, `attach` and `port-forward` forced off
WebSockets (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, KUBECTL_PORT_FORWARD_WEBSOCKETS=false), as Go
clients (client-go's SPDY executor and port forwarder, helm, operators) speak them.

kubectl upgrades `POST …/pods/<name>/exec|attach|portforward` to SPDY/3.1; the apiserver bridges the
streams to a KubeletServer's WebSockets. The kubelet runs in its own thread over a runtime double:
exec runs local processes, attach talks to a `cat` container, port-forward reaches an HTTP server on
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import pty
import re
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from kubelet.runtime import Sandbox

from .conftest import Kubectl, manifest
from .test_kubectl_attach import CatRuntime, cat_pod
from .test_kubectl_logs_exec import ThreadedKubelet, pod_yaml, register_node
from .test_kubectl_portforward import running_pod, start_forward, stop, web  # noqa: F401 (fixture)

SPDY_ONLY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


def upgraded_over_spdy(verbose_log: str, subresource: str) -> bool:
    """Whether kubectl's `-v=6` log shows the SPDY upgrade (a POST answered 101), not a WebSocket's GET."""
    return any(
        'verb="POST"' in line and re.search(f'/{subresource}[?"]', line) and "101 Switching Protocols" in line
        for line in verbose_log.splitlines()
    )


class SpdyRuntime(CatRuntime):
    """`cat` containers to attach to, exec as local processes, and pods at 127.0.0.1 to forward to."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pods: dict[tuple[str, str], str] = {}
        self.resized: list[tuple[int, int]] = []  # (width, height) the kubelet was asked for, every tty exec

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(f"uid-{ns}-{n}", ns, n, ip, Path("/nonexistent")) for (ns, n), ip in self.pods.items()]

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(*command, stdin=pipe, stdout=pipe, stderr=pipe)
        if tty:  # not a terminal, but it records the sizes the kubelet passes on
            proc.resize = lambda width, height: self.resized.append((width, height))  # type: ignore[attr-defined]
        return proc


@pytest.fixture(scope="module")
def spdy_kubectl(kubectl: Kubectl) -> Kubectl:
    """kubectl that speaks only SPDY to the apiserver for exec, attach and port-forward."""
    return dataclasses.replace(kubectl, env={**kubectl.env, **SPDY_ONLY})


@pytest.fixture(scope="module")
def kubelet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedKubelet, SpdyRuntime]]:
    runtime = SpdyRuntime(tmp_path_factory.mktemp("spdy"))
    with ThreadedKubelet(runtime) as threaded:  # type: ignore[arg-type]
        yield threaded, runtime
        asyncio.run_coroutine_threadsafe(runtime.stop_all(), threaded.loop).result(10)


@pytest.fixture(scope="module")
def node(http: httpx.Client, kubelet: tuple[ThreadedKubelet, SpdyRuntime]) -> str:
    return register_node(http, "spdy-node", kubelet[0].server.port)


def test_kubectl_exec_over_spdy(spdy_kubectl: Kubectl, namespace: str, node: str) -> None:
    kubectl = spdy_kubectl
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("box", node)))
    r = kubectl("-n", namespace, "exec", "box", "-v=6", "--", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert upgraded_over_spdy(r.stderr, "exec"), r.stderr
    # the exit code travels in the error stream's Status; stderr on its own stream
    r = kubectl("-n", namespace, "exec", "box", "--", "sh", "-c", "echo out; echo to-err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n"
    assert "to-err" in r.stderr and "command terminated with exit code 3" in r.stderr
    # stdin piped in, and its end (the stream's FIN) ends `cat`
    assert kubectl.ok("-n", namespace, "exec", "-i", "box", "--", "cat", input="from stdin\n") == "from stdin\n"
    # more than one DATA frame each way arrives whole
    big = "x" * 100_000 + "\n"
    assert kubectl.ok("-n", namespace, "exec", "-i", "box", "--", "cat", input=big) == big


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in state.lower()


def test_exec_process_ends_when_the_spdy_client_goes_away(spdy_kubectl: Kubectl, namespace: str, node: str) -> None:
    spdy_kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("left", node)))
    proc = spdy_kubectl.start("-n", namespace, "exec", "left", "--", "sh", "-c", "echo $$; exec sleep 60")
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        assert _running(pid)
    finally:
        proc.kill()
        proc.wait(10)
    deadline = time.monotonic() + 15
    while _running(pid):
        assert time.monotonic() < deadline, "the exec outlived its SPDY client"
        time.sleep(0.05)


def test_kubectl_exec_with_a_terminal_over_spdy(
    spdy_kubectl: Kubectl, namespace: str, node: str, kubelet: tuple[ThreadedKubelet, SpdyRuntime]
) -> None:
    runtime = kubelet[1]
    spdy_kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("term", node)))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))  # rows, columns
    argv = spdy_kubectl.argv("-n", namespace, "exec", "-ti", "term", "--", "head", "-c", "3")
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=spdy_kubectl.env, start_new_session=True)
    os.close(slave)
    try:
        # the terminal's size comes first, on the resize stream: then kubectl is attached
        deadline = time.monotonic() + 20
        while (111, 33) not in runtime.resized:
            assert time.monotonic() < deadline and proc.poll() is None, runtime.resized
            time.sleep(0.05)
        os.write(master, b"abc")
        assert proc.wait(timeout=30) == 0
        out = b""
        with contextlib.suppress(OSError):  # EIO once the terminal's last writer is gone
            while chunk := os.read(master, 65536):
                out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert b"abc" in out, out


def test_kubectl_exec_over_spdy_errors(spdy_kubectl: Kubectl, namespace: str, node: str) -> None:
    kubectl = spdy_kubectl
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("unbound", None)))
    err = kubectl.fails("-n", namespace, "exec", "unbound", "--", "true")
    assert "pod unbound does not have a host assigned" in err
    kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("present", node)))
    err = kubectl.fails("-n", namespace, "exec", "present", "--", "/no/such/binary")
    assert "error executing command in container" in err, err


def test_kubectl_attach_over_spdy(
    spdy_kubectl: Kubectl, http: httpx.Client, namespace: str, node: str, kubelet: tuple[ThreadedKubelet, SpdyRuntime]
) -> None:
    cat_pod(http, spdy_kubectl, kubelet, namespace, "cat", node)  # type: ignore[arg-type]
    # stdin goes in, its end closes the container's stdin (stdinOnce): cat exits, the attach ends
    r = spdy_kubectl("-n", namespace, "attach", "-v=6", "-i", "cat", input="hello\nworld\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\nworld\n"
    assert upgraded_over_spdy(r.stderr, "attach"), r.stderr


def test_kubectl_port_forward_over_spdy(
    spdy_kubectl: Kubectl,
    http: httpx.Client,
    namespace: str,
    node: str,
    kubelet: tuple[ThreadedKubelet, SpdyRuntime],
    web: int,  # noqa: F811
) -> None:
    kubelet[1].pods[(namespace, "web")] = "127.0.0.1"
    running_pod(http, spdy_kubectl, namespace, "web", node, web)
    proc, local = start_forward(spdy_kubectl, "-n", namespace, "port-forward", "-v=6", "pod/web", f":{web}")
    log = ""
    try:
        r = httpx.get(f"http://127.0.0.1:{local}/through-spdy", timeout=10)
        assert (r.status_code, r.text) == (200, "page /through-spdy\n")
        long = "/" + "y" * 60000
        r = httpx.get(f"http://127.0.0.1:{local}{long}", timeout=10)
        assert (r.status_code, r.text) == (200, f"page {long}\n")
        assert proc.poll() is None
    finally:
        log = stop(proc)
    assert upgraded_over_spdy(log, "portforward"), log


def test_kubectl_port_forward_over_spdy_errors(
    spdy_kubectl: Kubectl, http: httpx.Client, namespace: str, node: str
) -> None:
    # Running in the API but unknown to its kubelet: the kubelet's refusal is the upgrade's answer
    running_pod(http, spdy_kubectl, namespace, "ghost", node, 80)
    err = spdy_kubectl.fails("-n", namespace, "port-forward", "pod/ghost", ":80")
    assert "error upgrading connection: unable to upgrade connection: pod does not exist" in err, err


def _upgrade(apiserver: str, path: str, *protocols: str, method: str = "POST", to: str = "SPDY/3.1") -> bytes:
    """`path` asking to upgrade (to SPDY/3.1) with these stream protocols; the response head, and its body
    if it has a length (a refusal's Status)."""
    url = urlsplit(apiserver)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: Upgrade", f"Upgrade: {to}"]
    lines += [f"X-Stream-Protocol-Version: {p}" for p in protocols]
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10) as sock:
        sock.sendall(("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode())
        got = b""
        while b"\r\n\r\n" not in got and (chunk := sock.recv(65536)):
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        while length and len(body) < int(length.group(1)) and (chunk := sock.recv(65536)):
            body += chunk
        return head + b"\r\n\r\n" + body


def test_spdy_upgrade_negotiation(
    apiserver: str, spdy_kubectl: Kubectl, http: httpx.Client, namespace: str, node: str
) -> None:
    spdy_kubectl.ok("-n", namespace, "apply", "-f", "-", input=manifest(pod_yaml("nego", node)))
    path = f"/api/v1/namespaces/{namespace}/pods/nego/exec?command=true&stdout=1"
    head = _upgrade(apiserver, path, "v4.channel.k8s.io", "v3.channel.k8s.io").lower()
    assert head.startswith(b"http/1.1 101 switching protocols\r\n"), head
    assert b"\r\nupgrade: spdy/3.1\r\n" in head and b"\r\nconnection: upgrade\r\n" in head
    assert b"\r\nx-stream-protocol-version: v4.channel.k8s.io\r\n" in head
    head = _upgrade(apiserver, path, "v3.channel.k8s.io")
    assert head.startswith(b"HTTP/1.1 403 "), head
    assert b"unable to negotiate protocol: client supports [v3.channel.k8s.io]" in head
    # an upgrade the server does not take over is answered as a plain request
    answer = _upgrade(apiserver, "/version", method="GET", to="h2c")
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"gitVersion"' in answer, answer
    # no upgrade asked: the checks, then a 400 that says what is served
    r = http.post(path)
    assert r.status_code == 400 and r.json()["message"].startswith("Upgrade request required"), r.text
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/nope/portforward", headers={"X-Stream-Protocol-Version": "x"})
    assert r.status_code == 404, r.text
