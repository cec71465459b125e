"""What one sync of a pod must do, computed from the pod and what the runtime reports (upstream's
kuberuntime `computePodActions`): a pure function, so every decision is unit-testable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelet.runtime import ContainerState

__all__ = ["ContainerFacts", "PodActions", "PodRuntimeStatus", "compute_pod_actions", "should_restart"]


@dataclass(frozen=True)
class ContainerFacts:
    """One container as the runtime and the kubelet's own bookkeeping see it."""

    state: ContainerState | None = None
    """The current instance's state; None when no instance exists."""
    exit_code: int = 0
    started: bool = False
    """Its startup probe passed (or it has none) — a sidecar lets initialization go on only then."""
    ran: bool = False
    """Some instance of it ever ran."""
    kill_reason: str = ""
    """`liveness` / `startup`: a probe failed and the running instance must be killed."""


@dataclass(frozen=True)
class PodRuntimeStatus:
    """The pod as the runtime reports it, plus the kubelet's phase and termination bookkeeping."""

    sandbox_ready: bool = False
    sandbox_created: bool = False
    """A sandbox was made for the pod before: not ready now means it died (its containers go with it)."""
    phase: str = ""
    """The phase last written ("" before the first write)."""
    finishing: bool = False
    """The pod is on its way to a terminal phase: sidecars are no longer restarted."""
    containers: Mapping[str, ContainerFacts] = field(default_factory=dict)


@dataclass
class PodActions:
    """The plan of one sync."""

    create_sandbox: bool = False
    sandbox_changed: bool = False
    """The pod's sandbox died: every container is killed before a new sandbox is made (if the policy restarts)."""
    kill_pod: bool = False
    """The pod is terminal: stop whatever still runs, start nothing."""
    init_to_start: list[str] = field(default_factory=list)
    """Init containers (sidecars first, then at most one regular one) to start or restart, in order."""
    containers_to_start: list[str] = field(default_factory=list)
    """Regular containers to start or restart (once the pod is initialized)."""
    containers_to_kill: dict[str, str] = field(default_factory=dict)
    """Running containers to kill, with why (`liveness` / `startup`): they restart per policy afterwards."""
    finish: bool = False
    """Every regular container finished for good: the pod goes terminal, its running sidecars are stopped."""
    sidecars_to_stop: list[str] = field(default_factory=list)
    initialized: bool = False
    ephemeral_to_start: list[str] = field(default_factory=list)
    """Ephemeral containers never started yet (they may start before initialization ends; never restarted)."""


def _running(f: ContainerFacts | None) -> bool:
    return f is not None and f.state is ContainerState.RUNNING


def _exited(f: ContainerFacts | None) -> bool:
    return f is not None and f.state is ContainerState.EXITED


def should_restart(container: Mapping[str, Any], init: bool, policy: str, finishing: bool, exit_code: int) -> bool:
    """Whether an exited container gets another instance (restartPolicy; sidecars until the pod finishes)."""
    if init and container.get("restartPolicy") == "Always":
        return not finishing
    if init:
        return policy != "Never" and exit_code != 0
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _needs_start(c: Mapping[str, Any], f: ContainerFacts | None, init: bool, policy: str, finishing: bool) -> bool:
    if f is None or f.state is None:
        return True
    if f.state is ContainerState.EXITED:
        return should_restart(c, init, policy, finishing, f.exit_code)
    return False


def compute_pod_actions(pod: Mapping[str, Any], status: PodRuntimeStatus) -> PodActions:
    """The actions that bring the runtime to what `pod` asks for, given `status`."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy", "Always")
    facts = status.containers
    actions = PodActions()
    if status.phase in ("Succeeded", "Failed"):
        actions.kill_pod = True
        return actions
    if not status.sandbox_ready:
        actions.create_sandbox = True
        if status.sandbox_created:
            actions.sandbox_changed = True
            if policy == "Never" and any(f.ran for f in facts.values()):
                actions.create_sandbox = False  # nothing may run again: the containers are killed, the pod fails
                return actions
    actions.containers_to_kill = {
        name: f.kill_reason for name, f in facts.items() if f.kill_reason and f.state is ContainerState.RUNNING
    }
    actions.ephemeral_to_start = [
        c["name"]
        for c in spec.get("ephemeralContainers") or []
        if (f := facts.get(c["name"])) is None or (f.state is None and not f.ran)
    ]
    regular = spec.get("containers") or []
    ran_before = any((facts.get(c["name"]) or ContainerFacts()).ran for c in regular)
    initialized = True
    for c in spec.get("initContainers") or []:
        f = facts.get(c["name"])
        if c.get("restartPolicy") == "Always":  # a sidecar
            if status.finishing:
                continue
            if not _running(f) and _needs_start(c, f, True, policy, status.finishing):
                actions.init_to_start.append(c["name"])
                if ran_before:
                    continue
                initialized = False  # it runs only after this sync: the next one sees whether it started
                break
            if (_running(f) and f is not None and f.started) or ran_before:
                continue  # a started sidecar lets initialization go on; it keeps running beside the rest
            initialized = False
            break
        if _exited(f) and f is not None and f.exit_code == 0:
            continue
        initialized = False
        if _running(f):
            break
        if _exited(f) and policy == "Never":
            break  # a failed init container with restartPolicy Never: the pod fails
        actions.init_to_start.append(c["name"])
        break
    actions.initialized = initialized
    if not initialized:
        return actions
    for c in regular:
        if _needs_start(c, facts.get(c["name"]), False, policy, status.finishing):
            actions.containers_to_start.append(c["name"])
    if policy != "Always" and not status.finishing and not actions.containers_to_start:
        if all(_exited(facts.get(c["name"])) for c in regular):
            actions.finish = True
            actions.sidecars_to_stop = [
                c["name"]
                for c in spec.get("initContainers") or []
                if c.get("restartPolicy") == "Always" and _running(facts.get(c["name"]))
            ]
    return actions
