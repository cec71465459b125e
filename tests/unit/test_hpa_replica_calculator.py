"""The HPA replica calculation, table-driven from upstream's replica_calculator_test.go.

The fixtures mirror upstream's fakes: pods `test-pod-<i>` with two containers that each request the
pod's CPU, Ready unless told otherwise, started at the zero time (or now / 3 minutes ago), and
PodMetrics with both containers' usage at the zero time over a one-minute window; the calculator
runs with the test periods (CPU initialisation 2 min, initial readiness delay 10 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from controller_manager.controllers.replica_calculator import (
    MAX_INT32,
    MAX_INT64,
    MetricsError,
    PodMetric,
    ReplicaCalculator,
    Tolerances,
    group_pods,
    pod_metrics_info,
)

NOW = 1_700_000_000.0
ZERO_TIME = "0001-01-01T00:00:00Z"
CONTAINERS = 2
DEFAULT = Tolerances(0.1, 0.1)
CALC = ReplicaCalculator(cpu_initialization_period=120.0, delay_of_initial_readiness_status=10.0)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Scenario:
    """What pods exist and what the metrics APIs report (upstream's calcScenario)."""

    current: int
    requests: list[str] | None = None
    levels: list[list[int]] | None = None  # [pod][container] usage in millicores
    pod_names: list[str] = field(default_factory=list)
    readiness: list[str] | None = None
    start: list[str] | None = None  # "now" or "3m" per pod
    phase: list[str] | None = None
    deleted: list[bool] | None = None
    container: str = ""

    def pods(self) -> list[dict[str, Any]]:
        count = max(self.current, len(self.phase or []))
        out = []
        for i in range(count):
            start = ZERO_TIME
            if self.start is not None:
                start = _iso(NOW if self.start[i] == "now" else NOW - 180)
            ready = self.readiness[i] if self.readiness and i < len(self.readiness) else "True"
            containers: list[dict[str, Any]] = [{"name": "container1"}, {"name": "container2"}]
            if self.requests is not None and i < len(self.requests):
                for c in containers:
                    c["resources"] = {"requests": {"cpu": self.requests[i]}}
            pod: dict[str, Any] = {
                "metadata": {"name": f"test-pod-{i}", "namespace": "test-namespace", "labels": {"name": "test-pod"}},
                "spec": {"containers": containers},
                "status": {
                    "phase": self.phase[i] if self.phase else "Running",
                    "startTime": start,
                    "conditions": [{"type": "Ready", "status": ready}],
                },
            }
            if self.deleted and self.deleted[i]:
                pod["metadata"]["deletionTimestamp"] = _iso(NOW)
            out.append(pod)
        return out

    def pod_metrics(self) -> list[dict[str, Any]]:
        items = []
        for i, levels in enumerate(self.levels or []):
            containers: list[dict[str, Any]] = [{"name": "", "usage": {}} for _ in range(CONTAINERS)]
            for j, m in enumerate(levels):
                containers[j] = {"name": f"container{j + 1}", "usage": {"cpu": f"{m}m"}}
            name = self.pod_names[i] if i < len(self.pod_names) else f"test-pod-{i}"
            items.append(
                {
                    "metadata": {"name": name, "namespace": "test-namespace"},
                    "timestamp": ZERO_TIME,
                    "window": "1m0s",
                    "containers": containers,
                }
            )
        return items


def levels(*per_pod: int) -> list[list[int]]:
    """Every container of pod i uses per_pod[i] (makePodMetricLevels)."""
    return [[v] * CONTAINERS for v in per_pod]


def get_resource_replicas(s: Scenario, target: int, tolerances: Tolerances = DEFAULT) -> tuple[int, int, int]:
    """What GetResourceReplicas answers for the scenario (with its error wording)."""
    try:
        metrics, _ = pod_metrics_info(s.pod_metrics(), "cpu", s.container)
    except MetricsError as e:
        raise MetricsError(f"unable to get metrics for resource cpu: {e}") from None
    return CALC.resource_replicas(s.current, target, "cpu", tolerances, s.pods(), metrics, s.container, NOW)


RESOURCE_CASES = [
    ("scale up", Scenario(3, ["1.0"] * 3, levels(300, 500, 700)), 30, (5, 50, CONTAINERS * 500)),
    (
        "scale up: container metric",
        Scenario(3, ["1.0"] * 3, [[1000, 300], [1000, 500], [1000, 700]], container="container2"),
        30,
        (5, 50, 500),
    ),
    (
        "scale up: unready pod scales less",
        Scenario(3, ["1.0"] * 3, levels(300, 500, 700), readiness=["False", "True", "True"]),
        30,
        (4, 60, CONTAINERS * 600),
    ),
    (
        "scale up: hot-CPU container scales less",
        Scenario(3, ["1.0"] * 3, [[0, 300], [0, 500], [0, 700]], start=["now", "3m", "3m"], container="container2"),
        30,
        (4, 60, 600),
    ),
    (
        "scale up: hot-CPU pod scales less",
        Scenario(3, ["1.0"] * 3, levels(300, 500, 700), start=["now", "3m", "3m"]),
        30,
        (4, 60, CONTAINERS * 600),
    ),
    (
        "no scale: unready pods ignored",
        Scenario(3, ["1.0"] * 3, levels(400, 500, 700), readiness=["True", "False", "False"]),
        30,
        (3, 40, CONTAINERS * 400),
    ),
    (
        "no scale: hot-CPU pods ignored",
        Scenario(
            3, ["1.0"] * 3, levels(400, 500, 700), readiness=["True", "False", "False"], start=["3m", "now", "now"]
        ),
        30,
        (3, 40, CONTAINERS * 400),
    ),
    (
        "scale up: failed pods ignored",
        Scenario(
            2,
            ["1.0"] * 4,
            levels(500, 700),
            readiness=["True", "True", "False", "False"],
            phase=["Running", "Running", "Failed", "Failed"],
        ),
        30,
        (4, 60, CONTAINERS * 600),
    ),
    (
        "scale up: failed pods ignored with missing container metric",
        Scenario(
            2,
            ["1.0"] * 4,
            [[1000, 500], [9000, 700], [1000], [9000]],
            readiness=["True", "True", "False", "False"],
            phase=["Running", "Running", "Failed", "Failed"],
            container="container2",
        ),
        30,
        (4, 60, 600),
    ),
    (
        "scale up: succeeded pods ignored",
        Scenario(
            2,
            ["1.0"] * 4,
            levels(500, 700),
            readiness=["True", "True", "False", "False"],
            phase=["Running", "Running", "Succeeded", "Succeeded"],
        ),
        30,
        (4, 60, CONTAINERS * 600),
    ),
    (
        "scale up: pods being deleted are ignored",
        Scenario(
            2,
            ["1.0"] * 4,
            levels(500, 700),
            readiness=["True", "True", "False", "False"],
            phase=["Running"] * 4,
            deleted=[False, False, True, True],
        ),
        30,
        (4, 60, CONTAINERS * 600),
    ),
    ("scale down", Scenario(5, ["1.0"] * 5, levels(100, 300, 500, 250, 250)), 50, (3, 28, CONTAINERS * 280)),
    (
        "scale down: container metric",
        Scenario(
            5, ["1.0"] * 5, [[1000, 100], [1000, 300], [1000, 500], [1000, 250], [1000, 250]], container="container2"
        ),
        50,
        (3, 28, 280),
    ),
    (
        "scale down: exclude unready pods",
        Scenario(5, ["1.0"] * 5, levels(100, 300, 500, 250, 250), readiness=["True", "True", "True", "False", "False"]),
        50,
        (2, 30, CONTAINERS * 300),
    ),
    (
        "scale down: exclude unscheduled pods",
        Scenario(
            5,
            ["1.0"] * 5,
            levels(100),
            readiness=["True", "False", "False", "False", "False"],
            phase=["Running", "Pending", "Pending", "Pending", "Pending"],
        ),
        50,
        (1, 10, CONTAINERS * 100),
    ),
    (
        "scale down: ignore hot-CPU pods",
        Scenario(5, ["1.0"] * 5, levels(100, 300, 500, 250, 250), start=["3m", "3m", "3m", "now", "now"]),
        50,
        (2, 30, CONTAINERS * 300),
    ),
    (
        "scale down: failed pods ignored",
        Scenario(
            5,
            ["1.0"] * 7,
            levels(100, 300, 500, 250, 250),
            readiness=["True"] * 5 + ["False"] * 2,
            phase=["Running"] * 5 + ["Failed"] * 2,
        ),
        50,
        (3, 28, CONTAINERS * 280),
    ),
    (
        "scale down: still-running pods being deleted are ignored",
        Scenario(
            5,
            ["1.0"] * 7,
            [[1000, 100], [1000, 300], [1000, 500], [1000, 250], [1000, 250]],
            readiness=["True"] * 5 + ["False"] * 2,
            phase=["Running"] * 7,
            deleted=[False] * 5 + [True] * 2,
            container="container2",
        ),
        50,
        (3, 28, 280),
    ),
    # missing metrics (TestReplicaCalcResourceMissingMetrics)
    (
        "superfluous metrics counted",
        Scenario(4, ["1.0"] * 4, levels(4000, 9500, 3000, 7000, 3200, 2000)),
        100,
        (24, 587, CONTAINERS * 5875),
    ),
    ("some pods missing metrics scales down", Scenario(4, ["1.0"] * 4, levels(400, 95)), 100, (3, 24, 495)),
    ("no change: metric equal to target", Scenario(2, ["1.0"] * 2, levels(1000)), 100, (2, 100, CONTAINERS * 1000)),
    ("no change: metric above target", Scenario(2, ["1.0"] * 2, levels(1900)), 100, (2, 190, CONTAINERS * 1900)),
    ("no change: metric below target", Scenario(2, ["1.0"] * 2, levels(600)), 100, (2, 60, CONTAINERS * 600)),
    (
        "no change: unready pod metric missing",
        Scenario(3, ["1.0"] * 3, levels(100, 450), readiness=["False", "True", "True"]),
        50,
        (3, 45, CONTAINERS * 450),
    ),
    (
        "no change: hot-CPU pod metric missing",
        Scenario(3, ["1.0"] * 3, levels(100, 450), start=["now", "3m", "3m"]),
        50,
        (3, 45, CONTAINERS * 450),
    ),
    (
        "scale up: unready pod metric missing",
        Scenario(3, ["1.0"] * 3, levels(100, 2000), readiness=["False", "True", "True"]),
        50,
        (4, 200, CONTAINERS * 2000),
    ),
    (
        "scale down: unready pod metric missing",
        Scenario(4, ["1.0"] * 4, levels(100, 100, 100), readiness=["False", "True", "True", "True"]),
        50,
        (3, 10, CONTAINERS * 100),
    ),
    (
        "scale down: target over 100",
        Scenario(4, ["1.0", "1.0", "2.0", "2.0"], levels(200, 100, 100), readiness=["False", "True", "True", "True"]),
        300,
        (2, 6, CONTAINERS * 100),
    ),
    (
        "rolling update with maxSurge: extra pod missing metric",
        Scenario(2, ["1.0"] * 3, levels(100, 100), phase=["Running"] * 3),
        50,
        (2, 10, CONTAINERS * 100),
    ),
]


@pytest.mark.parametrize(("name", "scenario", "target", "expected"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES])
def test_resource_replicas(name: str, scenario: Scenario, target: int, expected: tuple[int, int, int]) -> None:
    assert get_resource_replicas(scenario, target) == expected


MIXED = ["0.9", "1.0", "1.1"]
TOLERANCE_CASES = [
    ("within default tolerance", DEFAULT, levels(1010, 1030, 1020), (3, 102, CONTAINERS * 1020)),
    ("outside 0% tolerance", Tolerances(0.0, 0.0), levels(909, 1010, 1111), (4, 101, CONTAINERS * 1010)),
    ("within 200% scale-up tolerance", Tolerances(0.1, 2.0), levels(1890, 1910, 1900), (3, 190, CONTAINERS * 1900)),
    ("outside 8% scale-up tolerance", Tolerances(2.0, 0.08), levels(1100, 1080, 1090), (4, 109, CONTAINERS * 1090)),
    ("within 36% scale-down tolerance", Tolerances(0.36, 0.1), levels(660, 640, 650), (3, 65, CONTAINERS * 650)),
    ("outside 34% scale-down tolerance", Tolerances(0.34, 0.1), levels(660, 640, 650), (2, 65, CONTAINERS * 650)),
]


@pytest.mark.parametrize(
    ("name", "tolerances", "usage", "expected"), TOLERANCE_CASES, ids=[c[0] for c in TOLERANCE_CASES]
)
def test_resource_tolerances(
    name: str, tolerances: Tolerances, usage: list[list[int]], expected: tuple[int, int, int]
) -> None:
    assert get_resource_replicas(Scenario(3, MIXED, usage), 100, tolerances) == expected


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (Scenario(1, ["1.0"], levels(100), pod_names=["an-older-pod-name"]), "no metrics returned matched known pods"),
        (
            Scenario(4, ["1.0"] * 3, levels()),
            "unable to get metrics for resource cpu: no metrics returned from resource metrics API",
        ),
        (Scenario(1, [], levels(200)), "missing request for cpu in container container1 of Pod test-pod-0"),
    ],
    ids=["disjoint pod and metric names", "no metrics returned", "missing CPU request"],
)
def test_resource_replica_errors(scenario: Scenario, message: str) -> None:
    with pytest.raises(MetricsError, match=message):
        get_resource_replicas(scenario, 100)


