"""Pure parts of the ReplicaSet controller: deletion ranking, slow start, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apimachinery.errors import StatusError
from controller_manager.controllers.replicaset_util import (
    calculate_status,
    format_time,
    get_pods_to_delete,
    is_pod_terminating,
    logarithmic_rank_diff,
    rank_pods_for_deletion,
    slow_start_batch,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready_since: timedelta | None = None,
    restarts: int = 0,
    age: timedelta = timedelta(hours=1),
    cost: int | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod as the informer would hold it."""
    conditions = []
    if ready_since is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": format_time(NOW - ready_since)})
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": format_time(NOW - age),
        "labels": labels if labels is not None else {"app": "a"},
    }
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": [{"restartCount": restarts}]},
    }


def names(pods: list[dict[str, Any]]) -> list[str]:
    """Pod names in order."""
    return [p["metadata"]["name"] for p in pods]


def ranked(*pods: dict[str, Any], ranks: list[int] | None = None) -> list[str]:
    """Names in deletion order."""
    return names(rank_pods_for_deletion(list(pods), ranks or [0] * len(pods), NOW))


def test_unscheduled_before_scheduled() -> None:
    assert ranked(pod("sched", ready_since=timedelta(hours=1)), pod("unsched", node="", phase="Pending")) == [
        "unsched",
        "sched",
    ]


def test_pending_before_unknown_before_running() -> None:
    assert ranked(pod("run"), pod("unknown", phase="Unknown"), pod("pend", phase="Pending")) == [
        "pend",
        "unknown",
        "run",
    ]


def test_not_ready_before_ready() -> None:
    assert ranked(pod("ready", ready_since=timedelta(minutes=5)), pod("notready")) == ["notready", "ready"]


def test_lower_deletion_cost_first() -> None:
    a = pod("expensive", ready_since=timedelta(minutes=1), cost=100)
    b = pod("cheap", ready_since=timedelta(hours=5), cost=-5)
    assert ranked(a, b) == ["cheap", "expensive"]


def test_doubled_up_first() -> None:
    assert ranked(pod("alone", node="n2"), pod("crowded", node="n1"), ranks=[1, 3]) == ["crowded", "alone"]


def test_ready_for_less_time_first_in_log_buckets() -> None:
    young = pod("young", ready_since=timedelta(seconds=10))
    old = pod("old", ready_since=timedelta(hours=2))
    assert ranked(old, young) == ["young", "old"]


def test_more_restarts_first() -> None:
    since = timedelta(minutes=10)
    assert ranked(pod("calm", ready_since=since), pod("flappy", ready_since=since, restarts=4)) == ["flappy", "calm"]


def test_newer_first_then_uid() -> None:
    assert ranked(pod("old", age=timedelta(days=3)), pod("new", age=timedelta(minutes=1))) == ["new", "old"]
    # Same log2 bucket of age: ties are broken by uid.
    a, b = pod("b", age=timedelta(seconds=1000)), pod("a", age=timedelta(seconds=1001))
    assert ranked(a, b) == ["a", "b"]


def test_logarithmic_rank_diff() -> None:
    assert logarithmic_rank_diff(NOW - timedelta(seconds=1.1), NOW - timedelta(seconds=1.5), NOW) == 0
    assert logarithmic_rank_diff(NOW - timedelta(seconds=1), NOW - timedelta(seconds=4), NOW) < 0
    # No age yet (now or in the future) is the lowest rank, -1; 1.1 s is 2**30 ns.
    assert logarithmic_rank_diff(NOW + timedelta(seconds=1), NOW, NOW) == 0
    assert logarithmic_rank_diff(NOW, NOW - timedelta(seconds=1.1), NOW) == -31


def test_get_pods_to_delete_uses_related_pods_per_node() -> None:
    mine = [pod("a", node="n1"), pod("b", node="n2")]
    related = [*mine, pod("x", node="n2"), pod("y", node="n2")]
    assert names(get_pods_to_delete(mine, related, 1, NOW)) == ["b"]
    assert names(get_pods_to_delete(mine, related, 2, NOW)) == ["a", "b"]  # all of them: no ranking needed


