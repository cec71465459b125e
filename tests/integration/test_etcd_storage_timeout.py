"""A frozen etcd (SIGSTOP: the connection stays open, nothing answers): every storage call ends within its
timeout as StorageUnavailable, calls work again once etcd resumes, and a read moves on to the next member."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from apiserver.storage import EtcdStorage, StorageUnavailable
from tests.integration.harden_kit import EtcdCluster, freeze, start_etcd_cluster
from tinykube.procs import Process, start_etcd

TIMEOUT = 1.0


@pytest.fixture
def etcd_proc(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """An etcd of this test's own, since the test freezes it."""
    proc, url = start_etcd(tmp_path)
    yield proc, url
    os.kill(proc.pid, signal.SIGCONT)
    proc.stop()


@pytest.fixture
async def storage(etcd_proc: tuple[Process, str]) -> AsyncIterator[EtcdStorage]:
    """Storage with a short timeout on the test's etcd."""
    s = EtcdStorage(etcd_proc[1], TIMEOUT)
    yield s
    await s.close()


async def test_calls_to_a_frozen_etcd_time_out_as_unavailable(
    etcd_proc: tuple[Process, str], storage: EtcdStorage
) -> None:
    key = "/registry/configmaps/default/frozen"
    stored = await storage.create(key, {"kind": "ConfigMap", "metadata": {"name": "frozen"}})
    await freeze(etcd_proc[0].pid)
    calls = {
        "get": lambda: storage.get(key),
        "list": lambda: storage.list("/registry/configmaps/"),
        "ping": storage.ping,
        "create": lambda: storage.create(key + "2", {"kind": "ConfigMap"}),
        "update": lambda: storage.update(key, {"kind": "ConfigMap"}, stored.revision),
        "delete": lambda: storage.delete(key, stored.revision),
    }
    for name, call in calls.items():
        start = time.monotonic()
        with pytest.raises(StorageUnavailable, match=r"etcd unavailable \(.*\): timeout"):
            await call()
        elapsed = time.monotonic() - start
        assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 2, (name, elapsed)
    os.kill(etcd_proc[0].pid, signal.SIGCONT)
    # calls work again; the writes above that timed out may still be applied once etcd reads them (a timeout
    # says nothing of the outcome, as with upstream's etcd client), so the frozen key itself is not checked
    assert await storage.ping() >= stored.revision
    after = await storage.create(key + "3", {"kind": "ConfigMap", "metadata": {"name": "frozen3"}})
    assert (await storage.get(key + "3")).revision == after.revision


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """Three etcd members on loopback."""
    c = start_etcd_cluster(tmp_path / "etcd")
    yield c
    for m in c.members:
        if m.proc is not None and m.proc.alive():
            os.kill(m.proc.pid, signal.SIGCONT)
    c.stop()


async def test_a_read_moves_past_a_frozen_member_within_its_timeout(etcd_cluster: EtcdCluster) -> None:
    leader = await asyncio.to_thread(etcd_cluster.leader)
    frozen = next(m for m in etcd_cluster.members if m is not leader)
    others = [m.client_url for m in etcd_cluster.members if m is not frozen]
    storage = EtcdStorage(",".join([frozen.client_url, *others]), TIMEOUT)
    try:
        key = "/registry/configmaps/default/moved"
        stored = await storage.create(key, {"kind": "ConfigMap", "metadata": {"name": "moved"}})
        assert frozen.proc is not None
        await freeze(frozen.proc.pid)
        start = time.monotonic()
        assert (await storage.get(key)).revision == stored.revision  # retried on the next member
        assert TIMEOUT * 0.9 <= time.monotonic() - start < TIMEOUT + 2
        assert storage.endpoint != frozen.client_url
        await storage.update(key, {"kind": "ConfigMap", "metadata": {"name": "moved"}}, stored.revision)
    finally:
        await storage.close()
