"""Pod status from what the kubelet knows of its containers: pure functions, as the kubelet's
generateAPIPodStatus / getPhase / Generate*Condition compute them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ContainerView",
    "container_status",
    "pod_conditions",
    "pod_phase",
    "pod_status",
    "status_changed",
]

Obj = dict[str, Any]
_KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


@dataclass
class ContainerView:
    """One container as the pod worker sees it: current state, last termination, counters."""

    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    image_id: str = ""

    @property
    def running(self) -> bool:
        """Whether the container is running."""
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        """The terminated state, if it is terminated."""
        return self.state.get("terminated")


def container_status(view: ContainerView) -> Obj:
    """A v1.ContainerStatus."""
    out: Obj = {
        "name": view.name,
        "state": view.state,
        "lastState": view.last_state,
        "ready": view.ready,
        "restartCount": view.restart_count,
        "image": view.image,
        "imageID": view.image_id,
        "started": view.started,
    }
    if view.container_id:
        out["containerID"] = view.container_id
    return out


def _last_terminated(view: ContainerView) -> Obj | None:
    return view.last_state.get("terminated")


def sidecar_names(spec: Mapping[str, Any]) -> set[str]:
    """Names of the restartable init containers (sidecars: `restartPolicy: Always`)."""
    return {c.get("name", "") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}


def _has_started(v: ContainerView) -> bool:
    return v.running or v.terminated is not None or _last_terminated(v) is not None


def pod_phase(spec: Mapping[str, Any], init: Sequence[ContainerView], regular: Sequence[ContainerView]) -> str:
    """Pending / Running / Succeeded / Failed (kubelet getPhase, sidecars included)."""
    restart = spec.get("restartPolicy", "Always")
    sidecars = sidecar_names(spec)
    initialized = any(_has_started(v) for v in regular)
    pending_init = pending_sidecars = failed_init = 0
    running = waiting = stopped = succeeded = 0
    for v in init:
        term, last = v.terminated, _last_terminated(v)
        if v.name in sidecars:
            if v.running:
                pending_sidecars += 0 if v.started else 1
                running += 1
            elif term is None and last is None:
                pending_sidecars += 1
                waiting += 1
            continue
        if v.running:
            pending_init += 1
        elif term is not None:
            failed_init += term.get("exitCode", 0) != 0
        elif last is not None:
            failed_init += last.get("exitCode", 0) != 0
        else:
            pending_init += 1
    for v in regular:
        term, last = v.terminated, _last_terminated(v)
        if v.running:
            running += 1
        elif term is not None:
            stopped += 1
            succeeded += term.get("exitCode", 0) == 0
        elif last is not None:
            stopped += 1
            succeeded += last.get("exitCode", 0) == 0
        else:
            waiting += 1
    if failed_init and restart == "Never":
        return "Failed"
    if pending_init or (pending_sidecars and not initialized) or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _go_list(names: Sequence[str]) -> str:
    return "[" + " ".join(names) + "]"


def _cond(type_: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": type_, "status": "True" if ok else "False"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def pod_conditions(
    spec: Mapping[str, Any],
    init: Sequence[ContainerView],
    regular: Sequence[ContainerView],
    phase: str,
    sandbox_ready: bool,
) -> list[Obj]:
    """The kubelet-owned conditions, without timestamps."""
    sidecars = sidecar_names(spec)
    regular_started = any(_has_started(v) for v in regular)
    if phase == "Succeeded":
        initialized = _cond("Initialized", True, "PodCompleted")
    elif regular_started:  # initialized before, whatever the init containers show now
        initialized = _cond("Initialized", True)
    else:
        incomplete = [
            v.name
            for v in init
            if not (v.started if v.name in sidecars else (v.terminated or {"exitCode": 1}).get("exitCode", 0) == 0)
        ]
        initialized = (
            _cond(
                "Initialized",
                False,
                "ContainersNotInitialized",
                f"containers with incomplete status: {_go_list(incomplete)}",
            )
            if incomplete
            else _cond("Initialized", True)
        )
    if phase in ("Succeeded", "Failed"):
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        containers_ready = _cond("ContainersReady", False, reason)
        ready = _cond("Ready", False, reason)
    else:
        unready = [v.name for v in init if v.name in sidecars and not v.ready] + [
            v.name for v in regular if not v.ready
        ]
        if unready:
            msg = f"containers with unready status: {_go_list(unready)}"
            containers_ready = _cond("ContainersReady", False, "ContainersNotReady", msg)
            ready = _cond("Ready", False, "ContainersNotReady", msg)
        else:
            containers_ready = _cond("ContainersReady", True)
            ready = _cond("Ready", True)
    return [
        _cond("PodReadyToStartContainers", sandbox_ready),
        initialized,
        ready,
        containers_ready,
        _cond("PodScheduled", True),
    ]


def _stamp(conds: list[Obj], old: Sequence[Mapping[str, Any]], now: str, generation: int | None) -> list[Obj]:
    before = {c.get("type"): c for c in old}
    out = []
    for c in conds:
        prev = before.get(c["type"])
        same = prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime")
        # no lastProbeTime: Go's zero time, which the apiserver drops as a null; sent as null inside a merge patch's
        # list it kept the write off the apiserver's fast field check, and the stored conditions never equalled ours
        stamped = {**c, "lastTransitionTime": prev["lastTransitionTime"] if same else now}
        if generation is not None:
            stamped["observedGeneration"] = generation
        out.append(stamped)
    return out


def pod_status(
    pod: Mapping[str, Any],
    init: Sequence[ContainerView],
    regular: Sequence[ContainerView],
    *,
    pod_ip: str,
    host_ip: str,
    start_time: str,
    sandbox_ready: bool,
    now: str,
    failure: tuple[str, str] | None = None,
) -> Obj:
    """The pod's full status; lastTransitionTime changes only when a condition's status does.
    `failure` = (reason, message) forces phase Failed (e.g. DeadlineExceeded)."""
    spec = pod.get("spec") or {}
    old: Obj = pod.get("status") or {}
    phase = "Failed" if failure else pod_phase(spec, init, regular)
    generation = (pod.get("metadata") or {}).get("generation")
    conds = _stamp(
        pod_conditions(spec, init, regular, phase, sandbox_ready), old.get("conditions") or [], now, generation
    )
    others = [c for c in old.get("conditions") or [] if c.get("type") not in _KUBELET_CONDITIONS]
    status: Obj = {
        "phase": phase,
        "conditions": conds + others,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [container_status(v) for v in regular],
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [container_status(v) for v in init]
    if failure:
        status["reason"], status["message"] = failure
    for key in ("qosClass", "nominatedNodeName", "reason", "message"):
        if key in old and key not in status:
            status[key] = old[key]
    return status


def status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing `new` over `old` would change anything."""
    return any(old.get(k) != v for k, v in new.items())
