"""The kubelet port of a launcher cluster (https://<node-ip>:10250) lets in only callers it can authenticate
and the apiserver authorizes, as a kubeadm cluster's kubelets do; kubectl logs and exec still work
through the apiserver (kube-apiserver-kubelet-client)."""

from __future__ import annotations

import ssl
import sys

import httpx

from tests.cluster.conftest import wait_for
from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster
from tinykube.pki import ClientIdentity


def _tls(cluster: Cluster, client: str | None = None) -> ssl.SSLContext:
    """Trust the cluster CA (the kubelet's serving certificate names its node IP); present `client`'s certificate."""
    ctx = ssl.create_default_context(cafile=str(cluster.pki.ca.cert))
    if client == "stranger":
        pair = cluster.pki.ensure_client(ClientIdentity("stranger", "stranger", ("devs",)))
        ctx.load_cert_chain(pair.cert, pair.key)
    elif client:
        ctx.load_cert_chain(cluster.pki.client(client).cert, cluster.pki.client(client).key)
    return ctx


def test_the_kubelet_port_refuses_whom_the_cluster_does_not_allow(kube: Kubectl, cluster: Cluster, cns: str) -> None:
    command = "print('ready', flush=True); import time; time.sleep(1e9)"
    kube.ok(
        "run",
        "talker",
        "-n",
        cns,
        "--image=python:3",
        "--restart=Never",
        "--command",
        "--",
        sys.executable,
        "-c",
        command,
    )
    kube.ok("wait", "-n", cns, "--for=condition=Ready", "pod/talker", "--timeout=30s", timeout=40)
    node = kube.ok("get", "pod", "-n", cns, "talker", "-o", "jsonpath={.spec.nodeName}")
    base = f"https://{cluster.node_ip(node)}:10250"
    logs = f"{base}/containerLogs/{cns}/talker/talker"

    r = httpx.get(logs, verify=_tls(cluster), timeout=10)
    assert (r.status_code, r.text) == (401, "Unauthorized")
    r = httpx.get(logs, verify=_tls(cluster, "stranger"), timeout=10)
    assert (r.status_code, r.text) == (
        403,
        "Forbidden (user=stranger, verb=get, resource=nodes, subresource(s)=[proxy])\n",
    )

    def admin_read() -> httpx.Response | None:
        got = httpx.get(logs, verify=_tls(cluster, "admin"), timeout=10)
        return got if got.text else None

    # Ready as soon as it started, the container prints once Python is up: its line may not be in the log yet
    r = wait_for(admin_read, 10, "the container's line in its log")
    assert (r.status_code, r.text) == (200, "ready\n")
    # the metrics-server's identity scrapes resource metrics (nodes/metrics), and reads no logs
    assert httpx.get(f"{base}/metrics/resource", verify=_tls(cluster, "metrics-server"), timeout=10).status_code == 200
    assert httpx.get(logs, verify=_tls(cluster, "metrics-server"), timeout=10).status_code == 403
    # plain HTTP is not spoken there any more
    try:
        plain = httpx.get(logs.replace("https://", "http://"), timeout=5).status_code
    except httpx.HTTPError:
        plain = None
    assert plain != 200

    # through the apiserver, as before
    assert wait_for(lambda: kube.ok("logs", "-n", cns, "talker"), 10, "the log") == "ready\n"
    assert kube.ok("exec", "-n", cns, "talker", "--", "sh", "-c", "echo hi").strip() == "hi"
