"""Service ClusterIP and NodePort allocation in etcd: IPAddress objects, per-port keys, release, restarts."""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apiserver.storage import EtcdStorage, KeyNotFound
from tinykube.procs import Process, start_apiserver

SERVICE_RANGE = ipaddress.ip_network("127.96.0.0/16")
IPADDRESSES = "/apis/networking.k8s.io/v1/ipaddresses"


def svc(name: str, **spec: Any) -> dict[str, Any]:
    """A Service with one TCP port (or the given ports)."""
    body = {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def services(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/services" + (f"/{name}" if name else "")


async def held_ips(api: httpx.AsyncClient) -> set[str]:
    """Every cluster IP some IPAddress holds."""
    r = await api.get(IPADDRESSES)
    assert r.status_code == 200, r.text
    return {i["metadata"]["name"] for i in r.json()["items"]}


async def held_node_ports(api: httpx.AsyncClient) -> set[int]:
    """Every node port some Service in the cluster holds."""
    r = await api.get("/api/v1/services")
    assert r.status_code == 200, r.text
    out: set[int] = set()
    for s in r.json()["items"]:
        out.update(p["nodePort"] for p in s["spec"].get("ports") or [] if p.get("nodePort"))
        if s["spec"].get("healthCheckNodePort"):
            out.add(s["spec"]["healthCheckNodePort"])
    return out


async def free_ip(api: httpx.AsyncClient) -> str:
    """An address of the static band (the first 256) that nothing holds."""
    taken = await held_ips(api)
    candidates = [str(SERVICE_RANGE.network_address + i) for i in range(20, 250)]
    return random.choice([ip for ip in candidates if ip not in taken])


async def free_node_port(api: httpx.AsyncClient) -> int:
    """A node port of the lower band (30000-30085, kept for requests) that no Service holds."""
    return (await free_node_ports(api, 1))[0]


async def free_node_ports(api: httpx.AsyncClient, n: int) -> list[int]:
    """n different node ports of the lower band that no Service holds."""
    taken = await held_node_ports(api)
    return random.sample([p for p in range(30000, 30086) if p not in taken], n)


async def test_concurrent_creates_of_one_cluster_ip_get_one_201(api: httpx.AsyncClient, ns: str) -> None:
    ip = await free_ip(api)
    bodies = [svc(f"race-{i}", clusterIP=ip) for i in range(20)]
    answers = await asyncio.gather(*(api.post(services(ns), json=b) for b in bodies))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [422] * 19, [r.text for r in answers if r.status_code not in (201, 422)]
    winner = next(r.json() for r in answers if r.status_code == 201)
    for r in answers:
        if r.status_code == 422:
            status = r.json()
            name = status["details"]["name"]
            assert status["reason"] == "Invalid"
            assert status["message"] == (
                f'Service "{name}" is invalid: spec.clusterIPs: Invalid value: ["{ip}"]: '
                f"failed to allocate IP {ip}: provided IP is already allocated"
            )
            assert status["details"]["causes"][0]["field"] == "spec.clusterIPs"
    # the losers left nothing behind: one IPAddress, held by the winner; only the winner exists
    address = (await api.get(f"{IPADDRESSES}/{ip}")).json()
    assert address["spec"]["parentRef"] == {
        "group": "",
        "resource": "services",
        "namespace": ns,
        "name": winner["metadata"]["name"],
    }
    listed = (await api.get(services(ns))).json()["items"]
    assert [s["metadata"]["name"] for s in listed] == [winner["metadata"]["name"]]


async def test_fifty_concurrent_node_port_services_get_distinct_ips_and_ports(api: httpx.AsyncClient, ns: str) -> None:
    bodies = [
        svc(f"np-{i}", type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81}]) for i in range(50)
    ]
    answers = await asyncio.gather(*(api.post(services(ns), json=b) for b in bodies))
    assert [r.status_code for r in answers] == [201] * 50, [r.text for r in answers if r.status_code != 201]
    specs = [r.json()["spec"] for r in answers]
    ips = [s["clusterIP"] for s in specs]
    ports = [p["nodePort"] for s in specs for p in s["ports"]]
    assert len(set(ips)) == 50 and all(ipaddress.ip_address(ip) in SERVICE_RANGE for ip in ips)
    assert len(set(ports)) == 100 and all(30000 <= p <= 32767 for p in ports)
    # dynamic allocations come from the upper bands, leaving the lower ones to explicit requests
    assert all(int(ipaddress.ip_address(ip)) - int(SERVICE_RANGE.network_address) > 256 for ip in ips)
    assert all(p >= 30086 for p in ports)
    # each IP is an IPAddress naming its Service
    for r in answers:
        name, ip = r.json()["metadata"]["name"], r.json()["spec"]["clusterIP"]
        ref = (await api.get(f"{IPADDRESSES}/{ip}")).json()["spec"]["parentRef"]
        assert ref == {"group": "", "resource": "services", "namespace": ns, "name": name}
    # counted as upstream's allocator metrics count them
    metrics = (await api.get("/metrics")).text
    ips_line = 'kube_apiserver_clusterip_allocator_allocation_total{cidr="127.96.0.0/16",scope="dynamic"}'
    ports_line = 'kube_apiserver_nodeport_allocator_allocation_total{scope="dynamic"}'
    counted = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if line.startswith("kube_")}
    assert counted[ips_line] >= 50 and counted[ports_line] >= 100
    # and each node port is taken: asking for one explicitly fails
    r = await api.post(services(ns), json=svc("again", type="NodePort", ports=[{"port": 80, "nodePort": ports[7]}]))
    assert r.status_code == 422
    assert r.json()["message"] == (
        f'Service "again" is invalid: spec.ports[0].nodePort: Invalid value: {ports[7]}: '
        "provided port is already allocated"
    )


