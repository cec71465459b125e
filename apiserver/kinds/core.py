"""Strategies of the core kinds that are not pods or workloads."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import random
import re
from typing import TYPE_CHECKING, Any, ClassVar

from apimachinery import errors, validation
from apimachinery.errors import Cause, StatusError
from apiserver.kinds.podspec import default_claim_spec
from apiserver.strategy import Strategy

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = [
    "ConfigMapStrategy",
    "EndpointsStrategy",
    "NamespaceStrategy",
    "NodeStrategy",
    "PersistentVolumeClaimStrategy",
    "SecretStrategy",
    "ServiceStrategy",
]

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _key_causes(data: dict[str, Any] | None, field: str) -> list[Cause]:
    causes = []
    for key in data or {}:
        if not _CONFIG_KEY.match(key) or len(key) > 253:
            causes.append(
                Cause(
                    f"{field}[{key}]",
                    f'Invalid value: "{key}": a valid config key '
                    "must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')",
                )
            )
    return causes


class CreateOnUpdateStrategy(Strategy):
    """Kinds whose PUT creates a missing object (Endpoints, Leases, Events)."""

    allow_create_on_update = True


class NamespaceStrategy(Strategy):
    """Namespaces: the `kubernetes` finalizer, Active phase, the metadata.name label."""

    def check_delete(self, obj: dict[str, Any]) -> None:
        """NamespaceLifecycle admission: the system namespaces stay."""
        name = (obj.get("metadata") or {}).get("name", "")
        if name in ("default", "kube-system", "kube-public"):
            raise errors.forbidden("namespaces", name, "this namespace may not be deleted")

    name_validator = staticmethod(validation.is_dns1123_label)

    def default(self, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        if isinstance(meta.get("name"), str):
            labels = meta.get("labels") or {}
            labels["kubernetes.io/metadata.name"] = meta["name"]
            meta["labels"] = labels

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        super().prepare_for_create(obj)
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"phase": "Active"}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        super().prepare_for_update(new, old)
        new["spec"] = old.get("spec", {})  # spec.finalizers change only through /finalize

    def deletion_pending(self, obj: dict[str, Any]) -> bool:
        """The namespace controller must empty the namespace and clear spec.finalizers."""
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: dict[str, Any]) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"


class NodeStrategy(Strategy):
    """Nodes: cluster-scoped; status written by the kubelet through /status."""

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return dict(obj.get("status") or {})  # a registering kubelet sends its status

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_NodeStatus: allocatable is the capacity when the kubelet did not say."""
        status = obj.get("status")
        if isinstance(status, dict) and status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
            status["allocatable"] = dict(status["capacity"])


