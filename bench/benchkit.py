"""What the benchmarks share: loading bench/apiserver.py as a module, the simulated kubelet's pod status, the in-process
benchmarks' app and ASGI scope, an apiserver started from another checkout, and a process's CPU seconds."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def load_apiserver_bench() -> ModuleType:
    """bench/apiserver.py by path (the name `apiserver` is the server's package in the repo root)."""
    spec = importlib.util.spec_from_file_location("bench_apiserver", Path(__file__).with_name("apiserver.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def running_status(now: str) -> dict[str, Any]:
    """The status the simulated kubelet writes for a pod it runs (Running and Ready), as of `now` (RFC 3339)."""
    conds = [
        {"type": t, "status": "True", "lastTransitionTime": now}
        for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    container = {
        "name": "main",
        "image": "registry.k8s.io/pause:3.9",
        "imageID": "",
        "containerID": "simulated://main",
        "ready": True,
        "started": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": now}},
    }
    return {
        "phase": "Running",
        "conditions": conds,
        "hostIP": "10.200.0.1",
        "hostIPs": [{"ip": "10.200.0.1"}],
        "podIP": "10.200.0.5",
        "podIPs": [{"ip": "10.200.0.5"}],
        "startTime": now,
        "containerStatuses": [container],
        "qosClass": "BestEffort",
    }


def scope_of(path: str, query: bytes = b"", method: str = "GET", headers: list[Any] | None = None) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it for a request on the insecure port."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"x"), (b"accept", b"application/json"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


@contextlib.asynccontextmanager
async def in_process_app(prefix: str, *, tune_gc: bool = False) -> AsyncIterator[tuple[Any, Any]]:
    """A new etcd and the apiserver's app in this process (the ServiceAccount plug-in off, as the other benchmarks
    run it), started: yields (app, its insecure listener's ASGI entry); `tune_gc` tunes the collector as
    `python -m apiserver` does. Prints whose code it is (the tree first on sys.path)."""
    from apimachinery import gctuning
    from apiserver.app import Config, create_app
    from apiserver.chain.listener import INSECURE, Listener
    from apiserver.security import SecurityConfig
    from tinykube.procs import start_etcd

    print(f"code of {Path(sys.modules['apiserver.app'].__file__ or '').parent.parent}")
    data = Path(tempfile.mkdtemp(prefix=prefix))
    etcd, url = start_etcd(data)
    try:
        if tune_gc:
            gctuning.tune()
        security = SecurityConfig(disable_admission_plugins=("ServiceAccount",))
        app = create_app(Config(etcd_servers=url, insecure_port=0, etcd_compaction_interval=0, security=security))
        async with app.router.lifespan_context(app):
            yield app, Listener(app, INSECURE)
    finally:
        etcd.stop()
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def apiserver_from_tree(
    tree: Path,
    prefix: str,
    *,
    wrapper: Sequence[str] = (),
    ready_timeout: float = 30.0,
    tmp: Path | None = None,
    extra: Sequence[str] = (),
    python: str | None = None,
) -> Iterator[tuple[Any, Any, str]]:
    """A new etcd and an apiserver run from `tree` (a checkout: A/B benchmarks start the base's), on the insecure port
    only, the ServiceAccount plug-in off, no compaction: yields (etcd, apiserver, its URL) once it is ready; both are
    stopped, and their directory (`tmp`, else a new one) removed, after the block. `wrapper` runs the server under
    another command (valgrind), which must exec it in the same process; `extra` flags come last (a secure port's);
    `python` is the interpreter (else this one)."""
    from tinykube.procs import Process, free_port, start_etcd, wait_ready

    tmp = tmp or Path(tempfile.mkdtemp(prefix=prefix))
    procs: list[Process] = []
    try:
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        port = free_port()
        argv = [python or sys.executable, "-m", "apiserver", "--etcd-servers", etcd_url, "--insecure-port", str(port)]
        argv += ["--secure-port", "0", "--disable-admission-plugins", "ServiceAccount"]
        argv += ["--etcd-compaction-interval", "0", "--log-level", "warning", *extra]
        # exec: the shell becomes the apiserver, so the pid measured (and stopped) is the server's
        shell = f"cd {str(tree)!r} && exec " + " ".join(repr(a) for a in [*wrapper, *argv])
        api = Process("apiserver", ["sh", "-c", shell], tmp / "logs" / "apiserver.log")
        procs.append(api)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", api, ready_timeout)
        yield etcd, api, url
    finally:
        for p in reversed(procs):
            p.stop(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


class CallgrindCounter:
    """The instruction counter of a process running under callgrind (`--instr-atstart=no`), read per series
    through `callgrind_control`; `dump_dir` is the directory of its `--callgrind-out-file=<dir>/cg.%p`."""

    def __init__(self, pid: int, dump_dir: Path) -> None:
        self.pid = str(pid)
        self.dump_dir = dump_dir
        self.dumps = 0

    async def _control(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            "callgrind_control", *args, self.pid, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        if await asyncio.wait_for(proc.wait(), 300) != 0:
            raise RuntimeError(f"callgrind_control {' '.join(args)} failed")

    async def start(self) -> None:
        """Count from zero, from now."""
        await self._control("--zero")
        await self._control("--instr=on")

    async def stop(self) -> int:
        """Stop counting: the instructions since `start`."""
        await self._control("--instr=off")
        await self._control("--dump")
        self.dumps += 1
        for line in (self.dump_dir / f"cg.{self.pid}.{self.dumps}").read_text().splitlines():
            if line.startswith("totals:"):  # ("summary:" says 0 in a triggered dump)
                return int(line.split()[1])
        raise RuntimeError(f"callgrind wrote no totals for {self.pid}")


def callgrind_argv(dump_dir: Path) -> list[str]:
    """valgrind's callgrind with instrumentation off until `CallgrindCounter.start`, writing to `dump_dir`."""
    return ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={dump_dir}/cg.%p"]
