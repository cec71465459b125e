"""TLS listeners that tell the app which client certificate a connection presented: the apiserver's
secure port and the kubelet's server (each runs its own uvicorn servers). The kubelet's HTTP connections are
`TLSHttpProtocol`; the apiserver's are its own protocol (`apiserver/httpserver.py`), which adds the same
extension (`tls_extension`); both take the WebSocket protocol below.

uvicorn does not tell the app which client certificate a TLS connection presented. These protocols add
it as the ASGI TLS extension (`scope["extensions"]["tls"]`: `client_cert_chain` as PEM strings,
`client_cert_name`, `tls_version`), read once per connection from the transport's `ssl_object`;
`peer_certificate(scope)` gives the app the DER of the client's certificate.

`TLSWebSocketProtocol` also takes any Sec-WebSocket-Protocol the client offers and leaves the choice to
the app: kubectl's port-forward asks for `SPDY/3.1+portforward.k8s.io`, which is not an RFC 7230 token
(websockets' own check refuses it with a 400), and Go's servers accept it.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from apimachinery.upgrade import UpgradableHttpProtocol

__all__ = [
    "IDLE_TIMEOUT",
    "TLSHttpProtocol",
    "TLSWebSocketProtocol",
    "peer_certificate",
    "tls_extension",
    "tls_options",
]

# How long a server keeps an idle kept-alive connection open, as upstream's apiserver and kubelet
# (`IdleTimeout: 90 * time.Second`, the keep-alive of Go's default transport; uvicorn's default is 5 s): a
# client that pauses longer than 5 s between requests (a Lease renewal every 10 s, metrics-server's scrapes
# every 15 s) then reuses its connection instead of paying a TLS handshake each time.
IDLE_TIMEOUT = 90

_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection; None when it is not TLS."""
    obj = transport.get_extra_info("ssl_object")
    if obj is None:
        return None
    der = obj.getpeercert(binary_form=True)
    name = None
    if der:
        subject = obj.getpeercert().get("subject") or ()  # verified against the client CA by now
        name = ",".join("+".join(f"{k}={v}" for k, v in rdn) for rdn in reversed(subject)) or None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(obj.version() or ""),
        "cipher_suite": None,
    }


def peer_certificate(scope: dict[str, Any]) -> bytes | None:
    """The DER of the client certificate the request's TLS connection presented, if any."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls or not tls.get("client_cert_chain"):
        return None
    return _der_of(tls["client_cert_chain"][0])


@functools.lru_cache(maxsize=256)
def _der_of(pem: str) -> bytes:
    # every request of a connection hands in the same PEM (one str per connection, its hash kept), and a
    # client's connections the same text: decoded once, not base64-decoded on every request
    return ssl.PEM_cert_to_DER_cert(pem)


class _OneWriteResponses:
    """The transport as one request's response cycle sees it: a response of known length goes out
    as one write (head and body together) instead of uvicorn's two — one send instead of two (on TLS,
    one record too). Everything but write and close goes straight to the real transport."""

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle: Any = cycle  # until the head is written (then dropped: the cycle holds this as its transport)
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        """Hold the head of a fixed-length response; send it with the first body bytes."""
        cycle = self._cycle
        if self._held is not None:
            data, self._held = self._held + data, None
        elif cycle is not None and cycle.response_started:
            self._cycle = None  # this write is the status line and headers
            fixed = cycle.chunked_encoding is False and cycle.expected_content_length > 0
            if fixed and cycle.scope["method"] != "HEAD":
                self._held = data
                return
        self._transport.write(data)

    def close(self) -> None:
        """Send what is held, then close."""
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TLSHttpProtocol(UpgradableHttpProtocol):
    """uvicorn's httptools protocol, adding the TLS extension to every request's scope (on TLS); each
    response of known length is written at once (`_OneWriteResponses`). Non-WebSocket upgrades (SPDY)
    are handed to the app (`apimachinery/upgrade.py`)."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Remember the connection's TLS facts."""
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        """A new request: its scope gets the connection's TLS extension."""
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[typeddict-unknown-key]

    def on_headers_complete(self) -> None:
        """The new request's response cycle writes through `_OneWriteResponses`."""
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _OneWriteResponses(self.transport, self.cycle)  # type: ignore[assignment]


class TLSWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (exec, attach, port-forward), adding the TLS extension to the scope
    (on TLS connections) and leaving subprotocols to the app."""

    _tls: dict[str, Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the scope lists what the client offered and the app's accept names the answer (uvicorn does
        # both); websockets would otherwise parse the header as tokens and fail the handshake first
        self.conn.process_subprotocol = lambda _headers: None  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the connection's TLS facts."""
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def handle_connect(self, event: Any) -> None:
        """Build the scope, then add the extension before the app's task first runs."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and self._tls is not None:
            scope["extensions"]["tls"] = self._tls


def tls_options(cert_file: str, key_file: str, client_ca_file: str = "") -> dict[str, Any]:
    """uvicorn.Config settings of a TLS listener: its certificate and key, the WebSocket protocol that adds
    the TLS extension (HTTP's is `TLSHttpProtocol` or a subclass, chosen by the server), and — with a
    client CA — client certificates asked for (not required: a request without one may still
    authenticate with a token, or be anonymous) and verified against that CA."""
    options: dict[str, Any] = {
        "ssl_certfile": cert_file,
        "ssl_keyfile": key_file,
        "ws": TLSWebSocketProtocol,
    }
    if client_ca_file:
        options |= {"ssl_ca_certs": client_ca_file, "ssl_cert_reqs": ssl.CERT_OPTIONAL}
    return options
