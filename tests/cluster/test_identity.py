"""Identities in a whole cluster: pods get a ServiceAccount token, the cluster CA and their namespace at
/var/run/secrets/kubernetes.io/serviceaccount, and the official Python client's `load_incluster_config()`
works inside a pod against the secure port through the `kubernetes` Service; each component has its own
client certificate."""

from __future__ import annotations

import base64
import json
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import wait_for
from tests.e2e.conftest import Kubectl
from tinykube.cluster import SECURE_PORT, Cluster

IN_CLUSTER = textwrap.dedent(
    """
    import json, os, pathlib
    from kubernetes import client, config
    d = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
    files = {p.name: p.read_text() for p in d.iterdir() if not p.name.startswith("..")}
    config.load_incluster_config()
    core = client.CoreV1Api()
    pods = core.list_namespaced_pod(files["namespace"]).items
    refused = {}
    for what, call in (
        ("secrets", lambda: core.list_namespaced_secret(files["namespace"])),
        ("kube-system pods", lambda: core.list_namespaced_pod("kube-system")),
    ):
        try:
            call()
        except client.ApiException as e:
            refused[what] = [e.status, json.loads(e.body)["message"]]
    env = {k: os.environ[k] for k in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
    out = {"files": files, "pods": [p.metadata.name for p in pods], "refused": refused, "env": env}
    print(json.dumps(out), flush=True)
    """
)


@pytest.fixture(scope="module")
def skube(kubectl_binary: Path, kube: Kubectl, cluster: Cluster) -> Kubectl:
    """kubectl on the secure port with the admin kubeconfig (not the insecure port `kube` uses)."""
    return Kubectl(kubectl_binary, cluster.secure_server, kube.cache_dir, kube.home, kube.env)


def _cannot_list(resource: str, namespace: str) -> str:
    return f'cannot list resource "{resource}" in API group "" in the namespace "{namespace}"'


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_pod_reaches_the_api_with_its_own_token(
    kube: Kubectl, chttp: httpx.Client, cluster: Cluster, cns: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "incluster"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "python:3.11", "command": [sys.executable, "-c", IN_CLUSTER]}],
        },
    }
    # RBAC is on: the pod's ServiceAccount may read pods in its namespace, and nothing else
    kube.ok("create", "role", "pod-reader", "-n", cns, "--verb=get,list,watch", "--resource=pods")
    kube.ok("create", "rolebinding", "pod-reader", "-n", cns, "--role=pod-reader", f"--serviceaccount={cns}:default")
    kube.ok("apply", "-n", cns, "-f", "-", input=json.dumps(pod))

    def finished() -> dict | None:
        got = chttp.get(f"/api/v1/namespaces/{cns}/pods/incluster").json()
        return got if got.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    done = wait_for(finished, 60, "the in-cluster pod to finish")
    logs = kube.ok("logs", "-n", cns, "incluster")
    assert done["status"]["phase"] == "Succeeded", logs
    out = json.loads(logs.strip().splitlines()[-1])
    assert out["pods"] == ["incluster"]  # listed through https://<kubernetes Service IP>:443 with its own token
    user = f"system:serviceaccount:{cns}:default"
    assert out["refused"] == {
        "secrets": [403, f'secrets is forbidden: User "{user}" {_cannot_list("secrets", cns)}'],
        "kube-system pods": [403, f'pods is forbidden: User "{user}" {_cannot_list("pods", "kube-system")}'],
    }
    assert out["env"] == {"KUBERNETES_SERVICE_HOST": cluster.network.service_ip(1), "KUBERNETES_SERVICE_PORT": "443"}
    files = out["files"]
    assert set(files) == {"token", "ca.crt", "namespace"}
    assert files["namespace"] == cns
    assert files["ca.crt"] == cluster.pki.ca.cert.read_text()
    claims = _claims(files["token"])
    assert claims["sub"] == f"system:serviceaccount:{cns}:default"
    assert claims["kubernetes.io"]["pod"] == {"name": "incluster", "uid": done["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"]["name"] == done["spec"]["nodeName"]
    volume = next(v for v in done["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    assert volume["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}


def test_the_kubernetes_service_points_at_the_secure_port(chttp: httpx.Client, cluster: Cluster) -> None:
    address = cluster.network.apiserver_address
    eps = chttp.get("/api/v1/namespaces/default/endpoints/kubernetes").json()
    assert eps["subsets"] == [
        {"addresses": [{"ip": address}], "ports": [{"name": "https", "port": SECURE_PORT, "protocol": "TCP"}]}
    ]
    eps = chttp.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes").json()
    assert eps["endpoints"][0]["addresses"] == [address]
    assert eps["ports"] == [{"name": "https", "port": SECURE_PORT, "protocol": "TCP"}]
    svc = chttp.get("/api/v1/namespaces/default/services/kubernetes").json()
    assert svc["spec"]["ports"][0]["targetPort"] == SECURE_PORT


def test_every_component_has_its_own_identity(skube: Kubectl, cluster: Cluster) -> None:
    expected = {
        "kube-scheduler": ("system:kube-scheduler", []),
        "kube-controller-manager": ("system:kube-controller-manager", []),
        "kube-proxy": ("system:kube-proxy", []),
        "kubelet-node-1": ("system:node:node-1", ["system:nodes"]),
        "kubelet-node-2": ("system:node:node-2", ["system:nodes"]),
        "coredns": (
            "system:serviceaccount:kube-system:coredns",
            ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
        ),
    }
    for file, (user, groups) in expected.items():
        out = skube.ok("--kubeconfig", str(cluster.component_kubeconfig(file)), "auth", "whoami", "-o", "json")
        info = json.loads(out)["status"]["userInfo"]
        assert (info["username"], info["groups"]) == (user, [*groups, "system:authenticated"]), file
    admin = json.loads(skube.ok("auth", "whoami", "-o", "json"))["status"]["userInfo"]
    assert admin["username"] == "kubernetes-admin"
    config = json.loads(cluster.kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://{cluster.network.apiserver_address}:{SECURE_PORT}"


def test_exec_over_the_secure_port_with_a_client_certificate(skube: Kubectl, cns: str) -> None:
    """kubectl exec's WebSocket on 6443 carries the client certificate into the request (the TLS extension)."""
    skube.ok("run", "sleeper", "-n", cns, "--image=busybox", "--restart=Never", "--", "sleep", "600")
    skube.ok("wait", "-n", cns, "--for=condition=Ready", "pod/sleeper", "--timeout=30s", timeout=40)
    out = skube.ok("exec", "-n", cns, "sleeper", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    assert out == cns
