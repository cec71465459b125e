"""`kubectl attach` and `kubectl run -i --rm` on a real cluster (process runtime, secure port): the
container's output while attached, Success when it exits. The process runtime gives containers no
stdin yet (it has no `attach_stdin`), so what is typed is dropped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl
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
