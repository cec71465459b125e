"""The disruption controller's arithmetic (upstream disruption.go's getExpectedPodCount and
countHealthyPods), on PodDisruptionBudget and Pod dicts."""

from __future__ import annotations

from typing import Any

from controller_manager.controllers.disruption import DELETION_TIMEOUT, budget_for

NOW = 1_800_000_000.0


def pdb(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, **spec}}


def pod(name: str, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"a": "b"}}
    if deleting:
        meta["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_min_available_integer_counts_the_selected_pods() -> None:
    b = budget_for(pdb(minAvailable=2), [pod("x"), pod("y"), pod("z", ready=False)], None, NOW)
    assert (b.expected, b.desired_healthy, b.current_healthy, b.allowed) == (3, 2, 2, 0)
    b = budget_for(pdb(minAvailable=1), [pod("x"), pod("y")], None, NOW)
    assert b.allowed == 1


def test_max_unavailable_uses_the_controllers_scale() -> None:
    # 3 replicas wanted, 2 pods exist and are ready: maxUnavailable 1 → 2 must stay healthy
    b = budget_for(pdb(maxUnavailable=1), [pod("x"), pod("y")], 3, NOW)
    assert (b.expected, b.desired_healthy, b.current_healthy, b.allowed) == (3, 2, 2, 0)
    b = budget_for(pdb(maxUnavailable="50%"), [pod(str(i)) for i in range(4)], 4, NOW)
    assert (b.desired_healthy, b.allowed) == (2, 2)


def test_min_available_percent_rounds_up() -> None:
    b = budget_for(pdb(minAvailable="50%"), [pod(str(i)) for i in range(3)], 3, NOW)
    assert (b.desired_healthy, b.allowed) == (2, 1)


def test_pods_being_deleted_or_just_evicted_are_not_healthy() -> None:
    recent = "2027-01-15T08:00:00Z"
    at = budget_for(pdb(minAvailable=1), [], None, NOW)  # nothing selected: nothing allowed
    assert at.allowed == 0
    budget = pdb(minAvailable=1)
    budget["status"] = {"disruptedPods": {"y": recent, "gone": recent}}
    from datetime import datetime

    now = datetime.fromisoformat(recent.replace("Z", "+00:00")).timestamp() + 1
    b = budget_for(budget, [pod("x"), pod("y"), pod("z", deleting=True)], None, now)
    assert b.current_healthy == 1 and b.disrupted == {"y": recent} and b.allowed == 0
    later = budget_for(budget, [pod("x"), pod("y")], None, now + DELETION_TIMEOUT)
    assert later.disrupted == {} and later.current_healthy == 2 and later.allowed == 1
