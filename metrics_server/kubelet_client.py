"""How metrics-server dials kubelets, as upstream's `--kubelet-*` flags say: HTTPS, presenting the
credentials of its kubeconfig (its client certificate, or token) and trusting the kubeconfig's CA,
unless `--kubelet-certificate-authority`, `--kubelet-client-certificate`/`--kubelet-client-key` or
`--kubelet-insecure-tls` (no verification of the kubelet's certificate) say otherwise;
`--deprecated-kubelet-completely-insecure` is plain HTTP without credentials, for kubelets that serve
without TLS.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx

from client.config import Config
from client.transport import KeepAliveTransport, origin_of

__all__ = ["KubeletClientOptions", "KubeletClients"]


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
        context and the credentials are loaded once, shared by every client made). Each client's transport keeps
        one idle connection per kubelet (`client.transport.KeepAliveTransport`), as Go's transport keeps idle
        connections per host: httpx's own pool keeps 20 for 5 s and walks all of them on every request."""
        options: dict[str, object] = {"trust_env": False, "timeout": httpx.Timeout(timeout), "follow_redirects": False}
        tls: ssl.SSLContext | None = None
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
            tls = creds.ssl_context()
            options["auth"] = creds.auth()
        return lambda: httpx.AsyncClient(
            transport=KeepAliveTransport(tls, max_idle_connections=1),
            **options,  # type: ignore[arg-type]
        )

    def http_client(self, api: Config, timeout: float) -> httpx.AsyncClient:
        """A client for the kubelets, from the API connection's credentials and these flags."""
        return self.client_factory(api, timeout)()


class KubeletClients:
    """The kubelets' client: one idle connection kept per kubelet between scrapes, and closed once its node is gone."""

    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._client = make()

    def client(self, url: str) -> httpx.AsyncClient:
        """The client for the kubelet at `url` (`<scheme>://<host>:<port>`)."""
        return self._client

    async def keep(self, urls: set[str]) -> None:
        """Close the kept connections of kubelets not in `urls` (their nodes are gone, or moved)."""
        transport = self._client._transport  # httpx keeps the transport it was given here
        if isinstance(transport, KeepAliveTransport):
            transport.close_idle_except({origin_of(httpx.URL(u)) for u in urls})

    async def aclose(self) -> None:
        """Close every connection."""
        await self._client.aclose()
