"""A pod's logs in the dashboard, followed as a real kubelet writes them."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import Dashboard
from tests.dashboard.kit import eventually, pod
from tests.integration.test_kubelet_kit import KubeletProc, start_kubelet, stop_kubelet


@pytest.fixture(scope="module")
def kubelet(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProc]:
    """A real kubelet on its own random loopback address."""
    address = f"127.234.{random.randint(1, 254)}.{random.randint(1, 254)}"
    k = start_kubelet(apiserver, tmp_path_factory.mktemp("kubelet"), "--node-ip", address)
    yield k
    stop_kubelet(k)


async def test_logs_view_follows_what_the_pod_prints(
    page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str, kubelet: KubeletProc
) -> None:
    script = 'i=0; while true; do echo "tick $i from the dashboard test"; i=$((i+1)); sleep 0.3; done'
    body = pod("talker", nodeName=kubelet.node, terminationGracePeriodSeconds=1)
    body["spec"]["containers"][0]["command"] = ["sh", "-c", script]
    r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 201, r.text

    await page.goto(f"{dashboard.url}/?namespace={ns}#/logs/{ns}/talker")
    logs = page.locator("#panel-body.logs")
    # the container may not have started yet: the view waits for it and then follows
    await logs.locator("text=from the dashboard test").first.wait_for(timeout=30000)
    first = _last_tick(await logs.inner_text())
    await eventually(lambda: _ticked_past(logs, first + 3), 15, "lines printed after the view opened")
    # the pod row shows the kubelet's report
    row = page.locator(f'#pods tbody tr[data-key="{ns}/talker"]')
    await row.locator("td.status", has_text="Running").wait_for(timeout=20000)

    await page.locator("#panel-close").click()
    await page.locator("#panel").wait_for(state="hidden")
    r = await api.delete(f"/api/v1/namespaces/{ns}/pods/talker")
    assert r.status_code == 200


def _last_tick(text: str) -> int:
    ticks = [int(n) for n in re.findall(r"tick (\d+) from the dashboard test", text)]
    assert ticks, text
    return ticks[-1]


async def _ticked_past(logs: Any, n: int) -> bool:
    return _last_tick(await logs.inner_text()) >= n
