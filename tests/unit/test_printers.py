"""Server-side printing: per-kind columns and cells (printers.go) and the Table envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apimachinery.resources import RESOURCES
from apiserver.printers import (
    DEFAULT_PRINTER,
    PRINTERS,
    format_label_selector,
    format_labels,
    human_duration,
    printer_for,
    translate_timestamp_since,
)
from apiserver.tables import build_table

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    """RFC 3339 timestamp `delta` before NOW."""
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, *, age: timedelta = timedelta(minutes=10), **extra: Any) -> dict[str, Any]:
    """Object metadata created `age` before NOW."""
    created = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "resourceVersion": "42",
        "creationTimestamp": created,
        **extra,
    }


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    """The cells printed for one object."""
    return build_table(kind, [obj], now=NOW)["rows"][0]["cells"]


def headers(kind: str) -> list[tuple[str, str, int]]:
    """(name, type, priority) of each column of a kind."""
    cols = build_table(kind, [], now=NOW)["columnDefinitions"]
    return [(c["name"], c["type"], c["priority"]) for c in cols]


# ---------------------------------------------------------------------------------------------
# Durations and ages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        pytest.param(timedelta(seconds=-3), "<invalid>", id="future-invalid"),
        pytest.param(timedelta(seconds=-1), "0s", id="clock-skew"),
        pytest.param(timedelta(0), "0s", id="zero"),
        pytest.param(timedelta(seconds=5), "5s", id="5s"),
        pytest.param(timedelta(seconds=5, milliseconds=900), "5s", id="truncates"),
        pytest.param(timedelta(seconds=119), "119s", id="119s"),
        pytest.param(timedelta(minutes=2), "2m", id="2m"),
        pytest.param(timedelta(minutes=3, seconds=2), "3m2s", id="3m2s"),
        pytest.param(timedelta(minutes=10, seconds=30), "10m", id="10m"),
        pytest.param(timedelta(minutes=179), "179m", id="179m"),
        pytest.param(timedelta(hours=3), "3h", id="3h"),
        pytest.param(timedelta(hours=3, minutes=5), "3h5m", id="3h5m"),
        pytest.param(timedelta(hours=8, minutes=5), "8h", id="8h"),
        pytest.param(timedelta(hours=47), "47h", id="47h"),
        pytest.param(timedelta(days=2), "2d", id="2d"),
        pytest.param(timedelta(days=2, hours=3), "2d3h", id="2d3h"),
        pytest.param(timedelta(days=8, hours=3), "8d", id="8d"),
        pytest.param(timedelta(days=400), "400d", id="400d"),
        pytest.param(timedelta(days=730), "2y", id="2y"),
        pytest.param(timedelta(days=740), "2y10d", id="2y10d"),
        pytest.param(timedelta(days=365 * 9), "9y", id="9y"),
    ],
)
def test_human_duration(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param(ago(seconds=5), "5s", id="seconds"),
        pytest.param("2025-06-01T11:57:58.123456Z", "2m1s", id="microtime"),
        pytest.param("2025-06-01T13:57:58+02:00", "2m2s", id="offset"),
        pytest.param(None, "<unknown>", id="missing"),
        pytest.param("", "<unknown>", id="empty"),
        pytest.param("yesterday", "<unknown>", id="garbage"),
    ],
)
def test_translate_timestamp_since(timestamp: str | None, expected: str) -> None:
    assert translate_timestamp_since(timestamp, NOW) == expected


# ---------------------------------------------------------------------------------------------
# Labels and selectors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"tier": "web", "app": "nginx"}, "app=nginx,tier=web", id="sorted"),
        pytest.param({}, "<none>", id="empty"),
        pytest.param(None, "<none>", id="missing"),
    ],
)
def test_format_labels(labels: dict[str, str] | None, expected: str) -> None:
    assert format_labels(labels) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({"matchLabels": {"app": "nginx"}}, "app=nginx", id="match-labels"),
        pytest.param(
            {
                "matchLabels": {"tier": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "zone", "operator": "NotIn", "values": ["b"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "app", "operator": "Exists"},
                ],
            },
            "app,!canary,env in (dev,prod),tier=web,zone notin (b)",
            id="expressions-sorted-by-key",
        ),
        pytest.param({}, "<none>", id="empty"),
        pytest.param(None, "<none>", id="missing"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]},
            "<error>",
            id="bad-operator",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "<error>",
            id="in-without-values",
        ),
    ],
)
def test_format_label_selector(selector: dict[str, Any] | None, expected: str) -> None:
    assert format_label_selector(selector) == expected


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------

STR, INT, BOOL = "string", "integer", "boolean"
WIDE_TEMPLATE = [("Containers", STR, 1), ("Images", STR, 1), ("Selector", STR, 1)]

HEADERS: dict[str, list[tuple[str, str, int]]] = {
    "Pod": [
        ("Name", STR, 0),
        ("Ready", STR, 0),
        ("Status", STR, 0),
        ("Restarts", STR, 0),
        ("Age", STR, 0),
        ("IP", STR, 1),
        ("Node", STR, 1),
        ("Nominated Node", STR, 1),
        ("Readiness Gates", STR, 1),
    ],
    "Namespace": [("Name", STR, 0), ("Status", STR, 0), ("Age", STR, 0)],
    "Node": [
        ("Name", STR, 0),
        ("Status", STR, 0),
        ("Roles", STR, 0),
        ("Age", STR, 0),
        ("Version", STR, 0),
        ("Internal-IP", STR, 1),
        ("External-IP", STR, 1),
        ("OS-Image", STR, 1),
        ("Kernel-Version", STR, 1),
        ("Container-Runtime", STR, 1),
    ],
    "Service": [
        ("Name", STR, 0),
        ("Type", STR, 0),
        ("Cluster-IP", STR, 0),
        ("External-IP", STR, 0),
        ("Port(s)", STR, 0),
        ("Age", STR, 0),
        ("Selector", STR, 1),
    ],
    "Endpoints": [("Name", STR, 0), ("Endpoints", STR, 0), ("Age", STR, 0)],
    "ConfigMap": [("Name", STR, 0), ("Data", STR, 0), ("Age", STR, 0)],
    "Secret": [("Name", STR, 0), ("Type", STR, 0), ("Data", STR, 0), ("Age", STR, 0)],
    "Event": [
        ("Last Seen", STR, 0),
        ("Type", STR, 0),
        ("Reason", STR, 0),
        ("Object", STR, 0),
        ("Subobject", STR, 1),
        ("Source", STR, 1),
        ("Message", STR, 0),
        ("First Seen", STR, 1),
        ("Count", STR, 1),
        ("Name", STR, 1),
    ],
    "ServiceAccount": [("Name", STR, 0), ("Secrets", STR, 0), ("Age", STR, 0)],
    "ReplicationController": [
        ("Name", STR, 0),
        ("Desired", INT, 0),
        ("Current", INT, 0),
        ("Ready", INT, 0),
        ("Age", STR, 0),
        *WIDE_TEMPLATE,
    ],
    "Deployment": [
        ("Name", STR, 0),
        ("Ready", STR, 0),
        ("Up-to-date", STR, 0),
        ("Available", STR, 0),
        ("Age", STR, 0),
        *WIDE_TEMPLATE,
    ],
    "ReplicaSet": [
        ("Name", STR, 0),
        ("Desired", INT, 0),
        ("Current", INT, 0),
        ("Ready", INT, 0),
        ("Age", STR, 0),
        *WIDE_TEMPLATE,
    ],
    "DaemonSet": [
        ("Name", STR, 0),
        ("Desired", INT, 0),
        ("Current", INT, 0),
        ("Ready", INT, 0),
        ("Up-to-date", INT, 0),
        ("Available", INT, 0),
        ("Node Selector", STR, 0),
        ("Age", STR, 0),
        *WIDE_TEMPLATE,
    ],
    "StatefulSet": [
        ("Name", STR, 0),
        ("Ready", STR, 0),
        ("Age", STR, 0),
        ("Containers", STR, 1),
        ("Images", STR, 1),
    ],
    "ControllerRevision": [
        ("Name", STR, 0),
        ("Controller", STR, 0),
        ("Revision", STR, 0),
        ("Age", STR, 0),
    ],
    "Job": [
        ("Name", STR, 0),
        ("Status", STR, 0),
        ("Completions", STR, 0),
        ("Duration", STR, 0),
        ("Age", STR, 0),
        *WIDE_TEMPLATE,
    ],
    "CronJob": [
        ("Name", STR, 0),
        ("Schedule", STR, 0),
        ("Timezone", STR, 0),
        ("Suspend", BOOL, 0),
        ("Active", INT, 0),
        ("Last Schedule", STR, 0),
        ("Age", STR, 0),
        *WIDE_TEMPLATE,
    ],
    "Lease": [("Name", STR, 0), ("Holder", STR, 0), ("Age", STR, 0)],
    "EndpointSlice": [
        ("Name", STR, 0),
        ("AddressType", STR, 0),
        ("Ports", STR, 0),
        ("Endpoints", STR, 0),
        ("Age", STR, 0),
    ],
    "Ingress": [
        ("Name", STR, 0),
        ("Class", STR, 0),
        ("Hosts", STR, 0),
        ("Address", STR, 0),
        ("Ports", STR, 0),
        ("Age", STR, 0),
    ],
    "IngressClass": [("Name", STR, 0), ("Controller", STR, 0), ("Parameters", STR, 0), ("Age", STR, 0)],
    "ServiceCIDR": [("Name", STR, 0), ("CIDRs", STR, 0), ("Age", STR, 0)],
    "IPAddress": [("Name", STR, 0), ("ParentRef", STR, 0)],
    "LimitRange": [("Name", STR, 0), ("Created At", "date", 0)],
    "ResourceQuota": [("Name", STR, 0), ("Request", STR, 0), ("Limit", STR, 0), ("Age", STR, 0)],
    "MutatingWebhookConfiguration": [("Name", STR, 0), ("Webhooks", INT, 0), ("Age", STR, 0)],
    "ValidatingWebhookConfiguration": [("Name", STR, 0), ("Webhooks", INT, 0), ("Age", STR, 0)],
    "FlowSchema": [("Name", STR, 0), ("Age", STR, 0)],
}


@pytest.mark.parametrize(("kind", "expected"), list(HEADERS.items()), ids=list(HEADERS))
def test_headers(kind: str, expected: list[tuple[str, str, int]]) -> None:
    assert headers(kind) == expected


@pytest.mark.parametrize("kind", list(HEADERS), ids=list(HEADERS))
def test_column_definition_shape(kind: str) -> None:
    for col in build_table(kind, [], now=NOW)["columnDefinitions"]:
        assert list(col) == ["name", "type", "format", "description", "priority"]
        assert col["description"]
        assert col["format"] == ("name" if col["name"] == "Name" else "")


def test_every_served_kind_has_a_printer() -> None:
    # create-only kinds (the reviews) are never listed: no table
    assert sorted(r.kind for r in RESOURCES if "list" in r.verbs) == sorted(PRINTERS)


def test_unknown_kind_gets_the_default_printer() -> None:
    assert printer_for("Widget") is DEFAULT_PRINTER
    obj = {"kind": "Widget", "metadata": meta("w1", age=timedelta(days=2, hours=3))}
    assert cells("Widget", obj) == ["w1", "2d3h"]
    assert cells("Widget", {"metadata": {"name": "w2"}}) == ["w2", "<unknown>"]


# ---------------------------------------------------------------------------------------------
# Pod
# ---------------------------------------------------------------------------------------------


def container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> dict[str, Any]:
    """A container spec."""
    return {"name": name, "image": image, **extra}


def running(name: str = "app", *, ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    """A running container status."""
    return {
        "name": name,
        "ready": ready,
        "started": True,
        "restartCount": restarts,
        "image": "nginx:1.27",
        "state": {"running": {"startedAt": ago(minutes=9)}},
    }


def waiting(name: str, reason: str, *, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    """A waiting container status."""
    return {
        "name": name,
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
        **extra,
    }


def terminated(name: str, code: int, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A terminated container status."""
    state: dict[str, Any] = {"exitCode": code, "finishedAt": ago(minutes=1)}
    if reason is not None:
        state["reason"] = reason
    return {
        "name": name,
        "ready": False,
        "started": False,
        "restartCount": 0,
        "state": {"terminated": state},
        **extra,
    }


