"""Container start-up in the process runtime: the fork server (zygote) beside one interpreter per container.

Run from the repo root (as root, or where unprivileged user namespaces work):

    .venv/bin/python bench/container_start.py              # 100 starts per path, one at a time
    .venv/bin/python bench/container_start.py -n 200 -c 4  # 200 per path, 4 started at once

A `ProcessRuntime` (no cluster, no apiserver) starts N containers (`true`, with one volume) through
each path, in alternating blocks of 10 (ABAB within the run): "old" (`unshare` + `python -I -S -c
PREAMBLE`, as when the zygote is not used) and "zygote". Sandboxes and containers are made before a
block and removed after it; what is measured is `start_container` until the container has exited:

* latency: `start_container`'s own time (until the container's root is built and the pid recorded),
  p50 / p99;
* CPU per start: this process (the kubelet's side: spawn, pipes, log pumps, reaping), from
  `getrusage(RUSAGE_SELF)`; the helpers and the child up to its exit (`unshare`, the preamble
  interpreter and `true` for the old path, from `getrusage(RUSAGE_CHILDREN)`; the zygote's own CPU
  and its reaped children's for the new one, from `/proc/<zygote>/stat` utime+stime+cutime+cstime,
  in clock ticks). `true` itself costs the same on both paths. The zygote's own start (once per
  kubelet) is printed apart.

Also printed: the kubelet's CPU per pod (this process, both paths) making the sandbox and creating the container
before a block (its directories, log file and records) and removing the sandbox after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubelet.process_runtime import ProcessRuntime
from kubelet.runtime import ContainerConfig, Mount, SandboxConfig
from kubelet.zygote import Zygote

BLOCK = 10
PREPARE_REMOVE = [0.0, 0.0]  # the kubelet's CPU in the measured blocks: sandbox + create_container; remove_pod_sandbox
TICK = os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _proc_cpu(pid: int | None, children: bool = True) -> float:
    """utime + stime (+ cutime + cstime) of `pid`, in seconds (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / TICK


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


async def _block(rt: ProcessRuntime, zygote: Zygote | None, tag: str, vol: Path, concurrency: int) -> tuple:
    rt.zygote = zygote
    cids = []
    p0 = _self_cpu()
    for i in range(BLOCK):
        uid = f"{tag}-{i}"
        await rt.run_pod_sandbox(SandboxConfig(uid, "bench", uid))
        cfg = ContainerConfig("c", "busybox", ["true"], {}, command=["true"], mounts=[Mount(vol, "/data")])
        cids.append((uid, await rt.create_container(uid, cfg)))
    prepare = _self_cpu() - p0
    lat: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(cid: str) -> None:
        async with sem:
            t = time.perf_counter()
            await rt.start_container(cid)
            lat.append(time.perf_counter() - t)
            await asyncio.wait_for(rt._containers[cid].exited.wait(), 30)

    zpid = zygote.server_pid if zygote is not None else None
    s0, c0, z0 = _self_cpu(), _children_cpu(), _proc_cpu(zpid)
    await asyncio.gather(*(one(cid) for _, cid in cids))
    s1, c1, z1 = _self_cpu(), _children_cpu(), _proc_cpu(zpid)
    for _, cid in cids:
        st = rt.container_status(cid)
        assert st is not None and st.exit_code == 0, (st, tag)
    r0 = _self_cpu()
    for uid, _ in cids:
        await rt.remove_pod_sandbox(uid)
    PREPARE_REMOVE[0] += prepare
    PREPARE_REMOVE[1] += _self_cpu() - r0
    return lat, s1 - s0, (c1 - c0) + (z1 - z0)


async def main(n: int, concurrency: int) -> None:
    """Start n containers per path and print the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="container-start-"))
    vol = tmp / "vol"
    vol.mkdir()
    rt = ProcessRuntime(tmp / "kubelet", "10.252.0.0/24")
    await rt.start()
    if rt.zygote is None:
        sys.exit(f"no mount namespaces here (mode {rt.mode}): nothing to compare")
    zygote = rt.zygote
    try:
        t = time.perf_counter()
        await _block(rt, zygote, "warm-new", vol, 1)
        zygote_up = time.perf_counter() - t
        await _block(rt, None, "warm-old", vol, 1)
        zstart = _proc_cpu(zygote.server_pid, children=False)
        res: dict[str, list] = {"old": [[], 0.0, 0.0], "zygote": [[], 0.0, 0.0]}
        PREPARE_REMOVE[:] = [0.0, 0.0]
        for b in range(max(1, n // BLOCK)):
            order = ("old", "zygote") if b % 2 == 0 else ("zygote", "old")
            for path in order:
                lat, kub, helper = await _block(
                    rt, zygote if path == "zygote" else None, f"{path}-{b}", vol, concurrency
                )
                res[path][0].extend(lat)
                res[path][1] += kub
                res[path][2] += helper
    finally:
        await rt.shutdown(0)
        shutil.rmtree(tmp, ignore_errors=True)
    count = max(1, n // BLOCK) * BLOCK
    print(f"container starts: {count} per path, {concurrency} at once, load {os.getloadavg()[0]:.2f}")
    print(f"{'path':8} {'latency p50':>12} {'p99':>9} {'CPU ms/start: kubelet':>22} {'helpers+child':>14} {'total':>7}")
    for path, (lat, kub, helper) in res.items():
        print(
            f"{path:8} {percentile(lat, 50) * 1000:10.1f}ms {percentile(lat, 99) * 1000:7.1f}ms "
            f"{kub / count * 1000:22.2f} {helper / count * 1000:14.2f} {(kub + helper) / count * 1000:7.2f}"
        )
    print(f"zygote start (once per kubelet): {zstart * 1000:.0f} ms CPU, first start {zygote_up * 1000:.0f} ms")
    pods = 2 * count
    print(
        f"kubelet CPU ms per pod, both paths: sandbox + create_container {PREPARE_REMOVE[0] / pods * 1000:.3f}, "
        f"remove_pod_sandbox {PREPARE_REMOVE[1] / pods * 1000:.3f}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100, help="starts per path (a multiple of 10)")
    ap.add_argument("-c", type=int, default=1, help="containers started at once")
    args = ap.parse_args()
    asyncio.run(main(args.n, args.c))
