"""Serving the app on its ports: the insecure port (plain HTTP, meant for 127.0.0.1) and the secure port
(TLS, client certificates), as two uvicorn servers in one process on the same app, sharing one lifespan.

uvicorn does not tell the app which client certificate a TLS connection presented. The secure port's
protocols add it as the ASGI TLS extension (`scope["extensions"]["tls"]`: `client_cert_chain` as PEM
strings, `client_cert_name`, `tls_version`), read once per connection from the transport's
`ssl_object`; `peer_certificate(scope)` gives the app the DER of the client's certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.lifespan.on import LifespanOn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["Listener", "TLSFiles", "TLSHttpProtocol", "TLSWebSocketProtocol", "peer_certificate", "serve"]

log = logging.getLogger("apiserver")

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
    return ssl.PEM_cert_to_DER_cert(tls["client_cert_chain"][0])


class TLSHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, adding the TLS extension to every request's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Remember the connection's TLS facts."""
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        """Start a request's scope with the TLS extension in it."""
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[typeddict-unknown-key]


class TLSWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (exec, attach), adding the TLS extension to the scope."""

    _tls: dict[str, Any] | None = None

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


@dataclass(frozen=True)
class TLSFiles:
    """The secure port's certificate, key and (optional) client CA."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


@dataclass(frozen=True)
class Listener:
    """One port the app is served on; with `tls`, the secure port."""

    host: str
    port: int
    tls: TLSFiles | None = None


class _Server(uvicorn.Server):
    """One listener's uvicorn server; signals are handled once for all of them, by `serve`."""

    def install_signal_handlers(self) -> None:
        return

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


def _config(app: Any, listener: Listener) -> uvicorn.Config:
    kwargs: dict[str, Any] = {}
    if listener.tls is not None:
        kwargs = {
            "ssl_certfile": listener.tls.cert_file,
            "ssl_keyfile": listener.tls.key_file,
            "http": TLSHttpProtocol,
            "ws": TLSWebSocketProtocol,
        }
        if listener.tls.client_ca_file:
            kwargs |= {"ssl_ca_certs": listener.tls.client_ca_file, "ssl_cert_reqs": ssl.CERT_OPTIONAL}
    return uvicorn.Config(
        app,
        host=listener.host,
        port=listener.port,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
        **kwargs,
    )


async def _serve(app: Any, listeners: Sequence[Listener], on_signal: Callable[[], None]) -> int:
    lifespan = LifespanOn(uvicorn.Config(app, lifespan="on", log_config=None))
    await lifespan.startup()
    if lifespan.should_exit:
        return 3
    servers = [_Server(_config(app, listener)) for listener in listeners]

    def stop(sig: signal.Signals) -> None:
        if any(s.should_exit for s in servers) and sig == signal.SIGINT:
            for s in servers:
                s.force_exit = True
            return
        on_signal()
        for s in servers:
            s.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    try:
        results = await asyncio.gather(*(s.serve() for s in servers), return_exceptions=True)
    finally:
        for s in servers:
            s.should_exit = True
        await lifespan.shutdown()
    failed = [r for r in results if isinstance(r, BaseException)]
    for r in failed:
        if not isinstance(r, SystemExit):
            log.error("serving failed", exc_info=r)
    return 1 if failed else 0


def serve(app: Any, listeners: Sequence[Listener], on_signal: Callable[[], None]) -> None:
    """Serve `app` on every listener until SIGTERM/SIGINT (then `on_signal()` runs first); exits 0 after
    a graceful stop, non-zero when a port cannot be bound or the app fails to start."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        code = runner.run(_serve(app, listeners, on_signal))
    sys.exit(code)
