"""The apiserver on a 3-member etcd cluster: kill -9 the leader under writes; no acknowledged write is lost
and writes resume on the surviving members."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.harden_kit import EtcdCluster, start_etcd_cluster
from tinykube.procs import Process, start_apiserver


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """Three etcd members on loopback."""
    c = start_etcd_cluster(tmp_path / "etcd")
    yield c
    c.stop()


async def test_killing_the_etcd_leader_loses_no_acknowledged_write(cluster: EtcdCluster, tmp_path: Path) -> None:
    leader = await asyncio.to_thread(cluster.leader)
    # the leader first: the apiserver talks to it until it dies, then must move on
    servers = ",".join([leader.client_url, *(m.client_url for m in cluster.members if m is not leader)])
    proc, url = await asyncio.to_thread(start_apiserver, tmp_path / "apiserver", servers)
    try:
        await _writes_survive_the_leader(cluster, leader.proc, url)
    finally:
        proc.stop()
    log = await asyncio.to_thread(Path(proc.log_path).read_text, errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 300 :][:3000]


async def _writes_survive_the_leader(cluster: EtcdCluster, leader: Process | None, url: str) -> None:
    assert leader is not None
    acked: list[str] = []
    failed = 0
    killed_at: float | None = None
    resumed_at: float | None = None
    async with httpx.AsyncClient(base_url=url, timeout=10) as api:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "failover"}}
        assert (await api.post("/api/v1/namespaces", json=ns)).status_code == 201

        async def writer(w: int) -> None:
            nonlocal failed, resumed_at
            i = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                name = f"w{w}-{i}"
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}
                try:
                    r = await api.post("/api/v1/namespaces/failover/configmaps", json=body)
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code == 201:
                    acked.append(name)
                    if killed_at is not None and resumed_at is None:
                        resumed_at = time.monotonic()
                    i += 1
                elif r is not None and r.status_code == 409:
                    i += 1  # a retry of a write that went through before its answer was lost
                else:
                    failed += 1
                    await asyncio.sleep(0.05)
                if killed_at is not None and resumed_at is not None and time.monotonic() - resumed_at > 2:
                    return

        writers = [asyncio.create_task(writer(w)) for w in range(4)]
        while len(acked) < 100:  # noqa: ASYNC110 - polling a counter the writers bump
            await asyncio.sleep(0.01)
        before = len(acked)
        leader.kill()
        killed_at = time.monotonic()
        await asyncio.gather(*writers)
        assert resumed_at is not None, f"no write succeeded after the leader died ({failed} failed)"
        after = len(acked) - before
        assert after > 20, f"only {after} writes after the leader died"
        took = resumed_at - (killed_at or resumed_at)
        print(f"\netcd leader killed: writes resumed after {took:.2f}s; {len(acked)} acknowledged, {failed} refused")

        # every acknowledged write is there, through the apiserver and in etcd itself
        r = await api.get("/api/v1/namespaces/failover/configmaps")
        assert r.status_code == 200
        listed = {c["metadata"]["name"] for c in r.json()["items"]}
        missing = set(acked) - listed
        assert not missing, f"{len(missing)} acknowledged writes missing: {sorted(missing)[:10]}"
        assert (await api.get("/readyz")).status_code == 200
    survivor = cluster.alive()[0]
    keys = await asyncio.to_thread(_etcd_keys, survivor.client_url, "/registry/configmaps/failover/")
    assert set(acked) <= keys


def _etcd_keys(endpoint: str, prefix: str) -> set[str]:
    out = subprocess.run(
        ["etcdctl", "--endpoints", endpoint, "get", prefix, "--prefix", "--keys-only"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return {line.rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()}
