"""compute_pod_actions: what one sync of a pod does, from the pod and what the runtime reports."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.pod_actions import ContainerFacts, PodRuntimeStatus, compute_pod_actions
from kubelet.runtime import ContainerState

RUNNING = ContainerFacts(ContainerState.RUNNING, started=True, ran=True)
RUNNING_UNSTARTED = ContainerFacts(ContainerState.RUNNING, started=False, ran=True)


def exited(code: int) -> ContainerFacts:
    return ContainerFacts(ContainerState.EXITED, exit_code=code, ran=True)


def pod(
    containers: list[str], init: list[str] = (), sidecars: list[str] = (), policy: str = "Always"
) -> dict[str, Any]:
    inits = [{"name": n, "restartPolicy": "Always"} if n in sidecars else {"name": n} for n in init]
    return {"spec": {"restartPolicy": policy, "initContainers": inits, "containers": [{"name": n} for n in containers]}}


def status(sandbox: bool = True, phase: str = "", finishing: bool = False, **facts: ContainerFacts) -> PodRuntimeStatus:
    return PodRuntimeStatus(sandbox_ready=sandbox, phase=phase, finishing=finishing, containers=facts)


def test_new_pod_creates_sandbox_and_starts_every_container() -> None:
    a = compute_pod_actions(pod(["a", "b"]), status(sandbox=False))
    assert a.create_sandbox and a.initialized
    assert a.containers_to_start == ["a", "b"]
    assert not a.kill_pod and not a.containers_to_kill and not a.init_to_start


def test_running_pod_needs_nothing() -> None:
    a = compute_pod_actions(pod(["a"]), status(a=RUNNING))
    assert not a.create_sandbox and a.containers_to_start == [] and a.initialized and not a.finish


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 3, True), ("Never", 1, False)],
)
def test_exited_container_restarts_per_policy(policy: str, code: int, restart: bool) -> None:
    a = compute_pod_actions(pod(["a"], policy=policy), status(a=exited(code)))
    assert a.containers_to_start == (["a"] if restart else [])
    assert a.finish is (not restart)


def test_init_containers_run_one_at_a_time_before_the_rest() -> None:
    p = pod(["app"], init=["i1", "i2"])
    a = compute_pod_actions(p, status())
    assert a.init_to_start == ["i1"] and not a.initialized and a.containers_to_start == []
    a = compute_pod_actions(p, status(i1=RUNNING))
    assert a.init_to_start == [] and not a.initialized
    a = compute_pod_actions(p, status(i1=exited(0)))
    assert a.init_to_start == ["i2"]
    a = compute_pod_actions(p, status(i1=exited(0), i2=exited(0)))
    assert a.initialized and a.containers_to_start == ["app"]


def test_failed_init_container_restarts_unless_policy_never() -> None:
    assert compute_pod_actions(pod(["app"], init=["i"]), status(i=exited(1))).init_to_start == ["i"]
    a = compute_pod_actions(pod(["app"], init=["i"], policy="Never"), status(i=exited(1)))
    assert a.init_to_start == [] and not a.initialized and a.containers_to_start == []


def test_sidecar_gates_initialization_until_started() -> None:
    p = pod(["app"], init=["side", "i"], sidecars=["side"])
    assert compute_pod_actions(p, status()).init_to_start == ["side"]
    a = compute_pod_actions(p, status(side=RUNNING_UNSTARTED))
    assert a.init_to_start == [] and not a.initialized
    a = compute_pod_actions(p, status(side=RUNNING))
    assert a.init_to_start == ["i"]
    a = compute_pod_actions(p, status(side=RUNNING, i=exited(0)))
    assert a.initialized and a.containers_to_start == ["app"]


def test_crashed_sidecar_restarts_beside_running_containers() -> None:
    p = pod(["app"], init=["side"], sidecars=["side"])
    a = compute_pod_actions(p, status(side=exited(1), app=RUNNING))
    assert a.init_to_start == ["side"] and a.initialized and a.containers_to_start == []


def test_finished_pod_stops_its_sidecars() -> None:
    p = pod(["job"], init=["side"], sidecars=["side"], policy="Never")
    a = compute_pod_actions(p, status(side=RUNNING, job=exited(0)))
    assert a.finish and a.sidecars_to_stop == ["side"]
    a = compute_pod_actions(p, status(finishing=True, side=exited(137), job=exited(0)))
    assert a.init_to_start == [] and not a.finish


def test_terminal_pod_only_kills() -> None:
    a = compute_pod_actions(pod(["a"]), status(sandbox=False, phase="Failed", a=RUNNING))
    assert a.kill_pod and not a.create_sandbox and a.containers_to_start == []


def test_failed_probe_kills_the_running_container() -> None:
    failing = ContainerFacts(ContainerState.RUNNING, started=True, ran=True, kill_reason="liveness")
    gone = ContainerFacts(ContainerState.EXITED, exit_code=1, ran=True, kill_reason="liveness")
    a = compute_pod_actions(pod(["a", "b"]), status(a=failing, b=gone))
    assert a.containers_to_kill == {"a": "liveness"}
    assert a.containers_to_start == ["b"]


def test_dead_sandbox_is_replaced_and_its_containers_killed() -> None:
    died = PodRuntimeStatus(sandbox_ready=False, sandbox_created=True, containers={"a": RUNNING})
    a = compute_pod_actions(pod(["a"]), died)
    assert a.sandbox_changed and a.create_sandbox


def test_dead_sandbox_of_a_never_restarting_pod_is_not_replaced() -> None:
    died = PodRuntimeStatus(sandbox_ready=False, sandbox_created=True, containers={"a": RUNNING})
    a = compute_pod_actions(pod(["a"], policy="Never"), died)
    assert a.sandbox_changed and not a.create_sandbox and a.containers_to_start == []


def test_first_sandbox_is_no_change() -> None:
    a = compute_pod_actions(pod(["a"], policy="Never"), status(sandbox=False))
    assert a.create_sandbox and not a.sandbox_changed and a.containers_to_start == ["a"]


def test_ephemeral_containers_start_once_even_during_initialization() -> None:
    p = pod(["app"], init=["i1"])
    p["spec"]["ephemeralContainers"] = [{"name": "dbg"}, {"name": "done"}, {"name": "up"}]
    a = compute_pod_actions(p, status(i1=RUNNING, done=exited(1), up=RUNNING))
    assert a.ephemeral_to_start == ["dbg"] and not a.initialized
    a = compute_pod_actions(p, status(i1=exited(0), dbg=exited(0), done=exited(1), up=exited(0)))
    assert a.ephemeral_to_start == [] and a.containers_to_start == ["app"]  # never restarted
