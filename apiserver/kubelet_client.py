"""How the apiserver reaches kubelets for pods/log and pods/exec (kube-apiserver's `--kubelet-*` flags,
upstream's pkg/kubelet/client).

With `--kubelet-client-certificate`/`--kubelet-client-key` (kubeadm's apiserver-kubelet-client) or
`--kubelet-certificate-authority` the kubelet is dialled over HTTPS (`wss://` for exec), presenting
that client certificate; its serving certificate is verified against the authority when one is given
and, as upstream, not verified otherwise. Without any of them it is plain HTTP, for kubelets that
serve without TLS.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "KubeletClient", "KubeletClientConfig"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class KubeletClientConfig:
    """The `--kubelet-*` flags."""

    client_certificate: str = ""  # --kubelet-client-certificate
    client_key: str = ""  # --kubelet-client-key
    certificate_authority: str = ""  # --kubelet-certificate-authority

    @property
    def uses_tls(self) -> bool:
        """Whether kubelets are dialled over TLS."""
        return bool(self.client_certificate or self.certificate_authority)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS settings of connections to kubelets; None for plain HTTP. ValueError when the files do not do."""
        if not self.uses_tls:
            return None
        if bool(self.client_certificate) != bool(self.client_key):
            raise ValueError("--kubelet-client-certificate and --kubelet-client-key go together")
        try:
            if self.certificate_authority:
                ctx = ssl.create_default_context(cafile=self.certificate_authority)
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self.client_certificate:
                ctx.load_cert_chain(self.client_certificate, self.client_key)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"loading the kubelet client TLS files: {e}") from e
        return ctx


class KubeletClient:
    """The apiserver's side of its connections to kubelets: their URLs, TLS and one pooled HTTP client."""

    def __init__(self, config: KubeletClientConfig | None = None) -> None:
        self.config = config or KubeletClientConfig()
        self.ssl = self.config.ssl_context()
        self._http: httpx.AsyncClient | None = None

    def url(self, host: str, port: int, path: str, *, websocket: bool = False) -> str:
        """`http(s)://host:port/path` (`ws(s)://` for a WebSocket) of a kubelet."""
        scheme = "ws" if websocket else "http"
        if self.ssl is not None:
            scheme += "s"
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"{scheme}://{where}{path}"

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client of kubelet requests (logs)."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                trust_env=False,
                follow_redirects=False,
                verify=self.ssl if self.ssl is not None else True,
            )
        return self._http

    async def aclose(self) -> None:
        """Close pooled connections."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
