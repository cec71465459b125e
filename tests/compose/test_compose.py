"""tinykube as `docker compose up` makes it: a real Docker Engine (installed and started when missing),
the image built from wheels, the cluster driven with the real kubectl on the published port.

One compose project for the module (its own project name, port and kubeconfig folder, so it never
meets a user's cluster); the tests run in order: nodes Ready → a NodePort serves the web stack →
pods reach each other across nodes by pod IP and a Service by DNS name → logs and exec →
`down` then `up` keeps the objects → `down -v` leaves nothing of the project.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.apt import apt_install

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# the first test includes a cold start: Docker installed, base image debootstrapped, wheels, image build
pytestmark = pytest.mark.timeout(1200)

SERVER = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + os.environ["HOSTNAME"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""

FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"

# an in-cluster client: the kubernetes Service by name, trusting the CA the ServiceAccount volume holds
IN_CLUSTER = """
import json, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
ctx = ssl.create_default_context(cafile=sa + "ca.crt")
req = urllib.request.Request("https://kubernetes.default.svc/api/v1/namespaces/default/pods/net-client")
req.add_header("Authorization", "Bearer " + open(sa + "token").read())
try:
    urllib.request.urlopen(req, context=ctx, timeout=5)
except urllib.error.HTTPError as e:
    print(e.code, json.load(e)["message"])
