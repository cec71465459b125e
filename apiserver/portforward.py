"""pods/portforward: kubectl's port-forward session, relayed to the pod's kubelet (kube-apiserver's
PortForwardLocation and its SPDY-over-WebSocket tunneling handler).

kubectl 1.30+ upgrades `GET …/pods/<name>/portforward` to a WebSocket with subprotocol
`SPDY/3.1+portforward.k8s.io` and speaks SPDY/3.1 inside its binary messages. The apiserver does not
look at the SPDY: it opens the same tunnel to the kubelet's `/portForward/<ns>/<pod>` (subprotocol
`spdy3.1.portforward.tinykube.io`) and copies messages both ways, as kube-apiserver copies bytes
between kubectl and the kubelet. Whatever stops the tunnel before it opens (no such pod, no node yet,
the kubelet refusing or unreachable) refuses the upgrade with a Status. kubectl then retries with a
plain `Upgrade: SPDY/3.1` POST (Go clients send only that): it gets the same checks and the same
Status, or `101 Switching Protocols` (stream protocol `portforward.k8s.io`), after which its SPDY bytes
go into the same tunnel to the kubelet (apiserver/spdy_upgrade.py).

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
from websockets.exceptions import ConnectionClosed

from apimachinery import errors
from apiserver.context import RequestContext
from apiserver.proxy import (
    core_resource,
    deny_upgrade,
    ensure_create_allowed,
    kubelet_address,
    kubelet_clients,
    open_kubelet_socket,
)
from apiserver.spdy_upgrade import PORTFORWARD_PROTOCOL, negotiate, spdy_requested, switching_protocols, tunnel

__all__ = ["TUNNEL_PROTOCOL", "portforward_upgrade", "portforward_websocket"]

log = logging.getLogger("apiserver.portforward")

TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
# the same tunnel to the kubelet, under a name the websockets client accepts (kubelet/portforward.py)
KUBELET_PROTOCOL = "spdy3.1.portforward.tinykube.io"


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
    return await open_kubelet_socket(clients, url, protocol, host, port)


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


async def portforward_upgrade(ctx: RequestContext) -> Response:
    """pods/portforward without a WebSocket: kubectl's SPDY fallback (`Upgrade: SPDY/3.1`, stream protocol
    portforward.k8s.io) is tunneled to the kubelet as the WebSocket's SPDY is; anything else gets why the
    tunnel cannot open, else a 400."""
    if spdy_requested(ctx) is None:
        upstream = await _kubelet_tunnel(ctx)
        await upstream.close()
        raise errors.bad_request(
            "Upgrade request required: pods/portforward is served over WebSocket "
            f"(subprotocol {TUNNEL_PROTOCOL}) or SPDY/3.1"
        )
    await ensure_create_allowed(ctx)
    protocol = negotiate(ctx, (PORTFORWARD_PROTOCOL,))
    upstream = await _kubelet_tunnel(ctx)
    return switching_protocols(protocol, lambda conn: tunnel(conn, upstream), upstream)
