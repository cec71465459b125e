"""The process scaffold every tinykube component shares: API connection, health server, signals,
leader election.

`run_component(opts, main)` sets up logging, connects an `ApiClient` (kubeconfig or `--server`),
serves `/healthz`, `/readyz` and Prometheus `/metrics` on the health port, and runs
`main(api)`: directly, or only while this process holds the leader Lease when leader election is
on. SIGTERM or SIGINT cancels `main` and the process exits 0 (an exception in `main` exits 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from apimachinery import gctuning
from apimachinery.eventloop import uvloop_factory
from apimachinery.logs import setup_logging
from client.config import Config, load_config
from client.leaderelection import LeaderElector, LeaseLock
from client.rest import ApiClient

__all__ = ["ComponentOptions", "health_app", "run_component"]

log = logging.getLogger("component")


@dataclass
class ComponentOptions:
    """What every component process takes on its command line."""

    name: str
    server: str | None = None
    kubeconfig: str | None = None
    health_bind: str = "127.0.0.1"
    health_port: int = 0
    leader_elect: bool = False
    lease_name: str = ""
    lease_namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4()}")
    log_level: str = "info"
    ready: Callable[[], bool] = lambda: True
    # uvloop serves HTTP faster; a process that spawns many children (the kubelet) is better off on
    # asyncio's own loop, whose subprocesses use vfork where libuv forks
    use_uvloop: bool = True

    def api_config(self) -> Config:
        """The API connection from `--server` or the kubeconfig."""
        return load_config(kubeconfig=self.kubeconfig, server=self.server)


_TEXT = b"text/plain; charset=utf-8"


def health_app(ready: Callable[[], bool]) -> ASGIApp:
    """`/healthz`, `/livez`, `/readyz` and `/metrics` for a component (GET and HEAD), as a bare ASGI app:
    four fixed answers need no framework, and importing Starlette for them was about 15 ms of each start."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        status, body, ctype = 200, b"ok", _TEXT
        headers: list[tuple[bytes, bytes]] = []
        if path == "/readyz" and not ready():
            status, body = 503, b"not ready"
        elif path == "/metrics":
            body, ctype = generate_latest(), CONTENT_TYPE_LATEST.encode()
        elif path not in ("/healthz", "/livez", "/readyz", "/metrics"):
            status, body = 404, b"Not Found"
        if status != 404 and method not in ("GET", "HEAD"):
            status, body, ctype, headers = 405, b"Method Not Allowed", _TEXT, [(b"allow", b"GET, HEAD")]
        headers += [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the component owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    def install_signal_handlers(self) -> None:
        return


async def _lead_or_run(opts: ComponentOptions, api: ApiClient, main: Callable[[ApiClient], Awaitable[None]]) -> None:
    if not opts.leader_elect:
        await main(api)
        return
    lock = LeaseLock(api, opts.lease_namespace, opts.lease_name or opts.name, opts.identity)
    while True:
        elector = LeaderElector(
            lock,
            on_started_leading=lambda: main(api),
            on_new_leader=lambda who: log.info("leader is %s", who),
            lease_duration=opts.lease_duration,
            renew_deadline=opts.renew_deadline,
            retry_period=opts.retry_period,
        )
        await elector.run()
        log.warning("lost leadership; campaigning again")


async def serve(opts: ComponentOptions, main: Callable[[ApiClient], Awaitable[None]]) -> int:
    """Run the component until SIGTERM/SIGINT; the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server: _QuietServer | None = None
    server_task: asyncio.Task[None] | None = None
    if opts.health_port:
        config = uvicorn.Config(
            health_app(opts.ready),
            host=opts.health_bind,
            port=opts.health_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",  # no WebSocket route: leave uvicorn's WebSocket protocol unimported
        )
        server = _QuietServer(config)
        server_task = asyncio.create_task(server.serve())
    code = 0
    async with ApiClient(opts.api_config(), user_agent=f"tinykube-{opts.name}") as api:
        work = asyncio.create_task(_lead_or_run(opts, api, main))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if work in done and not work.cancelled() and work.exception() is not None:
            log.error("%s failed", opts.name, exc_info=work.exception())
            code = 1
        work.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
    if server is not None and server_task is not None:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(server_task, 5)
    log.info("%s stopped", opts.name)
    return code


def run_component(opts: ComponentOptions, main: Callable[[ApiClient], Awaitable[None]]) -> None:
    """Set up logging, tune the collector and run the component's event loop (uvloop when installed);
    exits with its code."""
    setup_logging(opts.log_level)
    gctuning.tune()
    gctuning.freeze_startup()  # the modules are imported: no collection walks them again
    with asyncio.Runner(loop_factory=uvloop_factory() if opts.use_uvloop else None) as runner:
        code = runner.run(serve(opts, main))
    raise SystemExit(code)
