"""TLS listeners that tell the app which client certificate a connection presented: the apiserver's
secure port and the kubelet's servers (each runs its own uvicorn servers). Their HTTP connections are
`apimachinery/httpserver.py`'s protocol, which adds the extension below (`tls_extension`); their WebSocket
connections are `TLSWebSocketProtocol`, which adds the same.

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

__all__ = [
    "IDLE_TIMEOUT",
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
    the TLS extension (HTTP's is `apimachinery/httpserver.py`'s, chosen by the server), and — with a
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
