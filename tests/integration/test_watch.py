"""Watch: chunked WatchEvents from the watch cache, selectors, resume, bookmarks, 410."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aetcd
import httpx
import orjson
import pytest

from apiserver.protobuf import decode_protobuf
from tests.integration.helpers import MERGE, collect, pod, pods_path, watch_lines
from tinykube.procs import start_apiserver

PROTOBUF = "application/vnd.kubernetes.protobuf"
PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


async def _rv(api: httpx.AsyncClient, ns: str) -> str:
    return (await api.get(pods_path(ns))).json()["metadata"]["resourceVersion"]


async def test_watch_streams_added_modified_deleted(api: httpx.AsyncClient, ns: str) -> None:
    rv = await _rv(api, ns)

    async def mutate() -> None:
        await api.post(pods_path(ns), json=pod("w"))
        await api.patch(pods_path(ns, "w"), json={"metadata": {"labels": {"x": "1"}}}, headers=MERGE)
        await api.delete(pods_path(ns, "w"))

    task = asyncio.create_task(mutate())
    events = await collect(api, pods_path(ns), lambda evs: len(evs) == 3, resourceVersion=rv)
    await task
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["metadata"]["labels"] == {"x": "1"}
    assert events[0]["object"]["kind"] == "Pod" and events[0]["object"]["apiVersion"] == "v1"
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs[0] > int(rv) and rvs[0] < rvs[1] < rvs[2]  # the DELETED object carries the deletion's revision
    last, gone = events[1]["object"], events[2]["object"]
    assert gone == {**last, "metadata": {**last["metadata"], "resourceVersion": str(rvs[2])}}


async def test_an_object_written_over_an_unreadable_value_reaches_watchers(
    api: httpx.AsyncClient, ns: str, raw_etcd: aetcd.Client
) -> None:
    """etcd's previous value of a change is decoded only when the cache needs it (upstream's watchChan decodes
    it only for a delete or a filtering watch): an unreadable previous value does not hide the change."""
    rv = await _rv(api, ns)
    key = f"/registry/pods/{ns}/mended".encode()
    await raw_etcd.put(key, b"{not json")
    body = pod("mended")
    body["metadata"].update(namespace=ns, uid="6a1c6d0e-0000-4000-8000-000000000001")
    await raw_etcd.put(key, orjson.dumps(body))
    await api.post(pods_path(ns), json=pod("after"))
    events = await collect(api, pods_path(ns), lambda evs: len(evs) == 2, resourceVersion=rv)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "mended"), ("ADDED", "after")]
    got = await api.get(pods_path(ns, "mended"))
    assert got.status_code == 200 and got.json()["metadata"]["uid"] == body["metadata"]["uid"]


async def test_watch_without_rv_starts_with_current_state(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("now"))
    events = await collect(api, pods_path(ns), lambda evs: len(evs) == 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "now"


async def test_selector_change_reaches_watcher_as_added_and_deleted(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("sel", {"app": "a"}))
    rv = await _rv(api, ns)

    async def relabel() -> None:
        await api.patch(pods_path(ns, "sel"), json={"metadata": {"labels": {"app": "b"}}}, headers=MERGE)
        await api.patch(pods_path(ns, "sel"), json={"metadata": {"labels": {"app": "a"}}}, headers=MERGE)

    task = asyncio.create_task(relabel())
    events = await collect(api, pods_path(ns), lambda evs: len(evs) == 2, resourceVersion=rv, labelSelector="app=a")
    await task
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]
    assert events[0]["object"]["metadata"]["labels"] == {"app": "b"}


async def test_field_selector_watch_and_legacy_watch_path(api: httpx.AsyncClient, ns: str) -> None:
    rv = await _rv(api, ns)

    async def make() -> None:
        await api.post(pods_path(ns), json=pod("other"))
        await api.post(pods_path(ns), json=pod("target"))

    task = asyncio.create_task(make())
    events = await collect(
        api, f"/api/v1/watch/namespaces/{ns}/pods/target", lambda evs: len(evs) == 1, resourceVersion=rv
    )
    await task
    assert events[0]["object"]["metadata"]["name"] == "target"


async def test_resume_after_dropped_connection_misses_and_repeats_nothing(api: httpx.AsyncClient, ns: str) -> None:
    rv = await _rv(api, ns)
    seen: list[str] = []
    for i in range(3):
        await api.post(pods_path(ns), json=pod(f"r{i}"))
    events = await collect(api, pods_path(ns), lambda evs: len(evs) == 2, resourceVersion=rv)
    seen += [e["object"]["metadata"]["name"] for e in events]
    last = events[-1]["object"]["metadata"]["resourceVersion"]  # the connection drops here
    for i in range(3, 5):
        await api.post(pods_path(ns), json=pod(f"r{i}"))
    events = await collect(api, pods_path(ns), lambda evs: len(evs) == 3, resourceVersion=last)
    seen += [e["object"]["metadata"]["name"] for e in events]
    assert seen == [f"r{i}" for i in range(5)]


async def test_bookmarks_and_timeout(api: httpx.AsyncClient, ns: str) -> None:
    rv = await _rv(api, ns)
    await api.post(pods_path(ns), json=pod("bm"))
    events = []
    async with asyncio.timeout(15):
        async for ev in watch_lines(
            api, pods_path(ns), resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="6"
        ):
            events.append(ev)
    types = [e["type"] for e in events]
    assert types[0] == "ADDED" and "BOOKMARK" in types  # and the server closed the stream at timeoutSeconds
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")["object"]
    assert bookmark["kind"] == "Pod" and int(bookmark["metadata"]["resourceVersion"]) >= int(rv)


async def test_watch_list_sends_initial_events_then_bookmark(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("i1"))
    await api.post(pods_path(ns), json=pod("i2"))
    events = await collect(
        api,
        pods_path(ns),
        lambda evs: evs[-1]["type"] == "BOOKMARK",
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_table_events(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("tbl"))
    async with api.stream(
        "GET", pods_path(ns), params={"watch": "1"}, headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ) as r:
        async for line in r.aiter_lines():
            import json

            ev = json.loads(line)
            break
    assert ev["object"]["kind"] == "Table"
    assert [c["name"] for c in ev["object"]["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert ev["object"]["rows"][0]["cells"][0] == "tbl"


def _etcd_watchers(etcd: str) -> int:
    text = httpx.get(f"{etcd}/metrics").text
    return int(
        sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("etcd_debugging_mvcc_watcher_total")
        )
    )


async def test_many_client_watches_cost_etcd_nothing_more(apiserver: str, ns: str, etcd: str) -> None:
    before = _etcd_watchers(etcd)
    async with httpx.AsyncClient(base_url=apiserver, timeout=30) as api:
        rv = await _rv(api, ns)
        tasks = [
            asyncio.create_task(collect(api, pods_path(ns), lambda evs: len(evs) == 1, resourceVersion=rv))
            for _ in range(20)
        ]
        text = ""
        async with asyncio.timeout(10):
            while "apiserver_registered_watchers" not in text or _open(text) < 20:
                text = (await api.get("/metrics")).text
        assert _etcd_watchers(etcd) == before
        await api.post(pods_path(ns), json=pod("fan"))
        results = await asyncio.gather(*tasks)
    assert all(r[0]["object"]["metadata"]["name"] == "fan" for r in results)


def _open(metrics: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('apiserver_registered_watchers{resource="pods"}')
    )


@pytest.fixture
def small_cache_apiserver(etcd: str, tmp_path: Path) -> Iterator[str]:
    """An apiserver keeping only 3 events per resource."""
    proc, url = start_apiserver(tmp_path, etcd, extra=["--watch-cache-size", "3"])
    yield url
    proc.stop()


async def test_too_old_resource_version_is_410_expired(small_cache_apiserver: str, ns: str) -> None:
    async with httpx.AsyncClient(base_url=small_cache_apiserver, timeout=10) as api:
        rv = await _rv(api, ns)
        for i in range(6):
            await api.post(pods_path(ns), json=pod(f"o{i}"))
        events = await collect(api, pods_path(ns), lambda evs: True, resourceVersion=rv)
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired" and "too old resource version" in status["message"]
    # errors.NewResourceExpired: no details, the fields in Go's order
    assert list(status) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "code"]


async def test_compaction_expires_old_revisions(api: httpx.AsyncClient, ns: str, etcd: str, tmp_path: Path) -> None:
    await api.post(pods_path(ns), json=pod("k1"))
    await api.post(pods_path(ns), json=pod("k2"))
    page = (await api.get(pods_path(ns), params={"limit": "1"})).json()
    old = page["metadata"]["resourceVersion"]
    await api.post(pods_path(ns), json=pod("k3"))
    now = int((await api.get(pods_path(ns))).json()["metadata"]["resourceVersion"])
    await asyncio.to_thread(
        subprocess.run,
        ["etcdctl", "--endpoints", etcd, "compaction", str(now)],
        check=True,
        capture_output=True,
        env={"ETCDCTL_API": "3"},
        timeout=10,
    )
    r = await api.get(pods_path(ns), params={"resourceVersion": old, "resourceVersionMatch": "Exact"})
    assert r.status_code == 410 and r.json()["reason"] == "Expired"
    r = await api.get(pods_path(ns), params={"limit": "1", "continue": page["metadata"]["continue"]})
    assert r.status_code == 410 and "continue parameter is too old" in r.json()["message"]
    proc, url = start_apiserver(tmp_path, etcd)  # a fresh cache only has history after compaction
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
            events = await collect(fresh, pods_path(ns), lambda evs: True, resourceVersion=old)
        assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    finally:
        proc.stop()


async def test_watch_from_future_resource_version_is_504(api: httpx.AsyncClient, ns: str) -> None:
    current = int((await api.get(f"/api/v1/namespaces/{ns}/pods")).json()["metadata"]["resourceVersion"])
    r = await api.get(f"/api/v1/namespaces/{ns}/pods", params={"watch": "1", "resourceVersion": str(current + 10_000)})
    assert r.status_code == 504
    body = r.json()
    assert body["reason"] == "Timeout"
    # storage.NewTooLargeResourceVersionError: errors.NewTimeoutError plus one cause
    assert body["message"].startswith(f"Timeout: Too large resource version: {current + 10_000}, current: ")
    assert body["details"] == {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }
    assert r.headers["retry-after"] == "1"


async def _raw_watch(api: httpx.AsyncClient, path: str, accept: str, rv: str, want: int, **params: str) -> list[bytes]:
    """The frames of one watch (JSON lines, or length-prefixed protobuf) until `want` of them came."""
    frames: list[bytes] = []
    buf = b""
    query = {"watch": "1", "resourceVersion": rv, **params}
    async with api.stream("GET", path, params=query, headers={"Accept": accept}) as r:
        assert r.status_code == 200
        async for chunk in r.aiter_raw():
            buf += chunk
            if accept.startswith(PROTOBUF):
                while len(buf) >= 4 and len(buf) - 4 >= (size := int.from_bytes(buf[:4], "big")):
                    frames.append(buf[4 : 4 + size])
                    buf = buf[4 + size :]
            else:
                *lines, buf = buf.split(b"\n")
                frames.extend(line for line in lines if line.strip())
            if len(frames) >= want:
                return frames
    raise AssertionError(f"the watch ended after {len(frames)} frames")


async def test_watchers_in_every_framing_see_a_burst_whole_and_in_order(api: httpx.AsyncClient, ns: str) -> None:
    """Several watches of one resource, in JSON, protobuf and metadata-only framings and with or without a
    selector, each see every event of a burst of concurrent writes, in order, as its own framing renders it."""
    rv = await _rv(api, ns)
    path = pods_path(ns)
    count = 30
    before = _open((await api.get("/metrics")).text)
    accepts = ["application/json", "application/json", PROTOBUF, PROTOBUF, PARTIAL]
    watches = [asyncio.create_task(_raw_watch(api, path, a, rv, count)) for a in accepts]
    odd = asyncio.create_task(_raw_watch(api, path, "application/json", rv, count // 2, labelSelector="odd=true"))
    async with asyncio.timeout(10):  # every watch registered before the burst
        while _open((await api.get("/metrics")).text) < before + len(accepts) + 1:
            pass

    async def create(i: int) -> None:
        body = pod(f"b{i}")
        body["metadata"]["labels"] = {"odd": str(i % 2 == 1).lower()}
        assert (await api.post(path, json=body)).status_code == 201

    await asyncio.gather(*(create(i) for i in range(count)))
    async with asyncio.timeout(20):
        json_a, json_b, proto_a, proto_b, partial = await asyncio.gather(*watches)
        odd_lines = await odd
    assert json_a == json_b and proto_a == proto_b  # one event, one rendering, whichever watcher
    events = [orjson.loads(line) for line in json_a]
    assert {e["type"] for e in events} == {"ADDED"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == count
    assert sorted(e["object"]["metadata"]["name"] for e in events) == sorted(f"b{i}" for i in range(count))
    decoded = [decode_protobuf(f) for f in proto_a]

    def ident(e: dict[str, Any]) -> tuple[str, str, str, str]:
        m = e["object"]["metadata"]
        return e["type"], m["name"], m["uid"], m["resourceVersion"]

    assert [ident(d) for d in decoded] == [ident(e) for e in events]
    metadata_only = [orjson.loads(line) for line in partial]
    assert [m["object"]["kind"] for m in metadata_only] == ["PartialObjectMetadata"] * count
    assert [m["object"]["metadata"] for m in metadata_only] == [e["object"]["metadata"] for e in events]
    odd_events = [orjson.loads(line) for line in odd_lines]
    assert [e["object"]["metadata"]["name"] for e in odd_events] == [
        e["object"]["metadata"]["name"] for e in events if e["object"]["metadata"]["labels"]["odd"] == "true"
    ]


async def _slow_watch(apiserver: str, path: str, rv: str, want: int, go: asyncio.Event) -> list[dict[str, Any]]:
    """A watch over a socket with a tiny receive buffer that reads nothing until `go`: the server's writes
    back up and its transport pauses. Then every event, from the chunked body, until `want` came."""
    url = httpx.URL(apiserver)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (url.host, url.port))
        target = f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=60"
        await loop.sock_sendall(sock, f"GET {target} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
        await go.wait()
        raw, body, events = b"", b"", []
        head_end = -1
        while len(events) < want:
            data = await loop.sock_recv(sock, 1 << 16)
            assert data, f"the watch ended after {len(events)} events"
            raw += data
            if head_end < 0:
                head_end = raw.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                assert raw.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in raw[:head_end].lower()
                raw = raw[head_end + 4 :]
            while (eol := raw.find(b"\r\n")) >= 0 and len(raw) >= eol + 2 + (size := int(raw[:eol], 16)) + 2:
                assert raw[eol + 2 + size : eol + 4 + size] == b"\r\n"  # every chunk well framed
                body += raw[eol + 2 : eol + 2 + size]
                raw = raw[eol + 4 + size :]
            *lines, body = body.split(b"\n")
            events += [orjson.loads(line) for line in lines if line.strip()]
        return events
    finally:
        sock.close()


async def test_watchers_get_every_event_in_order_through_paused_writes_and_quiet_intervals(
    api: httpx.AsyncClient, apiserver: str, ns: str
) -> None:
    """Live events may be written to a watcher's connection as the cache dispatches them, or queued when
    its connection is backed up. Writes of large objects that go on past the bookmark interval, to readers
    that keep up, a protobuf reader, and a reader that reads nothing until the writes are over: each sees
    every change exactly once and in order, in well-formed chunks; a bookmark never runs ahead of events."""
    assert (await api.post(pods_path(ns), json=pod("big"))).status_code == 201
    rv = await _rv(api, ns)
    path = pods_path(ns)
    count = 60
    go = asyncio.Event()
    before = _open((await api.get("/metrics")).text)
    json_a = asyncio.create_task(_raw_watch(api, path, "application/json", rv, count))
    json_b = asyncio.create_task(_raw_watch(api, path, "application/json", rv, count, allowWatchBookmarks="true"))
    proto = asyncio.create_task(_raw_watch(api, path, PROTOBUF, rv, count))
    slow = asyncio.create_task(_slow_watch(apiserver, path, rv, count, go))
    async with asyncio.timeout(10):  # every watch registered before the writes
        while _open((await api.get("/metrics")).text) < before + 4:
            pass
    rvs = []
    started = asyncio.get_running_loop().time()
    for i in range(count):
        patch = {"metadata": {"annotations": {"filler": f"{i:04d}" * 16_000}, "labels": {"n": str(i)}}}
        r = await api.patch(pods_path(ns, "big"), json=patch, headers=MERGE)
        assert r.status_code == 200, r.text
        rvs.append(int(r.json()["metadata"]["resourceVersion"]))
        # the writes span more than the bookmark interval (5 s), when a waiting watch wakes with no event
        await asyncio.sleep(max(0.0, started + 6.0 * (i + 1) / count - asyncio.get_running_loop().time()))
    go.set()
    async with asyncio.timeout(30):
        frames_a, frames_b, frames_p, slow_events = await asyncio.gather(json_a, json_b, proto, slow)

    def seen(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
        objs = [(e["type"], e["object"]["metadata"]) for e in events if e["type"] != "BOOKMARK"]
        return [(t, m["labels"]["n"], int(m["resourceVersion"])) for t, m in objs]

    want = [("MODIFIED", str(i), rvs[i]) for i in range(count)]
    events_a = [orjson.loads(f) for f in frames_a]
    assert seen(events_a) == want
    assert seen(slow_events) == want
    assert [(e["type"], e["object"]["metadata"]["labels"]["n"]) for e in map(decode_protobuf, frames_p)] == [
        (t, n) for t, n, _ in want
    ]
    events_b = [orjson.loads(f) for f in frames_b]  # its first `count` frames, bookmarks included
    assert seen(events_b) == want[: len(seen(events_b))]
    last = int(rv)
    for e in events_b:  # bookmarks, if any came, sit between the events at their revision
        at = int(e["object"]["metadata"]["resourceVersion"])
        assert at >= last
        last = at
