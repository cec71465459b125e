"""Which nodes a DaemonSet's pod belongs on (upstream daemon.NodeShouldRunDaemonPod): node name,
nodeSelector, required node affinity, and NoSchedule/NoExecute taints against tolerations (the
controller adds the standard daemon tolerations first)."""

from __future__ import annotations

import copy
from typing import Any

from apimachinery.taints import tolerates
from client.request import Obj

__all__ = [
    "add_daemon_tolerations",
    "node_selector_matches",
    "node_should_run",
    "pin_to_node",
    "target_node",
    "tolerates",
]

_DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def add_daemon_tolerations(pod_spec: dict[str, Any]) -> None:
    """Add upstream's AddOrUpdateDaemonPodTolerations set (network-unavailable too with hostNetwork)."""
    wanted = list(_DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        wanted.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    tolerations = pod_spec.setdefault("tolerations", [])
    for key, effect in wanted:
        t = {"key": key, "operator": "Exists", "effect": effect}
        if not any(_same_toleration(t, x) for x in tolerations):
            tolerations.append(t)


def _same_toleration(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all((a.get(k) or "") == (b.get(k) or "") for k in ("key", "effect", "value")) and (
        a.get("operator") or "Equal"
    ) == (b.get("operator") or "Equal")


def _requirement_matches(req: dict[str, Any], values: dict[str, str]) -> bool:
    key, op, want = req.get("key", ""), req.get("operator", ""), req.get("values") or []
    have = values.get(key)
    if op == "In":
        return have is not None and have in want
    if op == "NotIn":
        return have is None or have not in want
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt"):
        try:
            a, b = int(have or ""), int(want[0])
        except (ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_selector_matches(selector: dict[str, Any] | None, node: Obj) -> bool:
    """A required NodeSelector: terms ORed, each term's expressions and fields ANDed."""
    if selector is None:
        return True
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    fields = {"metadata.name": meta.get("name", "")}
    for term in selector.get("nodeSelectorTerms") or []:
        exprs, flds = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not flds:
            continue
        if all(_requirement_matches(r, labels) for r in exprs) and all(_requirement_matches(r, fields) for r in flds):
            return True
    return False


def node_should_run(node: Obj, pod_spec: dict[str, Any]) -> tuple[bool, bool]:
    """(should run, should continue running) for a daemon pod with this spec (tolerations added) on `node`."""
    name = (node.get("metadata") or {}).get("name", "")
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != name:
        return False, False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False, False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not node_selector_matches(required, node):
        return False, False
    tolerations = pod_spec.get("tolerations") or []
    untolerated = [
        t
        for t in (node.get("spec") or {}).get("taints") or []
        if t.get("effect") in ("NoSchedule", "NoExecute") and not any(tolerates(x, t) for x in tolerations)
    ]
    if untolerated:
        return False, not any(t.get("effect") == "NoExecute" for t in untolerated)
    return True, True


def pin_to_node(pod_spec: dict[str, Any], node_name: str) -> None:
    """upstream ReplaceDaemonSetPodNodeNameNodeAffinity: required affinity to exactly this node."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity = pod_spec.setdefault("affinity", {}) or {}
    pod_spec["affinity"] = affinity
    node_affinity = affinity.setdefault("nodeAffinity", {}) or {}
    affinity["nodeAffinity"] = node_affinity
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        required["nodeSelectorTerms"] = [copy.deepcopy(term)]


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: spec.nodeName, else its metadata.name matchFields affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return None