"""


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Compose:
    """One compose project of the checkout's docker-compose.yml, and kubectl pointed at it."""

    project: str
    env: dict[str, str]
    kubectl_binary: Path
    kubeconfig: Path

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `docker compose <args>` for this project."""
        proc = subprocess.run(
            ["docker", "compose", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert proc.returncode == 0, f"docker compose {' '.join(args)}: {proc.stderr[-3000:]}"
        return proc

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl with the admin kubeconfig the PKI step wrote."""
        proc = subprocess.run(
            [str(self.kubectl_binary), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
        )
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr[-2000:]}"
        return proc

    def kubectl_json(self, *args: str) -> Any:
        """kubectl ... -o json, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def labelled(self, kind: str) -> list[str]:
        """Names of the project's containers, volumes or networks (compose labels them all)."""
        fmt = "{{.Names}}" if kind == "ps" else "{{.Name}}"
        args = ["ps", "-a"] if kind == "ps" else [kind, "ls"]
        out = subprocess.run(
            ["docker", *args, "--filter", f"label=com.docker.compose.project={self.project}", "--format", fmt],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return out.split()

    def wait_nodes(self, since: float, timeout: int = 240) -> None:
        """Both nodes Ready with a heartbeat since `since` (epoch seconds); else fail with the nodes' logs."""
        args = ["exec", "-T", "apiserver", "python3", "-m", "tinykube.compose", "wait-nodes", "2"]
        args += ["--timeout", str(timeout), "--since", str(int(since))]
        proc = self.compose(*args, timeout=timeout + 30, check=False)
        if proc.returncode != 0:
            logs = self.compose("logs", "--no-color", "--tail", "30", "node-1", "node-2", check=False).stdout
            raise AssertionError(f"{proc.stderr.strip()}\n{logs[-6000:]}")


def node_ready(node: dict) -> bool:
    """Whether the Node's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


@pytest.fixture(scope="module")
def cluster(kubectl_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    """`bash scripts/compose-up.sh` for a project of its own; `down -v` at the end whatever happened."""
    project = f"tkc{os.getpid()}"
    output = tmp_path_factory.mktemp("compose-output")
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "COMPOSE_FILE": "docker-compose.yml",  # not a docker-compose.override.yml a developer's cluster uses
        "TINYKUBE_PORT": str(free_port()),
        "TINYKUBE_OUTPUT": str(output),
        "TINYKUBE_IMAGE": "tinykube:test",
    }
    c = Compose(project, env, kubectl_binary, output / "kubeconfig")
    try:
        up = subprocess.run(
            ["bash", "scripts/compose-up.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1100
        )
        assert up.returncode == 0, f"compose-up.sh failed:\n{up.stdout[-2000:]}\n{up.stderr[-4000:]}"
        assert f"export KUBECONFIG={output}/kubeconfig" in up.stdout
        yield c
    finally:
        c.compose("down", "-v", "--timeout", "10", check=False, timeout=120)


def test_both_nodes_ready_through_the_published_port(cluster: Compose) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.kubectl_json("get", "nodes")["items"]}
    assert sorted(nodes) == ["node-1", "node-2"]
    assert all(node_ready(n) for n in nodes.values())
    # each node's podCIDR: a /24 of the cluster CIDR from the controller-manager's nodeipam, none shared
    cidrs = [ipaddress.ip_network(n["spec"]["podCIDR"]) for n in nodes.values()]
    assert all(c.prefixlen == 24 and c.subnet_of(ipaddress.ip_network("10.244.0.0/16")) for c in cidrs), cidrs
    assert not cidrs[0].overlaps(cidrs[1])
    for node in nodes.values():
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        assert not ip.startswith("127."), "a node advertises its container's address, not loopback"
    server = cluster.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    assert server == f"https://127.0.0.1:{cluster.env['TINYKUBE_PORT']}"


def test_web_stack_serves_through_a_node_port(cluster: Compose) -> None:
    cluster.kubectl("apply", "-f", str(ROOT / "examples" / "web-stack.yaml"))
    cluster.kubectl("wait", "--for=condition=Available", "deployment", "--all", "--timeout=90s")
    svc = cluster.kubectl_json("get", "service", "nginx-svc")
    node_port = svc["spec"]["ports"][0]["nodePort"]
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    ips = [next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP") for n in nodes]

    def served(ip: str) -> str | None:
        # from this host, as a user on Linux reaches a kind node: the node container's address
        try:
            r = httpx.get(f"http://{ip}:{node_port}/", timeout=5)
        except httpx.HTTPError:
            return None
        return r.text if r.status_code == 200 else None

    for ip in ips:
        body = wait_for(lambda ip=ip: served(ip), 60, f"nginx-svc on {ip}:{node_port}")
        assert body.startswith("nginx ") and " -> php " in body and " -> mysql " in body, body


def test_pods_reach_each_other_across_nodes_and_a_service_by_dns_name(cluster: Compose) -> None:
    items: list[dict[str, Any]] = []
    for name, node, command in (
        ("net-server", "node-2", ["python3", "-c", SERVER]),
        ("net-client", "node-1", ["sleep", "3600"]),
    ):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "python:3", "command": command}],
                },
            }
        )
    items.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "net-server"},
            "spec": {"selector": {"app": "net-server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    cluster.kubectl("apply", "-f", "-", stdin="\n---\n".join(map(json.dumps, items)))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/net-server", "pod/net-client", "--timeout=60s")
    server_ip = cluster.kubectl_json("get", "pod", "net-server")["status"]["podIP"]
    node_2 = cluster.kubectl_json("get", "node", "node-2")
    assert ipaddress.ip_address(server_ip) in ipaddress.ip_network(node_2["spec"]["podCIDR"])

    def fetch(url: str) -> str | None:
        r = cluster.kubectl("exec", "net-client", "--", "python3", "-c", FETCH, url, check=False)
        return r.stdout if r.returncode == 0 else None

    by_ip = wait_for(lambda: fetch(f"http://{server_ip}:8080/"), 30, "net-server by pod IP from node-1")
    assert by_ip.strip() == "hello from net-server"
    by_name = wait_for(
        lambda: fetch("http://net-server.default.svc.cluster.local/"), 30, "net-server by Service name from node-1"
    )
    assert by_name.strip() == "hello from net-server"
    # the apiserver through the kubernetes Service: it knows the pod's ServiceAccount, which may not read pods
    denied = wait_for(
        lambda: cluster.kubectl("exec", "net-client", "--", "python3", "-c", IN_CLUSTER, check=False).stdout,
        30,
        "the apiserver through https://kubernetes.default.svc",
    )
    assert denied.startswith('403 pods "net-client" is forbidden: User "system:serviceaccount:default:default"'), denied


def test_logs_and_exec(cluster: Compose) -> None:
    logs = wait_for(
        lambda: cluster.kubectl("logs", "net-server").stdout or None, 30, "the server's access log (pod on node-2)"
    )
    assert '"GET / HTTP/1.1" 200' in logs
    out = cluster.kubectl("exec", "net-server", "--", "sh", "-c", "echo $HOSTNAME on $POD_IP").stdout
    pod_ip = cluster.kubectl_json("get", "pod", "net-server")["status"]["podIP"]
    assert out.strip() == f"net-server on {pod_ip}"
    # a pod of the process runtime sees its node container's files: they hold the node's credentials only
    listing = set(cluster.kubectl("exec", "net-server", "--", "ls", "/pki").stdout.split())
    assert listing == {"ca.crt", "kubelet.crt", "kubelet.key", "kubelet.kubeconfig", "kube-proxy.kubeconfig"}


def test_down_then_up_keeps_the_cluster(cluster: Compose) -> None:
    cluster.compose("down", "--timeout", "10")
    assert cluster.labelled("ps") == []
    since = time.time()
    cluster.compose("up", "-d")
    cluster.wait_nodes(since)
    assert cluster.kubectl("get", "deployment", "nginx", "-o", "name").stdout.strip() == "deployment.apps/nginx"
    assert cluster.kubectl("get", "pod", "net-server", "-o", "name").stdout.strip() == "pod/net-server"
    # the pods run again on the new node containers: the server answers its pod IP from the other node

    def fetch() -> str | None:
        url = f"http://{cluster.kubectl_json('get', 'pod', 'net-server')['status'].get('podIP')}:8080/"
        r = cluster.kubectl("exec", "net-client", "--", "python3", "-c", FETCH, url, check=False)
        return r.stdout if r.returncode == 0 else None

    assert wait_for(fetch, 60, "net-server after down/up").strip() == "hello from net-server"


def test_down_v_leaves_nothing(cluster: Compose) -> None:
    assert cluster.labelled("volume"), "the project has its volumes before down -v"
    cluster.compose("down", "-v", "--timeout", "10")
    assert cluster.labelled("ps") == []
    assert cluster.labelled("volume") == []
    assert cluster.labelled("network") == []


def test_both_compose_clis_accept_the_file() -> None:
    """Compose v2 and Debian's docker-compose 1.29 (which refuses a top-level `name:`)."""
    subprocess.run(["bash", "scripts/compose-plugin.sh"], cwd=ROOT, check=True, timeout=300)
    if shutil.which("docker-compose") is None:
        apt_install("docker-compose")
    for cli in (["docker", "compose"], ["docker-compose"]):
        r = subprocess.run([*cli, "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(cli)} config -q: {r.stderr}"


def test_more_nodes_through_the_generated_override(tmp_path: Path) -> None:
    """TINYKUBE_NODES=3: the override scripts/compose-up.sh writes merges as Compose reads it — a third
    node like the others with its own credentials, and the PKI step making three bundles."""
    subprocess.run(["bash", "scripts/compose-plugin.sh"], cwd=ROOT, check=True, timeout=300)
    override = tmp_path / "override.yml"
    override.write_text(
        subprocess.run(
            [sys.executable, "-m", "tinykube.compose", "nodes-override", "3"],
            cwd=ROOT,
            input=(ROOT / "docker-compose.yml").read_text(),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
    r = subprocess.run(
        ["docker", "compose", *files, "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    services = json.loads(r.stdout)["services"]
    assert sorted(s for s in services if s.startswith("node-")) == ["node-1", "node-2", "node-3"]
    assert "--nodes=node-1,node-2,node-3" in services["pki"]["command"]
    assert {v["target"] for v in services["pki"]["volumes"]} >= {"/nodes/node-1", "/nodes/node-2", "/nodes/node-3"}
    assert [(v["source"], v["target"]) for v in services["node-3"]["volumes"]] == [("node-3-pki", "/pki")]
    assert services["node-3"]["environment"]["NODE_NAME"] == "node-3"
    assert services["node-3"]["cap_add"] == services["node-2"]["cap_add"]
