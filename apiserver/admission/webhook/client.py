"""Calling one admission webhook over HTTPS (k8s.io/apiserver/pkg/util/webhook's ClientManager and
service resolution): `clientConfig.url` as given, or `clientConfig.service` resolved to one of the
Service's ready endpoints (as `--enable-aggregator-routing`), else its ClusterIP; the server
certificate is verified against `caBundle` (the system roots without one) for the name
`<service>.<namespace>.svc`, as the apiserver does. Transport failures are reported in the words
kube-apiserver's Go client uses (`dial tcp ...: connect: connection refused`, `context deadline
exceeded`, `x509: certificate signed by unknown authority`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
import random
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from apimachinery import errors
from apimachinery.resources import by_plural

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["CallError", "Target", "WebhookClients", "resolve_target"]

_MAX_RESPONSE = 10 << 20
_MAX_CLIENTS = 64
_SERVICES = by_plural("", "services")


class CallError(Exception):
    """The webhook could not be called, or answered something that is not an AdmissionReview
    (upstream's ErrCallingWebhook): `failurePolicy` decides whether that refuses the write."""


@dataclass(frozen=True)
class Target:
    """Where to send the review: the URL connected to, the URL as errors name it, the name the
    certificate must carry, the Host header, and the CA bundle (PEM) to trust."""

    url: str
    shown_url: str
    server_name: str | None = None
    host: str | None = None
    ca_pem: bytes | None = None


def _ca_pem(config: Mapping[str, Any]) -> bytes | None:
    bundle = config.get("caBundle")
    if not bundle:
        return None
    try:
        return base64.b64decode(bundle, validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise CallError(f"could not get REST client: invalid caBundle: {e}") from e


def _join_path(base: str, path: str) -> str:
    return base + (path if path.startswith("/") else "/" + path) if path else base + "/"


async def resolve_target(config: Mapping[str, Any], reg: Registry) -> Target:
    """Where `clientConfig` points: a URL, or a Service's endpoint (ClusterIP when it has none ready)."""
    ca = _ca_pem(config)
    url = config.get("url")
    if isinstance(url, str) and url:
        return Target(url, url, ca_pem=ca)
    svc_ref = config.get("service") if isinstance(config.get("service"), Mapping) else {}
    name, namespace = str(svc_ref.get("name", "")), str(svc_ref.get("namespace", ""))
    port = int(svc_ref.get("port") or 443)
    path = str(svc_ref.get("path") or "")
    dns = f"{name}.{namespace}.svc"
    shown = _join_path(f"https://{dns}:{port}", path)
    assert _SERVICES is not None
    try:
        service = await reg.get(_SERVICES, namespace, name, rv="0")
    except errors.StatusError as e:
        if e.code != 404:
            raise
        try:
            service = await reg.get(_SERVICES, namespace, name)
        except errors.StatusError as e2:
            raise CallError(f'failed to call webhook: Post "{shown}": service "{name}" not found') from e2
    address = await _endpoint(reg, service, port) or _cluster_ip(service, port)
    if address is None:
        raise CallError(f'failed to call webhook: Post "{shown}": no endpoints available for service "{name}"')
    ip, target_port = address
    host = f"[{ip}]" if ":" in ip else ip
    return Target(_join_path(f"https://{host}:{target_port}", path), shown, dns, f"{dns}:{port}", ca)


def _service_port(service: Mapping[str, Any], port: int) -> Mapping[str, Any] | None:
    for p in (service.get("spec") or {}).get("ports") or []:
        if isinstance(p, Mapping) and p.get("port") == port:
            return p
    return None


def _cluster_ip(service: Mapping[str, Any], port: int) -> tuple[str, int] | None:
    ip = (service.get("spec") or {}).get("clusterIP")
    if not ip or ip == "None" or _service_port(service, port) is None:
        return None
    return str(ip), port


async def _endpoint(reg: Registry, service: Mapping[str, Any], port: int) -> tuple[str, int] | None:
    """A random ready endpoint address and port of the service port (EndpointSlices, then Endpoints)."""
    svc_port = _service_port(service, port)
    if svc_port is None:
        return None
    port_name = svc_port.get("name") or ""
    meta = service.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    choices: list[tuple[str, int]] = []
    for stored in await reg.snapshot("endpointslices"):
        s = stored.obj
        m = s.get("metadata") or {}
        if m.get("namespace") != namespace or (m.get("labels") or {}).get("kubernetes.io/service-name") != name:
            continue
        ports = [p for p in s.get("ports") or [] if isinstance(p, Mapping) and (p.get("name") or "") == port_name]
        if not ports or not isinstance(ports[0].get("port"), int):
            continue
        for ep in s.get("endpoints") or []:
            if isinstance(ep, Mapping) and (ep.get("conditions") or {}).get("ready", True) is not False:
                choices += [(str(a), ports[0]["port"]) for a in ep.get("addresses") or []]
    if not choices:
        for stored in await reg.snapshot("endpoints"):
            e = stored.obj
            m = e.get("metadata") or {}
            if m.get("namespace") != namespace or m.get("name") != name:
                continue
            for subset in e.get("subsets") or []:
                ports = [p for p in subset.get("ports") or [] if (p.get("name") or "") == port_name]
                if ports and isinstance(ports[0].get("port"), int):
                    choices += [(str(a.get("ip")), ports[0]["port"]) for a in subset.get("addresses") or []]
    return random.choice(choices) if choices else None


def _go_reason(exc: BaseException, target: Target) -> str:
    """The transport failure as Go's net/http and crypto/tls phrase it."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            if cause.verify_code in (7, 18, 19, 20, 21):  # untrusted issuer (or a same-named one)
                return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            if cause.verify_code == 62:
                return f"tls: failed to verify certificate: x509: certificate is not valid for {target.server_name}"
            return f"tls: failed to verify certificate: x509: {cause.verify_message}"
        if isinstance(cause, ConnectionRefusedError):
            u = urlsplit(target.url)
            return f"dial tcp {u.hostname}:{u.port or 443}: connect: connection refused"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return "context deadline exceeded"
    if isinstance(exc, httpx.ConnectError):
        u = urlsplit(target.url)
        return f"dial tcp {u.hostname}:{u.port or 443}: connect: {exc or 'connection failed'}"
    return str(exc) or type(exc).__name__


class WebhookClients:
    """HTTPS clients per trusted CA bundle (kept, so connections are reused), bounded in number."""

    def __init__(self) -> None:
        self._clients: OrderedDict[bytes, httpx.AsyncClient] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def _client(self, ca_pem: bytes | None) -> httpx.AsyncClient:
        key = hashlib.sha256(ca_pem or b"").digest()
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        if ca_pem:
            try:
                context = ssl.create_default_context(cadata=ca_pem.decode("ascii", "replace"))
            except (ssl.SSLError, ValueError) as e:
                raise CallError(f"could not get REST client: unable to load root certificates: {e}") from e
        else:
            context = ssl.create_default_context()
        client = httpx.AsyncClient(verify=context, limits=httpx.Limits(max_connections=64, max_keepalive_connections=8))
        self._clients[key] = client
        while len(self._clients) > _MAX_CLIENTS:
            _key, old = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    async def aclose(self) -> None:
        """Close every client (at shutdown)."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()

    async def post(self, target: Target, review: dict[str, Any], timeout: float) -> dict[str, Any]:
        """POST the AdmissionReview, return the decoded answer; CallError on any failure."""
        seconds = math.ceil(timeout)
        url = f"{target.url}?timeout={seconds}s"
        shown = f"{target.shown_url}?timeout={seconds}s"
        headers = {"Content-Type": "application/json", "Accept": "application/json, */*"}
        if target.host:
            headers["Host"] = target.host
        extensions = {"sni_hostname": target.server_name} if target.server_name else {}
        client = self._client(target.ca_pem)
        try:
            response = await client.post(
                url,
                content=orjson.dumps(review),
                headers=headers,
                timeout=httpx.Timeout(timeout),
                extensions=extensions,
            )
        except (httpx.HTTPError, OSError, ssl.SSLError) as e:
            raise CallError(f'failed to call webhook: Post "{shown}": {_go_reason(e, target)}') from e
        body = response.content[:_MAX_RESPONSE]
        if not 200 <= response.status_code < 300:
            raise CallError(f"failed to call webhook: {_status_message(response.status_code, body)}")
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise CallError(f"failed to call webhook: {e}") from e
        if not isinstance(answer, dict):
            raise CallError("failed to call webhook: the response is not a JSON object")
        return answer


def _status_message(code: int, body: bytes) -> str:
    """A non-2xx answer as client-go reports it: the Status's message, else a generic text."""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status" and status.get("message"):
        return str(status["message"])
    text = body.decode("utf-8", "replace").strip()
    return errors.generic_server_response(code, "", "", text).message