def last_terminated(minutes_ago: float) -> dict[str, Any]:
    """lastState of a container that last exited `minutes_ago`."""
    finished = ago(minutes=minutes_ago)
    return {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}


def cond(cond_type: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """A status condition."""
    c = {"type": cond_type, "status": status, "lastTransitionTime": ago(minutes=9)}
    if reason:
        c["reason"] = reason
    return c


RUNNING_CONDITIONS = [
    cond("Initialized", "True"),
    cond("Ready", "True"),
    cond("ContainersReady", "True"),
    cond("PodScheduled", "True"),
]


def pod(
    status: dict[str, Any],
    *,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A pod with the given status."""
    pod_spec: dict[str, Any] = {"containers": containers or [container()], **spec}
    if init:
        pod_spec["initContainers"] = init
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**meta("web-0"), **(metadata or {})},
        "spec": pod_spec,
        "status": status,
    }


POD_CASES = [
    pytest.param(
        pod({"phase": "Pending", "conditions": [cond("PodScheduled", "False", "Unschedulable")]}),
        ("0/1", "Pending", "0"),
        id="pending-unscheduled",
    ),
    pytest.param(
        pod({"phase": "Pending", "conditions": [cond("PodScheduled", "False", "SchedulingGated")]}),
        ("0/1", "SchedulingGated", "0"),
        id="scheduling-gated",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("PodScheduled", "True")],
                "containerStatuses": [waiting("app", "ContainerCreating")],
            }
        ),
        ("0/1", "ContainerCreating", "0"),
        id="container-creating",
    ),
    pytest.param(
        pod({"phase": "Running", "conditions": RUNNING_CONDITIONS, "containerStatuses": [running()]}),
        ("1/1", "Running", "0"),
        id="running",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": [cond("Ready", "False")],
                "containerStatuses": [running("app"), running("log", ready=False)],
            },
            containers=[container("app"), container("log", "fluent-bit:3")],
        ),
        ("1/2", "Running", "0"),
        id="running-one-of-two-ready",
    ),
    pytest.param(
        pod({"phase": "Succeeded", "containerStatuses": [terminated("app", 0, "Completed")]}),
        ("0/1", "Completed", "0"),
        id="completed",
    ),
    pytest.param(
        pod({"phase": "Failed", "containerStatuses": [terminated("app", 1, "Error")]}),
        ("0/1", "Error", "0"),
        id="error",
    ),
    pytest.param(
        pod({"phase": "Failed", "containerStatuses": [terminated("app", 137, "OOMKilled")]}),
        ("0/1", "OOMKilled", "0"),
        id="oom-killed",
    ),
    pytest.param(
        pod({"phase": "Failed", "containerStatuses": [terminated("app", 137)]}),
        ("0/1", "ExitCode:137", "0"),
        id="exit-code-without-reason",
    ),
    pytest.param(
        pod(
            {
                "phase": "Failed",
                "containerStatuses": [{**terminated("app", 0), "state": {"terminated": {"exitCode": 0, "signal": 9}}}],
            }
        ),
        ("0/1", "Signal:9", "0"),
        id="signal-without-reason",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": [cond("Ready", "False")],
                "containerStatuses": [waiting("app", "CrashLoopBackOff", restarts=3, lastState=last_terminated(5))],
            }
        ),
        ("0/1", "CrashLoopBackOff", "3 (5m ago)"),
        id="crash-loop-back-off",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": RUNNING_CONDITIONS,
                "containerStatuses": [{**running(restarts=1), "lastState": last_terminated(90)}],
            }
        ),
        ("1/1", "Running", "1 (90m ago)"),
        id="running-after-restart",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": [cond("Ready", "False")],
                "containerStatuses": [running("app"), terminated("job", 0, "Completed")],
            },
            containers=[container("app"), container("job", "busybox")],
        ),
        ("1/2", "NotReady", "0"),
        id="completed-with-running-not-ready",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": RUNNING_CONDITIONS,
                "containerStatuses": [running("app"), terminated("job", 0, "Completed")],
            },
            containers=[container("app"), container("job", "busybox")],
        ),
        ("1/2", "Running", "0"),
        id="completed-with-running-ready",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": RUNNING_CONDITIONS,
                "containerStatuses": [running()],
            },
            metadata={"deletionTimestamp": ago(seconds=10), "deletionGracePeriodSeconds": 30},
        ),
        ("1/1", "Terminating", "0"),
        id="terminating",
    ),
    pytest.param(
        pod(
            {"phase": "Succeeded", "containerStatuses": [terminated("app", 0, "Completed")]},
            metadata={"deletionTimestamp": ago(seconds=10)},
        ),
        ("0/1", "Completed", "0"),
        id="terminal-pod-being-deleted",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "reason": "NodeLost",
                "message": "Node node-2 which was running pod web-0 is unresponsive",
                "containerStatuses": [running()],
            },
            metadata={"deletionTimestamp": ago(minutes=1)},
        ),
        ("1/1", "Unknown", "0"),
        id="node-lost-unknown",
    ),
    pytest.param(
        pod(
            {
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: memory.",
            }
        ),
        ("0/1", "Evicted", "0"),
        id="evicted",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [running("migrate", ready=False)],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("migrate", "migrate:1")],
        ),
        ("0/1", "Init:0/1", "0"),
        id="init-0-of-1",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [
                    terminated("a", 0, "Completed"),
                    running("b", ready=False),
                ],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("a"), container("b")],
        ),
        ("0/1", "Init:1/2", "0"),
        id="init-1-of-2",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [waiting("migrate", "PodInitializing")],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("migrate", "migrate:1")],
        ),
        ("0/1", "Init:0/1", "0"),
        id="init-waiting-pod-initializing",
    ),
    pytest.param(
        pod(
            {
                "phase": "Failed",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [terminated("migrate", 1, "Error")],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("migrate", "migrate:1")],
            restartPolicy="Never",
        ),
        ("0/1", "Init:Error", "0"),
        id="init-error",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [terminated("migrate", 2)],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("migrate", "migrate:1")],
        ),
        ("0/1", "Init:ExitCode:2", "0"),
        id="init-exit-code",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [
                    waiting("migrate", "CrashLoopBackOff", restarts=4, lastState=last_terminated(2))
                ],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("migrate", "migrate:1")],
        ),
        ("0/1", "Init:CrashLoopBackOff", "4 (2m ago)"),
        id="init-crash-loop-back-off",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "True")],
                "initContainerStatuses": [terminated("migrate", 0, "Completed")],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[container("migrate", "migrate:1")],
        ),
        ("0/1", "PodInitializing", "0"),
        id="pod-initializing",
    ),
    pytest.param(
        pod(
            {
                "phase": "Running",
                "conditions": RUNNING_CONDITIONS,
                "initContainerStatuses": [{**running("proxy", restarts=2), "lastState": last_terminated(10)}],
                "containerStatuses": [running("app")],
            },
            init=[container("proxy", "envoy:1.30", restartPolicy="Always")],
        ),
        ("2/2", "Running", "2 (10m ago)"),
        id="sidecar-restarts",
    ),
    pytest.param(
        pod(
            {
                "phase": "Pending",
                "conditions": [cond("Initialized", "False")],
                "initContainerStatuses": [running("proxy"), running("migrate", ready=False)],
                "containerStatuses": [waiting("app", "PodInitializing")],
            },
            init=[
                container("proxy", "envoy:1.30", restartPolicy="Always"),
                container("migrate", "migrate:1"),
            ],
        ),
        ("1/2", "Init:1/2", "0"),
        id="sidecar-started-then-init",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), POD_CASES)
def test_pod_ready_status_restarts(obj: dict[str, Any], expected: tuple[str, str, str]) -> None:
    row = cells("Pod", obj)
    assert (row[1], row[2], row[3]) == expected


def test_pod_full_row() -> None:
    obj = pod(
        {
            "phase": "Running",
            "conditions": [*RUNNING_CONDITIONS, cond("example.com/lb", "True")],
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
            "containerStatuses": [running()],
        },
        nodeName="node-1",
        readinessGates=[{"conditionType": "example.com/lb"}, {"conditionType": "example.com/x"}],
    )
    assert cells("Pod", obj) == [
        "web-0",
        "1/1",
        "Running",
        "0",
        "10m",
        "10.244.1.7",
        "node-1",
        "<none>",
        "1/2",
    ]


def test_pod_row_of_an_unscheduled_pod() -> None:
    obj = pod({"phase": "Pending", "nominatedNodeName": "node-2"}, schedulerName="default")
    assert cells("Pod", obj) == [
        "web-0",
        "0/1",
        "Pending",
        "0",
        "10m",
        "<none>",
        "<none>",
        "node-2",
        "<none>",
    ]


def test_pod_ip_falls_back_to_pod_ip() -> None:
    obj = pod({"phase": "Running", "podIP": "10.0.0.9", "containerStatuses": [running()]})
    assert cells("Pod", obj)[5] == "10.0.0.9"


@pytest.mark.parametrize(
    ("phase", "conditions"),
    [
        pytest.param(
            "Succeeded",
            [
                {
                    "type": "Completed",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "The pod has completed successfully.",
                }
            ],
            id="succeeded",
        ),
        pytest.param(
            "Failed",
            [
                {
                    "type": "Completed",
                    "status": "True",
                    "reason": "Failed",
                    "message": "The pod failed.",
                }
            ],
            id="failed",
        ),
        pytest.param("Running", None, id="running"),
    ],
)
def test_pod_row_conditions(phase: str, conditions: list[dict[str, str]] | None) -> None:
    row = build_table("Pod", [pod({"phase": phase})], now=NOW)["rows"][0]
    assert row.get("conditions") == conditions


# ---------------------------------------------------------------------------------------------
# Other kinds: one realistic row each, plus the interesting variations
# ---------------------------------------------------------------------------------------------

TEMPLATE = {
    "metadata": {"labels": {"app": "nginx"}},
    "spec": {"containers": [container("nginx", "nginx:1.27"), container("log", "fluent-bit:3")]},
}

ROW_CASES = [
    pytest.param(
        "Namespace",
        {
            "metadata": meta("kube-system", age=timedelta(days=3)),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        },
        ["kube-system", "Active", "3d"],
        id="namespace",
    ),
    pytest.param(
        "Namespace",
        {
            "metadata": meta("old", deletionTimestamp=ago(seconds=3)),
            "status": {"phase": "Terminating"},
        },
        ["old", "Terminating", "10m"],
        id="namespace-terminating",
    ),
    pytest.param(
        "Node",
        {
            "metadata": meta(
                "cp-1",
                age=timedelta(days=12),
                labels={
                    "kubernetes.io/hostname": "cp-1",
                    "node-role.kubernetes.io/control-plane": "",
                },
            ),
            "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {
                "conditions": [cond("MemoryPressure", "False"), cond("Ready", "True")],
                "addresses": [
                    {"type": "InternalIP", "address": "172.18.0.2"},
                    {"type": "Hostname", "address": "cp-1"},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.33.1",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.8.0-45-generic",
                    "containerRuntimeVersion": "containerd://2.0.3",
                },
            },
        },
        [
            "cp-1",
            "Ready",
            "control-plane",
            "12d",
            "v1.33.1",
            "172.18.0.2",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.8.0-45-generic",
            "containerd://2.0.3",
        ],
        id="node-ready-control-plane",
    ),
    pytest.param(
        "Node",
        {
            "metadata": meta(
                "w-1",
                labels={"kubernetes.io/role": "worker", "node-role.kubernetes.io/gpu": "true"},
            ),
            "spec": {"unschedulable": True},
            "status": {
                "conditions": [cond("Ready", "False")],
                "addresses": [{"type": "ExternalIP", "address": "34.1.2.3"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1"},
            },
        },
        [
            "w-1",
            "NotReady,SchedulingDisabled",
            "gpu,worker",
            "10m",
            "v1.33.1",
            "<none>",
            "34.1.2.3",
            "<unknown>",
            "<unknown>",
            "<unknown>",
        ],
        id="node-not-ready-cordoned",
    ),
    pytest.param(
        "Node",
        {
            "metadata": meta("w-2", labels={"node-role.kubernetes.io/": "", "kubernetes.io/role": ""}),
            "status": {"conditions": [cond("Ready", "Unknown")]},
        },
        [
            "w-2",
            "NotReady",
            "<none>",
            "10m",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>",
        ],
        id="node-ready-unknown-no-roles",
    ),
    pytest.param(
        "Node",
        {"metadata": meta("new"), "status": {}},
        [
            "new",
            "Unknown",
            "<none>",
            "10m",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>",
        ],
        id="node-without-conditions",
    ),
    pytest.param(
        "Service",
        {
            "metadata": meta("web", age=timedelta(hours=5)),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.12.34",
                "clusterIPs": ["10.96.12.34"],
                "selector": {"app": "nginx", "tier": "web"},
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                ],
            },
        },
        ["web", "ClusterIP", "10.96.12.34", "<none>", "80/TCP,53/UDP", "5h", "app=nginx,tier=web"],
        id="service-cluster-ip",
    ),
    pytest.param(
        "Service",
        {
            "metadata": meta("web-np"),
            "spec": {
                "type": "NodePort",
                "clusterIPs": ["10.96.0.20"],
                "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30001, "protocol": "TCP"}],
            },
        },
        ["web-np", "NodePort", "10.96.0.20", "<none>", "80:30001/TCP", "10m", "app=web"],
        id="service-node-port",
    ),
    pytest.param(
        "Service",
        {
            "metadata": meta("lb"),
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.30",
                "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}],
            },
            "status": {"loadBalancer": {}},
        },
        ["lb", "LoadBalancer", "10.96.0.30", "<pending>", "443:31443/TCP", "10m", "<none>"],
        id="service-load-balancer-pending",
    ),
    pytest.param(
        "Service",
        {
            "metadata": meta("lb2"),
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.31",
                "externalIPs": ["192.0.2.9"],
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}},
        },
        [
            "lb2",
            "LoadBalancer",
            "10.96.0.31",
            "203.0.113.7,lb.example.com,192.0.2.9",
            "80:30080/TCP",
            "10m",
            "<none>",
        ],
        id="service-load-balancer-ingress-and-external-ips",
    ),
    pytest.param(
        "Service",
        {
            "metadata": meta("db"),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "None",
                "clusterIPs": ["None"],
                "selector": {"app": "db"},
                "ports": [{"port": 5432, "protocol": "TCP"}],
            },
        },
        ["db", "ClusterIP", "None", "<none>", "5432/TCP", "10m", "app=db"],
        id="service-headless",
    ),
    pytest.param(
        "Service",
        {
            "metadata": meta("ext"),
            "spec": {"type": "ExternalName", "externalName": "db.example.com"},
        },
        ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "10m", "<none>"],
        id="service-external-name",
    ),
    pytest.param(
        "Endpoints",
        {
            "metadata": meta("web"),
            "subsets": [
                {
                    "addresses": [{"ip": "10.244.1.7"}, {"ip": "10.244.2.4"}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                }
            ],
        },
        ["web", "10.244.1.7:8080,10.244.2.4:8080", "10m"],
        id="endpoints",
    ),
    pytest.param(
        "Endpoints",
        {
            "metadata": meta("big"),
            "subsets": [
                {
                    "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
                    "ports": [{"port": 80}, {"port": 443}],
                }
            ],
        },
        ["big", "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more...", "10m"],
        id="endpoints-more",
    ),
    pytest.param(
        "Endpoints",
        {"metadata": meta("headless"), "subsets": [{"addresses": [{"ip": "10.0.0.5"}]}]},
        ["headless", "10.0.0.5", "10m"],
        id="endpoints-without-ports",
    ),
    pytest.param("Endpoints", {"metadata": meta("none")}, ["none", "<none>", "10m"], id="endpoints-none"),
    pytest.param(
        "ConfigMap",
        {
            "metadata": meta("kube-root-ca.crt", age=timedelta(days=40)),
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"},
            "binaryData": {"blob": "AAEC"},
        },
        ["kube-root-ca.crt", 2, "40d"],
        id="configmap",
    ),
    pytest.param("ConfigMap", {"metadata": meta("empty")}, ["empty", 0, "10m"], id="configmap-empty"),
    pytest.param(
        "Secret",
        {
            "metadata": meta("tls"),
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
        },
        ["tls", "kubernetes.io/tls", 2, "10m"],
        id="secret",
    ),
    pytest.param(
        "Secret",
        {
            "metadata": meta("creds"),
            "data": {"user": "YWRtaW4="},
            "stringData": {"user": "admin", "password": "s3cret"},
        },
        ["creds", "Opaque", 2, "10m"],
        id="secret-string-data",
    ),
    pytest.param(
        "Event",
        {
            "metadata": meta("web-0.17f3a", namespace="default"),
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container app\n",
            "involvedObject": {
                "kind": "Pod",
                "name": "web-0",
                "namespace": "default",
                "fieldPath": "spec.containers{app}",
            },
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(minutes=30),
            "lastTimestamp": ago(seconds=40),
            "count": 7,
        },
        [
            "40s",
            "Warning",
            "BackOff",
            "pod/web-0",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting failed container app",
            "30m",
            7,
            "web-0.17f3a",
        ],
        id="event",
    ),
    pytest.param(
        "Event",
        {
            "metadata": meta("web.1"),
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "message": "Scaled up replica set web-5d4f to 3",
            "involvedObject": {"kind": "Deployment", "name": "web"},
            "eventTime": "2025-06-01T11:55:00.000000Z",
            "reportingComponent": "deployment-controller",
            "reportingInstance": "",
            "source": {},
        },
        [
            "5m",
            "Normal",
            "ScalingReplicaSet",
            "deployment/web",
            "",
            "deployment-controller",
            "Scaled up replica set web-5d4f to 3",
            "5m",
            1,
            "web.1",
        ],
        id="event-new-api-singleton",
    ),
    pytest.param(
        "Event",
        {
            "metadata": meta("n.1"),
            "type": "Normal",
            "reason": "NodeReady",
            "message": "ready",
            "involvedObject": {"kind": "Node"},
            "eventTime": ago(hours=2),
            "series": {"count": 4, "lastObservedTime": "2025-06-01T11:59:00.000000Z"},
            "reportingComponent": "kubelet",
            "reportingInstance": "node-1",
        },
        ["60s", "Normal", "NodeReady", "node", "", "kubelet, node-1", "ready", "120m", 4, "n.1"],
        id="event-series",
    ),
    pytest.param(
        "ServiceAccount",
        {"metadata": meta("builder"), "secrets": [{"name": "builder-token"}]},
        ["builder", 1, "10m"],
        id="serviceaccount",
    ),
    pytest.param(
        "ServiceAccount",
        {"metadata": meta("default")},
        ["default", 0, "10m"],
        id="serviceaccount-no-secrets",
    ),
    pytest.param(
        "ReplicationController",
        {
            "metadata": meta("nginx-rc"),
            "spec": {"replicas": 3, "selector": {"app": "nginx"}, "template": TEMPLATE},
            "status": {"replicas": 3, "readyReplicas": 2},
        },
        ["nginx-rc", 3, 3, 2, "10m", "nginx,log", "nginx:1.27,fluent-bit:3", "app=nginx"],
        id="replicationcontroller",
    ),
    pytest.param(
        "ReplicationController",
        {"metadata": meta("bare"), "spec": {}},
        ["bare", 1, 0, 0, "10m", "", "", "<none>"],
        id="replicationcontroller-defaults",
    ),
    pytest.param(
        "Deployment",
        {
            "metadata": meta("nginx", age=timedelta(hours=4, minutes=30)),
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": TEMPLATE,
            },
            "status": {
                "replicas": 3,
                "updatedReplicas": 3,
                "readyReplicas": 2,
                "availableReplicas": 2,
            },
        },
        ["nginx", "2/3", 3, 2, "4h30m", "nginx,log", "nginx:1.27,fluent-bit:3", "app=nginx"],
        id="deployment",
    ),
    pytest.param(
        "Deployment",
        {"metadata": meta("new"), "spec": {"replicas": 0, "selector": {}, "template": TEMPLATE}},
        ["new", "0/0", 0, 0, "10m", "nginx,log", "nginx:1.27,fluent-bit:3", ""],
        id="deployment-empty-selector",
    ),
    pytest.param(
        "Deployment",
        {
            "metadata": meta("bad"),
            "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}},
        },
        ["bad", "0/1", 0, 0, "10m", "", "", "<invalid>"],
        id="deployment-invalid-selector",
    ),
    pytest.param(
        "ReplicaSet",
        {
            "metadata": meta(
                "nginx-5d4f8b",
                ownerReferences=[
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "nginx",
                        "controller": True,
                    }
                ],
            ),
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx", "pod-template-hash": "5d4f8b"}},
                "template": TEMPLATE,
            },
            "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3},
        },
        [
            "nginx-5d4f8b",
            3,
            3,
            3,
            "10m",
            "nginx,log",
            "nginx:1.27,fluent-bit:3",
            "app=nginx,pod-template-hash=5d4f8b",
        ],
        id="replicaset",
    ),
    pytest.param(
        "DaemonSet",
        {
            "metadata": meta("kube-proxy", age=timedelta(days=5)),
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "template": {
                    "spec": {
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [container("kube-proxy", "registry.k8s.io/kube-proxy:v1.33.1")],
                    }
                },
            },
            "status": {
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "numberReady": 2,
                "updatedNumberScheduled": 3,
                "numberAvailable": 2,
            },
        },
        [
            "kube-proxy",
            3,
            3,
            2,
            3,
            2,
            "kubernetes.io/os=linux",
            "5d",
            "kube-proxy",
            "registry.k8s.io/kube-proxy:v1.33.1",
            "k8s-app=kube-proxy",
        ],
        id="daemonset",
    ),
    pytest.param(
        "DaemonSet",
        {"metadata": meta("agent"), "spec": {"template": {"spec": {"containers": []}}}},
        ["agent", 0, 0, 0, 0, 0, "<none>", "10m", "", "", "<none>"],
        id="daemonset-empty",
    ),
    pytest.param(
        "StatefulSet",
        {
            "metadata": meta("db"),
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"spec": {"containers": [container("pg", "postgres:17")]}},
            },
            "status": {"replicas": 3, "readyReplicas": 1},
        },
        ["db", "1/3", "10m", "pg", "postgres:17"],
        id="statefulset",
    ),
    pytest.param(
        "ControllerRevision",
        {
            "metadata": meta(
                "db-7c9d6b",
                ownerReferences=[
                    {
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "name": "db",
                        "uid": "u1",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            ),
            "data": {"spec": {}},
            "revision": 2,
        },
        ["db-7c9d6b", "statefulset.apps/db", 2, "10m"],
        id="controllerrevision",
    ),
    pytest.param(
        "ControllerRevision",
        {
            "metadata": meta(
                "orphan",
                ownerReferences=[{"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": False}],
            ),
            "revision": 1,
        },
        ["orphan", "<none>", 1, "10m"],
        id="controllerrevision-no-controller",
    ),
    pytest.param(
        "Job",
        {
            "metadata": meta("pi", age=timedelta(minutes=3)),
            "spec": {
                "completions": 1,
                "parallelism": 1,
                "backoffLimit": 6,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                "template": {"spec": {"containers": [container("pi", "perl:5.34")], "restartPolicy": "Never"}},
            },
            "status": {
                "startTime": ago(minutes=3),
                "completionTime": ago(minutes=2, seconds=20),
                "succeeded": 1,
                "conditions": [cond("SuccessCriteriaMet", "True"), cond("Complete", "True")],
            },
        },
        [
            "pi",
            "Complete",
            "1/1",
            "40s",
            "3m",
            "pi",
            "perl:5.34",
            "batch.kubernetes.io/controller-uid=u1",
        ],
        id="job-complete",
    ),
    pytest.param(
        "Job",
        {
            "metadata": meta("work"),
            "spec": {
                "parallelism": 3,
                "template": {"spec": {"containers": [container("w", "w:1")]}},
            },
            "status": {"startTime": ago(minutes=4), "active": 3},
        },
        ["work", "Running", "0/1 of 3", "4m", "10m", "w", "w:1", "<none>"],
        id="job-running-work-queue",
    ),
    pytest.param(
        "Job",
        {
            "metadata": meta("later"),
            "spec": {"suspend": True, "template": {"spec": {}}},
            "status": {"conditions": [cond("Suspended", "True")]},
        },
        ["later", "Suspended", "0/1", "", "10m", "", "", "<none>"],
        id="job-suspended-never-started",
    ),
    pytest.param(
        "Job",
        {
            "metadata": meta("idx"),
            "spec": {"completions": 5, "parallelism": 5},
            "status": {"startTime": ago(minutes=1), "succeeded": 2, "failed": 0},
        },
        ["idx", "Running", "2/5", "60s", "10m", "", "", "<none>"],
        id="job-completions",
    ),
]


ROW_CASES += [
    pytest.param(
        "Ingress",
        {
            "metadata": meta("web"),
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}],
                "tls": [{"hosts": ["a.example.com"], "secretName": "cert"}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "127.200.0.9"}, {"hostname": "lb.example.com"}]}},
        },
        ["web", "nginx", "a.example.com,b.example.com", "127.200.0.9,lb.example.com", "80, 443", "10m"],
        id="ingress",
    ),
    pytest.param(
        "Ingress",
        {"metadata": meta("plain"), "spec": {"defaultBackend": {"service": {"name": "s"}}}, "status": {}},
        ["plain", "<none>", "*", "", "80", "10m"],
        id="ingress-no-class-no-hosts",
    ),
    pytest.param(
        "Ingress",
        {"metadata": meta("many"), "spec": {"rules": [{"host": f"h{i}.io"} for i in range(5)]}},
        ["many", "<none>", "h0.io,h1.io,h2.io + 2 more...", "", "80", "10m"],
        id="ingress-many-hosts",
    ),
    pytest.param(
        "IngressClass",
        {
            "metadata": meta("nginx"),
            "spec": {
                "controller": "k8s.io/ingress-nginx",
                "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"},
            },
        },
        ["nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "10m"],
        id="ingressclass-parameters",
    ),
    pytest.param(
        "IngressClass",
        {"metadata": meta("plain"), "spec": {"controller": "tinykube.io/ingress"}},
        ["plain", "tinykube.io/ingress", "<none>", "10m"],
        id="ingressclass-plain",
    ),
    pytest.param(
        "ServiceCIDR",
        {"metadata": meta("kubernetes"), "spec": {"cidrs": ["10.96.0.0/16", "fd00::/108"]}},
        ["kubernetes", "10.96.0.0/16,fd00::/108", "10m"],
        id="servicecidr",
    ),
]


def test_policy_rows() -> None:
    """LimitRange prints its creation time (the default table convertor); ResourceQuota used/hard pairs,
    limits.* in their own column; webhook configurations how many webhooks they hold."""
    assert cells("LimitRange", {"metadata": meta("limits", age=timedelta(hours=2))}) == [
        "limits",
        "2025-06-01T10:00:00Z",
    ]
    quota = {
        "metadata": meta("compute"),
        "spec": {"hard": {"pods": "10"}},
        "status": {
            "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "count/deployments.apps": "3"},
            "used": {"pods": "4", "requests.cpu": "500m", "limits.memory": "1024Mi"},
        },
    }
    assert cells("ResourceQuota", quota) == [
        "compute",
        "count/deployments.apps: 0/3, pods: 4/10, requests.cpu: 500m/2",
        "limits.memory: 1Gi/2Gi",
        "10m",
    ]
    assert cells("ResourceQuota", {"metadata": meta("empty"), "spec": {}}) == ["empty", "", "", "10m"]
    config = {"metadata": meta("hooks"), "webhooks": [{"name": "a.b.c"}, {"name": "d.e.f"}]}
    assert cells("ValidatingWebhookConfiguration", config) == ["hooks", 2, "10m"]
    assert cells("MutatingWebhookConfiguration", {"metadata": meta("none")}) == ["none", 0, "10m"]


def test_ip_address_row_has_an_age_cell_beyond_its_columns() -> None:
    """printIPAddress appends the age although the table declares only Name and ParentRef."""
    ref = {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}
    obj = {"metadata": meta("10.96.0.1"), "spec": {"parentRef": ref}}
    assert cells("IPAddress", obj) == ["10.96.0.1", "services/default/kubernetes", "10m"]
    ref = {"group": "gateway.networking.k8s.io", "resource": "Gateways", "name": "gw"}
    obj = {"metadata": meta("10.0.0.7"), "spec": {"parentRef": ref}}
    assert cells("IPAddress", obj) == ["10.0.0.7", "gateways.gateway.networking.k8s.io/gw", "10m"]
    assert cells("IPAddress", {"metadata": meta("10.0.0.8"), "spec": {}})[1] == "<none>"


@pytest.mark.parametrize(("kind", "obj", "expected"), ROW_CASES)
def test_row(kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    row = cells(kind, obj)
    assert row == expected
    assert len(row) == len(headers(kind))


def job_with(conditions: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    """A job whose status has `conditions`."""
    return {
        "metadata": meta("j", **metadata),
        "spec": {"completions": 2},
        "status": {"conditions": conditions},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(job_with([]), "Running", id="running"),
        pytest.param(job_with([cond("Complete", "True")]), "Complete", id="complete"),
        pytest.param(job_with([cond("FailureTarget", "True"), cond("Failed", "True")]), "Failed", id="failed"),
        pytest.param(
            job_with([cond("Complete", "True")], deletionTimestamp=ago(seconds=5)),
            "Complete",
            id="complete-wins-over-terminating",
        ),
        pytest.param(job_with([], deletionTimestamp=ago(seconds=5)), "Terminating", id="terminating"),
        pytest.param(job_with([cond("Suspended", "True")]), "Suspended", id="suspended"),
        pytest.param(job_with([cond("Suspended", "False")]), "Running", id="resumed"),
        pytest.param(job_with([cond("FailureTarget", "True")]), "FailureTarget", id="failure-target"),
        pytest.param(
            job_with([cond("SuccessCriteriaMet", "True")]),
            "SuccessCriteriaMet",
            id="success-criteria-met",
        ),
    ],
)
def test_job_status(obj: dict[str, Any], expected: str) -> None:
    assert cells("Job", obj)[1] == expected


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        pytest.param(
            {
                "schedule": "*/5 * * * *",
                "timeZone": "Etc/UTC",
                "suspend": False,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [container("hello", "busybox:1.36")]}}}},
            },
            {"active": [{"kind": "Job", "name": "hello-2906"}], "lastScheduleTime": ago(minutes=3)},
            [
                "hello",
                "*/5 * * * *",
                "Etc/UTC",
                "False",
                1,
                "3m",
                "10m",
                "hello",
                "busybox:1.36",
                "<none>",
            ],
            id="cronjob",
        ),
        pytest.param(
            {
                "schedule": "@daily",
                "suspend": True,
                "jobTemplate": {
                    "spec": {
                        "selector": {"matchLabels": {"app": "x"}},
                        "template": {"spec": {"containers": []}},
                    }
                },
            },
            {},
            ["hello", "@daily", "<none>", "True", 0, "<none>", "10m", "", "", "app=x"],
            id="cronjob-suspended-never-scheduled",
        ),
    ],
)
def test_cronjob_row(spec: dict[str, Any], status: dict[str, Any], expected: list[Any]) -> None:
    assert cells("CronJob", {"metadata": meta("hello"), "spec": spec, "status": status}) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"holderIdentity": "cp-1_7f3c", "leaseDurationSeconds": 15},
            ["kube-scheduler", "cp-1_7f3c", "10m"],
            id="held",
        ),
        pytest.param({}, ["kube-scheduler", "", "10m"], id="unheld"),
    ],
)
def test_lease_row(spec: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Lease", {"metadata": meta("kube-scheduler"), "spec": spec}) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": ["10.244.1.7"], "conditions": {"ready": True}},
                    {"addresses": ["10.244.2.4"], "conditions": {"ready": True}},
                ],
            },
            ["web-abc12", "IPv4", "8080", "10.244.1.7,10.244.2.4", "10m"],
            id="endpointslice",
        ),
        pytest.param(
            {
                "addressType": "IPv6",
                "ports": [{"port": 1}, {"port": 2}, {"name": "named"}, {}, {"port": 5}],
                "endpoints": [
                    {"addresses": ["fd00::1", "fd00::2"]},
                    {"addresses": ["fd00::3", "fd00::4"]},
                ],
            },
            [
                "web-abc12",
                "IPv6",
                "1,2,named + 2 more...",
                "fd00::1,fd00::2,fd00::3 + 1 more...",
                "10m",
            ],
            id="endpointslice-more",
        ),
        pytest.param(
            {"addressType": "IPv4", "ports": [{}], "endpoints": []},
            ["web-abc12", "IPv4", "*", "<unset>", "10m"],
            id="endpointslice-unset",
        ),
    ],
)
def test_endpointslice_row(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("EndpointSlice", {"metadata": meta("web-abc12"), **obj}) == expected


# ---------------------------------------------------------------------------------------------
# The Table envelope
# ---------------------------------------------------------------------------------------------

CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": meta("settings", labels={"app": "web"}),
    "data": {"a": "1"},
}


def test_table_envelope() -> None:
    table = build_table("ConfigMap", [CM], resource_version="1234", now=NOW)
    assert list(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "1234"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"] == [
        {
            "cells": ["settings", 1, "10m"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": CM["metadata"],
            },
        }
    ]


def test_table_list_metadata() -> None:
    table = build_table(
        "ConfigMap",
        [CM],
        resource_version="9",
        continue_token="eyJ2Ijo",
        remaining_item_count=17,
        now=NOW,
    )
    assert table["metadata"] == {
        "resourceVersion": "9",
        "continue": "eyJ2Ijo",
        "remainingItemCount": 17,
    }


@pytest.mark.parametrize(
    ("include_object", "expected"),
    [
        pytest.param("None", None, id="none"),
        pytest.param("Object", CM, id="object"),
        pytest.param(
            "Metadata",
            {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": CM["metadata"],
            },
            id="metadata",
        ),
        pytest.param(
            "",
            {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": CM["metadata"],
            },
            id="unset-means-metadata",
        ),
    ],
)
def test_include_object(include_object: str, expected: dict[str, Any] | None) -> None:
    row = build_table("ConfigMap", [CM], include_object=include_object, now=NOW)["rows"][0]
    assert row["object"] == expected


def test_include_object_rejects_unknown_policy() -> None:
    with pytest.raises(ValueError, match="includeObject"):
        build_table("ConfigMap", [CM], include_object="Everything", now=NOW)


def test_without_headers() -> None:
    table = build_table("ConfigMap", [CM], with_headers=False, now=NOW)
    assert table["columnDefinitions"] == []
    assert table["rows"][0]["cells"] == ["settings", 1, "10m"]


def test_empty_list() -> None:
    table = build_table("Pod", [], resource_version="77", now=NOW)
    assert table["rows"] == []
    assert len(table["columnDefinitions"]) == 9


def test_naive_now_is_utc() -> None:
    row = build_table("ConfigMap", [CM], now=NOW.replace(tzinfo=None))["rows"][0]
    assert row["cells"][2] == "10m"


def test_default_now_is_the_clock() -> None:
    fresh = {"metadata": {"name": "x", "creationTimestamp": datetime.now(UTC).isoformat()}}
    assert build_table("ConfigMap", [fresh])["rows"][0]["cells"][2] in ("0s", "1s", "2s")
