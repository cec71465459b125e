"""Two apiserver processes on one etcd: what each does once per cluster is safe with both, writes through one
are seen through the other, each keeps its identity Lease, and `default/kubernetes` lists the live ones.

The two run on their own etcd, each on its own address (127.0.0.1 and 127.0.0.2) and the same port, so a
test can reach either one and the lease endpoint reconciler has two addresses to list. Reconcile and
renewal periods are shortened by flags (upstream: every 10 s, master-lease TTL 15 s).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aetcd
import httpx
import pytest

from apiserver.compaction import Compactor
from apiserver.identity_lease import identity_lease_name
from apiserver.storage import Compacted, EtcdStorage
from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready

ADDRESSES = ("127.0.0.1", "127.0.0.2")
TTL, INTERVAL, RENEW = 3, 0.5, 1.0
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
MASTER_LEASES = "/registry/masterleases/"


def _port_free_on_both() -> int:
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind((ADDRESSES[1], port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free on both addresses")


def _start(root: Path, etcd_url: str, port: int, address: str, i: int) -> tuple[Process, str]:
    """Apiserver number i on address:port (shared with any other there), with short periods."""
    args = [
        "--insecure-bind-address",
        address,
        "--apiserver-identity",
        f"replica-{i}",
        "--endpoint-reconciler-interval-seconds",
        str(INTERVAL),
        "--master-lease-ttl-seconds",
        str(TTL),
        "--identity-lease-renew-interval-seconds",
        str(RENEW),
        "--identity-lease-gc-period-seconds",
        str(RENEW),
    ]
    return start_apiserver(root, etcd_url, port, args, name=f"apiserver-{i}", share_port=True)


@pytest.fixture(scope="module")
def replica_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An etcd of this module's own (the endpoint reconciler's keys stay out of the session's)."""
    etcd, url = start_etcd(tmp_path_factory.mktemp("replicas-etcd"))
    try:
        yield url
    finally:
        etcd.stop()


