"""Server-side printing: the `kubectl get` columns and cells of each kind, as printers.go has them.

Ported from kubernetes/kubernetes pkg/printers/internalversion/printers.go (1.33-1.35). The
apiserver always prints with `Wide: true`, so every row carries the priority-1 (`-o wide`) cells
too and kubectl drops them by priority. Objects here are stored v1 JSON, not the internal types
printers.go sees, so where the real apiserver's defaulting or v1->internal conversion would have
filled a field in (`podIPs` from `podIP`, `replicas: 1`, `protocol: TCP`, ...) the row functions
read it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from apimachinery.quantity import Quantity, QuantityError

__all__ = [
    "DEFAULT_PRINTER",
    "PRINTERS",
    "Column",
    "Printer",
    "format_hpa_metrics",
    "format_label_selector",
    "format_labels",
    "human_duration",
    "parse_time",
    "printer_for",
    "translate_timestamp_since",
]

Obj = Mapping[str, Any]
CellsFunc = Callable[[Obj, datetime], list[Any]]

NONE = "<none>"
UNKNOWN = "<unknown>"
UNSET = "<unset>"

# ---------------------------------------------------------------------------------------------
# Generic machinery: field access, time, label formatting, columns, printers and the registry.
# ---------------------------------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    """Walk `path` through nested mappings; None as soon as a step is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp (metav1.Time or MicroTime) into an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, like Go's."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(d: timedelta) -> str:
    """Format a duration exactly like k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    ns = (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000
    seconds = _trunc_div(ns, 1_000_000_000)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def translate_timestamp_since(timestamp: Any, now: datetime) -> str:
    """Age of an RFC 3339 timestamp at `now`; `<unknown>` when unset (translateTimestampSince)."""
    when = parse_time(timestamp)
    if when is None:
        return UNKNOWN
    return human_duration(now - when)


def _age(obj: Obj, now: datetime) -> str:
    return translate_timestamp_since(_get(obj, "metadata", "creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return _str(_get(obj, "metadata", "name"))


def format_labels(labels: Any) -> str:
    """`k=v,k2=v2` with sorted keys, or `<none>` (labels.FormatLabels)."""
    pairs = _map(labels)
    return ",".join(f"{k}={pairs[k]}" for k in sorted(pairs)) or NONE


def _selector_string(selector: Any) -> str | None:
    """String() of metav1.LabelSelectorAsSelector(selector); None when the selector is invalid."""
    if selector is None:
        return ""  # labels.Nothing()
    selector = _map(selector)
    match_labels = _map(selector.get("matchLabels"))
    expressions = _list(selector.get("matchExpressions"))
    if not match_labels and not expressions:
        return ""  # labels.Everything()
    requirements = [(k, f"{k}={v}") for k, v in match_labels.items()]
    for expr in expressions:
        expr = _map(expr)
        key, op = _str(expr.get("key")), expr.get("operator")
        values = [_str(v) for v in _list(expr.get("values"))]
        if op in ("In", "NotIn"):
            if not values:
                return None
            word = "in" if op == "In" else "notin"
            requirements.append((key, f"{key} {word} ({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                return None
            requirements.append((key, key if op == "Exists" else f"!{key}"))
        else:
            return None
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: `app=nginx,tier in (a,b)`, `<none>` if empty, `<error>`."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or NONE


def _layout_containers(pod_spec: Any) -> tuple[str, str]:
    """Comma-joined container names and images of a pod spec (layoutContainerCells)."""
    containers = [_map(c) for c in _list(_get(pod_spec, "containers"))]
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return names, images


def _condition_true(conditions: Any, cond_type: str) -> bool:
    """Whether the first condition of `cond_type` has status True (hasJobCondition)."""
    for cond in _list(conditions):
        if _get(cond, "type") == cond_type:
            return _get(cond, "status") == "True"
    return False


@dataclass(frozen=True)
class Column:
    """One metav1.TableColumnDefinition."""

    name: str
    type: str = "string"
    description: str = ""
    format: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        """The column as it is serialized in a Table's columnDefinitions."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Printer:
    """The columns of one kind and the function giving one object's cells (one TableHandler)."""

    columns: tuple[Column, ...]
    cells: CellsFunc
    conditions: Callable[[Obj], list[dict[str, Any]]] | None = None

    def column_definitions(self) -> list[dict[str, Any]]:
        """All column definitions, wide ones included."""
        return [c.definition() for c in self.columns]

    def row(self, obj: Obj, now: datetime) -> dict[str, Any]:
        """A TableRow without its object: cells, and row conditions when the kind has any."""
        row: dict[str, Any] = {"cells": self.cells(obj, now)}
        if self.conditions is not None and (conditions := self.conditions(obj)):
            row["conditions"] = conditions
        return row


def _col(name: str, type_: str, description: str, priority: int = 0) -> Column:
    return Column(name=name, type=type_, description=description, priority=priority)


def _wide(name: str, description: str, type_: str = "string") -> Column:
    return Column(name=name, type=type_, description=description, priority=1)


