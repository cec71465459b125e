"""`PodInfo`: what the scheduler needs from a Pod, computed once per pod version (upstream framework.PodInfo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apimachinery.quantity import QuantityError, parse_quantity, to_milli
from apimachinery.selectors import LabelSelector, SelectorError, selector_from_label_selector

__all__ = [
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "DEFAULT_SCHEDULER_NAME",
    "LABEL_HOSTNAME",
    "AffinityTerm",
    "PodInfo",
    "Resources",
    "pod_key",
]

DEFAULT_SCHEDULER_NAME = "default-scheduler"
LABEL_HOSTNAME = "kubernetes.io/hostname"
# Requests assumed for a container that sets none, for scoring only (upstream schedutil defaults).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

Obj = dict[str, Any]


def pod_key(pod: Obj) -> str:
    """`namespace/name` of a pod."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _value(q: Any) -> int:
    """A quantity as an integer, rounded up (upstream Quantity.Value)."""
    try:
        d = parse_quantity(q)
    except (QuantityError, TypeError):
        return 0
    return int(d.to_integral_value(rounding="ROUND_CEILING"))


def _milli(q: Any) -> int:
    try:
        return to_milli(q)
    except (QuantityError, TypeError):
        return 0


@dataclass
class Resources:
    """Requested or allocatable amounts: cpu in millicores, memory and storage in bytes, others as integers."""

    cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, rl: Obj | None) -> Resources:
        """Parse a ResourceList (`{"cpu": "500m", "memory": "1Gi"}`)."""
        r = cls()
        for name, q in (rl or {}).items():
            if name == "cpu":
                r.cpu = _milli(q)
            elif name == "memory":
                r.memory = _value(q)
            elif name == "ephemeral-storage":
                r.ephemeral_storage = _value(q)
            elif name != "pods":
                r.scalar[name] = _value(q)
        return r

    def add(self, o: Resources) -> None:
        """In-place sum."""
        self.cpu += o.cpu
        self.memory += o.memory
        self.ephemeral_storage += o.ephemeral_storage
        for k, v in o.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + v

    def sub(self, o: Resources) -> None:
        """In-place difference."""
        self.cpu -= o.cpu
        self.memory -= o.memory
        self.ephemeral_storage -= o.ephemeral_storage
        for k, v in o.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) - v

    def set_max(self, o: Resources) -> None:
        """In-place element-wise max."""
        self.cpu = max(self.cpu, o.cpu)
        self.memory = max(self.memory, o.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, o.ephemeral_storage)
        for k, v in o.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def copy(self) -> Resources:
        """A copy."""
        return Resources(self.cpu, self.memory, self.ephemeral_storage, dict(self.scalar))


def _container_requests(c: Obj, non_zero: bool) -> Resources:
    res = c.get("resources") or {}
    # The apiserver defaults requests to limits when only limits are set; do the same if it did not.
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    r = Resources.from_list(merged)
    if non_zero:
        if "cpu" not in merged:
            r.cpu = DEFAULT_MILLI_CPU_REQUEST
        if "memory" not in merged:
            r.memory = DEFAULT_MEMORY_REQUEST
    return r


def pod_requests(spec: Obj, non_zero: bool = False) -> Resources:
    """Effective pod requests: containers plus sidecars, at least each init container, plus overhead."""
    reqs = Resources()
    for c in spec.get("containers") or []:
        reqs.add(_container_requests(c, non_zero))
    restartable = Resources()
    init_max = Resources()
    for c in spec.get("initContainers") or []:
        cr = _container_requests(c, non_zero)
        if c.get("restartPolicy") == "Always":
            reqs.add(cr)
            restartable.add(cr)
            cr = restartable.copy()
        else:
            cr.add(restartable)
        init_max.set_max(cr)
    reqs.set_max(init_max)
    if spec.get("overhead"):
        reqs.add(Resources.from_list(spec["overhead"]))
    return reqs


@dataclass(frozen=True)
class AffinityTerm:
    """A parsed PodAffinityTerm: which pods it selects (namespaces + labels) and over which topology key."""

    selector: LabelSelector
    namespaces: frozenset[str]
    all_namespaces: bool
    topology_key: str

    def matches(self, other: PodInfo) -> bool:
        """Whether `other` is selected by this term."""
        if not (self.all_namespaces or other.namespace in self.namespaces):
            return False
        return self.selector.matches(other.labels)


def _terms(pod_ns: str, raw: list[Obj] | None) -> tuple[AffinityTerm, ...]:
    out = []
    for t in raw or []:
        try:
            sel = selector_from_label_selector(t.get("labelSelector"))
        except SelectorError:
            continue
        namespaces = frozenset(t.get("namespaces") or ())
        ns_sel = t.get("namespaceSelector")
        # An empty namespaceSelector selects every namespace; with neither field set, the pod's own namespace.
        all_ns = ns_sel is not None and not ns_sel.get("matchLabels") and not ns_sel.get("matchExpressions")
        if not namespaces and ns_sel is None:
            namespaces = frozenset({pod_ns})
        out.append(AffinityTerm(sel, namespaces, all_ns, t.get("topologyKey") or ""))
    return tuple(out)


