"""Child processes of a local cluster: etcd and the tinykube components, started and stopped
cleanly. Used by the launcher and by the test fixtures."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

__all__ = ["Process", "free_port", "poller", "port_free", "start_apiserver", "start_etcd", "wait_ready"]

ETCD_MISSING = (
    "etcd was not found on PATH. Install it with `sudo apt-get install etcd-server` "
    "(Debian/Ubuntu) or put the etcd binary on PATH."
)


# Where `free_port` draws from: below the kernel's ephemeral range (32768-60999 by default), so that no
# outgoing connection is given the port between the pick and its server's bind (a port from bind(0) is an
# ephemeral one, which any connect() may take in that window); below the Services' NodePort range
# (30000-32767), which kube-proxy binds; above the ports people run servers on.
_PICK_RANGE = (20000, 29999)
_RANDOM = random.SystemRandom()  # not the module's generator, which test plug-ins may seed alike in every worker


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, drawn outside the ephemeral range."""
    low, high = _PICK_RANGE
    for _ in range(64):
        port = _RANDOM.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the range is crowded: any free port the kernel gives
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._terminated = False

    @property
    def pid(self) -> int:
        """The child's pid (also its process group id)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM the process group without waiting (`stop` then waits for it and sends no second one)."""
        if self.alive() and not self._terminated:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group (unless `terminate` has), SIGKILL it after `timeout`."""
        self.terminate()
        if self.alive():
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the process group at once."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def tail(self, lines: int = 30) -> str:
        """The last lines of the process's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def poller(verify: ssl.SSLContext | bool = False, timeout: float = 1.0) -> httpx.Client:
    """An HTTP client for polling a local endpoint: made once per wait, since each new httpx client
    builds a TLS context (about 20 ms of CPU, which a poll every 50 ms would take from the components
    starting beside it)."""
    return httpx.Client(verify=verify, timeout=timeout, trust_env=False)


def wait_ready(url: str, proc: Process, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200; raise with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    with poller() as http:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail()}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout}s:\n{proc.tail()}")


def start_etcd(data_dir: Path, client_port: int | None = None, peer_port: int | None = None) -> tuple[Process, str]:
    """Start an etcd member on loopback; returns the process and its client URL."""
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if binary is None:
        raise RuntimeError(ETCD_MISSING)
    client_port = client_port or free_port()
    peer_port = peer_port or free_port()
    url = f"http://127.0.0.1:{client_port}"
    argv = [
        binary,
        "--name",
        "tinykube",
        "--data-dir",
        str(data_dir / "etcd"),
        "--listen-client-urls",
        url,
        "--advertise-client-urls",
        url,
        "--listen-peer-urls",
        f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls",
        f"http://127.0.0.1:{peer_port}",
        "--initial-cluster",
        f"tinykube=http://127.0.0.1:{peer_port}",
        "--log-level",
        "warn",
        "--logger",
        "zap",
        # one member on loopback: its first election need not wait out the default 1 s timeout (healthy after
        # 0.3-0.9 s with the defaults, about 0.15 s with these; the faster tick costs ~1 ms of CPU a second)
        "--heartbeat-interval",
        "25",
        "--election-timeout",
        "250",
    ]
    proc = Process("etcd", argv, data_dir / "logs" / "etcd.log", env=_etcd_env())
    _ready_or_stop(f"{url}/health", proc)
    return proc, url


def _etcd_env() -> dict[str, str]:
    """etcd's environment beside ours: GOMAXPROCS at half this process's CPUs (at least 1), unless it is set.

    A local cluster's etcd shares the CPUs with the apiservers and the rest of the cluster, which keep them
    busy under load. With a P for every CPU, Go's scheduler wakes a thread to look for work on each idle P
    whenever a goroutine becomes runnable; on a machine whose other CPUs are taken, those wake-ups are CPU
    the rest of the cluster loses. On 2 CPUs, one P cut etcd's CPU per pod create by 6-29 % in
    bench/apiserver_scaling.py and per pod in bench/cluster.py by 17-43 % (bench/README.md, "Session 23")."""
    if "GOMAXPROCS" in os.environ:
        return {}
    return {"GOMAXPROCS": str(max(1, len(os.sched_getaffinity(0)) // 2))}


def start_apiserver(
    data_dir: Path,
    etcd_url: str,
    port: int | None = None,
    extra: Sequence[str] = (),
    *,
    service_accounts: bool = False,
    name: str = "apiserver",
    share_port: bool = False,
    pick_secure_port: bool = False,
) -> tuple[Process, str]:
    """Start the apiserver against etcd; returns the process and its insecure base URL once ready.

    Without `service_accounts` it is a bare apiserver, as upstream's integration-test servers are: no
    controller-manager makes the `default` ServiceAccounts, so the ServiceAccount admission plug-in is off.
    Without `--secure-port` in `extra` (or `pick_secure_port`: a free one, `secure_port_of` the process) it
    serves the insecure port only. With `share_port` it binds its ports with SO_REUSEPORT
    (`--permit-port-sharing`), beside other apiservers on the same ports: its own readiness cannot then be told
    from theirs by the port (the launcher waits on its identity Lease). Ports it picks can be taken by another
    process before the apiserver listens on them: it then starts again on others (three tries)."""
    chosen = port
    for attempt in range(1 if chosen and not pick_secure_port else 3):
        port = chosen or free_port()
        if not share_port and not port_free(port):
            raise RuntimeError(f"port {port} is already in use on 127.0.0.1; choose another with --port")
        argv = [sys.executable, "-m", "apiserver", "--etcd-servers", etcd_url, "--insecure-port", str(port)]
        if share_port:
            argv.append("--permit-port-sharing")
        if pick_secure_port:
            argv += ["--secure-port", str(free_port())]
        elif not any(a.split("=")[0] == "--secure-port" for a in extra):
            argv += ["--secure-port", "0"]  # the insecure port only, unless the caller sets up TLS
        if not service_accounts:
            argv += ["--disable-admission-plugins", "ServiceAccount"]
        argv += extra
        proc = Process(name, argv, data_dir / "logs" / f"{name}.log")
        url = f"http://127.0.0.1:{port}"
        try:
            _ready_or_stop(f"{url}/readyz", proc)
        except RuntimeError as e:
            # a port picked here can be taken by another process between the pick and the apiserver's listen
            if (chosen and not pick_secure_port) or attempt == 2 or "address already in use" not in str(e):
                raise
            continue
        return proc, url
    raise AssertionError("not reached")


def secure_port_of(proc: Process) -> int:
    """The `--secure-port` an apiserver process was started with."""
    return int(proc.argv[proc.argv.index("--secure-port") + 1])


def _ready_or_stop(url: str, proc: Process, timeout: float = 30.0) -> None:
    """wait_ready, stopping the process when it does not become ready (nothing is left behind)."""
    try:
        wait_ready(url, proc, timeout)
    except BaseException:
        proc.stop()
        raise
