"""A real kubelet process for the kubelet integration tests, and small pollers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kubelet.journal import read_journal
from kubelet.process_runtime import PIDS_JOURNAL
from tinykube.procs import Process, free_port, wait_ready


@dataclass
class KubeletProc:
    """A running `python -m kubelet` and where it keeps its state."""

    proc: Process
    node: str
    root: Path
    cidr: str
    port: int
    health_port: int

    def container_records(self) -> dict[str, dict[str, Any]]:
        """Container id → the pid record the kubelet keeps of each running container (its pids journal)."""
        entries, _ = read_journal(self.root / "pids" / PIDS_JOURNAL)
        return {cid: json.loads(text) for cid, text in entries.items()}

    def container_pids(self) -> list[int]:
        """Pids of the container process groups the kubelet has recorded."""
        return [int(rec["pid"]) for rec in self.container_records().values()]

    def pid_of(self, container_id: str) -> int:
        """The pid of a container from its status containerID."""
        return int(self.container_records()[container_id.removeprefix("process://")]["pid"])


def alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_kubelet(apiserver: str, tmp: Path, *extra: str, like: KubeletProc | None = None) -> KubeletProc:
    """Start a kubelet with a unique node name, its own root dir, free ports and a random pod CIDR
    (or the node name, root dir and CIDR of `like`, to restart it)."""
    node = like.node if like else f"node-{uuid.uuid4().hex[:8]}"
    port, health = free_port(), free_port()
    cidr = like.cidr if like else f"127.{random.randint(2, 250)}.{random.randint(0, 255)}.0/24"
    root = tmp / node
    argv = [
        sys.executable,
        "-m",
        "kubelet",
        "--server",
        apiserver,
        "--node-name",
        node,
        "--root-dir",
        str(root),
        "--port",
        str(port),
        "--health-port",
        str(health),
        "--pod-cidr",
        cidr,
        "--log-level",
        "debug",
        *extra,
    ]
    proc = Process(f"kubelet-{node}", argv, tmp / f"{node}.log", env={"PYTHONUNBUFFERED": "1"})
    wait_ready(f"http://127.0.0.1:{health}/readyz", proc, timeout=30)
    return KubeletProc(proc, node, root, cidr, port, health)


def stop_kubelet(k: KubeletProc) -> None:
    """SIGTERM the kubelet and check it left no container process behind."""
    pids = k.container_pids()
    k.proc.stop(timeout=20)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.killpg(p, 9)
    assert not left, f"container processes left behind: {left}"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}: last value {last!r}")


async def get_pod(api: httpx.AsyncClient, ns: str, name: str) -> dict[str, Any] | None:
    """The pod, or None when it does not exist."""
    r = await api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()


async def create(api: httpx.AsyncClient, ns: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create a namespaced core/v1 object."""
    r = await api.post(f"/api/v1/namespaces/{ns}/{plural}", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """The status of one container (or {})."""
    for s in (pod.get("status") or {}).get("containerStatuses") or []:
        if s.get("name") == name:
            return s
    return {}


def condition(pod: dict[str, Any], type_: str) -> str:
    """The status of a pod condition ('' if absent)."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status", "")
    return ""