async def test_slow_start_batches_double_and_stop_on_error() -> None:
    calls: list[int] = []

    async def ok() -> None:
        calls.append(1)

    successes, err = await slow_start_batch(10, 1, ok)
    assert (successes, err, len(calls)) == (10, None, 10)

    attempts = 0

    async def fail_from_fifth() -> None:
        nonlocal attempts
        attempts += 1
        if attempts >= 5:
            raise StatusError(403, "Forbidden", "exceeded quota")

    successes, err = await slow_start_batch(10, 1, fail_from_fifth)
    # Batches of 1 and 2 succeed; in the batch of 4 only the first does, and nothing more is tried.
    assert attempts == 7
    assert successes == 4
    assert isinstance(err, StatusError)


def test_calculate_status_counts_and_omits_zeros() -> None:
    rs = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3, "minReadySeconds": 60, "template": {"metadata": {"labels": {"app": "a", "t": "1"}}}},
        "status": {"replicas": 1, "readyReplicas": 1},
    }
    pods = [
        pod("ready-long", ready_since=timedelta(minutes=5), labels={"app": "a", "t": "1"}),
        pod("ready-short", ready_since=timedelta(seconds=5), labels={"app": "a"}),
        pod("notready", labels={"app": "a", "t": "1"}),
    ]
    st = calculate_status(rs, pods, None, NOW)
    assert st == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1}
    assert calculate_status(rs, [], None, NOW) == {"replicas": 0}


def test_replica_failure_condition_set_then_removed() -> None:
    rs: dict[str, Any] = {"spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "a"}}}}, "status": {}}
    err = StatusError(403, "Forbidden", 'pods "x-1" is forbidden: exceeded quota: q')
    st = calculate_status(rs, [], err, NOW)
    (cond,) = st["conditions"]
    assert cond == {
        "type": "ReplicaFailure",
        "status": "True",
        "lastTransitionTime": format_time(NOW),
        "reason": "FailedCreate",
        "message": 'pods "x-1" is forbidden: exceeded quota: q',
    }
    rs["status"] = st
    later = calculate_status(rs, [], StatusError(403, "Forbidden", "other"), NOW + timedelta(minutes=1))
    assert later["conditions"] == [cond]  # unchanged while failing
    rs["status"] = later
    assert "conditions" not in calculate_status(rs, [pod("p1"), pod("p2")], None, NOW)


def test_failed_delete_reason() -> None:
    rs = {"spec": {"replicas": 0, "template": {"metadata": {"labels": {"app": "a"}}}}, "status": {}}
    st = calculate_status(rs, [pod("p")], StatusError(500, "InternalError", "boom"), NOW)
    assert st["conditions"][0]["reason"] == "FailedDelete"


@pytest.mark.parametrize("value", ["2026-01-01T12:00:00Z", "2026-01-01T12:00:00.123456Z"])
def test_ready_time_formats(value: str) -> None:
    p = pod("p")
    p["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": value}]
    q = pod("q", ready_since=timedelta(days=1))
    assert ranked(q, p) == ["p", "q"]


def test_terminating_replicas_reported_when_asked() -> None:
    rs = {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "a"}}}}, "status": {}}
    assert calculate_status(rs, [pod("p")], None, NOW, 2) == {
        "replicas": 1,
        "fullyLabeledReplicas": 1,
        "terminatingReplicas": 2,
    }
    assert calculate_status(rs, [], None, NOW, 0) == {"replicas": 0, "terminatingReplicas": 0}
    gone = pod("g")
    gone["metadata"]["deletionTimestamp"] = format_time(NOW)
    assert is_pod_terminating(gone) and not is_pod_terminating(pod("p"))
    gone["status"]["phase"] = "Succeeded"
    assert not is_pod_terminating(gone)
