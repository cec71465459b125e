"""The service-lb controller, run as the real controller-manager process with only that controller."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tinykube.procs import Process, free_port, wait_ready

MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def pool() -> ipaddress.IPv4Network:
    """A /28 of 127.200.0.0/16 picked per run (14 usable addresses)."""
    return ipaddress.ip_network(f"127.200.{random.randrange(1, 255)}.{16 * random.randrange(16)}/28")


@pytest.fixture(scope="module")
def servicelb(apiserver: str, pool: ipaddress.IPv4Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`python -m controller_manager --controllers servicelb` against the session apiserver."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "controller_manager",
        "--server",
        apiserver,
        "--controllers",
        "servicelb",
        "--load-balancer-ip-range",
        str(pool),
        "--health-port",
        str(port),
        "--no-leader-elect",
    ]
    proc = Process("controller-manager", argv, tmp_path_factory.mktemp("servicelb") / "cm.log")
    wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
    yield
    proc.stop()
    assert proc.proc.returncode == 0, proc.tail()


def lb(name: str, **spec: Any) -> dict[str, Any]:
    body = {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"name": "http", "port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def lb_ips(svc: dict[str, Any]) -> list[str]:
    return [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


async def until(check: Any, what: str, timeout: float = 15.0) -> Any:
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


async def get(api: httpx.AsyncClient, ns: str, name: str) -> dict[str, Any]:
    r = await api.get(f"/api/v1/namespaces/{ns}/services/{name}")
    assert r.status_code == 200, r.text
    return r.json()


async def ip_of(api: httpx.AsyncClient, ns: str, name: str) -> str:
    async def check() -> str | None:
        ips = lb_ips(await get(api, ns, name))
        return ips[0] if ips else None

    return await until(check, f"an IP for {ns}/{name}")


async def pool_in_use(api: httpx.AsyncClient, pool: ipaddress.IPv4Network) -> set[str]:
    items = (await api.get("/api/v1/services")).json()["items"]
    return {ip for s in items for ip in lb_ips(s) if ipaddress.ip_address(ip) in pool}


async def events(api: httpx.AsyncClient, ns: str, name: str) -> list[tuple[str, str, str]]:
    r = await api.get(f"/api/v1/namespaces/{ns}/events", params={"fieldSelector": f"involvedObject.name={name}"})
    return [(e["type"], e["reason"], e["message"]) for e in r.json()["items"]]


@pytest.fixture
async def settled(api: httpx.AsyncClient, servicelb: None, pool: ipaddress.IPv4Network) -> AsyncIterator[None]:
    """Wait until LoadBalancer Services left by other tests hold their pool IPs (or the pool ran out)."""

    async def check() -> bool:
        items = (await api.get("/api/v1/services")).json()["items"]
        waiting = [
            s
            for s in items
            if s["spec"]["type"] == "LoadBalancer" and "loadBalancerClass" not in s["spec"] and not lb_ips(s)
        ]
        return not waiting or len(await pool_in_use(api, pool)) == pool.num_addresses - 2

    await until(check, "other LoadBalancer Services to get their IPs")
    yield


async def test_load_balancers_get_distinct_pool_ips(
    api: httpx.AsyncClient, ns: str, settled: None, pool: ipaddress.IPv4Network
) -> None:
    names = [f"lb-{i}" for i in range(3)]
    for name in names:
        assert (await api.post(f"/api/v1/namespaces/{ns}/services", json=lb(name))).status_code == 201
    ips = [await ip_of(api, ns, name) for name in names]
    assert len(set(ips)) == 3 and all(ipaddress.ip_address(ip) in pool for ip in ips)
    svc = await get(api, ns, names[0])
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": ips[0], "ipMode": "VIP"}]

    async def reported() -> list[tuple[str, str, str]]:
        found = await events(api, ns, names[0])
        wanted = {("Normal", "EnsuringLoadBalancer", "Ensuring load balancer")}
        wanted.add(("Normal", "EnsuredLoadBalancer", "Ensured load balancer"))
        return found if wanted <= set(found) else []

    await until(reported, "EnsuringLoadBalancer and EnsuredLoadBalancer events")


async def test_requested_ip_other_classes_and_release(
    api: httpx.AsyncClient, ns: str, settled: None, pool: ipaddress.IPv4Network
) -> None:
    used = await pool_in_use(api, pool)
    wanted = next(str(ip) for ip in reversed(list(pool.hosts())) if str(ip) not in used)
    base = f"/api/v1/namespaces/{ns}/services"
    assert (await api.post(base, json=lb("asks", loadBalancerIP=wanted))).status_code == 201
    assert await ip_of(api, ns, "asks") == wanted
    # a second Service asking for the same IP does not get it, and says why
    assert (await api.post(base, json=lb("asks-too", loadBalancerIP=wanted))).status_code == 201
    want = (
        "Warning",
        "SyncLoadBalancerFailed",
        f"Error syncing load balancer: requested IP {wanted} is already in use",
    )

    async def refused() -> bool:
        return want in await events(api, ns, "asks-too")

    await until(refused, "a SyncLoadBalancerFailed event")
    assert lb_ips(await get(api, ns, "asks-too")) == []

    # another implementation's class is left alone
    r = await api.post(base, json=lb("foreign", loadBalancerClass="example.com/other"))
    assert r.status_code == 201, r.text
    # a plain one created after it is served; by then the foreign one would have been too
    assert (await api.post(base, json=lb("after-foreign"))).status_code == 201
    await ip_of(api, ns, "after-foreign")
    assert lb_ips(await get(api, ns, "foreign")) == []

    # deleting the holder frees the IP, and the Service waiting for it gets it
    assert (await api.delete(f"{base}/asks")).status_code == 200
    assert await ip_of(api, ns, "asks-too") == wanted
    deleted = ("Normal", "DeletedLoadBalancer", "Deleted load balancer")

    async def said_deleted(name: str) -> bool:
        return deleted in await events(api, ns, name)

    await until(lambda: said_deleted("asks"), "a DeletedLoadBalancer event for the deleted Service")

    # a Service that stops being a LoadBalancer loses its IP, which goes to the next one
    held = await ip_of(api, ns, "after-foreign")
    r = await api.patch(f"{base}/after-foreign", headers=MERGE, json={"spec": {"type": "ClusterIP"}})
    assert r.status_code == 200, r.text
    assert lb_ips(r.json()) == [] and "nodePort" not in r.json()["spec"]["ports"][0]
    assert held not in await pool_in_use(api, pool)
    await until(lambda: said_deleted("after-foreign"), "a DeletedLoadBalancer event after the type change")
    assert (await api.post(base, json=lb("reuser", loadBalancerIP=held))).status_code == 201
    assert await ip_of(api, ns, "reuser") == held


async def test_full_pool_waits_then_fills(
    api: httpx.AsyncClient, ns: str, settled: None, pool: ipaddress.IPv4Network
) -> None:
    free = pool.num_addresses - 2 - len(await pool_in_use(api, pool))
    base = f"/api/v1/namespaces/{ns}/services"
    names = [f"fill-{i}" for i in range(free + 1)]
    answers = await asyncio.gather(*(api.post(base, json=lb(n)) for n in names))
    assert [r.status_code for r in answers] == [201] * len(names)

    async def all_but_one() -> list[str] | None:
        got = [lb_ips(await get(api, ns, n)) for n in names]
        return [n for n, ips in zip(names, got, strict=True) if not ips] if sum(map(bool, got)) == free else None

    waiting = await until(all_but_one, f"{free} Services to get IPs")
    assert len(waiting) == 1
    taken = [ip for n in names if n not in waiting for ip in lb_ips(await get(api, ns, n))]
    assert len(taken) == len(set(taken)) == free  # never one IP twice
    message = f"Error syncing load balancer: no available IP in the load-balancer pool {pool}"

    async def told() -> bool:
        return ("Warning", "SyncLoadBalancerFailed", message) in await events(api, ns, waiting[0])

    await until(told, "a pool-exhausted event")
    victim = next(n for n in names if n not in waiting)
    freed = lb_ips(await get(api, ns, victim))[0]
    assert (await api.delete(f"{base}/{victim}")).status_code == 200
    assert await ip_of(api, ns, waiting[0]) == freed
    for n in names:
        await api.delete(f"{base}/{n}")


async def test_kubectl_shows_the_external_ip(
    api: httpx.AsyncClient, ns: str, settled: None, apiserver: str, kubectl_binary: Path, tmp_path: Path
) -> None:
    assert (await api.post(f"/api/v1/namespaces/{ns}/services", json=lb("shown"))).status_code == 201
    ip = await ip_of(api, ns, "shown")
    svc = await get(api, ns, "shown")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "KUBECONFIG": os.devnull}
    argv = [str(kubectl_binary), "--server", apiserver, "--cache-dir", str(tmp_path / "cache"), "get", "svc", "-n", ns]
    out = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, env=env, timeout=30, check=False
    )
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    port = svc["spec"]["ports"][0]["nodePort"]
    assert row.split()[:5] == ["shown", "LoadBalancer", svc["spec"]["clusterIP"], ip, f"80:{port}/TCP"]


async def test_an_ip_claimed_twice_stays_with_the_older_service(
    api: httpx.AsyncClient, ns: str, settled: None, pool: ipaddress.IPv4Network
) -> None:
    base = f"/api/v1/namespaces/{ns}/services"
    assert (await api.post(base, json=lb("elder"))).status_code == 201
    elder_ip = await ip_of(api, ns, "elder")
    assert (await api.post(base, json=lb("younger"))).status_code == 201
    await ip_of(api, ns, "younger")
    # someone writes the elder's IP into the younger one's status
    status = {"status": {"loadBalancer": {"ingress": [{"ip": elder_ip, "ipMode": "VIP"}]}}}
    r = await api.patch(f"{base}/younger/status", headers=MERGE, json=status)
    assert r.status_code == 200, r.text

    async def moved() -> str | None:
        ips = lb_ips(await get(api, ns, "younger"))
        return ips[0] if ips and ips[0] != elder_ip else None

    new_ip = await until(moved, "the younger Service to get its own IP back")
    assert ipaddress.ip_address(new_ip) in pool
    assert lb_ips(await get(api, ns, "elder")) == [elder_ip]
