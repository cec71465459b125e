"""pods/portforward: kubectl's port-forward session, relayed to the pod's kubelet (kube-apiserver's
PortForwardLocation and its SPDY-over-WebSocket tunneling handler).

kubectl 1.30+ upgrades `GET …/pods/<name>/portforward` to a WebSocket with subprotocol
`SPDY/3.1+portforward.k8s.io` and speaks SPDY/3.1 inside its binary messages. The apiserver does not
look at the SPDY: it opens the same tunnel to the kubelet's `/portForward/<ns>/<pod>` (subprotocol
`spdy3.1.portforward.tinykube.io`) and copies messages both ways, as kube-apiserver copies bytes
between kubectl and the kubelet. Whatever stops the tunnel before it opens (no such pod, no node yet,
the kubelet refusing or unreachable) refuses the upgrade with a Status. kubectl then retries with a
plain `Upgrade: SPDY/3.1` POST, which tinykube does not serve: that request gets the same checks and
the same Status, or a 400 saying to use the WebSocket.

The official clients but kubectl (the Python `kubernetes.stream.portforward`) ask for the channel
protocol instead (`v4.channel.k8s.io`, `?ports=80,8080`): that WebSocket is relayed to the kubelet
the same way, the ports passed on as its `port` parameters (kubelet/portforward_channels.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from apimachinery import errors
from apiserver.context import RequestContext
from apiserver.proxy import (
    core_resource,
    deny_upgrade,
    dial_error,
    dial_kubelet,
    ensure_create_allowed,
    kubelet_address,
    kubelet_clients,
)

__all__ = ["TUNNEL_PROTOCOL", "portforward_websocket", "refuse_plain_upgrade"]

log = logging.getLogger("apiserver.portforward")

TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
# the same tunnel to the kubelet, under a name the websockets client accepts (kubelet/portforward.py)
KUBELET_PROTOCOL = "spdy3.1.portforward.tinykube.io"
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 503: "ServiceUnavailable"}


async def _kubelet_tunnel(ctx: RequestContext, protocol: str = KUBELET_PROTOCOL, query: str = "") -> ClientConnection:
    """The WebSocket to the pod's kubelet (`protocol` its subprotocol, "" none), or the StatusError that keeps
    it from opening."""
    reg, name = ctx.registry, ctx.name
    ns = ctx.info.namespace if ctx.info else ""  # (a WebSocket's context resolves no resource)
    assert reg is not None
    pod: dict[str, Any] = await reg.get(core_resource("pods"), ns, name)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    host, port = await kubelet_address(reg, node)
    clients = kubelet_clients(ctx)
    url = clients.url(host, port, f"/portForward/{ns}/{name}{query}", websocket=True)
    try:
        return await dial_kubelet(clients, url, protocol)
    except InvalidStatus as e:
        code = e.response.status_code
        body = e.response.body.decode("utf-8", "replace").strip() if e.response.body else ""
        message = f"unable to upgrade connection: {body or e.response.reason_phrase}"
        raise errors.StatusError(code, _REASONS.get(code, "InternalError"), message) from None
    except (OSError, InvalidHandshake, TimeoutError) as e:
        raise errors.internal_error(f"error dialing backend: {dial_error(e, host, port)}") from None


async def portforward_websocket(ctx: RequestContext) -> None:
    """WebSocket /api/v1/namespaces/{namespace}/pods/{name}/portforward: tunnel kubectl's SPDY to the kubelet.

    The request has passed the handler chain like any other (authenticated, audited, authorized)."""
    ws = ctx.conn
    assert isinstance(ws, WebSocket)
    offered = list(ws.scope.get("subprotocols") or [])
    query = ""
    if TUNNEL_PROTOCOL in offered:
        protocol, kubelet_protocol = TUNNEL_PROTOCOL, KUBELET_PROTOCOL
    else:  # the channel protocol (the official clients but kubectl): the kubelet serves it as it comes
        found = next((p for p in offered if p in CHANNEL_PROTOCOLS), None if offered else "")
        if found is None:
            await deny_upgrade(ws, errors.bad_request(f"requested protocol(s) are not supported: {offered}"))
            return
        protocol = kubelet_protocol = found
        ports = [p for value in ws.query_params.getlist("ports") for p in value.split(",")]
        query = "?" + urlencode([("port", p) for p in ports]) if ports else ""
    try:
        await ensure_create_allowed(ctx)
        upstream = await _kubelet_tunnel(ctx, kubelet_protocol, query)
    except errors.StatusError as e:
        await deny_upgrade(ws, e)
        return
    try:
        await ws.accept(subprotocol=protocol or None)
    except Exception:
        await upstream.close()
        raise
    await _relay(ws, upstream)


async def _relay(ws: WebSocket, upstream: ClientConnection) -> None:
    """Copy messages (binary or text, as they are) both ways until one side closes; then close the other."""

    async def client_to_kubelet() -> None:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("bytes")
            await upstream.send(data if data is not None else msg.get("text") or "")

    async def kubelet_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in upstream:
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame))

    up = asyncio.create_task(client_to_kubelet())
    down = asyncio.create_task(kubelet_to_client())
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            task.cancel()
        for task in (up, down):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(upstream.close(), 2)
        with contextlib.suppress(Exception):
            await ws.close(1000)


async def refuse_plain_upgrade(ctx: RequestContext) -> Response:
    """pods/portforward without a WebSocket (kubectl's SPDY fallback): why the tunnel cannot open, else a 400."""
    upstream = await _kubelet_tunnel(ctx)
    await upstream.close()
    raise errors.bad_request(
        "Upgrade request required: tinykube serves pods/portforward over WebSocket only "
        f"(subprotocol {TUNNEL_PROTOCOL}); a plain SPDY upgrade is not supported"
    )
