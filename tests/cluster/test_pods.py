"""Pods really run: the pod workflow on a two-node cluster through the real kubectl."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import signal
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.cluster.conftest import events_of, processes_with, wait_for
from tests.e2e.conftest import Kubectl, table
from tinykube.cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def pod_json(chttp: httpx.Client, ns: str, name: str) -> dict:
    r = chttp.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def test_pod_workflow_runs_serves_logs_and_execs(
    kube: Kubectl, chttp: httpx.Client, cluster: Cluster, cns: str
) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "pod-workflow.yaml"))
    kube.ok("wait", "-n", cns, "--for=condition=Ready", "pod/ngx", "--timeout=30s", timeout=40)
    pod = pod_json(chttp, cns, "ngx")
    assert pod["spec"]["nodeName"] in cluster.node_names
    ip = pod["status"]["podIP"]
    node_index = cluster.node_names.index(pod["spec"]["nodeName"])
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(cluster.network.pod_cidr(node_index))
    assert pod["status"]["hostIP"] == cluster.node_ip(pod["spec"]["nodeName"])

    rows = table(kube.ok("get", "pods", "-n", cns, "-o", "wide"))
    assert rows[0][:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert rows[1][:4] == ["ngx", "1/1", "Running", "0"]
    assert rows[1][5:7] == [ip, pod["spec"]["nodeName"]]

    r = httpx.get(f"http://{ip}:8080/", timeout=5)
    assert r.status_code == 200

    def logged() -> str | None:
        out = kube.ok("logs", "-n", cns, "ngx")
        return out if '"GET / HTTP/1.1" 200' in out else None

    logs = wait_for(logged, 10, "the request in the logs")
    assert ip in logs or "127." in logs

    assert kube.ok("exec", "-n", cns, "ngx", "--", "sh", "-c", "echo hi from $POD_IP").strip() == f"hi from {ip}"
    r = kube("exec", "-n", cns, "ngx", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3

    reasons = ("Scheduled", "Pulled", "Created", "Started")
    events = events_of(kube, cns, "ngx", *reasons)
    for reason in reasons:
        assert reason in events, events


def test_unschedulable_pod_shows_why(kube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    resources: {requests: {cpu: "1000"}}
"""
    kube.ok("apply", "-n", cns, "-f", "-", input=manifest)

    def condition() -> dict | None:
        conds = pod_json(chttp, cns, "huge").get("status", {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"), None)

    cond = wait_for(condition, 15, "PodScheduled=False")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/2 nodes are available: 2 Insufficient cpu."
    # the scheduler's event is written from its own queue, after the pod's condition
    out = wait_for(
        lambda: (out := kube.ok("describe", "pod", "-n", cns, "huge")) and "FailedScheduling" in out and out,
        15,
        "the FailedScheduling event",
    )
    assert "FailedScheduling" in out and "0/2 nodes are available: 2 Insufficient cpu." in out
    assert table(kube.ok("get", "pod", "-n", cns, "huge"))[1][:3] == ["huge", "0/1", "Pending"]


def test_killed_container_is_restarted_and_delete_ends_processes(kube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    marker = f"{3000 + uuid.uuid4().int % 1000}.5"
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: sleeper}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: busybox
    command: ["sleep", "{marker}"]
"""
    kube.ok("apply", "-n", cns, "-f", "-", input=manifest)
    kube.ok("wait", "-n", cns, "--for=condition=Ready", "pod/sleeper", "--timeout=30s", timeout=40)
    ip = pod_json(chttp, cns, "sleeper")["status"]["podIP"]
    assert kube.ok("exec", "-n", cns, "sleeper", "--", "sh", "-c", "echo $POD_IP $HOSTNAME").split() == [ip, "sleeper"]
    pids = wait_for(lambda: processes_with(f"sleep {marker}"), 10, "the container process")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    def restarted() -> dict | None:
        st = pod_json(chttp, cns, "sleeper")["status"]["containerStatuses"][0]
        return st if st["restartCount"] == 1 and st.get("ready") else None

    st = wait_for(restarted, 30, "restartCount 1 and ready again")
    assert st["lastState"]["terminated"]["reason"] == "Error"
    row = table(kube.ok("get", "pod", "-n", cns, "sleeper"))[1]
    assert row[:3] == ["sleeper", "1/1", "Running"]
    assert re.fullmatch(r"1 \(\d+s ago\)", row[3]), row

    kube.ok("delete", "pod", "-n", cns, "sleeper", "--wait=true", timeout=30)
    assert processes_with(f"sleep {marker}") == []
    assert chttp.get(f"/api/v1/namespaces/{cns}/pods/sleeper").status_code == 404


def test_kubectl_run_and_interactive_exec_with_a_terminal(kube: Kubectl, cns: str) -> None:
    kube.ok("run", "-n", cns, "shell", "--image=busybox", "--", "sleep", "600")  # args only, no command
    kube.ok("wait", "-n", cns, "--for=condition=Ready", "pod/shell", "--timeout=30s", timeout=40)
    # `script` gives kubectl the terminal that `exec -it` insists on
    argv = " ".join(shlex.quote(a) for a in kube.argv("exec", "-n", cns, "-it", "shell", "--", "sh"))
    r = subprocess.run(
        ["script", "-qec", argv, "/dev/null"],
        input="echo hello-$((6*7)); tty; exit 5\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=kube.env,
    )
    assert r.returncode == 5, r.stdout + r.stderr
    # the shell's "# " prompt may share a line with output, depending on when the input arrived
    lines = [line.strip().removeprefix("#").strip() for line in r.stdout.splitlines()]
    assert "hello-42" in lines, lines
    assert any(line.startswith("/dev/pts/") for line in lines), lines
