"""Two trees' apiservers side by side on one etcd: the apiserver's CPU per TLS request, A against B in one run.

Run from the repo root (the base is another checkout, e.g. `git archive main | tar -x -C /tmp/base`):

    .venv/bin/python bench/apiserver_ab.py --base /tmp/base                 # C=4, 300 requests, 8 rounds
    .venv/bin/python bench/apiserver_ab.py --base /tmp/base -c 32 --rounds 4

On a shared machine, runs of one tree after the other see different loads, and a change worth 10 % of a
request hides in the noise. Here both apiservers run at once (each started from its own tree, on the same etcd,
the same PKI and flags as bench/pod_writes.py's TLS port with client certificates and RBAC), and the rounds
alternate between them every few hundred requests (the order flips each round), so both see the same load.
Each round times, for each tree, N GETs with resourceVersion=0 (served from the watch cache without asking etcd:
the HTTP, chain and handler layers alone), N GETs, N pod creates and N JSON merge patches of pods/status (the simulated
kubelet's write) over TLS as the bench user, C concurrent, and reads that apiserver's CPU from /proc. It prints
the median CPU per request of each tree and every round's figure. Both apiservers watch the same etcd, so each
one's writes also cost the other its watch-cache work: the write figures include that, equally for both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pod_writes

from tinykube.procs import Process, free_port, start_apiserver, start_etcd

ab = pod_writes.ab
OPS = ("cached", "get", "create", "status")
HERE = Path(__file__).resolve().parent.parent
CACHED = {"resourceVersion": "0"}  # "any version": served from the watch cache, no etcd call at all


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_tree(tree: Path, tmp: Path, etcd_url: str, secure_args: list[str], name: str) -> tuple[Process, str]:
    """An apiserver started from `tree` (its own code: `python -m apiserver` from that directory), its TLS URL."""
    port = free_port()
    args = list(secure_args)
    args[args.index("--secure-port") + 1] = str(port)
    data = tmp / name
    data.mkdir()
    here = os.getcwd()
    os.chdir(tree)
    try:
        proc, _ = start_apiserver(
            data, etcd_url, extra=["--etcd-compaction-interval", "0", "--log-level", "warning", *args], name=name
        )
    finally:
        os.chdir(here)
    return proc, f"https://127.0.0.1:{port}"


async def compare(args: argparse.Namespace, servers: dict[str, tuple[Process, str]], secure: Any) -> str:
    """The alternating rounds against both apiservers (base, this), rendered as a table."""
    insecure = f"http://127.0.0.1:{_insecure_port(servers['base'][0])}"
    stack = argparse.Namespace(api_url=insecure, secure=secure)
    await pod_writes.PodWrites(stack, 0, 1, 1, None).setup()
    n, c = args.requests, args.concurrency
    base = f"/api/v1/namespaces/{pod_writes.NAMESPACE}/pods"
    names = [orjson.loads(ab.pod_body(i, "ab"))["metadata"]["name"] for i in range(n)]
    async with ab.http_client(insecure, 30.0) as client:
        for i in range(n):
            r = await client.post(base, content=ab.pod_body(i, "ab"), headers=pod_writes.JSON)
            if r.status_code != 201:
                raise ab.BenchError(f"creating pod {i}: {r.status_code} {r.text[:200]}")
    tls = secure.tls()
    results: dict[tuple[str, str], list[float]] = {(s, op): [] for s in servers for op in OPS}
    for number in range(args.rounds):
        order = list(servers) if number % 2 == 0 else list(reversed(servers))
        for name in order:
            proc, url = servers[name]
            clients = [ab.http_client(url, 30.0, tls) for _ in range(c)]
            calls: dict[str, Any] = {
                "cached": lambda cl, i: cl.get(f"{base}/{names[i]}", params=CACHED),
                "get": lambda cl, i: cl.get(f"{base}/{names[i]}"),
                "create": lambda cl, i, tag=f"{name}{number}x": cl.post(
                    base, content=ab.pod_body(i, tag), headers=pod_writes.JSON
                ),
                "status": lambda cl, i: cl.patch(
                    f"{base}/{names[i]}/status", content=pod_writes.status_patch(names[i]), headers=pod_writes.MERGE
                ),
            }
            try:
                for op in OPS:

                    async def one(worker: int, i: int, call: Any = calls[op], op: str = op, cls: Any = clients) -> None:
                        r = await call(cls[worker], i)
                        if r.status_code >= 300:
                            raise ab.BenchError(f"{op} {i}: {r.status_code} {r.text[:200]}")

                    for cl in clients:  # connections up (TLS handshakes) before the clock starts
                        await cl.get("/version")
                    before = cpu_seconds(proc.pid)
                    result = await ab.run_pool(one, n, c, 120.0)
                    if result.errors:
                        raise ab.BenchError(f"{op} on {name}: {result.errors} errors, first: {result.first_error}")
                    results[(name, op)].append((cpu_seconds(proc.pid) - before) / n * 1e3)
            finally:
                for cl in clients:
                    await cl.aclose()
        line = ", ".join(f"{s} {op} {v[-1]:.3f}" for (s, op), v in results.items())
        print(f"round {number + 1}: {line} (load {os.getloadavg()[0]:.1f})", flush=True)
    lines = [f"apiserver CPU ms per request over TLS, C={c}, {n} requests per round, {args.rounds} rounds (median)"]
    lines.append(f"{'request':>8} | {'base':>7} | {'this':>7} | this/base")
    for op in OPS:
        b, t = statistics.median(results[("base", op)]), statistics.median(results[("this", op)])
        lines.append(f"{op:>8} | {b:7.3f} | {t:7.3f} | {t / b:.2f}")
    return "\n".join(lines)


def _insecure_port(proc: Process) -> int:
    argv = proc.argv
    return int(argv[argv.index("--insecure-port") + 1])


def main(argv: list[str] | None = None) -> int:
    """Start etcd and both apiservers, compare, stop everything; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the base checkout (its apiserver runs from there)")
    parser.add_argument("--concurrency", "-c", type=int, default=4, help="concurrent requests (default 4)")
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind per round (default 300)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds (default 8)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-ab-"))
    procs: list[Process] = []
    try:
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        secure, secure_args = ab.make_secure_port(tmp)
        servers: dict[str, tuple[Process, str]] = {}
        for name, tree in (("base", Path(args.base).resolve()), ("this", HERE)):
            proc, url = start_tree(tree, tmp, etcd_url, secure_args, f"apiserver-{name}")
            procs.append(proc)
            servers[name] = (proc, url)
        print(asyncio.run(compare(args, servers, secure)))
        return 0
    except (ab.BenchError, RuntimeError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        for p in procs:
            print(f"--- {p.name} log tail ({p.log_path}):\n{p.tail(15)}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # etcd's data and the logs (their tails are printed on a failure)


if __name__ == "__main__":
    sys.exit(main())