class EndpointsStrategy(CreateOnUpdateStrategy):
    """Endpoints: a port's protocol is TCP unless given (SetDefaults_Endpoints)."""

    def default(self, obj: dict[str, Any]) -> None:
        for subset in obj.get("subsets") or []:
            for port in (subset.get("ports") or []) if isinstance(subset, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


class PersistentVolumeClaimStrategy(Strategy):
    """PersistentVolumeClaims: Filesystem volume mode, Pending until bound."""

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_PersistentVolumeClaim(Spec)."""
        default_claim(obj)

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"phase": "Pending"}


def default_claim(claim: Any) -> None:
    """SetDefaults_PersistentVolumeClaim and its spec's defaults, on a claim or a claim template."""
    if not isinstance(claim, dict):
        return
    default_claim_spec(claim.get("spec"))
    status = claim.get("status")
    if status is None:
        status = claim["status"] = {}
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Pending"


class ConfigMapStrategy(Strategy):
    """ConfigMaps: key syntax and immutability."""

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        return _key_causes(obj.get("data"), "data") + _key_causes(obj.get("binaryData"), "binaryData")

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        if old.get("immutable") and (
            new.get("data") != old.get("data") or new.get("binaryData") != old.get("binaryData")
        ):
            return [
                Cause(
                    "data",
                    "Forbidden: field is immutable when `immutable` is set",
                    "FieldValueForbidden",
                )
            ]
        return []


class SecretStrategy(Strategy):
    """Secrets: stringData folded into data, base64 checked, type Opaque by default."""

    def default(self, obj: dict[str, Any]) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.get("data") or {}
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        causes = _key_causes(obj.get("data"), "data")
        for k, v in (obj.get("data") or {}).items():
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                causes.append(Cause(f"data[{k}]", "Invalid value: illegal base64 data"))
        return causes

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        if new.get("type") != old.get("type"):
            return [Cause("type", f'Invalid value: "{new.get("type")}": field is immutable')]
        if old.get("immutable") and new.get("data") != old.get("data"):
            return [
                Cause(
                    "data",
                    "Forbidden: field is immutable when `immutable` is set",
                    "FieldValueForbidden",
                )
            ]
        return []


class ServiceStrategy(Strategy):
    """Services: type and port defaults, cluster IP and node port allocation."""

    name_validator = staticmethod(validation.is_dns1035_label)
    service_range: ClassVar[str] = "127.96.0.0/16"
    node_port_range: ClassVar[tuple[int, int]] = (30000, 32767)

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.get("spec")
        if spec is None:
            spec = obj["spec"] = {}
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["sessionAffinity"] == "None":
            spec.pop("sessionAffinityConfig", None)
        elif spec["sessionAffinity"] == "ClientIP":
            config = spec.get("sessionAffinityConfig") or {}
            if not isinstance((config.get("clientIP") or {}).get("timeoutSeconds"), int):
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer") or (spec["type"] == "ClusterIP" and spec.get("externalIPs")):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
            for ingress in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                if isinstance(ingress, dict) and ingress.get("ip"):
                    ingress.setdefault("ipMode", "VIP")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"loadBalancer": {}}

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = obj.get("spec") or {}
        ports = spec.get("ports") or []
        if spec.get("type") != "ExternalName" and not ports and spec.get("clusterIP") != "None":
            return [Cause("spec.ports", "Required value", "FieldValueRequired")]
        causes: list[Cause] = []
        if len(ports) > 1:
            for i, p in enumerate(ports):
                if not p.get("name"):
                    causes.append(Cause(f"spec.ports[{i}].name", "Required value", "FieldValueRequired"))
        return causes

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        a, b = (new.get("spec") or {}).get("clusterIP"), (old.get("spec") or {}).get("clusterIP")
        if a and b and a != b:
            return [Cause("spec.clusterIP", f'Invalid value: "{a}": field is immutable')]
        return []

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        if isinstance(spec, dict):
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if key in old_spec and key not in spec:
                    spec[key] = old_spec[key]
            old_ports = {p.get("port"): p for p in old_spec.get("ports") or []}
            for p in spec.get("ports") or []:
                prev = old_ports.get(p.get("port"))
                if prev and "nodePort" in prev and "nodePort" not in p:
                    p["nodePort"] = prev["nodePort"]

    async def admit(self, obj: dict[str, Any], old: dict[str, Any] | None, reg: Registry) -> None:
        spec = obj.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return
        services = [s.obj for s in await reg.snapshot("services")]
        if old is None or not spec.get("clusterIP"):
            self._allocate_cluster_ip(spec, services)
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            self._allocate_node_ports(obj, spec, services)

    def _allocate_cluster_ip(self, spec: dict[str, Any], services: list[dict[str, Any]]) -> None:
        ip = spec.get("clusterIP")
        if ip == "None":
            spec["clusterIPs"] = ["None"]
        else:
            net = ipaddress.ip_network(self.service_range)
            used = {(s.get("spec") or {}).get("clusterIP") for s in services}
            if ip:
                if ipaddress.ip_address(ip) not in net:
                    raise _invalid_ip(ip, self.service_range)
                if ip in used:
                    raise StatusError(
                        422,
                        "Invalid",
                        f"spec.clusterIPs: Invalid value: "
                        f'["{ip}"]: failed to allocate IP {ip}: provided IP is '
                        "already allocated",
                    )
            else:
                ip = _random_free(net, used)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    def _allocate_node_ports(self, obj: dict[str, Any], spec: dict[str, Any], services: list[dict[str, Any]]) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        used = {
            p.get("nodePort")
            for s in services
            if (s.get("metadata") or {}).get("uid") != uid
            for p in (s.get("spec") or {}).get("ports") or []
        }
        lo, hi = self.node_port_range
        for i, p in enumerate(spec.get("ports") or []):
            port = p.get("nodePort")
            if port:
                if not lo <= port <= hi:
                    raise StatusError(
                        422,
                        "Invalid",
                        f"spec.ports[{i}].nodePort: Invalid value: "
                        f"{port}: provided port is not in the valid range. The "
                        f"range of valid ports is {lo}-{hi}",
                    )
                if port in used:
                    raise StatusError(
                        422,
                        "Invalid",
                        f"spec.ports[{i}].nodePort: Invalid value: {port}: provided port is already allocated",
                    )
            else:
                free = [n for n in range(lo, hi + 1) if n not in used]
                p["nodePort"] = random.choice(free)
            used.add(p["nodePort"])


def _random_free(net: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[Any]) -> str:
    hosts = net.num_addresses - 2
    for _ in range(1000):
        ip = str(net.network_address + random.randint(2, hosts))
        if ip not in used:
            return ip
    raise StatusError(500, "InternalError", "Internal error occurred: range is full")


def _invalid_ip(ip: str, cidr: str) -> StatusError:
    return StatusError(
        422,
        "Invalid",
        f'spec.clusterIPs: Invalid value: ["{ip}"]: failed to '
        f"allocate IP {ip}: the provided IP ({ip}) is not in the valid range. "
        f"The range of valid IPs is {cidr}",
    )
