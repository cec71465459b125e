"""The routing table built from the Ingresses this controller serves (pure: no I/O).

Matching follows the Ingress specification (networking.k8s.io/v1):
- a request's Host (lower-cased, without port or trailing dot) selects a server: a rule host that
  equals it, else a wildcard host `*.example.com` whose suffix it shares with exactly one more
  label in front (`a.example.com`, not `a.b.example.com` nor `example.com`), else the catch-all
  server made of the rules without a host;
- within a server, `Exact` paths match the request path exactly (case-sensitive) and `Prefix`
  paths match element-wise on `/`-separated elements, ignoring a trailing slash (`/foo` and
  `/foo/` both match `/foo`, `/foo/`, `/foo/bar`, never `/foobar`); the longest matching path
  wins and at equal length `Exact` beats `Prefix`. `ImplementationSpecific` (or a missing
  pathType) is treated as `Prefix`;
- a request that matches no path goes to a `defaultBackend`: the one of the (oldest) Ingress that
  defined the selected host with one, else the cluster-wide one (the oldest Ingress with a
  `defaultBackend` and no rules, else the oldest with any `defaultBackend`); with none, no match
  (the controller answers 404, as ingress-nginx's default backend does).
Conflicts (the same host and path in two Ingresses) go to the oldest Ingress, as in ingress-nginx.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Backend",
    "RouteTable",
    "normalize_host",
    "normalize_path",
    "prefix_candidates",
]

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Backend:
    """Where a matched request goes: a Service port in the Ingress's namespace (`service` is empty
    for a `resource` backend, which this controller cannot serve)."""

    namespace: str
    ingress: str
    service: str
    port: int | str


@dataclass
class _Server:
    """The paths of one host (or of the catch-all server) and its fallback backend."""

    exact: dict[str, Backend] = field(default_factory=dict)
    prefix: dict[str, Backend] = field(default_factory=dict)
    fallback: Backend | None = None
    has_fallback: bool = False

    def match(self, path: str) -> Backend | None:
        """The backend of the best path for a normalized request path, if any path matches."""
        hit = self.exact.get(path)
        if hit is not None:  # an Exact match is at least as long as any Prefix match of the same path
            return hit
        if self.prefix:
            for candidate in prefix_candidates(path):
                hit = self.prefix.get(candidate)
                if hit is not None:
                    return hit
        return None


def normalize_host(host: str) -> str:
    """The Host header as rules compare it: lower case, without port, brackets or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def normalize_path(path: str) -> str:
    """The request path as matched: `.` and `..` resolved and repeated slashes merged (as nginx
    does before choosing a location); a trailing slash is kept."""
    if not path.startswith("/"):
        path = "/" + path
    if "//" not in path and "/." not in path:
        return path
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # normpath keeps a leading "//"
        norm = "/" + norm.lstrip("/")
    if path.endswith("/") and norm != "/":
        norm += "/"
    return norm


def _prefix_key(path: str) -> str:
    """A Prefix path as stored: without its trailing slash (`/foo/` is the prefix `/foo`)."""
    stripped = path.rstrip("/")
    return stripped or "/"


def prefix_candidates(path: str) -> Iterable[str]:
    """Every Prefix key that matches a request path, longest first: `/a/b/` → `/a/b`, `/a`, `/`."""
    cur = _prefix_key(path)
    while True:
        yield cur
        if cur == "/":
            return
        cur = cur.rpartition("/")[0] or "/"


def _backend(spec: Any, namespace: str, ingress: str) -> Backend | None:
    """The Backend of an IngressBackend, or None when it names neither a service nor a resource."""
    if not isinstance(spec, Mapping):
        return None
    svc = spec.get("service")
    if isinstance(svc, Mapping) and svc.get("name"):
        port = svc.get("port")
        ref: int | str = 0
        if isinstance(port, Mapping):
            ref = port.get("number") or port.get("name") or 0
        return Backend(namespace, ingress, str(svc["name"]), ref)
    if isinstance(spec.get("resource"), Mapping):
        return Backend(namespace, ingress, "", 0)
    return None


