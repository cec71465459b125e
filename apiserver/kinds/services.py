"""Service strategy: defaults, type-dependent fields, validation, and IP and node-port allocation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.resources import ResourceInfo
from apiserver.ipallocator import IPAllocator
from apiserver.kinds.service_alloc import (
    ServiceAllocation,
    needs_cluster_ip,
    needs_hc_node_port,
    needs_node_port,
    release_all,
)
from apiserver.portallocator import PortAllocator, PortRange
from apiserver.strategy import Finish, Strategy

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["ServiceNetwork", "ServiceStrategy"]

_IP_MODES = ("Proxy", "VIP")


@dataclass(frozen=True)
class ServiceNetwork:
    """Where Services get their addresses: --service-cluster-ip-range and --service-node-port-range."""

    cluster_ip_range: str = "127.96.0.0/16"
    node_port_range: PortRange = field(default_factory=PortRange)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ports_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in spec.get("ports") or [] if isinstance(p, dict)]


def _same(a: dict[str, Any], b: dict[str, Any], *keys: str) -> bool:
    return all(a.get(k) == b.get(k) for k in keys)


def _same_node_ports(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return [p.get("nodePort") for p in _ports_of(a)] == [p.get("nodePort") for p in _ports_of(b)]


class ServiceStrategy(Strategy):
    """Services: type and port defaults, cluster IPs and node ports allocated in etcd."""

    name_validator = staticmethod(validation.is_dns1035_label)

    def __init__(self, resource: ResourceInfo, network: ServiceNetwork | None = None) -> None:
        super().__init__(resource)
        self.network = network or ServiceNetwork()

    # --- defaults ----------------------------------------------------------------------------
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
            config = spec.get("sessionAffinityConfig")
            client_ip = (config.get("clientIP") if isinstance(config, dict) else None) or {}
            if not isinstance(client_ip, dict) or not isinstance(client_ip.get("timeoutSeconds"), int):
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer") or (spec["type"] == "ClusterIP" and spec.get("externalIPs")):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        elif spec.get("clusterIPs") and not spec.get("clusterIP") and isinstance(spec["clusterIPs"], list):
            spec["clusterIP"] = spec["clusterIPs"][0]
        for port in _ports_of(spec):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        status = obj.get("status")
        ingress = ((status or {}).get("loadBalancer") or {}).get("ingress") if isinstance(status, dict) else None
        for ing in ingress if isinstance(ingress, list) and spec["type"] == "LoadBalancer" else []:
            if isinstance(ing, dict) and ing.get("ip") and not ing.get("ipMode"):
                ing["ipMode"] = "VIP"

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"loadBalancer": {}}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        if not isinstance(spec, dict):
            return
        self._patch_allocated_values(spec, old_spec)
        self._normalize_cluster_ips(spec, old_spec)
        self._drop_type_dependent_fields(new, spec, old_spec)

    @staticmethod
    def _normalize_cluster_ips(spec: dict[str, Any], old: dict[str, Any]) -> None:
        """Keep clusterIP and clusterIPs in step when an update changed only one (normalizeClusterIPs)."""
        if old.get("clusterIPs") and not spec.get("clusterIPs") and old.get("clusterIP") == spec.get("clusterIP"):
            spec["clusterIPs"] = copy.deepcopy(old["clusterIPs"])
        if old.get("clusterIP") != spec.get("clusterIP") and _same(spec, old, "clusterIPs"):
            if old.get("clusterIP") and not spec.get("clusterIP"):
                spec.pop("clusterIPs", None)
            else:
                spec["clusterIPs"] = [spec.get("clusterIP")]

    @staticmethod
    def _patch_allocated_values(spec: dict[str, Any], old: dict[str, Any]) -> None:
        """An update that leaves out allocated values keeps them (upstream's patchAllocatedValues)."""
        if needs_cluster_ip(old) and needs_cluster_ip(spec):
            if not spec.get("clusterIP") and old.get("clusterIP"):
                spec["clusterIP"] = old["clusterIP"]
            if not spec.get("clusterIPs") and old.get("clusterIPs"):
                spec["clusterIPs"] = copy.deepcopy(old["clusterIPs"])
            for key in ("ipFamilies", "ipFamilyPolicy"):
                if key in old and key not in spec:
                    spec[key] = copy.deepcopy(old[key])
        if needs_node_port(old) and needs_node_port(spec):
            new_used = {p.get("nodePort") for p in _ports_of(spec) if p.get("nodePort")}
            by_name = {p.get("name", ""): p.get("nodePort") for p in _ports_of(old)}
            for p in _ports_of(spec):
                previous = by_name.get(p.get("name", ""))
                if not p.get("nodePort") and previous and previous not in new_used:
                    p["nodePort"] = previous
        if needs_hc_node_port(old) and needs_hc_node_port(spec) and not spec.get("healthCheckNodePort"):
            if old.get("healthCheckNodePort"):
                spec["healthCheckNodePort"] = old["healthCheckNodePort"]

    @staticmethod
    def _drop_type_dependent_fields(obj: dict[str, Any], spec: dict[str, Any], old: dict[str, Any]) -> None:
        """Wipe what a type change makes meaningless, if the user left it as it was (dropTypeDependentFields)."""
        if needs_cluster_ip(old) and not needs_cluster_ip(spec):
            if _same(spec, old, "clusterIP", "clusterIPs"):
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
            for key in ("ipFamilies", "ipFamilyPolicy"):
                if _same(spec, old, key):
                    spec.pop(key, None)
        if needs_node_port(old) and not needs_node_port(spec) and _same_node_ports(spec, old):
            for p in _ports_of(spec):
                p.pop("nodePort", None)
        if needs_hc_node_port(old) and not needs_hc_node_port(spec) and _same(spec, old, "healthCheckNodePort"):
            spec.pop("healthCheckNodePort", None)
        if old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
            for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
                if _same(spec, old, key):
                    spec.pop(key, None)
        if needs_node_port(old) and not needs_node_port(spec) and _same(spec, old, "externalTrafficPolicy"):
            spec.pop("externalTrafficPolicy", None)
        if spec.get("type") != "LoadBalancer" and isinstance(obj.get("status"), dict):
            obj["status"]["loadBalancer"] = {}

    # --- validation --------------------------------------------------------------------------
    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = obj.get("spec") or {}
        ports = _ports_of(spec)
        causes: list[Cause] = []
        if spec.get("type") != "ExternalName" and not ports and spec.get("clusterIP") != "None":
            return [Cause("spec.ports", "Required value", "FieldValueRequired")]
        if len(ports) > 1:
            for i, p in enumerate(ports):
                if not p.get("name"):
                    causes.append(Cause(f"spec.ports[{i}].name", "Required value", "FieldValueRequired"))
        if spec.get("type") == "ExternalName":
            if spec.get("clusterIP") or spec.get("clusterIPs"):
                why = "Forbidden: may not be set for ExternalName services"
                causes.append(Cause("spec.clusterIPs", why, "FieldValueForbidden"))
        else:
            causes += _cluster_ip_causes(spec)
        if spec.get("type") == "ClusterIP":
            for i, p in enumerate(ports):
                if p.get("nodePort"):
                    causes.append(
                        Cause(
                            f"spec.ports[{i}].nodePort",
                            "Forbidden: may not be used when `type` is 'ClusterIP'",
                            "FieldValueForbidden",
                        )
                    )
        if spec.get("loadBalancerClass") is not None and spec.get("type") != "LoadBalancer":
            causes.append(
                Cause(
                    "spec.loadBalancerClass",
                    "Forbidden: may only be used when `type` is 'LoadBalancer'",
                    "FieldValueForbidden",
                )
            )
        causes += _load_balancer_status_causes(obj.get("status"))
        return causes

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        causes: list[Cause] = []
        if needs_cluster_ip(spec) and needs_cluster_ip(old_spec):
            now, before = spec.get("clusterIPs") or [], old_spec.get("clusterIPs") or []
            if before and (not now or now[0] != before[0]):
                causes.append(Cause("spec.clusterIPs[0]", f"Invalid value: {_json(now)}: may not change once set"))
        if spec.get("type") == "LoadBalancer" and old_spec.get("type") == "LoadBalancer":
            if spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass"):
                causes.append(
                    Cause(
                        "spec.loadBalancerClass",
                        f"Invalid value: {_json(spec.get('loadBalancerClass'))}: may not change once set",
                    )
                )
        return causes

    # --- allocation --------------------------------------------------------------------------
    def _allocators(self, reg: Registry) -> tuple[IPAllocator, PortAllocator]:
        return (
            IPAllocator(reg, self.network.cluster_ip_range),
            PortAllocator(reg.storage, reg.cache, self.network.node_port_range),
        )

    async def begin_create(self, obj: dict[str, Any], reg: Registry, dry_run: bool) -> Finish | None:
        """Allocate the new Service's cluster IP and node ports; undone if it is not stored.

        A Service that is invalid anyway gets nothing: the validation step that follows says why.
        """
        if self.validate(obj):
            return None
        ips, ports = self._allocators(reg)
        txn = ServiceAllocation(ips, ports, obj, dry_run)
        await txn.on_create(obj.setdefault("spec", {}))
        return txn.finish

    async def begin_update(
        self, new: dict[str, Any], old: dict[str, Any], reg: Registry, dry_run: bool
    ) -> Finish | None:
        """Allocate what the update adds; release what it drops once it is stored (nothing if invalid)."""
        if self.validate(new):
            return None
        ips, ports = self._allocators(reg)
        txn = ServiceAllocation(ips, ports, old, dry_run)
        await txn.on_update(new.setdefault("spec", {}), old.get("spec") or {})
        return txn.finish

    async def after_delete(self, obj: dict[str, Any], reg: Registry) -> None:
        """Free the deleted Service's cluster IPs and node ports."""
        ips, ports = self._allocators(reg)
        await release_all(ips, ports, obj)


def _cluster_ip_causes(spec: dict[str, Any]) -> list[Cause]:
    """spec.clusterIP and spec.clusterIPs agree and hold IPs (ValidateServiceClusterIPsRelatedFields)."""
    ips = spec.get("clusterIPs") or []
    if not isinstance(ips, list):
        return []
    causes: list[Cause] = []
    if spec.get("clusterIP"):
        if ips and ips[0] != spec["clusterIP"]:
            causes.append(Cause("spec.clusterIPs", f"Invalid value: {_json(ips)}: first value must match `clusterIP`"))
    elif ips:
        causes.append(
            Cause("spec.clusterIPs", f"Invalid value: {_json(ips)}: must be empty when `clusterIP` is not specified")
        )
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                why = f"Invalid value: {_json(ips)}: 'None' must be the first and only value"
                causes.append(Cause("spec.clusterIPs", why))
            continue
        for msg in validation.is_valid_ip(str(ip)):
            causes.append(Cause(f"spec.clusterIPs[{i}]", f"Invalid value: {_json(ip)}: {msg}"))
    if len(ips) > 2:
        causes.append(Cause("spec.clusterIPs", f"Invalid value: {_json(ips)}: may only hold up to 2 values"))
    return causes


def _load_balancer_status_causes(status: Any) -> list[Cause]:
    """status.loadBalancer.ingress entries: IPs valid, ipMode set exactly when ip is (validateLoadBalancerStatus)."""
    ingress = ((status or {}).get("loadBalancer") or {}).get("ingress") if isinstance(status, dict) else None
    causes: list[Cause] = []
    for i, ing in enumerate(ingress if isinstance(ingress, list) else []):
        if not isinstance(ing, dict):
            continue
        path = f"status.loadBalancer.ingress[{i}]"
        ip, mode = ing.get("ip"), ing.get("ipMode")
        if ip:
            for msg in validation.is_valid_ip(str(ip)):
                causes.append(Cause(f"{path}.ip", f"Invalid value: {_json(ip)}: {msg}"))
        if mode and not ip:
            why = "Forbidden: may not be specified when `ip` is not"
            causes.append(Cause(f"{path}.ipMode", why, "FieldValueForbidden"))
        elif mode and mode not in _IP_MODES:
            causes.append(
                Cause(
                    f"{path}.ipMode",
                    f'Unsupported value: {_json(mode)}: supported values: "Proxy", "VIP"',
                    "FieldValueNotSupported",
                )
            )
    return causes
