"""Container lifecycle hooks (postStart, preStop): exec, httpGet and sleep handlers, with the kubelet's
failure messages."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from kubelet.downward import go_quote
from kubelet.probes import ExecFn, run_probe

__all__ = ["hook_failure_message", "run_hook"]


async def run_hook(
    handler: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    exec_fn: ExecFn,
    client: httpx.AsyncClient,
    timeout: float,
) -> tuple[bool, str, str]:
    """Run one lifecycle handler within `timeout` seconds: (success, error, command output)."""
    if (sleep := handler.get("sleep")) is not None:
        await asyncio.sleep(min(float(sleep.get("seconds") or 0), max(timeout, 0.0)))
        return True, "", ""
    if (spec := handler.get("exec")) is not None:
        command = [str(c) for c in spec.get("command") or []]
        try:
            code, out = await exec_fn(command, timeout)
        except TimeoutError:
            return False, f"command '{' '.join(command)}' timed out", ""
        except LookupError as e:
            return False, str(e), ""
        text = out.decode(errors="replace")
        if code != 0:
            return False, f"command '{' '.join(command)}' exited with {code}: {text}", text
        return True, "", text
    if handler.get("httpGet") is not None or handler.get("tcpSocket") is not None:
        probe = {**handler, "timeoutSeconds": max(int(timeout), 1)}
        ok, msg = await run_probe(probe, container, pod_ip, exec_fn, client)
        return ok, msg, ""
    return True, "", ""


def hook_failure_message(handler: Mapping[str, Any], container: str, pod_ref: str, error: str, output: str) -> str:
    """The kubelet's event message for a failed hook (FailedPostStartHook / FailedPreStopHook)."""
    where = f"for Container {go_quote(container)} in Pod {go_quote(pod_ref)} failed - error: {error}"
    if (spec := handler.get("exec")) is not None:
        command = "[" + " ".join(str(c) for c in spec.get("command") or []) + "]"
        return f"Exec lifecycle hook ({command}) {where}, message: {go_quote(output)}"
    if (spec := handler.get("httpGet")) is not None:
        return f"HTTP lifecycle hook ({spec.get('path', '')}) {where}"
    return f"lifecycle hook {where}"
