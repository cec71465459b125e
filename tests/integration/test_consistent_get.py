"""A get without resourceVersion is a quorum read, even when the watch cache serves it: it sees every write
etcd finished before the get was sent, made through this apiserver or straight into etcd."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aetcd
import httpx
import orjson

from tests.integration.harden_kit import freeze
from tests.integration.helpers import etcd_calls, pod, pods_path
from tinykube.procs import Process, start_apiserver


async def test_get_sees_writes_made_straight_into_etcd(api: httpx.AsyncClient, ns: str, raw_etcd: aetcd.Client) -> None:
    r = await api.post(pods_path(ns), json=pod("fresh"))
    assert r.status_code == 201, r.text
    stored = r.json()
    key = f"/registry/pods/{ns}/fresh".encode()
    for round_ in range(30):
        stored["metadata"]["labels"] = {"round": str(round_)}
        await raw_etcd.put(key, orjson.dumps(stored))
        answers = await asyncio.gather(*(api.get(pods_path(ns, "fresh")) for _ in range(4)))
        for got in answers:
            assert got.status_code == 200, got.text
            assert got.json()["metadata"]["labels"] == {"round": str(round_)}


async def test_get_of_a_key_deleted_in_etcd_is_404(api: httpx.AsyncClient, ns: str, raw_etcd: aetcd.Client) -> None:
    assert (await api.post(pods_path(ns), json=pod("gone"))).status_code == 201
    assert (await api.get(pods_path(ns, "gone"))).status_code == 200
    await raw_etcd.delete(f"/registry/pods/{ns}/gone".encode())
    r = await api.get(pods_path(ns, "gone"))
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"


async def test_get_after_update_returns_the_update_and_its_resource_version(api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(pods_path(ns), json=pod("upd"))).status_code == 201
    for i in range(10):
        patch = {"metadata": {"annotations": {"n": str(i)}}}
        r = await api.patch(pods_path(ns, "upd"), json=patch, headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        got = (await api.get(pods_path(ns, "upd"))).json()
        assert got["metadata"]["annotations"] == {"n": str(i)}
        assert got["metadata"]["resourceVersion"] == r.json()["metadata"]["resourceVersion"]


async def test_concurrent_gets_share_one_revision_read_and_no_object_read(
    api: httpx.AsyncClient, apiserver_proc: tuple[Process, str], ns: str
) -> None:
    assert (await api.post(pods_path(ns), json=pod("shared"))).status_code == 201
    assert (await api.get(pods_path(ns, "shared"))).status_code == 200  # the cache has caught up
    before = (await api.get("/metrics")).text
    answers = await _get_all_at_once(*apiserver_proc, pods_path(ns, "shared"), 64)
    after = (await api.get("/metrics")).text
    assert all(code == 200 and body["metadata"]["name"] == "shared" for code, body in answers)
    assert etcd_calls(after, "get") == etcd_calls(before, "get")  # every object came from the watch cache
    revision_reads = etcd_calls(after, "status") - etcd_calls(before, "status")
    assert 1 <= revision_reads < 16


async def _get_all_at_once(server: Process, base: str, path: str, n: int) -> list[tuple[int, dict]]:
    """n GETs of `path` that reach the apiserver together: n connections opened and answered once (`/version`,
    no etcd call), then the apiserver stopped (SIGSTOP) while every GET is written, and let go. It then finds
    all n readable in one turn of its loop, however loaded the machine is: an HTTP client library sends them
    one by one, and even requests written in one go arrived a few at a time under load."""
    url = httpx.URL(base)
    conns = [await asyncio.open_connection(url.host, url.port) for _ in range(n)]

    def send(target: str) -> None:
        for _, writer in conns:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {url.host}\r\nAccept: application/json\r\n\r\n".encode())

    async def answer(reader: asyncio.StreamReader) -> tuple[int, dict]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower().split("\r\n")
        length = next(int(h.split(":")[1]) for h in head if h.startswith("content-length:"))
        return int(head[0].split()[1]), orjson.loads(await reader.readexactly(length))

    async def answers() -> list[tuple[int, dict]]:
        return await asyncio.wait_for(asyncio.gather(*(answer(r) for r, _ in conns)), 30)

    try:
        send("/version")
        await answers()
        await freeze(server.pid)
        try:
            send(path)
            await asyncio.gather(*(writer.drain() for _, writer in conns))
        finally:
            os.kill(server.pid, signal.SIGCONT)
        return await answers()
    finally:
        for _, writer in conns:
            writer.close()


async def test_a_get_of_an_absent_object_reads_no_object_from_etcd(api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(pods_path(ns), json=pod("present"))).status_code == 201
    assert (await api.get(pods_path(ns, "present"))).status_code == 200  # the cache has caught up
    before = (await api.get("/metrics")).text
    r = await api.get(pods_path(ns, "absent"))
    after = (await api.get("/metrics")).text
    assert r.status_code == 404 and r.json()["reason"] == "NotFound", r.text
    assert r.json()["details"] == {"name": "absent", "kind": "pods"}
    assert etcd_calls(after, "get") == etcd_calls(before, "get")  # the watch cache vouched for the absence


async def test_a_key_etcd_holds_undecodable_is_read_from_etcd_not_found_missing(
    api: httpx.AsyncClient, ns: str, raw_etcd: aetcd.Client
) -> None:
    """The watch cache skips a value it cannot decode, so its missing the key must not answer 404: etcd is
    read, as before the cache answered misses; once the key is readable again or gone, the cache answers."""
    key = f"/registry/pods/{ns}/garbled".encode()
    await raw_etcd.put(key, b"{not json")
    assert (await api.post(pods_path(ns), json=pod("after"))).status_code == 201
    assert (await api.get(pods_path(ns, "after"))).status_code == 200  # the cache is past the garbled write
    before = (await api.get("/metrics")).text
    r = await api.get(pods_path(ns, "garbled"))
    after = (await api.get("/metrics")).text
    assert r.status_code == 500 and r.json()["kind"] == "Status", r.text
    assert etcd_calls(after, "get") == etcd_calls(before, "get") + 1
    body = pod("garbled")
    body["metadata"].update(namespace=ns, uid="6a1c6d0e-0000-4000-8000-000000000002")
    await raw_etcd.put(key, orjson.dumps(body))
    r = await api.get(pods_path(ns, "garbled"))
    assert r.status_code == 200 and r.json()["metadata"]["uid"] == body["metadata"]["uid"], r.text
    await raw_etcd.delete(key)
    before = (await api.get("/metrics")).text
    assert (await api.get(pods_path(ns, "garbled"))).status_code == 404
    assert etcd_calls((await api.get("/metrics")).text, "get") == etcd_calls(before, "get")


async def test_a_key_undecodable_when_the_cache_was_listed_is_read_from_etcd(
    etcd: str, tmp_path: Path, ns: str, raw_etcd: aetcd.Client
) -> None:
    """The same for a value the cache's first list skipped (written before this apiserver started)."""
    await raw_etcd.put(f"/registry/pods/{ns}/listed".encode(), b"{not json")
    proc, url = start_apiserver(tmp_path, etcd)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
            assert (await fresh.get(pods_path(ns, "none"))).status_code == 404
            assert (await fresh.get(pods_path(ns, "listed"))).status_code == 500
    finally:
        proc.stop()
