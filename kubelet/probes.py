"""Container probes (liveness, readiness, startup): exec, httpGet, tcpSocket, with the kubelet's
thresholds and messages. A `ProbeWorker` probes one container instance and reports result changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

__all__ = ["ExecFn", "ProbeWorker", "run_probe"]

log = logging.getLogger("kubelet.probes")

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]
"""Run a command in the container: (exit code, output); TimeoutError past the timeout."""


def _port(port: Any, container: Mapping[str, Any]) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unable to find port {port!r} in container's ports")


async def _tcp(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as e:
        reason = "connect: connection refused" if isinstance(e, ConnectionRefusedError) else str(e.strerror or e)
        return False, f"dial tcp {host}:{port}: {reason}"
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True, ""


async def _http(
    client: httpx.AsyncClient, spec: Mapping[str, Any], host: str, port: int, timeout: float
) -> tuple[bool, str]:
    scheme = str(spec.get("scheme") or "HTTP").lower()
    path = spec.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    h = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{h}:{port}{path}"
    headers = {"User-Agent": "kube-probe/1.35", "Accept": "*/*"}
    for hdr in spec.get("httpHeaders") or []:
        headers[hdr.get("name", "")] = hdr.get("value", "")
    try:
        resp = await client.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except httpx.HTTPError as e:
        refused = isinstance(e.__cause__, ConnectionRefusedError) or "refused" in str(e).lower()
        text = "connect: connection refused" if refused else str(e)
        return False, f'Get "{url}": dial tcp {host}:{port}: {text}'
    if 200 <= resp.status_code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {resp.status_code}"


async def run_probe(
    probe: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    exec_fn: ExecFn,
    client: httpx.AsyncClient,
) -> tuple[bool, str]:
    """Probe once: (success, output or failure message)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if (spec := probe.get("exec")) is not None:
            command = [str(c) for c in spec.get("command") or []]
            try:
                code, out = await exec_fn(command, timeout)
            except TimeoutError:
                return False, f'command "{" ".join(command)}" timed out'
            text = out.decode(errors="replace").strip()
            return code == 0, text
        if (spec := probe.get("httpGet")) is not None:
            return await _http(client, spec, spec.get("host") or pod_ip, _port(spec.get("port"), container), timeout)
        if (spec := probe.get("tcpSocket")) is not None:
            return await _tcp(spec.get("host") or pod_ip, _port(spec.get("port"), container), timeout)
        if probe.get("grpc") is not None:
            port = int(probe["grpc"].get("port", 0))
            return await _tcp(pod_ip, port, timeout)  # approximated: the port accepts connections
    except LookupError as e:
        return False, str(e)
    except ValueError as e:
        return False, str(e)
    return True, ""


class ProbeWorker:
    """Periodically probes one container instance; `on_change(kind, result)` on a result flip,
    `on_failure(kind, message)` on every failed attempt (for the Unhealthy event)."""

    def __init__(
        self,
        kind: str,
        probe: Mapping[str, Any],
        container: Mapping[str, Any],
        pod_ip: str,
        exec_fn: ExecFn,
        client: httpx.AsyncClient,
        on_change: Callable[[str, bool], None],
        on_failure: Callable[[str, str], None],
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.container = container
        self.pod_ip = pod_ip
        self.exec_fn = exec_fn
        self.client = client
        self.on_change = on_change
        self.on_failure = on_failure
        self.gate = gate
        self.result = kind == "liveness"  # liveness starts as success; readiness/startup as failure
        self._task: asyncio.Task[None] | None = None
        self._ok = self._bad = 0

    def start(self) -> None:
        """Start probing."""
        self._task = asyncio.create_task(self._run(), name=f"probe {self.kind} {self.container.get('name')}")

    def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        await asyncio.sleep(float(self.probe.get("initialDelaySeconds") or 0))
        period = float(self.probe.get("periodSeconds") or 10)
        success_threshold = int(self.probe.get("successThreshold") or 1)
        failure_threshold = int(self.probe.get("failureThreshold") or 3)
        while True:
            if self.gate():
                try:
                    ok, msg = await run_probe(self.probe, self.container, self.pod_ip, self.exec_fn, self.client)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    ok, msg = False, str(e)
                if ok:
                    self._ok, self._bad = self._ok + 1, 0
                    if not self.result and self._ok >= success_threshold:
                        self.result = True
                        self.on_change(self.kind, True)
                    if self.kind == "startup" and self.result:
                        return  # a startup probe stops once it has succeeded
                else:
                    self._ok, self._bad = 0, self._bad + 1
                    self.on_failure(self.kind, msg)
                    if (self.result and self._bad >= failure_threshold) or (
                        not self.result and self.kind != "readiness" and self._bad >= failure_threshold
                    ):
                        self.result = False
                        self.on_change(self.kind, False)
                        if self.kind in ("liveness", "startup"):
                            return  # the container gets restarted: a new worker probes the new instance
            await asyncio.sleep(period)
