"""The apiserver CPU per create and per GET of this tree beside a base tree, in batches alternated every ~0.2 s.

Run from the repo root (the base is another checkout, e.g. `git archive main | tar -x -C /tmp/base`):

    .venv/bin/python bench/ab_cpu.py --base /tmp/base              # 150 batches, insecure port
    .venv/bin/python bench/ab_cpu.py --base /tmp/base --secure     # over TLS + x509 + RBAC
    .venv/bin/python bench/ab_cpu.py --base . --batches 60         # a null test: the same code on both sides

bench/apiserver.py's CPU per create moves by 10-40 % between runs a minute apart on the project's shared
2-core VMs (bench/README.md, "Session 24"), so whole runs alternated tree by tree need dozens of pairs to show
a 5 % change, and bench/server_instructions.py's instruction counts, which do not move, can promise a gain
the CPU does not see (a mypyc build: 15 % fewer instructions per create, the same CPU). Here each tree's
apiserver runs at the same time on its own etcd (`python -m apiserver` from that tree, with the tree's
`.venv/bin/python` when it has one: two venvs compare two interpreters), and the batches
alternate between them (A then B, then B then A): 32 clients on `RawConnection` send a batch of N pod
creates, then 2N GETs of them, to one server, then the same to the other. Each batch's apiserver CPU is read
from the kernel's per-thread run time (`/proc/<pid>/task/*/schedstat`, nanoseconds; /proc/<pid>/stat counts in
10 ms ticks, as coarse as a whole batch). Drift slower than a batch weighs on both sides alike. Printed: the
median CPU per operation of each tree, and the median and quartiles of the per-batch ratio this tree / base.
A null test (the same tree on both sides, 150 batches of 400) put the create ratio at 1.00 within about
2 %; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import apiserver_from_tree, load_apiserver_bench
from server_instructions import PODS, clients, prepare

ab = load_apiserver_bench()
HERE = Path(__file__).resolve().parent.parent
CONCURRENCY = 32


def run_time(pid: int) -> float:
    """Seconds a process's threads have run so far (the scheduler's own count, in nanoseconds)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread that ended between the listing and the read
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total / 1e9


@dataclass
class Side:
    """One tree's apiserver and its clients, and its CPU per operation in each batch (µs)."""

    label: str
    pid: int
    conns: list[Any]
    per_op: dict[str, list[float]] = field(default_factory=lambda: {"create": [], "get": []})

    async def batch(self, first: int, size: int, keep: bool) -> None:
        """`size` creates of new pods numbered from `first`, then 2 x `size` GETs of them."""

        async def create(k: int, i: int) -> None:
            status, body = await self.conns[k].request("POST", PODS, ab.pod_body(first + i, "ab"))
            if status != 201:
                raise ab.BenchError(f"{self.label}: create {status} {body[:200]!r}")

        async def get(k: int, i: int) -> None:
            name = ab.pod_name(first + i % size, "ab")
            status, body = await self.conns[k].request("GET", f"{PODS}/{name}")
            if status != 200:
                raise ab.BenchError(f"{self.label}: get {status} {body[:200]!r}")

        ops: tuple[tuple[str, Callable[[int, int], Awaitable[None]], int], ...] = (
            ("create", create, size),
            ("get", get, 2 * size),
        )
        for op, fn, count in ops:
            before = run_time(self.pid)
            res = await ab.run_pool(fn, count, CONCURRENCY, 120)
            if res.errors:
                raise ab.BenchError(f"{self.label}: {res.errors} of {count} {op}s failed: {res.first_error}")
            if keep:
                self.per_op[op].append((run_time(self.pid) - before) / count * 1e6)


async def open_side(label: str, url: str, secure: Any | None, pid: int) -> Side:
    """The bench namespace (and the bench user's Role over TLS) and 32 client connections."""
    admin, conns = clients(url, secure, CONCURRENCY, 60)
    await prepare(admin, conns, secure, 30)
    await admin.aclose()
    return Side(label, pid, conns)


def tree_python(tree: Path) -> str:
    """The interpreter a tree's apiserver runs on: the tree's own venv's, else this one."""
    own = tree / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


async def measure(trees: list[tuple[str, Path]], batches: int, size: int, secure: bool) -> list[Side]:
    """Start both trees' servers, run the alternated batches (the first one a warm-up), stop them."""
    sides: list[Side] = []
    with contextlib.ExitStack() as stack:
        for label, tree in trees:
            tmp = Path(tempfile.mkdtemp(prefix="tinykube-ab-"))
            port, extra = ab.make_secure_port(tmp / "secure") if secure else (None, [])
            python = tree_python(tree)
            _, api, url = stack.enter_context(apiserver_from_tree(tree, "", tmp=tmp, extra=extra, python=python))
            sides.append(await open_side(label, url, port, api.pid))
        try:
            for b in range(batches + 1):
                order = sides if b % 2 == 0 else sides[::-1]
                for side in order:
                    await side.batch(b * size, size, keep=b > 0)
        finally:
            for side in sides:
                for conn in side.conns:
                    await conn.aclose()
    return sides


def main(argv: list[str] | None = None) -> int:
    """Parse the options, measure, print the medians and the per-batch ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    parser.add_argument("--batches", type=int, default=150, help="batches per tree (default 150)")
    parser.add_argument("--size", type=int, default=400, help="creates per batch, and twice as many GETs (400)")
    parser.add_argument("--secure", action="store_true", help="over the secure port: TLS, x509 client, RBAC")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))  # so the servers are stopped on the way out
    trees = [("this tree", HERE), ("base", args.base.resolve())]
    this, base = asyncio.run(measure(trees, args.batches, args.size, args.secure))
    port = "the secure port (TLS, x509, RBAC)" if args.secure else "the insecure port"
    print(f"apiserver CPU per operation, {port}, C={CONCURRENCY}, {args.batches} alternated batches of {args.size}:")
    for label, tree in trees:
        print(f"  {label}: {tree} on {ab.interpreter(tree_python(tree))}")
    for op in ("create", "get"):
        ratios = [a / b for a, b in zip(this.per_op[op], base.per_op[op], strict=True)]
        low, _, high = statistics.quantiles(ratios, n=4)
        print(
            f"  {op:<7} this tree {statistics.median(this.per_op[op]):6.1f} us, "
            f"base {statistics.median(base.per_op[op]):6.1f} us; this/base per batch: "
            f"median {statistics.median(ratios):.3f} (quartiles {low:.3f}-{high:.3f})"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