def _spec(ing: Obj) -> Obj:
    spec = ing.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _age_key(ing: Obj) -> tuple[str, str, str]:
    meta = ing.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class RouteTable:
    """Hosts and paths → backends, for a set of Ingresses; `match(host, path)` routes a request."""

    def __init__(self) -> None:
        self.hosts: dict[str, _Server] = {}
        self.wildcards: dict[str, _Server] = {}  # "example.com" for the rule host "*.example.com"
        self.catch_all = _Server()
        self.default: Backend | None = None

    @classmethod
    def build(cls, ingresses: Iterable[Obj]) -> RouteTable:
        """The table for these Ingresses (their order does not matter: the oldest wins conflicts)."""
        table = cls()
        ordered = sorted(ingresses, key=_age_key)
        for ing in ordered:
            table._add(ing)
        table._set_default(ordered)
        return table

    def _server(self, host: str) -> _Server:
        if not host:
            return self.catch_all
        if host.startswith("*."):
            return self.wildcards.setdefault(host[2:], _Server())
        return self.hosts.setdefault(host, _Server())

    def _add(self, ing: Obj) -> None:
        meta = ing.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        spec = _spec(ing)
        default = _backend(spec.get("defaultBackend"), namespace, name)
        rules = spec.get("rules")
        for rule in rules if isinstance(rules, list) else ():
            if not isinstance(rule, Mapping):
                continue
            host = str(rule.get("host") or "").lower()
            server = self._server(host)
            if host and default is not None and not server.has_fallback:
                server.fallback, server.has_fallback = default, True
            http = rule.get("http")
            paths = http.get("paths") if isinstance(http, Mapping) else None
            for p in paths if isinstance(paths, list) else ():
                if not isinstance(p, Mapping):
                    continue
                backend = _backend(p.get("backend"), namespace, name)
                path = str(p.get("path") or "/")
                if backend is None or not path.startswith("/"):
                    continue
                if p.get("pathType") == "Exact":
                    server.exact.setdefault(path, backend)
                else:  # Prefix, ImplementationSpecific (and a missing pathType)
                    server.prefix.setdefault(_prefix_key(path), backend)

    def _set_default(self, ordered: list[Obj]) -> None:
        with_default = [i for i in ordered if _spec(i).get("defaultBackend")]
        ruleless = [i for i in with_default if not _spec(i).get("rules")]
        for ing in ruleless or with_default:
            meta = ing.get("metadata") or {}
            backend = _backend(_spec(ing)["defaultBackend"], str(meta.get("namespace") or ""), meta.get("name", ""))
            if backend is not None:
                self.default = backend
                return

    def server_for(self, host: str) -> _Server:
        """The server a (normalized) host selects: exact host, else wildcard, else the catch-all."""
        server = self.hosts.get(host)
        if server is not None:
            return server
        label, dot, suffix = host.partition(".")
        if dot and label:
            server = self.wildcards.get(suffix)
            if server is not None:
                return server
        return self.catch_all

    def match(self, host: str, path: str) -> Backend | None:
        """The backend for a request's Host header and path, or None (answer 404)."""
        server = self.server_for(normalize_host(host))
        hit = server.match(normalize_path(path))
        if hit is not None:
            return hit
        return server.fallback if server.has_fallback else self.default

    def _servers(self) -> list[_Server]:
        return [*self.hosts.values(), *self.wildcards.values(), self.catch_all]

    def backends(self) -> set[Backend]:
        """Every backend the table can route to."""
        out: set[Backend] = set()
        for s in self._servers():
            out.update(s.exact.values(), s.prefix.values())
            if s.fallback is not None:
                out.add(s.fallback)
        if self.default is not None:
            out.add(self.default)
        return out

    def __len__(self) -> int:
        return sum(len(s.exact) + len(s.prefix) for s in self._servers())
