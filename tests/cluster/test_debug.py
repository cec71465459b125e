"""`kubectl debug` on a real cluster (process runtime, secure port): an ephemeral container added through
`pods/<name>/ephemeralcontainers`, started by the kubelet in the target container's mount namespace,
attached with stdin, and reported in `status.ephemeralContainerStatuses`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import wait_for
from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster

APP = """
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo from-app > /data/marker; exec sleep 3600']
    volumeMounts: [{name: data, mountPath: /data}]
"""


@pytest.fixture(scope="module")
def skube(kubectl_binary: Path, kube: Kubectl, cluster: Cluster) -> Kubectl:
    """kubectl on the secure port as the cluster admin."""
    return Kubectl(kubectl_binary, cluster.secure_server, kube.cache_dir, kube.home, kube.env)


def ephemeral_status(skube: Kubectl, ns: str) -> list[dict[str, Any]]:
    out = skube.ok("-n", ns, "get", "pod", "app", "-o", "jsonpath={.status.ephemeralContainerStatuses}")
    return json.loads(out) if out else []


def test_kubectl_debug_with_a_target_and_stdin(skube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    skube.ok("-n", cns, "apply", "-f", "-", input=APP)
    skube.ok("-n", cns, "wait", "--for=condition=Ready", "pod/app", "--timeout=30s", timeout=40)
    script = "read x; echo got $x $(cat /data/marker)"  # /data is mounted in the target only
    argv = ("debug", "-it", "pod/app", "--image=busybox", "--target=app", "-c", "dbg", "--", "sh", "-c", script)
    r = skube("-n", cns, *argv, input="hello\n", timeout=90)
    assert r.returncode == 0, r.stderr

    def finished() -> dict[str, Any] | None:
        statuses = ephemeral_status(skube, cns)
        return statuses[0] if statuses and "terminated" in statuses[0]["state"] else None

    status = wait_for(finished, what="the ephemeral container's terminated status")
    assert status["name"] == "dbg" and status["state"]["terminated"]["exitCode"] == 0, status
    # a container without stdinOnce: the attach may end with kubectl's stdin, before the output; the log has it
    # (`-it` gives the container a terminal, whose echo of the input line is in the log too when it came in time)
    lines = skube.ok("-n", cns, "logs", "app", "-c", "dbg").strip().splitlines()
    assert lines[-1] == "got hello from-app" and set(lines[:-1]) <= {"hello"}, lines
    spec = json.loads(skube.ok("-n", cns, "get", "pod", "app", "-o", "jsonpath={.spec.ephemeralContainers}"))
    assert [(c["name"], c["targetContainerName"], c["stdin"]) for c in spec] == [("dbg", "app", True)]
    assert skube.ok("-n", cns, "get", "pod", "app", "-o", "jsonpath={.status.phase}") == "Running"

    # entries are never changed or removed, and only the subresource adds them
    path = f"/api/v1/namespaces/{cns}/pods/app"
    pod = chttp.get(f"{path}/ephemeralcontainers").json()
    pod["spec"]["ephemeralContainers"][0]["image"] = "alpine"
    r = chttp.put(f"{path}/ephemeralcontainers", json=pod)
    assert r.status_code == 422, r.text
    assert 'existing ephemeral containers "dbg" may not be changed' in r.json()["message"]
    add = {"spec": {"ephemeralContainers": [{"name": "more", "image": "busybox", "command": ["true"]}]}}
    r = chttp.patch(path, json=add, headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 422 and "pod updates may not change fields" in r.json()["message"], r.text


def test_discovery_advertises_the_subresource(chttp: httpx.Client) -> None:
    resources = {r["name"]: r for r in chttp.get("/api/v1").json()["resources"]}
    sub = resources["pods/ephemeralcontainers"]
    assert sub["kind"] == "Pod" and sorted(sub["verbs"]) == ["get", "patch", "update"]
