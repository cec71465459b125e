"""Helpers the docker-compose.yml services run inside the tinykube image.

`python -m tinykube.compose pki`: the one-shot PKI step. It makes (or keeps: tinykube/pki.py only
renews what is missing or no longer right) the cluster CA, the apiserver's serving certificate, the
ServiceAccount keys, every component's client certificate and kubeconfig (server
https://apiserver:6443, the apiserver's service name on the compose network) in the PKI volume,
each node's own bundle (its kubelet's and kube-proxy's kubeconfigs, the kubelet's serving
certificate, the CA certificate: no private key of the cluster's) in a volume of that node's,
and the admin kubeconfig (server https://127.0.0.1:<port>, the published port) in the
bind-mounted output folder, owned by whoever owns that folder, as k3s's compose file does.

`python -m tinykube.compose address`: the container's address on the compose network (what
`hostname -i` prints, without needing `hostname`).

`python -m tinykube.compose pod-cidr --kubeconfig K --node-name N` (in a node's container, before its
kubelet starts): the Node's podCIDR, as the controller-manager's nodeipam controller allocates it.
It registers the Node first when there is none (the kubelet then adopts it), as upstream's kubelet
registers and then waits for the podCIDR.

`python -m tinykube.compose wait-nodes N` (in the apiserver's container): wait until N Nodes are
Ready, asking the apiserver's insecure port there.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinykube.pki import ClusterPKI

__all__ = ["main", "make_pki"]

# the Service range's first address: the `kubernetes` Service in front of the apiserver
KUBERNETES_SERVICE_IP = "10.96.0.1"


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def write_node_bundle(pki: ClusterPKI, node: str, dest: Path, server: str) -> None:
    """What node `node`'s container needs, and nothing more (its pods see the node's files): ca.crt, the
    kubelet's serving certificate and key, kubelet.kubeconfig and kube-proxy.kubeconfig."""
    from tinykube.cluster import write_kubeconfig

    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)
    (dest / "ca.crt").write_bytes(pki.ca.cert_pem())
    serving = pki.serving(f"kubelet-{node}")
    (dest / "kubelet.crt").write_bytes(serving.cert_pem())
    _write_private(dest / "kubelet.key", serving.key_pem())
    kubelet = pki.client(f"kubelet-{node}")
    write_kubeconfig(dest / "kubelet.kubeconfig", server, ca=pki.ca.cert, client=kubelet, user=f"system:node:{node}")
    proxy = pki.client("kube-proxy")
    write_kubeconfig(dest / "kube-proxy.kubeconfig", server, ca=pki.ca.cert, client=proxy, user="system:kube-proxy")


def make_pki(
    pki_dir: Path,
    output_dir: Path,
    nodes: list[str],
    *,
    nodes_dir: Path = Path("/nodes"),
    apiserver_host: str = "apiserver",
    published_port: int = 6443,
    cluster_domain: str = "cluster.local",
) -> Path:
    """Make the cluster PKI and kubeconfigs; returns the admin kubeconfig's path."""
    # imported here: `address` and `wait-nodes` need none of it (and start faster without)
    from tinykube.cluster import write_kubeconfig
    from tinykube.pki import APISERVER_KUBELET_CLIENT, ClusterPKI, client_identities, kubelet_serving

    pki = ClusterPKI(pki_dir)
    clients = [*client_identities(nodes), APISERVER_KUBELET_CLIENT]
    pki.ensure(
        ips=["127.0.0.1", KUBERNETES_SERVICE_IP],
        dns_names=[
            "localhost",
            apiserver_host,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{cluster_domain}",
        ],
        clients=clients,
        # a node's address is the container's, known only when it starts: the apiserver dials kubelets with
        # its client certificate but does not verify theirs (kubeadm's default: no --kubelet-certificate-authority)
        servers=[kubelet_serving(n, []) for n in nodes],
    )
    inside = f"https://{apiserver_host}:6443"
    for ident in clients:
        if ident.file not in ("admin", APISERVER_KUBELET_CLIENT.file):
            path = pki_dir / "kubeconfigs" / f"{ident.file}.kubeconfig"
            write_kubeconfig(path, inside, ca=pki.ca.cert, client=pki.client(ident.file), user=ident.user)
    for node in nodes:
        write_node_bundle(pki, node, nodes_dir / node, inside)
    admin = output_dir / "kubeconfig"
    write_kubeconfig(
        admin, f"https://127.0.0.1:{published_port}", ca=pki.ca.cert, client=pki.client("admin"), user="admin"
    )
    st = output_dir.stat()
    os.chown(admin, st.st_uid, st.st_gid)  # the user's checkout: kubectl runs as that user
    return admin


