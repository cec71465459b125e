"""The kubelet's resource stats: /proc parsing, the cumulative CPU counter and rates, the collector
over a /proc tree written by the test, and the Summary API and resource-metrics renderings."""

from __future__ import annotations

import json
from pathlib import Path

from kubelet.procstats import CpuCounter, ProcFS, StatsCollector, Target, parse_smaps_rollup, parse_stat, parse_statm
from kubelet.simulated_stats import SimulatedStats, container_figures
from kubelet.stats import resource_metrics_text, summary_json
from metrics_server.scrape import parse_resource_metrics

SMAPS = """55d4c8a4b000-7ffd6a7f4000 ---p 00000000 00:00 0                          [rollup]
Rss:               10240 kB
Pss:                6144 kB
Pss_Anon:           4096 kB
Shared_Clean:       4096 kB
Anonymous:          4096 kB
Swap:                512 kB
"""


def stat_line(pid: int, session: int, utime: int, stime: int, cutime: int = 0, minflt: int = 0, majflt: int = 0) -> str:
    return (
        f"{pid} (python3 (worker)) R 1 {session} {session} 0 -1 4194560 {minflt} 0 {majflt} 0 "
        f"{utime} {stime} {cutime} 0 20 0 1 0 12345 100000 2500 18446744073709551615\n"
    )


def test_parse_stat_reads_fields_after_the_command_name() -> None:
    st = parse_stat(42, stat_line(42, 40, utime=150, stime=50, cutime=20, minflt=7, majflt=2))
    assert st is not None
    assert (st.session, st.cpu_ticks, st.own_ticks, st.minflt, st.majflt, st.rss_pages) == (40, 220, 200, 7, 2, 2500)
    assert parse_stat(1, "garbage") is None


def test_parse_memory_files() -> None:
    mem = parse_smaps_rollup(SMAPS)
    assert mem is not None
    assert (mem.rss, mem.pss, mem.anon, mem.swap) == (10 << 20, 6 << 20, 4 << 20, 512 << 10)
    statm = parse_statm("5000 300 100 10 0 200 0", 4096)
    assert statm is not None and (statm.rss, statm.anon) == (300 * 4096, 200 * 4096)


def test_cpu_counter_never_goes_back() -> None:
    c = CpuCounter()
    assert c.update(100) == 100
    assert c.update(250) == 250
    assert c.update(50) == 250  # a process left without a parent in the session to reap it
    assert c.update(80) == 280  # the loss is carried, later growth adds to it