NAME_COLUMN = Column(
    "Name",
    format="name",
    description=(
        "Name must be unique within a namespace. Is required when creating resources, although "
        "some resources may allow a client to request the generation of an appropriate name "
        "automatically. Name is primarily intended for creation idempotence and configuration "
        "definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    ),
)
AGE_COLUMN = Column(
    "Age",
    description=(
        "CreationTimestamp is a timestamp representing the server time when this object was "
        "created. It is not guaranteed to be set in happens-before order across separate "
        "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
        "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
        "#metadata"
    ),
)
CONTAINERS_COLUMN = _wide("Containers", "Names of each container in the template.")
IMAGES_COLUMN = _wide("Images", "Images referenced by each container in the template.")


def _default_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


DEFAULT_PRINTER = Printer((NAME_COLUMN, AGE_COLUMN), _default_cells)

# ---------------------------------------------------------------------------------------------
# Pod
# ---------------------------------------------------------------------------------------------

_POD_SUCCEEDED = {
    "type": "Completed",
    "status": "True",
    "reason": "Succeeded",
    "message": "The pod has completed successfully.",
}
_POD_FAILED = {
    "type": "Completed",
    "status": "True",
    "reason": "Failed",
    "message": "The pod failed.",
}


def _is_restartable_init(container: Any) -> bool:
    return _get(container, "restartPolicy") == "Always"


def _later(current: datetime | None, status: Any) -> datetime | None:
    """The later of `current` and the container's lastState.terminated.finishedAt."""
    terminated = _get(status, "lastState", "terminated")
    if terminated is None:
        return current
    finished = parse_time(_get(terminated, "finishedAt"))
    if finished is not None and (current is None or current < finished):
        return finished
    return current


def _terminated_reason(terminated: Any, prefix: str = "") -> str:
    reason = _str(_get(terminated, "reason"))
    if reason:
        return prefix + reason
    signal = _int(_get(terminated, "signal"))
    if signal != 0:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(_get(terminated, 'exitCode'))}"


def _pod_status_summary(pod: Obj) -> tuple[int, int, str, int, datetime | None]:
    """(ready, total, reason, restarts, last restart) exactly as printPod works them out."""
    spec, status = _map(pod.get("spec")), _map(pod.get("status"))
    init_specs = [_map(c) for c in _list(spec.get("initContainers"))]
    conditions = _list(status.get("conditions"))

    restarts = 0
    restartable_init_restarts = 0
    total = len(_list(spec.get("containers")))
    ready = 0
    last_restart: datetime | None = None
    last_restartable_init_restart: datetime | None = None

    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    for cond in conditions:
        if _get(cond, "type") == "PodScheduled" and _get(cond, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_by_name = {_str(c.get("name")): c for c in init_specs}
    total += sum(1 for c in init_specs if _is_restartable_init(c))

    initializing = False
    for i, cs in enumerate(_list(status.get("initContainerStatuses"))):
        count = _int(_get(cs, "restartCount"))
        restarts += count
        last_restart = _later(last_restart, cs)
        restartable = _is_restartable_init(init_by_name.get(_str(_get(cs, "name"))))
        if restartable:
            restartable_init_restarts += count
            last_restartable_init_restart = _later(last_restartable_init_restart, cs)
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if terminated is not None and _int(_get(terminated, "exitCode")) == 0:
            continue
        if restartable and _get(cs, "started") is True:
            if _get(cs, "ready") is True:
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and _str(_get(waiting, "reason")) not in ("", "PodInitializing"):
            reason = "Init:" + _str(_get(waiting, "reason"))
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _pod_initialized(conditions):
        restarts = restartable_init_restarts
        last_restart = last_restartable_init_restart
        has_running = False
        for cs in reversed(_list(status.get("containerStatuses"))):
            restarts += _int(_get(cs, "restartCount"))
            last_restart = _later(last_restart, cs)
            waiting = _get(cs, "state", "waiting")
            terminated = _get(cs, "state", "terminated")
            if waiting is not None and _str(_get(waiting, "reason")):
                reason = _str(_get(waiting, "reason"))
            elif terminated is not None:
                reason = _terminated_reason(terminated)
            elif _get(cs, "ready") is True and _get(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        # Back to "Running" if at least one container is still reporting as running.
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _pod_initialized(conditions: list[Any]) -> bool:
    for cond in conditions:
        if _get(cond, "type") == "Initialized":
            return _get(cond, "status") == "True"
    return False


def _pod_cells(pod: Obj, now: datetime) -> list[Any]:
    spec, status = _map(pod.get("spec")), _map(pod.get("status"))
    ready, total, reason, restarts, last_restart = _pod_status_summary(pod)
    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(now - last_restart)} ago)"

    pod_ips = _list(status.get("podIPs"))
    pod_ip = _str(_get(pod_ips[0], "ip")) if pod_ips else _str(status.get("podIP"))
    gates = _list(spec.get("readinessGates"))
    gates_cell = NONE
    if gates:
        conditions = _list(status.get("conditions"))
        passing = 0
        for gate in gates:
            for cond in conditions:
                if _get(cond, "type") == _get(gate, "conditionType"):
                    passing += _get(cond, "status") == "True"
                    break
        gates_cell = f"{passing}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        pod_ip or NONE,
        _str(spec.get("nodeName")) or NONE,
        _str(status.get("nominatedNodeName")) or NONE,
        gates_cell,
    ]


def _pod_conditions(pod: Obj) -> list[dict[str, Any]]:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [dict(_POD_SUCCEEDED)]
    if phase == "Failed":
        return [dict(_POD_FAILED)]
    return []


