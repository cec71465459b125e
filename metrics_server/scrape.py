"""Reading a kubelet's `/metrics/resource`: the Prometheus text format, and the samples it carries.

Only what metrics-server uses: the node's and each container's cumulative CPU seconds and memory
working set, with their timestamps (the kubelet stamps each sample with when it was collected)
and each container's start time (a new start time is a restarted container, whose counter began
again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["ContainerKey", "MetricsBatch", "ParseError", "Point", "parse_exposition", "parse_resource_metrics"]


class ParseError(ValueError):
    """A line of the exposition that is not a sample."""


@dataclass(frozen=True)
class Point:
    """CPU and memory of a node or container at one time."""

    timestamp: float
    """Seconds since the epoch."""
    cpu_seconds: float
    """Cumulative CPU time, in core-seconds."""
    memory_bytes: int
    """Working set."""
    start_time: float = 0.0


ContainerKey = tuple[str, str, str]  # (namespace, pod, container)


@dataclass
class MetricsBatch:
    """One scrape of one node."""

    node: Point | None = None
    containers: dict[ContainerKey, Point] = field(default_factory=dict)


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(text):
        while i < len(text) and text[i] in " ,":
            i += 1
        if i >= len(text):
            break
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            raise ParseError(f"bad labels: {text!r}")
        name = text[i:eq].strip()
        j, value = eq + 2, []
        while j < len(text) and text[j] != '"':
            if text[j] == "\\" and j + 1 < len(text):
                value.append({"n": "\n", "\\": "\\", '"': '"'}.get(text[j + 1], text[j + 1]))
                j += 2
                continue
            value.append(text[j])
            j += 1
        if j >= len(text):
            raise ParseError(f"unterminated label value: {text!r}")
        out[name] = "".join(value)
        i = j + 1
    return out


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float, float | None]]:
    """Samples of a Prometheus text exposition: (name, labels, value, timestamp in seconds or None)."""
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        if brace >= 0:
            end = line.rfind("}")
            if end < brace:
                raise ParseError(f"bad sample: {line!r}")
            name, labels, rest = line[:brace], _labels(line[brace + 1 : end]), line[end + 1 :].split()
        else:
            name, *rest = line.split()
            labels = {}
        if not rest:
            raise ParseError(f"sample without a value: {line!r}")
        try:
            value = float(rest[0])
            ts = int(rest[1]) / 1000 if len(rest) > 1 else None
        except ValueError as e:
            raise ParseError(f"bad sample: {line!r}") from e
        samples.append((name, labels, value, ts))
    return samples


def parse_resource_metrics(text: str, now: float) -> MetricsBatch:
    """The node and container points of a `/metrics/resource` answer (`now` stamps unstamped samples)."""
    node_cpu: tuple[float, float] | None = None
    node_mem: tuple[float, float] | None = None
    cpu: dict[ContainerKey, tuple[float, float]] = {}
    mem: dict[ContainerKey, tuple[float, float]] = {}
    starts: dict[ContainerKey, float] = {}
    for name, labels, value, ts in parse_exposition(text):
        if math.isnan(value) or value < 0:
            continue
        t = ts if ts is not None else now
        if name == "node_cpu_usage_seconds_total":
            node_cpu = (t, value)
        elif name == "node_memory_working_set_bytes":
            node_mem = (t, value)
        elif name.startswith("container_"):
            key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
            if name == "container_cpu_usage_seconds_total":
                cpu[key] = (t, value)
            elif name == "container_memory_working_set_bytes":
                mem[key] = (t, value)
            elif name == "container_start_time_seconds":
                starts[key] = value
    batch = MetricsBatch()
    if node_cpu is not None and node_mem is not None:
        batch.node = Point(node_cpu[0], node_cpu[1], int(node_mem[1]))
    for key, (t, seconds) in cpu.items():
        if key in mem:
            batch.containers[key] = Point(t, seconds, int(mem[key][1]), starts.get(key, 0.0))
    return batch