def write_proc(root: Path, stats: dict[int, str], smaps: dict[int, str]) -> None:
    for pid, line in stats.items():
        (root / str(pid)).mkdir(parents=True, exist_ok=True)
        (root / str(pid) / "stat").write_text(line)
    for pid, text in smaps.items():
        (root / str(pid) / "smaps_rollup").write_text(text)
    (root / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
    (root / "sys" / "kernel" / "pid_max").write_text("4194304\n")


def test_collector_sums_a_container_session_and_computes_rates(tmp_path: Path) -> None:
    proc_root = tmp_path / "proc"
    kubelet_pid = 900
    # container main process 100 with a child 101 in its session; 200 is someone else's
    write_proc(
        proc_root,
        {
            100: stat_line(100, 100, utime=100, stime=0),
            101: stat_line(101, 100, utime=50, stime=50),
            200: stat_line(200, 200, utime=999, stime=0),
            kubelet_pid: stat_line(kubelet_pid, 1, utime=10, stime=10, cutime=500),
        },
        {100: SMAPS, 101: SMAPS, kubelet_pid: SMAPS},
    )
    now = [1000.0]
    target = Target("uid-1", "ns", "web", "app", "cid-1", 100, 900.0, pod_dir=tmp_path / "pod")
    (tmp_path / "pod").mkdir()
    (tmp_path / "pod" / "data").write_bytes(b"x" * 8192)
    collector = StatsCollector(
        "node-a",
        lambda: [target],
        root_dir=tmp_path,
        memory_capacity=1 << 30,
        proc=ProcFS(proc_root),
        clock=lambda: now[0],
        self_pid=kubelet_pid,
        start_time=800.0,
    )
    ticks = collector.proc.ticks_per_second
    first = collector.collect([target])
    pod = first.pods[0]
    assert pod.process_count == 2
    assert pod.cpu.usage_core_nanoseconds == 200 * 1_000_000_000 // ticks
    assert pod.cpu.usage_nano_cores is None  # one sample: no rate yet
    assert pod.memory.working_set == 2 * (6 << 20) and pod.memory.rss == 2 * (4 << 20)
    assert pod.ephemeral_storage is not None and pod.ephemeral_storage.used >= 8192
    # one second later the session used another half second of CPU
    now[0] += 1.0
    write_proc(proc_root, {101: stat_line(101, 100, utime=50 + ticks // 2, stime=50)}, {})
    second = collector.collect([target])
    assert second.pods[0].cpu.usage_nano_cores == 500_000_000
    node = second.node
    kubelet = next(c for c in node.system_containers if c.name == "kubelet")
    assert kubelet.cpu.usage_core_nanoseconds == 20 * 1_000_000_000 // ticks  # its reaped children are not its own
    assert (
        node.cpu.usage_core_nanoseconds
        == kubelet.cpu.usage_core_nanoseconds + second.pods[0].cpu.usage_core_nanoseconds
    )
    assert node.memory.available == (1 << 30) - node.memory.working_set
    assert node.max_pid == 4194304


def snapshot_for_rendering(tmp_path: Path):  # type: ignore[no-untyped-def]
    proc_root = tmp_path / "proc"
    write_proc(proc_root, {7: stat_line(7, 7, 100, 0)}, {7: SMAPS})
    now = [2000.0]
    t = Target("u1", "default", "burn", "burn", "c1", 7, 1990.0)
    collector = StatsCollector(
        "node-a", lambda: [t], proc=ProcFS(proc_root), clock=lambda: now[0], self_pid=1, start_time=1000.0
    )
    collector.collect([t])
    now[0] += 2.0
    return collector.collect([t])


def test_summary_json_has_the_summary_api_shape(tmp_path: Path) -> None:
    doc = summary_json(snapshot_for_rendering(tmp_path))
    json.dumps(doc)
    node = doc["node"]
    assert node["nodeName"] == "node-a"
    assert {"cpu", "memory", "startTime", "systemContainers"} <= set(node)
    assert set(node["cpu"]) == {"time", "usageNanoCores", "usageCoreNanoSeconds"}
    assert {"workingSetBytes", "rssBytes", "usageBytes", "pageFaults", "majorPageFaults"} <= set(node["memory"])
    pod = doc["pods"][0]
    assert pod["podRef"] == {"name": "burn", "namespace": "default", "uid": "u1"}
    assert pod["containers"][0]["name"] == "burn"
    assert pod["containers"][0]["cpu"]["usageNanoCores"] == 0
    assert pod["process_stats"] == {"process_count": 1}
    only = summary_json(snapshot_for_rendering(tmp_path), only_cpu_and_memory=True)
    assert "process_stats" not in only["pods"][0] and "fs" not in only["node"]


def test_resource_metrics_round_trip_through_the_metrics_server_parser(tmp_path: Path) -> None:
    snap = snapshot_for_rendering(tmp_path)
    text = resource_metrics_text(snap)
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    assert "resource_scrape_error 0" in text
    batch = parse_resource_metrics(text, now=0.0)
    assert batch.node is not None
    assert batch.node.timestamp == 2002.0
    point = batch.containers[("default", "burn", "burn")]
    assert point.cpu_seconds == snap.pods[0].containers[0].cpu.usage_core_nanoseconds / 1e9
    assert point.memory_bytes == 6 << 20
    assert point.start_time == 1990.0
    assert "resource_scrape_error 1" in resource_metrics_text(None)


def test_simulated_figures_follow_requests() -> None:
    cores, memory = container_figures({"resources": {"requests": {"cpu": "500m", "memory": "100Mi"}}}, "k", 0.0)
    assert 0.05 <= cores <= 0.3
    assert memory == int(100 * 2**20 * 0.6)
    assert container_figures({}, "k", 0.0) == (0.005, 16 * 2**20)
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"nodeName": "sim-0", "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"},
    }
    now = [1_800_000_000.0]
    stats = SimulatedStats({"sim-0": "127.128.0.1"}, lambda: [pod], clock=lambda: now[0])
    first = stats.collect()["sim-0"]
    now[0] += 10
    second = stats.latest("127.128.0.1")
    assert second is first
    later = stats.collect()["sim-0"]
    c0, c1 = first.pods[0].containers[0].cpu, later.pods[0].containers[0].cpu
    assert c1.usage_core_nanoseconds > c0.usage_core_nanoseconds
    assert later.node.cpu.usage_nano_cores is not None and later.node.cpu.usage_nano_cores > 50_000_000


def test_simulated_stats_are_computed_when_asked_at_most_once_per_interval() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"nodeName": "sim-0", "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"},
    }
    passes = [0]

    def pods() -> list[dict[str, object]]:
        passes[0] += 1
        return [pod]

    now = [1_800_000_000.0]
    stats = SimulatedStats({"sim-0": "127.128.0.1"}, pods, clock=lambda: now[0], interval=10)
    assert passes[0] == 0  # nothing is computed until a scrape asks
    first = stats.latest("127.128.0.1")
    assert first is not None and first.pods[0].name == "p"
    now[0] += 5
    assert stats.latest("127.128.0.1") is first
    assert passes[0] == 1
    now[0] += 6
    later = stats.latest("127.128.0.1")
    assert passes[0] == 2 and later is not None
    assert (
        later.pods[0].containers[0].cpu.usage_core_nanoseconds > first.pods[0].containers[0].cpu.usage_core_nanoseconds
    )
    off = SimulatedStats({"sim-0": "127.128.0.1"}, pods, clock=lambda: now[0], interval=0)
    assert off.latest("127.128.0.1") is None and passes[0] == 2
