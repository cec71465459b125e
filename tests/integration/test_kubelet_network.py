"""The kubelet's side of Services and DNS, with a real kubelet process, a real apiserver and the real kubectl:
the node's own address (InternalIP, kubelet server, logs/exec through the apiserver), pods' /etc/resolv.conf
and /etc/hosts, Service environment variables, and nodeInfo as the official Python client reads it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from client.rest import ApiClient
from kubelet.simulated import SimulatedNodes
from tests.integration.rsdeploy_kit import kubectl
from tests.integration.test_kubelet_kit import KubeletProc, create, eventually, get_pod, start_kubelet, stop_kubelet

# a node address of this run (other clusters on this machine use 127.100.k.i)
NODE_IP = f"127.232.{random.randint(0, 255)}.{random.randint(1, 254)}"
CLUSTER_DNS = f"127.233.{random.randint(0, 255)}.10"
RUN = uuid.uuid4().hex[:8]
HOST_RESOLV_CONF = "# the node's resolver\nnameserver 192.0.2.53\nsearch corp.example.\noptions attempts:2\n"
LOCALHOST = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


@pytest.fixture(scope="module")
def kubelet(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProc]:
    """A kubelet on its own node address, with a cluster DNS server and a known host resolv.conf."""
    tmp = tmp_path_factory.mktemp("kubeletnet")
    resolv = tmp / "host-resolv.conf"
    resolv.write_text(HOST_RESOLV_CONF)
    k = start_kubelet(
        apiserver,
        tmp,
        "--node-ip",
        NODE_IP,
        "--cluster-dns",
        CLUSTER_DNS,
        "--resolv-conf",
        str(resolv),
        "--node-labels",
        f"run={RUN}",
    )
    yield k
    stop_kubelet(k)


@pytest.fixture
async def pods(api: httpx.AsyncClient, ns: str) -> AsyncIterator[list[str]]:
    """Names of the pods a test creates; deleted and waited for afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        await api.delete(f"/api/v1/namespaces/{ns}/pods/{name}", params={"gracePeriodSeconds": "0"})
    for name in names:
        await eventually(lambda n=name: _gone(api, ns, n), 30, f"pod {name} deleted")


async def _gone(api: httpx.AsyncClient, ns: str, name: str) -> bool:
    return await get_pod(api, ns, name) is None


def pod(name: str, command: str, **spec: Any) -> dict[str, Any]:
    """A one-container pod running `sh -c command`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", command]}],
            **spec,
        },
    }


async def run_pods(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc, *bodies: dict[str, Any]
) -> None:
    """Create the pods on the kubelet's node and wait until each has a running or finished container."""
    for body in bodies:
        body["spec"]["nodeName"] = kubelet.node
        await create(api, ns, "pods", body)
        pods.append(body["metadata"]["name"])

    async def started(name: str) -> bool:
        p = await get_pod(api, ns, name) or {}
        return (p.get("status") or {}).get("phase") in ("Running", "Succeeded")

    for body in bodies:
        name = body["metadata"]["name"]
        await eventually(lambda n=name: started(n), 30, f"pod {name} started")


async def logs(server: str, ns: str, name: str) -> str:
    """`kubectl logs` of the pod, once the container has printed its end marker."""

    async def done() -> str:
        code, out, err = await kubectl(server, "-n", ns, "logs", name)
        assert code == 0, err
        return out if out.endswith("END\n") else ""

    return (await eventually(done, 20, f"logs of {name}")).removesuffix("END\n")


async def pod_ip(api: httpx.AsyncClient, ns: str, name: str) -> str:
    return ((await get_pod(api, ns, name)) or {})["status"]["podIP"]


# --- the node's address --------------------------------------------------------------------------------


