"""The kubelet's HTTP server: /healthz, /containerLogs, /exec, /attach and /portForward, as the apiserver proxies them,
and the resource usage endpoints /stats/summary and /metrics/resource (kubelet/stats.py).

`KubeletServer(runtime, host, port)` runs uvicorn in a task of the caller's event loop (no signal
handlers of its own). Given `tls` it serves HTTPS (client certificates asked for), given `auth` every
request is authenticated and authorized first (kubelet/auth.py); without either it is plain HTTP open
to all, for standalone use. Errors are plain text with the kubelet's HTTP codes and wording, which the
apiserver turns into Status objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from apimachinery import spdy
from apimachinery.httpserver import ServingLimits, bind_socket
from kubelet.auth import KUBELET_LIMITS, KubeletAuth, ServingTLS, serving_options
from kubelet.portforward import KUBELET_PROTOCOL, TUNNEL_PROTOCOL, PortForwarder, pod_targets
from kubelet.portforward_channels import BASE64_PROTOCOL, BINARY_PROTOCOL, ChannelPortForward, parse_ports
from kubelet.stats import Snapshot, stats_routes
from kubelet.streaming import (
    LogOptions,
    LogOptionsError,
    QuietServer,
    StreamingRuntime,
    follow_log,
    running_probe,
    tail_offset,
)
from kubelet.streaming_attach import attach_problem, output_channels, run_attach
from kubelet.streaming_exec import ExecOptions, error_status, hello_frame, negotiate, run_exec, status_frame

__all__ = ["KubeletServer", "kubelet_app"]

log = logging.getLogger("kubelet.server")
_denied: contextvars.ContextVar[bool] = contextvars.ContextVar("exec_upgrade_denied", default=False)


class _DeniedUpgradeFilter(logging.Filter):
    """Drop uvicorn's "returned without completing handshake" error after an upgrade we refused on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_denied.get() and "without completing handshake" in str(record.msg))


logging.getLogger("uvicorn.error").addFilter(_DeniedUpgradeFilter())


def _text(message: str, code: int) -> Response:
    return PlainTextResponse(message + "\n", status_code=code)


