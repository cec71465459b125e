"""Stabilization windows and scaling policies of the HPA controller (horizontal.go's normalization),
on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from controller_manager.controllers.hpa_scaling import (
    ScaleEvent,
    ScalingHistory,
    calculate_scale_down_limit,
    calculate_scale_up_limit,
    convert_desired_replicas_with_rules,
)

NOW = 1_000_000.0


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def rules(*policies: tuple[str, int, int], select: str | None = None, window: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"policies": [{"type": t, "value": v, "periodSeconds": p} for t, v, p in policies]}
    if select:
        out["selectPolicy"] = select
    if window is not None:
        out["stabilizationWindowSeconds"] = window
    return out


@pytest.mark.parametrize(
    ("current", "ups", "downs", "scaling", "expected"),
    [
        (5, [], [], rules(("Pods", 4, 60)), 9),
        (5, [ScaleEvent(2, NOW - 30)], [], rules(("Pods", 4, 60)), 7),
        (5, [ScaleEvent(2, NOW - 90)], [], rules(("Pods", 4, 60)), 9),
        (5, [], [], rules(("Pods", 4, 60), select="Disabled"), 5),
        (5, [], [], rules(("Pods", 4, 60), ("Pods", 2, 60), select="Min"), 7),
        (10, [], [], rules(("Percent", 50, 60)), 15),
        (3, [], [], rules(("Percent", 10, 60)), 4),  # rounded up: a small percentage still adds a pod
        (5, [], [ScaleEvent(3, NOW - 10)], rules(("Pods", 1, 60)), 9),  # counted from the period's start
    ],
    ids=[
        "no events",
        "recent scale-up",
        "old scale-up",
        "disabled",
        "min change",
        "percent",
        "percent rounds up",
        "after scale-down",
    ],
)
def test_scale_up_limit(
    current: int, ups: list[ScaleEvent], downs: list[ScaleEvent], scaling: dict[str, Any], expected: int
) -> None:
    assert calculate_scale_up_limit(current, ups, downs, scaling, NOW) == expected


@pytest.mark.parametrize(
    ("current", "ups", "downs", "scaling", "expected"),
    [
        (10, [], [], rules(("Percent", 20, 60)), 8),
        (10, [], [ScaleEvent(1, NOW - 30)], rules(("Percent", 20, 60)), 8),
        (100, [], [], rules(("Percent", 10, 60), ("Pods", 5, 60)), 90),
        (10, [], [], rules(("Percent", 20, 60), select="Disabled"), 10),
        (100, [], [], rules(("Percent", 10, 60), ("Pods", 15, 60), select="Min"), 90),
    ],
    ids=["no events", "recent scale-down", "max change", "disabled", "min change"],
)
def test_scale_down_limit(
    current: int, ups: list[ScaleEvent], downs: list[ScaleEvent], scaling: dict[str, Any], expected: int
) -> None:
    assert calculate_scale_down_limit(current, ups, downs, scaling, NOW) == expected


@pytest.mark.parametrize(
    ("current", "desired", "low", "high", "expected"),
    [
        (3, 5, 1, 10, (5, "DesiredWithinRange")),
        (3, 7, 1, 10, (6, "ScaleUpLimit")),
        (1, 9, 1, 10, (4, "ScaleUpLimit")),
        (3, 12, 1, 5, (5, "TooManyReplicas")),
        (3, 0, 2, 5, (2, "TooFewReplicas")),
    ],
)
def test_rules_without_behavior(current: int, desired: int, low: int, high: int, expected: tuple[int, str]) -> None:
    replicas, reason, _ = convert_desired_replicas_with_rules(current, desired, low, high)
    assert (replicas, reason) == expected


def test_downscale_stabilization_keeps_the_highest_recent_recommendation() -> None:
    clock = Clock()
    h = ScalingHistory(downscale_stabilization=300, clock=clock)
    h.record_initial(4, "ns/a")
    desired, conds = h.normalize("ns/a", 4, 2, 1, 10)
    assert desired == 4
    assert conds[0][:3] == ("AbleToScale", "True", "ScaleDownStabilized")
    assert conds[1][:3] == ("ScalingLimited", "False", "DesiredWithinRange")
    clock.now += 200
    assert h.normalize("ns/a", 4, 1, 1, 10)[0] == 4  # the initial 4 is still in the window
    clock.now += 101
    # the 4 and the 2 of 301 s ago have left the window; the 1 of 101 s ago is the highest
    desired, conds = h.normalize("ns/a", 4, 1, 1, 10)
    assert desired == 1
    assert conds[0][2] == "ReadyForNewScale"
    assert conds[1][:3] == ("ScalingLimited", "False", "DesiredWithinRange")


def test_scale_up_is_not_stabilized_without_behavior() -> None:
    h = ScalingHistory(downscale_stabilization=300, clock=Clock())
    h.record_initial(2, "ns/a")
    desired, conds = h.normalize("ns/a", 2, 3, 1, 10)
    assert desired == 3
    assert conds[0][2] == "ReadyForNewScale"


def test_behavior_windows_and_policies() -> None:
    clock = Clock()
    h = ScalingHistory(downscale_stabilization=300, clock=clock)
    behavior = {
        "scaleUp": rules(("Pods", 2, 60), window=30),
        "scaleDown": rules(("Pods", 1, 60)),  # no window: the controller's 300 s
    }
    h.record_initial(2, "ns/a")
    # scale-up window: the lowest recent recommendation (the initial 2) holds the count
    desired, conds = h.normalize_with_behaviors("ns/a", behavior, 2, 8, 1, 10)
    assert desired == 2
    assert conds[0][:3] == ("AbleToScale", "True", "ScaleUpStabilized")
    clock.now += 31
    # past the window: 8 is wanted, the Pods policy lets 2 more in per 60 s
    desired, conds = h.normalize_with_behaviors("ns/a", behavior, 2, 8, 1, 10)
    assert desired == 4
    assert conds[1][:3] == ("ScalingLimited", "True", "ScaleUpLimit")
    h.store_scale_event(behavior, "ns/a", 2, 4)
    clock.now += 31
    desired, _ = h.normalize_with_behaviors("ns/a", behavior, 4, 8, 1, 10)
    assert desired == 4  # 2 added within the last 60 s already
    clock.now += 60
    desired, conds = h.normalize_with_behaviors("ns/a", behavior, 4, 8, 1, 10)
    assert desired == 6
    # scale-down: the highest recommendation of the last 300 s (8) keeps the count
    desired, conds = h.normalize_with_behaviors("ns/a", behavior, 6, 1, 1, 10)
    assert desired == 6
    assert conds[0][2] == "ScaleDownStabilized"


def test_disabled_scale_down_never_shrinks() -> None:
    h = ScalingHistory(downscale_stabilization=0, clock=Clock())
    behavior = {
        "scaleUp": rules(("Pods", 4, 15)),
        "scaleDown": rules(("Percent", 100, 15), select="Disabled", window=0),
    }
    h.record_initial(5, "ns/a")
    desired, conds = h.normalize_with_behaviors("ns/a", behavior, 5, 1, 1, 10)
    assert desired == 5
    assert conds[1][:3] == ("ScalingLimited", "True", "ScaleDownLimit")


def test_scale_events_are_reused_once_outdated() -> None:
    clock = Clock()
    h = ScalingHistory(clock=clock)
    behavior = {"scaleUp": rules(("Pods", 4, 60)), "scaleDown": rules(("Pods", 1, 60))}
    h.store_scale_event(behavior, "ns/a", 1, 3)
    clock.now += 61
    h.store_scale_event(behavior, "ns/a", 3, 4)
    assert [(e.change, e.timestamp) for e in h.scale_up_events["ns/a"]] == [(1, NOW + 61)]
    h.store_scale_event(None, "ns/a", 4, 9)  # without behavior nothing is kept
    assert len(h.scale_up_events["ns/a"]) == 1
    h.forget("ns/a")
    assert "ns/a" not in h.scale_up_events
