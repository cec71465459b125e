"""410 handling on an apiserver with a tiny watch cache (5 events): WatchExpired, and informer relists."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from client_kit import FaultyTransport, Recorder, eventually

from client.backoff import Backoff
from client.informer import Informer
from client.rest import ApiClient
from client.watch import WatchExpired, watch
from tinykube.procs import start_apiserver

FAST = Backoff(initial=0.01, cap=0.1)


def cm(name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {}}


@pytest.fixture(scope="module")
def small_cache_apiserver(etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An apiserver of our own that keeps only 5 events per resource for watch resumes."""
    proc, url = start_apiserver(tmp_path_factory.mktemp("small-cache"), etcd, extra=["--watch-cache-size", "5"])
    yield url
    proc.stop()


@pytest.fixture
async def small(small_cache_apiserver: str) -> AsyncIterator[tuple[ApiClient, str]]:
    """A client on the small-cache apiserver and a fresh namespace there."""
    async with ApiClient(small_cache_apiserver) as api:
        ns = f"r-{uuid.uuid4().hex[:8]}"
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        yield api, ns


async def churn(api: ApiClient, ns: str, name: str, writes: int) -> None:
    """Create a configmap and update it until `writes` events happened."""
    await api.create("configmaps", cm(name), ns)
    for i in range(writes - 1):
        await api.patch("configmaps", name, {"data": {"i": str(i)}}, ns)


async def test_too_old_resource_version_raises_watch_expired(small: tuple[ApiClient, str]) -> None:
    api, ns = small
    rv = (await api.list("configmaps", ns))["metadata"]["resourceVersion"]
    await churn(api, ns, "churn", 7)
    with pytest.raises(WatchExpired) as e:
        async with contextlib.aclosing(watch(api, "configmaps", ns, rv, timeout=5)) as events:
            async for _ in events:
                pass
    assert e.value.code == 410 and e.value.reason == "Expired"


async def test_informer_relists_after_410_and_reports_the_difference(
    small: tuple[ApiClient, str], small_cache_apiserver: str
) -> None:
    writer, ns = small
    for name in ("a", "b", "c"):
        await writer.create("configmaps", cm(name), ns)
    transport = FaultyTransport()
    rec = Recorder()
    async with (
        ApiClient(small_cache_apiserver, transport=transport) as api,
        Informer(api, "configmaps", ns, watch_timeout=1, backoff=FAST) as informer,
    ):
        informer.add_handler(**rec.handlers())
        assert await informer.wait_for_sync(10)
        assert sorted(rec.verbs()) == [("add", "a"), ("add", "b"), ("add", "c")]
        a_rv = next(rv for _, name, rv in rec.calls if name == "a")

        # Hold the informer's next watch while more changes happen than the server remembers.
        transport.gate.clear()
        await eventually(lambda: transport.held == 1, 10, "the informer's next watch to be held")
        await writer.delete("configmaps", "a", ns)
        b = await writer.patch("configmaps", "b", {"data": {"x": "1"}}, ns)
        d = await writer.create("configmaps", cm("d"), ns)
        await churn(writer, ns, "e", 6)
        e = await writer.get("configmaps", "e", ns)
        transport.gate.set()

        await rec.wait_count(7)
        assert sorted(rec.calls[3:]) == sorted(
            [
                ("add", "d", d["metadata"]["resourceVersion"]),
                ("add", "e", e["metadata"]["resourceVersion"]),
                ("delete", "a", a_rv),  # the last state the informer knew
                ("update", "b", b["metadata"]["resourceVersion"]),
            ]
        )
        assert len(transport.lists()) == 2  # the initial list and the relist after 410

        # The stream goes on after the relist, with nothing repeated.
        f = await writer.create("configmaps", cm("f"), ns)
        await rec.wait_count(8)
        assert rec.calls[7] == ("add", "f", f["metadata"]["resourceVersion"])
        assert sorted(informer.store.keys()) == [f"{ns}/{n}" for n in "bcdef"]
        assert len(rec.calls) == 8
