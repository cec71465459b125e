"""Connection settings for the API: from a kubeconfig file or from command-line flags.

A `Config` names one server and how to authenticate to it and trust it. `load_kubeconfig`
follows kubectl's rules: `$KUBECONFIG` (a `:`-separated list, first definition of a name wins)
or `~/.kube/config`, the `current-context` unless another is named, file paths relative to the
kubeconfig's directory. `load_config` lets flags (`--server`, `--token`) override the file, and
works with flags alone. Secrets are never part of the repr. A token file is re-read at most
once a minute, so a rotated (projected) token is picked up without restarting.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = ["Config", "ConfigError", "TokenAuth", "load_config", "load_kubeconfig"]

TOKEN_FILE_REFRESH = 60.0


class ConfigError(ValueError):
    """The kubeconfig or flags do not describe a usable connection."""


@dataclass(frozen=True)
class Config:
    """Where the API server is and how to talk to it."""

    server: str
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    ca_file: str | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_file: str | None = None
    key_data: bytes | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    namespace: str = "default"
    timeout: float = 30.0

    @classmethod
    def from_flags(cls, server: str, token: str | None = None, *, namespace: str = "default") -> Config:
        """A config from a server URL and an optional bearer token."""
        if not server:
            raise ConfigError("a server URL is required")
        return cls(server=server.rstrip("/"), token=token or None, namespace=namespace)

    @property
    def uses_tls(self) -> bool:
        """Whether the server URL is https."""
        return self.server.lower().startswith("https://")

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should verify the server with: an SSL context, or False when told to skip."""
        if not self.uses_tls:
            return True
        return self.ssl_context()

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings these credentials make: the CA to trust (or none checked), the client certificate
        to present — for the API server, or for another server the same credentials open (a kubelet)."""
        if self.insecure_skip_tls_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_file or self.ca_data:
            ctx = ssl.create_default_context(
                cafile=self.ca_file, cadata=self.ca_data.decode() if self.ca_data else None
            )
        else:
            ctx = ssl.create_default_context()
        self._load_client_cert(ctx)
        return ctx

    def _load_client_cert(self, ctx: ssl.SSLContext) -> None:
        if not (self.cert_file or self.cert_data):
            return
        if not (self.key_file or self.key_data):
            raise ConfigError("a client certificate needs a client key")
        with _as_file(self.cert_file, self.cert_data) as cert, _as_file(self.key_file, self.key_data) as key:
            ctx.load_cert_chain(cert, key)

    def auth(self) -> httpx.Auth | None:
        """Bearer-token authentication, if a token or token file is configured."""
        if self.token or self.token_file:
            return TokenAuth(self.token, self.token_file)
        return None


class TokenAuth(httpx.Auth):
    """Adds `Authorization: Bearer ...`, re-reading a token file at most once a minute."""

    def __init__(self, token: str | None, token_file: str | None) -> None:
        self._token = token
        self._file = token_file
        self._read_at = float("-inf")

    def _current(self) -> str | None:
        if self._file and time.monotonic() - self._read_at >= TOKEN_FILE_REFRESH:
            try:
                self._token = Path(self._file).read_text().strip()
                self._read_at = time.monotonic()
            except OSError as e:
                if self._token is None:
                    raise ConfigError(f"reading token file {self._file}: {e}") from e
        return self._token

    def header(self) -> bytes | None:
        """The `Authorization` header's value (None without a token)."""
        token = self._current()
        return f"Bearer {token}".encode() if token else None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the bearer token on the request."""
        token = self._current()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


@contextlib.contextmanager
def _as_file(path: str | None, data: bytes | None) -> Iterator[str]:
    """A path for PEM data: the given file, or a private temp file removed afterwards."""
    if path:
        yield path
        return
    fd, tmp = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data or b"")
        yield tmp
    finally:
        os.unlink(tmp)


def _default_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _merge(docs: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """Merge kubeconfigs: the first file to define a name or the current-context wins."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path, doc in docs:
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in doc.get(section) or []:
                name = entry.get("name", "")
                merged[section].setdefault(name, (path.parent, entry.get(inner) or {}))
        merged["current-context"] = merged["current-context"] or doc.get("current-context", "")
    return merged


def _b64(value: Any) -> bytes | None:
    return base64.b64decode(value) if value else None


def _path(base: Path, value: Any) -> str | None:
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else base / p)


def load_kubeconfig(path: str | os.PathLike[str] | None = None, context: str | None = None) -> Config:
    """Read the named (or current) context of a kubeconfig: `path`, else $KUBECONFIG, else ~/.kube/config."""
    paths = [Path(path)] if path else _default_paths()
    docs = []
    for p in paths:
        try:
            docs.append((p, yaml.safe_load(p.read_text()) or {}))
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"reading kubeconfig {p}: {e}") from e
    if not docs:
        raise ConfigError(f"no kubeconfig found at {', '.join(map(str, paths))}")
    merged = _merge(docs)
    name = context or merged["current-context"]
    if not name or name not in merged["contexts"]:
        raise ConfigError(f'context "{name}" not found in kubeconfig' if name else "no current-context in kubeconfig")
    _, ctx = merged["contexts"][name]
    return _from_entries(ctx, merged["clusters"].get(ctx.get("cluster")), merged["users"].get(ctx.get("user")))


def _from_entries(
    ctx: Mapping[str, Any],
    cluster_entry: tuple[Path, Mapping[str, Any]] | None,
    user_entry: tuple[Path, Mapping[str, Any]] | None,
) -> Config:
    if cluster_entry is None:
        raise ConfigError(f'cluster "{ctx.get("cluster")}" not found in kubeconfig')
    cbase, cluster = cluster_entry
    ubase, user = user_entry or (cbase, {})
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError("the cluster in the kubeconfig has no server")
    return Config(
        server=server.rstrip("/"),
        token=user.get("token") or None,
        token_file=_path(ubase, user.get("tokenFile")),
        ca_file=_path(cbase, cluster.get("certificate-authority")),
        ca_data=_b64(cluster.get("certificate-authority-data")),
        cert_file=_path(ubase, user.get("client-certificate")),
        cert_data=_b64(user.get("client-certificate-data")),
        key_file=_path(ubase, user.get("client-key")),
        key_data=_b64(user.get("client-key-data")),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
    )


def load_config(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    server: str | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> Config:
    """Flags over kubeconfig, as kubectl does: with `server` alone no kubeconfig is needed."""
    try:
        cfg = load_kubeconfig(kubeconfig, context)
    except ConfigError:
        if not server or kubeconfig or context:
            raise
        cfg = Config.from_flags(server)
    changes: dict[str, Any] = {}
    if server:
        changes["server"] = server.rstrip("/")
    if token:
        changes.update(token=token, token_file=None)
    if namespace:
        changes["namespace"] = namespace
    return replace(cfg, **changes)
