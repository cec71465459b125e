"""The stats collector of a real node: CPU, memory and process counts of each container's process
session, read from /proc in the background every `--housekeeping-interval` (cAdvisor's
housekeeping).

The process runtime starts every container in a new session (its main process's pid is the
session id), so one pass over /proc/<pid>/stat finds every process of every container, however
it forked. Per container:

- CPU: utime+stime+cutime+cstime of its live processes (the children they reaped are in the
  parents' cutime/cstime). A process that exits without a parent in the session to reap it takes
  its time with it; the counter carries the loss forward, so it never goes back
  (`usageCoreNanoSeconds` is cumulative). The rate is the difference between two samples.
- memory: per process, /proc/<pid>/smaps_rollup: Pss summed is the working set (shared pages —
  the interpreter's libraries — counted once across the machine, as a cgroup charges a page to
  one group), Rss summed is usage, Anonymous summed is RSS (cgroup's "rss": anonymous memory),
  Swap is swap. statm stands in when smaps_rollup cannot be read.
- page faults: minflt+majflt and majflt (with the reaped children's).
- disk: the container's log files and the pod's directory (volumes, tmp), walked every sixth
  collection (the walk is the costly part; disk usage moves slowly).

The node's totals are what runs on it: its pods plus the kubelet process itself (the nodes of a
tinykube cluster share one machine, so the machine's totals would say nothing about one node).
The walk runs in a worker thread; requests render the last snapshot and never touch /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Gauge, Histogram

from kubelet.runtime import ContainerState, ContainerStatus, Sandbox
from kubelet.stats import (
    ContainerUsage,
    CpuUsage,
    FsUsage,
    MemoryUsage,
    NetworkUsage,
    NodeUsage,
    PodUsage,
    Snapshot,
    sum_cpu,
    sum_memory,
)

__all__ = [
    "CpuCounter",
    "ProcFS",
    "ProcMemory",
    "ProcStat",
    "StatsCollector",
    "Target",
    "parse_smaps_rollup",
    "parse_stat",
    "parse_statm",
    "runtime_targets",
]

log = logging.getLogger("kubelet.stats")

DU_MAX_ENTRIES = 20_000  # a pod directory with more entries is counted only that far (cheap, not exact)
FS_EVERY = 6  # disk usage (logs, pod directories) is walked every 6th collection, as cAdvisor's is less often

COLLECTION_SECONDS = Histogram(
    "kubelet_resource_stats_collection_duration_seconds",
    "Duration of one resource stats collection (the /proc walk of every container)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CONTAINERS_MEASURED = Gauge("kubelet_resource_stats_containers", "Containers measured by the last stats collection")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat the collector uses."""

    pid: int
    state: str
    ppid: int
    session: int
    minflt: int
    majflt: int
    cpu_ticks: int
    """utime + stime + cutime + cstime (clock ticks)."""
    own_ticks: int
    """utime + stime only (clock ticks)."""
    start_ticks: int
    rss_pages: int


def parse_stat(pid: int, text: str) -> ProcStat | None:
    """Parse one /proc/<pid>/stat line (None when it is not one)."""
    _, sep, rest = text.rpartition(")")
    if not sep:
        return None
    f = rest.split()
    try:
        utime, stime, cutime, cstime = int(f[11]), int(f[12]), int(f[13]), int(f[14])
        return ProcStat(
            pid=pid,
            state=f[0],
            ppid=int(f[1]),
            session=int(f[3]),
            minflt=int(f[7]) + int(f[8]),
            majflt=int(f[9]) + int(f[10]),
            cpu_ticks=utime + stime + cutime + cstime,
            own_ticks=utime + stime,
            start_ticks=int(f[19]),
            rss_pages=int(f[21]),
        )
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class ProcMemory:
    """One process's memory (bytes)."""

    rss: int
    """Resident memory (anonymous + file + shared)."""
    pss: int
    """Proportional set size: each shared page divided among the processes mapping it."""
    anon: int
    swap: int = 0


