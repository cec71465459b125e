"""`kubectl attach` and `kubectl run -i --rm` on a real cluster (process runtime, secure port): the
container's output while attached, what is typed on the container's stdin (`stdin: true`), a terminal
for `tty: true`, Success when it exits."""

from __future__ import annotations

import os
import select
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.cluster.conftest import wait_for
from tests.e2e.conftest import Kubectl, manifest
from tinykube.cluster import Cluster


@pytest.fixture(scope="module")
def skube(kubectl_binary: Path, kube: Kubectl, cluster: Cluster) -> Kubectl:
    """kubectl on the secure port as the cluster admin."""
    return Kubectl(kubectl_binary, cluster.secure_server, kube.cache_dir, kube.home, kube.env)


def test_run_interactive_prints_the_output_and_removes_the_pod(skube: Kubectl, cns: str) -> None:
    name = f"once-{uuid.uuid4().hex[:4]}"
    script = "sleep 3; echo attached-output; sleep 1"
    r = skube(
        "-n", cns, "run", name, "-i", "--rm", "--restart=Never", "--image=busybox", "--", "sh", "-c", script, timeout=90
    )
    assert r.returncode == 0, r.stderr
    assert "attached-output" in r.stdout, (r.stdout, r.stderr)
    assert "couldn't attach" not in r.stderr, r.stderr  # kubectl falls back to the log when attach fails
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        gone = skube("-n", cns, "get", "pod", name)
        if gone.returncode != 0 and "NotFound" in gone.stderr:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"pod {name} was not removed")


def test_attach_follows_until_the_container_exits(skube: Kubectl, cns: str) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do echo line-$i; sleep 1; done"
    skube.ok("-n", cns, "run", "counter", "--restart=Never", "--image=busybox", "--", "sh", "-c", script)
    skube.ok("-n", cns, "wait", "--for=condition=Ready", "pod/counter", "--timeout=30s", timeout=40)
    r = skube("-n", cns, "attach", "counter", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("line-8"), r.stdout  # attached mid-way: the rest, up to the exit


def test_run_interactive_reads_stdin_and_removes_the_pod(skube: Kubectl, cns: str) -> None:
    name = f"ask-{uuid.uuid4().hex[:4]}"
    argv = ("run", name, "-i", "--rm", "--restart=Never", "--image=busybox", "--", "sh", "-c", "read x; echo got $x")
    r = skube("-n", cns, *argv, input="hello\n", timeout=90)
    assert r.returncode == 0, r.stderr
    assert "got hello" in r.stdout, (r.stdout, r.stderr)
    wait_for(lambda: "NotFound" in skube("-n", cns, "get", "pod", name).stderr, what=f"pod {name} removed")


def test_attach_stdin_once_and_kept_open(skube: Kubectl, cns: str) -> None:
    pods = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: once}
  spec:
    restartPolicy: Never
    containers:
    - {name: main, image: busybox, stdin: true, stdinOnce: true, command: [sh, -c, 'read x; echo got-$x; sleep 1']}
- apiVersion: v1
  kind: Pod
  metadata: {name: kept}
  spec:
    restartPolicy: Never
    containers:
    - {name: main, image: busybox, stdin: true, command: [sh, -c, 'while read x; do echo echo-$x; done; echo eof']}
"""
    skube.ok("-n", cns, "apply", "-f", "-", input=manifest(pods))
    skube.ok("-n", cns, "wait", "--for=condition=Ready", "pod/once", "pod/kept", "--timeout=30s", timeout=40)
    # stdinOnce: the attach's stdin reaches the container, then its stdin closes; the attach lasts until it exits
    r = skube("-n", cns, "attach", "-i", "once", input="hi\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "got-hi" in r.stdout, (r.stdout, r.stderr)
    # without stdinOnce the attach ends with the client's stdin and the container's stdin stays open
    for word in ("a", "b"):
        r = skube("-n", cns, "attach", "-i", "kept", input=f"{word}\n", timeout=60)
        assert r.returncode == 0, r.stderr

    def echoed() -> str | None:
        out = skube.ok("-n", cns, "logs", "kept")
        return out if "echo-b" in out else None

    logs = wait_for(echoed, what="both lines echoed")
    assert logs.split() == ["echo-a", "echo-b"], logs
    phase = skube.ok("-n", cns, "get", "pod", "kept", "-o", "jsonpath={.status.phase}")
    assert phase == "Running"


def test_run_with_a_terminal(skube: Kubectl, cns: str) -> None:
    """`kubectl run -it` from a terminal: the container gets one too; what is typed reaches it and it echoes."""
    name = f"tty-{uuid.uuid4().hex[:4]}"
    script = "read x; echo got-$x; [ -t 0 ] && echo on-a-terminal"
    run = ("run", name, "-it", "--rm", "--restart=Never", "--image=busybox", "--", "sh", "-c", script)
    argv = skube.argv("-n", cns, *run)
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=skube.env, start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, timeout: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # kubectl exited: the terminal is gone
                    break
        assert marker in seen, seen

    try:
        read_until(b"try pressing enter", 90)  # attached
        os.write(master, b"hello\r")  # a terminal in raw mode: Enter is \r, the container's terminal makes it \n
        read_until(b"on-a-terminal", 30)
        assert b"got-hello" in seen, seen
        assert proc.wait(timeout=30) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    wait_for(lambda: "NotFound" in skube("-n", cns, "get", "pod", name).stderr, what=f"pod {name} removed")
