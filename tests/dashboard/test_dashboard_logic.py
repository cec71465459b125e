"""The page's own logic, run in the real Chromium: durations and quantities as Kubernetes formats
and parses them."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from apiserver.printers import human_duration
from tests.dashboard.conftest import Dashboard

SECONDS = [-5, -1, 0, 1, 59, 119, 120, 121, 599, 600, 601, 3599, 10799, 10800, 10860, 28799, 28800, 172799]
SECONDS += [172800, 691199, 691200, 63071999, 63072000, 63158400, 252287999, 252288000, 400000000]


async def test_durations_match_kubectl(page: Any, dashboard: Dashboard) -> None:
    await page.goto(f"{dashboard.url}/")
    got = await page.evaluate(
        "async (xs) => { const k = await import('/static/js/kube.js'); return xs.map((s) => k.humanDuration(s)); }",
        SECONDS,
    )
    assert got == [human_duration(timedelta(seconds=s)) for s in SECONDS]


async def test_quantities_parse_like_resource_quantity(page: Any, dashboard: Dashboard) -> None:
    await page.goto(f"{dashboard.url}/")
    cases = {
        "250m": 0.25,
        "1": 1,
        "2.5": 2.5,
        "123456789n": 0.123456789,
        "500u": 0.0005,
        "1Ki": 1024,
        "128Mi": 128 * 2**20,
        "2Gi": 2 * 2**30,
        "1k": 1000,
        "3M": 3e6,
        "1e3": 1000,
    }
    got = await page.evaluate(
        "async (xs) => { const k = await import('/static/js/kube.js');"
        " return xs.map((q) => k.parseQuantity(q))"
        "   .map((n) => [n, k.formatCPU(n), k.formatMemory(n)]); }",
        list(cases),
    )
    assert [g[0] for g in got] == [pytest.approx(v) for v in cases.values()]
    assert got[0][1] == "250m" and got[6][2] == "128Mi"
    bad = await page.evaluate("async () => (await import('/static/js/kube.js')).parseQuantity('12 parsecs')")
    assert math.isnan(bad)
