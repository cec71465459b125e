"""Resource usage as the kubelet reports it: one snapshot model, and the two ways it is served.

A collector (kubelet/procstats.py for real nodes, kubelet/simulated_stats.py for simulated ones)
produces `Snapshot`s; this module turns the latest one into the kubelet's Summary API JSON
(`GET /stats/summary`, the shape of k8s.io/kubelet/pkg/apis/stats/v1alpha1) and into the resource
metrics Prometheus text (`GET /metrics/resource`, the names and labels of
pkg/kubelet/metrics/collectors/resource_metrics.go, each sample with its collection timestamp,
which metrics-server uses to compute rates). Serving never reads /proc: requests render what the
collector last measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "ContainerUsage",
    "CpuUsage",
    "FsUsage",
    "MemoryUsage",
    "NetworkUsage",
    "NodeUsage",
    "PodUsage",
    "Snapshot",
    "resource_metrics_text",
    "stats_routes",
    "sum_cpu",
    "sum_memory",
    "summary_json",
]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def rfc3339(t: float) -> str:
    """metav1.Time text of an epoch time (seconds precision, UTC)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CpuUsage:
    """CPU of a container, pod or node at one sample."""

    time: float
    usage_core_nanoseconds: int
    """Cumulative CPU time since the container (or node) started, in core-nanoseconds."""
    usage_nano_cores: int | None = None
    """Average rate over the last sampling interval, in billionths of a core (None after the first sample)."""


@dataclass(frozen=True)
class MemoryUsage:
    """Memory of a container, pod or node at one sample (bytes)."""

    time: float
    usage: int
    working_set: int
    rss: int
    page_faults: int = 0
    major_page_faults: int = 0
    swap: int = 0
    available: int | None = None


@dataclass(frozen=True)
class FsUsage:
    """A filesystem's size and what is used of it (bytes and inodes)."""

    time: float
    capacity: int
    available: int
    used: int
    inodes: int | None = None
    inodes_free: int | None = None
    inodes_used: int | None = None


@dataclass(frozen=True)
class NetworkUsage:
    """Bytes and errors through the node's interfaces (all pods share the host's network namespace)."""

    time: float
    interfaces: tuple[tuple[str, int, int, int, int], ...]
    """(name, rxBytes, rxErrors, txBytes, txErrors) per interface; the first is the default one."""


@dataclass(frozen=True)
class ContainerUsage:
    """One running container."""

    name: str
    start_time: float
    cpu: CpuUsage
    memory: MemoryUsage
    logs: FsUsage | None = None


@dataclass(frozen=True)
class PodUsage:
    """One pod: its running containers and their sums."""

    namespace: str
    name: str
    uid: str
    start_time: float
    containers: tuple[ContainerUsage, ...]
    cpu: CpuUsage
    memory: MemoryUsage
    process_count: int = 0
    ephemeral_storage: FsUsage | None = None


