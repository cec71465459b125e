"""How metrics-server dials kubelets, as upstream's `--kubelet-*` flags say: HTTPS, presenting the
credentials of its kubeconfig (its client certificate, or token) and trusting the kubeconfig's CA,
unless `--kubelet-certificate-authority`, `--kubelet-client-certificate`/`--kubelet-client-key` or
`--kubelet-insecure-tls` (no verification of the kubelet's certificate) say otherwise;
`--deprecated-kubelet-completely-insecure` is plain HTTP without credentials, for kubelets that serve
without TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx

from client.config import Config

__all__ = ["IDLE_CONNECTION_TIMEOUT", "KubeletClientOptions", "KubeletClients"]

# as upstream's client-go transport (Go's default idle timeout): a node's connection is kept between scrapes, so a
# scrape every 15 s costs no new TLS handshake (httpx's default keeps 20 connections, for 5 s)
IDLE_CONNECTION_TIMEOUT = 90.0


@dataclass(frozen=True)
class KubeletClientOptions:
    """The `--kubelet-*` flags of metrics-server."""

    insecure_tls: bool = False  # --kubelet-insecure-tls
    certificate_authority: str = ""  # --kubelet-certificate-authority
    client_certificate: str = ""  # --kubelet-client-certificate
    client_key: str = ""  # --kubelet-client-key
    completely_insecure: bool = False  # --deprecated-kubelet-completely-insecure

    @property
    def scheme(self) -> str:
        """`https`, or `http` when completely insecure."""
        return "http" if self.completely_insecure else "https"

    def check(self) -> None:
        """ValueError for flags that do not go together (upstream's words)."""
        if self.certificate_authority and self.insecure_tls:
            raise ValueError("cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls")
        if bool(self.client_key) != bool(self.client_certificate):
            raise ValueError("need both --kubelet-client-key and --kubelet-client-certificate")
        if self.completely_insecure and (self.client_certificate or self.insecure_tls or self.certificate_authority):
            raise ValueError("cannot use --deprecated-kubelet-completely-insecure with other --kubelet TLS flags")

    def client_factory(self, api: Config, timeout: float) -> Callable[[], httpx.AsyncClient]:
        """A maker of clients for the kubelets, from the API connection's credentials and these flags (the TLS
        context and the credentials are loaded once, shared by every client made)."""
        options: dict[str, object] = {
            "trust_env": False,
            "timeout": httpx.Timeout(timeout),
            "follow_redirects": False,
            "limits": httpx.Limits(max_keepalive_connections=1, keepalive_expiry=IDLE_CONNECTION_TIMEOUT),
        }
        if not self.completely_insecure:
            creds = api
            if self.insecure_tls:
                creds = replace(creds, insecure_skip_tls_verify=True, ca_file=None, ca_data=None)
            if self.certificate_authority:
                creds = replace(creds, ca_file=self.certificate_authority, ca_data=None)
            if self.client_certificate:
                creds = replace(
                    creds, cert_file=self.client_certificate, cert_data=None, key_file=self.client_key, key_data=None
                )
            options |= {"verify": creds.ssl_context(), "auth": creds.auth()}
        return lambda: httpx.AsyncClient(**options)  # type: ignore[arg-type]

    def http_client(self, api: Config, timeout: float) -> httpx.AsyncClient:
        """A client for the kubelets, from the API connection's credentials and these flags."""
        return self.client_factory(api, timeout)()


class KubeletClients:
    """One client per kubelet, each keeping its connection between scrapes as Go's transport keeps idle
    connections per host: one httpx pool holding every node's connection does bookkeeping over all of them on
    each request (at 100 nodes, more CPU than the scrapes themselves)."""

    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, url: str) -> httpx.AsyncClient:
        """The client for the kubelet at `url` (`<scheme>://<host>:<port>`)."""
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self._make()
        return client

    async def keep(self, urls: set[str]) -> None:
        """Close the clients of kubelets not in `urls` (their nodes are gone, or moved)."""
        for url in [u for u in self._clients if u not in urls]:
            await self._clients.pop(url).aclose()

    async def aclose(self) -> None:
        """Close every client."""
        await self.keep(set())
