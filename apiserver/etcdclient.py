"""etcd endpoints and client connections: several members, TLS, failover between them.

`parse_endpoints` reads `--etcd-servers` (`http://a:2379,https://b:2379,…`); `EtcdClient` is the client
of one member, over TLS when the endpoint is https (`--etcd-cafile/--etcd-certfile/--etcd-keyfile`): one
`etcdgrpc` channel that carries every call. `EtcdStorage` keeps one current member and moves to the next
when a call finds it unreachable.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from apiserver.etcdgrpc import GrpcChannel

__all__ = ["EtcdClient", "EtcdEndpoint", "EtcdTLS", "parse_endpoints"]

# gRPC's usual 4 MiB receive limit would fail lists (and the cache's relist) past ~3k pods.
MAX_MESSAGE = 1 << 30


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS material for etcd (upstream's --etcd-cafile, --etcd-certfile, --etcd-keyfile)."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context from the files (HTTP/2 by ALPN, the server's name checked; no CA file: the system's)."""
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


class EtcdClient:
    """The client of one etcd member: its endpoint and the gRPC channel every call goes over."""

    def __init__(self, endpoint: EtcdEndpoint, tls: EtcdTLS | None) -> None:
        self.endpoint = endpoint
        context = (tls or EtcdTLS()).ssl_context() if endpoint.secure else None
        self.channel = GrpcChannel(endpoint.host, endpoint.port, ssl_context=context, max_message=MAX_MESSAGE)

    async def close(self) -> None:
        """Close the channel; calls still open end as unavailable."""
        await self.channel.close()
