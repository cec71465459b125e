"""Machine instructions per request of a real apiserver process, under valgrind's callgrind, this tree beside a base.

Run from the repo root (the base is another checkout, e.g. `git archive main | tar -x -C /tmp/base`):

    .venv/bin/python bench/server_instructions.py                     # this tree only
    .venv/bin/python bench/server_instructions.py --base /tmp/base    # and the base, in the same run
    .venv/bin/python bench/server_instructions.py --secure            # over TLS + x509 + RBAC

CPU time per request on a shared 2-core VM moves by 10 % from one minute to the next, which hides a change worth
a few percent (bench/README.md). An instruction count does not move with the load: here each tree's apiserver
(`python -m apiserver` from that tree, on its own etcd, insecure port, the ServiceAccount plug-in off, no
compaction) runs under callgrind with instrumentation off, C clients send it pod creates, GETs (consistent: the
shared revision read, then the watch cache) and GETs with resourceVersion=0 (the cache alone), and callgrind
counts only while each series runs (`callgrind_control`). It prints the thousands of instructions per request,
the median of R rounds, for each tree and their ratio. Two rounds agree within about 0.5 %.

What it does not see: the kernel's share (system calls, about a tenth of a create's CPU here) and cache misses
(a Python request runs at roughly 3 instructions a nanosecond in a microbenchmark, 1 in place): confirm a change
with the CPU figures of bench/apiserver.py. The server runs some 50 times slower under valgrind, so more
requests wait per loop pass than at full speed; what batching saves shows up larger than it is.

With `--secure` the requests go over the secure port instead, as bench/apiserver.py's section 6 sends them: TLS,
the bench user's client certificate, and RBAC through a RoleBinding (made over the insecure port first).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CallgrindCounter, apiserver_from_tree, callgrind_argv, load_apiserver_bench

ab = load_apiserver_bench()
HERE = Path(__file__).resolve().parent.parent
PODS = "/api/v1/namespaces/bench/pods"
WARM_PODS = 300


async def send_all(conns: list[Any], requests: list[tuple[str, str, bytes | None]]) -> None:
    """Send every request, each connection taking the next one as it is free."""
    pending = iter(requests)

    async def worker(conn: Any) -> None:
        for method, path, body in pending:
            status, answer = await conn.request(method, path, body)
            if status >= 300:
                raise ab.BenchError(f"{method} {path}: {status} {answer[:300]!r}")

    await asyncio.gather(*(worker(c) for c in conns))


def series(n: int, round_: int) -> dict[str, list[tuple[str, str, bytes | None]]]:
    """The requests of one round: n creates of new pods, n GETs, n GETs from the cache (of the warm-up's pods)."""
    names = [ab.pod_name(i % WARM_PODS, "warm") for i in range(n)]
    return {
        "create": [("POST", PODS, ab.pod_body(i, f"r{round_}")) for i in range(n)],
        "get": [("GET", f"{PODS}/{name}", None) for name in names],
        "get resourceVersion=0": [("GET", f"{PODS}/{name}?resourceVersion=0", None) for name in names],
    }


async def grant_bench_user(admin: Any) -> None:
    """bench/apiserver.py's Role and RoleBinding for its bench user, made over the insecure port."""
    base = f"{ab.RBAC_API}/namespaces/{ab.NAMESPACE}"
    for kind, body in ab.bench_user_policy():
        await send_all([admin], [("POST", f"{base}/{kind}", orjson.dumps(body))])


async def until_allowed(conn: Any, path: str, timeout: float) -> None:
    """Wait until `conn`'s user may GET `path` (RBAC follows its watch cache)."""
    deadline = time.monotonic() + timeout
    while (await conn.request("GET", path))[0] == 403:
        if time.monotonic() > deadline:
            raise ab.BenchError(f"{ab.BENCH_USER} still may not GET {path} after {timeout:.0f} s")
        await asyncio.sleep(0.1)


def clients(url: str, port: Any | None, concurrency: int, timeout: float) -> tuple[Any, list[Any]]:
    """An admin connection to the insecure port, and `concurrency` connections: to the secure `port` as the
    bench user when it is given, else to the insecure port."""
    admin = ab.RawConnection(url, None, timeout)
    if port is None:
        return admin, [ab.RawConnection(url, None, timeout) for _ in range(concurrency)]
    tls = port.tls()
    return admin, [ab.RawConnection(port.url, tls, timeout) for _ in range(concurrency)]


async def prepare(admin: Any, conns: list[Any], port: Any | None, timeout: float) -> None:
    """The bench namespace; over the secure port, the bench user's Role, and wait until RBAC lets it in."""
    namespace = b'{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}'
    await send_all([admin], [("POST", "/api/v1/namespaces", namespace)])
    if port is not None:
        await grant_bench_user(admin)
        await until_allowed(conns[0], PODS, timeout)


async def measure(tree: Path, n: int, concurrency: int, rounds: int, secure: bool) -> dict[str, list[float]]:
    """Instructions per request of each series, every round, for `tree`'s apiserver."""
    out: dict[str, list[float]] = {}
    dump_dir = Path(tempfile.mkdtemp(prefix="tinykube-instructions-"))
    wrapper = ["env", "PYTHONHASHSEED=0", *callgrind_argv(dump_dir)]
    port, extra = ab.make_secure_port(dump_dir / "secure") if secure else (None, [])
    # some 50 times slower to start under valgrind
    with apiserver_from_tree(tree, "", wrapper=wrapper, ready_timeout=600, tmp=dump_dir, extra=extra) as (_, api, url):
        admin, conns = clients(url, port, concurrency, 300)
        try:
            await prepare(admin, conns, port, 600)
            await send_all(conns, [("POST", PODS, ab.pod_body(i, "warm")) for i in range(WARM_PODS)])
            await send_all(conns, series(2 * WARM_PODS, -1)["get"])
            counter = CallgrindCounter(api.pid, dump_dir)
            for r in range(rounds):
                for name, requests in series(n, r).items():
                    await counter.start()
                    await send_all(conns, requests)
                    out.setdefault(name, []).append(await counter.stop() / len(requests))
        finally:
            for c in [admin, *conns]:
                await c.aclose()
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the options, measure each tree, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("-n", type=int, default=1000, help="requests per series (default 1000)")
    parser.add_argument("-c", "--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the median is shown (default 2)")
    parser.add_argument("--secure", action="store_true", help="over the secure port: TLS, x509 client, RBAC")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (with callgrind_control) is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    trees = [("this tree", HERE)] + ([("base", args.base.resolve())] if args.base else [])
    results = {
        label: asyncio.run(measure(tree, args.n, args.concurrency, args.rounds, args.secure)) for label, tree in trees
    }
    port = "the secure port (TLS, x509, RBAC)" if args.secure else "the insecure port"
    print(f"thousands of instructions per request in the apiserver process (callgrind), {port}, C={args.concurrency}:")
    header = f"  {'series':<24}" + "".join(f"{label:>12}" for label, _ in trees)
    print(header + ("       ratio" if args.base else ""))
    for name in results["this tree"]:
        row = [statistics.median(results[label][name]) / 1000 for label, _ in trees]
        ratio = f"{row[0] / row[1]:12.3f}" if args.base else ""
        rounds = "; ".join(
            f"{label}: " + " ".join(f"{v / 1000:.1f}" for v in results[label][name]) for label, _ in trees
        )
        print(f"  {name:<24}" + "".join(f"{v:12.1f}" for v in row) + ratio + f"   (rounds, {rounds})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
