"""How metrics-server dials kubelets, as upstream's `--kubelet-*` flags say: HTTPS, presenting the
credentials of its kubeconfig (its client certificate, or token) and trusting the kubeconfig's CA,
unless `--kubelet-certificate-authority`, `--kubelet-client-certificate`/`--kubelet-client-key` or
`--kubelet-insecure-tls` (no verification of the kubelet's certificate) say otherwise;
`--deprecated-kubelet-completely-insecure` is plain HTTP without credentials, for kubelets that serve
without TLS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

from client.config import Config

__all__ = ["KubeletClientOptions"]


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

    def http_client(self, api: Config, timeout: float) -> httpx.AsyncClient:
        """The client scrapes go through, from the API connection's credentials and these flags."""
        options: dict[str, object] = {
            "trust_env": False,
            "timeout": httpx.Timeout(timeout),
            "follow_redirects": False,
        }
        if self.completely_insecure:
            return httpx.AsyncClient(**options)  # type: ignore[arg-type]
        creds = api
        if self.insecure_tls:
            creds = replace(creds, insecure_skip_tls_verify=True, ca_file=None, ca_data=None)
        if self.certificate_authority:
            creds = replace(creds, ca_file=self.certificate_authority, ca_data=None)
        if self.client_certificate:
            creds = replace(
                creds, cert_file=self.client_certificate, cert_data=None, key_file=self.client_key, key_data=None
            )
        return httpx.AsyncClient(verify=creds.ssl_context(), auth=creds.auth(), **options)  # type: ignore[arg-type]
