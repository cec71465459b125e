"""etcd endpoints and client connections: several members, TLS, failover between them.

`parse_endpoints` reads `--etcd-servers` (`http://a:2379,https://b:2379,…`); `new_client` makes the client
of one member, over TLS when the endpoint is https (`--etcd-cafile/--etcd-certfile/--etcd-keyfile`).
A member's client is aetcd's (leases, compaction, puts: the rare calls), with `fast`, a lean gRPC channel
(`etcdgrpc`) for the calls every request makes: Range, Txn and Watch. `EtcdStorage` keeps one current
member and moves to the next when a call finds it unreachable.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aetcd
import grpc
from aetcd import rpc, watcher

from apiserver.etcdgrpc import GrpcChannel

__all__ = ["EtcdEndpoint", "EtcdTLS", "parse_endpoints"]

# gRPC's default 4 MiB receive limit would fail lists (and the cache's relist) past ~3k pods.
MAX_MESSAGE = 1 << 30
_CHANNEL_OPTIONS = {"grpc.max_receive_message_length": MAX_MESSAGE, "grpc.keepalive_time_ms": 10_000}


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS material for etcd (upstream's --etcd-cafile, --etcd-certfile, --etcd-keyfile)."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials from the files."""
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("--etcd-certfile and --etcd-keyfile go together")
        ca = Path(self.ca_file).read_bytes() if self.ca_file else None
        cert = Path(self.cert_file).read_bytes() if self.cert_file else None
        key = Path(self.key_file).read_bytes() if self.key_file else None
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def ssl_context(self) -> ssl.SSLContext:
        """The same material as a TLS context for `etcdgrpc` (HTTP/2 by ALPN, the server's name checked)."""
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("--etcd-certfile and --etcd-keyfile go together")
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        context.set_alpn_protocols(["h2"])
        return context

    @property
    def configured(self) -> bool:
        """Whether any file was given."""
        return bool(self.ca_file or self.cert_file or self.key_file)


@dataclass(frozen=True)
class EtcdEndpoint:
    """One etcd member's client URL."""

    host: str
    port: int
    secure: bool

    def __str__(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"


def parse_endpoints(servers: str) -> list[EtcdEndpoint]:
    """`http://a:2379,https://b:2379` (a bare `host:port` is http) → endpoints; ValueError when malformed."""
    out = []
    for raw in servers.split(","):
        raw = raw.strip()
        if not raw:
            continue
        url = urlsplit(raw if "://" in raw else f"http://{raw}")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"etcd server {raw!r} is not an http(s)://host:port URL")
        try:
            port = url.port or 2379
        except ValueError as e:
            raise ValueError(f"etcd server {raw!r}: {e}") from e
        out.append(EtcdEndpoint(url.hostname, port, url.scheme == "https"))
    if not out:
        raise ValueError("no etcd server given")
    return out


class _Client(aetcd.Client):
    """aetcd's client over a TLS channel when credentials are given (aetcd itself only dials plaintext), with
    `fast`, the lean channel of the hot calls."""

    def __init__(self, endpoint: EtcdEndpoint, timeout: float, tls: EtcdTLS | None) -> None:
        super().__init__(host=endpoint.host, port=endpoint.port, timeout=timeout, options=dict(_CHANNEL_OPTIONS))
        self.endpoint = endpoint
        tls = tls or EtcdTLS()
        self._credentials = tls.credentials() if endpoint.secure else None
        context = tls.ssl_context() if endpoint.secure else None
        self.fast = GrpcChannel(endpoint.host, endpoint.port, ssl_context=context, max_message=MAX_MESSAGE)

    async def close(self) -> None:
        """Close both channels."""
        try:
            await self.fast.close()
        finally:
            await super().close()

    async def connect(self) -> None:
        """Open the channel (TLS when credentials were given) and the stubs."""
        if self._credentials is None:
            await super().connect()
            return
        if self._connected.is_set():
            return
        if self._is_connecting:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        try:
            self._is_connecting = True
            target = f"{self._host}:{self._port}"
            self.channel = rpc.secure_channel(target, self._credentials, options=list(self._options.items()))
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout, metadata=None)
            self._connected.set()
        finally:
            self._is_connecting = False


def new_client(endpoint: EtcdEndpoint, timeout: float, tls: EtcdTLS | None) -> Any:
    """The client of one member: TLS for an https endpoint (the scheme decides, as in etcd's client)."""
    return _Client(endpoint, timeout, tls)
