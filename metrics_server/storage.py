"""The metric store: the last two points of each node and container, and the usage they make.

Usage is what metrics-server reports: CPU as the rate between the two latest distinct samples
(their timestamps give the window), memory as the latest working set. A counter that went back,
or a container with a new start time, begins again from one point (no rate until the next). A
node whose scrape failed keeps its points until they are older than `max_age` (then it, and its
pods, are reported as having no metrics). A container seen once that started less than
`fresh_start` seconds before its sample is measured from its start (no CPU before it), as
metrics-server does for new pods, so they have usage after one scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

from metrics_server.scrape import ContainerKey, MetricsBatch, Point

__all__ = ["MetricsStore", "Usage"]


@dataclass(frozen=True)
class Usage:
    """What the Metrics API serves for a node or a container."""

    timestamp: float
    window: float
    cpu_nanocores: int
    memory_bytes: int


def _usage(prev: Point | None, last: Point, fresh_start: float = 0.0) -> Usage | None:
    if prev is None and last.start_time and 0 < last.timestamp - last.start_time <= fresh_start:
        # a container that started since the last scrape: it used no CPU before its start
        prev = Point(last.start_time, 0.0, 0, last.start_time)
    if prev is None or last.timestamp <= prev.timestamp:
        return None
    window = last.timestamp - prev.timestamp
    rate = (last.cpu_seconds - prev.cpu_seconds) / window
    return Usage(last.timestamp, window, max(int(rate * 1e9), 0), last.memory_bytes)


def _advance(pair: tuple[Point | None, Point] | None, new: Point) -> tuple[Point | None, Point]:
    """The two latest points after `new` arrives (a repeated sample changes nothing)."""
    if pair is None:
        return (None, new)
    last = pair[1]
    if new.timestamp == last.timestamp:
        return pair
    if new.timestamp < last.timestamp:
        return pair  # out of order: keep what we have
    restarted = new.cpu_seconds < last.cpu_seconds or (new.start_time and new.start_time != last.start_time)
    return (None, new) if restarted else (last, new)


class MetricsStore:
    """Points by node and by (namespace, pod, container), fed one node's batch at a time."""

    def __init__(self, max_age: float = 60.0, fresh_start: float = 0.0) -> None:
        self.max_age = max_age
        self.fresh_start = fresh_start
        self._nodes: dict[str, tuple[Point | None, Point]] = {}
        self._containers: dict[str, dict[ContainerKey, tuple[Point | None, Point]]] = {}
        self._updated: dict[str, float] = {}

    def store(self, node: str, batch: MetricsBatch, now: float) -> None:
        """Take in one node's scrape; containers it no longer reports are forgotten."""
        if batch.node is not None:
            self._nodes[node] = _advance(self._nodes.get(node), batch.node)
        old = self._containers.get(node, {})
        self._containers[node] = {key: _advance(old.get(key), p) for key, p in batch.containers.items()}
        self._updated[node] = now

    def forget(self, keep: set[str]) -> None:
        """Drop the nodes not in `keep` (deleted)."""
        for name in [n for n in self._updated if n not in keep]:
            self._nodes.pop(name, None)
            self._containers.pop(name, None)
            self._updated.pop(name, None)

    def _fresh(self, node: str, now: float) -> bool:
        return now - self._updated.get(node, float("-inf")) <= self.max_age

    def node_usage(self, node: str, now: float) -> Usage | None:
        """A node's usage, or None when it has not been scraped twice lately."""
        pair = self._nodes.get(node)
        if pair is None or not self._fresh(node, now):
            return None
        return _usage(*pair)

    def pod_usage(self, namespace: str, pod: str, now: float) -> dict[str, Usage] | None:
        """Each container's usage of a pod (None unless every container the kubelet reports has one)."""
        for node, containers in self._containers.items():
            if not self._fresh(node, now):
                continue
            found = {key[2]: pair for key, pair in containers.items() if key[0] == namespace and key[1] == pod}
            if not found:
                continue
            out = {}
            for name, pair in found.items():
                usage = _usage(*pair, self.fresh_start)
                if usage is None:
                    return None
                out[name] = usage
            return out
        return None

    def pods(self, now: float) -> dict[tuple[str, str], dict[str, Usage]]:
        """Every pod with usage for all its containers, by (namespace, name)."""
        grouped: dict[tuple[str, str], dict[str, tuple[Point | None, Point]]] = {}
        for node, containers in self._containers.items():
            if not self._fresh(node, now):
                continue
            for (ns, pod, container), pair in containers.items():
                grouped.setdefault((ns, pod), {})[container] = pair
        out = {}
        for key, pairs in grouped.items():
            usages = {name: _usage(*pair, self.fresh_start) for name, pair in pairs.items()}
            if all(u is not None for u in usages.values()):
                out[key] = {name: u for name, u in usages.items() if u is not None}
        return out