def test_computed_tolerance_boundary() -> None:
    """TestReplicaCalcComputedToleranceAlgImplementation: just past the tolerance scales, just inside does not."""
    start_pods, used = 10, 10 * 150
    requested = 2 * used
    per_pod = requested // start_pods
    offsets = [100, -100, 10, -10, 2, -2, 1, -1, 0, 0]
    scenario = Scenario(start_pods, [f"{per_pod + o}m" for o in offsets], levels(*[used // 10] * 10))
    requested_to_used = float(requested // used)
    utilization = used * 100 // requested
    target = abs(1 / (requested_to_used * (1 - 0.1))) + 0.01
    final = math.ceil(used / (requested * target) * start_pods)
    assert get_resource_replicas(scenario, int(target * 100)) == (final, utilization, CONTAINERS * used // 10)
    target = abs(1 / (requested_to_used * (1 - 0.1))) + 0.004
    assert get_resource_replicas(scenario, int(target * 100)) == (start_pods, utilization, CONTAINERS * used // 10)


def pod_values(*values: int) -> dict[str, PodMetric]:
    return {f"test-pod-{i}": PodMetric(v, NOW, 60) for i, v in enumerate(values)}


POD_METRIC_CASES = [
    ("scale up", Scenario(3), pod_values(20000, 10000, 30000), 15000, DEFAULT, (4, 20000)),
    (
        "scale up: unready hot-CPU pod scales less",
        Scenario(3, readiness=["True", "True", "False"], start=["3m", "3m", "now"]),
        pod_values(50000, 10000, 30000),
        15000,
        DEFAULT,
        (6, 30000),
    ),
    (
        "scale up: unready hot-CPU pods avoid scale-down",
        Scenario(3, readiness=["False", "True", "False"], start=["now", "3m", "now"]),
        pod_values(50000, 15000, 30000),
        15000,
        DEFAULT,
        (7, 31666),
    ),
    ("scale down", Scenario(5), pod_values(12000, 12000, 12000, 12000, 12000), 20000, DEFAULT, (3, 12000)),
    ("within default tolerance", Scenario(3), pod_values(20000, 21000, 21000), 20000, DEFAULT, (3, 20666)),
    ("outside 1% tolerance", Scenario(3), pod_values(20000, 21000, 21000), 20000, Tolerances(0.1, 0.01), (4, 20666)),
    ("no change: missing metrics", Scenario(5), pod_values(20000, 19000, 21000), 20000, DEFAULT, (5, 20000)),
    (
        "rolling update with maxSurge: extra pod missing metric",
        Scenario(2, phase=["Running"] * 3),
        pod_values(10000, 10000),
        17000,
        DEFAULT,
        (2, 10000),
    ),
]


@pytest.mark.parametrize(
    ("name", "scenario", "metrics", "target", "tolerances", "expected"),
    POD_METRIC_CASES,
    ids=[c[0] for c in POD_METRIC_CASES],
)
def test_pod_metric_replicas(
    name: str,
    scenario: Scenario,
    metrics: dict[str, PodMetric],
    target: int,
    tolerances: Tolerances,
    expected: tuple[int, int],
) -> None:
    # custom metrics carry no resource: only Pending, missing and terminal pods are set aside (groupPods with "")
    assert (
        CALC.plain_metric_replicas(metrics, scenario.current, target, tolerances, scenario.pods(), "", NOW) == expected
    )


@pytest.mark.parametrize(
    ("current", "usage", "target", "tolerances", "readiness", "expected"),
    [
        (3, 20000, 15000, DEFAULT, None, (4, 20000)),
        (3, MAX_INT64, 1, DEFAULT, None, (MAX_INT32, MAX_INT64)),
        (3, 50000, 10000, DEFAULT, ["False", "True", "False"], (5, 50000)),
        (5, 12000, 20000, DEFAULT, None, (3, 12000)),
        (3, 20666, 20000, DEFAULT, None, (3, 20666)),
        (3, 20666, 20000, Tolerances(0.1, 0.01), None, (4, 20666)),
    ],
    ids=["scale up", "saturates to MaxInt32", "ignores unready pods", "scale down", "within tolerance", "outside 1%"],
)
def test_object_metric_replicas(
    current: int,
    usage: int,
    target: int,
    tolerances: Tolerances,
    readiness: list[str] | None,
    expected: tuple[int, int],
) -> None:
    pods = Scenario(current, readiness=readiness).pods()
    assert CALC.object_metric_replicas(current, target, usage, tolerances, pods) == expected


@pytest.mark.parametrize(
    ("replicas", "usage", "target", "tolerances", "expected"),
    [
        (1, MAX_INT64, MAX_INT64, DEFAULT, (1, MAX_INT64)),
        (3, 20000, 5000, DEFAULT, (4, 6667)),
        (5, 6000, 2000, DEFAULT, (3, 1200)),
        (4, 20166, 5000, DEFAULT, (4, 5042)),
        (4, 20208, 5000, Tolerances(0.1, 0.01), (5, 5052)),
        (0, 20000, 5000, DEFAULT, (4, 0)),
        (0, 0, 5000, DEFAULT, (0, 0)),
    ],
    ids=["huge target", "scale up", "scale down", "within tolerance", "outside 1%", "zero replicas", "zero and zero"],
)
def test_object_per_pod_replicas(
    replicas: int, usage: int, target: int, tolerances: Tolerances, expected: tuple[int, int]
) -> None:
    assert CALC.per_pod_replicas(replicas, target, usage, tolerances) == expected


@pytest.mark.parametrize(
    ("current", "values", "target", "tolerances", "readiness", "expected"),
    [
        (3, [8600], 4400, DEFAULT, ["False", "True", "False"], (2, 8600)),
        (5, [8600], 14334, DEFAULT, None, (3, 8600)),
        (3, [8600], 8888, DEFAULT, None, (3, 8600)),
        (3, [8900], 8800, Tolerances(0.1, 0.01), None, (4, 8900)),
        (3, [MAX_INT64 // 2 + 1, MAX_INT64 // 2 + 1], MAX_INT64, DEFAULT, None, (3, MAX_INT64)),
    ],
    ids=["ignores unready pods", "scale down", "within tolerance", "outside 1%", "usage capped"],
)
def test_external_metric_replicas(
    current: int,
    values: list[int],
    target: int,
    tolerances: Tolerances,
    readiness: list[str] | None,
    expected: tuple[int, int],
) -> None:
    pods = Scenario(current, readiness=readiness).pods()
    assert CALC.external_metric_replicas(current, target, values, tolerances, pods) == expected


@pytest.mark.parametrize(
    ("replicas", "value", "target", "tolerances", "expected"),
    [
        (1, MAX_INT64, 1, DEFAULT, (MAX_INT32, MAX_INT64)),
        (1, MAX_INT64, MAX_INT64, DEFAULT, (1, MAX_INT64)),
        (0, 20000, 5000, DEFAULT, (4, 0)),
        (0, 0, 5000, DEFAULT, (0, 0)),
        (3, 8600, 2150, DEFAULT, (4, 2867)),
        (5, 8600, 2867, DEFAULT, (3, 1720)),
        (3, 8600, 2900, DEFAULT, (3, 2867)),
        (3, 8600, 2800, Tolerances(0.1, 0.01), (4, 2867)),
    ],
)
def test_external_per_pod_replicas(
    replicas: int, value: int, target: int, tolerances: Tolerances, expected: tuple[int, int]
) -> None:
    assert CALC.external_per_pod_replicas(replicas, target, [value], tolerances) == expected


def test_group_pods() -> None:
    """Deleted and terminal pods are ignored; Pending, not-yet-Ready and fresh CPU samples are unready."""
    pods = Scenario(
        6,
        readiness=["True", "True", "False", "True", "True", "True"],
        phase=["Running", "Pending", "Running", "Running", "Succeeded", "Running"],
        deleted=[False, False, False, False, False, True],
        start=["3m", "3m", "3m", "3m", "3m", "3m"],
    ).pods()
    metrics = {f"test-pod-{i}": PodMetric(100, NOW, 60) for i in (0, 1, 2, 4, 5)}
    ready, unready, missing, ignored = group_pods(pods, metrics, "cpu", 120, 10, NOW)
    assert (ready, unready, missing, ignored) == (
        1,
        {"test-pod-1", "test-pod-2"},
        {"test-pod-3"},
        {"test-pod-4", "test-pod-5"},
    )
    # memory: readiness does not matter
    ready, unready, _, _ = group_pods(pods, metrics, "memory", 120, 10, NOW)
    assert (ready, unready) == (2, {"test-pod-1"})


def test_pod_metrics_info_sums_containers_and_skips_incomplete_pods() -> None:
    items = Scenario(3, levels=[[100, 200], [300], [50, 60]]).pod_metrics()
    metrics, _ = pod_metrics_info(items, "cpu")
    assert {k: v.value for k, v in metrics.items()} == {"test-pod-0": 300, "test-pod-2": 110}
    assert metrics["test-pod-0"].window == 60.0
    metrics, _ = pod_metrics_info(items, "cpu", "container1")
    assert {k: v.value for k, v in metrics.items()} == {"test-pod-0": 100, "test-pod-1": 300, "test-pod-2": 50}