@dataclass(frozen=True)
class NodeUsage:
    """The node's totals."""

    name: str
    start_time: float
    cpu: CpuUsage
    memory: MemoryUsage
    fs: FsUsage | None = None
    network: NetworkUsage | None = None
    max_pid: int | None = None
    process_count: int | None = None
    system_containers: tuple[ContainerUsage, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything one collection measured."""

    node: NodeUsage
    pods: tuple[PodUsage, ...] = field(default_factory=tuple)


def sum_cpu(time: float, parts: Iterable[CpuUsage]) -> CpuUsage:
    """The CPU of a group (a pod of containers): cumulative sums; a rate only when every part has one."""
    parts = list(parts)
    rates = [p.usage_nano_cores for p in parts]
    rate = sum(r for r in rates if r is not None) if parts and all(r is not None for r in rates) else None
    return CpuUsage(time, sum(p.usage_core_nanoseconds for p in parts), rate)


def sum_memory(time: float, parts: Iterable[MemoryUsage]) -> MemoryUsage:
    """The memory of a group: each figure summed."""
    parts = list(parts)
    return MemoryUsage(
        time,
        usage=sum(p.usage for p in parts),
        working_set=sum(p.working_set for p in parts),
        rss=sum(p.rss for p in parts),
        page_faults=sum(p.page_faults for p in parts),
        major_page_faults=sum(p.major_page_faults for p in parts),
        swap=sum(p.swap for p in parts),
    )


# --- Summary API JSON ----------------------------------------------------------------------------


def _cpu(c: CpuUsage) -> dict[str, Any]:
    out: dict[str, Any] = {"time": rfc3339(c.time)}
    if c.usage_nano_cores is not None:
        out["usageNanoCores"] = c.usage_nano_cores
    out["usageCoreNanoSeconds"] = c.usage_core_nanoseconds
    return out


def _memory(m: MemoryUsage) -> dict[str, Any]:
    out: dict[str, Any] = {"time": rfc3339(m.time)}
    if m.available is not None:
        out["availableBytes"] = m.available
    out |= {
        "usageBytes": m.usage,
        "workingSetBytes": m.working_set,
        "rssBytes": m.rss,
        "pageFaults": m.page_faults,
        "majorPageFaults": m.major_page_faults,
    }
    return out


def _swap(m: MemoryUsage) -> dict[str, Any]:
    return {"time": rfc3339(m.time), "swapUsageBytes": m.swap}


def _fs(f: FsUsage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "time": rfc3339(f.time),
        "availableBytes": f.available,
        "capacityBytes": f.capacity,
        "usedBytes": f.used,
    }
    for key, value in (("inodesFree", f.inodes_free), ("inodes", f.inodes), ("inodesUsed", f.inodes_used)):
        if value is not None:
            out[key] = value
    return out


def _network(n: NetworkUsage) -> dict[str, Any]:
    ifaces = [
        {"name": name, "rxBytes": rx, "rxErrors": rxe, "txBytes": tx, "txErrors": txe}
        for name, rx, rxe, tx, txe in n.interfaces
    ]
    out: dict[str, Any] = {"time": rfc3339(n.time)}
    if ifaces:
        out |= ifaces[0]
    out["interfaces"] = ifaces
    return out


def _container(c: ContainerUsage, only_cpu_and_memory: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name,
        "startTime": rfc3339(c.start_time),
        "cpu": _cpu(c.cpu),
        "memory": _memory(c.memory),
    }
    if not only_cpu_and_memory:
        if c.logs is not None:
            out["logs"] = _fs(c.logs)
        out["swap"] = _swap(c.memory)
    return out


def summary_json(snap: Snapshot, only_cpu_and_memory: bool = False) -> dict[str, Any]:
    """The Summary API document (`/stats/summary`) of a snapshot."""
    n = snap.node
    node: dict[str, Any] = {"nodeName": n.name}
    node["systemContainers"] = [_container(c, only_cpu_and_memory) for c in n.system_containers]
    node |= {"startTime": rfc3339(n.start_time), "cpu": _cpu(n.cpu), "memory": _memory(n.memory)}
    if not only_cpu_and_memory:
        if n.network is not None:
            node["network"] = _network(n.network)
        if n.fs is not None:
            node["fs"] = _fs(n.fs)
            node["runtime"] = {"imageFs": _fs(n.fs), "containerFs": _fs(n.fs)}
        if n.max_pid is not None and n.process_count is not None:
            node["rlimit"] = {"time": rfc3339(n.cpu.time), "maxpid": n.max_pid, "curproc": n.process_count}
        node["swap"] = _swap(n.memory)
    pods = []
    for p in snap.pods:
        pod: dict[str, Any] = {
            "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
            "startTime": rfc3339(p.start_time),
            "containers": [_container(c, only_cpu_and_memory) for c in p.containers],
            "cpu": _cpu(p.cpu),
            "memory": _memory(p.memory),
        }
        if not only_cpu_and_memory:
            if p.ephemeral_storage is not None:
                pod["ephemeral-storage"] = _fs(p.ephemeral_storage)
            pod["process_stats"] = {"process_count": p.process_count}
            pod["swap"] = _swap(p.memory)
        pods.append(pod)
    return {"node": node, "pods": pods}


# --- resource metrics (Prometheus text) ------------------------------------------------------------

_METRICS = (
    ("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds"),
    ("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes"),
    ("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds"),
    ("container_swap_usage_bytes", "gauge", "Current amount of the container swap usage in bytes"),
    ("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds"),
    ("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes"),
    ("node_swap_usage_bytes", "gauge", "Current swap usage of the node in bytes"),
    ("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds"),
    ("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes"),
    ("pod_swap_usage_bytes", "gauge", "Current amount of the pod swap usage in bytes"),
    ("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
)
_STABILITY = {
    "container_swap_usage_bytes": "BETA",
    "node_swap_usage_bytes": "BETA",
    "pod_swap_usage_bytes": "BETA",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _ms(t: float) -> int:
    return int(t * 1000)


def resource_metrics_text(snap: Snapshot | None) -> str:
    """The `/metrics/resource` exposition of a snapshot (None: no figures yet, resource_scrape_error 1)."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _METRICS}
    if snap is not None:
        n = snap.node
        samples["node_cpu_usage_seconds_total"].append(f" {n.cpu.usage_core_nanoseconds / 1e9!r} {_ms(n.cpu.time)}")
        samples["node_memory_working_set_bytes"].append(f" {float(n.memory.working_set)!r} {_ms(n.memory.time)}")
        samples["node_swap_usage_bytes"].append(f" {float(n.memory.swap)!r} {_ms(n.memory.time)}")
        for p in snap.pods:
            pl = _labels(namespace=p.namespace, pod=p.name)
            for c in p.containers:
                cl = _labels(container=c.name, namespace=p.namespace, pod=p.name)
                cpu, mem = c.cpu, c.memory
                samples["container_cpu_usage_seconds_total"].append(
                    f"{cl} {cpu.usage_core_nanoseconds / 1e9!r} {_ms(cpu.time)}"
                )
                samples["container_memory_working_set_bytes"].append(f"{cl} {float(mem.working_set)!r} {_ms(mem.time)}")
                samples["container_start_time_seconds"].append(f"{cl} {float(c.start_time)!r} {_ms(c.start_time)}")
                samples["container_swap_usage_bytes"].append(f"{cl} {float(mem.swap)!r} {_ms(mem.time)}")
            samples["pod_cpu_usage_seconds_total"].append(
                f"{pl} {p.cpu.usage_core_nanoseconds / 1e9!r} {_ms(p.cpu.time)}"
            )
            samples["pod_memory_working_set_bytes"].append(f"{pl} {float(p.memory.working_set)!r} {_ms(p.memory.time)}")
            samples["pod_swap_usage_bytes"].append(f"{pl} {float(p.memory.swap)!r} {_ms(p.memory.time)}")
    samples["resource_scrape_error"].append(" 0" if snap is not None else " 1")
    lines: list[str] = []
    for name, kind, help_text in _METRICS:
        lines.append(f"# HELP {name} [{_STABILITY.get(name, 'STABLE')}] {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{s}" for s in samples[name])
    return "\n".join(lines) + "\n"


# --- HTTP ------------------------------------------------------------------------------------------


def stats_routes(latest: Callable[[str], Snapshot | None]) -> list[Route]:
    """`/stats/summary` and `/metrics/resource`, rendering `latest(host)` — the snapshot of the node
    whose address the request came in on (one kubelet process may serve several simulated nodes)."""

    def host_of(request: Request) -> str:
        server = request.scope.get("server")
        return str(server[0]) if server else ""

    async def summary(request: Request) -> Response:
        snap = latest(host_of(request))
        if snap is None:
            return PlainTextResponse("Internal Error: failed to get node stats: not collected yet\n", 500)
        only = request.query_params.get("only_cpu_and_memory", "") in ("true", "1", "True")
        return JSONResponse(summary_json(snap, only))

    async def resource(request: Request) -> Response:
        return Response(resource_metrics_text(latest(host_of(request))), media_type=PROMETHEUS_TEXT)

    return [Route("/stats/summary", summary), Route("/stats/summary/", summary), Route("/metrics/resource", resource)]
