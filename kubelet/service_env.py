"""The Service environment variables of a container (pkg/kubelet/envvars FromServices and the kubelet's
getServiceEnvVarMap): `{SVC}_SERVICE_HOST`, `{SVC}_SERVICE_PORT[_{PORT}]` and the Docker-link ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASTER_SERVICES", "from_services", "service_env", "service_ip_set"]

MASTER_SERVICES = frozenset({"kubernetes"})
"""Services of the default namespace every pod sees, whatever its enableServiceLinks."""


def service_ip_set(service: Mapping[str, Any]) -> bool:
    """Whether the Service has a cluster IP (not headless "None", not empty as an ExternalName's is)."""
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def from_services(services: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The variables of each Service with a cluster IP, in upstream's order (FromServices)."""
    out: list[tuple[str, str]] = []
    for svc in services:
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        if not service_ip_set(svc) or not ports:
            continue
        ip = spec["clusterIP"]
        prefix = _env_name((svc.get("metadata") or {}).get("name", ""))
        out.append((f"{prefix}_SERVICE_HOST", ip))
        out.append((f"{prefix}_SERVICE_PORT", str(ports[0].get("port"))))
        for sp in ports:
            if sp.get("name"):
                out.append((f"{prefix}_SERVICE_PORT_{_env_name(sp['name'])}", str(sp.get("port"))))
        for i, sp in enumerate(ports):
            protocol = sp.get("protocol") or "TCP"
            port = int(sp.get("port") or 0)
            url = f"{protocol.lower()}://{_host_port(ip, port)}"
            if i == 0:
                out.append((f"{prefix}_PORT", url))
            base = f"{prefix}_PORT_{port}_{protocol.upper()}"
            out += [
                (base, url),
                (f"{base}_PROTO", protocol.lower()),
                (f"{base}_PORT", str(port)),
                (f"{base}_ADDR", ip),
            ]
    return out


def service_env(services: Iterable[Mapping[str, Any]], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The Service variables a pod in `namespace` sees: the `kubernetes` Service of the default namespace
    always, and with enableServiceLinks every Service of its own namespace (getServiceEnvVarMap)."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for svc in services:
        if not service_ip_set(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    # sorted by name so the result does not depend on the cache's order (upstream walks a Go map)
    return dict(from_services(chosen[k] for k in sorted(chosen)))
