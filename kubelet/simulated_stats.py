"""Resource usage of simulated nodes: plausible figures derived from the requests of their pods,
served like a real kubelet's at each node's InternalIP and kubelet port.

Nothing runs, so nothing is measured: each container of a Running pod uses a share of its CPU
request that drifts slowly between 10 % and 60 % (a sine with a per-container phase, so a chart
moves and pods differ; 5m without a request), and 60 % of its memory request (16Mi without one),
with CPU time integrated from those rates so the counters behave like real ones. The node adds
the kubelet's own 50m and 64Mi. One server holds a socket per node address; a request's local
address picks the node (and, behind the kubelet's auth filter, the node a request is authorized for).

The figures are computed when asked for, at most once per housekeeping interval, as kubemark's hollow
kubelet's fake cAdvisor answers on request: one pass over 5,000 nodes and 30,000 pods costs about
2 s of CPU, which a timer every 10 s would spend (blocking the process's event loop, and so its
lease renewals and pod status writes) whether or not anyone scrapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from apimachinery.httpserver import bind_socket
from apimachinery.quantity import QuantityError, parse_quantity
from client.component import _QuietServer
from kubelet.auth import KubeletAuth, ServingTLS, serving_options
from kubelet.stats import (
    ContainerUsage,
    CpuUsage,
    MemoryUsage,
    NodeUsage,
    PodUsage,
    Snapshot,
    stats_routes,
)

__all__ = ["SimulatedStats", "StatsServer", "container_figures"]

log = logging.getLogger("kubelet.simulated")

_MI = 2**20
DEFAULT_CPU_CORES = 0.005
DEFAULT_MEMORY = 16 * _MI
KUBELET_CPU_CORES = 0.05
KUBELET_MEMORY = 64 * _MI
PERIOD = 300.0  # seconds of one CPU swing


def _quantity(requests: Mapping[str, Any], name: str) -> float | None:
    raw = requests.get(name)
    if raw is None:
        return None
    try:
        return float(parse_quantity(raw))
    except (QuantityError, ValueError):
        return None


def _phase(key: str) -> float:
    return int.from_bytes(hashlib.blake2s(key.encode(), digest_size=4).digest(), "big") / 2**32 * 2 * math.pi


def container_figures(container: Mapping[str, Any], key: str, now: float) -> tuple[float, int]:
    """(CPU cores, memory working set bytes) a simulated container uses at `now`."""
    requests = (container.get("resources") or {}).get("requests") or {}
    cpu = _quantity(requests, "cpu")
    memory = _quantity(requests, "memory")
    share = 0.35 + 0.25 * math.sin(2 * math.pi * now / PERIOD + _phase(key))
    cores = cpu * share if cpu else DEFAULT_CPU_CORES
    return cores, int(memory * 0.6) if memory else DEFAULT_MEMORY


@dataclass
class _Counter:
    time: float
    usage_ns: float = 0.0


def _memory(now: float, ws: int) -> MemoryUsage:
    return MemoryUsage(now, usage=ws, working_set=ws, rss=int(ws * 0.8))


@dataclass
class SimulatedStats:
    """Snapshots of simulated nodes, from `pods()` (the pods the simulated nodes run)."""

    nodes: Mapping[str, str]
    """node name → its InternalIP."""
    pods: Callable[[], Iterable[Mapping[str, Any]]]
    memory_capacity: int | None = None
    interval: float = 10.0
    clock: Callable[[], float] = time.time
    start_time: float = field(default_factory=time.time)
    _counters: dict[str, _Counter] = field(default_factory=dict)
    _by_address: dict[str, Snapshot] = field(default_factory=dict)
    _collected: float | None = None

    def latest(self, host: str) -> Snapshot | None:
        """The snapshot of the node at address `host`, recomputed first if older than `interval`."""
        if self.interval > 0 and (self._collected is None or self.clock() - self._collected > self.interval):
            try:
                self.collect()
            except Exception:
                log.exception("simulated stats failed")
        return self._by_address.get(host)

    def _cpu(self, key: str, cores: float, now: float, start: float) -> CpuUsage:
        c = self._counters.get(key)
        if c is None:
            # as if it had run at this rate since it started
            c = self._counters[key] = _Counter(now, max(now - start, 0.0) * cores * 1e9)
        else:
            c.usage_ns += max(now - c.time, 0.0) * cores * 1e9
            c.time = now
        return CpuUsage(now, int(c.usage_ns), int(cores * 1e9))

    def collect(self) -> dict[str, Snapshot]:
        """One snapshot per node."""
        now = self.clock()
        per_node: dict[str, list[PodUsage]] = {name: [] for name in self.nodes}
        seen: set[str] = set()
        for pod in self.pods():
            spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
            node = spec.get("nodeName")
            if node not in per_node or meta.get("deletionTimestamp"):
                continue
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            uid = str(meta.get("uid", ""))
            start = _start_time(pod, now)
            containers = []
            for c in spec.get("containers") or []:
                key = f"{uid}/{c.get('name', '')}"
                seen.add(key)
                cores, ws = container_figures(c, key, now)
                containers.append(
                    ContainerUsage(str(c.get("name", "")), start, self._cpu(key, cores, now, start), _memory(now, ws))
                )
            per_node[node].append(
                PodUsage(
                    namespace=str(meta.get("namespace", "")),
                    name=str(meta.get("name", "")),
                    uid=uid,
                    start_time=start,
                    containers=tuple(containers),
                    cpu=_sum_cpu(now, [c.cpu for c in containers]),
                    memory=_memory(now, sum(c.memory.working_set for c in containers)),
                    process_count=len(containers),
                )
            )
        for key in [k for k in self._counters if k not in seen and not k.startswith("/")]:
            del self._counters[key]
        out = {}
        for name, pods in per_node.items():
            kubelet = ContainerUsage(
                "kubelet",
                self.start_time,
                self._cpu(f"/{name}/kubelet", KUBELET_CPU_CORES, now, self.start_time),
                _memory(now, KUBELET_MEMORY),
            )
            cores = KUBELET_CPU_CORES + sum((p.cpu.usage_nano_cores or 0) for p in pods) / 1e9
            ws = KUBELET_MEMORY + sum(p.memory.working_set for p in pods)
            memory = _memory(now, ws)
            if self.memory_capacity is not None:
                memory = MemoryUsage(
                    now, memory.usage, memory.working_set, memory.rss, available=max(self.memory_capacity - ws, 0)
                )
            node = NodeUsage(
                name=name,
                start_time=self.start_time,
                cpu=self._cpu(f"/{name}", cores, now, self.start_time),
                memory=memory,
                system_containers=(kubelet,),
            )
            out[name] = Snapshot(node, tuple(sorted(pods, key=lambda p: (p.namespace, p.name))))
        self._by_address = {self.nodes[n]: snap for n, snap in out.items()}
        self._collected = now
        return out


def _sum_cpu(now: float, parts: list[CpuUsage]) -> CpuUsage:
    return CpuUsage(now, sum(p.usage_core_nanoseconds for p in parts), sum((p.usage_nano_cores or 0) for p in parts))


def _start_time(pod: Mapping[str, Any], now: float) -> float:
    raw = (pod.get("status") or {}).get("startTime") or (pod.get("metadata") or {}).get("creationTimestamp")
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now


class StatsServer:
    """One HTTP server answering /stats/summary, /metrics/resource and /healthz on each node address (HTTPS
    given `tls`, behind authentication and authorization given `auth`, as a kubelet's server)."""

    def __init__(
        self,
        addresses: Iterable[str],
        port: int,
        latest: Callable[[str], Snapshot | None],
        *,
        tls: ServingTLS | None = None,
        auth: KubeletAuth | None = None,
    ) -> None:
        self.addresses = list(addresses)
        self.port = port
        self.latest = latest
        self.tls = tls
        self.auth = auth
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    def _app(self) -> ASGIApp:
        async def healthz(_: Request) -> Response:
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/healthz", healthz), *stats_routes(self.latest)])
        return self.auth.filter(app) if self.auth is not None else app

    async def start(self) -> list[str]:
        """Bind what can be bound (an address taken is logged and skipped); the addresses served."""
        sockets, served, failed = [], [], []
        for address in self.addresses:
            try:
                sock = bind_socket(address, self.port)
            except OSError as e:
                failed.append(f"{address}:{self.port} ({e.strerror})")
                continue
            sockets.append(sock)
            served.append(address)
        if failed:
            log.warning("no stats server for %d simulated node(s): %s", len(failed), ", ".join(failed[:5]))
        if not sockets:
            return served
        config = uvicorn.Config(self._app(), **serving_options(self.tls))
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=sockets), name="simulated-stats-server")
        while not self._server.started and not self._task.done():  # noqa: ASYNC110 (uvicorn has no started event)
            await asyncio.sleep(0.02)
        return served

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, 5)
