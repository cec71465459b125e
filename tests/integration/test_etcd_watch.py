"""EtcdStorage.watch, the watch cache's one etcd stream, against a real etcd: what each change carries, a
compacted start revision, and a stopped etcd ending the stream as StorageUnavailable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apiserver.storage import Compacted, EtcdStorage, StorageUnavailable, WatchEvent
from tinykube.procs import start_etcd


@pytest.fixture
async def storage(etcd: str) -> AsyncIterator[EtcdStorage]:
    """Storage on the session's etcd."""
    s = EtcdStorage(etcd, 5.0)
    yield s
    await s.close()


async def _events(stream: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    out = []
    async with asyncio.timeout(10):
        async for ev in stream:
            out.append(ev)
            if len(out) == count:
                break
    return out


async def test_watch_carries_each_change_with_its_revision(storage: EtcdStorage) -> None:
    prefix = f"/registry/watchtest-{uuid.uuid4().hex[:8]}/"
    created = await storage.create(prefix + "a", {"kind": "ConfigMap", "data": {"v": "1"}})
    updated = await storage.update(prefix + "a", {"kind": "ConfigMap", "data": {"v": "2"}}, created.revision)
    other = await storage.create(prefix + "b", {"kind": "ConfigMap", "data": {"v": "b"}})
    deleted = await storage.delete(prefix + "a", updated.revision)
    stream = storage.watch(prefix, created.revision)
    try:
        events = await _events(stream, 4)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert [(e.type, e.key, e.revision, e.created) for e in events] == [
        ("PUT", prefix + "a", created.revision, True),
        ("PUT", prefix + "a", updated.revision, False),
        ("PUT", prefix + "b", other.revision, True),
        ("DELETE", prefix + "a", deleted, False),
    ]
    assert events[1].obj == {
        "kind": "ConfigMap",
        "data": {"v": "2"},
        "metadata": {"resourceVersion": str(updated.revision)},
    }
    assert events[3].obj is None  # the deleted object's last state is the watch cache's own copy


async def test_watch_from_a_compacted_revision_raises_compacted(storage: EtcdStorage) -> None:
    prefix = f"/registry/watchtest-{uuid.uuid4().hex[:8]}/"
    first = await storage.create(prefix + "a", {"kind": "ConfigMap"})
    second = await storage.update(prefix + "a", {"kind": "ConfigMap", "data": {"v": "2"}}, first.revision)
    await storage.compact(second.revision)
    with pytest.raises(Compacted) as info:
        await _events(storage.watch(prefix, first.revision), 1)
    assert info.value.compacted_revision == second.revision


async def test_a_stopped_etcd_ends_the_watch_as_unavailable(tmp_path: Path) -> None:
    proc, url = start_etcd(tmp_path)
    storage = EtcdStorage(url, 2.0)
    try:
        prefix = "/registry/configmaps/"
        first = await storage.create(prefix + "a", {"kind": "ConfigMap"})
        stream = storage.watch(prefix, first.revision)
        assert [e.key for e in await _events(stream, 1)] == [prefix + "a"]
        proc.stop()
        with pytest.raises(StorageUnavailable):
            async with asyncio.timeout(20):
                await stream.__anext__()
    finally:
        proc.stop()
        await storage.close()