POD_COLUMNS = (
    NAME_COLUMN,
    _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "string", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    AGE_COLUMN,
    _wide("IP", "podIP address allocated to the pod."),
    _wide("Node", "NodeName indicates in which node this pod is scheduled."),
    _wide(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
        "cannot be scheduled right away as preemption victims receive their graceful "
        "termination periods.",
    ),
    _wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness."),
)

# ---------------------------------------------------------------------------------------------
# Cluster and config objects: Namespace, Node, Service, Endpoints, ConfigMap, Secret, ...
# ---------------------------------------------------------------------------------------------


def _namespace_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _str(_get(obj, "status", "phase")), _age(obj, now)]


NAMESPACE_COLUMNS = (
    NAME_COLUMN,
    _col("Status", "string", "The status of the namespace"),
    AGE_COLUMN,
)

_NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
_NODE_ROLE_LABEL = "kubernetes.io/role"


def _node_roles(node: Obj) -> str:
    roles: set[str] = set()
    for key, value in _map(_get(node, "metadata", "labels")).items():
        if key.startswith(_NODE_ROLE_PREFIX):
            if role := key[len(_NODE_ROLE_PREFIX) :]:
                roles.add(role)
        elif key == _NODE_ROLE_LABEL and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def _node_address(node: Obj, address_type: str) -> str:
    for address in _list(_get(node, "status", "addresses")):
        if _get(address, "type") == address_type:
            return _str(_get(address, "address"))
    return NONE


def _node_cells(node: Obj, now: datetime) -> list[Any]:
    ready = None
    for cond in _list(_get(node, "status", "conditions")):
        if _get(cond, "type") == "Ready":
            ready = cond  # the last one wins, as in printNode's condition map
    status = []
    if ready is not None:
        status.append("Ready" if _get(ready, "status") == "True" else "NotReady")
    else:
        status.append("Unknown")
    if _get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    info = _map(_get(node, "status", "nodeInfo"))
    return [
        _name(node),
        ",".join(status),
        _node_roles(node),
        _age(node, now),
        _str(info.get("kubeletVersion")),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        _str(info.get("osImage")) or UNKNOWN,
        _str(info.get("kernelVersion")) or UNKNOWN,
        _str(info.get("containerRuntimeVersion")) or UNKNOWN,
    ]


NODE_COLUMNS = (
    NAME_COLUMN,
    _col("Status", "string", "The status of the node"),
    _col("Roles", "string", "The roles of the node"),
    AGE_COLUMN,
    _col("Version", "string", "Kubelet Version reported by the node."),
    _wide("Internal-IP", "List of addresses reachable to the node."),
    _wide("External-IP", "List of addresses reachable to the node."),
    _wide("OS-Image", "OS Image reported by the node from /etc/os-release."),
    _wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r'."),
    _wide(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API.",
    ),
)


def _load_balancer_ips(service: Obj) -> str:
    found: set[str] = set()
    for ingress in _list(_get(service, "status", "loadBalancer", "ingress")):
        if ip := _str(_get(ingress, "ip")):
            found.add(ip)
        elif hostname := _str(_get(ingress, "hostname")):
            found.add(hostname)
    return ",".join(sorted(found))  # wide output: never clipped


def _service_external_ip(service: Obj, svc_type: str) -> str:
    external_ips = [_str(ip) for ip in _list(_get(service, "spec", "externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) or NONE
    if svc_type == "LoadBalancer":
        lb_ips = _load_balancer_ips(service)
        if external_ips:
            return ",".join([*(lb_ips.split(",") if lb_ips else []), *external_ips])
        return lb_ips or "<pending>"
    if svc_type == "ExternalName":
        return _str(_get(service, "spec", "externalName"))
    return UNKNOWN


def _service_ports(ports: Iterable[Any]) -> str:
    pieces = []
    for port in ports:
        number, protocol = _int(_get(port, "port")), _str(_get(port, "protocol")) or "TCP"
        node_port = _int(_get(port, "nodePort"))
        pieces.append(f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}")
    return ",".join(pieces)


def _service_cells(service: Obj, now: datetime) -> list[Any]:
    spec = _map(service.get("spec"))
    svc_type = _str(spec.get("type")) or "ClusterIP"
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = _str(cluster_ips[0]) if cluster_ips else _str(spec.get("clusterIP"))
    return [
        _name(service),
        svc_type,
        cluster_ip or NONE,
        _service_external_ip(service, svc_type),
        _service_ports(_list(spec.get("ports"))) or NONE,
        _age(service, now),
        format_labels(spec.get("selector")),
    ]


SERVICE_COLUMNS = (
    NAME_COLUMN,
    _col("Type", "string", "type determines how the Service is exposed."),
    _col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    _col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
        "traffic for this service.",
    ),
    _col("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE_COLUMN,
    _wide(
        "Selector",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _format_endpoints(endpoints: Obj) -> str:
    subsets = _list(endpoints.get("subsets"))
    if not subsets:
        return NONE
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for subset in subsets:
        addresses = [_str(_get(a, "ip")) for a in _list(_get(subset, "addresses"))]
        ports = _list(_get(subset, "ports"))
        if not ports:  # headless services may have no ports
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(ip)
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_join_host_port(ip, _int(_get(port, "port"))))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def _endpoints_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _format_endpoints(obj), _age(obj, now)]


ENDPOINTS_COLUMNS = (
    NAME_COLUMN,
    _col("Endpoints", "string", "The set of all endpoints is the union of all subsets."),
    AGE_COLUMN,
)


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or UNSET


def _limited(values: Iterable[str], limit: int = 3) -> str:
    shown: list[str] = []
    more, count = False, 0
    for value in values:
        if len(shown) < limit:
            shown.append(value)
        elif len(shown) == limit:
            more = True
        count += 1
    return _list_with_more(shown, more, count, limit)


def _slice_port(port: Any) -> str:
    if (number := _get(port, "port")) is not None:
        return str(number)
    if (name := _get(port, "name")) is not None:
        return _str(name)
    return "*"


def _endpoint_slice_cells(obj: Obj, now: datetime) -> list[Any]:
    addresses = (
        _str(address) for endpoint in _list(obj.get("endpoints")) for address in _list(_get(endpoint, "addresses"))
    )
    return [
        _name(obj),
        _str(obj.get("addressType")),
        _limited(_slice_port(p) for p in _list(obj.get("ports"))),
        _limited(addresses),
        _age(obj, now),
    ]


ENDPOINT_SLICE_COLUMNS = (
    NAME_COLUMN,
    _col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    _col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    _col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice."),
    AGE_COLUMN,
)


def _config_map_cells(obj: Obj, now: datetime) -> list[Any]:
    count = len(_map(obj.get("data"))) + len(_map(obj.get("binaryData")))
    return [_name(obj), count, _age(obj, now)]


CONFIG_MAP_COLUMNS = (
    NAME_COLUMN,
    _col("Data", "string", "Data contains the configuration data."),
    AGE_COLUMN,
)


def _secret_cells(obj: Obj, now: datetime) -> list[Any]:
    # v1 -> internal conversion folds stringData into data before the printer sees it.
    keys = set(_map(obj.get("data"))) | set(_map(obj.get("stringData")))
    return [_name(obj), _str(obj.get("type")) or "Opaque", len(keys), _age(obj, now)]


SECRET_COLUMNS = (
    NAME_COLUMN,
    _col("Type", "string", "Used to facilitate programmatic handling of secret data."),
    _col("Data", "string", "Data contains the secret data."),
    AGE_COLUMN,
)


def _service_account_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), len(_list(obj.get("secrets"))), _age(obj, now)]


SERVICE_ACCOUNT_COLUMNS = (
    NAME_COLUMN,
    _col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this "
        "ServiceAccount are allowed to use.",
    ),
    AGE_COLUMN,
)


