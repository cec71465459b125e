"""etcd endpoints and client connections: several members, TLS, failover between them.

aetcd speaks to one `host:port` over a plaintext channel. `EtcdEndpoints` parses `--etcd-servers`
(`http://a:2379,https://b:2379,…`) and makes one aetcd client per member, over TLS when the endpoint
is https or client certificates were given (`--etcd-cafile/--etcd-certfile/--etcd-keyfile`).
`EtcdStorage` keeps one current member and moves to the next when a call finds it unreachable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aetcd
import grpc
from aetcd import rpc, watcher

__all__ = ["EtcdEndpoint", "EtcdTLS", "parse_endpoints"]

# gRPC's default 4 MiB receive limit would fail lists (and the cache's relist) past ~3k pods.
_CHANNEL_OPTIONS = {"grpc.max_receive_message_length": 1 << 30, "grpc.keepalive_time_ms": 10_000}


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
    """aetcd's client over a TLS channel when credentials are given (aetcd itself only dials plaintext)."""

    def __init__(self, endpoint: EtcdEndpoint, timeout: float, credentials: grpc.ChannelCredentials | None) -> None:
        super().__init__(host=endpoint.host, port=endpoint.port, timeout=timeout, options=dict(_CHANNEL_OPTIONS))
        self.endpoint = endpoint
        self._credentials = credentials

    @property
    def connected(self) -> bool:
        """Whether the channel and stubs are there (saves the hot path aetcd's connect() coroutine)."""
        return self._connected.is_set()

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
    """An aetcd client for one member: TLS for an https endpoint (the scheme decides, as in etcd's client)."""
    credentials = (tls or EtcdTLS()).credentials() if endpoint.secure else None
    return _Client(endpoint, timeout, credentials)