def own_address() -> str:
    """This container's IPv4 address: its hostname as /etc/hosts (written by Docker) resolves it."""
    return socket.gethostbyname(socket.gethostname())


def _epoch(timestamp: str) -> float:
    """An RFC 3339 time (`2026-01-02T03:04:05Z`) as seconds since the epoch (0 when it is not one)."""
    try:
        return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return 0.0


def _ready_since(node: dict, since: float) -> bool:
    """Whether the node's Ready condition is True and heartbeated at or after `since` (whole seconds)."""
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True" and _epoch(c.get("lastHeartbeatTime", "")) >= int(since)
    return False


def ready_nodes(server: str = "http://127.0.0.1:8080", since: float = 0.0) -> list[str]:
    """Names of the Nodes whose Ready condition is True, heartbeated since `since` (a kept Node's old status
    says nothing about its kubelet now)."""
    try:
        with urllib.request.urlopen(f"{server}/api/v1/nodes", timeout=3) as r:
            items = json.load(r).get("items") or []
    except (OSError, ValueError):
        return []
    return [n["metadata"]["name"] for n in items if _ready_since(n, since)]


def wait_nodes(count: int, timeout: float, since: float = 0.0) -> int:
    """0 once `count` Nodes are Ready (heartbeated since `since`), 1 after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ready = ready_nodes(since=since)
        if len(ready) >= count:
            print(f"tinykube: nodes Ready: {', '.join(sorted(ready))}", file=sys.stderr)
            return 0
        if time.monotonic() > deadline:
            print(f"tinykube: {len(ready)}/{count} nodes Ready after {timeout:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.2)


async def _await_pod_cidr(kubeconfig: str, node_name: str, timeout: float) -> str:
    from apimachinery.errors import StatusError
    from client.config import load_kubeconfig
    from client.rest import ApiClient

    async with ApiClient(load_kubeconfig(kubeconfig)) as api:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    node = await api.get("nodes", node_name)
                except StatusError as e:
                    if e.code != 404:
                        raise
                    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}}
                    node = await api.create("nodes", body)
                if cidr := (node.get("spec") or {}).get("podCIDR"):
                    return cidr
                await asyncio.sleep(0.2)


def pod_cidr(kubeconfig: str, node_name: str, timeout: float) -> int:
    """Print the Node's podCIDR once it has one (registering the Node when missing); 1 after `timeout`."""
    try:
        print(asyncio.run(_await_pod_cidr(kubeconfig, node_name, timeout)))
    except TimeoutError:
        print(f"tinykube: node {node_name} has no podCIDR after {timeout:.0f}s", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand: `pki`, `address`, `pod-cidr` or `wait-nodes`."""
    parser = argparse.ArgumentParser(prog="python -m tinykube.compose", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pki", help="make the cluster PKI and kubeconfigs")
    p.add_argument("--pki-dir", type=Path, default=Path("/pki"))
    p.add_argument("--output-dir", type=Path, default=Path("/output"))
    p.add_argument("--nodes-dir", type=Path, default=Path("/nodes"), help="each node's bundle goes to DIR/<node>")
    p.add_argument("--nodes", default="node-1,node-2", help="comma-separated node names")
    p.add_argument("--apiserver-host", default="apiserver")
    p.add_argument("--published-port", type=int, default=6443)
    sub.add_parser("address", help="print this container's address")
    c = sub.add_parser("pod-cidr", help="print the Node's podCIDR once allocated")
    c.add_argument("--kubeconfig", required=True)
    c.add_argument("--node-name", required=True)
    c.add_argument("--timeout", type=float, default=120.0)
    w = sub.add_parser("wait-nodes", help="wait until N Nodes are Ready")
    w.add_argument("count", type=int)
    w.add_argument("--timeout", type=float, default=120.0)
    w.add_argument("--since", type=float, default=0.0, help="count only heartbeats at or after this epoch time")
    args = parser.parse_args(argv)
    if args.cmd == "pod-cidr":
        return pod_cidr(args.kubeconfig, args.node_name, args.timeout)
    if args.cmd == "address":
        print(own_address())
        return 0
    if args.cmd == "wait-nodes":
        return wait_nodes(args.count, args.timeout, args.since)
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    admin = make_pki(
        args.pki_dir,
        args.output_dir,
        nodes,
        nodes_dir=args.nodes_dir,
        apiserver_host=args.apiserver_host,
        published_port=args.published_port,
    )
    print(f"tinykube: admin kubeconfig written to {admin}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