def _event_source(event: Obj) -> str:
    component = _str(_get(event, "source", "component")) or _str(event.get("reportingComponent"))
    instance = _str(_get(event, "source", "host")) or _str(event.get("reportingInstance"))
    return f"{component}, {instance}" if instance else component


def _event_cells(event: Obj, now: datetime) -> list[Any]:
    if parse_time(event.get("firstTimestamp")) is not None:
        first_seen = translate_timestamp_since(event.get("firstTimestamp"), now)
    else:
        first_seen = translate_timestamp_since(event.get("eventTime"), now)
    if parse_time(event.get("lastTimestamp")) is not None:
        last_seen = translate_timestamp_since(event.get("lastTimestamp"), now)
    else:
        last_seen = first_seen
    count = _int(event.get("count"))
    series = event.get("series")
    if series is not None:
        last_seen = translate_timestamp_since(_get(series, "lastObservedTime"), now)
        count = _int(_get(series, "count"))
    elif count == 0:
        count = 1  # singleton events have no count in the new API
    involved = _map(event.get("involvedObject"))
    kind, name = _str(involved.get("kind")).lower(), _str(involved.get("name"))
    return [
        last_seen,
        _str(event.get("type")),
        _str(event.get("reason")),
        f"{kind}/{name}" if name else kind,
        _str(involved.get("fieldPath")),
        _event_source(event),
        _str(event.get("message")).strip(),
        first_seen,
        count,
        _name(event),
    ]


EVENT_COLUMNS = (
    _col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    _col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    _col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the "
        "transition into the object's current status.",
    ),
    _col("Object", "string", "The object that this event is about."),
    _wide(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should "
        "contain a valid JSON/Go field access statement.",
    ),
    _wide("Source", "The component reporting this event."),
    _col("Message", "string", "A human-readable description of the status of this operation."),
    _wide("First Seen", "The time at which the event was first recorded."),
    _wide("Count", "The number of times this event has occurred."),
    Column("Name", format="name", description=NAME_COLUMN.description, priority=1),
)


def _lease_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _str(_get(obj, "spec", "holderIdentity")), _age(obj, now)]


def _int_or_na(value: Any) -> str:
    return "N/A" if value is None else str(value)


def _pdb_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    allowed = (obj.get("status") or {}).get("disruptionsAllowed", 0)
    return [
        _name(obj),
        _int_or_na(spec.get("minAvailable")),
        _int_or_na(spec.get("maxUnavailable")),
        allowed,
        _age(obj, now),
    ]


# printPodDisruptionBudget
PDB_COLUMNS = (
    NAME_COLUMN,
    _col("Min Available", "string", "The minimum number of pods that must be available."),
    _col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    _col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE_COLUMN,
)


def _priority_class_cells(obj: Obj, now: datetime) -> list[Any]:
    return [
        _name(obj),
        obj.get("value", 0),
        bool(obj.get("globalDefault")),
        _age(obj, now),
        _str(obj.get("preemptionPolicy")),
    ]