def parse_smaps_rollup(text: str) -> ProcMemory | None:
    """Rss, Pss, Anonymous and Swap of /proc/<pid>/smaps_rollup (kB in the file)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key in ("Rss", "Pss", "Anonymous", "Swap"):
            with contextlib.suppress(ValueError, IndexError):
                values[key] = int(rest.split()[0]) * 1024
    if "Rss" not in values:
        return None
    rss = values["Rss"]
    return ProcMemory(rss, values.get("Pss", rss), values.get("Anonymous", 0), values.get("Swap", 0))


def parse_statm(text: str, page_size: int) -> ProcMemory | None:
    """/proc/<pid>/statm (pages): resident, and resident less shared as the anonymous part."""
    try:
        _size, resident, shared = (int(x) for x in text.split()[:3])
    except ValueError:
        return None
    return ProcMemory(rss=resident * page_size, pss=resident * page_size, anon=max(resident - shared, 0) * page_size)


class ProcFS:
    """Reads of /proc (a different root for tests)."""

    def __init__(self, root: Path = Path("/proc")) -> None:
        self.root = root
        self._prefix = str(root).rstrip("/") + "/"
        self.ticks_per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _read(self, *parts: str | int) -> str | None:
        # os.open/os.read on a plain string path: this runs for every process each collection
        try:
            fd = os.open(self._prefix + "/".join(str(p) for p in parts), os.O_RDONLY)
        except OSError:
            return None
        try:
            data = os.read(fd, 65536)  # a /proc file is produced whole on the first read of a large buffer
            if len(data) == 65536:
                while chunk := os.read(fd, 65536):
                    data += chunk
            return data.decode("ascii", "replace")
        except OSError:
            return None
        finally:
            os.close(fd)

    def stat(self, pid: int) -> ProcStat | None:
        """One process's stat, or None when it is gone."""
        text = self._read(pid, "stat")
        return parse_stat(pid, text) if text else None

    def scan(self) -> list[ProcStat]:
        """Every process's stat (one pass over /proc)."""
        out: list[ProcStat] = []
        try:
            names = os.listdir(self.root)
        except OSError:
            return out
        for name in names:
            if name.isdigit() and (st := self.stat(int(name))) is not None:
                out.append(st)
        return out

    def memory(self, pid: int) -> ProcMemory | None:
        """One process's memory: smaps_rollup, else statm; None for a zombie or a vanished process."""
        text = self._read(pid, "smaps_rollup")
        if text:
            mem = parse_smaps_rollup(text)
            if mem is not None:
                return mem
        text = self._read(pid, "statm")
        return parse_statm(text, self.page_size) if text else None

    def pid_max(self) -> int | None:
        """/proc/sys/kernel/pid_max."""
        text = self._read("sys", "kernel", "pid_max")
        try:
            return int(text.strip()) if text else None
        except ValueError:
            return None

    def net_dev(self) -> list[tuple[str, int, int, int, int]]:
        """(name, rxBytes, rxErrors, txBytes, txErrors) of each interface but loopback, from /proc/net/dev."""
        text = self._read("net", "dev") or ""
        out = []
        for line in text.splitlines()[2:]:
            name, sep, rest = line.partition(":")
            f = rest.split()
            if not sep or len(f) < 11 or name.strip() == "lo":
                continue
            with contextlib.suppress(ValueError):
                out.append((name.strip(), int(f[0]), int(f[2]), int(f[8]), int(f[10])))
        return out


@dataclass
class CpuCounter:
    """A cumulative CPU counter that never goes back when a process leaves without being accounted."""

    usage_ns: int = 0
    carried_ns: int = 0

    def update(self, live_ns: int) -> int:
        """Fold in the live processes' total; returns the cumulative usage."""
        total = live_ns + self.carried_ns
        if total < self.usage_ns:
            self.carried_ns += self.usage_ns - total
            total = self.usage_ns
        self.usage_ns = total
        return total


@dataclass(frozen=True)
class Target:
    """A running container to measure."""

    pod_uid: str
    namespace: str
    pod_name: str
    container_name: str
    container_id: str
    pid: int
    started_at: float
    log_dir: Path | None = None
    pod_dir: Path | None = None


def runtime_targets(sandboxes: Iterable[Sandbox], containers: Callable[[str], list[ContainerStatus]]) -> list[Target]:
    """The running containers of a runtime (`sandboxes()` and `list_containers(uid)`)."""
    out = []
    for sb in sandboxes:
        for cs in containers(sb.uid):
            if cs.state is ContainerState.RUNNING and cs.pid > 0:
                out.append(
                    Target(
                        sb.uid,
                        sb.namespace,
                        sb.name,
                        cs.name,
                        cs.id,
                        cs.pid,
                        cs.started_at or cs.created_at,
                        cs.log_path.parent if cs.log_path else None,
                        sb.dir,
                    )
                )
    return out


