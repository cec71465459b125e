"""Job controller pure logic: completed-index formatting, pod classification, wanted active pods."""

from __future__ import annotations

from typing import Any

from controller_manager.controllers.job import count_pods, want_active
from controller_manager.controllers.job_status import (
    format_indexes,
    is_finished,
    parse_indexes,
    pod_index,
    set_condition,
)


def pod(phase: str, ready: bool = False, deleting: bool = False, index: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if index is not None:
        meta["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": meta, "status": {"phase": phase, "conditions": conds}}


def test_format_indexes() -> None:
    assert format_indexes([]) == ""
    assert format_indexes([4, 0, 1, 2]) == "0-2,4"
    assert format_indexes([1, 3, 5, 6, 7, 9]) == "1,3,5-7,9"
    assert format_indexes([0]) == "0"


def test_parse_indexes() -> None:
    assert parse_indexes("0-2,4", 10) == {0, 1, 2, 4}
    assert parse_indexes("0-2,4,9", 5) == {0, 1, 2, 4}
    assert parse_indexes("", 3) == set()
    assert parse_indexes("x,1", 3) == {1}


def test_pod_index() -> None:
    assert pod_index(pod("Running", index=3)) == 3
    assert pod_index(pod("Running")) is None
    bad = pod("Running")
    bad["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": "-1"}
    assert pod_index(bad) is None


def test_count_pods() -> None:
    c = count_pods(
        [
            pod("Running", ready=True),
            pod("Pending"),
            pod("Running", deleting=True),
            pod("Succeeded"),
            pod("Succeeded"),
            pod("Failed"),
        ]
    )
    assert (len(c.active), c.ready, len(c.terminating), len(c.succeeded), len(c.failed)) == (2, 1, 1, 2, 1)


def test_want_active() -> None:
    assert want_active({"parallelism": 2, "completions": 3}, succeeded=0, active=0) == 2
    assert want_active({"parallelism": 2, "completions": 3}, succeeded=2, active=0) == 1
    assert want_active({"parallelism": 2, "completions": 3}, succeeded=3, active=1) == 0
    # no completions: parallelism until the first success, then leave running pods alone
    assert want_active({"parallelism": 3}, succeeded=0, active=0) == 3
    assert want_active({"parallelism": 3}, succeeded=1, active=2) == 2


def test_conditions() -> None:
    conds: list[dict[str, Any]] = []
    assert set_condition(conds, "Complete", "True", "CompletionsReached", "m", "t1")
    assert not set_condition(conds, "Complete", "True", "CompletionsReached", "m", "t2")
    assert conds[0]["lastTransitionTime"] == "t1"
    assert is_finished({"status": {"conditions": conds}}) == "Complete"
    assert is_finished({"status": {}}) is None


def test_on_failure_restarts_count_towards_backoff_limit() -> None:
    from controller_manager.controllers.job import _restarts_exceed

    def job(limit: int, policy: str = "OnFailure") -> dict[str, Any]:
        return {"spec": {"backoffLimit": limit, "template": {"spec": {"restartPolicy": policy}}}}

    running = pod("Running")
    running["status"]["containerStatuses"] = [{"name": "c", "restartCount": 2}]
    assert _restarts_exceed(job(2), [running])
    assert not _restarts_exceed(job(3), [running])
    assert not _restarts_exceed(job(1, "Never"), [running])
    fresh = pod("Running")
    assert not _restarts_exceed(job(0), [fresh])
    assert _restarts_exceed(job(0), [running])
