"""pods/log, pods/exec and pods/attach: find the pod's kubelet and relay its answer (kube-apiserver's
LogLocation/ExecLocation/AttachLocation).

Logs are streamed through as the kubelet writes them (a follow lasts until either side goes away).
Exec and attach are WebSockets: the apiserver accepts the client's upgrade (subprotocols v5/v4.channel.k8s.io),
opens one to the kubelet's /exec (/attach) with the same subprotocol and relays frames both ways; a kubelet
that refuses ends the session with a Status on the error channel, as kube-apiserver's stream
translator does. kubectl's SPDY/3.1 fallback (a POST upgraded to SPDY) is bridged to the same kubelet
WebSocket (apiserver/spdy_upgrade.py). Both dial the kubelet as `apiserver/kubelet_client.py` says (HTTPS with the
apiserver's kubelet client certificate when it has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import errno
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import HTTPConnection
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from apimachinery import errors
from apimachinery.resources import by_plural
from apiserver.authz import Verdict
from apiserver.chain.authorization import attributes_of, authorize
from apiserver.codec import status_response
from apiserver.context import RequestContext
from apiserver.kubelet_client import CONNECT_TIMEOUT, READ_TIMEOUT, KubeletClient
from apiserver.registry import Registry
from apiserver.spdy_upgrade import EXEC_PROTOCOLS, bridge_exec, negotiate, spdy_requested, switching_protocols

__all__ = [
    "attach_websocket",
    "container_upgrade",
    "core_resource",
    "deny_upgrade",
    "dial_error",
    "ensure_create_allowed",
    "exec_websocket",
    "kubelet_address",
    "kubelet_clients",
    "open_kubelet_socket",
    "pod_container",
    "pod_logs",
    "validate_log_options",
]

log = logging.getLogger("apiserver.proxy")

DEFAULT_KUBELET_PORT = 10250
# Which node address to dial, best first (InternalIP first: tinykube kubelets listen on it).
ADDRESS_TYPES = ("InternalIP", "Hostname", "InternalDNS", "ExternalDNS", "ExternalIP")
SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}
_LOG_PARAMS = ("follow", "previous", "timestamps", "sinceSeconds", "sinceTime", "tailLines", "limitBytes", "stream")

_denied: contextvars.ContextVar[bool] = contextvars.ContextVar("exec_upgrade_denied", default=False)


class _DeniedUpgradeFilter(logging.Filter):
    """Drop uvicorn's "returned without completing handshake" error after an upgrade we refused on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_denied.get() and "without completing handshake" in str(record.msg))


logging.getLogger("uvicorn.error").addFilter(_DeniedUpgradeFilter())


def kubelet_clients(ctx: RequestContext) -> KubeletClient:
    """The app's connections to kubelets (`app.state.kubelets`, made from the `--kubelet-*` flags)."""
    assert ctx.conn is not None
    return ctx.conn.app.state.kubelets  # type: ignore[no-any-return]


async def dial_kubelet(clients: KubeletClient, url: str, protocol: str | None) -> ClientConnection:
    """Open a WebSocket to a kubelet's streaming endpoint (exec, attach, port-forward), offering `protocol`."""
    return await connect(
        url,
        subprotocols=[protocol] if protocol else None,  # type: ignore[list-item]
        open_timeout=CONNECT_TIMEOUT,
        max_size=None,
        compression=None,
        proxy=None,
        ssl=clients.ssl,
    )


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 503: "ServiceUnavailable"}


async def open_kubelet_socket(
    clients: KubeletClient, url: str, protocol: str | None, host: str, port: int
) -> ClientConnection:
    """`dial_kubelet`, or the StatusError of a kubelet that refuses (its code and message) or cannot be reached."""
    try:
        return await dial_kubelet(clients, url, protocol)
    except InvalidStatus as e:
        code = e.response.status_code
        body = e.response.body.decode("utf-8", "replace").strip() if e.response.body else ""
        message = f"unable to upgrade connection: {body or e.response.reason_phrase}"
        raise errors.StatusError(code, _REASONS.get(code, "InternalError"), message) from None
    except (OSError, InvalidHandshake, TimeoutError) as e:
        raise errors.internal_error(f"error dialing backend: {dial_error(e, host, port)}") from None


async def ensure_create_allowed(ctx: RequestContext) -> None:
    """A WebSocket upgrade of pods/exec or pods/portforward is a GET (authorized as `get`); it must also be
    allowed to `create` them, as a SPDY POST is (upstream's AuthorizePodWebsocketUpgradeCreatePermission,
    on by default since 1.35): 403 otherwise."""
    if ctx.insecure or ctx.verb == "create" or ctx.user is None:
        return
    assert ctx.conn is not None
    authorizers = getattr(ctx.conn.app.state, "authorizers", ())
    attrs = dataclasses.replace(attributes_of(ctx), verb="create")
    try:
        decision = await authorize(authorizers, attrs)
    except Exception as e:  # as the chain's authorization stage: the failure is logged, the client gets a 500
        log.exception("authorizing create on %s", ctx.path)
        raise errors.internal_error(str(e) or type(e).__name__) from e
    if decision.verdict is not Verdict.ALLOW:
        raise errors.forbidden("pods", ctx.name, decision.reason)


