"""Pod phase and conditions from container views (kubelet getPhase / Generate*Condition)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.status import ContainerView, pod_conditions, pod_phase, pod_status

RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
WAITING = {"waiting": {"reason": "ContainerCreating"}}


def term(code: int) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}


def view(name: str, state: dict[str, Any], last: dict[str, Any] | None = None, ready: bool = False) -> ContainerView:
    return ContainerView(name=name, image="img", state=state, last_state=last or {}, ready=ready, started=ready)


@pytest.mark.parametrize(
    ("policy", "init", "regular", "phase"),
    [
        ("Always", [], [view("a", WAITING)], "Pending"),
        ("Always", [], [view("a", RUNNING)], "Running"),
        ("Always", [], [view("a", RUNNING), view("b", WAITING)], "Pending"),
        ("Always", [], [view("a", {"waiting": {"reason": "CrashLoopBackOff"}}, term(1))], "Running"),
        ("Always", [], [view("a", term(0))], "Running"),
        ("OnFailure", [], [view("a", term(0))], "Succeeded"),
        ("OnFailure", [], [view("a", term(1))], "Running"),
        ("Never", [], [view("a", term(0)), view("b", term(0))], "Succeeded"),
        ("Never", [], [view("a", term(0)), view("b", term(2))], "Failed"),
        ("Never", [], [view("a", RUNNING), view("b", term(2))], "Running"),
        ("Always", [view("i", RUNNING)], [view("a", WAITING)], "Pending"),
        ("Always", [view("i", term(0))], [view("a", RUNNING)], "Running"),
        ("Never", [view("i", term(1))], [view("a", WAITING)], "Failed"),
        ("Always", [view("i", {"waiting": {"reason": "CrashLoopBackOff"}}, term(1))], [view("a", WAITING)], "Pending"),
    ],
)
def test_phase(policy: str, init: list[ContainerView], regular: list[ContainerView], phase: str) -> None:
    assert pod_phase({"restartPolicy": policy}, init, regular) == phase


def conds(init: list[ContainerView], regular: list[ContainerView], phase: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in pod_conditions({}, init, regular, phase, True)}


def test_conditions_not_ready_messages() -> None:
    c = conds([view("init1", RUNNING)], [view("a", WAITING), view("b", WAITING)], "Pending")
    assert c["Initialized"] == {
        "type": "Initialized",
        "status": "False",
        "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [init1]",
    }
    assert c["Ready"]["reason"] == c["ContainersReady"]["reason"] == "ContainersNotReady"
    assert c["Ready"]["message"] == "containers with unready status: [a b]"
    assert c["PodScheduled"]["status"] == c["PodReadyToStartContainers"]["status"] == "True"


def test_conditions_ready_and_terminal() -> None:
    c = conds([view("i", term(0), ready=True)], [view("a", RUNNING, ready=True)], "Running")
    assert all(x["status"] == "True" for x in c.values())
    c = conds([], [view("a", term(0))], "Succeeded")
    assert c["Ready"] == {"type": "Ready", "status": "False", "reason": "PodCompleted"}
    assert c["Initialized"]["reason"] == "PodCompleted" and c["Initialized"]["status"] == "True"
    c = conds([], [view("a", term(1))], "Failed")
    assert c["ContainersReady"]["reason"] == "PodFailed"


def test_pod_status_keeps_transition_times() -> None:
    pod: dict[str, Any] = {"metadata": {"generation": 1}, "spec": {"containers": [{"name": "a"}]}, "status": {}}
    first = pod_status(
        pod,
        [],
        [view("a", WAITING)],
        pod_ip="127.1.0.2",
        host_ip="127.0.0.1",
        start_time="T0",
        sandbox_ready=True,
        now="T1",
    )
    assert first["phase"] == "Pending" and first["podIPs"] == [{"ip": "127.1.0.2"}]
    assert first["hostIPs"] == [{"ip": "127.0.0.1"}] and first["startTime"] == "T0"
    assert "initContainerStatuses" not in first
    pod["status"] = first
    second = pod_status(
        pod,
        [],
        [view("a", RUNNING, ready=True)],
        pod_ip="127.1.0.2",
        host_ip="127.0.0.1",
        start_time="T0",
        sandbox_ready=True,
        now="T2",
    )
    by_type = {c["type"]: c for c in second["conditions"]}
    assert by_type["PodScheduled"]["lastTransitionTime"] == "T1"
    assert by_type["Ready"]["lastTransitionTime"] == "T2" and by_type["Ready"]["status"] == "True"
    assert "lastProbeTime" not in by_type["Ready"] and by_type["Ready"]["observedGeneration"] == 1
    assert second["containerStatuses"][0]["state"] == RUNNING
    assert second["phase"] == "Running"


def test_sidecars_in_phase_and_conditions() -> None:
    spec = {"restartPolicy": "Never", "initContainers": [{"name": "side", "restartPolicy": "Always"}]}
    side_starting = ContainerView(name="side", image="i", state=RUNNING, started=False)
    side_up = ContainerView(name="side", image="i", state=RUNNING, started=True, ready=True)
    assert pod_phase(spec, [side_starting], [view("a", {"waiting": {"reason": "PodInitializing"}})]) == "Pending"
    assert pod_phase(spec, [side_up], [view("a", RUNNING, ready=True)]) == "Running"
    assert pod_phase(spec, [side_up], [view("a", term(0))]) == "Running"  # until the sidecar is stopped
    assert pod_phase(spec, [view("side", term(143))], [view("a", term(0))]) == "Succeeded"
    c = {x["type"]: x for x in pod_conditions(spec, [side_starting], [view("a", WAITING)], "Pending", True)}
    assert c["Initialized"]["message"] == "containers with incomplete status: [side]"
    c = {x["type"]: x for x in pod_conditions(spec, [side_starting], [view("a", RUNNING, ready=True)], "Running", True)}
    assert c["Ready"]["message"] == "containers with unready status: [side]"