# printPriorityClass
PRIORITY_CLASS_COLUMNS = (
    NAME_COLUMN,
    _col("Value", "integer", "Value of the priority class."),
    _col("Global-Default", "boolean", "Whether this is the default priority class for pods without one."),
    AGE_COLUMN,
    _col("PreemptionPolicy", "string", "Whether pods of this class may preempt lower-priority pods."),
)


LEASE_COLUMNS = (
    NAME_COLUMN,
    _col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE_COLUMN,
)

# ---------------------------------------------------------------------------------------------
# Workloads: ReplicationController, ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob
# ---------------------------------------------------------------------------------------------


def _replicas(obj: Obj) -> int:
    """spec.replicas, defaulted to 1 as the v1 defaulting does."""
    return _int(_get(obj, "spec", "replicas"), 1)


def _rc_cells(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj.get("status"))
    names, images = _layout_containers(_get(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        _replicas(obj),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        names,
        images,
        format_labels(_get(obj, "spec", "selector")),
    ]


RC_COLUMNS = (
    NAME_COLUMN,
    _col("Desired", "integer", "Replicas is the number of desired replicas."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "The number of ready replicas for this replication controller."),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    _wide(
        "Selector",
        "Selector is a label query over pods that should match the Replicas count.",
    ),
)


def _replica_set_cells(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj.get("status"))
    names, images = _layout_containers(_get(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        _replicas(obj),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


REPLICA_SET_COLUMNS = (
    NAME_COLUMN,
    _col("Desired", "integer", "Replicas is the number of desired replicas."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "The number of ready replicas for this replica set."),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    _wide("Selector", "Selector is a label query over pods that should match the replica count."),
)


def _deployment_cells(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj.get("status"))
    names, images = _layout_containers(_get(obj, "spec", "template", "spec"))
    selector = _selector_string(_get(obj, "spec", "selector"))
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_replicas(obj)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


DEPLOYMENT_COLUMNS = (
    NAME_COLUMN,
    _col("Ready", "string", "Number of the pod with ready state"),
    _col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    _col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    _wide("Selector", "Label selector for pods."),
)


def _daemon_set_cells(obj: Obj, now: datetime) -> list[Any]:
    status = _map(obj.get("status"))
    pod_spec = _get(obj, "spec", "template", "spec")
    names, images = _layout_containers(pod_spec)
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(_get(pod_spec, "nodeSelector")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


DAEMON_SET_COLUMNS = (
    NAME_COLUMN,
    _col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes "
        "correctly running the daemon pod).",
    ),
    _col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    _col(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the "
        "daemon pod running and ready.",
    ),
    _col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    _col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the "
        "daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    _col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    _wide("Selector", "A label query over pods that are managed by the daemon set."),
)


def _stateful_set_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = _layout_containers(_get(obj, "spec", "template", "spec"))
    ready = _int(_get(obj, "status", "readyReplicas"))
    return [_name(obj), f"{ready}/{_replicas(obj)}", _age(obj, now), names, images]


STATEFUL_SET_COLUMNS = (
    NAME_COLUMN,
    _col("Ready", "string", "Number of the pod with ready state"),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
)


def _controller_of(obj: Obj) -> str:
    for ref in _list(_get(obj, "metadata", "ownerReferences")):
        if _get(ref, "controller") is not True:
            continue
        api_version, kind = _str(_get(ref, "apiVersion")), _str(_get(ref, "kind"))
        group = api_version.partition("/")[0] if api_version.count("/") == 1 else ""
        name = _str(_get(ref, "name"))
        if not group and not kind:
            return name
        group_kind = f"{kind}.{group}" if group else kind
        return f"{group_kind.lower()}/{name}"
    return NONE


def _controller_revision_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _controller_of(obj), _int(obj.get("revision")), _age(obj, now)]


CONTROLLER_REVISION_COLUMNS = (
    NAME_COLUMN,
    _col("Controller", "string", "Controller of the object"),
    _col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
    AGE_COLUMN,
)


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _pvc_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else _str(status.get("phase"))
    capacity = access = ""
    if spec.get("volumeName"):
        modes = status.get("accessModes") or []
        access = ",".join(short for long, short in _ACCESS_MODES if long in modes)
        capacity = _str((status.get("capacity") or {}).get("storage"))
    storage_class = spec.get("storageClassName") or _str(
        _get(obj, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class")
    )
    return [
        _name(obj),
        phase,
        _str(spec.get("volumeName")),
        capacity,
        access,
        storage_class,
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


PVC_COLUMNS = (
    NAME_COLUMN,
    _col("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
    _col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    _col("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
    _col("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has."),
    _col("StorageClass", "string", "StorageClass of the pvc"),
    _col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    AGE_COLUMN,
    _wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
)


def _job_status(job: Obj) -> str:
    conditions = _get(job, "status", "conditions")
    if _condition_true(conditions, "Complete"):
        return "Complete"
    if _condition_true(conditions, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if _condition_true(conditions, "Suspended"):
        return "Suspended"
    if _condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    if _condition_true(conditions, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    return "Running"


def _job_cells(job: Obj, now: datetime) -> list[Any]:
    spec, status = _map(job.get("spec")), _map(job.get("status"))
    succeeded = _int(status.get("succeeded"))
    completions = spec.get("completions")
    parallelism = _int(spec.get("parallelism"))
    if completions is not None:
        done = f"{succeeded}/{_int(completions)}"
    elif parallelism > 1:
        done = f"{succeeded}/1 of {parallelism}"
    else:
        done = f"{succeeded}/1"
    started = parse_time(status.get("startTime"))
    finished = parse_time(status.get("completionTime"))
    took = ""
    if started is not None:
        took = human_duration((finished or now) - started)
    names, images = _layout_containers(_get(spec, "template", "spec"))
    return [
        _name(job),
        _job_status(job),
        done,
        took,
        _age(job, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


JOB_COLUMNS = (
    NAME_COLUMN,
    _col("Status", "string", "Status of the job."),
    _col("Completions", "string", "The number of pods which reached phase Succeeded."),
    _col("Duration", "string", "Time required to complete the job."),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    _wide("Selector", "A label query over pods that should match the pod count."),
)


def _cron_job_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    last_schedule = NONE
    if status.get("lastScheduleTime") is not None:
        last_schedule = translate_timestamp_since(status.get("lastScheduleTime"), now)
    time_zone = spec.get("timeZone")
    suspend = spec.get("suspend", False)  # defaulted to false
    job_spec = _get(spec, "jobTemplate", "spec")
    names, images = _layout_containers(_get(job_spec, "template", "spec"))
    return [
        _name(obj),
        _str(spec.get("schedule")),
        NONE if time_zone is None else _str(time_zone),
        UNSET if not isinstance(suspend, bool) else str(suspend),
        len(_list(status.get("active"))),
        last_schedule,
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(job_spec, "selector")),
    ]


CRON_JOB_COLUMNS = (
    NAME_COLUMN,
    _col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    _col("Timezone", "string", "The time zone name for the given schedule."),
    _col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to "
        "already started executions.",
    ),
    _col("Active", "integer", "A list of pointers to currently running jobs."),
    _col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    _wide("Selector", "A label query over pods that should match the pod count."),
)

# ---------------------------------------------------------------------------------------------
# networking.k8s.io: Ingress, IngressClass, ServiceCIDR, IPAddress
# ---------------------------------------------------------------------------------------------


def _ingress_hosts(rules: list[Any]) -> str:
    shown: list[str] = []
    limit, more = 3, False
    for rule in rules:
        if len(shown) == limit:
            more = True
        if not more and (host := _str(_get(rule, "host"))):
            shown.append(host)
    if not shown:
        return "*"
    text = ",".join(shown)
    return f"{text} + {len(rules) - limit} more..." if more else text


def _ingress_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj.get("spec"))
    class_name = spec.get("ingressClassName")
    return [
        _name(obj),
        class_name if isinstance(class_name, str) else NONE,
        _ingress_hosts(_list(spec.get("rules"))),
        _load_balancer_ips(obj),  # the apiserver prints wide: never clipped
        "80, 443" if _list(spec.get("tls")) else "80",
        _age(obj, now),
    ]


INGRESS_COLUMNS = (
    NAME_COLUMN,
    _col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
    _col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
    _col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
    _col("Ports", "string", "Ports of TLS configurations that open"),
    AGE_COLUMN,
)


def _ingress_class_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj.get("spec"))
    params = spec.get("parameters")
    parameters = NONE
    if isinstance(params, Mapping):
        parameters = _str(params.get("kind"))
        if isinstance(params.get("apiGroup"), str):
            parameters += "." + params["apiGroup"]
        parameters += "/" + _str(params.get("name"))
    return [_name(obj), _str(spec.get("controller")), parameters, _age(obj, now)]


INGRESS_CLASS_COLUMNS = (
    NAME_COLUMN,
    _col("Controller", "string", "Controller that is responsible for handling this class"),
    _col("Parameters", "string", "A reference to a resource with additional parameters"),
    AGE_COLUMN,
)


def _service_cidr_cells(obj: Obj, now: datetime) -> list[Any]:
    cidrs = [_str(c) for c in _list(_get(obj, "spec", "cidrs"))]
    return [_name(obj), ",".join(cidrs), _age(obj, now)]


SERVICE_CIDR_COLUMNS = (
    NAME_COLUMN,
    _col(
        "CIDRs",
        "string",
        'CIDRs defines the IP blocks in CIDR notation (e.g. "192.168.0.0/24" or "2001:db8::/64") from which to '
        "assign service cluster IPs. Max of two CIDRs is allowed, one of each IP family. This field is immutable.",
    ),
    AGE_COLUMN,
)


def _ip_address_cells(obj: Obj, now: datetime) -> list[Any]:
    ref = _get(obj, "spec", "parentRef")
    parent = NONE
    if isinstance(ref, Mapping):
        group, resource = _str(ref.get("group")), _str(ref.get("resource"))
        parent = (f"{resource}.{group}" if group else resource).lower()
        if namespace := _str(ref.get("namespace")):
            parent += "/" + namespace
        parent += "/" + _str(ref.get("name"))
    # printIPAddress emits an Age cell although the table has no Age column; kubectl shows two columns.
    return [_name(obj), parent, _age(obj, now)]


IP_ADDRESS_COLUMNS = (
    NAME_COLUMN,
    _col(
        "ParentRef",
        "string",
        "ParentRef references the resource that an IPAddress is attached to. An IPAddress must reference a "
        "parent object.",
    ),
)

# ---------------------------------------------------------------------------------------------
# rbac.authorization.k8s.io
# ---------------------------------------------------------------------------------------------


def _role_cells(obj: Obj, now: datetime) -> list[Any]:
    created = parse_time(_get(obj, "metadata", "creationTimestamp"))
    text = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
    return [_name(obj), text]


ROLE_COLUMNS = (NAME_COLUMN, replace(AGE_COLUMN, name="Created At", type="date"))


def _role_binding_cells(obj: Obj, now: datetime) -> list[Any]:
    ref = _map(obj.get("roleRef"))
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for subject in _list(obj.get("subjects")):
        s = _map(subject)
        kind, name = _str(s.get("kind")), _str(s.get("name"))
        if kind == "ServiceAccount":
            accounts.append(f"{_str(s.get('namespace'))}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    role = f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}"
    return [_name(obj), role, _age(obj, now), ", ".join(users), ", ".join(groups), ", ".join(accounts)]


ROLE_BINDING_COLUMNS = (
    NAME_COLUMN,
    _col(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the "
        "RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE_COLUMN,
    _wide("Users", "Users in the roleBinding"),
    _wide("Groups", "Groups in the roleBinding"),
    _wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
)

# ---------------------------------------------------------------------------------------------
# Policy: LimitRange (the default table convertor), ResourceQuota; admissionregistration webhooks
# ---------------------------------------------------------------------------------------------

CREATED_AT_COLUMN = Column("Created At", type="date", description=AGE_COLUMN.description)


def _created_at_cells(obj: Obj, now: datetime) -> list[Any]:
    """rest.NewDefaultTableConvertor: the name and the creation time in RFC 3339 (UTC)."""
    created = parse_time(_get(obj, "metadata", "creationTimestamp"))
    return [_name(obj), created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"]


def _resource_quota_cells(obj: Obj, now: datetime) -> list[Any]:
    hard, used = _map(_get(obj, "status", "hard")), _map(_get(obj, "status", "used"))
    requests, limits = [], []
    for name in sorted(hard):
        pieces = name.split(".")
        target = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        target.append(f"{name}: {_quantity_text(used.get(name))}/{_quantity_text(hard.get(name))}")
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)]


def _quantity_text(value: Any) -> str:
    """A stored quantity as Quantity.String() prints it (a missing one is the zero quantity)."""
    try:
        return str(Quantity.parse(value)) if value is not None else "0"
    except (QuantityError, TypeError):
        return str(value)


RESOURCE_QUOTA_COLUMNS = (
    NAME_COLUMN,
    _col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    _col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the "
        "node.",
    ),
    AGE_COLUMN,
)


def _webhook_configuration_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), len(_list(obj.get("webhooks"))), _age(obj, now)]


WEBHOOK_CONFIGURATION_COLUMNS = (
    NAME_COLUMN,
    _col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"),
    AGE_COLUMN,
)

# ---------------------------------------------------------------------------------------------
# HorizontalPodAutoscaler (printHorizontalPodAutoscaler) and APIService (kube-aggregator's table)
# ---------------------------------------------------------------------------------------------


def _hpa_quantity(value: Any) -> str:
    return str(value) if value is not None else UNKNOWN


def _hpa_metric(spec: Mapping[str, Any], status: Any) -> str:
    kind = spec.get("type")
    if kind == "External" or kind == "Object":
        key = kind.lower()
        target = _map(_get(spec, key, "target"))
        current = _map(_get(status, key, "current")) if _get(status, key) is not None else None
        if target.get("averageValue") is not None:
            now = _hpa_quantity(current.get("averageValue")) if current is not None else UNKNOWN
            return f"{now}/{target['averageValue']} (avg)"
        now = _hpa_quantity(current.get("value")) if current is not None else UNKNOWN
        return f"{now}/{_hpa_quantity(target.get('value'))}"
    if kind == "Pods":
        target = _map(_get(spec, "pods", "target"))
        current = _get(status, "pods", "current", "averageValue") if _get(status, "pods") is not None else None
        return f"{_hpa_quantity(current)}/{_hpa_quantity(target.get('averageValue'))}"
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        name = _str(_get(spec, key, "name"))
        target = _map(_get(spec, key, "target"))
        have = _get(status, key) is not None
        if target.get("averageValue") is not None:
            now = _hpa_quantity(_get(status, key, "current", "averageValue")) if have else UNKNOWN
            return f"{name}: {now}/{target['averageValue']}"
        util = _get(status, key, "current", "averageUtilization") if have else None
        now = f"{util}%" if isinstance(util, int) else UNKNOWN
        want = target.get("averageUtilization")
        return f"{name}: {now}/{want}%" if isinstance(want, int) else f"{name}: {now}/<auto>"
    return "<unknown type>"


def format_hpa_metrics(specs: Any, statuses: Any) -> str:
    """The TARGETS cell: each metric as `current/target`, at most two then `+ N more...`."""
    specs, statuses = _list(specs), _list(statuses)
    if not specs:
        return NONE
    shown = [_hpa_metric(_map(spec), statuses[i] if i < len(statuses) else None) for i, spec in enumerate(specs)]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _hpa_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    ref = _map(spec.get("scaleTargetRef"))
    low = spec.get("minReplicas")
    return [
        _name(obj),
        f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}",
        format_hpa_metrics(spec.get("metrics"), status.get("currentMetrics")),
        str(low) if isinstance(low, int) else UNSET,
        _int(spec.get("maxReplicas")),
        _int(status.get("currentReplicas")),
        _age(obj, now),
    ]


HPA_COLUMNS = (
    NAME_COLUMN,
    _col(
        "Reference",
        "string",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be "
        "collected, as well as to actually change the replica count.",
    ),
    _col(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count (the maximum "
        "replica count across all metrics will be used).  The desired replica count is calculated multiplying the "
        "ratio between the target value and the current value by the current number of pods.  Ergo, metrics used "
        "must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for "
        "more information about how each type of metric must respond.",
    ),
    _col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It "
        "defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and "
        "at least one Object or External metric is configured.  Scaling is active as long as at least one metric "
        "value is available.",
    ),
    _col(
        "MaxPods",
        "integer",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot "
        "be less that minReplicas.",
    ),
    _col(
        "Replicas",
        "integer",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the "
        "autoscaler.",
    ),
    AGE_COLUMN,
)


def _api_service_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = _map(obj.get("spec"))
    service = spec.get("service")
    where = "Local"
    if isinstance(service, Mapping):
        where = f"{_str(service.get('namespace'))}/{_str(service.get('name'))}"
    available = "Unknown"
    for cond in _list(_get(obj, "status", "conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == "Available":
            state, reason = _str(cond.get("status")), _str(cond.get("reason"))
            available = f"{state} ({reason})" if state != "True" and reason else state
            break
    return [_name(obj), where, available, _age(obj, now)]


API_SERVICE_COLUMNS = (
    NAME_COLUMN,
    _col("Service", "string", "The reference to the service that hosts this API endpoint."),
    _col("Available", "string", "Whether this service is available."),
    AGE_COLUMN,
)

# ---------------------------------------------------------------------------------------------
# The registry, keyed by kind.
# ---------------------------------------------------------------------------------------------

PRINTERS: dict[str, Printer] = {
    "Pod": Printer(POD_COLUMNS, _pod_cells, _pod_conditions),
    "Namespace": Printer(NAMESPACE_COLUMNS, _namespace_cells),
    "Node": Printer(NODE_COLUMNS, _node_cells),
    "Service": Printer(SERVICE_COLUMNS, _service_cells),
    "Endpoints": Printer(ENDPOINTS_COLUMNS, _endpoints_cells),
    "ConfigMap": Printer(CONFIG_MAP_COLUMNS, _config_map_cells),
    "Secret": Printer(SECRET_COLUMNS, _secret_cells),
    "Event": Printer(EVENT_COLUMNS, _event_cells),
    "ServiceAccount": Printer(SERVICE_ACCOUNT_COLUMNS, _service_account_cells),
    "ReplicationController": Printer(RC_COLUMNS, _rc_cells),
    "Deployment": Printer(DEPLOYMENT_COLUMNS, _deployment_cells),
    "ReplicaSet": Printer(REPLICA_SET_COLUMNS, _replica_set_cells),
    "DaemonSet": Printer(DAEMON_SET_COLUMNS, _daemon_set_cells),
    "StatefulSet": Printer(STATEFUL_SET_COLUMNS, _stateful_set_cells),
    "ControllerRevision": Printer(CONTROLLER_REVISION_COLUMNS, _controller_revision_cells),
    "PersistentVolumeClaim": Printer(PVC_COLUMNS, _pvc_cells),
    "Job": Printer(JOB_COLUMNS, _job_cells),
    "CronJob": Printer(CRON_JOB_COLUMNS, _cron_job_cells),
    "Lease": Printer(LEASE_COLUMNS, _lease_cells),
    "PodDisruptionBudget": Printer(PDB_COLUMNS, _pdb_cells),
    "PriorityClass": Printer(PRIORITY_CLASS_COLUMNS, _priority_class_cells),
    "EndpointSlice": Printer(ENDPOINT_SLICE_COLUMNS, _endpoint_slice_cells),
    "Ingress": Printer(INGRESS_COLUMNS, _ingress_cells),
    "IngressClass": Printer(INGRESS_CLASS_COLUMNS, _ingress_class_cells),
    "ServiceCIDR": Printer(SERVICE_CIDR_COLUMNS, _service_cidr_cells),
    "IPAddress": Printer(IP_ADDRESS_COLUMNS, _ip_address_cells),
    "HorizontalPodAutoscaler": Printer(HPA_COLUMNS, _hpa_cells),
    "APIService": Printer(API_SERVICE_COLUMNS, _api_service_cells),
    "Role": Printer(ROLE_COLUMNS, _role_cells),
    "ClusterRole": Printer(ROLE_COLUMNS, _role_cells),
    "RoleBinding": Printer(ROLE_BINDING_COLUMNS, _role_binding_cells),
    "ClusterRoleBinding": Printer(ROLE_BINDING_COLUMNS, _role_binding_cells),
    "LimitRange": Printer((NAME_COLUMN, CREATED_AT_COLUMN), _created_at_cells),
    "ResourceQuota": Printer(RESOURCE_QUOTA_COLUMNS, _resource_quota_cells),
    "MutatingWebhookConfiguration": Printer(WEBHOOK_CONFIGURATION_COLUMNS, _webhook_configuration_cells),
    "ValidatingWebhookConfiguration": Printer(WEBHOOK_CONFIGURATION_COLUMNS, _webhook_configuration_cells),
    "CustomResourceDefinition": Printer((NAME_COLUMN, CREATED_AT_COLUMN), _created_at_cells),
}


def printer_for(kind: str) -> Printer:
    """The printer registered for `kind`, or the default Name/Age printer."""
    return PRINTERS.get(kind, DEFAULT_PRINTER)