def _weighted(pod_ns: str, raw: list[Obj] | None) -> tuple[tuple[int, AffinityTerm], ...]:
    out = []
    for w in raw or []:
        weight = int(w.get("weight") or 0)
        terms = _terms(pod_ns, [w.get("podAffinityTerm") or {}])
        if weight and terms:
            out.append((weight, terms[0]))
    return tuple(out)


_PARSED_SPEC_FIELDS = (
    "containers",
    "initContainers",
    "overhead",
    "schedulerName",
    "priority",
    "tolerations",
    "nodeSelector",
    "affinity",
)
"""The spec fields `PodInfo.of` reads, but nodeName."""


def _same_parsed_fields(old: Obj, new: Obj) -> bool:
    """Whether `PodInfo.of` would read the same from both versions of a pod, but for spec.nodeName."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    if om.get("uid") != nm.get("uid") or om.get("name") != nm.get("name") or om.get("labels") != nm.get("labels"):
        return False
    if om.get("namespace") != nm.get("namespace"):
        return False
    os_, ns = old.get("spec") or {}, new.get("spec") or {}
    return all(os_.get(f) == ns.get(f) for f in _PARSED_SPEC_FIELDS)


@dataclass
class PodInfo:
    """A pod plus everything the plugins read from it, parsed once."""

    obj: Obj
    key: str
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    node_name: str
    scheduler_name: str
    priority: int
    requests: Resources
    non_zero: Resources
    host_ports: tuple[tuple[str, str, int], ...]
    tolerations: tuple[Obj, ...]
    node_selector: dict[str, str]
    required_node_terms: tuple[Obj, ...] | None
    preferred_node_terms: tuple[tuple[int, Obj], ...]
    affinity_terms: tuple[AffinityTerm, ...]
    anti_affinity_terms: tuple[AffinityTerm, ...]
    preferred_affinity_terms: tuple[tuple[int, AffinityTerm], ...] = ()
    preferred_anti_affinity_terms: tuple[tuple[int, AffinityTerm], ...] = ()

    @property
    def has_pod_affinity(self) -> bool:
        """Whether the pod has any pod affinity or anti-affinity term, required or preferred."""
        return bool(
            self.affinity_terms
            or self.anti_affinity_terms
            or self.preferred_affinity_terms
            or self.preferred_anti_affinity_terms
        )

    @classmethod
    def of(cls, pod: Obj, prev: PodInfo | None = None) -> PodInfo:
        """Parse a Pod object; `prev` (an earlier version's PodInfo) is reused when nothing it parsed changed
        but spec.nodeName (a binding, a status update: two of a pod's three writes in a burst)."""
        if prev is not None and _same_parsed_fields(prev.obj, pod):
            info = object.__new__(cls)  # a copy with two fields changed, without replace()'s __init__ call
            info.__dict__.update(prev.__dict__)
            info.obj = pod
            info.node_name = (pod.get("spec") or {}).get("nodeName") or ""
            return info
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        ns = meta.get("namespace", "")
        ports = []
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                hp = p.get("hostPort") or 0
                if hp > 0:
                    ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
        affinity = spec.get("affinity") or {}
        node_aff = affinity.get("nodeAffinity") or {}
        required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution")
        preferred = tuple(
            (int(p.get("weight") or 0), p.get("preference") or {})
            for p in node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        )
        pod_aff = affinity.get("podAffinity") or {}
        pod_anti = affinity.get("podAntiAffinity") or {}
        return cls(
            obj=pod,
            key=f"{ns}/{meta.get('name', '')}",
            namespace=ns,
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            labels=dict(meta.get("labels") or {}),
            node_name=spec.get("nodeName") or "",
            scheduler_name=spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME,
            priority=int(spec.get("priority") or 0),
            requests=pod_requests(spec),
            non_zero=pod_requests(spec, non_zero=True),
            host_ports=tuple(ports),
            tolerations=tuple(spec.get("tolerations") or ()),
            node_selector=dict(spec.get("nodeSelector") or {}),
            required_node_terms=None if required is None else tuple(required.get("nodeSelectorTerms") or ()),
            preferred_node_terms=preferred,
            affinity_terms=_terms(ns, pod_aff.get("requiredDuringSchedulingIgnoredDuringExecution")),
            anti_affinity_terms=_terms(ns, pod_anti.get("requiredDuringSchedulingIgnoredDuringExecution")),
            preferred_affinity_terms=_weighted(ns, pod_aff.get("preferredDuringSchedulingIgnoredDuringExecution")),
            preferred_anti_affinity_terms=_weighted(
                ns, pod_anti.get("preferredDuringSchedulingIgnoredDuringExecution")
            ),
        )