async def test_ip_and_port_released_on_delete_and_reusable(api: httpx.AsyncClient, ns: str) -> None:
    ip, port = await free_ip(api), await free_node_port(api)
    body = svc("first", type="NodePort", clusterIP=ip, ports=[{"port": 80, "nodePort": port}])
    r = await api.post(services(ns), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["clusterIPs"] == [ip] and r.json()["spec"]["ports"][0]["nodePort"] == port
    taken = await api.post(services(ns), json={**body, "metadata": {"name": "second"}})
    assert taken.status_code == 422 and "provided IP is already allocated" in taken.json()["message"]

    assert (await api.delete(services(ns, "first"))).status_code == 200
    assert (await api.get(f"{IPADDRESSES}/{ip}")).status_code == 404
    again = await api.post(services(ns), json={**body, "metadata": {"name": "second"}})
    assert again.status_code == 201, again.text
    assert again.json()["spec"]["clusterIP"] == ip and again.json()["spec"]["ports"][0]["nodePort"] == port
    ref = (await api.get(f"{IPADDRESSES}/{ip}")).json()["spec"]["parentRef"]
    assert ref["name"] == "second"


async def test_failed_creates_roll_their_allocations_back(api: httpx.AsyncClient, ns: str) -> None:
    ip, port = await free_ip(api), await free_node_port(api)
    assert (await api.post(services(ns), json=svc("taken"))).status_code == 201
    # the name exists: the IP and port this create allocated are given back
    dup = svc("taken", type="NodePort", clusterIP=ip, ports=[{"port": 80, "nodePort": port}])
    r = await api.post(services(ns), json=dup)
    assert r.status_code == 409 and r.json()["reason"] == "AlreadyExists"
    assert (await api.get(f"{IPADDRESSES}/{ip}")).status_code == 404
    # the node port is refused after the IP was allocated: the IP is given back too
    blocker = await api.post(services(ns), json=svc("blocker", type="NodePort", ports=[{"port": 80, "nodePort": port}]))
    assert blocker.status_code == 201, blocker.text
    r = await api.post(
        services(ns), json=svc("late", type="NodePort", clusterIP=ip, ports=[{"port": 1, "nodePort": port}])
    )
    assert r.status_code == 422 and "provided port is already allocated" in r.json()["message"]
    assert (await api.get(f"{IPADDRESSES}/{ip}")).status_code == 404
    # a dry run allocates nothing
    r = await api.post(services(ns), params={"dryRun": "All"}, json=svc("dry", clusterIP=ip))
    assert r.status_code == 201 and r.json()["spec"]["clusterIP"] == ip
    assert (await api.get(f"{IPADDRESSES}/{ip}")).status_code == 404
    r = await api.post(services(ns), json=svc("wet", clusterIP=ip))
    assert r.status_code == 201, r.text


async def test_out_of_range_requests_are_refused(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(services(ns), json=svc("far", clusterIP="10.1.2.3"))
    assert r.status_code == 422
    assert r.json()["message"] == (
        'Service "far" is invalid: spec.clusterIPs: Invalid value: ["10.1.2.3"]: failed to allocate IP 10.1.2.3: '
        "the provided network does not match the current range"
    )
    r = await api.post(services(ns), json=svc("low", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert r.status_code == 422
    assert r.json()["message"] == (
        'Service "low" is invalid: spec.ports[0].nodePort: Invalid value: 80: '
        "provided port is not in the valid range. The range of valid ports is 30000-32767"
    )
    r = await api.post(services(ns), json=svc("bad", clusterIP="300.1.1.1"))
    assert r.status_code == 422
    assert 'spec.clusterIPs[0]: Invalid value: "300.1.1.1": must be a valid IP address' in r.json()["message"]


async def test_type_changes_release_and_allocate(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(services(ns), json=svc("morph", type="NodePort"))
    assert r.status_code == 201, r.text
    ip, port = r.json()["spec"]["clusterIP"], r.json()["spec"]["ports"][0]["nodePort"]
    merge = {"content-type": "application/merge-patch+json"}

    # NodePort -> ClusterIP: the node port is dropped and freed, the IP kept
    r = await api.patch(services(ns, "morph"), headers=merge, content=b'{"spec": {"type": "ClusterIP"}}')
    assert r.status_code == 200, r.text
    assert "nodePort" not in r.json()["spec"]["ports"][0] and r.json()["spec"]["clusterIP"] == ip
    other = await api.post(
        services(ns), json=svc("port-taker", type="NodePort", ports=[{"port": 80, "nodePort": port}])
    )
    assert other.status_code == 201, other.text

    # ClusterIP -> ExternalName: the cluster IP is freed
    body = b'{"spec": {"type": "ExternalName", "externalName": "example.com", "selector": null}}'
    r = await api.patch(services(ns, "morph"), headers=merge, content=body)
    assert r.status_code == 200, r.text
    assert "clusterIP" not in r.json()["spec"] and "clusterIPs" not in r.json()["spec"]
    assert (await api.get(f"{IPADDRESSES}/{ip}")).status_code == 404

    # ExternalName -> ClusterIP: a new IP is allocated and recorded
    body = b'{"spec": {"type": "ClusterIP", "externalName": null}}'
    r = await api.patch(services(ns, "morph"), headers=merge, content=body)
    assert r.status_code == 200, r.text
    new_ip = r.json()["spec"]["clusterIP"]
    assert ipaddress.ip_address(new_ip) in SERVICE_RANGE
    assert (await api.get(f"{IPADDRESSES}/{new_ip}")).json()["spec"]["parentRef"]["name"] == "morph"

    # the cluster IP cannot change once set
    r = await api.patch(services(ns, "morph"), headers=merge, content=b'{"spec": {"clusterIP": "127.96.0.9"}}')
    assert r.status_code == 422
    assert 'spec.clusterIPs[0]: Invalid value: ["127.96.0.9"]: may not change once set' in r.json()["message"]

    # ClusterIP -> NodePort allocates a port; removing the port frees it
    body = b'{"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}'
    r = await api.patch(services(ns, "morph"), headers=merge, content=body)
    assert r.status_code == 200, r.text
    kept, dropped = (p["nodePort"] for p in r.json()["spec"]["ports"])
    r = await api.patch(
        services(ns, "morph"), headers=merge, content=b'{"spec": {"ports": [{"name": "a", "port": 80}]}}'
    )
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["ports"][0]["nodePort"] == kept  # left out of the update, kept by name
    reuse = await api.post(
        services(ns), json=svc("dropped-taker", type="NodePort", ports=[{"port": 1, "nodePort": dropped}])
    )
    assert reuse.status_code == 201, reuse.text


async def test_kubernetes_service_cidr_and_ip_address(api: httpx.AsyncClient) -> None:
    cidr = (await api.get("/apis/networking.k8s.io/v1/servicecidrs/kubernetes")).json()
    assert cidr["spec"]["cidrs"] == ["127.96.0.0/16"]
    ready = cidr["status"]["conditions"][0]
    assert ready["type"] == "Ready" and ready["status"] == "True"
    assert ready["message"] == "Kubernetes default Service CIDR is ready"
    address = (await api.get(f"{IPADDRESSES}/127.96.0.1")).json()
    assert address["spec"]["parentRef"] == {
        "group": "",
        "resource": "services",
        "namespace": "default",
        "name": "kubernetes",
    }
    assert address["metadata"]["labels"] == {
        "ipaddress.kubernetes.io/ip-family": "IPv4",
        "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
    }


async def test_ip_address_and_service_cidr_validation(api: httpx.AsyncClient) -> None:
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress", "metadata": {"name": "not-an-ip"}, "spec": {}}
    r = await api.post(IPADDRESSES, json=bad)
    assert r.status_code == 422
    assert r.json()["message"] == (
        'IPAddress.networking.k8s.io "not-an-ip" is invalid: metadata.name: Invalid value: "not-an-ip": '
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    )
    ip = await free_ip(api)
    r = await api.post(IPADDRESSES, json={**bad, "metadata": {"name": ip}})
    assert r.status_code == 422
    assert r.json()["message"] == f'IPAddress.networking.k8s.io "{ip}" is invalid: spec.parentRef: Required value'
    r = await api.post(IPADDRESSES, json={**bad, "metadata": {"name": "127.096.0.1"}})
    assert r.status_code == 422 and "must be a valid IP address" in r.json()["message"]
    ref = {"group": "", "resource": "services", "namespace": "default", "name": "manual"}
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {"name": ip},
        "spec": {"parentRef": ref},
    }
    assert (await api.post(IPADDRESSES, json=body)).status_code == 201
    try:
        merge = {"content-type": "application/merge-patch+json"}
        r = await api.patch(f"{IPADDRESSES}/{ip}", headers=merge, content=b'{"spec": {"parentRef": {"name": "x"}}}')
        assert r.status_code == 422 and "spec.parentRef: Invalid value: " in r.json()["message"]
        assert r.json()["message"].endswith("field is immutable")
    finally:
        await api.delete(f"{IPADDRESSES}/{ip}")
    cidr = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": "x"},
        "spec": {"cidrs": ["10.0.0.1/24"]},
    }
    r = await api.post("/apis/networking.k8s.io/v1/servicecidrs", json=cidr)
    assert r.status_code == 422
    assert (
        'spec.cidrs[0]: Invalid value: "10.0.0.1/24": must be in canonical form ("10.0.0.0/24")' in r.json()["message"]
    )


# --- restarts --------------------------------------------------------------------------------

_RANGE = (31990, 31999)


@pytest.fixture
async def own_apiserver(etcd: str, tmp_path: Path) -> AsyncIterator[tuple[list[Process], Path]]:
    """Room for apiserver processes of this test on the session etcd; all stopped at the end."""
    procs: list[Process] = []
    yield procs, tmp_path
    for p in procs:
        p.stop()


_SMALL_RANGE = ("--service-node-port-range", f"{_RANGE[0]}-{_RANGE[1]}")


def _start(etcd: str, tmp: Path, procs: list[Process], *extra: str) -> str:
    proc, url = start_apiserver(tmp, etcd, extra=extra)
    procs.append(proc)
    return url


async def test_allocations_survive_an_apiserver_restart(
    etcd: str, api: httpx.AsyncClient, ns: str, own_apiserver: tuple[list[Process], Path]
) -> None:
    procs, tmp = own_apiserver
    in_range = set(range(_RANGE[0], _RANGE[1] + 1))
    others = await held_node_ports(api) & in_range
    free = len(in_range - others)
    first_batch = free // 2
    url = await asyncio.to_thread(_start, etcd, tmp, procs, *_SMALL_RANGE)
    before: dict[str, tuple[str, int]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10) as a:
        for i in range(first_batch):
            r = await a.post(services(ns), json=svc(f"pre-{i}", type="NodePort"))
            assert r.status_code == 201, r.text
            before[f"pre-{i}"] = (r.json()["spec"]["clusterIP"], r.json()["spec"]["ports"][0]["nodePort"])
    procs[0].kill()  # no goodbye: what is allocated is in etcd already

    url = await asyncio.to_thread(_start, etcd, tmp, procs, *_SMALL_RANGE)
    async with httpx.AsyncClient(base_url=url, timeout=10) as b:
        for name, (ip, port) in before.items():
            r = await b.post(services(ns), json=svc(f"copy-{name}", clusterIP=ip))
            assert r.status_code == 422 and "provided IP is already allocated" in r.json()["message"]
            r = await b.post(
                services(ns), json=svc(f"copy-{name}", type="NodePort", ports=[{"port": 1, "nodePort": port}])
            )
            assert r.status_code == 422 and "provided port is already allocated" in r.json()["message"]
        after: list[tuple[str, int]] = []
        for i in range(free - first_batch):
            r = await b.post(services(ns), json=svc(f"post-{i}", type="NodePort"))
            assert r.status_code == 201, r.text
            after.append((r.json()["spec"]["clusterIP"], r.json()["spec"]["ports"][0]["nodePort"]))
        # the range is now full: the next one cannot have a port, and says so as upstream does
        r = await b.post(services(ns), json=svc("one-too-many", type="NodePort"))
        assert r.status_code == 500
        assert r.json()["message"] == "Internal error occurred: failed to allocate a nodePort: range is full"
        assert (await b.get(services(ns, "one-too-many"))).status_code == 404
    old_ips, old_ports = {ip for ip, _ in before.values()}, {p for _, p in before.values()}
    assert not {ip for ip, _ in after} & old_ips
    assert {p for _, p in after} == in_range - others - old_ports
    # the session apiserver sees every one of them as taken too
    for ip, port in after:
        r = await api.post(services(ns), json=svc("late", clusterIP=ip))
        assert r.status_code == 422 and "provided IP is already allocated" in r.json()["message"]
        r = await api.post(services(ns), json=svc("late", type="NodePort", ports=[{"port": 1, "nodePort": port}]))
        assert r.status_code == 422 and "provided port is already allocated" in r.json()["message"]


async def test_repair_records_unrecorded_allocations_and_frees_leaked_ones(
    etcd: str, api: httpx.AsyncClient, ns: str, own_apiserver: tuple[list[Process], Path]
) -> None:
    procs, tmp = own_apiserver
    ip, leaked_ip = await free_ip(api), await free_ip(api)
    port, leaked_port = await free_node_ports(api, 2)  # two: a leak on the legacy Service's own port is no leak
    r = await api.post(
        services(ns), json=svc("legacy", type="NodePort", clusterIP=ip, ports=[{"port": 80, "nodePort": port}])
    )
    assert r.status_code == 201, r.text
    storage = EtcdStorage(etcd)
    try:
        # what a Service written before allocations were recorded looks like: no records at all
        for key in (f"/registry/ipaddresses/{ip}", f"/registry/ranges/servicenodeports/{port}"):
            stored = await storage.get(key)
            await storage.delete(key, stored.revision)
        # and what a crash between allocating and storing a Service leaves behind
        leak = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {"name": leaked_ip, "labels": {"ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"}},
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": "never-stored"}},
        }
        assert (await api.post(IPADDRESSES, json=leak)).status_code == 201
        ref = {"group": "", "resource": "services", "namespace": ns, "name": "never-stored", "uid": "gone"}
        await storage.put(f"/registry/ranges/servicenodeports/{leaked_port}", {"port": leaked_port, "parentRef": ref})

        await asyncio.to_thread(_start, etcd, tmp, procs, "--service-repair-interval", "0.3")
        # recorded at startup: the legacy Service's IP and port cannot be taken again
        recorded = await api.get(f"{IPADDRESSES}/{ip}")
        assert recorded.status_code == 200 and recorded.json()["spec"]["parentRef"]["name"] == "legacy"
        assert (await storage.get(f"/registry/ranges/servicenodeports/{port}")).obj["parentRef"]["name"] == "legacy"
        # freed once seen leaked on two passes
        deadline = asyncio.get_running_loop().time() + 15
        while (await api.get(f"{IPADDRESSES}/{leaked_ip}")).status_code != 404:
            assert asyncio.get_running_loop().time() < deadline, "leaked IPAddress not released"
            await asyncio.sleep(0.1)
        while True:
            try:
                await storage.get(f"/registry/ranges/servicenodeports/{leaked_port}")
            except KeyNotFound:
                break
            assert asyncio.get_running_loop().time() < deadline, "leaked node port not released"
            await asyncio.sleep(0.1)
        # and nothing a live Service holds was touched
        assert (await api.get(f"{IPADDRESSES}/{ip}")).status_code == 200
        assert (await api.get(f"{IPADDRESSES}/127.96.0.1")).status_code == 200
    finally:
        await storage.close()


async def test_additional_service_cidr_serves_requested_ips(api: httpx.AsyncClient, ns: str) -> None:
    net = ipaddress.ip_network(f"10.{random.randrange(256)}.{random.randrange(256)}.0/28")
    name = f"extra-{random.randrange(10**6)}"
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": name},
        "spec": {"cidrs": [str(net)]},
    }
    assert (await api.post("/apis/networking.k8s.io/v1/servicecidrs", json=body)).status_code == 201
    try:
        ip = str(net.network_address + 5)
        r = await api.post(services(ns), json=svc("extra", clusterIP=ip))
        assert r.status_code == 201, r.text
        assert (await api.get(f"{IPADDRESSES}/{ip}")).json()["spec"]["parentRef"]["name"] == "extra"
        assert (await api.delete(services(ns, "extra"))).status_code == 200
    finally:
        await api.delete(f"/apis/networking.k8s.io/v1/servicecidrs/{name}")


async def test_health_check_node_port_follows_external_traffic_policy(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(services(ns), json=svc("local", type="LoadBalancer", externalTrafficPolicy="Local"))
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    hc = spec["healthCheckNodePort"]
    assert 30000 <= hc <= 32767 and hc != spec["ports"][0]["nodePort"]
    taken = await api.post(services(ns), json=svc("hc-taker", type="NodePort", ports=[{"port": 1, "nodePort": hc}]))
    assert taken.status_code == 422
    merge = {"content-type": "application/merge-patch+json"}
    r = await api.patch(services(ns, "local"), headers=merge, json={"spec": {"externalTrafficPolicy": "Cluster"}})
    assert r.status_code == 200, r.text
    assert "healthCheckNodePort" not in r.json()["spec"]
    again = await api.post(services(ns), json=svc("hc-taker", type="NodePort", ports=[{"port": 1, "nodePort": hc}]))
    assert again.status_code == 201, again.text