async def test_node_ip_is_internal_ip_and_kubelet_server_address(
    api: httpx.AsyncClient, apiserver: str, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    node = (await api.get(f"/api/v1/nodes/{kubelet.node}")).json()
    assert node["status"]["addresses"] == [
        {"type": "InternalIP", "address": NODE_IP},
        {"type": "Hostname", "address": kubelet.node},
    ]
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": kubelet.port}}
    # the server listens on the node address only
    with socket.create_connection((NODE_IP, kubelet.port), timeout=2):
        pass
    with pytest.raises(OSError) as refused:
        socket.create_connection(("127.0.0.1", kubelet.port), timeout=2).close()
    assert refused.value.errno == errno.ECONNREFUSED

    await run_pods(api, ns, pods, kubelet, pod("talk", "echo hello from $HOSTNAME; echo END; sleep 600"))
    p = await get_pod(api, ns, "talk") or {}
    assert p["status"]["hostIP"] == NODE_IP and p["status"]["hostIPs"] == [{"ip": NODE_IP}]
    assert await logs(apiserver, ns, "talk") == "hello from talk\n"
    code, out, err = await kubectl(apiserver, "-n", ns, "exec", "talk", "--", "sh", "-c", "echo $((6 * 7))")
    assert (code, out) == (0, "42\n"), err


# --- /etc/resolv.conf and /etc/hosts -------------------------------------------------------------------

SHOW = "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo END; sleep 600"


async def test_pod_dns_files(
    api: httpx.AsyncClient, apiserver: str, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    aliases = [
        {"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]},
        {"ip": "10.1.2.4", "hostnames": ["baz.remote"]},
    ]
    await run_pods(
        api,
        ns,
        pods,
        kubelet,
        pod("cluster-first", SHOW),
        pod("default", SHOW, dnsPolicy="Default"),
        pod(
            "none",
            SHOW,
            dnsPolicy="None",
            dnsConfig={
                "nameservers": ["192.0.2.1"],
                "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            },
        ),
        pod(
            "named",
            SHOW,
            hostname="db-0",
            subdomain="db",
            hostAliases=aliases,
            dnsConfig={"searches": ["extra.example"], "options": [{"name": "ndots", "value": "3"}]},
        ),
        pod("host-net", SHOW, hostNetwork=True, hostAliases=aliases[:1]),
    )
    cluster_search = f"search {ns}.svc.cluster.local svc.cluster.local cluster.local corp.example"

    resolv, hosts = (await logs(apiserver, ns, "cluster-first")).split("---\n")
    assert resolv == f"{cluster_search}\nnameserver {CLUSTER_DNS}\noptions ndots:5\n"
    assert hosts == LOCALHOST + f"{await pod_ip(api, ns, 'cluster-first')}\tcluster-first\n"

    resolv, _ = (await logs(apiserver, ns, "default")).split("---\n")
    assert resolv == "search corp.example\nnameserver 192.0.2.53\noptions attempts:2\n"

    resolv, _ = (await logs(apiserver, ns, "none")).split("---\n")
    assert resolv == (
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 192.0.2.1\noptions ndots:2 edns0\n"
    )

    resolv, hosts = (await logs(apiserver, ns, "named")).split("---\n")
    assert resolv == f"{cluster_search} extra.example\nnameserver {CLUSTER_DNS}\noptions ndots:3\n"
    assert hosts == LOCALHOST + (
        f"{await pod_ip(api, ns, 'named')}\tdb-0.db.{ns}.svc.cluster.local\tdb-0\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n10.1.2.4\tbaz.remote\n"
    )

    # hostNetwork: ClusterFirst means Default; /etc/hosts is the node's under the kubelet's header
    resolv, hosts = (await logs(apiserver, ns, "host-net")).split("---\n")
    assert resolv == "search corp.example\nnameserver 192.0.2.53\noptions attempts:2\n"
    node_hosts = await asyncio.to_thread(Path("/etc/hosts").read_text)
    assert hosts == (
        "# Kubernetes-managed hosts file (host network).\n"
        + node_hosts
        + "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"
    )
    assert "foo.local" not in node_hosts  # the node's own file is untouched


async def test_volumes_at_etc(
    api: httpx.AsyncClient, apiserver: str, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    await create(api, ns, "configmaps", {"metadata": {"name": "hosts"}, "data": {"hosts": "192.0.2.9\tmine\n"}})
    etc_dir = pod("etc-dir", SHOW, volumes=[{"name": "etc", "emptyDir": {}}])
    etc_dir["spec"]["containers"][0]["volumeMounts"] = [{"name": "etc", "mountPath": "/etc"}]
    own = pod("own-hosts", SHOW, volumes=[{"name": "h", "configMap": {"name": "hosts"}}])
    own["spec"]["containers"][0]["volumeMounts"] = [{"name": "h", "mountPath": "/etc/hosts", "subPath": "hosts"}]
    await run_pods(api, ns, pods, kubelet, etc_dir, own)
    # a volume over /etc still gets the kubelet's files on top
    resolv, hosts = (await logs(apiserver, ns, "etc-dir")).split("---\n")
    assert resolv.startswith(f"search {ns}.svc.cluster.local ") and f"nameserver {CLUSTER_DNS}\n" in resolv
    assert hosts == LOCALHOST + f"{await pod_ip(api, ns, 'etc-dir')}\tetc-dir\n"
    # a volume at /etc/hosts itself wins over the kubelet's file (as upstream)
    resolv, hosts = (await logs(apiserver, ns, "own-hosts")).split("---\n")
    assert hosts == "192.0.2.9\tmine\n"
    assert f"nameserver {CLUSTER_DNS}\n" in resolv


async def test_getent_resolves_host_alias_and_own_name(
    api: httpx.AsyncClient, apiserver: str, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    aliases = [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]
    await run_pods(api, ns, pods, kubelet, pod("resolver", "sleep 600", hostAliases=aliases, subdomain="sub"))

    async def getent(name: str) -> list[str]:
        code, out, err = await kubectl(apiserver, "-n", ns, "exec", "resolver", "--", "getent", "hosts", name)
        assert code == 0, err
        return out.split()

    assert await getent("bar.local") == ["10.1.2.3", "foo.local", "bar.local"]
    ip = await pod_ip(api, ns, "resolver")
    assert await getent("resolver") == [ip, f"resolver.sub.{ns}.svc.cluster.local", "resolver"]
    code, out, err = await kubectl(apiserver, "-n", ns, "exec", "resolver", "--", "cat", "/etc/resolv.conf")
    assert code == 0, err
    assert f"nameserver {CLUSTER_DNS}\n" in out


# --- Service environment variables ---------------------------------------------------------------------


async def test_service_env_vars(
    api: httpx.AsyncClient, apiserver: str, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    kube = (await api.get("/api/v1/namespaces/default/services/kubernetes")).json()["spec"]["clusterIP"]
    svc = await create(
        api,
        ns,
        "services",
        {
            "metadata": {"name": "php-svc"},
            "spec": {
                "selector": {"app": "php"},
                "ports": [{"name": "fpm", "port": 9000}, {"name": "metrics", "port": 9253, "protocol": "UDP"}],
            },
        },
    )
    ip = svc["spec"]["clusterIP"]
    await create(
        api, ns, "services", {"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}
    )
    show = "env | sort; echo END; sleep 600"
    await run_pods(
        api,
        ns,
        pods,
        kubelet,
        pod("linked", show),
        pod("unlinked", show, enableServiceLinks=False),
    )
    linked = dict(line.split("=", 1) for line in (await logs(apiserver, ns, "linked")).splitlines())
    assert {k: v for k, v in linked.items() if k.startswith("PHP_SVC_")} == {
        "PHP_SVC_SERVICE_HOST": ip,
        "PHP_SVC_SERVICE_PORT": "9000",
        "PHP_SVC_SERVICE_PORT_FPM": "9000",
        "PHP_SVC_SERVICE_PORT_METRICS": "9253",
        "PHP_SVC_PORT": f"tcp://{ip}:9000",
        "PHP_SVC_PORT_9000_TCP": f"tcp://{ip}:9000",
        "PHP_SVC_PORT_9000_TCP_PROTO": "tcp",
        "PHP_SVC_PORT_9000_TCP_PORT": "9000",
        "PHP_SVC_PORT_9000_TCP_ADDR": ip,
        "PHP_SVC_PORT_9253_UDP": f"udp://{ip}:9253",
        "PHP_SVC_PORT_9253_UDP_PROTO": "udp",
        "PHP_SVC_PORT_9253_UDP_PORT": "9253",
        "PHP_SVC_PORT_9253_UDP_ADDR": ip,
    }
    assert not any(k.startswith("DB_") for k in linked)  # headless: nothing
    assert linked["KUBERNETES_SERVICE_HOST"] == kube and linked["KUBERNETES_SERVICE_PORT"] == "443"
    assert linked["KUBERNETES_PORT"] == f"tcp://{kube}:443"

    unlinked = dict(line.split("=", 1) for line in (await logs(apiserver, ns, "unlinked")).splitlines())
    assert not any(k.startswith("PHP_SVC_") for k in unlinked)
    assert unlinked["KUBERNETES_SERVICE_HOST"] == kube and unlinked["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"


# --- nodeInfo through the official client ----------------------------------------------------------------


async def test_official_client_lists_real_and_simulated_nodes(apiserver: str, kubelet: KubeletProc) -> None:
    prefix = f"simnet-{RUN}"
    async with ApiClient(apiserver) as client:
        sim = SimulatedNodes(client, prefix, 2, lease_duration=8)
        task = asyncio.create_task(sim.run())
        try:
            await asyncio.wait_for(sim.registered.wait(), 10)
            real, simulated = await asyncio.to_thread(_list_nodes, apiserver)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for name in sim.names:
                await client.delete("nodes", name)
    assert [n.metadata.name for n in real] == [kubelet.node]
    info = real[0].status.node_info
    assert info.kube_proxy_version == "" and info.kubelet_version == "v1.35.0-tinykube"
    assert info.machine_id and info.system_uuid and info.boot_id and info.kernel_version and info.os_image
    assert info.operating_system == "linux" and info.architecture
    assert [(a.type, a.address) for a in real[0].status.addresses] == [
        ("InternalIP", NODE_IP),
        ("Hostname", kubelet.node),
    ]
    assert sorted(n.metadata.name for n in simulated) == sorted(sim.names)
    for n in simulated:
        assert n.status.node_info.kube_proxy_version == ""
        assert n.status.node_info.container_runtime_version == "simulated://tinykube"
        internal = [a.address for a in n.status.addresses if a.type == "InternalIP"]
        assert internal and internal[0].startswith("127.128.")
        assert n.status.daemon_endpoints.kubelet_endpoint.port == 10250


def _list_nodes(server: str) -> tuple[list[Any], list[Any]]:
    """list_node through the official client's typed API (its models validate every required field)."""
    config = kubernetes.client.Configuration()
    config.host = server
    with kubernetes.client.ApiClient(config) as client:
        core = kubernetes.client.CoreV1Api(client)
        real = core.list_node(label_selector=f"run={RUN}", _request_timeout=10).items
        simulated = [n for n in core.list_node(label_selector="type=simulated", _request_timeout=10).items]
        return real, [n for n in simulated if n.metadata.name.startswith(f"simnet-{RUN}")]