@dataclass
class _Rate:
    time: float = 0.0
    usage_ns: int = 0


def _rate(prev: _Rate | None, now: float, usage_ns: int) -> int | None:
    if prev is None or now <= prev.time:
        return None
    return max(int((usage_ns - prev.usage_ns) / (now - prev.time)), 0)


def _du(path: Path | None, limit: int = DU_MAX_ENTRIES) -> tuple[int, int]:
    """(bytes, inodes) under `path`, not following symlinks nor crossing into other filesystems."""
    if path is None:
        return 0, 0
    total, inodes = 0, 0
    try:
        dev = path.stat().st_dev
    except OSError:
        return 0, 0
    stack = [str(path)]
    while stack and inodes < limit:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    inodes += 1
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.is_dir(follow_symlinks=False):
                        if st.st_dev == dev:
                            stack.append(e.path)
                    else:
                        total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
        except OSError:
            continue
    return total, inodes


@dataclass
class StatsCollector:
    """Samples the node's containers every `interval` seconds; `latest()` is the last snapshot."""

    node_name: str
    targets: Callable[[], list[Target]]
    interval: float = 10.0
    root_dir: Path | None = None
    memory_capacity: int | None = None
    proc: ProcFS = field(default_factory=ProcFS)
    clock: Callable[[], float] = time.time
    self_pid: int = field(default_factory=os.getpid)
    start_time: float = field(default_factory=time.time)
    _cpu: dict[str, CpuCounter] = field(default_factory=dict)
    _rates: dict[str, _Rate] = field(default_factory=dict)
    _du: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # path → (bytes, inodes, collection)
    _collections: int = 0
    _snapshot: Snapshot | None = None

    def latest(self, _host: str = "") -> Snapshot | None:
        """The last snapshot (None before the first collection)."""
        return self._snapshot

    async def run(self) -> None:
        """Collect every `interval` seconds until cancelled (interval <= 0: never)."""
        if self.interval <= 0:
            log.info("resource stats collection is off (--housekeeping-interval 0)")
            await asyncio.Event().wait()
        while True:
            started = time.monotonic()
            try:
                targets = self.targets()  # the runtime's state lives on the event loop
                self._snapshot = await asyncio.to_thread(self.collect, targets)
                COLLECTION_SECONDS.observe(time.monotonic() - started)
                CONTAINERS_MEASURED.set(len(targets))
            except Exception:
                log.exception("resource stats collection failed")
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.05))

    # --- one collection (worker thread) ------------------------------------------------------

    def _counter(self, key: str, live_ns: int, now: float) -> CpuUsage:
        counter = self._cpu.setdefault(key, CpuCounter())
        usage = counter.update(live_ns)
        rate = _rate(self._rates.get(key), now, usage)
        self._rates[key] = _Rate(now, usage)
        return CpuUsage(now, usage, rate)

    def _memory(self, procs: list[ProcStat], now: float) -> MemoryUsage:
        usage = ws = rss = swap = 0
        for p in procs:
            mem = None if p.state in ("Z", "X") else self.proc.memory(p.pid)
            if mem is None:
                continue
            usage += mem.rss
            ws += mem.pss
            rss += mem.anon
            swap += mem.swap
        return MemoryUsage(
            now,
            usage=usage,
            working_set=ws,
            rss=rss,
            page_faults=sum(p.minflt + p.majflt for p in procs),
            major_page_faults=sum(p.majflt for p in procs),
            swap=swap,
        )

    def _usage_of(self, path: Path) -> tuple[int, int]:
        """Disk usage under `path`, walked again only every FS_EVERY collections."""
        key = str(path)
        cached = self._du.get(key)
        if cached is not None and self._collections - cached[2] < FS_EVERY:
            return cached[0], cached[1]
        used, inodes = _du(path)
        self._du[key] = (used, inodes, self._collections)
        return used, inodes

    def _fs(self, now: float) -> FsUsage | None:
        if self.root_dir is None:
            return None
        try:
            st = os.statvfs(self.root_dir)
        except OSError:
            return None
        capacity, available = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        return FsUsage(
            now,
            capacity=capacity,
            available=available,
            used=capacity - st.f_bfree * st.f_frsize,
            inodes=st.f_files,
            inodes_free=st.f_ffree,
            inodes_used=st.f_files - st.f_ffree,
        )

    def collect(self, targets: list[Target]) -> Snapshot:
        """Measure every target and the kubelet once."""
        now = self.clock()
        self._collections += 1
        ns_per_tick = 1_000_000_000 // self.proc.ticks_per_second
        procs = self.proc.scan()
        by_session: dict[int, list[ProcStat]] = {}
        for p in procs:
            by_session.setdefault(p.session, []).append(p)
        fs = self._fs(now)
        pods: dict[str, list[tuple[Target, ContainerUsage, int]]] = {}
        live_keys = set()
        for t in targets:
            group = by_session.get(t.pid, [])
            live_keys.add(t.container_id)
            cpu = self._counter(t.container_id, sum(p.cpu_ticks for p in group) * ns_per_tick, now)
            logs = None
            if fs is not None and t.log_dir is not None:
                used, inodes = self._usage_of(t.log_dir)
                logs = FsUsage(now, fs.capacity, fs.available, used, fs.inodes, fs.inodes_free, inodes)
            usage = ContainerUsage(t.container_name, t.started_at, cpu, self._memory(group, now), logs)
            pods.setdefault(t.pod_uid, []).append((t, usage, len(group)))
        pod_usage = []
        for uid, members in pods.items():
            first = members[0][0]
            containers = tuple(sorted((c for _, c, _ in members), key=lambda c: c.name))
            ephemeral = None
            if fs is not None and first.pod_dir is not None:
                used, inodes = self._usage_of(first.pod_dir)
                ephemeral = FsUsage(now, fs.capacity, fs.available, used, fs.inodes, fs.inodes_free, inodes)
            pod_usage.append(
                PodUsage(
                    namespace=first.namespace,
                    name=first.pod_name,
                    uid=uid,
                    start_time=min(t.started_at for t, _, _ in members),
                    containers=containers,
                    cpu=sum_cpu(now, (c.cpu for c in containers)),
                    memory=sum_memory(now, (c.memory for c in containers)),
                    process_count=sum(n for _, _, n in members),
                    ephemeral_storage=ephemeral,
                )
            )
        pod_usage.sort(key=lambda p: (p.namespace, p.name))
        for key in [k for k in self._cpu if k not in live_keys and not k.startswith("/")]:
            del self._cpu[key]
            self._rates.pop(key, None)
        live_dirs = {str(d) for t in targets for d in (t.log_dir, t.pod_dir) if d is not None}
        for key in [k for k in self._du if k not in live_dirs]:
            del self._du[key]
        me = [p for p in procs if p.pid == self.self_pid]
        kubelet = ContainerUsage(
            "kubelet",
            self.start_time,
            self._counter("/kubelet", sum(p.own_ticks for p in me) * ns_per_tick, now),
            self._memory(me, now),
        )
        pods_total = ContainerUsage(
            "pods",
            self.start_time,
            self._counter("/pods", sum(p.cpu.usage_core_nanoseconds for p in pod_usage), now),
            sum_memory(now, (p.memory for p in pod_usage)),
        )
        node_memory = sum_memory(now, (kubelet.memory, pods_total.memory))
        if self.memory_capacity is not None:
            node_memory = MemoryUsage(
                now,
                usage=node_memory.usage,
                working_set=node_memory.working_set,
                rss=node_memory.rss,
                page_faults=node_memory.page_faults,
                major_page_faults=node_memory.major_page_faults,
                swap=node_memory.swap,
                available=max(self.memory_capacity - node_memory.working_set, 0),
            )
        interfaces = tuple(self.proc.net_dev())
        node = NodeUsage(
            name=self.node_name,
            start_time=self.start_time,
            cpu=self._counter("/node", kubelet.cpu.usage_core_nanoseconds + pods_total.cpu.usage_core_nanoseconds, now),
            memory=node_memory,
            fs=fs,
            network=NetworkUsage(now, interfaces) if interfaces else None,
            max_pid=self.proc.pid_max(),
            process_count=len(procs),
            system_containers=(kubelet, pods_total),
        )
        return Snapshot(node, tuple(pod_usage))