@pytest.fixture(scope="module")
def pair(replica_etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Process], list[str], int]]:
    """Two apiservers started at once (their bootstraps race), one per address, on one port."""
    root, etcd_url = tmp_path_factory.mktemp("replicas"), replica_etcd
    port = _port_free_on_both()
    procs: list[Process] = []

    def start(i: int) -> tuple[Process, str]:
        return _start(Path(root), etcd_url, port, ADDRESSES[i], i)

    try:
        with ThreadPoolExecutor(2) as pool:
            started = list(pool.map(start, range(2)))
        procs += [p for p, _ in started]
        urls = [f"http://{a}:{port}" for a in ADDRESSES]
        for (proc, _), url in zip(started, urls, strict=True):
            wait_ready(f"{url}/readyz", proc)  # start_apiserver asked 127.0.0.1 only
        yield procs, urls, port
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture
async def clients(pair: tuple[list[Process], list[str], int]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per apiserver."""
    _, urls, _ = pair
    out = [httpx.AsyncClient(base_url=u, timeout=20) for u in urls]
    try:
        yield out
    finally:
        for c in out:
            await c.aclose()


async def _eventually(check: Any, timeout: float = 20.0) -> Any:
    """Poll `check()` (async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.1)


def _svc(name: str, **spec: Any) -> dict[str, Any]:
    body = {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


async def _namespace(api: httpx.AsyncClient, name: str) -> str:
    r = await api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


async def test_bootstrap_raced_by_two_apiservers_made_each_default_object_once(
    clients: list[httpx.AsyncClient],
) -> None:
    a, b = clients
    for api in (a, b):
        assert (await api.get("/readyz")).status_code == 200
    svc = (await a.get("/api/v1/namespaces/default/services/kubernetes")).json()
    held = (await b.get(f"/apis/networking.k8s.io/v1/ipaddresses/{svc['spec']['clusterIP']}")).json()
    assert held["spec"]["parentRef"] == {
        "group": "",
        "resource": "services",
        "namespace": "default",
        "name": "kubernetes",
    }
    names = {n["metadata"]["name"] for n in (await b.get("/api/v1/namespaces")).json()["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    roles = (await a.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin")).json()
    assert roles["rules"] == [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ]


async def test_cluster_ips_and_node_ports_allocated_through_both_apiservers_are_distinct(
    clients: list[httpx.AsyncClient],
) -> None:
    a, b = clients
    ns = await _namespace(a, "alloc")
    count = 60
    bodies = [_svc(f"s{i}", type="NodePort") if i % 2 else _svc(f"s{i}") for i in range(count)]
    answers = await asyncio.gather(
        *(clients[i % 2].post(f"/api/v1/namespaces/{ns}/services", json=body) for i, body in enumerate(bodies))
    )
    assert [r.status_code for r in answers] == [201] * count, [r.text for r in answers if r.status_code != 201]
    ips = [r.json()["spec"]["clusterIP"] for r in answers]
    assert len(set(ips)) == count
    node_ports = [r.json()["spec"]["ports"][0]["nodePort"] for r in answers if r.json()["spec"]["type"] == "NodePort"]
    assert len(set(node_ports)) == len(node_ports) == count // 2
    # each IP is recorded once, for the Service that holds it, as the other apiserver reads it
    addresses = (await b.get("/apis/networking.k8s.io/v1/ipaddresses")).json()["items"]
    holders = {x["metadata"]["name"]: x["spec"]["parentRef"]["name"] for x in addresses}
    assert {ip: holders.get(ip) for ip in ips} == {ip: f"s{i}" for i, ip in enumerate(ips)}


async def test_a_write_through_one_apiserver_is_seen_by_a_watch_served_by_the_other(
    clients: list[httpx.AsyncClient],
) -> None:
    a, b = clients
    ns = await _namespace(b, "watched")
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv = (await b.get(path)).json()["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "30"}
        async with b.stream("GET", path, params=params) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                event = json.loads(line)
                seen.append((event["type"], event["object"]["metadata"]["name"]))
                if event["type"] == "DELETED":
                    return

    watcher = asyncio.create_task(watch())
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-a"}, "data": {"k": "v"}}
    assert (await a.post(path, json=body)).status_code == 201
    assert (await a.delete(f"{path}/from-a")).status_code == 200
    await asyncio.wait_for(watcher, 20)
    assert seen == [("ADDED", "from-a"), ("DELETED", "from-a")]


async def test_of_two_apiservers_compacting_one_compacts_each_interval(replica_etcd: str) -> None:
    first, second = EtcdStorage(replica_etcd), EtcdStorage(replica_etcd)
    try:
        await first.put("/tinykube-test/compaction", {"n": 1})
        old = await first.put("/tinykube-test/compaction", {"n": 2})
        claims = [Compactor(first, 60), Compactor(second, 60)]
        # the first interval claims only; then both try each interval, with the revision each saw
        assert [await c.compact(0) for c in claims] == [False, False]
        target = await first.ping()
        assert [await c.compact(target) for c in claims] == [True, False]
        with pytest.raises(Compacted):
            await first.get("/tinykube-test/compaction", revision=old)
        # the loser has learnt the clock: the next interval is its, if it comes first
        await first.put("/tinykube-test/compaction", {"n": 3})
        target = await first.ping()
        assert [await c.compact(target) for c in reversed(claims)] == [True, False]
    finally:
        await first.close()
        await second.close()


async def _identity_leases(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await api.get(LEASES, params={"labelSelector": "apiserver.kubernetes.io/identity=kube-apiserver"})
    assert r.status_code == 200, r.text
    return {x["metadata"]["name"]: x for x in r.json()["items"]}


async def _endpoint_ips(api: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    ep = (await api.get("/api/v1/namespaces/default/endpoints/kubernetes")).json()
    eps = (await api.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")).json()
    return (
        [x["ip"] for s in ep.get("subsets") or [] for x in s.get("addresses") or []],
        [x for e in eps.get("endpoints") or [] for x in e["addresses"]],
    )


async def test_each_apiserver_keeps_an_identity_lease_and_the_kubernetes_endpoints_list_both(
    clients: list[httpx.AsyncClient], pair: tuple[list[Process], list[str], int]
) -> None:
    a, _ = clients
    _, _, port = pair
    names = [identity_lease_name(f"replica-{i}") for i in range(2)]

    async def both_leases() -> dict[str, dict[str, Any]] | None:
        """both identity Leases exist (each apiserver writes its own once bootstrapped, after /readyz)"""
        leases = await _identity_leases(a)
        return leases if set(names) <= set(leases) else None

    leases = await _eventually(both_leases)
    assert sorted(leases) == sorted(names)
    for name, address in zip(names, ADDRESSES, strict=True):
        lease = leases[name]
        assert lease["spec"]["holderIdentity"].startswith(f"{name}_")
        assert lease["spec"]["leaseDurationSeconds"] == 3600
        assert lease["metadata"]["labels"]["kubernetes.io/hostname"] == socket.gethostname()
        assert lease["metadata"]["annotations"]["kubernetes.io/peer-advertise-address"] == f"{address}:{port}"

    async def both_listed() -> bool:
        """the Endpoints and the EndpointSlice list both addresses"""
        return await _endpoint_ips(a) == (list(ADDRESSES), list(ADDRESSES))

    await _eventually(both_listed)
    ep = (await a.get("/api/v1/namespaces/default/endpoints/kubernetes")).json()
    assert ep["subsets"][0]["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]
    assert ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"


async def test_expired_identity_leases_are_collected_and_others_kept(clients: list[httpx.AsyncClient]) -> None:
    a, b = clients
    long_ago = "2020-01-01T00:00:00.000000Z"

    def lease(name: str, renewed: str, identity: bool) -> dict[str, Any]:
        labels = {"apiserver.kubernetes.io/identity": "kube-apiserver"} if identity else {}
        spec = {"holderIdentity": f"{name}_x", "leaseDurationSeconds": 3600, "renewTime": renewed}
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for body in (
        lease("apiserver-gone", long_ago, True),
        lease("apiserver-fresh", now, True),
        lease("other-old", long_ago, False),
    ):
        assert (await a.post(LEASES, json=body)).status_code == 201

    async def collected() -> bool:
        """the expired identity Lease is gone"""
        return (await b.get(f"{LEASES}/apiserver-gone")).status_code == 404

    await _eventually(collected, timeout=RENEW * 5 + 10)
    assert (await b.get(f"{LEASES}/apiserver-fresh")).status_code == 200
    assert (await b.get(f"{LEASES}/other-old")).status_code == 200
    for name in ("apiserver-fresh", "other-old"):
        assert (await a.delete(f"{LEASES}/{name}")).status_code == 200


async def test_a_clean_stop_drops_an_address_at_once_unless_another_live_apiserver_serves_it(
    replica_etcd: str, pair: tuple[list[Process], list[str], int], clients: list[httpx.AsyncClient], tmp_path: Path
) -> None:
    a, _ = clients
    _, _, port = pair
    # C shares B's address and port (SO_REUSEPORT); D has an address of its own
    third = "127.0.0.3"
    with socket.socket() as probe:
        probe.bind((third, port))  # free there too, or the test cannot run
    extra: list[Process] = []
    url = urlsplit(replica_etcd)
    raw = aetcd.Client(host=url.hostname or "127.0.0.1", port=url.port or 2379, timeout=10)  # create revisions
    try:
        for i, address in ((2, ADDRESSES[1]), (3, third)):
            extra.append(_start(tmp_path, replica_etcd, port, address, i)[0])

        async def all_listed() -> bool:
            """the identity Leases of C and D exist and the Endpoints list three addresses"""
            leases = await _identity_leases(a)
            mine = {identity_lease_name(f"replica-{i}") for i in (2, 3)}
            return mine <= set(leases) and await _endpoint_ips(a) == ([*ADDRESSES, third], [*ADDRESSES, third])

        await _eventually(all_listed, timeout=60)
        shared = f"{MASTER_LEASES}{ADDRESSES[1]}".encode()
        created = (await raw.get(shared)).create_revision
        extra[1].stop()  # SIGTERM: D removes its key before it exits, not TTL seconds later
        assert await raw.get(f"{MASTER_LEASES}{third}".encode()) is None

        async def two_listed() -> bool:
            """the Endpoints list the two addresses left"""
            return await _endpoint_ips(a) == (list(ADDRESSES), list(ADDRESSES))

        await _eventually(two_listed, timeout=5)
        extra[0].stop()  # C leaves the shared key alone: B still serves that address
        kept = await raw.get(shared)
        assert kept is not None and kept.create_revision == created
        assert await _endpoint_ips(a) == (list(ADDRESSES), list(ADDRESSES))
    finally:
        for p in extra:
            p.stop()
        await raw.close()


async def test_a_killed_apiserver_stops_renewing_and_drops_out_of_the_endpoints(
    clients: list[httpx.AsyncClient], pair: tuple[list[Process], list[str], int]
) -> None:
    a, _ = clients
    procs, _, _ = pair
    gone = identity_lease_name("replica-1")
    procs[1].kill()  # no clean shutdown: only the TTL can drop its address
    killed_at = datetime.now(UTC)

    async def dropped() -> bool:
        """the Endpoints and the EndpointSlice list only the live apiserver"""
        return await _endpoint_ips(a) == ([ADDRESSES[0]], [ADDRESSES[0]])

    await _eventually(dropped, timeout=TTL + 10 * INTERVAL + 10)
    leases = await _identity_leases(a)
    renewed = datetime.fromisoformat(leases[gone]["spec"]["renewTime"].replace("Z", "+00:00"))
    assert renewed <= killed_at
    live = identity_lease_name("replica-0")

    async def renewed_since() -> bool:
        """the live apiserver renewed its identity Lease after the kill"""
        spec = (await _identity_leases(a))[live]["spec"]
        return datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00")) > killed_at

    await _eventually(renewed_since, timeout=RENEW * 5 + 5)
    # the dead one's Lease stays until it expires (an hour): it is not renewed
    assert (await _identity_leases(a))[gone]["spec"]["renewTime"] == leases[gone]["spec"]["renewTime"]
