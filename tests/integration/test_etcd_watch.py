"""EtcdStorage.watch, the watch cache's one etcd stream, against a real etcd: what each change carries, how
objects are laid out in etcd and read back, a compacted start revision, and a stopped etcd ending the stream as
StorageUnavailable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
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
    assert events[1].stored is not None and events[1].stored.obj == {
        "kind": "ConfigMap",
        "data": {"v": "2"},
        "metadata": {"resourceVersion": str(updated.revision)},
    }
    assert events[3].stored is None  # the deleted object's last state is the watch cache's own copy


def _pod(name: str, **meta: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": {"a": "b"}, "namespace": "ns", "resourceVersion": "1", "name": name, **meta},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


async def test_objects_are_stored_in_go_field_order_and_read_back_with_their_revision(storage: EtcdStorage) -> None:
    prefix = f"/registry/watchtest-{uuid.uuid4().hex[:8]}/"
    written = await storage.create(prefix + "p", _pod("p", uid="u-1"))
    raw = (await storage._range(storage._client, (prefix + "p").encode())).kvs[0].value
    # etcd holds kind, apiVersion, then metadata opening with name, namespace, uid, and no resourceVersion
    assert raw.startswith(b'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns","uid":"u-1",')
    assert b"resourceVersion" not in raw
    rv = str(written.revision)
    read = await storage.get(prefix + "p")
    stream = storage.watch(prefix, written.revision)
    try:
        (event,) = await _events(stream, 1)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    for stored in (written, read, event.stored):
        assert stored is not None
        body = orjson.loads(stored.json())
        assert list(body) == ["kind", "apiVersion", "metadata", "spec"]
        assert list(body["metadata"]) == ["name", "namespace", "uid", "resourceVersion", "labels"]
        assert body["metadata"]["resourceVersion"] == rv
        assert stored.obj == body  # the decoded object says the same
        assert stored.obj["metadata"]["resourceVersion"] == rv


async def test_values_not_in_the_layout_are_read_with_their_revision_replaced(storage: EtcdStorage) -> None:
    prefix = f"/registry/watchtest-{uuid.uuid4().hex[:8]}/"
    # written by an earlier apiserver: metadata last, a stale resourceVersion kept in it
    old = {"spec": {}, "metadata": {"name": "old", "uid": "u", "resourceVersion": "3"}, "kind": "Pod"}
    await storage.put_if_version(prefix + "old", 0, orjson.dumps(old))
    # another resourceVersion inside the object (an Event's involvedObject) is left as it is
    event = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": "e", "uid": "u2"},
        "involvedObject": {"kind": "Pod", "resourceVersion": "7"},
    }
    written = await storage.create(prefix + "e", event)
    for key, stored in (("old", await storage.get(prefix + "old")), ("e", await storage.get(prefix + "e"))):
        body = orjson.loads(stored.json())
        assert body["metadata"]["resourceVersion"] == str(stored.revision), key
        assert body == stored.obj, key
    assert orjson.loads(written.json())["involvedObject"]["resourceVersion"] == "7"


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
