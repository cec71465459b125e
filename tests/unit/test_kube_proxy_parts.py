"""kube-proxy's small parts: balancer, bounded-frequency runner, health JSON, duration flags."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from kube_proxy.__main__ import parse_duration
from kube_proxy.balancer import FAILURE_MEMORY, Balancer
from kube_proxy.health import ProxyHealth, go_time
from kube_proxy.plan import Endpoint
from kube_proxy.runner import BoundedFrequencyRunner

A, B, C = Endpoint("127.1.0.1", 80), Endpoint("127.1.0.2", 80), Endpoint("127.1.0.3", 80)


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- balancer ----------------------------------------------------------------------------


def test_round_robin_and_failover_order() -> None:
    b = Balancer([A, B, C])
    assert [b.order("127.0.0.1")[0] for _ in range(6)] == [A, B, C, A, B, C]
    assert b.order("127.0.0.1") == [A, B, C]  # the rest follow in turn, for failover
    assert b.order("127.0.0.1") == [B, C, A]


def test_no_endpoints() -> None:
    assert Balancer().order("127.0.0.1") == []


def test_failed_endpoints_are_tried_last_for_a_while() -> None:
    clock = Clock()
    b = Balancer([A, B, C], clock=clock)
    b.failed(A)
    assert [b.order("x")[0] for _ in range(3)] == [B, B, C]  # A's turn goes to the next healthy one
    clock.now += FAILURE_MEMORY + 1
    assert b.order("x")[0] == A  # forgiven


def test_client_ip_affinity_sticks_and_expires() -> None:
    clock = Clock()
    b = Balancer([A, B, C], affinity_timeout=10, clock=clock)
    first = b.order("127.0.0.7")[0]
    b.connected("127.0.0.7", first)
    for _ in range(5):
        clock.now += 9  # each use refreshes the record
        got = b.order("127.0.0.7")[0]
        b.connected("127.0.0.7", got)
        assert got == first
    clock.now += 11
    b.expire()
    assert b.sticky_endpoint("127.0.0.7") is None


def test_affinity_first_pick_is_the_same_on_every_proxy() -> None:
    """Independent balancers (one per node's proxy) agree on a new client's endpoint."""
    picks = {
        ip: {Balancer([A, B, C], affinity_timeout=60).order(ip)[0] for _ in range(3)} for ip in ("10.0.0.1", "10.0.0.2")
    }
    assert all(len(p) == 1 for p in picks.values())
    spread = {Balancer([A, B, C], affinity_timeout=60).order(f"127.0.{i}.1")[0] for i in range(50)}
    assert spread == {A, B, C}  # clients spread over every endpoint


def test_affinity_moves_when_the_endpoint_fails_or_goes() -> None:
    b = Balancer([A, B], affinity_timeout=60)
    b.connected("c", A)
    b.failed(A)
    assert b.order("c") == [B, A]  # an endpoint that just failed is tried last, even by its sticky clients
    b.connected("c", B)  # the connection fell over to B
    assert b.sticky_endpoint("c") == B
    b.update([A, C], 60)  # B went away: its records go too
    assert b.sticky_endpoint("c") is None


def test_update_keeps_affinity_for_surviving_endpoints_and_drops_it_when_disabled() -> None:
    b = Balancer([A, B], affinity_timeout=60)
    b.connected("c", B)
    b.update([B, C], 60)
    assert b.sticky_endpoint("c") == B
    b.update([B, C], None)
    assert b.sticky_endpoint("c") is None
    assert b.order("c")[0] in (B, C)


# --- runner ------------------------------------------------------------------------------


async def wait_until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_runner_folds_bursts_and_keeps_min_interval() -> None:
    starts: list[float] = []

    def fn() -> bool:
        starts.append(time.monotonic())
        return True

    r = BoundedFrequencyRunner("t", fn, min_interval=0.3, max_interval=60, retry_interval=60)
    task = asyncio.create_task(r.loop())
    try:
        for _ in range(50):
            r.run()
        await wait_until(lambda: len(starts) == 1)
        for _ in range(50):  # asked again during the minimum interval: one more run, after it
            r.run()
        await wait_until(lambda: len(starts) == 2)
        assert starts[1] - starts[0] >= 0.3
        await asyncio.sleep(0.05)
        assert len(starts) == 2  # the burst of 50 became one run
    finally:
        task.cancel()


async def test_runner_runs_every_max_interval_unasked() -> None:
    runs: list[float] = []
    r = BoundedFrequencyRunner("t", lambda: runs.append(time.monotonic()) is None, 0.0, 0.1, 60)
    task = asyncio.create_task(r.loop())
    try:
        await wait_until(lambda: len(runs) >= 3)
        assert runs[2] - runs[0] >= 0.2
    finally:
        task.cancel()


async def test_runner_retries_after_failure() -> None:
    results = [False, True]
    calls: list[float] = []

    async def fn() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 3:
            raise RuntimeError("boom")  # an exception is a failure too, and does not stop the loop
        return results[min(len(calls) - 1, 1)]

    r = BoundedFrequencyRunner("t", fn, min_interval=0.0, max_interval=60, retry_interval=0.1)
    task = asyncio.create_task(r.loop())
    try:
        r.run()
        await wait_until(lambda: len(calls) == 2)  # the failed run is retried unasked
        assert calls[1] - calls[0] >= 0.1
        r.run()
        await wait_until(lambda: len(calls) == 4)  # the run that raised is retried too
        await asyncio.sleep(0.25)
        assert len(calls) == 4  # and a success stops the retries
    finally:
        task.cancel()


def test_runner_rejects_max_below_min() -> None:
    with pytest.raises(ValueError, match="must be >= min_interval"):
        BoundedFrequencyRunner("t", lambda: True, 2, 1, 1)


# --- health ------------------------------------------------------------------------------

GO_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? \+0000 UTC( m=\+\d+\.\d{9})?"


def test_go_time_format() -> None:
    assert go_time(None) == "0001-01-01 00:00:00 +0000 UTC"
    assert go_time(1714558830.5) == "2024-05-01 10:20:30.5 +0000 UTC"
    assert go_time(1714558830.0) == "2024-05-01 10:20:30 +0000 UTC"
    assert re.fullmatch(GO_TIME, go_time(time.time(), time.monotonic()))


def test_health_body_shape_and_timeout() -> None:
    clock = Clock()
    h = ProxyHealth(health_timeout=60, clock=clock)
    code, body = h.body(with_node=True)
    assert code == 200  # healthy while starting up
    assert re.fullmatch(rf'\{{"lastUpdated": "{GO_TIME}","currentTime": "{GO_TIME}", "nodeEligible": true\}}', body)
    h.queued_update()
    clock.now += 59
    assert h.body(True)[0] == 200  # an update is pending but not late
    clock.now += 1
    code, body = h.body(True)
    assert code == 503
    assert '"lastUpdated": "0001-01-01 00:00:00 +0000 UTC"' in body  # never synced
    h.updated()
    assert h.body(True)[0] == 200
    code, body = h.body(with_node=False)
    assert code == 200 and "nodeEligible" not in body


@pytest.mark.parametrize(
    ("node", "eligible"),
    [
        ({"metadata": {"name": "n"}, "spec": {}}, True),
        ({"metadata": {"name": "n", "deletionTimestamp": "2024-01-01T00:00:00Z"}}, False),
        ({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler"}]}}, False),
        (None, False),
    ],
)
def test_node_eligibility(node: dict | None, eligible: bool) -> None:
    h = ProxyHealth(60)
    h.sync_node(node)
    assert h.node_eligible is eligible
    code, body = h.body(with_node=True)
    assert code == (200 if eligible else 503)
    assert f'"nodeEligible": {str(eligible).lower()}' in body
    assert h.body(with_node=False)[0] == 200  # livez ignores the node


# --- flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30), ("0.1", 0.1), ("30s", 30), ("250ms", 0.25), ("1m30s", 90), ("1h", 3600)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "s", "-1", "5s junk"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
