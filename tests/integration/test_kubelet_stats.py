"""A real kubelet's /stats/summary and /metrics/resource for a pod that burns CPU.

The pod's container forks, so its session holds two busy processes and the figures must count both.
The cumulative CPU the kubelet reports is checked against the processes' own /proc counters.
Collection runs every half second here.

The test machine is shared and the kernel schedules by session (autogroup): a container is one
session, so with a dozen busy sessions around it gets a sixth of a core however many processes it
runs. The test gives the burning session a higher autogroup priority (as root may) so that what it
measures is a busy container, not the machine's contention.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrics_server.scrape import parse_resource_metrics
from tests.integration.test_kubelet_kit import (
    KubeletProc,
    condition,
    create,
    eventually,
    get_pod,
    start_kubelet,
    stop_kubelet,
)

BURN = "import os\nos.fork()\nwhile True: pass\n"
PROCESSES = 2


@pytest.fixture(scope="module")
def kubelet(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProc]:
    """One kubelet collecting stats every 0.5 s."""
    k = start_kubelet(apiserver, tmp_path_factory.mktemp("kubelet-stats"), "--housekeeping-interval", "0.5")
    yield k
    stop_kubelet(k)


@pytest.fixture
async def burner(api: httpx.AsyncClient, ns: str, kubelet: KubeletProc) -> AsyncIterator[dict[str, Any]]:
    """A Running pod on the kubelet whose container burns CPU in two processes."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "burn", "labels": {"app": "burn"}},
        "spec": {
            "nodeName": kubelet.node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "burn", "image": "python:3", "command": [sys.executable, "-c", BURN]}],
        },
    }
    pod = await create(api, ns, "pods", body)

    async def running() -> dict[str, Any] | None:
        got = await get_pod(api, ns, "burn")
        return got if got and condition(got, "Ready") == "True" else None

    running_pod = await eventually(running, 30, "burn Running")
    boost_session(kubelet.pid_of(_container_id(running_pod)))
    yield running_pod
    await api.delete(f"/api/v1/namespaces/{ns}/pods/burn", params={"gracePeriodSeconds": "0"})
    await eventually(lambda: _gone(api, ns), 30, "burn deleted")
    assert pod["metadata"]["uid"]


def boost_session(pid: int) -> None:
    """Raise the scheduling priority of the session `pid` leads (its autogroup), where allowed."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text("-10")


def _container_id(pod: dict[str, Any]) -> str:
    return str(pod["status"]["containerStatuses"][0]["containerID"])


def _session_cpu_seconds(session: int) -> float:
    """utime+stime+cutime+cstime of every process in `session`, from /proc, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            total += sum(int(f) for f in fields[11:15])
    return total / ticks


async def _gone(api: httpx.AsyncClient, ns: str) -> bool:
    return await get_pod(api, ns, "burn") is None


def _pod_stats(summary: dict[str, Any], ns: str, name: str) -> dict[str, Any] | None:
    return next((p for p in summary["pods"] if p["podRef"]["namespace"] == ns and p["podRef"]["name"] == name), None)


async def test_summary_shows_a_burning_pod(kubelet: KubeletProc, ns: str, burner: dict[str, Any]) -> None:
    seen: list[Any] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{kubelet.port}", timeout=10) as k:

        async def busy() -> dict[str, Any] | None:
            r = await k.get("/stats/summary")
            assert r.status_code == 200, r.text
            pod = _pod_stats(r.json(), ns, "burn")
            seen[:] = [pod or r.json()["pods"]]
            if pod and (pod["cpu"].get("usageNanoCores") or 0) >= 500_000_000:
                return r.json()
            return None

        try:
            summary = await eventually(busy, 60, "the burning pod at 0.5 cores or more")
        except AssertionError as e:
            raise AssertionError(f"{e}; last pod stats: {seen}") from None
    pod = _pod_stats(summary, ns, "burn")
    assert pod is not None
    assert pod["podRef"]["uid"] == burner["metadata"]["uid"]
    assert pod["process_stats"] == {"process_count": PROCESSES}
    (container,) = pod["containers"]
    assert container["name"] == "burn"
    assert container["cpu"]["usageCoreNanoSeconds"] > 0
    assert container["memory"]["workingSetBytes"] > 1 << 20
    assert container["memory"]["rssBytes"] > 0
    node = summary["node"]
    assert node["nodeName"] == kubelet.node
    assert node["cpu"]["usageCoreNanoSeconds"] >= pod["cpu"]["usageCoreNanoSeconds"]
    assert node["memory"]["workingSetBytes"] >= pod["memory"]["workingSetBytes"]
    assert node["fs"]["capacityBytes"] > node["fs"]["availableBytes"] > 0
    assert {c["name"] for c in node["systemContainers"]} == {"kubelet", "pods"}


async def test_resource_metrics_count_up_for_a_burning_pod(
    kubelet: KubeletProc, ns: str, burner: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{kubelet.port}", timeout=10) as k:

        async def sample() -> tuple[float, float] | None:
            r = await k.get("/metrics/resource")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            point = parse_resource_metrics(r.text, 0.0).containers.get((ns, "burn", "burn"))
            return (point.timestamp, point.cpu_seconds) if point else None

        first = await eventually(sample, 30, "the burn container in /metrics/resource")

        async def later() -> tuple[float, float] | None:
            now = await sample()
            return now if now and now[0] > first[0] + 1.0 else None

        second = await eventually(later, 30, "a sample a second later")
        assert second[1] > first[1]
        # the kubelet's counter agrees with the processes' own: read /proc right after a sample
        at, reported = await sample() or (0.0, 0.0)
        measured = _session_cpu_seconds(kubelet.pid_of(_container_id(burner)))
        read_at = time.time()
        assert reported <= measured + 0.05
        assert measured - reported <= (read_at - at) * PROCESSES + 0.1, (measured, reported, read_at - at)
        text = (await k.get("/metrics/resource")).text
    for name in ("node_cpu_usage_seconds_total", "pod_memory_working_set_bytes", "container_start_time_seconds"):
        assert f"# TYPE {name}" in text