def kubelet_app(runtime: StreamingRuntime, stats: Callable[[str], Snapshot | None] | None = None) -> Starlette:
    """The ASGI app serving one runtime's containers (and, given `stats`, its resource usage)."""

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def container_logs(request: Request) -> Response:
        ns, pod, container = (request.path_params[k] for k in ("namespace", "pod", "container"))
        try:
            opts = LogOptions.parse(request.query_params)
        except LogOptionsError as e:
            return _text(str(e), 400)
        current = runtime.log_path(ns, pod, container)
        path = runtime.log_path(ns, pod, container, previous=True) if opts.previous else current
        if path is None:
            if opts.previous and current is not None:
                return _text(f'previous terminated container "{container}" in pod "{pod}" not found', 400)
            return _text(f'container "{container}" in pod "{pod}" is not available', 404)
        if opts.previous:  # a terminated instance: its log is complete
            stream = follow_log(Path(path), opts, running=lambda: False)
        else:
            stream = follow_log(
                Path(path),
                opts,
                current_path=lambda: runtime.log_path(ns, pod, container),
                running=running_probe(runtime, ns, pod, container),
            )
        return StreamingResponse(stream, media_type="text/plain")

    async def exec_ws(ws: WebSocket) -> None:
        ns, pod, container = (ws.path_params[k] for k in ("namespace", "pod", "container"))
        opts = ExecOptions.parse(ws.query_params.getlist)
        problem = opts.problem()
        if problem:
            await _deny(ws, _text(problem, 400))
            return
        protocol = negotiate(list(ws.scope.get("subprotocols") or []))
        if protocol is None:
            await _deny(ws, _text(f"requested protocol(s) are not supported: {ws.scope.get('subprotocols')}", 400))
            return
        try:
            proc = await runtime.exec_process(ns, pod, container, opts.command, tty=opts.tty)
        except LookupError as e:
            msg = str(e.args[0]) if e.args else f'container not found ("{container}")'
            await _deny(ws, _text(msg, 404))
            return
        except OSError as e:  # e.g. no such executable: the streams open, then the error channel says why
            await ws.accept(subprotocol=protocol or None)
            await ws.send_bytes(hello_frame(opts))
            frame = status_frame(protocol, error_status(f"error executing command in container: {e}"))
            if frame is not None:
                await ws.send_bytes(frame)
            await ws.close(1000)
            return
        try:
            await ws.accept(subprotocol=protocol or None)
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise

        async def send(frame: bytes) -> None:
            await ws.send_bytes(frame)

        async def receive() -> bytes | None:
            try:
                msg = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return None
            if msg["type"] == "websocket.disconnect":
                return None
            data = msg.get("bytes")
            return data if data is not None else (msg.get("text") or "").encode()

        try:
            await run_exec(proc, opts, protocol, send, receive)
        except (WebSocketDisconnect, RuntimeError, OSError) as e:
            log.info("exec %s/%s/%s ended early: %s", ns, pod, container, e)
            return
        with contextlib.suppress(Exception):
            await ws.close(1000)

    async def attach_ws(ws: WebSocket) -> None:
        ns, pod, container = (ws.path_params[k] for k in ("namespace", "pod", "container"))
        opts = ExecOptions.parse(ws.query_params.getlist)
        problem = attach_problem(opts)
        if problem:
            await _deny(ws, _text(problem, 400))
            return
        protocol = negotiate(list(ws.scope.get("subprotocols") or []))
        if protocol is None:
            await _deny(ws, _text(f"requested protocol(s) are not supported: {ws.scope.get('subprotocols')}", 400))
            return
        path = runtime.log_path(ns, pod, container)
        running = running_probe(runtime, ns, pod, container)
        if path is None or (running is not None and not running()):
            await _deny(ws, _text(f'container not found ("{container}")', 404))
            return
        stdin = None
        attach_stdin = getattr(runtime, "attach_stdin", None)
        if opts.stdin and attach_stdin is not None:
            try:
                stdin = await attach_stdin(ns, pod, container)
            except LookupError:
                await _deny(ws, _text(f'container not found ("{container}")', 404))
                return

        def current() -> Path | None:
            return runtime.log_path(ns, pod, container)

        # the output from this moment on: fixed now, before stdin can make the container write
        end = await asyncio.to_thread(tail_offset, Path(path), 0)
        outputs = {
            channel: follow_log(
                Path(path),
                LogOptions(follow=True, tail_lines=0, stream=stream),
                current_path=current,
                running=running,
                offset=end,
            )
            for channel, stream in output_channels(opts).items()
        }
        await ws.accept(subprotocol=protocol or None)
        receive = _ws_receiver(ws)

        async def read() -> bytes | None:
            message = await receive()
            return message.encode() if isinstance(message, str) else message

        try:
            await run_attach(opts, protocol, ws.send_bytes, read, outputs, stdin)
        except (WebSocketDisconnect, RuntimeError, OSError) as e:
            log.info("attach %s/%s/%s ended early: %s", ns, pod, container, e)
            return
        with contextlib.suppress(Exception):
            await ws.close(1000)

    async def exec_http(request: Request) -> Response:
        return _text("Upgrade request required: exec is served over WebSocket (v5.channel.k8s.io)", 400)

    targets = pod_targets(runtime)

    async def port_forward_ws(ws: WebSocket) -> None:
        ns, pod = ws.path_params["namespace"], ws.path_params["pod"]
        offered = list(ws.scope.get("subprotocols") or [])
        tunnel = next((p for p in offered if p in (KUBELET_PROTOCOL, TUNNEL_PROTOCOL)), None)
        channels = next((p for p in offered if p in (BINARY_PROTOCOL, BASE64_PROTOCOL)), "" if not offered else None)
        if tunnel is None and channels is None:
            await _deny(ws, _text(f"requested protocol(s) are not supported: {offered}", 400))
            return
        ports: list[int] = []
        if tunnel is None:
            try:
                ports = parse_ports(ws.query_params.getlist("port"))
            except ValueError as e:
                await _deny(ws, _text(str(e), 400))
                return
        target = targets(ns, pod)
        if target is None:
            await _deny(ws, _text("pod does not exist", 404))
            return
        await ws.accept(subprotocol=tunnel or channels or None)
        receive = _ws_receiver(ws)

        async def send(message: bytes | str) -> None:
            await (ws.send_text(message) if isinstance(message, str) else ws.send_bytes(message))

        try:
            if tunnel is not None:

                async def read() -> bytes | None:
                    message = await receive()
                    return message.encode() if isinstance(message, str) else message

                await spdy.Session(read, ws.send_bytes).serve(PortForwarder(f"{ns}/{pod}", target).on_stream)
            else:
                forward = ChannelPortForward(f"{ns}/{pod}", target, ports, base64_text=channels == BASE64_PROTOCOL)
                await forward.serve(send, receive)
        except (WebSocketDisconnect, RuntimeError, OSError) as e:
            log.info("port-forward to %s/%s ended early: %s", ns, pod, e)
        with contextlib.suppress(Exception):
            await ws.close(1000)

    async def port_forward_http(request: Request) -> Response:
        return _text(f"Upgrade request required: portForward is served over WebSocket ({KUBELET_PROTOCOL})", 400)

    routes = [
        Route("/healthz", healthz),
        Route("/containerLogs/{namespace}/{pod}/{container}", container_logs),
        WebSocketRoute("/exec/{namespace}/{pod}/{container}", exec_ws),
        WebSocketRoute("/attach/{namespace}/{pod}/{container}", attach_ws),
        Route("/exec/{namespace}/{pod}/{container}", exec_http, methods=["GET", "POST"]),
        WebSocketRoute("/portForward/{namespace}/{pod}", port_forward_ws),
        Route("/portForward/{namespace}/{pod}", port_forward_http, methods=["GET", "POST"]),
    ]
    if stats is not None:
        routes += stats_routes(stats)
    return Starlette(routes=routes)