def core_resource(plural: str) -> Any:
    """The ResourceInfo of a core (v1) resource."""
    res = by_plural("", plural)
    assert res is not None
    return res


def _names(containers: list[dict[str, Any]] | None) -> str:
    return " ".join(c.get("name", "") for c in containers or [])


def pod_container(pod: dict[str, Any], container: str) -> str:
    """The container a request means: the one named (it must exist) or the pod's only one (400 otherwise)."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = spec.get("containers") or []
    init = spec.get("initContainers") or []
    ephemeral = spec.get("ephemeralContainers") or []
    if not container:
        if len(containers) == 1:
            return str(containers[0].get("name", ""))
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        msg = f"a container name must be specified for pod {name}, choose one of: [{_names(containers)}]"
        if init:
            msg += f" or one of the init containers: [{_names(init)}]"
        if ephemeral:
            msg += f" or one of the ephemeral containers: [{_names(ephemeral)}]"
        raise errors.bad_request(msg)
    if not any(c.get("name") == container for c in [*containers, *init, *ephemeral]):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


async def kubelet_address(reg: Registry, node_name: str) -> tuple[str, int]:
    """The host and port of a node's kubelet, from its status (404 when the Node does not exist)."""
    node = await reg.get(core_resource("nodes"), None, node_name)
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    host = ""
    for kind in ADDRESS_TYPES:
        host = next((a.get("address", "") for a in addresses if a.get("type") == kind and a.get("address")), "")
        if host:
            break
    if not host:
        known = " ".join(f"{{{a.get('type')} {a.get('address')}}}" for a in addresses)
        raise errors.internal_error(f"no preferred addresses found; known addresses: [{known}]")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_KUBELET_PORT
    return host, int(port)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dial_error(exc: BaseException, host: str, port: int) -> str:
    """A connection failure in Go's words (`dial tcp h:p: connect: connection refused`)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return f"dial tcp {_host_port(host, port)}: connect: connection refused"
        if isinstance(seen, TimeoutError | httpx.TimeoutException):
            return f"dial tcp {_host_port(host, port)}: i/o timeout"
        seen = seen.__cause__ or seen.__context__
    return f"dial tcp {_host_port(host, port)}: {exc or type(exc).__name__}"


def _int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        msg = f'invalid value "{raw}" for {name}: strconv.ParseInt: parsing "{raw}": invalid syntax'
        raise errors.bad_request(msg) from None


def _bool(params: dict[str, str], name: str) -> bool:
    raw = params.get(name)
    if raw is None or raw in _FALSE:
        return False
    if raw in _TRUE:
        return True
    raise errors.bad_request(f'invalid value "{raw}" for {name}: strconv.ParseBool: parsing "{raw}": invalid syntax')


def validate_log_options(name: str, params: dict[str, str]) -> dict[str, str]:
    """Check a PodLogOptions query as kube-apiserver does (422 Invalid) and build the kubelet's query."""
    tail, limit, since = _int(params, "tailLines"), _int(params, "limitBytes"), _int(params, "sinceSeconds")
    causes: list[errors.Cause] = []
    if tail is not None and tail < 0:
        causes.append(errors.Cause("tailLines", f"Invalid value: {tail}: must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(errors.Cause("limitBytes", f"Invalid value: {limit}: must be greater than 0"))
    if since is not None and params.get("sinceTime"):
        causes.append(
            errors.Cause(
                "", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified", "FieldValueForbidden"
            )
        )
    elif since is not None and since < 1:
        causes.append(errors.Cause("sinceSeconds", f"Invalid value: {since}: must be greater than 0"))
    stream = params.get("stream")
    if stream is not None and stream not in ("All", "Stdout", "Stderr"):
        causes.append(
            errors.Cause(
                "stream",
                f'Unsupported value: "{stream}": supported values: "All", "Stderr", "Stdout"',
                "FieldValueNotSupported",
            )
        )
    if causes:
        raise errors.invalid("PodLogOptions", name, causes)
    query: dict[str, str] = {}
    for key in _LOG_PARAMS:
        if key in ("follow", "previous", "timestamps"):
            if _bool(params, key):
                query[key] = "true"
        elif params.get(key):
            query[key] = params[key]
    return query


def _waiting_message(pod: dict[str, Any], container: str) -> str | None:
    """Why a container has no log yet, in the kubelet's words, from the pod's status."""
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    statuses = [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]
    cs = next((s for s in statuses if s.get("name") == container), None)
    if cs is None:
        if status.get("phase", "Pending") == "Pending":
            return f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
        return None
    waiting = (cs.get("state") or {}).get("waiting")
    if waiting is not None and not (cs.get("lastState") or {}).get("terminated"):
        reason = waiting.get("reason", "")
        if reason == "ErrImagePull":
            return f'container "{container}" in pod "{name}" is waiting to start: image can\'t be pulled'
        if reason == "ImagePullBackOff":
            return f'container "{container}" in pod "{name}" is waiting to start: trying and failing to pull image'
        return f'container "{container}" in pod "{name}" is waiting to start: {reason}'
    return None


def _kubelet_error(code: int, body: str, pod: dict[str, Any], container: str, name: str) -> errors.StatusError:
    """A kubelet's non-2xx answer as the apiserver's Status (GenericHttpResponseChecker)."""
    body = body.strip()
    if code == 400:
        return errors.bad_request(body)
    if code == 404:
        waiting = _waiting_message(pod, container)
        if waiting:
            return errors.bad_request(waiting)
    if code == 500:
        return errors.internal_error(body)
    return errors.generic_server_response(code, "pods/log", name, body)


async def pod_logs(ctx: RequestContext) -> Response:
    """GET pods/{name}/log: the container's log from its kubelet (streamed; followed with follow=true)."""
    reg, ns, name, params = ctx.registry, ctx.namespace or "", ctx.name, ctx.query
    assert reg is not None
    query = validate_log_options(name, params)
    pod = await reg.get(core_resource("pods"), ns, name)
    container = pod_container(pod, params.get("container", ""))
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        # kube-apiserver answers an unscheduled pod's log with an empty stream
        return Response(b"", media_type="text/plain")
    host, port = await kubelet_address(reg, node)
    kubelets = kubelet_clients(ctx)
    url = kubelets.url(host, port, f"/containerLogs/{ns}/{name}/{container}")
    if query:
        url += "?" + urlencode(query)
    follow = "follow" in query
    client = kubelets.http
    timeout = httpx.Timeout(None if follow else READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    req = client.build_request("GET", url, timeout=timeout)
    try:
        resp = await client.send(req, stream=True)
    except httpx.ConnectError as e:
        raise errors.internal_error(f'Get "{url}": {dial_error(e, host, port)}') from e
    except httpx.HTTPError as e:
        raise errors.internal_error(f'Get "{url}": {e or type(e).__name__}') from e
    if resp.status_code != 200:
        try:
            body = (await resp.aread())[: 64 * 1024].decode("utf-8", "replace")
        finally:
            await resp.aclose()
        raise _kubelet_error(resp.status_code, body, pod, container, name)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.aiter_raw():
                yield chunk
        except httpx.HTTPError as e:
            log.info("log stream from %s ended: %s", url, e)
        finally:
            await resp.aclose()

    return StreamingResponse(relay(), media_type="text/plain")


def _exec_query(ws: HTTPConnection, params: dict[str, str], command: bool = True) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    for key in ("stdin", "stdout", "stderr", "tty"):
        if _bool(params, key):
            query.append((key, "1"))
    if command:
        query.extend(("command", c) for c in ws.query_params.getlist("command"))
    return query


async def exec_target(reg: Registry, ns: str, name: str, container: str) -> tuple[str, int, str]:
    """The kubelet (host, port) and container of an exec, or the StatusError kube-apiserver gives."""
    pod = await reg.get(core_resource("pods"), ns, name)
    container = pod_container(pod, container)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    host, port = await kubelet_address(reg, node)
    return host, port, container


async def deny_upgrade(ws: WebSocket, err: errors.StatusError) -> None:
    """Refuse a WebSocket upgrade with `err` as the HTTP answer (a bare close when the server cannot send one)."""
    _denied.set(True)
    if "websocket.http.response" in (ws.scope.get("extensions") or {}):
        await ws.send_denial_response(status_response(err))
    else:
        await ws.close()


def _error_frame(protocol: str, message: str) -> bytes:
    if protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
        status = errors.internal_error(message).to_status()
        return b"\x03" + json.dumps(status, separators=(",", ":")).encode()
    return b"\x03" + message.encode()


async def exec_websocket(ctx: RequestContext) -> None:
    """WebSocket /api/v1/namespaces/{namespace}/pods/{name}/exec: relay a kubectl exec to the kubelet.

    The request has passed the handler chain like any other (authenticated, audited, authorized)."""
    await _container_websocket(ctx, "exec")


async def attach_websocket(ctx: RequestContext) -> None:
    """WebSocket /api/v1/namespaces/{namespace}/pods/{name}/attach: relay a kubectl attach to the kubelet."""
    await _container_websocket(ctx, "attach")


async def container_upgrade(ctx: RequestContext, kind: str) -> Response:
    """pods/exec or pods/attach without a WebSocket: the same checks; kubectl's SPDY fallback (`Upgrade:
    SPDY/3.1`) is then bridged to the kubelet's WebSocket (apiserver/spdy_upgrade.py), anything else is a 400."""
    reg = ctx.registry
    assert reg is not None and ctx.conn is not None
    ns, name = ctx.namespace or "", ctx.name
    await ensure_create_allowed(ctx)
    host, port, container = await exec_target(reg, ns, name, ctx.query.get("container", ""))
    if spdy_requested(ctx) is None:
        raise errors.bad_request(
            f"Upgrade request required: pods/{kind} is served over WebSocket (subprotocol v5.channel.k8s.io "
            "or v4.channel.k8s.io) or SPDY/3.1"
        )
    protocol = negotiate(ctx, EXEC_PROTOCOLS)
    query = _exec_query(ctx.conn, ctx.query, command=kind == "exec")
    kubelets = kubelet_clients(ctx)
    url = kubelets.url(host, port, f"/{kind}/{ns}/{name}/{container}?{urlencode(query)}", websocket=True)
    upstream = await open_kubelet_socket(kubelets, url, "v5.channel.k8s.io", host, port)
    return switching_protocols(protocol, lambda conn: bridge_exec(conn, upstream), upstream)


async def _container_websocket(ctx: RequestContext, kind: str) -> None:
    ws, reg = ctx.conn, ctx.registry
    assert isinstance(ws, WebSocket) and reg is not None
    ns, name = ctx.info.namespace if ctx.info else "", ctx.name
    try:
        await ensure_create_allowed(ctx)
        query = _exec_query(ws, ctx.query, command=kind == "exec")
        host, port, container = await exec_target(reg, ns, name, ctx.query.get("container", ""))
    except errors.StatusError as e:
        await deny_upgrade(ws, e)
        return
    offered = list(ws.scope.get("subprotocols") or [])
    protocol = next((p for p in offered if p in SUBPROTOCOLS), None)
    if offered and protocol is None:
        await deny_upgrade(ws, errors.bad_request(f"requested protocol(s) are not supported: {offered}"))
        return
    await ws.accept(subprotocol=protocol)
    kubelets = kubelet_clients(ctx)
    url = kubelets.url(host, port, f"/{kind}/{ns}/{name}/{container}?{urlencode(query)}", websocket=True)
    try:
        upstream = await dial_kubelet(kubelets, url, protocol)
    except InvalidStatus as e:
        body = e.response.body.decode("utf-8", "replace").strip() if e.response.body else ""
        await _end(ws, protocol or "", f"unable to upgrade connection: {body or e.response.reason_phrase}")
        return
    except (OSError, InvalidHandshake, TimeoutError) as e:
        await _end(ws, protocol or "", f"error dialing backend: {dial_error(e, host, port)}")
        return
    await _relay(ws, upstream, protocol or "")


async def _end(ws: WebSocket, protocol: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_bytes(_error_frame(protocol, message))
    with contextlib.suppress(Exception):
        await ws.close(1000)


async def _relay(ws: WebSocket, upstream: ClientConnection, protocol: str) -> None:
    """Copy frames both ways until one side closes; then close the other.

    A kubelet that goes away without its closing Status leaves the client an InternalError on the
    error channel, so kubectl reports why instead of a protocol error.
    """
    saw_status = False

    async def client_to_kubelet() -> None:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("bytes")
            await upstream.send(data if data is not None else msg.get("text") or "")

    async def kubelet_to_client() -> None:
        nonlocal saw_status
        with contextlib.suppress(ConnectionClosed):
            async for frame in upstream:
                if isinstance(frame, bytes):
                    saw_status = saw_status or (len(frame) > 1 and frame[0] == 3)
                    await ws.send_bytes(frame)
                else:
                    await ws.send_text(frame)

    up = asyncio.create_task(client_to_kubelet())
    down = asyncio.create_task(kubelet_to_client())
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if up in done and not up.cancelled() and up.exception() is not None:
            # the kubelet closed while the client was still sending: deliver what it sent before closing
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(down), 5)
        if down.done():
            code = upstream.close_code
            if code != 1000 and not saw_status:
                why = f"the kubelet closed the stream ({code} {upstream.close_reason or ''})".replace(" )", ")")
                await _end(ws, protocol, why)
            else:
                with contextlib.suppress(Exception):
                    await ws.close(1000)
    finally:
        up.cancel()
        down.cancel()
        for task in (up, down):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(upstream.close(), 2)
