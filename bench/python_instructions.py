"""Machine instructions per request, by Python function, of a real apiserver process (callgrind + perf maps).

    PY312=/path/to/a/python3.12/venv/bin/python    # with this repo installed: pip install -e .
    $PY312 bench/python_instructions.py                      # creates, insecure port: the top 60 functions
    $PY312 bench/python_instructions.py --secure --series get --top 100 --match authz

bench/server_instructions.py counts a request's instructions; this says where they go. Python 3.12's perf
support (`PYTHONPERFSUPPORT=1`) runs every Python function through a small trampoline of its own and writes
their addresses to /tmp/perf-<pid>.map. Under callgrind each trampoline is a function with an inclusive cost:
the instructions of that Python function and all it calls. This script runs server_instructions' measurement
with that interpreter (it must be 3.12 or later, with this repo and its dependencies installed), keeps the
callgrind dump of the series asked for, maps the trampolines to names and prints thousands of instructions
per request by function, inclusive, largest first.

Read it as a map, not as figures: the trampolines add a few hundred instructions to every Python call, so
code of many small calls looks dearer than it is (counts are about 1.3 times those of Python 3.11 in all),
and a change is judged by bench/server_instructions.py on the project's interpreter. A coroutine's count holds
what ran inside it in each of its steps.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_instructions as si

SERIES = ("create", "get", "get resourceVersion=0")


class PerfMap:
    """The Python functions of a perf map (`START SIZE py::name:file` lines), by address."""

    def __init__(self, path: Path) -> None:
        entries = []
        for line in path.read_text().splitlines():
            start, size, name = line.split(" ", 2)
            entries.append((int(start, 16), int(size, 16), name))
        entries.sort()
        self._entries = entries
        self._starts = [e[0] for e in entries]

    def name(self, address: int) -> str | None:
        """The function whose trampoline holds `address`, if any."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._entries[i][0] + self._entries[i][1]:
            return self._entries[i][2]
        return None


def inclusive_by_function(dump: Path, perf_map: PerfMap) -> dict[str, int]:
    """Inclusive instructions of every Python function of a callgrind dump (its outermost call when recursive)."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+\?\?\?:0x([0-9a-f]+)", line)
        if m is None:
            continue
        name = perf_map.name(int(m.group(2), 16))
        if name is not None:
            out[name] = max(out.get(name, 0), int(m.group(1).replace(",", "")))
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure, keep the dump of one series, print its functions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", choices=SERIES, default="create", help="which requests (default create)")
    parser.add_argument("--secure", action="store_true", help="over the secure port: TLS, x509 client, RBAC")
    parser.add_argument("-n", type=int, default=300, help="requests per series (default 300)")
    parser.add_argument("--top", type=int, default=60, help="functions shown (default 60)")
    parser.add_argument("--match", default="", help="only functions whose name matches this regular expression")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 12):
        print("this needs Python 3.12 or later (perf trampolines): run it with such an interpreter", file=sys.stderr)
        return 2
    if shutil.which("callgrind_annotate") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    keep = Path(tempfile.mkdtemp(prefix="tinykube-pyinstructions-"))
    wanted = SERIES.index(args.series) + 1  # the series' dump: they run in SERIES order, one round
    argv_of = si.callgrind_argv
    si.callgrind_argv = lambda d: ["env", "PYTHONPERFSUPPORT=1", *argv_of(d)]  # type: ignore[assignment]
    stop = si.CallgrindCounter.stop
    servers: set[str] = set()

    async def stop_and_keep(self: si.CallgrindCounter) -> int:
        count = await stop(self)
        servers.add(self.pid)
        if self.dumps == wanted:
            shutil.copy(self.dump_dir / f"cg.{self.pid}.{self.dumps}", keep / "dump")
            shutil.copy(f"/tmp/perf-{self.pid}.map", keep / "perf.map")
        return count

    si.CallgrindCounter.stop = stop_and_keep  # type: ignore[method-assign]
    try:
        counts = asyncio.run(si.measure(si.HERE, args.n, 32, 1, args.secure))
        rows = inclusive_by_function(keep / "dump", PerfMap(keep / "perf.map"))
    finally:
        shutil.rmtree(keep, ignore_errors=True)
        for pid in servers:  # the server's map, which the interpreter leaves behind
            Path(f"/tmp/perf-{pid}.map").unlink(missing_ok=True)
    total = counts[args.series][0] / 1000
    port = "secure" if args.secure else "insecure"
    print(f"{args.series} ({port} port): {total:.1f}k instructions a request; inclusive, by Python function:")
    shown = 0
    for name, count in sorted(rows.items(), key=lambda kv: -kv[1]):
        if args.match and not re.search(args.match, name):
            continue
        print(f"  {count / args.n / 1000:9.1f}k  {name.removeprefix('py::')}")
        shown += 1
        if shown >= args.top:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