def _ws_receiver(ws: WebSocket) -> Callable[[], Awaitable[bytes | str | None]]:
    """The WebSocket's next message, as it came (None once the socket closed)."""

    async def receive() -> bytes | str | None:
        try:
            msg = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if msg["type"] == "websocket.disconnect":
            return None
        data = msg.get("bytes")
        return data if data is not None else msg.get("text") or ""

    return receive


async def _deny(ws: WebSocket, response: Response) -> None:
    """Refuse the upgrade with an HTTP answer (a bare 403 when the server cannot send one)."""
    _denied.set(True)
    if "websocket.http.response" in (ws.scope.get("extensions") or {}):
        await ws.send_denial_response(response)
    else:
        await ws.close()


class KubeletServer:
    """The kubelet's streaming server, run inside the kubelet's event loop."""

    def __init__(
        self,
        runtime: StreamingRuntime,
        host: str,
        port: int,
        stats: Callable[[str], Snapshot | None] | None = None,
        *,
        tls: ServingTLS | None = None,
        auth: KubeletAuth | None = None,
        limits: ServingLimits = KUBELET_LIMITS,
    ) -> None:
        self.runtime = runtime
        self.stats = stats
        self.host = host
        self.port = port
        self.tls = tls
        self.auth = auth
        self.limits = limits
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving; returns once the socket is listening (OSError when it cannot bind)."""
        # Bind here rather than in uvicorn, which exits the process when a bind fails.
        sock = bind_socket(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        app = kubelet_app(self.runtime, self.stats)
        config = uvicorn.Config(
            self.auth.filter(app) if self.auth is not None else app,
            timeout_graceful_shutdown=2,
            **serving_options(self.tls, self.limits),
        )
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="kubelet-server")
        while not self._server.started:
            if self._task.done():
                exc = self._task.exception() if not self._task.cancelled() else None
                raise RuntimeError(f"kubelet server failed to start on {self.host}:{self.port}") from exc
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop serving (open log follows and execs are cut) and wait for the server task."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._server = self._task = None
